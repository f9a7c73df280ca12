//! Discovery and VLAN tagging on the wire: a raw-socket "switch" in another namespace answers
//! the phone's CDP with a voice VLAN and a power grant, checks that the DHCP DISCOVER then
//! arrives tagged with that VLAN, and answers it in the wrong VLAN: the phone must report
//! that as its failure reason. Needs root; skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use journal::{Protocol, Step};
use sim::model::Model;
use sim::phone::{run_phone, BootOptions, Env, PhoneSpec};
use sim::report::VlanSource;

fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let nsf = File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0);
        f()
    })
}

/// What the switch saw.
#[derive(Debug, Default)]
struct Seen {
    cdp_from_phone: u32,
    platform: Option<String>,
    discover_vlan: Option<Option<u16>>,
    vendor_class: Option<Vec<u8>>,
}

const SWITCH_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x5a, 0x01];

async fn switch(ifname: String, secs: u64) -> Seen {
    let s = l2::AsyncPacketSocket::open(
        &ifname,
        &[
            mac::Mac::CDP_MULTICAST.octets(),
            mac::Mac::LLDP_MULTICAST.octets(),
        ],
    )
    .unwrap();
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let meta = tokio::select! {
            m = s.recv(&mut buf) => m.unwrap(),
            _ = tokio::time::sleep_until(deadline) => return seen,
        };
        let frame = &buf[..meta.len];
        let Ok(f) = l2::frame::parse(frame) else {
            continue;
        };
        if let l2::frame::Payload::Llc {
            snap: Some(([0, 0, 0x0c], 0x2000)),
            data,
            ..
        } = f.payload
        {
            let pdu = cdp::Pdu::decode(data).unwrap();
            seen.cdp_from_phone += 1;
            seen.platform = pdu.platform().map(str::to_string);
            let (req, _, levels) = pdu.power_requested().unwrap();
            let answer = cdp::Pdu::new(180)
                .with(cdp::Tlv::DeviceId("lab-sw".into()))
                .with(cdp::Tlv::PortId("Gi1/0/1".into()))
                .with(cdp::Tlv::NativeVlan(1))
                .with(cdp::Tlv::VoipVlanReply {
                    appliance: 1,
                    vlan: 100,
                })
                .with(cdp::Tlv::PowerAvailable {
                    request_id: req,
                    management_id: 1,
                    available_mw: levels[0],
                    management_level: u32::MAX,
                });
            let out = l2::frame::snap(
                mac::Mac::CDP_MULTICAST.octets(),
                SWITCH_MAC,
                None,
                [0, 0, 0x0c],
                0x2000,
                &answer.encode().unwrap(),
            )
            .unwrap();
            s.send(&out).await.unwrap();
            continue;
        }
        let Some(u) = l2::udp::parse_udp(frame) else {
            continue;
        };
        if u.dst_port != 67 {
            continue;
        }
        let req = Message::decode(&mut Decoder::new(u.payload)).unwrap();
        if req.opts().msg_type() != Some(MessageType::Discover) {
            continue;
        }
        seen.discover_vlan = Some(u.vlan);
        if let Some(DhcpOption::ClassIdentifier(v)) = req.opts().get(OptionCode::ClassIdentifier) {
            seen.vendor_class = Some(v.clone());
        }
        // An OFFER, but untagged: the data VLAN, not the voice VLAN the phone is in.
        let mut offer = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(198, 18, 1, 50),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &req.chaddr()[..6],
        );
        offer.set_opcode(Opcode::BootReply);
        offer
            .opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Offer));
        offer
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(198, 18, 1, 1)));
        let mut payload = Vec::new();
        offer.encode(&mut Encoder::new(&mut payload)).unwrap();
        let out = l2::udp::build_udp(
            mac::Mac::new(SWITCH_MAC),
            mac::Mac::BROADCAST,
            None,
            0,
            (Ipv4Addr::new(198, 18, 1, 1), 67),
            (Ipv4Addr::BROADCAST, 68),
            &payload,
        );
        s.send(&out).await.unwrap();
    }
}

#[test]
fn cdp_voice_vlan_tags_dhcp_and_a_wrong_vlan_answer_is_the_failure() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let v = l2::netns::VethPair::new("sv").unwrap();
    let sw_if = v.if_b.clone();
    let sw = in_ns(&v.ns_b, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(switch(sw_if, 3))
    });
    std::thread::sleep(Duration::from_millis(100));
    let ph_if = v.if_a.clone();
    let report = in_ns(&v.ns_a, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut opts = BootOptions::default();
                opts.timeouts.discovery = Duration::from_secs(3);
                opts.timeouts.dhcp = Duration::from_secs(2);
                opts.timeouts.dhcp_retransmit = Duration::from_millis(500);
                let env = Env::open(&ph_if, &ph_if, opts, None).unwrap();
                let (_tx, rx) = tokio::sync::watch::channel(false);
                let spec = PhoneSpec {
                    mac: "02:1b:54:00:20:01".parse().unwrap(),
                    model: Model::lookup("7965").unwrap(),
                    protocol: Protocol::Sccp,
                };
                run_phone(Arc::clone(&env), spec, rx, None, None, false).await
            })
    })
    .join()
    .unwrap();
    let seen = sw.join().unwrap();
    eprint!("{}", report.render_text());
    eprintln!("{seen:?}");
    // The switch heard a phone CDP with its platform; the phone learnt VLAN 100 and the grant.
    assert!(seen.cdp_from_phone >= 1);
    assert_eq!(seen.platform.as_deref(), Some("Cisco IP Phone 7965"));
    let d = report.discovery.as_ref().unwrap();
    assert_eq!((d.vlan, d.via), (Some(100), VlanSource::Cdp));
    assert_eq!(d.switch.as_deref(), Some("lab-sw Gi1/0/1"));
    assert_eq!(report.power.granted_mw, Some(8700));
    // The DISCOVER left tagged with VLAN 100 and the model's option 60.
    assert_eq!(seen.discover_vlan, Some(Some(100)));
    assert_eq!(
        seen.vendor_class.as_deref(),
        Some(&b"Cisco Systems, Inc. IP Phone CP-7965"[..])
    );
    // The untagged OFFER is not taken: the failure says why.
    let f = report.failure.as_ref().unwrap();
    assert_eq!(
        (f.step, f.kind.as_str()),
        (Step::Dhcp, "dhcp_wrong_vlan"),
        "{}",
        f.reason
    );
    assert!(
        f.reason
            .contains("wrong VLAN (untagged, expected VLAN 100)"),
        "{}",
        f.reason
    );
    assert!(!report.registered);
}
