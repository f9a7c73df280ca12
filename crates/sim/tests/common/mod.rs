//! Test lab scaffolding shared by the namespace tests and the storm example: two namespaces
//! joined by a veth pair, dnsmasq (DHCP with a two-address option 150, TFTP), and an in-process
//! CallManager (SCCP on the `sccp` crate's server session, SIP on the `sip` crate's registrar).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why the namespace tests cannot run here (`None`: they can).
pub fn missing() -> Option<String> {
    if !std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        return Some("dnsmasq is not installed (/usr/sbin/dnsmasq)".into());
    }
    test_support::require::root_missing()
        .or_else(|| test_support::require::programs_missing(&["ip"]))
}

pub fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |p: &str| Path::new(p).exists();
    root && have("/usr/sbin/dnsmasq") && have("/usr/sbin/ip")
}

/// Runs `f` on a new thread that joined namespace `ns`, with its own current-thread runtime:
/// every socket the phones open (raw, netlink, TCP, UDP) then lives in that namespace.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let nsf = File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}");
        f()
    })
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn sccp_config(cm: Ipv4Addr, load: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<device><deviceProtocol>SCCP</deviceProtocol><devicePool><callManagerGroup><members>
<member priority="0"><callManager><ports><ethernetPhonePort>2000</ethernetPhonePort></ports><processNodeName>{cm}</processNodeName></callManager></member>
</members></callManagerGroup></devicePool><loadInformation>{load}</loadInformation>
<userLocale><name>English_United_States</name></userLocale><networkLocale>United_States</networkLocale></device>"#
    )
}

pub fn xml_default(cms: &[Ipv4Addr]) -> String {
    let mut m = String::new();
    for (i, cm) in cms.iter().enumerate() {
        m.push_str(&format!(
            "<member priority=\"{i}\"><callManager><ports><ethernetPhonePort>2000</ethernetPhonePort><sipPort>5060</sipPort></ports><processNodeName>{cm}</processNodeName></callManager></member>"
        ));
    }
    format!("<Default><callManagerGroup><members>{m}</members></callManagerGroup><loadInformation436 model=\"Cisco 7965\">SCCP45.9-4-2SR3-1S</loadInformation436></Default>")
}

/// A CallManager: the sccp crate's server session on TCP 2000, auto-registering unknown
/// phones from DN 5000.
pub async fn sccp_server(listen: Ipv4Addr, reset_once: bool) {
    let resets = Arc::new(std::sync::Mutex::new(
        std::collections::HashSet::<String>::new(),
    ));
    let dir = Arc::new(sccp::MemoryDirectory::new());
    dir.enable_auto_register(
        5000,
        5999,
        sccp::SccpDevice {
            name: String::new(),
            device_type: 436,
            model: "7965".into(),
            lines: vec![],
            speed_dials: vec![],
            keepalive_secs: Some(30),
            call_managers: vec![],
            date_format: "D.M.Y".into(),
            tz_offset_secs: 0,
            user_name: String::new(),
            forward_all: None,
            firmware: String::new(),
        },
    );
    let cfg = Arc::new(sccp::SessionConfig {
        self_ip: listen,
        ..Default::default()
    });
    let l = tokio::net::TcpListener::bind(SocketAddr::from((listen, 2000)))
        .await
        .unwrap();
    loop {
        let (mut s, peer) = l.accept().await.unwrap();
        let (dir, cfg, resets) = (Arc::clone(&dir), Arc::clone(&cfg), Arc::clone(&resets));
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut sess = sccp::ServerSession::new(&cfg, peer.ip(), Instant::now());
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let env = sccp::Env {
                    directory: dir.as_ref(),
                    lease: None,
                    wall: SystemTime::now(),
                };
                sess.handle_bytes(&cfg, &buf[..n], Instant::now(), &env);
                let mut out = Vec::new();
                sess.take_output(&mut out);
                if !out.is_empty() && s.write_all(&out).await.is_err() {
                    return;
                }
                while let Some(ev) = sess.poll_event() {
                    // Restart each phone once when it comes into service (tests resets).
                    if let sccp::ServerEvent::InService { device } = ev {
                        if reset_once && resets.lock().unwrap().insert(device) {
                            sess.reset(sccp::ResetType::Restart);
                            let mut out = Vec::new();
                            sess.take_output(&mut out);
                            let _ = s.write_all(&out).await;
                        }
                    }
                }
                if sess.is_closed() {
                    return;
                }
            }
        });
    }
}

/// A SIP registrar: the sip crate's registrar core on UDP 5060 with one provisioned line.
pub async fn sip_server(listen: Ipv4Addr, mac: mac::Mac, notify_once: bool) {
    let mut notified = std::collections::HashSet::new();
    let dir = sip::MemoryDirectory::new();
    dir.add_device(
        mac,
        Some("CP-8845"),
        &[("4101", "auth4101", Some("s3cret"))],
    );
    let mut reg = sip::Registrar::new(sip::RegistrarConfig::default(), [7; 32]).unwrap();
    let sock = tokio::net::UdpSocket::bind(SocketAddr::from((listen, 5060)))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let Ok(m) = sip::Message::parse(&buf[..n], &sip::Limits::default()) else {
            continue;
        };
        let out = reg.handle(&dir, &m, src, sip::Transport::Udp, SystemTime::now());
        if let Some(r) = out.response {
            let to = sip::response_target(&m, src);
            let _ = sock.send_to(&r.encode(), to).await;
        }
        for ev in out.events {
            // Restart each device once after its first registration (service-control NOTIFY).
            if let sip::RegEvent::Registered { device, .. } = ev {
                if notify_once && notified.insert(device.clone()) {
                    let local = SocketAddr::from((listen, 5060));
                    let reqs = reg.service_control(
                        &device,
                        sip::ServiceAction::Restart,
                        &sip::VersionStamps::default(),
                        local,
                        "t0k",
                    );
                    for r in reqs {
                        let _ = sock.send_to(&r.message.encode(), r.to).await;
                    }
                }
            }
        }
    }
}

