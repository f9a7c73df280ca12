//! Test helpers: the blocking HTTP/1.1 client shared with the lab's browser test
//! (`test_support::webdriver`) and a server harness running the admin router over the in-memory backend.
#![allow(dead_code, clippy::unwrap_used, clippy::while_let_loop)]

use std::net::SocketAddr;
use std::sync::Arc;

use admin::{AdminOptions, App, AuthOptions, AuthStore, LocalBus, MemoryBackend};

pub use test_support::webdriver::http;

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
