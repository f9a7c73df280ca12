//! Headless Chromium over the WebDriver protocol (Debian's `chromium` + `chromium-driver`),
//! and the tiny blocking HTTP/1.1 client it speaks through — shared by the admin crate's UI
//! test (in-memory backend) and the lab's end-to-end browser test (a real `phoneboot serve`).
//!
//! Everything here panics on failure: it is test code, and a panic is the test's verdict.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian (`chromium-driver`) and Ubuntu (`chromium-chromedriver`, the snap) put
/// chromedriver, first match wins; `PHONEBOOT_CHROMEDRIVER` overrides.
pub const CHROMEDRIVER_PATHS: &[&str] = &[
    "/usr/bin/chromedriver",
    "/usr/lib/chromium/chromedriver",
    "/usr/lib/chromium-browser/chromedriver",
    "/snap/bin/chromium.chromedriver",
];
/// Where Debian (`chromium`) and Ubuntu (`chromium-browser`, the snap) put the browser;
/// `PHONEBOOT_CHROMIUM` overrides.
pub const CHROMIUM_PATHS: &[&str] = &[
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium-browser",
    "/usr/lib/chromium-browser/chromium-browser",
    "/snap/bin/chromium",
];
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find(env: &str, paths: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// The chromedriver executable, if installed.
pub fn chromedriver() -> Option<PathBuf> {
    find("PHONEBOOT_CHROMEDRIVER", CHROMEDRIVER_PATHS)
}

/// The chromium executable, if installed.
pub fn chromium() -> Option<PathBuf> {
    find("PHONEBOOT_CHROMIUM", CHROMIUM_PATHS)
}

/// Why a browser test cannot run here (`None`: it can).
pub fn browser_missing() -> Option<String> {
    if chromedriver().is_none() {
        return Some(format!(
            "chromedriver is not in any of {CHROMEDRIVER_PATHS:?}: apt-get install chromium-driver \
             (Ubuntu: chromium-chromedriver)"
        ));
    }
    if chromium().is_none() {
        return Some(format!(
            "chromium is not in any of {CHROMIUM_PATHS:?}: apt-get install chromium \
             (Ubuntu: chromium-browser)"
        ));
    }
    None
}

/// An HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
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

/// One request on a fresh connection (`Connection: close`).
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
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..p]).unwrap().trim(), 16)
                .unwrap_or(0);
            if n == 0 || rest.len() < p + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[(p + 2 + n + 2).min(rest.len())..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// chromedriver and its browser, killed on drop (also on panic).
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
    profile: tempfile::TempDir,
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
        let marker = self.profile.path().display().to_string();
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
    /// Starts chromedriver and a headless browser session; screenshots go to `shots`.
    pub fn start(shots: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver().expect("chromedriver installed"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
            shots: shots.to_path_buf(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium().expect("chromium installed"), "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,900",
                format!("--user-data-dir={}", d.profile.path().display())]}}}});
        let r = d.cmd("POST", "/session", caps);
        d.session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        d
    }

    /// Where screenshots go.
    pub fn shots(&self) -> &Path {
        &self.shots
    }

    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
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

    pub fn go(&self, url: &str) {
        self.cmd("POST", &self.s("/url"), json!({"url": url}));
    }

    pub fn find(&self, css: &str) -> Option<String> {
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

    /// Waits (bounded, 15 s) for an element.
    pub fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element's text; empty when it vanished meanwhile (pages re-render).
    pub fn text(&self, css: &str) -> String {
        let e = self.wait(css);
        let body = http(
            self.addr,
            "GET",
            &self.s(&format!("/element/{e}/text")),
            &[],
            b"",
        );
        body.json()["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (bounded, 15 s) until the element's text contains `want`.
    pub fn wait_text(&self, css: &str, want: &str) -> String {
        self.wait_text_for(css, want, Duration::from_secs(15))
    }

    /// Waits (bounded by `within`) until the element's text contains `want`.
    pub fn wait_text_for(&self, css: &str, want: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
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

    /// Clicks the element `css` selects. A live page re-renders rows while it is being
    /// driven (the phone list follows registrations), so an element that went stale between
    /// finding and clicking is found again, a few times, before the test fails.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let e = self.wait(css);
            let path = self.s(&format!("/element/{e}/click"));
            let r = http(
                self.addr,
                "POST",
                &path,
                &[("Content-Type", "application/json")],
                b"{}",
            );
            if r.status == 200 {
                return;
            }
            if r.json()["value"]["error"] != "stale element reference" {
                panic!("webdriver POST {path}: {} {}", r.status, r.text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{css}: still stale after 5 tries");
    }

    pub fn typ(&self, css: &str, text: &str) {
        let e = self.wait(css);
        self.cmd("POST", &self.s(&format!("/element/{e}/clear")), json!({}));
        self.cmd(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            json!({"text": text}),
        );
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub fn exec(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            &self.s("/execute/sync"),
            json!({"script": script, "args": []}),
        )
    }

    /// Saves the viewport as `<shots>/<name>.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", &self.s("/screenshot"), Value::Null);
        let png = base64_decode(b64.as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        std::fs::create_dir_all(&self.shots).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// `<target dir>/screenshots[/sub]`: `CARGO_TARGET_DIR` when set, else the workspace's `target`.
pub fn screenshot_dir(sub: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    if sub.is_empty() {
        dir
    } else {
        dir.join(sub)
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes_padding_and_png_magic() {
        assert_eq!(super::base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
        assert_eq!(super::base64_decode("YWJj"), b"abc");
    }
}

#[cfg(test)]
mod paths {
    use super::*;

    #[test]
    fn debian_and_ubuntu_locations_are_searched() {
        for p in [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/snap/bin/chromium",
        ] {
            assert!(CHROMIUM_PATHS.contains(&p), "{p}");
        }
        for p in [
            "/usr/bin/chromedriver",
            "/usr/lib/chromium-browser/chromedriver",
        ] {
            assert!(CHROMEDRIVER_PATHS.contains(&p), "{p}");
        }
        // An override naming an existing file is used (sh stands in for the browser).
        std::env::set_var("PHONEBOOT_CHROMIUM", "/bin/sh");
        assert_eq!(chromium(), Some(PathBuf::from("/bin/sh")));
        std::env::remove_var("PHONEBOOT_CHROMIUM");
    }
}
