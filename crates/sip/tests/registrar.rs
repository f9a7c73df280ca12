//! Registrar behaviour, driven by the crate's own client (the same code the emulator uses).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use sip::{
    Algorithm, ClientConfig, ClientEvent, Limits, MemoryDirectory, Message, RegEvent,
    RegisterClient, Registrar, RegistrarConfig, ServiceAction, Transport, VersionStamps,
};

const MAC: &str = "001b54aabbcc";

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn phone_addr() -> SocketAddr {
    "198.18.0.50:5060".parse().unwrap()
}

fn setup(cfg: RegistrarConfig) -> (Registrar, MemoryDirectory) {
    let dir = MemoryDirectory::new();
    dir.add_device(
        MAC.parse().unwrap(),
        Some("36670"),
        &[
            ("1001", "auth1001", Some("s3cret")),
            ("1002", "auth1002", Some("other")),
        ],
    );
    dir.add_device(
        "001b54000001".parse().unwrap(),
        None,
        &[("2001", "2001", None)],
    );
    (Registrar::new(cfg, [9; 32]).unwrap(), dir)
}

fn client(user: &str, auth: &str, pw: &str) -> RegisterClient {
    RegisterClient::new(ClientConfig {
        domain: "198.18.0.1".into(),
        user: user.into(),
        auth_user: auth.into(),
        password: pw.into(),
        local: phone_addr(),
        transport: Transport::Udp,
        mac: Some(MAC.parse().unwrap()),
        model: Some("36670".into()),
        user_agent: "Cisco-CP8845/12.8.1".into(),
        reg_id: 1,
        call_id: format!("call-{user}@198.18.0.50"),
        from_tag: "ft1".into(),
    })
}

/// Sends through the wire format both ways, as the server would.
fn roundtrip(
    r: &mut Registrar,
    dir: &MemoryDirectory,
    req: &Message,
    now: SystemTime,
) -> (Option<Message>, Vec<RegEvent>) {
    let bytes = req.encode();
    let parsed = Message::parse(&bytes, &Limits::default()).unwrap();
    let out = r.handle(dir, &parsed, phone_addr(), Transport::Udp, now);
    let resp = out
        .response
        .map(|m| Message::parse(&m.encode(), &Limits::default()).unwrap());
    (resp, out.events)
}

/// REGISTER -> 401 -> REGISTER with credentials; returns the final response and events.
fn register(
    r: &mut Registrar,
    dir: &MemoryDirectory,
    c: &mut RegisterClient,
    expires: u32,
    now: SystemTime,
    n: &mut u32,
) -> (Message, Vec<RegEvent>, ClientEvent) {
    *n += 1;
    let req = c.register(expires, &format!("b{n}"), &format!("cn{n}"));
    let (resp, ev) = roundtrip(r, dir, &req, now);
    let resp = resp.expect("answered");
    let e = c.on_response(&resp);
    if e != ClientEvent::Challenged {
        return (resp, ev, e);
    }
    *n += 1;
    let req = c.register(expires, &format!("b{n}"), &format!("cn{n}"));
    assert!(req.header("Authorization").is_some());
    let (resp, ev) = roundtrip(r, dir, &req, now);
    let resp = resp.expect("answered");
    let e = c.on_response(&resp);
    (resp, ev, e)
}

