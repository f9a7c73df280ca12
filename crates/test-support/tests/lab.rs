//! The lab itself, as a user would check it: namespaces, VLAN separation through the
//! user-space switch, TCP across it, idempotent `up`, and a clean `down`.

use std::process::Command;

use test_support::{Host, LabGuard};

fn py(lab: &LabGuard, host: Host, script: &str) -> (bool, String) {
    let out = lab
        .cmd(host, "python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Sends one raw frame from `ifname`: optionally 802.1Q-tagged, with a marker payload.
fn send_frame(ifname: &str, vlan: Option<u16>, marker: &str) -> String {
    let tag = match vlan {
        Some(v) => format!("b'\\x81\\x00' + ({v}).to_bytes(2, 'big') + "),
        None => String::new(),
    };
    format!(
        "import socket,time\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
         s.bind(('{ifname}',0))\n\
         f=b'\\xff'*6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + {tag}b'\\x88\\xb5' + b'{marker}'.ljust(46,b'\\0')\n\
         for _ in range(20):\n  s.send(f); time.sleep(0.05)\n"
    )
}

/// Listens on `ifname` for a frame carrying `marker`; prints `TAG=<vlan or none>` if seen.
/// The tag may be in the frame or, as veth hands it over, in PACKET_AUXDATA: both count.
fn listen_frame(ifname: &str, marker: &str) -> String {
    format!(
        "import socket,time,struct\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))\n\
         s.setsockopt(263, 8, 1)\n\
         s.bind(('{ifname}',0)); s.settimeout(0.2)\n\
         end=time.time()+2.5\n\
         while time.time()<end:\n\
         \x20 try: d,anc,_,_=s.recvmsg(2000, 256)\n\
         \x20 except socket.timeout: continue\n\
         \x20 if b'{marker}' not in d: continue\n\
         \x20 tag='none'\n\
         \x20 if d[12:14]==b'\\x81\\x00': tag=str(int.from_bytes(d[14:16],'big')&0xfff)\n\
         \x20 for lvl,typ,data in anc:\n\
         \x20   if lvl==263 and typ==8:\n\
         \x20     st,_,_,_,_,tci,_=struct.unpack('IIIHHHH',data[:20])\n\
         \x20     if st & 0x10: tag=str(tci&0xfff)\n\
         \x20 print('TAG='+tag); break\n"
    )
}

fn crosses(
    lab: &LabGuard,
    from: (Host, &str, Option<u16>),
    to: (Host, &str),
    marker: &str,
) -> Option<String> {
    let listener = lab
        .cmd(to.0, "python3")
        .args(["-c", &listen_frame(to.1, marker)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("listener starts");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ok, out) = py(lab, from.0, &send_frame(from.1, from.2, marker));
    assert!(ok, "sender failed: {out}");
    let out = listener.wait_with_output().expect("listener ends");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("TAG=").map(str::to_string))
}

#[test]
fn lab_separates_vlans_carries_tcp_and_cleans_up() {
    let lab = LabGuard::new().expect("lab up");
    let status = lab.status().expect("status");
    assert!(status.switch_running);
    assert!(status.namespaces.iter().all(|n| n.exists));
    let srv0 = status
        .interfaces
        .iter()
        .find(|i| i.name == "srv0")
        .expect("srv0 listed");
    assert_eq!(srv0.addresses, vec!["198.18.100.1/16".to_string()]);
    assert!(lab.config_path().exists());
    config_is_valid(&lab);

    // Idempotent: a second `up` changes nothing and keeps the switch running.
    assert!(lab.up(100).expect("second up").is_none());

    // A frame the phone tags with the voice VLAN reaches the voice access ports untagged...
    assert_eq!(
        crosses(
            &lab,
            (Host::Phones, "phone0", Some(100)),
            (Host::Server, "srv0"),
            "VOICE1"
        ),
        Some("none".into())
    );
    // ...an untagged frame from the phone stays in the data VLAN...
    assert_eq!(
        crosses(
            &lab,
            (Host::Phones, "phone0", None),
            (Host::Server, "srv1"),
            "DATA1"
        ),
        Some("none".into())
    );
    assert_eq!(
        crosses(
            &lab,
            (Host::Phones, "phone0", None),
            (Host::Server, "srv0"),
            "DATA2"
        ),
        None
    );
    // ...and the server's voice traffic reaches the phone port tagged.
    assert_eq!(
        crosses(
            &lab,
            (Host::Server, "srv0", None),
            (Host::Phones, "phone0"),
            "DOWN1"
        ),
        Some("100".into())
    );

    // TCP through the user-space datapath (checksum offload off): a listener on the server.
    let server = lab
        .cmd(Host::Server, "python3")
        .args([
            "-c",
            "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('198.18.100.1', 7777)); s.listen(1); s.settimeout(5)\n\
             c,_=s.accept(); c.sendall(b'hello-from-server'); c.close()",
        ])
        .spawn()
        .expect("tcp server");
    assert!(Command::new("ip")
        .args([
            "-n",
            &lab.netns(Host::Phones),
            "addr",
            "add",
            "198.18.100.77/16",
            "dev",
            "voice0"
        ])
        .status()
        .expect("ip")
        .success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ok, out) = py(
        &lab,
        Host::Phones,
        "import socket\nc=socket.create_connection(('198.18.100.1',7777),timeout=5)\nprint(c.recv(100).decode())",
    );
    let mut server = server;
    let _ = server.wait();
    assert!(ok && out.contains("hello-from-server"), "tcp failed: {out}");

    let name = lab.name().to_string();
    let ns = lab.netns(Host::Server);
    drop(lab);
    assert!(
        !std::path::Path::new("/run/netns").join(&ns).exists(),
        "lab {name} left its namespace behind"
    );
}

fn config_is_valid(lab: &LabGuard) {
    let text = std::fs::read_to_string(lab.config_path()).expect("config written");
    let cfg = config::Config::parse(&text).unwrap_or_else(|e| panic!("lab config invalid: {e:?}"));
    assert!(cfg.autoregistration.enabled);
    assert_eq!(
        cfg.dhcp.pools[0].tftp_servers.first().to_string(),
        "198.18.100.1"
    );
    assert_eq!(
        cfg.discovery.interfaces[0].netns.as_deref(),
        Some(lab.netns(Host::Switch).as_str())
    );
}

#[test]
fn a_clashing_namespace_is_refused_and_nothing_is_left() {
    let root = tempfile::tempdir().expect("tempdir");
    let name = format!("c{:05}", std::process::id() % 100_000);
    let lab = test_support::Lab::new(&name, root.path()).expect("name ok");
    let sw = lab.netns(Host::Switch);
    assert!(Command::new("ip")
        .args(["netns", "add", &sw])
        .status()
        .expect("ip")
        .success());
    let err = lab.up(100).expect_err("must refuse");
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert!(!lab.state_dir().join("lab.json").exists());
    assert!(!std::path::Path::new("/run/netns")
        .join(lab.netns(Host::Server))
        .exists());
    let _ = Command::new("ip").args(["netns", "del", &sw]).status();
}
