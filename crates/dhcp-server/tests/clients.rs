//! Real DHCP clients (ISC dhclient, busybox udhcpc, dhcpcd) against the server, across a veth
//! pair between two network namespaces this test creates. Each client requests option 150 and
//! must get address, mask, router and the ordered TFTP list, then renew and release.
//!
//! Needs root and the Debian packages isc-dhcp-client, udhcpc, dhcpcd-base. Skips (with a
//! message) when not root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dhcp::{DhcpConfig, PoolConfig};
use dhcp_server::{RunReport, ServerConfig};
use journal::{EventKind, SharedSink, VecSink};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?} failed");
}

/// Two namespaces joined by a veth pair; removed on drop (also on panic).
struct Lab {
    srv_ns: String,
    cli_ns: String,
    srv_if: String,
    cli_if: String,
    net: u8,
}

impl Lab {
    fn new(tag: char, net: u8) -> Lab {
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

    fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, host)
    }

    fn config(&self, db: &Path) -> ServerConfig {
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
    fn cli(&self, prog: &str) -> Command {
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
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<RunReport>>>,
}

impl Server {
    fn start(lab: &Lab, cfg: ServerConfig, sink: SharedSink) -> Server {
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
            rt.block_on(dhcp_server::run(cfg, sink, None, async move {
                let _ = rx.await;
            }))
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // Sockets are bound right after start; give the task a moment.
        std::thread::sleep(Duration::from_millis(200));
        Server {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> RunReport {
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
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn count(sink: &VecSink, f: impl Fn(&EventKind) -> bool) -> usize {
    sink.events().iter().filter(|e| f(&e.kind)).count()
}

fn acks(sink: &VecSink) -> usize {
    count(sink, |k| matches!(k, EventKind::DhcpAck { .. }))
}

fn releases(sink: &VecSink) -> usize {
    count(sink, |k| matches!(k, EventKind::DhcpRelease { .. }))
}

fn script(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("hook.sh");
    fs::write(&p, format!("#!/bin/sh\n{body}\nexit 0\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Kills a child we started, by its pid.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn dhclient_gets_renews_and_releases() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new('a', 101);
    let sink = VecSink::new();
    let srv = Server::start(&lab, lab.config(&dir.path().join("db")), sink.clone());
    let out = dir.path().join("env.log");
    let hook = script(
        dir.path(),
        &format!(
            r#"echo "$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers tftp=$new_tftp150" >> {out}
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac"#,
            out = out.display()
        ),
    );
    let conf = dir.path().join("dhclient.conf");
    fs::write(
        &conf,
        "option tftp150 code 150 = array of ip-address;\n\
         request subnet-mask, routers, domain-name-servers, tftp150;\n\
         timeout 15; retry 1; initial-interval 1;\n",
    )
    .unwrap();
    let (lf, pf) = (dir.path().join("leases"), dir.path().join("pid"));
    let args = |extra: &[&str]| {
        let mut c = lab.cli("dhclient");
        c.args(["-4", "-v"]).args(extra).args([
            "-cf",
            conf.to_str().unwrap(),
            "-sf",
            hook.to_str().unwrap(),
            "-lf",
            lf.to_str().unwrap(),
            "-pf",
            pf.to_str().unwrap(),
            &lab.cli_if,
        ]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    // -1: one attempt; on success dhclient goes to the background and keeps renewing.
    let st = args(&["-1"]).status().unwrap();
    assert!(st.success(), "dhclient got no lease");
    let log = read(&out);
    let bound = log.lines().find(|l| l.starts_with("BOUND")).expect(&log);
    assert!(bound.contains(&format!("ip={}", lab.ip(100))), "{bound}");
    assert!(bound.contains("mask=255.255.255.0"), "{bound}");
    assert!(bound.contains(&format!("routers={}", lab.ip(1))), "{bound}");
    assert!(
        bound.contains(&format!("tftp={} {}", lab.ip(5), lab.ip(6))),
        "{bound}"
    );
    // T1 is 2 s: dhclient renews by unicast.
    wait_for(15, "a RENEW ACK", || acks(&sink) >= 2);
    wait_for(5, "the client's RENEW hook", || {
        read(&out).contains("RENEW")
    });
    // Release (dhclient -r stops the daemon and sends DHCPRELEASE).
    let st = args(&["-r"]).status().unwrap();
    assert!(st.success());
    wait_for(5, "a RELEASE", || releases(&sink) >= 1);
    let report = srv.stop();
    assert!(report.engine.acks >= 2);
    assert_eq!(
        report
            .io
            .withheld_replies
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn udhcpc_gets_renews_and_releases() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new('b', 102);
    let sink = VecSink::new();
    let srv = Server::start(&lab, lab.config(&dir.path().join("db")), sink.clone());
    let out = dir.path().join("env.log");
    let hook = script(
        dir.path(),
        &format!(
            r#"echo "$1 ip=$ip mask=$subnet router=$router opt150=$opt150" >> {out}
case "$1" in
  bound|renew) ip addr replace "$ip/$subnet" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac"#,
            out = out.display()
        ),
    );
    let mut child = lab
        .cli("udhcpc")
        .args(["-f", "-i", &lab.cli_if, "-s", hook.to_str().unwrap()])
        .args(["-O", "150", "-t", "5", "-T", "1", "-A", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(15, "udhcpc bound", || read(&out).contains("bound"));
    let log = read(&out);
    let bound = log.lines().find(|l| l.starts_with("bound")).expect(&log);
    assert!(bound.contains(&format!("ip={}", lab.ip(100))), "{bound}");
    assert!(bound.contains("mask=255.255.255.0"), "{bound}");
    assert!(bound.contains(&format!("router={}", lab.ip(1))), "{bound}");
    // busybox prints unknown options as hex: 198.18.102.5, 198.18.102.6.
    assert!(
        bound.contains("opt150=c612660 5c6126606") || bound.contains("opt150=c6126605c6126606"),
        "{bound}"
    );
    // `ip netns exec` execs udhcpc in place, so the child's pid is udhcpc's.
    let pid = child.id() as i32;
    // SAFETY: signalling a child process we spawned.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    wait_for(10, "a RENEW ACK", || acks(&sink) >= 2);
    wait_for(5, "the renew hook", || read(&out).contains("renew"));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGUSR2) };
    wait_for(5, "a RELEASE", || releases(&sink) >= 1);
    kill(&mut child);
    let report = srv.stop();
    assert!(report.engine.acks >= 2);
}

#[test]
fn dhcpcd_gets_renews_and_releases() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new('c', 103);
    let sink = VecSink::new();
    let srv = Server::start(&lab, lab.config(&dir.path().join("db")), sink.clone());
    let out = dir.path().join("env.log");
    let hook = script(
        dir.path(),
        &format!(
            r#"echo "$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers tftp=$new_tftp150" >> {out}"#,
            out = out.display()
        ),
    );
    let conf = dir.path().join("dhcpcd.conf");
    fs::write(
        &conf,
        "define 150 array ipaddress tftp150\n\
         option tftp150, subnet_mask, routers, domain_name_servers\n\
         noipv4ll\nnoarp\nnoipv6rs\nipv4only\nclientid\nnohook resolv.conf\n",
    )
    .unwrap();
    let base = |extra: &[&str]| {
        let mut c = lab.cli("dhcpcd");
        c.args([
            "-4",
            "-f",
            conf.to_str().unwrap(),
            "-c",
            hook.to_str().unwrap(),
        ])
        .args(extra)
        .arg(&lab.cli_if)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let mut child = base(&["-B", "-t", "15"]).spawn().unwrap();
    wait_for(15, "dhcpcd bound", || read(&out).contains("BOUND"));
    let log = read(&out);
    let bound = log.lines().find(|l| l.starts_with("BOUND")).expect(&log);
    assert!(bound.contains(&format!("ip={}", lab.ip(100))), "{bound}");
    assert!(bound.contains("mask=255.255.255.0"), "{bound}");
    assert!(bound.contains(&format!("routers={}", lab.ip(1))), "{bound}");
    assert!(
        bound.contains(&format!("tftp={} {}", lab.ip(5), lab.ip(6))),
        "{bound}"
    );
    // T1 = 2 s: dhcpcd renews by itself.
    wait_for(15, "a RENEW ACK", || acks(&sink) >= 2);
    let st = base(&["-k"]).status().unwrap();
    assert!(st.success());
    wait_for(5, "a RELEASE", || releases(&sink) >= 1);
    kill(&mut child);
    let _ = fs::remove_file(format!("/var/lib/dhcpcd/{}.lease", lab.cli_if));
    let report = srv.stop();
    assert!(report.engine.acks >= 2);
}