pub fn sip_config(cm: Ipv4Addr, password: &str) -> String {
    format!(
        r#"<device><deviceProtocol>SIP</deviceProtocol><devicePool><callManagerGroup><members>
<member priority="0"><callManager><ports><sipPort>5060</sipPort></ports><processNodeName>{cm}</processNodeName></callManager></member>
</members></callManagerGroup></devicePool>
<sipProfile><sipLines><line button="1"><featureID>9</featureID><name>4101</name><authName>auth4101</authName><authPassword>{password}</authPassword><proxy>USECALLMANAGER</proxy></line></sipLines>
<sipStack><timerRegisterExpires>3600</timerRegisterExpires></sipStack><dialTemplate>dialplan.xml</dialTemplate><softKeyFile>softkeys.xml</softKeyFile></sipProfile>
<transportLayerProtocol>2</transportLayerProtocol><loadInformation>sip88xx.14-2-1-0001-14</loadInformation></device>"#
    )
}

pub struct Lab {
    pub _veth: l2::netns::VethPair,
    pub _dnsmasq: Proc,
    pub _dir: tempfile::TempDir,
    pub phone_ns: String,
    pub phone_if: String,
    pub net: u8,
    /// The server's address (DHCP, TFTP, SCCP 2000, SIP 5060).
    pub srv: Ipv4Addr,
}

pub fn lab(files: &[(&str, String)], sip_mac: mac::Mac) -> Lab {
    lab_with(files, sip_mac, false)
}

pub fn lab_with(files: &[(&str, String)], sip_mac: mac::Mac, reset_once: bool) -> Lab {
    lab_sized(files, sip_mac, reset_once, 100)
}

/// A lab for `phones` phones: up to 100 in a /24 (198.18.NET.0), more in 198.18.0.0/16.
pub fn lab_sized(
    files: &[(&str, String)],
    sip_mac: mac::Mac,
    reset_once: bool,
    phones: usize,
) -> Lab {
    let veth = l2::netns::VethPair::new("sm").unwrap();
    let net = 20 + (std::process::id() % 200) as u8;
    let big = phones > 100;
    let (srv, prefix, range) = if big {
        (
            Ipv4Addr::new(198, 18, 0, 1),
            16,
            "198.18.1.0,198.18.250.255,255.255.0.0".to_string(),
        )
    } else {
        (
            Ipv4Addr::new(198, 18, net, 1),
            24,
            format!("198.18.{net}.50,198.18.{net}.150,255.255.255.0"),
        )
    };
    // The server talks to every phone address: its neighbour table must hold them all.
    for (k, v) in [
        ("net.ipv4.neigh.default.gc_thresh1", "65536"),
        ("net.ipv4.neigh.default.gc_thresh2", "131072"),
        ("net.ipv4.neigh.default.gc_thresh3", "262144"),
    ] {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &veth.ns_b,
                "sysctl",
                "-qw",
                &format!("{k}={v}"),
            ])
            .output();
    }
    for (ns, ifn) in [(&veth.ns_a, &veth.if_a), (&veth.ns_b, &veth.if_b)] {
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-K", ifn, "tx", "off"])
            .output();
    }
    sh(&[
        "ip",
        "-n",
        &veth.ns_b,
        "addr",
        "add",
        &format!("{srv}/{prefix}"),
        "dev",
        &veth.if_b,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tftp");
    std::fs::create_dir(&root).unwrap();
    for (name, body) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &veth.ns_b,
            "dnsmasq",
            "-k",
            "--conf-file=/dev/null",
        ])
        .arg("--port=0")
        .arg("--user=root")
        .arg("--no-ping")
        .arg("--dhcp-authoritative")
        .arg(format!("--interface={}", veth.if_b))
        .arg("--bind-interfaces")
        .arg(format!("--dhcp-range={range},1h"))
        .arg("--dhcp-lease-max=100000")
        .arg("--tftp-max=5000")
        // Two TFTP servers: the second one does not exist (tests the full option 150 list).
        .arg(format!(
            "--dhcp-option=150,{srv},{}",
            Ipv4Addr::from(u32::from(srv) + 8)
        ))
        .arg("--enable-tftp")
        .arg(format!("--tftp-root={}", root.display()))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.path().join("leases").display()
        ))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .arg(format!(
            "--log-facility={}",
            dir.path().join("log").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dnsmasq = Proc(child);
    // CallManager thread in the server namespace (ends with the test process).
    let _cm = in_ns(&veth.ns_b, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::spawn(sip_server(srv, sip_mac, reset_once));
            sccp_server(srv, reset_once).await
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    Lab {
        phone_ns: veth.ns_a.clone(),
        phone_if: veth.if_a.clone(),
        _veth: veth,
        _dnsmasq: dnsmasq,
        _dir: dir,
        net,
        srv,
    }
}
