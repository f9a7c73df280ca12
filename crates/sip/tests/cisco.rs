//! Issue 24 items 1 and 3: the registrar answers what Cisco enterprise SIP firmware sends the
//! way CUCM does, and shared lines register from every phone showing them.
//!
//! The requests are written out as Cisco phones send them (Contact with
//! `+sip.instance`/`+u.sip!devicename.ccm.cisco.com`, the backup keepalive marked
//! `cisco-keep-alive` with expiry 0, REFER to `urn:x-cisco-remotecc:token-registration`,
//! `application/x-cisco-alarm+xml` and remote-cc bodies) after the shapes usecallmanager's
//! Asterisk patch handles (`sip_handle_request_refer`, the "Cisco failover" branch of its
//! REGISTER handling, 489 Bad Event for events it does not serve); the emulator's own
//! builders in `sip::client` are checked against the same answers.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use sip::{
    ClientConfig, ClientEvent, Limits, MemoryDirectory, Message, RegEvent, RegisterClient,
    Registrar, RegistrarConfig, Transport,
};

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn addr(n: u8) -> SocketAddr {
    format!("198.18.0.{n}:5060").parse().unwrap()
}

fn handle(
    r: &mut Registrar,
    dir: &MemoryDirectory,
    raw: &str,
    from: SocketAddr,
    now: SystemTime,
) -> (Message, Vec<RegEvent>) {
    let parsed = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    let out = r.handle(dir, &parsed, from, Transport::Udp, now);
    let resp = out.response.expect("answered");
    let resp = Message::parse(&resp.encode(), &Limits::default()).unwrap();
    (resp, out.events)
}

fn send(
    r: &mut Registrar,
    dir: &MemoryDirectory,
    m: &Message,
    from: SocketAddr,
    now: SystemTime,
) -> (Message, Vec<RegEvent>) {
    handle(r, dir, &String::from_utf8(m.encode()).unwrap(), from, now)
}

fn client(mac: &str, n: u8, user: &str, pw: &str) -> RegisterClient {
    RegisterClient::new(ClientConfig {
        domain: "198.18.0.1".into(),
        user: user.into(),
        auth_user: user.into(),
        password: pw.into(),
        local: addr(n),
        transport: Transport::Udp,
        mac: Some(mac.parse().unwrap()),
        model: Some("Cisco 8851".into()),
        user_agent: "Cisco-CP8851/14.2.1".into(),
        reg_id: 1,
        call_id: format!("reg-{mac}@198.18.0.{n}"),
        from_tag: format!("tag{n}"),
    })
}

/// Registers through the challenge; returns the final status and every event.
fn register(
    r: &mut Registrar,
    dir: &MemoryDirectory,
    c: &mut RegisterClient,
    from: SocketAddr,
    expires: u32,
    now: SystemTime,
) -> (u16, ClientEvent, Vec<RegEvent>) {
    let mut events = Vec::new();
    for i in 0..3 {
        let req = c.register(expires, &format!("b{i}{}", from.ip()), &format!("cn{i}"));
        let (resp, ev) = send(r, dir, &req, from, now);
        events.extend(ev);
        match c.on_response(&resp) {
            ClientEvent::Challenged => continue,
            e => return (resp.status().unwrap(), e, events),
        }
    }
    panic!("challenged forever")
}

const MACS: [&str; 3] = ["001b54000a01", "001b54000a02", "001b54000a03"];

fn shared_dir(n: usize) -> MemoryDirectory {
    let dir = MemoryDirectory::new();
    for mac in &MACS[..n] {
        dir.add_device(
            mac.parse().unwrap(),
            Some("Cisco 8851"),
            &[("3000", "3000", Some("pw3000"))],
        );
    }
    dir.add_device(
        "001b54000b01".parse().unwrap(),
        None,
        &[("3001", "3001", None)],
    );
    dir
}

#[test]
fn two_and_three_phones_on_one_dn_all_register_with_their_own_bindings() {
    for n in [2usize, 3] {
        let dir = shared_dir(n);
        let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
        let mut clients: Vec<RegisterClient> = (0..n)
            .map(|i| client(MACS[i], 10 + i as u8, "3000", "pw3000"))
            .collect();
        for (i, c) in clients.iter_mut().enumerate() {
            let (code, e, ev) = register(&mut r, &dir, c, addr(10 + i as u8), 3600, t(0));
            assert_eq!(code, 200, "phone {i} of {n}: {e:?}");
            let device = format!("SEP{}", MACS[i].to_ascii_uppercase());
            assert!(
                ev.iter().any(|e| matches!(e, RegEvent::Registered { device: d, line, first: true, .. } if *d == device && line == "3000")),
                "{ev:?}"
            );
        }
        let devices: Vec<String> = r.line_devices("3000").map(|l| l.device.clone()).collect();
        assert_eq!(devices.len(), n, "{devices:?}");
        for (i, mac) in MACS[..n].iter().enumerate() {
            let l = r
                .line_on("3000", &format!("SEP{}", mac.to_ascii_uppercase()))
                .unwrap();
            assert_eq!(l.bindings.len(), 1);
            assert_eq!(l.bindings[0].source, addr(10 + i as u8));
        }
        // One phone leaving keeps the others registered.
        let (code, _, ev) = register(&mut r, &dir, &mut clients[0], addr(10), 0, t(5));
        assert_eq!(code, 200);
        assert!(ev
            .iter()
            .any(|e| matches!(e, RegEvent::Unregistered { line, .. } if line == "3000")));
        assert_eq!(r.line_devices("3000").count(), n - 1);
        // Expiry is per device too.
        let ev = r.expire(t(3600 + 10));
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, RegEvent::Expired { .. }))
                .count(),
            n - 1
        );
        assert_eq!(r.line_devices("3000").count(), 0);
    }
}