#[test]
fn digest_register_md5_and_sha256_then_refresh_and_unregister() {
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let (mut r, dir) = setup(RegistrarConfig {
            algorithms: vec![alg],
            ..Default::default()
        });
        let mut c = client("1001", "auth1001", "s3cret");
        let mut n = 0;
        let (resp, ev, e) = register(&mut r, &dir, &mut c, 3600, t(0), &mut n);
        assert_eq!(resp.status(), Some(200), "{alg:?}");
        assert_eq!(e, ClientEvent::Registered { expires: 3600 });
        assert!(resp.header("To").unwrap().contains("tag="));
        assert!(resp.header("Date").is_some());
        match &ev[..] {
            [RegEvent::Registered {
                device,
                line,
                first: true,
                model,
                user_agent,
                ..
            }] => {
                assert_eq!(device, "SEP001B54AABBCC");
                assert_eq!(line, "1001");
                assert_eq!(model.as_deref(), Some("36670"));
                assert_eq!(user_agent.as_deref(), Some("Cisco-CP8845/12.8.1"));
            }
            other => panic!("{other:?}"),
        }
        let b = &r.line("1001").unwrap().bindings[0];
        assert_eq!(b.device_name.as_deref(), Some("SEP001B54AABBCC"));
        assert_eq!(
            b.instance.as_deref(),
            Some("<urn:uuid:00000000-0000-0000-0000-001b54aabbcc>")
        );
        assert_eq!(b.reg_id, Some(1));
        assert!(b.supported.iter().any(|s| s == "X-cisco-service-control"));

        // Refresh with the cached nonce (nc=2): no new challenge, not "first".
        n += 1;
        let req = c.register(3600, &format!("b{n}"), "cnx");
        let (resp, ev) = roundtrip(&mut r, &dir, &req, t(10));
        assert_eq!(resp.unwrap().status(), Some(200));
        assert!(matches!(
            &ev[..],
            [RegEvent::Registered { first: false, .. }]
        ));

        // Unregister.
        let (resp, ev, e) = register(&mut r, &dir, &mut c, 0, t(20), &mut n);
        assert_eq!(resp.status(), Some(200));
        assert_eq!(e, ClientEvent::Unregistered);
        assert!(resp.header("Contact").is_none());
        assert!(matches!(&ev[..], [RegEvent::Unregistered { .. }]));
        assert!(r.line("1001").is_none());
    }
}

#[test]
fn wrong_password_and_wrong_user_are_refused() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut n = 0;
    let mut c = client("1001", "auth1001", "nope");
    let (resp, ev, e) = register(&mut r, &dir, &mut c, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(403));
    assert!(matches!(e, ClientEvent::Rejected { code: 403, .. }));
    assert!(matches!(&ev[..], [RegEvent::Rejected { code: 403, .. }]));
    let mut c = client("1001", "auth1002", "other");
    let (resp, _, _) = register(&mut r, &dir, &mut c, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(403));
    assert!(r.line("1001").is_none());
}

