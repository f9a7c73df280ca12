//! Real DHCP clients (ISC dhclient, busybox udhcpc, dhcpcd) against the server, across a veth
//! pair between two network namespaces this test creates. Each client requests option 150 and
//! must get address, mask, router and the ordered TFTP list, then renew and release.
//!
//! Needs root and the Debian packages isc-dhcp-client, udhcpc, dhcpcd-base. Skips (with a
//! message) when not root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness

mod common;

use std::fs;
use std::process::Stdio;
use std::sync::atomic::Ordering;

use common::*;
use journal::VecSink;

#[test]
fn dhclient_gets_renews_and_releases() {
    if let Some(why) = test_support::require::root_missing() {
        return test_support::skip(&why);
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
    let io = &report.io;
    assert_eq!(io.withheld_replies.load(Ordering::Relaxed), 0);
    // dhclient sets no broadcast flag: the OFFER/ACK went by unicast through a seeded ARP
    // entry (RFC 2131 4.1), not by the broadcast fallback.
    assert_eq!(io.arp_seed_failures.load(Ordering::Relaxed), 0);
    assert!(
        io.arp_seeded.load(Ordering::Relaxed) >= 2,
        "OFFER and ACK by unicast"
    );
}

#[test]
fn udhcpc_gets_renews_and_releases() {
    if let Some(why) = test_support::require::root_missing() {
        return test_support::skip(&why);
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
    if let Some(why) = test_support::require::root_missing() {
        return test_support::skip(&why);
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
