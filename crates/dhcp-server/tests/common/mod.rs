//! Test harness: namespaces + veth, the server on a thread inside a namespace.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use dhcp::{DhcpConfig, PoolConfig};
use dhcp_server::{RunReport, ServerConfig};
use journal::{EventKind, SharedSink, VecSink};

pub fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?} failed");
}

/// Two namespaces joined by a veth pair; removed on drop (also on panic).
pub struct Lab {
    pub srv_ns: String,
    pub cli_ns: String,
    pub srv_if: String,
    pub cli_if: String,
    pub net: u8,
}

impl Lab {
    pub fn new(tag: char, net: u8) -> Lab {
        let pid = std::process::id() % 1_000_000;
        let lab = Lab {
            srv_ns: format!("dhcp-{pid}-{tag}-s"),
            cli_ns: format!("dhcp-{pid}-{tag}-c"),
            srv_if: format!("dhs{tag}{pid}"),
            cli_if: format!("dhc{tag}{pid}"),
            net,
        };
        sh(&["ip", "netns", "add", &lab.srv_ns]);
        sh(&["ip", "netns", "add", &lab.cli_ns]);
        sh(&[
            "ip",
            "link",
            "add",
            &lab.srv_if,
            "type",
            "veth",
            "peer",
            "name",
            &lab.cli_if,
        ]);
        sh(&["ip", "link", "set", &lab.srv_if, "netns", &lab.srv_ns]);
        sh(&["ip", "link", "set", &lab.cli_if, "netns", &lab.cli_ns]);
        let srv_addr = format!("198.18.{net}.1/24");
        sh(&[
            "ip",
            "-n",
            &lab.srv_ns,
            "addr",
            "add",
            &srv_addr,
            "dev",
            &lab.srv_if,
        ]);
        for (ns, i) in [(&lab.srv_ns, &lab.srv_if), (&lab.cli_ns, &lab.cli_if)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", i, "up"]);
        }
        lab
    }

    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, host)
    }

    pub fn config(&self, db: &Path) -> ServerConfig {
        let mut p = PoolConfig::new(
            "voice",
            format!("198.18.{}.0/24", self.net).parse().unwrap(),
            self.ip(100),
            self.ip(150),
        );
        p.interface = Some(self.srv_if.clone());
        p.routers = vec![self.ip(1)];
        p.dns = vec![self.ip(1)];
        p.lease_secs = 120;
        // Short T1/T2 so clients renew within the test.
        p.renew_secs = Some(2);
        p.rebind_secs = Some(100);
        let mut d = DhcpConfig::new(vec![p]);
        d.default_tftp_servers = vec![self.ip(5), self.ip(6)];
        ServerConfig::new(db.to_path_buf(), d)
    }

    /// A command run inside the client namespace.
    pub fn cli(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.cli_ns, prog]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.srv_ns, &self.cli_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The server, running on its own thread inside the server namespace.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<RunReport, dhcp_server::Error>>>,
}

impl Server {
    pub fn start(lab: &Lab, cfg: ServerConfig, sink: SharedSink) -> Server {
        Self::start_with(lab, cfg, sink, None)
    }

    /// Starts with `store` instead of the SQLite file of `cfg`.
    pub fn start_with(
        lab: &Lab,
        cfg: ServerConfig,
        sink: SharedSink,
        store: Option<Box<dyn dhcp::LeaseStore>>,
    ) -> Server {
        let ns = fs::File::open(format!("/var/run/netns/{}", lab.srv_ns)).unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on this thread only moves this thread into the namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = ready_tx.send(());
            let stop = async move {
                let _ = rx.await;
            };
            match store {
                Some(st) => rt.block_on(dhcp_server::run_with_store(cfg, st, sink, None, stop)),
                None => rt.block_on(dhcp_server::run(cfg, sink, None, stop)),
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // Sockets are bound right after start; give the task a moment.
        std::thread::sleep(Duration::from_millis(200));
        Server {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> RunReport {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Waits until `f` holds, at most `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

pub fn count(sink: &VecSink, f: impl Fn(&EventKind) -> bool) -> usize {
    sink.events().iter().filter(|e| f(&e.kind)).count()
}

pub fn acks(sink: &VecSink) -> usize {
    count(sink, |k| matches!(k, EventKind::DhcpAck { .. }))
}

pub fn releases(sink: &VecSink) -> usize {
    count(sink, |k| matches!(k, EventKind::DhcpRelease { .. }))
}

pub fn script(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("hook.sh");
    fs::write(&p, format!("#!/bin/sh\n{body}\nexit 0\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Kills a child we started, by its pid.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A UDP socket created inside namespace `ns` (a socket keeps the namespace it was made in).
pub fn socket_in(ns: &str, bind: std::net::SocketAddr) -> std::net::UdpSocket {
    let f = fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns on this short-lived thread only.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0);
        std::net::UdpSocket::bind(bind).unwrap()
    })
    .join()
    .unwrap()
}
