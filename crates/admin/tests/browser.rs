//! End to end in headless Chromium (Debian's chromium + chromium-driver) driven over the
//! WebDriver protocol: log in, add a phone (seeing a validation message first), see it turn
//! registered when RIS says so, open its page with the boot diagnosis, reset it. Screenshots
//! of the main pages go to `<target>/screenshots/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use admin::{AdminOptions, Lease, Neighbour, NeighbourProtocol};
use common::{http, Harness, PASSWORD};
use journal::{Event, EventKind, EventSink, Protocol, ResetKind, Transport, VlanVia};
use test_support::webdriver::{browser_missing, screenshot_dir, Driver};

#[test]
fn add_a_phone_see_it_register_and_reset_it() {
    if let Some(why) = browser_missing() {
        return test_support::skip(&why);
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

    let d = Driver::start(&screenshot_dir(""));
    eprintln!("screenshots: {}", d.shots().display());
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
