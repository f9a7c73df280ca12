//! Real AF_PACKET sockets on a veth pair between two namespaces (needs root and `ip`).

use std::time::Duration;

use l2::frame::{self, Payload, Tci};
use l2::netns::VethPair;
use l2::AsyncPacketSocket;

const CDP_MAC: [u8; 6] = [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc];
const LLDP_MAC: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];

#[tokio::test]
async fn multicast_snap_and_tagged_frames_cross_a_veth() {
    let net = VethPair::new("l2t").unwrap();
    let a = AsyncPacketSocket::new(net.socket_a().unwrap()).unwrap();
    let bsock = net.socket_b().unwrap();
    bsock.join_multicast(CDP_MAC).unwrap();
    bsock.join_multicast(LLDP_MAC).unwrap();
    let b = AsyncPacketSocket::new(bsock).unwrap();
    assert_ne!(a.get_ref().mac(), [0; 6], "interface MAC is read");

    let src = a.get_ref().mac();
    let untagged = frame::snap(CDP_MAC, src, None, [0, 0, 0x0c], 0x2000, b"hello").unwrap();
    let tagged = frame::ethernet2(LLDP_MAC, src, Some(Tci::new(100, 5)), 0x88cc, b"lldp!");
    a.send(&untagged).await.unwrap();
    a.send(&tagged).await.unwrap();

    let mut buf = Vec::new();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while got.len() < 2 {
        let meta = tokio::time::timeout_at(deadline, b.recv(&mut buf))
            .await
            .expect("frames arrive within 3 s")
            .unwrap();
        let f = frame::parse(&buf[..meta.len]).unwrap();
        // IPv6 router solicitations and MLD reports of the veth coming up, the other end's
        // or this one's own (same source MAC), are not what the test sent.
        let ipv6 = matches!(
            f.payload,
            Payload::Ethernet2 {
                ethertype: 0x86dd,
                ..
            }
        );
        if f.src != src || ipv6 {
            continue;
        }
        got.push((
            f.vlan,
            meta.tag_from_metadata,
            match f.payload {
                Payload::Llc { snap, data, .. } => (snap.map(|s| s.1), data.to_vec()),
                Payload::Ethernet2 { ethertype, data } => (Some(ethertype), data[..5].to_vec()),
            },
        ));
    }
    assert_eq!(got[0], (None, None, (Some(0x2000), b"hello".to_vec())));
    // The tag survives whichever way the kernel delivers it (veth: stripped into auxdata).
    assert_eq!(got[1].0, Some(Tci::new(100, 5)));
    assert_eq!(
        got[1].1,
        Some(Tci::new(100, 5)),
        "veth hands the tag over as metadata"
    );
    assert_eq!(got[1].2, (Some(0x88cc), b"lldp!".to_vec()));
    // Our own sends are not looped back to the sender.
    let mut abuf = Vec::new();
    loop {
        match a.get_ref().try_recv(&mut abuf) {
            Ok(m) => assert_ne!(frame::parse(&abuf[..m.len]).unwrap().src, src),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
}

#[tokio::test]
async fn the_discovery_filter_keeps_only_cdp_and_lldp() {
    let net = VethPair::new("l2f").unwrap();
    let a = AsyncPacketSocket::new(net.socket_a().unwrap()).unwrap();
    let bsock = net.socket_b().unwrap();
    bsock.join_multicast(CDP_MAC).unwrap();
    bsock.join_multicast(LLDP_MAC).unwrap();
    bsock.filter_discovery().unwrap();
    let b = AsyncPacketSocket::new(bsock).unwrap();
    let src = a.get_ref().mac();
    let bcast = [0xff; 6];
    let frames = [
        frame::ethernet2(bcast, src, None, 0x0800, b"ipv4 dhcp discover"),
        frame::snap(CDP_MAC, src, None, [0, 0, 0x0c], 0x2000, b"cdp").unwrap(),
        frame::ethernet2(bcast, src, Some(Tci::new(100, 5)), 0x0800, b"tagged ipv4"),
        frame::ethernet2(
            LLDP_MAC,
            src,
            Some(Tci::new(100, 5)),
            0x88cc,
            b"lldp tagged",
        ),
        frame::ethernet2(LLDP_MAC, src, None, 0x88cc, b"lldp plain"),
        frame::ethernet2(CDP_MAC, src, None, 0x0806, b"arp to the cdp group"),
    ];
    for f in &frames {
        a.send(f).await.unwrap();
    }
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(r) = tokio::time::timeout_at(deadline, b.recv(&mut buf)).await {
        let meta = r.unwrap();
        let f = frame::parse(&buf[..meta.len]).unwrap();
        assert!(
            f.dst == CDP_MAC || f.dst == LLDP_MAC,
            "only discovery frames pass: {:?}",
            f.dst
        );
        if f.src == src {
            got.push(match f.payload {
                Payload::Llc { snap, .. } => snap.map(|s| s.1).unwrap_or(0),
                Payload::Ethernet2 { ethertype, .. } => ethertype,
            });
        }
    }
    // CDP (SNAP 0x2000), tagged and plain LLDP, and the odd frame sent to the CDP group.
    assert_eq!(got, [0x2000, 0x88cc, 0x88cc, 0x0806]);
}