#[test]
fn a_phone_not_showing_the_line_is_still_refused() {
    let dir = shared_dir(2);
    let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
    // 001b54000b01 is provisioned, but with 3001 only.
    let mut c = client("001b54000b01", 30, "3000", "pw3000");
    let (code, e, _) = register(&mut r, &dir, &mut c, addr(30), 3600, t(0));
    assert_eq!(code, 403, "{e:?}");
    assert!(
        matches!(e, ClientEvent::Rejected { ref reason, .. } if reason == "Line Belongs To Another Device")
    );
}

#[test]
fn restart_notify_reaches_each_phone_of_a_shared_line() {
    let dir = shared_dir(3);
    let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
    for (i, mac) in MACS.iter().enumerate() {
        let mut c = client(mac, 10 + i as u8, "3000", "pw3000");
        assert_eq!(
            register(&mut r, &dir, &mut c, addr(10 + i as u8), 3600, t(0)).0,
            200
        );
    }
    for (i, mac) in MACS.iter().enumerate() {
        let dev = format!("SEP{}", mac.to_ascii_uppercase());
        let out = r.service_control(
            &dev,
            sip::ServiceAction::Restart,
            &Default::default(),
            "198.18.0.1:5060".parse().unwrap(),
            "tok",
        );
        assert_eq!(out.len(), 1, "{dev}");
        assert_eq!(out[0].to, addr(10 + i as u8));
    }
}

/// The backup CallManager's keepalive, as a Cisco phone registered elsewhere sends it.
const KEEPALIVE: &str = "REGISTER sip:198.18.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.18.0.40:5060;branch=z9hG4bK1c2d3e4f\r\n\
From: <sip:3001@198.18.0.1>;tag=00215504a5c2000a\r\n\
To: <sip:3001@198.18.0.1>\r\n\
Call-ID: 00215504-a5c20003-1b7e2a3c-0f6d1e2b@198.18.0.40\r\n\
Max-Forwards: 70\r\n\
CSeq: 101 REGISTER\r\n\
User-Agent: Cisco-CP8851/14.2.1\r\n\
Contact: <sip:3001@198.18.0.40:5060>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-001b54000b01>\";+u.sip!devicename.ccm.cisco.com=\"SEP001B54000B01\";+u.sip!model.ccm.cisco.com=\"684\";cisco-keep-alive\r\n\
Expires: 0\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn backup_keepalive_register_gets_200_without_challenge_or_binding() {
    let dir = shared_dir(1);
    // Digest everywhere: the keepalive must still not be challenged.
    dir.add_device(
        "001b54000c01".parse().unwrap(),
        None,
        &[("3002", "3002", Some("pw"))],
    );
    let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
    let (resp, ev) = handle(&mut r, &dir, KEEPALIVE, addr(40), t(0));
    assert_eq!(resp.status(), Some(200));
    assert!(resp.header("WWW-Authenticate").is_none());
    assert!(resp.header("Date").is_some());
    assert!(ev.is_empty(), "no registration event: {ev:?}");
    assert!(r.line("3001").is_none(), "no binding");
    assert_eq!(r.stats().keepalives, 1);

    // The emulator's own keepalive, to a line that needs digest.
    let c = client("001b54000c01", 41, "3002", "pw");
    let (resp, _) = send(
        &mut r,
        &dir,
        &c.backup_keepalive("kab1", "ka-1@198.18.0.41"),
        addr(41),
        t(1),
    );
    assert_eq!(resp.status(), Some(200));
    assert!(resp.header("WWW-Authenticate").is_none());
    assert!(r.line("3002").is_none());

    // Without the marker an Expires: 0 REGISTER is an ordinary (challenged) unregister.
    let plain = KEEPALIVE
        .replace(";cisco-keep-alive", "")
        .replace("1c2d3e4f", "99")
        .replace("3001", "3002")
        .replace("000b01", "000c01")
        .replace("000B01", "000C01");
    let (resp, _) = handle(&mut r, &dir, &plain, addr(40), t(2));
    assert_eq!(resp.status(), Some(401));
}

