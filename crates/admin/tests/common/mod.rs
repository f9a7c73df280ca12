//! Test helpers: a tiny blocking HTTP/1.1 client (for the API and for chromedriver) and a
//! server harness running the admin router over the in-memory backend.
#![allow(dead_code, clippy::unwrap_used, clippy::while_let_loop)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use admin::{AdminOptions, App, AuthOptions, AuthStore, LocalBus, MemoryBackend};

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // Read until the headers end, then Content-Length bytes (or to EOF without one): some
    // servers (chromedriver) keep the connection open despite `Connection: close`.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        raw.extend_from_slice(&buf[..n]);
    };
    let head_lc = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let len = head_lc
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match len {
        Some(len) => {
            while raw.len() < split + 4 + len {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            let _ = s.read_to_end(&mut raw);
        }
    }
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let Some(p) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..p]).unwrap().trim(), 16)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[p + 2 + n + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub const PASSWORD: &str = "test-admin-password";

pub struct Harness {
    pub addr: SocketAddr,
    pub backend: Arc<MemoryBackend>,
    pub ris: Arc<ris::Ris>,
    pub bus: Arc<LocalBus>,
    pub app: Arc<App>,
    pub rt: tokio::runtime::Runtime,
}

impl Harness {
    pub fn start(options: AdminOptions) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let backend = Arc::new(MemoryBackend::new());
        let ris = Arc::new(ris::Ris::new());
        let bus = LocalBus::new(1000);
        let bootlog = Arc::new(bootlog::BootLog::in_memory(bootlog::Limits::default()).unwrap());
        let auth = Arc::new(AuthStore::in_memory(AuthOptions::default()).unwrap());
        auth.ensure_admin(Some(PASSWORD)).unwrap();
        let (app, addr) = rt.block_on(async {
            let app = App::start(
                backend.clone(),
                ris.clone(),
                bus.clone(),
                bootlog,
                auth,
                options,
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = app.router();
            tokio::spawn(async move { axum::serve(listener, router).await });
            (app, addr)
        });
        Harness {
            addr,
            backend,
            ris,
            bus,
            app,
            rt,
        }
    }

    /// Logs in; returns (cookie header value, csrf token).
    pub fn login(&self, user: &str, password: &str) -> (String, String) {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let r = http(
            self.addr,
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        (cookie, r.json()["csrf_token"].as_str().unwrap().to_string())
    }
}
