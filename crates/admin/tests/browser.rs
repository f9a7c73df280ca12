//! End to end in headless Chromium (Debian's chromium + chromium-driver) driven over the
//! WebDriver protocol: log in, add a phone (seeing a validation message first), see it turn
//! registered when RIS says so, open its page with the boot diagnosis, reset it. Screenshots
//! of the main pages go to `<target>/screenshots/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use admin::{AdminOptions, Lease, Neighbour, NeighbourProtocol};
use common::{http, Harness, PASSWORD};
use journal::{Event, EventKind, EventSink, Protocol, ResetKind, Transport, VlanVia};
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and its browser, killed on drop (also on panic).
struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = http(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Browser processes left behind (after a panic) are ours: they carry our unique profile.
        let marker = self._profile.path().display().to_string();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&marker) {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
    }
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,900",
                format!("--user-data-dir={}", profile.path().display())]}}}});
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let r = d.cmd("POST", "/session", caps);
        d.session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        d
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let r = http(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let v = r.json();
        if r.status != 200 {
            panic!("webdriver {method} {path}: {} {}", r.status, r.text());
        }
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.cmd("POST", &self.s("/url"), json!({"url": url}));
    }

    fn find(&self, css: &str) -> Option<String> {
        let body = json!({"using": "css selector", "value": css}).to_string();
        let r = http(
            self.addr,
            "POST",
            &self.s("/element"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        (r.status == 200).then(|| {
            r.json()["value"][ELEMENT]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Waits (bounded) for an element.
    fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, css: &str) -> String {
        let e = self.wait(css);
        self.cmd("GET", &self.s(&format!("/element/{e}/text")), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (bounded) until the element's text contains `want`.
    fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = self.find(css).map(|_| self.text(css)).unwrap_or_default();
            if t.contains(want) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {want:?} in {css}, last {t:?}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn click(&self, css: &str) {
        let e = self.wait(css);
        self.cmd("POST", &self.s(&format!("/element/{e}/click")), json!({}));
    }

    fn typ(&self, css: &str, text: &str) {
        let e = self.wait(css);
        self.cmd("POST", &self.s(&format!("/element/{e}/clear")), json!({}));
        self.cmd(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            json!({"text": text}),
        );
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", &self.s("/screenshot"), Value::Null);
        let png = base64_decode(b64.as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn add_a_phone_see_it_register_and_reset_it() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        panic!("this test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver");
    }
    let h = Harness::start(AdminOptions::default());
    let base = format!("http://{}", h.addr);
    let mac: journal::Mac = "00:1b:54:aa:bb:cc".parse().unwrap();
    // What DHCP and discovery would report for this phone.
    h.backend.add_lease(Lease {
        mac,
        ip: Ipv4Addr::new(198, 18, 100, 10),
        pool: "voice".into(),
        expires: SystemTime::now() + Duration::from_secs(3600),
        vendor_class: Some("Cisco Systems, Inc. IP Phone CP-7841".into()),
        hostname: None,
    });
    h.backend.add_neighbour(Neighbour {
        mac,
        port: "ge-0/0/3".into(),
        protocol: NeighbourProtocol::Cdp,
        platform: Some("Cisco IP Phone 7841".into()),
        voice_vlan: Some(100),
        power_mw: Some(6300),
        last_seen: SystemTime::now(),
    });

    let d = Driver::start();
    d.go(&base);
    d.wait("#login-user");
    d.screenshot("login");
    d.typ("#login-user", "admin");
    d.typ("#login-pass", "wrong password");
    d.click("#login-submit");
    d.wait_text("#login-error", "wrong user name or password");
    d.typ("#login-pass", PASSWORD);
    d.click("#login-submit");

    // Add a phone: a bad MAC first, the message names the field; nothing is created.
    d.click("#add-phone");
    d.typ("#dev-mac", "00:1b:54:aa:bb");
    d.typ("#dev-desc", "Lobby phone");
    d.typ("#lines-body tr:first-child input[name=dn]", "1001");
    d.typ("#lines-body tr:first-child input[name=label]", "Lobby");
    d.click("#dev-save");
    d.wait_text("[data-err=mac]", "12 hexadecimal digits");
    d.screenshot("add-phone-validation");
    assert_eq!(
        http(h.addr, "GET", "/metrics", &[], b"")
            .text()
            .lines()
            .find(|l| l.starts_with("phoneboot_provisioned_devices")),
        Some("phoneboot_provisioned_devices 0")
    );
    d.typ("#dev-mac", "00:1b:54:aa:bb:cc");
    d.click("#dev-save");
    d.wait_text("tr[data-device=SEP001B54AABBCC] .status", "Never seen");

    // The phone boots: events on the bus, then the call manager registers it in RIS.
    let now = SystemTime::now() - Duration::from_secs(8);
    let ev = |s: u64, kind| Event::server(now + Duration::from_millis(s), mac, kind);
    for e in [
        ev(
            0,
            EventKind::CdpSeen {
                port: "ge-0/0/3".into(),
                platform: Some("Cisco IP Phone 7841".into()),
                power_requested_mw: Some(6300),
            },
        ),
        ev(
            10,
            EventKind::PowerGranted {
                port: "ge-0/0/3".into(),
                class: 2,
                milliwatts: 6300,
            },
        ),
        ev(
            20,
            EventKind::VoiceVlan {
                vlan: Some(100),
                via: VlanVia::Cdp,
            },
        ),
        ev(1500, EventKind::DhcpDiscover { vendor_class: None }),
        ev(
            1510,
            EventKind::DhcpOffer {
                ip: Ipv4Addr::new(198, 18, 100, 10),
            },
        ),
        ev(
            1600,
            EventKind::DhcpAck {
                ip: Ipv4Addr::new(198, 18, 100, 10),
                lease_secs: 3600,
                tftp_servers: vec![Ipv4Addr::new(198, 18, 0, 1)],
                vendor_class: None,
            },
        ),
        ev(
            2100,
            EventKind::FileMissing {
                name: "CTLSEP001B54AABBCC.tlv".into(),
                transport: Transport::Tftp,
            },
        ),
        ev(
            2200,
            EventKind::FileServed {
                name: "SEP001B54AABBCC.cnf.xml".into(),
                transport: Transport::Tftp,
                bytes: 3921,
                duration_ms: 14,
            },
        ),
        ev(
            2900,
            EventKind::FileMissing {
                name: "sip78xx.14-1-1SR2-2.loads".into(),
                transport: Transport::Tftp,
            },
        ),
        ev(
            4100,
            EventKind::Registered {
                protocol: Protocol::Sccp,
                node: "cm1".into(),
                from: Some("198.18.100.10".parse().unwrap()),
                detail: "protocol v20".into(),
            },
        ),
    ] {
        h.bus.emit(e);
    }
    h.ris.register(ris::Registration {
        device: "SEP001B54AABBCC".into(),
        line: None,
        protocol: Protocol::Sccp,
        node: "cm1".into(),
        from: "198.18.100.10:51234".parse().unwrap(),
        since: SystemTime::now(),
        last_seen: SystemTime::now(),
        expires: None,
        detail: "protocol v20".into(),
        model: Some("CP-7841".into()),
    });
    // The list turns registered by itself (polling + SSE), no reload.
    d.wait_text("tr[data-device=SEP001B54AABBCC] .status", "Registered");
    d.wait_text("tr[data-device=SEP001B54AABBCC]", "198.18.100.10");
    d.screenshot("phones");

    // The phone page: diagnosis, lease, neighbour, generated file.
    d.click("tr[data-device=SEP001B54AABBCC] td:nth-child(3)");
    d.wait_text("#verdict", "Registered");
    d.wait_text("#verdict", "the phone will keep its firmware");
    d.wait_text("#main", "ge-0/0/3");
    d.wait_text("#main", "SEP001B54AABBCC.cnf.xml");
    d.screenshot("phone");

    // Reset it, through the confirmation dialog.
    d.click("#action-reset");
    d.click("#confirm-yes");
    d.wait_text("#toasts", "Reset sent to SEP001B54AABBCC");
    assert_eq!(
        h.backend.actions(),
        vec![("SEP001B54AABBCC".to_string(), ResetKind::Reset)]
    );

    // The other pages render their data.
    d.go(&format!("{base}/#/live"));
    d.wait_text(".tile.registered .n", "1");
    // The feed shows the past, then a new phone arrives live over SSE.
    d.wait_text("#feed", "dhcp ack");
    let other: journal::Mac = "00:1b:54:00:00:42".parse().unwrap();
    h.bus.emit(Event::server(
        SystemTime::now(),
        other,
        EventKind::DhcpDiscover { vendor_class: None },
    ));
    d.wait_text("#feed", "00:1b:54:00:00:42 dhcp discover");
    d.wait_text(".tile[data-step=dhcp] .n", "1");
    d.screenshot("live");
    d.go(&format!("{base}/#/neighbours"));
    d.wait_text("#main", "Cisco IP Phone 7841");
    d.screenshot("neighbours");
    d.go(&format!("{base}/#/leases"));
    d.wait_text("#main", "198.18.100.10");
    d.screenshot("leases");
    d.go(&format!("{base}/#/settings"));
    d.wait("#ar-form");
    d.typ("#ar-last", "1");
    d.click("#ar-form button[type=submit]");
    d.wait_text("[data-err=dn_last]", "must not be below dn_first");
    d.screenshot("settings");
}
