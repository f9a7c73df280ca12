//! Real clients against the file service on 127.0.0.1:69 and :6970 inside a network
//! namespace this test creates: tftp-hpa's `tftp`, `atftp` (blksize, tsize, windowsize),
//! `curl tftp://` and `curl http://`. Needs root and those packages
//! (scripts/install-deps --test); the namespace is removed on drop, also on panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fileserver::{Config, Deps, File, MapSource, Sockets};
use journal::{EventKind, VecSink};
use tokio::process::Command;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace with only `lo`, deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> NetNs {
        let name = format!(
            "tftp{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip(8) is needed")
            .success();
        assert!(ok, "ip netns add {name} failed (root needed)");
        let ns = NetNs { name };
        let ok = std::process::Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        ns
    }

    /// Moves the calling thread into the namespace (sockets it creates from now on live
    /// there). Each test runs on its own thread, so this does not leak into other tests.
    fn enter_this_thread(&self) {
        let f = fs::File::open(format!("/var/run/netns/{}", self.name)).unwrap();
        // SAFETY: setns on a namespace fd we own; it changes only the calling thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns failed");
    }

    fn exec(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c.kill_on_drop(true);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

struct Fixture {
    ns: NetNs,
    dir: tempfile::TempDir,
    sep: Vec<u8>,
    big: Vec<u8>,
    exact: Vec<u8>,
    sink: Arc<VecSink>,
    server: fileserver::FileServer,
}

const SEP: &str = "SEP0011AABBCCDD.cnf.xml";

async fn fixture(ns: NetNs) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("English_United_States")).unwrap();
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let exact: Vec<u8> = (0..2048u32).map(|i| (i % 253) as u8).collect();
    fs::write(root.join("P0030801SR02.sbn"), &big).unwrap();
    fs::write(root.join("English_United_States/exact.bin"), &exact).unwrap();
    let mut sep = b"<?xml version=\"1.0\"?>\n<device>".to_vec();
    while sep.len() < 4096 - 10 {
        sep.extend_from_slice(b"<x>bench</x>");
    }
    sep.truncate(4096 - 10);
    sep.extend_from_slice(b"</device>\n");
    let generated = MapSource::new();
    generated.insert(SEP, File::new(sep.clone(), SystemTime::now()));
    let sink = VecSink::new();
    let cfg = Config {
        tftp_bind: Some("127.0.0.1:69".parse().unwrap()),
        http_bind: Some("127.0.0.1:6970".parse().unwrap()),
        root: Some(root),
        ..Config::default()
    };
    let sockets = Sockets::bind(&cfg).await.unwrap();
    let server = fileserver::spawn(
        cfg,
        sockets,
        Deps {
            source: Some(generated),
            sink: Some(sink.clone()),
            ..Deps::default()
        },
    )
    .unwrap();
    Fixture {
        ns,
        dir,
        sep,
        big,
        exact,
        sink,
        server,
    }
}

async fn run(mut c: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(20), c.output())
        .await
        .expect("client did not finish in 20 s")
        .expect("client could not be started")
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_default()
}

fn with_ns<F, Fut>(f: F)
where
    F: FnOnce(NetNs) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let ns = NetNs::new();
    ns.enter_this_thread();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f(ns));
}

#[test]
fn tftp_hpa_client() {
    with_ns(|ns| async move {
        let fx = fixture(ns).await;
        let out_dir = fx.dir.path();
        for (remote, want) in [
            (SEP.to_lowercase(), &fx.sep),
            ("P0030801SR02.sbn".to_string(), &fx.big),
            ("english_united_states/EXACT.bin".to_string(), &fx.exact),
        ] {
            let local = out_dir.join("hpa.out");
            let _ = fs::remove_file(&local);
            let mut c = fx.ns.exec("tftp");
            c.args(["127.0.0.1", "-m", "binary", "-c", "get", &remote])
                .arg(&local);
            let o = run(c).await;
            assert_eq!(&read(&local), want, "tftp-hpa get {remote}: {o:?}");
        }
        let local = out_dir.join("missing.out");
        let mut c = fx.ns.exec("tftp");
        c.args([
            "127.0.0.1",
            "-m",
            "binary",
            "-c",
            "get",
            "SEP000000000001.cnf.xml",
        ])
        .arg(&local);
        let o = run(c).await;
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            text.contains("Error code 1"),
            "tftp-hpa missing file: {text}"
        );
        let st = fx.server.stats();
        assert_eq!(st.tftp_served, 3);
        assert_eq!(st.tftp_missing, 1);
        // The journal got the SEP file (MAC from its name) and the missing SEP file.
        let j = fx.sink.events();
        assert!(j
            .iter()
            .any(|e| matches!(&e.kind, EventKind::FileServed { bytes: 4096, .. })));
        assert!(j
            .iter()
            .any(|e| matches!(&e.kind, EventKind::FileMissing { .. })));
    });
}