#[test]
fn registrations_are_granted_the_pool_interval_so_a_dead_phone_expires_in_two_minutes() {
    let dir = shared_dir(1);
    dir.set_register_interval(MACS[0].parse().unwrap(), 120);
    let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
    let mut c = client(MACS[0], 10, "3000", "pw3000");
    // Cisco firmware asks for its SIP profile's timerRegisterExpires (3600 in CUCM's sample).
    let (code, e, ev) = register(&mut r, &dir, &mut c, addr(10), 3600, t(0));
    assert_eq!(code, 200);
    assert_eq!(e, ClientEvent::Registered { expires: 120 });
    assert!(ev
        .iter()
        .any(|e| matches!(e, RegEvent::Registered { expires, .. } if *expires == t(120))));
    assert!(r.expire(t(119)).is_empty());
    let gone = r.expire(t(121));
    assert!(
        matches!(&gone[..], [RegEvent::Expired { line, .. }] if line == "3000"),
        "{gone:?}"
    );
}

fn request(method: &str, extra: &str, body: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{method} sip:198.18.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.18.0.40:5060;branch=z9hG4bK{method}{n}\r\n\
From: <sip:3001@198.18.0.1>;tag=00215504a5c2\r\n\
To: <sip:198.18.0.1>\r\n\
Call-ID: 00215504-{method}@198.18.0.40\r\n\
Max-Forwards: 70\r\n\
CSeq: 101 {method}\r\n\
User-Agent: Cisco-CP8851/14.2.1\r\n\
Contact: <sip:3001@198.18.0.40:5060>\r\n\
{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn phone_notifies_refers_subscribes_and_options_get_cucm_answers() {
    let dir = shared_dir(1);
    let mut r = Registrar::new(RegistrarConfig::default(), [3; 32]).unwrap();
    let alarm = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<x-cisco-alarm>\r\n<Alarm Name=\"LastOutOfServiceInformation\">\r\n</Alarm>\r\n</x-cisco-alarm>\r\n";
    let cases: Vec<(String, u16)> = vec![
        // Alarm NOTIFY.
        (request("NOTIFY", "Event: x-cisco-alarm\r\nSubscription-State: terminated\r\nContent-Type: application/x-cisco-alarm+xml\r\n", alarm), 200),
        // On/off-hook dialog NOTIFY.
        (request("NOTIFY", "Event: dialog\r\nContent-Type: application/dialog-info+xml\r\n", "<dialog-info/>"), 200),
        // A NOTIFY naming no event.
        (request("NOTIFY", "", ""), 489),
        // Token registration.
        (request("REFER", "Refer-To: <urn:x-cisco-remotecc:token-registration>\r\nReferred-By: <sip:3001@198.18.0.1>\r\n", ""), 202),
        // Alarm and remote-cc bodies.
        (request("REFER", "Refer-To: <sip:198.18.0.1>\r\nContent-Type: application/x-cisco-alarm+xml\r\n", alarm), 202),
        (request("REFER", "Refer-To: <sip:198.18.0.1>\r\nContent-Type: application/x-cisco-remotecc-response+xml\r\n", "<x-cisco-remotecc-response><response><code>200</code></response></x-cisco-remotecc-response>"), 202),
        (request("REFER", "Refer-To: <sip:198.18.0.1>\r\nContent-Type: application/x-cisco-remotecc-request+xml\r\n", "<x-cisco-remotecc-request><softkeyeventmsg><softkeyevent>IDivert</softkeyevent></softkeyeventmsg></x-cisco-remotecc-request>"), 202),
        // A transfer REFER needs a call we do not have.
        (request("REFER", "Refer-To: <sip:4000@198.18.0.1>\r\n", ""), 603),
        // Presence/BLF and any other package: not served.
        (request("SUBSCRIBE", "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 3600\r\n", ""), 489),
        (request("SUBSCRIBE", "Event: dialog\r\nExpires: 3600\r\n", ""), 489),
        (request("OPTIONS", "Accept: application/sdp\r\n", ""), 200),
    ];
    for (raw, want) in &cases {
        let (resp, ev) = handle(&mut r, &dir, raw, addr(40), t(0));
        assert_eq!(
            resp.status(),
            Some(*want),
            "{}",
            raw.lines().next().unwrap()
        );
        assert!(ev.is_empty());
        if *want == 489 && raw.starts_with("SUBSCRIBE") {
            assert!(resp.header("Allow-Events").is_some());
        }
        if raw.starts_with("OPTIONS") {
            let allow = resp.header("Allow").unwrap();
            for m in ["REGISTER", "NOTIFY", "REFER", "SUBSCRIBE", "OPTIONS"] {
                assert!(allow.contains(m), "{allow}");
            }
        }
    }
    let s = r.stats();
    assert_eq!((s.notifies, s.refers), (2, 4));

    // The emulator's builders get the same answers.
    let c = client(MACS[0], 10, "3000", "pw3000");
    let answers = [
        (c.alarm_notify("e1", "e1@x", "TCP-timeout"), 200),
        (c.alarm_refer("e2", "e2@x", "TCP-timeout"), 202),
        (c.token_registration_refer("e3", "e3@x"), 202),
        (c.presence_subscribe("e4", "e4@x", "3001"), 489),
        (c.options("e5", "e5@x"), 200),
    ];
    for (m, want) in answers {
        let (resp, _) = send(&mut r, &dir, &m, addr(10), t(1));
        assert_eq!(resp.status(), Some(want), "{}", m.method().unwrap());
    }
}