#[test]
fn replayed_and_stale_nonces_are_challenged_again() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut n = 0;
    let mut c = client("1001", "auth1001", "s3cret");
    let first = c.register(3600, "x1", "cn");
    let (resp, _) = roundtrip(&mut r, &dir, &first, t(0));
    assert_eq!(c.on_response(&resp.unwrap()), ClientEvent::Challenged);
    let authed = c.register(3600, "x2", "cn");
    let (resp, _) = roundtrip(&mut r, &dir, &authed, t(0));
    assert_eq!(resp.unwrap().status(), Some(200));
    // Same credentials (same nc) under a new branch: a replay.
    let mut replay = authed.clone();
    for h in &mut replay.headers {
        if h.name == "Via" {
            h.value = h.value.replace("x2", "x3");
        }
        if h.name == "CSeq" {
            h.value = "500 REGISTER".into();
        }
    }
    let (resp, _) = roundtrip(&mut r, &dir, &replay, t(1));
    let resp = resp.unwrap();
    assert_eq!(resp.status(), Some(401));
    assert!(resp
        .header("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
    // After the nonce lifetime (30 s) the cached nonce is stale.
    let late = c.register(3600, "x4", "cn");
    let (resp, _) = roundtrip(&mut r, &dir, &late, t(100));
    let resp = resp.unwrap();
    assert_eq!(resp.status(), Some(401));
    assert!(resp
        .header("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
    assert_eq!(c.on_response(&resp), ClientEvent::Challenged);
    let (resp, _, _) = register(&mut r, &dir, &mut c, 3600, t(100), &mut n);
    assert_eq!(resp.status(), Some(200));
}

#[test]
fn expiry_bounds_multiple_contacts_star_and_expiry() {
    let (mut r, dir) = setup(RegistrarConfig {
        min_expires: 60,
        max_expires: 600,
        default_expires: 300,
        ..Default::default()
    });
    let mut n = 0;
    let mut c = client("1001", "auth1001", "s3cret");
    let (resp, ev, e) = register(&mut r, &dir, &mut c, 10, t(0), &mut n);
    assert_eq!(resp.status(), Some(423));
    assert_eq!(resp.header("Min-Expires"), Some("60"));
    assert_eq!(e, ClientEvent::IntervalTooBrief { min: 60 });
    assert!(matches!(&ev[..], [RegEvent::Rejected { code: 423, .. }]));
    let (_, _, e) = register(&mut r, &dir, &mut c, 99_999, t(0), &mut n);
    assert_eq!(e, ClientEvent::Registered { expires: 600 });

    // A second contact (no Cisco identity) in the same request with its own expiry.
    n += 1;
    let mut req = c.register(600, &format!("b{n}"), "cn");
    req.push_header("Contact", "<sip:1001@198.18.0.51:5070>;expires=120");
    let (resp, _) = roundtrip(&mut r, &dir, &req, t(1));
    let resp = resp.unwrap();
    assert_eq!(resp.status(), Some(200));
    let contacts: Vec<&str> = resp.headers_named("Contact").collect();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts.iter().any(|c| c.ends_with(";expires=120")));
    assert_eq!(r.line("1001").unwrap().bindings.len(), 2);

    // The short one expires, the line stays; then the other: Expired.
    assert!(r.expire(t(200)).is_empty());
    assert_eq!(r.line("1001").unwrap().bindings.len(), 1);
    let ev = r.expire(t(700));
    assert!(matches!(&ev[..], [RegEvent::Expired { line, .. }] if line == "1001"));

    // Star needs Expires: 0.
    let (_, _, e) = register(&mut r, &dir, &mut c, 300, t(800), &mut n);
    assert!(matches!(e, ClientEvent::Registered { .. }));
    n += 1;
    let mut star = c.register(300, &format!("b{n}"), "cn");
    star.headers.retain(|h| h.name != "Contact");
    star.push_header("Contact", "*");
    let (resp, _) = roundtrip(&mut r, &dir, &star, t(801));
    assert_eq!(resp.unwrap().status(), Some(400));
    n += 1;
    let mut star = c.register(0, &format!("b{n}"), "cn");
    star.headers.retain(|h| h.name != "Contact");
    star.push_header("Contact", "*");
    let (resp, ev) = roundtrip(&mut r, &dir, &star, t(802));
    assert_eq!(resp.unwrap().status(), Some(200));
    assert!(matches!(&ev[..], [RegEvent::Unregistered { .. }]));
    assert!(r.line("1001").is_none());
}

#[test]
fn unknown_lines_devices_and_auto_registration() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut n = 0;
    // Known device, unknown line: 404.
    let mut c = client("1999", "1999", "x");
    let (resp, ev, _) = register(&mut r, &dir, &mut c, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(404));
    assert!(matches!(&ev[..], [RegEvent::Rejected { code: 404, .. }]));
    // A line that belongs to another device: 403.
    let mut c = client("2001", "2001", "x");
    let (resp, _, _) = register(&mut r, &dir, &mut c, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(403));
    // Unknown device: 403 while auto-registration is off.
    let mut cfg = client("5000", "5000", "");
    let mut cc = cfg.config().clone();
    cc.mac = Some("00aabb000099".parse().unwrap());
    cfg = RegisterClient::new(cc.clone());
    let (resp, _, _) = register(&mut r, &dir, &mut cfg, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(403));
    // No identity, unknown user: 404.
    let mut anon = cc.clone();
    anon.mac = None;
    let mut a = RegisterClient::new(anon);
    let (resp, _, _) = register(&mut r, &dir, &mut a, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(404));

    // With auto-registration: a device and DN are created and the phone is registered.
    let (mut r, dir) = setup(RegistrarConfig {
        auto_register: true,
        ..Default::default()
    });
    dir.enable_auto_register(7000, 7099);
    let mut p = RegisterClient::new(cc);
    let (resp, ev, e) = register(&mut r, &dir, &mut p, 3600, t(0), &mut n);
    assert_eq!(resp.status(), Some(200), "{ev:?}");
    assert!(matches!(e, ClientEvent::Registered { .. }));
    assert!(ev.iter().any(|e| matches!(e, RegEvent::AutoRegistered { dn, device, .. } if dn == "7000" && device == "SEP00AABB000099")));
    assert!(ev
        .iter()
        .any(|e| matches!(e, RegEvent::Registered { line, .. } if line == "7000")));
    use sip::SipDirectory;
    assert!(dir.device_by_mac("00aabb000099".parse().unwrap()).is_some());
}

#[test]
fn lines_without_password_register_without_challenge() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut cc = client("2001", "2001", "").config().clone();
    cc.mac = Some("001b54000001".parse().unwrap());
    let mut c = RegisterClient::new(cc);
    let req = c.register(3600, "b1", "c");
    let (resp, ev) = roundtrip(&mut r, &dir, &req, t(0));
    assert_eq!(resp.unwrap().status(), Some(200));
    assert!(matches!(
        &ev[..],
        [RegEvent::Registered { first: true, .. }]
    ));
}

