//! `server::run` on loopback: the admin REST API behind login changes the real device
//! database, and the file service serves the rebuilt configuration at once.
#![allow(clippy::unwrap_used)] // a test: a failed call is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close` (no client crate needed).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_creates_a_phone_whose_file_is_served_at_once() {
    rest_api_case(None).await;
}

/// The same node with its configuration in a real PostgreSQL (`[database] url`); the
/// device lands there, not in the node's SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_on_postgres_creates_a_phone_whose_file_is_served_at_once() {
    let pg = store::pgserver::PgServer::start_temp(&Default::default())
        .unwrap_or_else(|e| panic!("this test needs a real PostgreSQL: {e}"));
    pg.create_db("pb").unwrap();
    let url = pg.socket_url("pb");
    rest_api_case(Some(url.clone())).await;
    let s = store::PgStore::open(&url).unwrap();
    use store::Store;
    assert!(s.device("SEP001B54AABBCC").unwrap().is_some());
}

async fn rest_api_case(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let http_port = free_tcp();
    let tftp_port = free_udp();
    let text = format!(
        r#"
[node]
name = "cm-test"
address = "127.0.0.1"
database = "{db}"

[admin]
listen = "127.0.0.1:0"
initial_password = "correct horse battery"
{database}
[discovery]
run = false

[dhcp]
enabled = false

[files]
tftp_listen = "127.0.0.1:{tftp_port}"
http_listen = "127.0.0.1:{http_port}"

[sccp]
enabled = false

[sip]
enabled = false
"#,
        db = db.display(),
        database = database_url
            .map(|u| format!("[database]\nurl = \"{u}\"\n"))
            .unwrap_or_default(),
    );
    let config = config::Config::parse(&text).unwrap_or_else(|e| panic!("config: {e:?}"));
    let admin_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(server::run(config, admin_listener, shutdown));

    // Blocking HTTP calls run off the runtime's worker threads.
    let checks = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = TcpStream::connect(admin) {
                drop(s);
                if http(admin, "GET", "/healthz", &[], "").status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "admin listener never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The old views stay open; the REST API wants a login.
        let health = http(admin, "GET", "/healthz", &[], "").json();
        assert_eq!(health["node"], "cm-test");
        assert_eq!(http(admin, "GET", "/api/devices", &[], "").status, 401);

        let login = http(
            admin,
            "POST",
            "/api/login",
            &[],
            &json!({"username": "admin", "password": "correct horse battery"}).to_string(),
        );
        assert_eq!(login.status, 200, "{}", login.body);
        let csrf = login.json()["csrf_token"].as_str().unwrap().to_string();
        let cookie = login
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let auth = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

        // Before: no such file.
        let name = "SEP001B54AABBCC";
        let path = format!("/{name}.cnf.xml");
        let files = SocketAddr::from(([127, 0, 0, 1], http_port));
        assert_eq!(http(files, "GET", &path, &[], "").status, 404);

        let created = http(
            admin,
            "POST",
            "/api/devices",
            &auth,
            &json!({
                "mac": "00:1b:54:aa:bb:cc",
                "model": "7965",
                "protocol": "sccp",
                "description": "lobby",
                "device_pool": "Default",
                "lines": [{"dn": "1001", "label": "Lobby"}]
            })
            .to_string(),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        let d = created.json();
        assert_eq!(d["name"], name);
        assert_eq!(d["lines"][0]["dn"], "1001");

        // The file service serves the new phone's configuration straight away.
        let served = http(files, "GET", &path, &[], "");
        assert_eq!(served.status, 200, "{}", served.body);
        assert!(served.body.contains("<device"), "{}", served.body);
        assert!(served.body.contains("cm-test"), "{}", served.body);
        // And the API shows the same bytes.
        let listed = http(
            admin,
            "GET",
            &format!("/api/devices/{name}/files"),
            &auth,
            "",
        );
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert!(listed.body.contains(&format!("{name}.cnf.xml")));

        // A bad MAC is refused with the field named, and nothing is created.
        let bad = http(
            admin,
            "POST",
            "/api/devices",
            &auth,
            &json!({"mac": "00:1b:54:zz:bb:cc", "model": "7965", "device_pool": "Default"})
                .to_string(),
        );
        assert!(bad.status == 400 || bad.status == 422, "{}", bad.body);
        assert_eq!(bad.json()["error"]["field"], "mac", "{}", bad.body);

        // A store-side check (unknown pool) also names its field, and leaves no line behind.
        let bad = http(
            admin,
            "POST",
            "/api/devices",
            &auth,
            &json!({"mac": "00:1b:54:aa:bb:cd", "model": "7965", "device_pool": "Nowhere",
                    "lines": [{"dn": "1002"}]})
            .to_string(),
        );
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert_eq!(bad.json()["error"]["field"], "device_pool", "{}", bad.body);
        let lines = http(admin, "GET", "/api/lines", &auth, "");
        assert!(!lines.body.contains("1002"), "{}", lines.body);

        // Reset of a phone that is not registered: a conflict, not a crash.
        let reset = http(
            admin,
            "POST",
            &format!("/api/devices/{name}/actions/restart"),
            &auth,
            "",
        );
        assert_eq!(reset.status, 409, "{}", reset.body);
        // The unauthenticated CLI reset route keeps working too.
        let reset = http(
            admin,
            "POST",
            &format!("/api/devices/{name}/reset"),
            &[],
            "",
        );
        assert_eq!(reset.status, 409, "{}", reset.body);
    });
    let result = tokio::time::timeout(Duration::from_secs(30), checks).await;
    stop.send(true).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops on shutdown");
    result.expect("checks finish in time").expect("checks pass");
    served.unwrap().unwrap();
    assert!(server::bootlog_path(&db).exists());
    assert!(server::auth_path(&db).exists());
}
