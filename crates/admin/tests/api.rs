//! The REST API over a real socket: auth and roles, CSRF, validation naming fields, failed
//! writes changing nothing, oversized bodies, the journal and its diagnosis, SSE, metrics.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use admin::{AdminOptions, Role};
use common::{http, Harness, PASSWORD};
use journal::{Event, EventKind, EventSink, Protocol, Transport};
use serde_json::json;

fn phone() -> serde_json::Value {
    json!({"mac": "00:1b:54:aa:bb:cc", "model": "CP-7841", "device_pool": "Default",
           "description": "Lobby", "lines": [{"dn": "1001", "label": "Lobby"}]})
}

#[test]
fn auth_roles_csrf_and_validation() {
    let h = Harness::start(AdminOptions::default());
    let a = h.addr;
    // Nothing without a login.
    let r = http(a, "GET", "/api/devices", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    // Wrong password names the field.
    let r = http(
        a,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        json!({"username": "admin", "password": "nope"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["field"], "password");

    let (cookie, csrf) = h.login("admin", PASSWORD);
    // A cookie write without the CSRF token is refused and changes nothing.
    let mut hdrs = vec![
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
    ];
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        phone().to_string().as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "csrf");
    hdrs.push(("X-CSRF-Token", &csrf));
    let r = http(a, "GET", "/api/devices", &hdrs, b"");
    assert_eq!(r.json(), json!([]));

    // Validation: every bad field named, nothing created.
    let bad = json!({"mac": "00:1b:54:aa:bb:cc", "model": "CP 7841!", "device_pool": "Nope",
                     "lines": [{"dn": "10a1"}]});
    let r = http(a, "POST", "/api/devices", &hdrs, bad.to_string().as_bytes());
    assert_eq!(r.status, 422, "{}", r.text());
    let fields: Vec<String> = r.json()["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, vec!["model", "device_pool", "lines[0].dn"]);
    // Type errors name the field too.
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        br#"{"model": 5, "device_pool": "Default"}"#,
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "model", "{}", r.text());
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        br#"{"device_pool": "Default"}"#,
    );
    assert_eq!(r.json()["error"]["field"], "model", "{}", r.text());
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        br#"{"model":"CP-7841","device_pool":"Default","colour":"red"}"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(h.backend.list_devices_len(), 0);

    // Create, then a bad update leaves it as it was.
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        phone().to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "SEP001B54AABBCC");
    let r = http(
        a,
        "POST",
        "/api/devices",
        &hdrs,
        phone().to_string().as_bytes(),
    );
    assert_eq!(r.status, 409);
    let mut upd = phone();
    upd["lines"] = json!([{"dn": "1001"}, {"dn": "1002", "index": 1}]);
    let r = http(
        a,
        "PUT",
        "/api/devices/SEP001B54AABBCC",
        &hdrs,
        upd.to_string().as_bytes(),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "lines[1].index");
    let r = http(a, "GET", "/api/devices/sep001b54aabbcc", &hdrs, b"");
    assert_eq!(r.json()["lines"].as_array().unwrap().len(), 1);

    // Read-only users and tokens read but never write.
    h.app
        .auth
        .create_user("viewer", "viewer-password", Role::ReadOnly)
        .unwrap();
    let (vc, vcsrf) = h.login("viewer", "viewer-password");
    let vh = [
        ("Content-Type", "application/json"),
        ("Cookie", vc.as_str()),
        ("X-CSRF-Token", vcsrf.as_str()),
    ];
    assert_eq!(http(a, "GET", "/api/phones", &vh, b"").status, 200);
    let r = http(a, "DELETE", "/api/devices/SEP001B54AABBCC", &vh, b"");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let r = http(
        a,
        "POST",
        "/api/tokens",
        &hdrs,
        br#"{"name":"grafana","role":"read_only"}"#,
    );
    assert_eq!(r.status, 201);
    let bearer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let th = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(http(a, "GET", "/api/devices", &th, b"").status, 200);
    assert_eq!(
        http(a, "DELETE", "/api/devices/SEP001B54AABBCC", &th, b"").status,
        403
    );

    // Actions reach the backend.
    let r = http(
        a,
        "POST",
        "/api/devices/SEP001B54AABBCC/actions/reset",
        &hdrs,
        b"",
    );
    assert_eq!(r.status, 202);
    let r = http(
        a,
        "POST",
        "/api/devices/SEP001B54AABBCC/actions/explode",
        &hdrs,
        b"",
    );
    assert_eq!(r.json()["error"]["field"], "action");
    assert_eq!(h.backend.actions().len(), 1);

    // Oversized bodies are refused.
    let big = vec![b' '; 2 << 20];
    let r = http(a, "POST", "/api/devices", &hdrs, &big);
    assert_eq!(r.status, 413, "{}", r.text());

    // CSV: one bad row rejects the whole import.
    let csv_h = [
        ("Content-Type", "text/csv"),
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let r = http(
        a,
        "POST",
        "/api/import",
        &csv_h,
        b"mac,model,line1_dn\n001B54000001,CP-8845,2001\nzz,CP-8845,2002\n",
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "csv.row[3].mac", "{}", r.text());
    assert_eq!(h.backend.list_devices_len(), 1);
    let r = http(
        a,
        "POST",
        "/api/import",
        &csv_h,
        b"mac,model,line1_dn\n001B54000001,CP-8845,2001\n",
    );
    assert_eq!(r.json()["created"], 1);
    let r = http(a, "GET", "/api/export", &hdrs, b"");
    assert!(
        r.text()
            .contains("SEP001B54000001,00:1b:54:00:00:01,CP-8845"),
        "{}",
        r.text()
    );

    // Session ends at logout.
    assert_eq!(http(a, "POST", "/api/logout", &hdrs, b"").status, 204);
    assert_eq!(http(a, "GET", "/api/devices", &hdrs, b"").status, 401);

    // The OpenAPI document lists the endpoints.
    let (cookie, _) = h.login("admin", PASSWORD);
    let r = http(
        a,
        "GET",
        "/api/openapi.json",
        &[("Cookie", cookie.as_str())],
        b"",
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/devices/{name}"]["put"].is_object());
}

trait Count {
    fn list_devices_len(&self) -> usize;
}
impl Count for admin::MemoryBackend {
    fn list_devices_len(&self) -> usize {
        use admin::AdminBackend;
        self.list_devices().map(|d| d.len()).unwrap_or(usize::MAX)
    }
}

#[test]
fn journal_diagnosis_sse_and_metrics() {
    let h = Harness::start(AdminOptions::default());
    let a = h.addr;
    let (cookie, _) = h.login("admin", PASSWORD);
    let ch = [("Cookie", cookie.as_str())];
    let mac: journal::Mac = "00:1b:54:aa:bb:cc".parse().unwrap();
    let t0 = SystemTime::now() - Duration::from_secs(600);

    // Subscribe to the live stream before the events flow.
    let addr = a;
    let cookie2 = cookie.clone();
    let sse = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /api/journal/stream?phone=SEP001B54AABBCC HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie2}\r\n\r\n").unwrap();
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while !got.contains("dhcp_ack") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        got
    });
    std::thread::sleep(Duration::from_millis(300));
    let ev = |s: u64, kind| Event::server(t0 + Duration::from_secs(s), mac, kind);
    h.bus
        .emit(ev(0, EventKind::DhcpDiscover { vendor_class: None }));
    h.bus.emit(ev(
        1,
        EventKind::DhcpAck {
            ip: Ipv4Addr::new(198, 18, 100, 10),
            lease_secs: 3600,
            tftp_servers: vec![],
            vendor_class: None,
        },
    ));
    h.bus.emit(ev(
        2,
        EventKind::FileMissing {
            name: "SEP001B54AABBCC.cnf.xml".into(),
            transport: Transport::Tftp,
        },
    ));
    let got = sse.join().unwrap();
    assert!(got.contains("event: boot"), "{got}");
    assert!(got.contains("dhcp_ack"), "{got}");

    // The journal is written in the background; wait for it (bounded).
    let mut j = serde_json::Value::Null;
    for _ in 0..100 {
        j = http(a, "GET", "/api/journal/SEP001B54AABBCC", &ch, b"").json();
        if j["timeline"]["entries"].as_array().map(|e| e.len()) == Some(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(j["timeline"]["outcome"], "stalled", "{j}");
    let cause = j["timeline"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("not provisioned and auto-registration is off"),
        "{cause}"
    );
    assert!(j["trace"].as_str().unwrap().contains("STALLED at files"));
    let r = http(a, "GET", "/api/journal/not-a-mac", &ch, b"");
    assert_eq!(r.json()["error"]["field"], "phone");

    // Registered by RIS: counted in metrics without per-MAC labels.
    h.bus.emit(ev(
        5,
        EventKind::Registered {
            protocol: Protocol::Sccp,
            node: "cm1".into(),
            from: None,
            detail: "v20".into(),
        },
    ));
    h.ris.register(ris::Registration {
        device: "SEP001B54AABBCC".into(),
        line: None,
        protocol: Protocol::Sccp,
        node: "cm1".into(),
        from: "198.18.100.10:50000".parse().unwrap(),
        since: SystemTime::now(),
        last_seen: SystemTime::now(),
        expires: None,
        detail: "v20".into(),
        model: Some("CP-7841".into()),
    });
    std::thread::sleep(Duration::from_millis(200));
    let m = http(a, "GET", "/metrics", &[], b"").text();
    assert!(
        m.contains("phoneboot_registered_phones{protocol=\"sccp\",model=\"CP-7841\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("phoneboot_files_missing_total{transport=\"tftp\",kind=\"config\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("phoneboot_dhcp_acks_without_option150_total 1"),
        "{m}"
    );
    assert!(
        m.contains("phoneboot_boot_step_seconds_bucket{step=\"registration\",le=\"5\"} 1"),
        "{m}"
    );
    assert!(!m.contains("00:1b:54"), "no per-MAC labels");
    let live = http(a, "GET", "/api/live", &ch, b"").json();
    assert_eq!(live["counts"]["registered"], 1, "{live}");
}

#[test]
fn login_token_for_the_cli_has_the_users_role() {
    let h = Harness::start(AdminOptions::default());
    let a = h.addr;
    let post = |body: serde_json::Value| {
        http(
            a,
            "POST",
            "/api/login/token",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    // A wrong password names the field and issues nothing.
    let r = post(json!({"username": "admin", "password": "nope-nope-nope"}));
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["fields"][0]["field"], "password");
    // An unknown field is refused by name.
    let r = post(json!({"username": "admin", "password": PASSWORD, "colour": "red"}));
    assert!(r.status == 400 || r.status == 422, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "colour", "{}", r.text());
    // The admin gets an admin token, which writes without CSRF (no cookie involved).
    let r = post(json!({"username": "admin", "password": PASSWORD, "label": "cli@host"}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "no session is handed out");
    let v = r.json();
    assert_eq!(v["role"], "admin");
    assert_eq!(v["name"], "admin (cli@host)");
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = http(
        a,
        "POST",
        "/api/devices",
        &auth,
        phone().to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = http(a, "GET", "/api/tokens", &auth, b"");
    assert!(r.text().contains("admin (cli@host)"), "{}", r.text());
    // A read-only user's token reads but cannot write.
    h.app
        .auth
        .create_user("viewer", "viewer-password", Role::ReadOnly)
        .unwrap();
    let r = post(json!({"username": "viewer", "password": "viewer-password"}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["role"], "read_only");
    let bearer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(http(a, "GET", "/api/devices", &auth, b"").status, 200);
    let r = http(a, "DELETE", "/api/devices/SEP001B54AABBCC", &auth, b"");
    assert_eq!(r.status, 403, "{}", r.text());
}