#[test]
fn retransmissions_out_of_order_options_and_bad_requests() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut c = client("1001", "auth1001", "s3cret");
    let req = c.register(3600, "b1", "c");
    let (resp, _) = roundtrip(&mut r, &dir, &req, t(0));
    c.on_response(&resp.unwrap());
    let authed = c.register(3600, "b2", "c");
    let (resp1, _) = roundtrip(&mut r, &dir, &authed, t(0));
    let (resp2, ev2) = roundtrip(&mut r, &dir, &authed, t(1));
    assert_eq!(resp1, resp2, "retransmission answered from the cache");
    assert!(ev2.is_empty());
    assert_eq!(r.stats().retransmissions, 1);

    // Lower CSeq on the same Call-ID: out of order.
    let mut old = authed.clone();
    for h in &mut old.headers {
        if h.name == "CSeq" {
            h.value = "50 REGISTER".into();
        }
        if h.name == "Via" {
            h.value = h.value.replace("b2", "b9");
        }
    }
    // (re-use of nc=1 would be a replay first; give it a fresh authorization)
    let mut c2 = c.clone();
    let fresh = c2.register(3600, "b10", "c");
    old.headers.retain(|h| h.name != "Authorization");
    old.push_header("Authorization", fresh.header("Authorization").unwrap());
    let (resp, _) = roundtrip(&mut r, &dir, &old, t(2));
    assert_eq!(resp.unwrap().status(), Some(500));

    let opt = "OPTIONS sip:198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.50;branch=z9hG4bKo1\r\nFrom: <sip:ping@x>;tag=1\r\nTo: <sip:198.18.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let m = Message::parse(opt.as_bytes(), &Limits::default()).unwrap();
    let out = r.handle(&dir, &m, phone_addr(), Transport::Udp, t(3));
    let resp = out.response.unwrap();
    assert_eq!(resp.status(), Some(200));
    assert!(resp.header("Allow").unwrap().contains("REGISTER"));
    assert!(!resp.header("Via").unwrap().contains("received="));

    let inv = opt.replace("OPTIONS", "INVITE");
    let m = Message::parse(inv.as_bytes(), &Limits::default()).unwrap();
    let out = r.handle(&dir, &m, phone_addr(), Transport::Udp, t(3));
    assert_eq!(out.response.unwrap().status(), Some(405));

    for broken in [
        opt.replace("Call-ID: o1\r\n", ""),
        opt.replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER"),
        opt.replace("To: <sip:198.18.0.1>", "To: garbage"),
    ] {
        let m = Message::parse(broken.as_bytes(), &Limits::default()).unwrap();
        let out = r.handle(&dir, &m, phone_addr(), Transport::Udp, t(3));
        assert_eq!(out.response.unwrap().status(), Some(400), "{broken}");
    }
    let novia = opt.replace("Via: SIP/2.0/UDP 198.18.0.50;branch=z9hG4bKo1\r\n", "");
    let m = Message::parse(novia.as_bytes(), &Limits::default()).unwrap();
    assert!(r
        .handle(&dir, &m, phone_addr(), Transport::Udp, t(3))
        .response
        .is_none());
}

#[test]
fn unauthenticated_floods_are_rate_limited_per_source() {
    let (mut r, dir) = setup(RegistrarConfig {
        unauth_rate: 2.0,
        unauth_burst: 5.0,
        ..Default::default()
    });
    let mut c = client("1001", "auth1001", "s3cret");
    let mut answered = 0;
    for i in 0..20 {
        let req = c.register(3600, &format!("f{i}"), "c");
        if roundtrip(&mut r, &dir, &req, t(0)).0.is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, 5);
    assert_eq!(r.stats().rate_limited, 15);
    // Another source is not affected; and the bucket refills.
    let req = c.register(3600, "other", "c");
    let m = Message::parse(&req.encode(), &Limits::default()).unwrap();
    let out = r.handle(
        &dir,
        &m,
        "198.18.0.77:5060".parse().unwrap(),
        Transport::Udp,
        t(0),
    );
    assert_eq!(out.response.unwrap().status(), Some(401));
    let req = c.register(3600, "later", "c");
    assert!(roundtrip(&mut r, &dir, &req, t(1)).0.is_some());
}

