//! The socket needs CAP_NET_RAW and nothing else: a child process whose capability bounding
//! set holds only CAP_NET_RAW opens it, joins both discovery groups and sends; with no
//! capabilities at all it is refused. Needs root and util-linux `setpriv`.

// The helper panics on setup failure on purpose.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const GROUPS: [[u8; 6]; 2] = [
    [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc],
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e],
];

fn child(bounding: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    Command::new("setpriv")
        .args([
            &format!("--inh-caps=-all{bounding}"),
            &format!("--bounding-set=-all{bounding}"),
            "--",
        ])
        .arg(exe)
        .args(["--exact", "socket_in_child", "--ignored", "--nocapture"])
        .output()
        .unwrap()
}

#[test]
fn cap_net_raw_is_enough_and_needed() {
    let with = child(",+net_raw");
    let out = String::from_utf8_lossy(&with.stdout);
    assert!(
        with.status.success() && out.contains("child: socket ok"),
        "with CAP_NET_RAW only: {out}\n{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = child("");
    assert!(!without.status.success(), "no capabilities must be refused");
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
#[ignore = "run by cap_net_raw_is_enough_and_needed in a process with reduced capabilities"]
fn socket_in_child() {
    let s = l2::PacketSocket::open("lo").unwrap();
    for g in GROUPS {
        s.join_multicast(g).unwrap();
    }
    let f = l2::frame::ethernet2(GROUPS[1], s.mac(), None, 0x88cc, &[0, 0]);
    assert_eq!(s.try_send(&f).unwrap(), f.len());
    println!("child: socket ok");
}
