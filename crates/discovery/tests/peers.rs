//! Real peers over a veth pair between two namespaces this test creates (needs root, `ip`,
//! tcpdump, tshark, lldpd, cdpr and Debian's python3-scapy). Our switch agent runs on side A;
//! the peer (our phone agent, lldpd, cdpr, a scapy-built phone) runs on side B.

// Test helpers outside #[test] functions panic on setup failures on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use discovery::{
    run_phone, spawn_switch_on, InterfaceConfig, PhoneConfig, Proto, SwitchConfig, SwitchHandle,
    VlanState, VoiceVlan,
};
use journal::{EventKind, VecSink, VlanVia};
use l2::netns::{in_netns, VethPair};
use l2::AsyncPacketSocket;

const VOICE: u16 = 100;

fn switch_cfg(ifname: &str) -> SwitchConfig {
    SwitchConfig {
        device_id: "sw1.example".into(),
        platform: "cisco WS-C3560-24PS".into(),
        address: Some("198.18.0.1".parse().unwrap()),
        timer_secs: 5,
        interfaces: vec![InterfaceConfig {
            voice_vlan: VoiceVlan::Vlan(VOICE),
            native_vlan: 10,
            pd_class: Some(2),
            ..InterfaceConfig::new(ifname)
        }],
        ..SwitchConfig::default()
    }
}

fn open_in(ns: &str, ifname: &str) -> AsyncPacketSocket {
    let ifname = ifname.to_owned();
    let s = in_netns(ns, move || {
        let s = l2::PacketSocket::open(&ifname)?;
        s.join_multicast(cdp::MULTICAST)?;
        s.join_multicast(lldp::MULTICAST)?;
        Ok(s)
    })
    .unwrap();
    AsyncPacketSocket::new(s).unwrap()
}

fn start_switch(net: &VethPair, sink: Arc<VecSink>) -> SwitchHandle {
    let sock = open_in(&net.ns_a, &net.if_a);
    spawn_switch_on(switch_cfg(&net.if_a), vec![sock], sink).unwrap()
}

/// A child process killed (SIGINT first, so tcpdump flushes) on drop.
struct Proc(Child);
impl Proc {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// A scratch directory for one test, removed on drop (also when the test panics).
struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("discovery-peers-{tag}"));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// tcpdump on side B, returns once it is capturing.
fn capture(net: &VethPair, file: &Path) -> Proc {
    let mut c = in_ns(
        &net.ns_b,
        &[
            "tcpdump",
            "-n",
            "-U",
            "-i",
            &net.if_b,
            "-w",
            file.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("tcpdump");
    // tcpdump says "listening on" on stderr when the capture is open.
    let mut err = c.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut b = [0u8; 512];
        let mut seen = String::new();
        while let Ok(n) = err.read(&mut b) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&b[..n]));
            if seen.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("tcpdump started");
    Proc(c)
}

fn wire_check() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("WIRE_CHECK")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../../../shared/tools/wire-check"),
            manifest.join("../../../../shared/tools/wire-check"),
            PathBuf::from("/work/shared/tools/wire-check"),
        ])
        .find(|p| p.exists())
}

fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut c = Command::new("tshark");
    c.args([
        "-n",
        "-r",
        pcap.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
    ]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c.output().expect("tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn tshark_count(pcap: &Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-n", "-r", pcap.to_str().unwrap(), "-Y", filter])
        .output()
        .expect("tshark");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_phone_learns_voice_vlan_and_tshark_accepts_every_frame() {
    let net = VethPair::new("dsc").unwrap();
    let dir = Scratch::new(&net.if_b);
    let pcap = dir.join("capture.pcap");
    let mut cap = capture(&net, &pcap);
    let sink = VecSink::new();
    let sw = start_switch(&net, sink.clone());
    let phone_sock = open_in(&net.ns_b, &net.if_b);
    let mac: mac::Mac = "00:1b:54:aa:bb:01".parse().unwrap();
    let out = run_phone(
        &phone_sock,
        PhoneConfig {
            mac,
            address: Some("198.18.0.10".parse().unwrap()),
            retry: Duration::from_secs(1),
            vlan_timeout: Duration::from_secs(8),
            ..PhoneConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    assert!(
        matches!(
            out.state,
            VlanState::Learned {
                vlan: Some(VOICE),
                ..
            }
        ),
        "{out:?}"
    );
    // Let the LLDP-MED fast start and the power answer go out, then look.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = sw.snapshot().await.unwrap();
    let cdp_n = snap
        .neighbours
        .iter()
        .find(|n| n.info.protocol == Proto::Cdp)
        .expect("CDP neighbour");
    assert_eq!(cdp_n.info.device_id, "SEP001B54AABB01");
    assert_eq!(cdp_n.info.power_granted_mw, Some(6300));
    assert_eq!(cdp_n.info.voice_vlan_sent, Some(VOICE));
    let lldp_n = snap
        .neighbours
        .iter()
        .find(|n| n.info.protocol == Proto::Lldp)
        .expect("LLDP neighbour");
    assert_eq!(lldp_n.info.med_device_type, Some(3));
    assert!(snap.interfaces[0].med_endpoint);
    let kinds: Vec<EventKind> = sink.events().into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, EventKind::CdpSeen { .. })));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, EventKind::LldpSeen { med: true, .. })));
    assert!(kinds.iter().any(|k| matches!(
        k,
        EventKind::PowerGranted {
            milliwatts: 6300,
            ..
        }
    )));
    assert!(kinds.iter().any(|k| matches!(
        k,
        EventKind::VoiceVlan {
            vlan: Some(VOICE),
            via: VlanVia::Cdp
        }
    )));
    assert!(sink.events().iter().all(|e| e.mac == mac));
    sw.shutdown().await;
    cap.stop();

    // Wireshark judges both directions: one dissection pass, fields per frame.
    let rows = tshark_fields(
        &pcap,
        &[
            "frame.protocols",
            "cdp.checksum.status",
            "cdp.voice_vlan",
            "cdp.power_available",
            "lldp.media.vlan_id",
            "lldp.media.l2_prio",
            "lldp.media.dscp",
            "lldp.media.tag_flag",
        ],
    );
    let is = |r: &Vec<String>, p: &str| r[0].split(':').any(|x| x == p);
    let n_cdp = rows.iter().filter(|r| is(r, "cdp")).count();
    let n_lldp = rows.iter().filter(|r| is(r, "lldp")).count();
    assert!(n_cdp >= 2 && n_lldp >= 3, "cdp {n_cdp}, lldp {n_lldp}");
    assert!(
        rows.iter().filter(|r| is(r, "cdp")).all(|r| r[1] == "1"),
        "every CDP checksum is good (1): {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[2] == VOICE.to_string()),
        "voice VLAN in CDP: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[3].split(',').any(|v| v == "6300")),
        "power available in CDP: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[4].split(',').next() == Some("100")
            && r[5].starts_with('5')
            && r[6].starts_with("46")
            && (r[7].starts_with("True") || r[7].starts_with('1'))),
        "LLDP-MED voice policy: {rows:?}"
    );
    match wire_check() {
        Some(wc) => {
            let o = Command::new("bash").arg(&wc).arg(&pcap).output().unwrap();
            assert!(
                o.status.success(),
                "wire-check: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        // Same judgement as wire-check, when shared/tools is not beside the checkout.
        None => assert_eq!(
            tshark_count(
                &pcap,
                "_ws.malformed || _ws.expert.severity >= \"warning\" || cdp.checksum.status == \"Bad\""
            ),
            0,
            "tshark objects to some frames"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lldpd_sees_our_med_policy_and_cdp_and_we_decode_lldpd() {
    let net = VethPair::new("dsc").unwrap();
    std::fs::create_dir_all("/run/lldpd").unwrap(); // lldpd's privilege-separation chroot
    let dir = Scratch::new(&net.if_b);
    let sock = dir.join("lldpd.sock");
    let log = std::fs::File::create(dir.join("lldpd.log")).unwrap();
    let sink = VecSink::new();
    let sw = start_switch(&net, sink.clone());
    let _lldpd = Proc(
        in_ns(
            &net.ns_b,
            &[
                "lldpd",
                "-d",
                "-ccc", // CDPv2 from the start, so we hear lldpd's CDP at once
                "-l",   // and LLDP although it hears our CDP
                "-M",
                "3",
                "-H",
                "0",
                "-I",
                &net.if_b,
                "-u",
                sock.to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("lldpd"),
    );
    let mut last = String::new();
    let mut ok = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let out = in_ns(
            &net.ns_b,
            &[
                "lldpcli",
                "-u",
                sock.to_str().unwrap(),
                "show",
                "neighbors",
                "details",
                "-f",
                "keyvalue",
            ],
        )
        .output()
        .unwrap();
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        let has_policy = last.contains("lldp-med.policy.apptype=Voice\n")
            && last.contains("lldp-med.policy.vlan.vid=100")
            && last.contains("lldp-med.policy.pcp=5")
            && last.contains("lldp-med.policy.dscp=46");
        let has_cdp = last.lines().any(|l| l.contains("via=CDPv2"));
        if has_policy && has_cdp {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "lldpd does not show our policy and CDP neighbour:\n{last}"
    );
    assert!(last.contains("sw1.example"), "{last}");
    assert!(last.contains(&net.if_a), "our port id: {last}");
    // lldpd's own frames, decoded by us.
    let snap = sw.snapshot().await.unwrap();
    let l = snap
        .neighbours
        .iter()
        .find(|n| n.info.protocol == Proto::Lldp)
        .expect("lldpd heard over LLDP");
    assert_eq!(l.info.med_device_type, Some(3));
    // lldpd identifies its port by MAC address (Port ID subtype 3).
    let peer_port: mac::Mac = l.info.port_id.as_deref().unwrap().parse().unwrap();
    assert_eq!(peer_port, l.info.mac);
    assert!(l.info.holdtime_secs > 0);
    assert!(
        snap.neighbours
            .iter()
            .any(|n| n.info.protocol == Proto::Cdp),
        "lldpd answers CDP once it hears ours: {:?}",
        snap.neighbours
    );
    assert_eq!(snap.counters.rx_bad_lldp + snap.counters.rx_bad_cdp, 0);
    sw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdpr_reads_our_cdp() {
    let net = VethPair::new("dsc").unwrap();
    let child = in_ns(&net.ns_b, &["cdpr", "-d", &net.if_b, "-t", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cdpr");
    // cdpr needs a moment to open its capture; our timer (5 s) repeats the frame anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sw = start_switch(&net, VecSink::new());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sw1.example"), "cdpr output:\n{text}");
    assert!(text.contains("198.18.0.1"), "cdpr output:\n{text}");
    assert!(text.contains(&net.if_a), "cdpr output:\n{text}");
    sw.shutdown().await;
}

const SCAPY_PHONE: &str = r#"
import sys
from scapy.all import Dot3, LLC, SNAP, sendp, AsyncSniffer
from scapy.contrib.cdp import *
iface = sys.argv[1]
p = (Dot3(dst="01:00:0c:cc:cc:cc", src="00:11:22:33:44:aa") / LLC(dsap=0xaa, ssap=0xaa, ctrl=3)
     / SNAP(OUI=0x0c, code=0x2000)
     / CDPv2_HDR(vers=2, ttl=180, msg=[
         CDPMsgDeviceID(val=b"SEP0011223344AA"),
         CDPMsgAddr(naddr=1, addr=[CDPAddrRecordIPv4(addr="198.18.0.20")]),
         CDPMsgPortID(iface=b"Port 1"),
         CDPMsgCapabilities(cap=0x490),
         CDPMsgSoftwareVersion(val=b"SCCP42.9-4-2SR3S"),
         CDPMsgPlatform(val=b"Cisco IP Phone 7942"),
         CDPMsgDuplex(duplex=1),
         CDPMsgVoIPVLANQuery(unknown1=0x20, vlan=0x0200),
         CDPMsgPower(power=6300)]))
sn = AsyncSniffer(iface=iface, count=1, timeout=6,
                  lfilter=lambda x: x.haslayer(CDPMsgVoIPVLANReply))
sn.start()
import time; time.sleep(0.5)
sendp(p, iface=iface, verbose=False)
sn.join()
for x in sn.results or []:
    print("VLAN", x[CDPMsgVoIPVLANReply].vlan)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scapy_phone_is_decoded_and_answered() {
    let net = VethPair::new("dsc").unwrap();
    let sink = VecSink::new();
    let sw = start_switch(&net, sink.clone());
    let dir = Scratch::new(&net.if_b);
    let script = dir.join("phone.py");
    std::fs::write(&script, SCAPY_PHONE).unwrap();
    let mut cmd = in_ns(
        &net.ns_b,
        &["/usr/bin/python3", script.to_str().unwrap(), &net.if_b],
    );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("VLAN {VOICE}")),
        "scapy phone: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = sw.snapshot().await.unwrap();
    let n = snap
        .neighbours
        .iter()
        .find(|n| n.info.device_id == "SEP0011223344AA")
        .expect("scapy phone in the table");
    assert_eq!(n.info.platform.as_deref(), Some("Cisco IP Phone 7942"));
    assert_eq!(n.info.software_version.as_deref(), Some("SCCP42.9-4-2SR3S"));
    assert_eq!(n.info.port_id.as_deref(), Some("Port 1"));
    assert_eq!(
        n.info.addresses,
        vec!["198.18.0.20".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(n.info.capability_letters, "H P M");
    assert_eq!(n.info.power_drawn_mw, Some(6300));
    assert!(n.info.voice_vlan_asked);
    assert_eq!(n.info.duplex.as_deref(), Some("full"));
    assert_eq!(
        snap.counters.rx_bad_checksum, 0,
        "scapy's checksum agrees here"
    );
    let text = discovery::show::cdp_neighbors(&snap);
    assert!(text.contains("SEP0011223344AA"), "{text}");
    assert!(sink.events().iter().any(|e| e.mac
        == "00:11:22:33:44:aa".parse::<mac::Mac>().unwrap()
        && matches!(
            e.kind,
            EventKind::VoiceVlan {
                vlan: Some(VOICE),
                ..
            }
        )));
    sw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_on_the_wire_are_counted_and_the_agent_keeps_answering() {
    let net = VethPair::new("dsc").unwrap();
    let sw = start_switch(&net, VecSink::new());
    let b = open_in(&net.ns_b, &net.if_b);
    let src = b.get_ref().mac();
    let phone = discovery::PhoneAgent::new(
        PhoneConfig {
            mac: mac::Mac(src),
            ..PhoneConfig::default()
        },
        std::time::Instant::now(),
    );
    let good = phone.cdp_pdu().encode().unwrap();
    let frame = |pdu: &[u8]| {
        l2::frame::snap(
            cdp::MULTICAST,
            src,
            None,
            cdp::CISCO_OUI,
            cdp::SNAP_PID,
            pdu,
        )
        .unwrap()
    };
    // wrong checksum (accepted, counted)
    let mut bad_sum = good.clone();
    bad_sum[2] ^= 0x55;
    // over-long TLV: first TLV claims 4000 bytes
    let mut over = good.clone();
    over[6..8].copy_from_slice(&4000u16.to_be_bytes());
    // truncated: 802.3 length says more than the frame holds
    let mut trunc = frame(&good);
    trunc.truncate(40);
    // garbage 802.3 with SNAP header and a bad CDP version
    let garbage = frame(&[9, 9, 9, 9, 9]);
    for f in [frame(&bad_sum), frame(&over), trunc, garbage] {
        b.send(&f).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = sw.snapshot().await.unwrap();
    assert_eq!(s.counters.rx_bad_checksum, 1, "{:?}", s.counters);
    assert_eq!(s.counters.rx_bad_cdp, 2, "{:?}", s.counters);
    assert_eq!(s.counters.rx_bad_frame, 1, "{:?}", s.counters);
    // Still alive: a real phone exchange works.
    let out = run_phone(
        &b,
        PhoneConfig {
            mac: mac::Mac(src),
            retry: Duration::from_secs(1),
            vlan_timeout: Duration::from_secs(5),
            lldp: false,
            ..PhoneConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        out.state,
        VlanState::Learned {
            vlan: Some(VOICE),
            via: VlanVia::Cdp
        }
    );
    sw.shutdown().await;
}