#[test]
fn service_control_notify_goes_to_each_registered_flow() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut n = 0;
    let mut c1 = client("1001", "auth1001", "s3cret");
    let mut c2 = client("1002", "auth1002", "other");
    let mut cfg2 = c2.config().clone();
    cfg2.reg_id = 2;
    c2 = RegisterClient::new(cfg2);
    register(&mut r, &dir, &mut c1, 3600, t(0), &mut n);
    register(&mut r, &dir, &mut c2, 3600, t(0), &mut n);
    let stamps = VersionStamps {
        config: "1700000000-abc".into(),
        ..Default::default()
    };
    let out = r.service_control(
        "sep001b54aabbcc",
        ServiceAction::Restart,
        &stamps,
        "198.18.0.1:5060".parse().unwrap(),
        "tok1",
    );
    // Both lines come from the same flow: one NOTIFY.
    assert_eq!(out.len(), 1);
    let m = &out[0].message;
    assert_eq!(out[0].to, phone_addr());
    assert_eq!(m.header("Event"), Some("service-control"));
    let body = String::from_utf8(m.body.clone()).unwrap();
    assert!(body.starts_with("action=restart\r\n"), "{body}");
    assert!(body.contains("RegisterCallId={call-1001@198.18.0.50}"));
    assert!(body.contains("ConfigVersionStamp={1700000000-abc}"));
    let parsed = Message::parse(&m.encode(), &Limits::default()).unwrap();
    assert_eq!(&parsed, m);
    assert!(r
        .service_control(
            "SEP000000000000",
            ServiceAction::Reset,
            &stamps,
            phone_addr(),
            "t"
        )
        .is_empty());
    // The phone's 200 to the NOTIFY is recognised by branch.
    let resp = m.response(200, "OK");
    let o = r.handle(&dir, &resp, phone_addr(), Transport::Udp, t(1));
    assert_eq!(o.notify_response, Some((out[0].branch.clone(), 200)));
}

#[test]
fn response_target_follows_rport() {
    let src: SocketAddr = "198.18.0.9:40000".parse().unwrap();
    let with =
        "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5062;rport;branch=z9hG4bK1\r\n\r\n";
    let without = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n\r\n";
    let m = Message::parse(with.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(sip::response_target(&m, src), src);
    let m = Message::parse(without.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        sip::response_target(&m, src),
        "198.18.0.9:5062".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn config_validation() {
    assert!(RegistrarConfig::default().validate().is_ok());
    for bad in [
        RegistrarConfig {
            min_expires: 0,
            ..Default::default()
        },
        RegistrarConfig {
            min_expires: 4000,
            ..Default::default()
        },
        RegistrarConfig {
            realm: "a\"b".into(),
            ..Default::default()
        },
        RegistrarConfig {
            algorithms: vec![],
            ..Default::default()
        },
        RegistrarConfig {
            unauth_rate: f64::NAN,
            ..Default::default()
        },
    ] {
        assert!(Registrar::new(bad, [0; 32]).is_err());
    }
}

#[test]
fn service_control_forgets_expired_and_unregistered_lines() {
    let (mut r, dir) = setup(RegistrarConfig::default());
    let mut n = 0;
    let mut c1 = client("1001", "auth1001", "s3cret");
    register(&mut r, &dir, &mut c1, 60, t(0), &mut n);
    let stamps = VersionStamps::default();
    let local: SocketAddr = "198.18.0.1:5060".parse().unwrap();
    let notify = |r: &sip::registrar::Registrar| {
        r.service_control(
            "SEP001B54AABBCC",
            ServiceAction::Restart,
            &stamps,
            local,
            "t",
        )
        .len()
    };
    assert_eq!(notify(&r), 1);
    // Expired: gone from the device's lines too.
    assert_eq!(r.expire(t(3600)).len(), 1);
    assert_eq!(notify(&r), 0);
    // Registered again, then unregistered (Expires: 0).
    register(&mut r, &dir, &mut c1, 60, t(3700), &mut n);
    assert_eq!(notify(&r), 1);
    register(&mut r, &dir, &mut c1, 0, t(3701), &mut n);
    assert_eq!(notify(&r), 0);
}