#[test]
fn atftp_client_with_options() {
    with_ns(|ns| async move {
        let fx = fixture(ns).await;
        let out_dir = fx.dir.path();
        for opts in [
            vec![],
            vec!["blksize 1428", "tsize 0"],
            vec!["blksize 1024", "tsize 0", "windowsize 4"],
            vec!["blksize 65464", "timeout 2"],
        ] {
            for (remote, want) in [
                ("P0030801SR02.sbn", &fx.big),
                (SEP, &fx.sep),
                ("English_United_States/exact.bin", &fx.exact),
            ] {
                let local = out_dir.join("atftp.out");
                let _ = fs::remove_file(&local);
                let mut c = fx.ns.exec("atftp");
                for o in &opts {
                    c.args(["--option", o]);
                }
                c.args(["-g", "-r", remote, "-l"])
                    .arg(&local)
                    .args(["127.0.0.1", "69"]);
                let o = run(c).await;
                assert_eq!(&read(&local), want, "atftp {opts:?} {remote}: {o:?}");
            }
        }
        let local = out_dir.join("atftp-missing.out");
        let mut c = fx.ns.exec("atftp");
        c.args(["--option", "blksize 1428", "-g", "-r", "nope.bin", "-l"])
            .arg(&local)
            .args(["127.0.0.1", "69"]);
        let o = run(c).await;
        let text =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success(), "atftp must fail on a missing file");
        assert!(text.to_lowercase().contains("not found"), "{text}");
    });
}

#[test]
fn curl_tftp_and_http() {
    with_ns(|ns| async move {
        let fx = fixture(ns).await;
        let out_dir = fx.dir.path();
        let local = out_dir.join("curl.out");
        for (url, extra, want) in [
            (format!("tftp://127.0.0.1/{SEP}"), vec![], &fx.sep),
            (
                "tftp://127.0.0.1/P0030801SR02.sbn".to_string(),
                vec!["--tftp-blksize", "1428"],
                &fx.big,
            ),
            (
                "tftp://127.0.0.1/English_United_States/exact.bin".to_string(),
                vec!["--tftp-no-options"],
                &fx.exact,
            ),
            (format!("http://127.0.0.1:6970/{SEP}"), vec![], &fx.sep),
            (
                "http://127.0.0.1:6970/p0030801sr02.SBN".to_string(),
                vec![],
                &fx.big,
            ),
        ] {
            let _ = fs::remove_file(&local);
            let mut c = fx.ns.exec("curl");
            c.args(["-sS", "--max-time", "10", "-o"])
                .arg(&local)
                .args(&extra)
                .arg(&url);
            let o = run(c).await;
            assert!(o.status.success(), "curl {url}: {o:?}");
            assert_eq!(&read(&local), want, "curl {url}");
        }
        // Missing over TFTP: curl's "TFTP: File Not Found" (exit 68).
        let mut c = fx.ns.exec("curl");
        c.args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "tftp://127.0.0.1/missing.xml",
        ]);
        let o = run(c).await;
        assert_eq!(o.status.code(), Some(68), "{o:?}");
        // Missing over HTTP: 404; conditional GET: 304.
        let mut c = fx.ns.exec("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:6970/missing.xml",
        ]);
        assert_eq!(run(c).await.stdout, b"404");
        let mut c = fx.ns.exec("curl");
        c.args(["-s", "-D", "-", "-o", "/dev/null"])
            .arg(format!("http://127.0.0.1:6970/{SEP}"));
        let headers = String::from_utf8(run(c).await.stdout).unwrap();
        let etag = headers
            .lines()
            .find_map(|l| {
                l.strip_prefix("etag: ")
                    .or_else(|| l.strip_prefix("ETag: "))
            })
            .expect("an ETag header")
            .trim()
            .to_string();
        assert!(
            headers.to_lowercase().contains("content-length: 4096"),
            "{headers}"
        );
        let mut c = fx.ns.exec("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("If-None-Match: {etag}"))
            .arg(format!("http://127.0.0.1:6970/{SEP}"));
        assert_eq!(run(c).await.stdout, b"304");
        let st = fx.server.stats();
        assert_eq!(st.tftp_served, 3);
        assert_eq!(st.http_served, 3);
        assert_eq!(st.http_not_modified, 1);
    });
}
