//! Behaviour of the DHCP core, one RFC rule or phone requirement per test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcp::client::{ClientMsg, ParsedReply};
use dhcp::wire::code;
use dhcp::*;
use journal::EventKind;
use mac::Mac;

const SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
const T1: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 5);
const T2: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 6);

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn voice_pool() -> PoolConfig {
    let mut p = PoolConfig::new(
        "voice",
        "198.18.10.0/24".parse().unwrap(),
        Ipv4Addr::new(198, 18, 10, 100),
        Ipv4Addr::new(198, 18, 10, 109),
    );
    p.interface = Some("vvlan".into());
    p.routers = vec![SRV];
    p.dns = vec![SRV];
    p.domain = Some("voice.example".into());
    p.lease_secs = 3600;
    p.classes = vec![
        ClassConfig {
            name: "cisco".into(),
            vendor_prefix: "Cisco Systems".into(),
            ..Default::default()
        },
        ClassConfig {
            name: "pc".into(),
            vendor_prefix: "MSFT".into(),
            no_tftp: true,
            ..Default::default()
        },
    ];
    p
}

fn relay_pool() -> PoolConfig {
    let mut p = PoolConfig::new(
        "remote",
        "198.19.20.0/24".parse().unwrap(),
        Ipv4Addr::new(198, 19, 20, 10),
        Ipv4Addr::new(198, 19, 20, 200),
    );
    p.routers = vec![Ipv4Addr::new(198, 19, 20, 1)];
    p.tftp_servers = Some(vec![T2]);
    p
}

fn config() -> DhcpConfig {
    let mut c = DhcpConfig::new(vec![voice_pool(), relay_pool()]);
    c.default_tftp_servers = vec![T1, T2];
    c
}

fn engine() -> Engine {
    Engine::new(config(), None).unwrap()
}

fn voice() -> Ingress<'static> {
    Ingress {
        interface: Some("vvlan"),
        vlan: None,
        local_addr: Some(SRV),
    }
}

fn mac(n: u8) -> [u8; 6] {
    [0x00, 0x1b, 0x54, 0xaa, 0xbb, n]
}

const PHONE_VC: &[u8] = b"Cisco Systems, Inc. IP Phone CP-7941G\0";
const PHONE_PRL: &[u8] = &[1, 66, 6, 3, 15, 150, 35];

fn discover(m: [u8; 6]) -> ClientMsg {
    ClientMsg::new(1, m, 0x1000 + u32::from(m[5]))
        .opt(code::VENDOR_CLASS, PHONE_VC)
        .opt(code::PARAM_REQUEST_LIST, PHONE_PRL)
}

fn reply(o: &Outcome) -> ParsedReply {
    ParsedReply::parse(&o.reply.as_ref().expect("a reply").bytes).expect("parsable reply")
}

/// Full DORA, returns the ACKed address.
fn dora(e: &mut Engine, m: [u8; 6], now: SystemTime) -> Ipv4Addr {
    let o = e.handle(&discover(m).encode(), &voice(), now);
    let offer = reply(&o);
    assert_eq!(offer.msg_type(), Some(2));
    let ip = offer.yiaddr;
    let req = ClientMsg::new(3, m, 7)
        .requested(ip)
        .server_id(SRV)
        .opt(code::VENDOR_CLASS, PHONE_VC)
        .opt(code::PARAM_REQUEST_LIST, PHONE_PRL);
    let o = e.handle(&req.encode(), &voice(), now);
    let ack = reply(&o);
    assert_eq!(ack.msg_type(), Some(5), "{ack:?}");
    assert_eq!(ack.yiaddr, ip);
    ip
}

#[test]
fn phone_dora_gets_address_mask_router_and_ordered_tftp_list() {
    let mut e = engine();
    let now = t(0);
    let o = e.handle(&discover(mac(1)).encode(), &voice(), now);
    let offer = reply(&o);
    assert_eq!(offer.op, 2);
    assert_eq!(offer.msg_type(), Some(2));
    assert_eq!(offer.yiaddr, Ipv4Addr::new(198, 18, 10, 100));
    assert_eq!(offer.ip_list(code::TFTP_SERVER_LIST), vec![T1, T2]);
    assert!(o.changes.is_empty(), "an offer is not a lease");
    assert!(
        matches!(o.events[0].kind, EventKind::DhcpDiscover { vendor_class: Some(ref v) } if v == "Cisco Systems, Inc. IP Phone CP-7941G")
    );
    assert!(matches!(o.events[1].kind, EventKind::DhcpOffer { ip } if ip == offer.yiaddr));

    let req = ClientMsg::new(3, mac(1), 9)
        .requested(offer.yiaddr)
        .server_id(SRV)
        .opt(code::VENDOR_CLASS, PHONE_VC)
        .opt(code::PARAM_REQUEST_LIST, PHONE_PRL);
    let o = e.handle(&req.encode(), &voice(), now);
    let ack = reply(&o);
    assert_eq!(ack.msg_type(), Some(5));
    assert_eq!(ack.xid, 9);
    assert_eq!(
        ack.ip_list(code::SUBNET_MASK),
        vec![Ipv4Addr::new(255, 255, 255, 0)]
    );
    assert_eq!(ack.ip_list(code::ROUTER), vec![SRV]);
    assert_eq!(ack.ip_list(code::SERVER_ID), vec![SRV]);
    assert_eq!(ack.ip_list(code::TFTP_SERVER_LIST), vec![T1, T2]);
    assert_eq!(ack.u32_opt(code::LEASE_TIME), Some(3600));
    assert_eq!(ack.u32_opt(code::RENEWAL_T1), Some(1800));
    assert_eq!(ack.u32_opt(code::REBINDING_T2), Some(3150));
    assert_eq!(ack.get(code::DOMAIN_NAME), Some(&b"voice.example"[..]));
    assert_eq!(ack.siaddr, T1, "next-server is the first TFTP server");
    match &o.changes[..] {
        [LeaseChange::Upsert(r)] => {
            assert_eq!(r.ip, offer.yiaddr);
            assert_eq!(r.state, LeaseState::Bound);
            assert_eq!(r.mac, Mac(mac(1)));
            assert_eq!(
                r.vendor_class.as_deref(),
                Some("Cisco Systems, Inc. IP Phone CP-7941G")
            );
        }
        other => panic!("expected one upsert, got {other:?}"),
    }
    match &o.events[0].kind {
        EventKind::DhcpAck {
            ip,
            lease_secs,
            tftp_servers,
            vendor_class,
        } => {
            assert_eq!(*ip, offer.yiaddr);
            assert_eq!(*lease_secs, 3600);
            assert_eq!(tftp_servers, &vec![T1, T2]);
            assert!(vendor_class.as_deref().unwrap().ends_with("CP-7941G"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.events[0].mac, Mac(mac(1)));
}

/// crates.md 2.1: dhcproto 0.15 drops a multi-address option 150 and everything after it.
/// Our request decoder and our reply encoder must not.
#[test]
fn regression_two_address_option_150_before_other_options() {
    // A message with 53, 150(len 8), 1, 3: our scanner keeps all of them.
    let msg = ClientMsg::new(1, mac(1), 1)
        .opt(code::TFTP_SERVER_LIST, &[198, 18, 10, 5, 198, 18, 10, 6])
        .opt(code::SUBNET_MASK, &[255, 255, 255, 0])
        .opt(code::ROUTER, &[198, 18, 10, 1])
        .encode();
    let req = Request::decode(&msg).unwrap();
    assert_eq!(req.options.codes().collect::<Vec<_>>(), vec![53, 150, 1, 3]);
    assert_eq!(req.options.get(150).unwrap().len(), 8);
    assert_eq!(req.options.get(3), Some(&[198, 18, 10, 1][..]));

    // Our replies carry the whole list, in order, and the options after it.
    let mut e = engine();
    let o = e.handle(&discover(mac(2)).encode(), &voice(), t(0));
    let bytes = &o.reply.as_ref().unwrap().bytes;
    let r = ParsedReply::parse(bytes).unwrap();
    assert_eq!(r.ip_list(150), vec![T1, T2]);
    let raw = &bytes[240..];
    assert!(raw
        .windows(10)
        .any(|w| w == [150, 8, 198, 18, 10, 5, 198, 18, 10, 6]));

    // The upstream bug itself, so we notice when a fixed dhcproto lands: its owned decoder
    // loses the options after the 2-address 150.
    use dhcproto::{Decodable, Decoder};
    let m = dhcproto::v4::Message::decode(&mut Decoder::new(&msg)).unwrap();
    assert!(
        m.opts().get(dhcproto::v4::OptionCode::Router).is_none(),
        "dhcproto now decodes a 2-address option 150: the pre-scan may be dropped"
    );
}

#[test]
fn class_matching_strips_the_trailing_nul_and_separates_phones_from_pcs() {
    let mut e = engine();
    let pc = ClientMsg::new(1, mac(3), 1)
        .opt(code::VENDOR_CLASS, b"MSFT 5.0")
        .opt(code::PARAM_REQUEST_LIST, &[1, 3, 6, 15, 150]);
    let r = reply(&e.handle(&pc.encode(), &voice(), t(0)));
    assert!(r.get(150).is_none(), "the pc class gets no TFTP list");
    let phone = reply(&e.handle(&discover(mac(4)).encode(), &voice(), t(0)));
    assert_eq!(phone.ip_list(150), vec![T1, T2]);
    let req = Request::decode(&discover(mac(4)).encode())
        .unwrap()
        .vendor_class()
        .unwrap();
    assert!(req.ends_with("7941G"), "NUL stripped: {req:?}");
}

#[test]
fn relayed_requests_use_the_giaddr_pool_go_to_the_relay_and_echo_option_82_last() {
    let mut e = engine();
    let rai = [1u8, 4, b'p', b'o', b'r', b't', 2, 2, 0xab, 0xcd];
    let mut d = discover(mac(5)).opt(code::RELAY_AGENT_INFO, &rai);
    d.giaddr = Ipv4Addr::new(198, 19, 20, 1);
    let o = e.handle(&d.encode(), &voice(), t(0));
    let r = reply(&o);
    assert_eq!(r.yiaddr, Ipv4Addr::new(198, 19, 20, 10));
    assert_eq!(r.giaddr, Ipv4Addr::new(198, 19, 20, 1));
    assert_eq!(r.ip_list(150), vec![T2], "per-pool option 150");
    assert_eq!(
        o.reply.as_ref().unwrap().dest,
        Destination::Relay(Ipv4Addr::new(198, 19, 20, 1))
    );
    assert_eq!(r.get(82), Some(&rai[..]));
    assert_eq!(
        r.options.last().unwrap().0,
        82,
        "option 82 is the last option"
    );
}

#[test]
fn link_selection_suboption_picks_the_pool() {
    let mut e = engine();
    let rai = [5u8, 4, 198, 19, 20, 0];
    let mut d = discover(mac(6)).opt(code::RELAY_AGENT_INFO, &rai);
    d.giaddr = Ipv4Addr::new(203, 0, 113, 1);
    let r = reply(&e.handle(&d.encode(), &voice(), t(0)));
    assert_eq!(r.yiaddr, Ipv4Addr::new(198, 19, 20, 10));
}

#[test]
fn reply_delivery_follows_rfc2131_section_4_1() {
    let mut e = engine();
    // No broadcast flag, no ciaddr: unicast to yiaddr at chaddr.
    let o = e.handle(&discover(mac(7)).encode(), &voice(), t(0));
    let ip = reply(&o).yiaddr;
    assert_eq!(
        o.reply.unwrap().dest,
        Destination::UnicastHw {
            ip,
            mac: Mac(mac(7))
        }
    );
    // Broadcast flag: broadcast.
    let mut d = discover(mac(8));
    d.flags = 0x8000;
    let o = e.handle(&d.encode(), &voice(), t(0));
    assert_eq!(o.reply.as_ref().unwrap().dest, Destination::Broadcast);
    assert_eq!(reply(&o).flags, 0x8000);
    // Renewal (ciaddr set): unicast to ciaddr.
    let ip = dora(&mut e, mac(9), t(0));
    let mut renew = ClientMsg::new(3, mac(9), 11);
    renew.ciaddr = ip;
    let o = e.handle(&renew.encode(), &voice(), t(100));
    assert_eq!(reply(&o).msg_type(), Some(5));
    assert_eq!(reply(&o).ciaddr, ip);
    assert_eq!(o.reply.unwrap().dest, Destination::Unicast(ip));
    // NAK without relay: broadcast.
    let bad = ClientMsg::new(3, mac(10), 12).requested(Ipv4Addr::new(10, 1, 1, 1));
    let o = e.handle(&bad.encode(), &voice(), t(0));
    assert_eq!(reply(&o).msg_type(), Some(6));
    assert_eq!(o.reply.unwrap().dest, Destination::Broadcast);
}

#[test]
fn renew_extends_release_frees_and_the_address_is_reused() {
    let mut e = engine();
    let ip = dora(&mut e, mac(11), t(0));
    let mut renew = ClientMsg::new(3, mac(11), 1);
    renew.ciaddr = ip;
    let o = e.handle(&renew.encode(), &voice(), t(3000));
    match &o.changes[..] {
        [LeaseChange::Upsert(r)] => assert_eq!(r.expires, dhcp_secs(t(3000)) + 3600),
        other => panic!("{other:?}"),
    }
    let mut rel = ClientMsg::new(7, mac(11), 2).server_id(SRV);
    rel.ciaddr = ip;
    let o = e.handle(&rel.encode(), &voice(), t(3001));
    assert!(o.reply.is_none(), "no reply to RELEASE");
    assert!(matches!(&o.changes[..], [LeaseChange::Upsert(r)] if r.state == LeaseState::Released));
    assert!(matches!(o.events[0].kind, EventKind::DhcpRelease { ip: i } if i == ip));
    // Fill the pool with others: the released address is handed out again.
    let got: Vec<_> = (20..30).map(|n| dora(&mut e, mac(n), t(3002))).collect();
    assert!(got.contains(&ip));
}

fn dhcp_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_declined_address_is_quarantined() {
    let mut e = engine();
    let ip = dora(&mut e, mac(12), t(0));
    let dec = ClientMsg::new(4, mac(12), 3).requested(ip).server_id(SRV);
    let o = e.handle(&dec.encode(), &voice(), t(1));
    assert!(matches!(&o.changes[..], [LeaseChange::Upsert(r)] if r.state == LeaseState::Declined));
    assert!(matches!(o.events[0].kind, EventKind::DhcpDecline { ip: i } if i == ip));
    // Nine addresses remain: nine clients get them, the tenth gets nothing.
    let mut got = vec![];
    for n in 40..49 {
        got.push(dora(&mut e, mac(n), t(2)));
    }
    assert!(!got.contains(&ip));
    let o = e.handle(&discover(mac(49)).encode(), &voice(), t(2));
    assert!(o.reply.is_none(), "pool exhausted: no offer");
    assert_eq!(e.stats().exhausted, 1);
    // Requesting it directly is refused too.
    let r = ClientMsg::new(3, mac(49), 4).requested(ip);
    assert_eq!(
        reply(&e.handle(&r.encode(), &voice(), t(3))).msg_type(),
        Some(6)
    );
    // After the quarantine (3600 s from t=1) the address is reclaimed.
    let ch = e.reclaim_expired(t(3601));
    assert!(ch.contains(&LeaseChange::Delete(ip)));
    assert_eq!(
        dora(&mut e, mac(49), t(3601)),
        ip,
        "others are still bound at 3601"
    );
}

#[test]
fn init_reboot_is_checked() {
    let mut e = engine();
    let ip = dora(&mut e, mac(13), t(0));
    // Own address: ACK.
    let r = ClientMsg::new(3, mac(13), 5).requested(ip);
    assert_eq!(
        reply(&e.handle(&r.encode(), &voice(), t(10))).msg_type(),
        Some(5)
    );
    // Someone else's address: NAK.
    let r = ClientMsg::new(3, mac(14), 6).requested(ip);
    let o = e.handle(&r.encode(), &voice(), t(10));
    assert_eq!(reply(&o).msg_type(), Some(6));
    assert!(matches!(o.events[0].kind, EventKind::DhcpNak { .. }));
    // Wrong network: NAK.
    let r = ClientMsg::new(3, mac(14), 7).requested(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        reply(&e.handle(&r.encode(), &voice(), t(10))).msg_type(),
        Some(6)
    );
}

#[test]
fn choosing_another_server_frees_our_offer() {
    let mut e = engine();
    let o = e.handle(&discover(mac(15)).encode(), &voice(), t(0));
    let ip = reply(&o).yiaddr;
    let r = ClientMsg::new(3, mac(15), 8)
        .requested(Ipv4Addr::new(198, 18, 10, 200))
        .server_id(Ipv4Addr::new(198, 18, 10, 2));
    assert!(e.handle(&r.encode(), &voice(), t(1)).reply.is_none());
    let o = e.handle(&discover(mac(16)).encode(), &voice(), t(1));
    assert_eq!(reply(&o).yiaddr, ip);
}

#[test]
fn inform_gets_options_without_a_lease() {
    let mut e = engine();
    let mut i = ClientMsg::new(8, mac(17), 9).opt(code::PARAM_REQUEST_LIST, PHONE_PRL);
    i.ciaddr = Ipv4Addr::new(198, 18, 10, 50);
    let o = e.handle(&i.encode(), &voice(), t(0));
    let r = reply(&o);
    assert_eq!(r.msg_type(), Some(5));
    assert_eq!(r.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert!(r.get(code::LEASE_TIME).is_none());
    assert_eq!(r.ip_list(150), vec![T1, T2]);
    assert!(o.changes.is_empty());
    assert_eq!(o.reply.unwrap().dest, Destination::Unicast(i.ciaddr));
}

#[test]
fn reservations_from_config_and_from_a_trait_object() {
    let mut c = config();
    c.reservations = vec![Reservation {
        mac: Mac(mac(30)),
        ip: Ipv4Addr::new(198, 18, 10, 100),
    }];
    let db: Arc<dyn Reservations> = Arc::new(StaticReservations::new([(
        Mac(mac(31)),
        Ipv4Addr::new(198, 18, 10, 50),
    )]));
    let mut e = Engine::new(c, Some(db)).unwrap();
    // Others never get .100 even though it is the first address of the range.
    let other = dora(&mut e, mac(32), t(0));
    assert_ne!(other, Ipv4Addr::new(198, 18, 10, 100));
    assert_eq!(dora(&mut e, mac(30), t(0)), Ipv4Addr::new(198, 18, 10, 100));
    // A device-database reservation outside the dynamic range.
    assert_eq!(dora(&mut e, mac(31), t(0)), Ipv4Addr::new(198, 18, 10, 50));
}

#[test]
fn restart_restores_leases() {
    let mut store = MemoryStore::default();
    let mut e = engine();
    let mut ips = vec![];
    for n in 50..55 {
        let o = e.handle(&discover(mac(n)).encode(), &voice(), t(0));
        let ip = reply(&o).yiaddr;
        let r = ClientMsg::new(3, mac(n), 1).requested(ip).server_id(SRV);
        let o = e.handle(&r.encode(), &voice(), t(0));
        store.commit(&o.changes).unwrap();
        ips.push(ip);
    }
    let mut e2 = engine();
    e2.restore(store.load().unwrap());
    assert_eq!(e2.lease_count(), 5);
    // A newcomer gets none of the restored addresses; an old client gets its own back.
    let newcomer = dora(&mut e2, mac(60), t(10));
    assert!(!ips.contains(&newcomer));
    let o = e2.handle(&discover(mac(52)).encode(), &voice(), t(10));
    assert_eq!(reply(&o).yiaddr, ips[2]);
}

#[test]
fn expired_leases_are_reclaimed() {
    let mut e = engine();
    let ips: Vec<_> = (70..80).map(|n| dora(&mut e, mac(n), t(0))).collect();
    let o = e.handle(&discover(mac(80)).encode(), &voice(), t(100));
    assert!(o.reply.is_none(), "full");
    e.reclaim_expired(t(3601));
    let ip = dora(&mut e, mac(80), t(3601));
    assert!(ips.contains(&ip));
}

#[test]
fn pools_are_told_apart_by_interface_and_vlan() {
    let mut c = config();
    let mut data = PoolConfig::new(
        "data",
        "198.18.30.0/24".parse().unwrap(),
        Ipv4Addr::new(198, 18, 30, 10),
        Ipv4Addr::new(198, 18, 30, 20),
    );
    data.interface = Some("trunk".into());
    let mut tagged = PoolConfig::new(
        "voice-tagged",
        "198.18.40.0/24".parse().unwrap(),
        Ipv4Addr::new(198, 18, 40, 10),
        Ipv4Addr::new(198, 18, 40, 20),
    );
    tagged.interface = Some("trunk".into());
    tagged.vlan = Some(100);
    c.pools.push(data);
    c.pools.push(tagged);
    let mut e = Engine::new(c, None).unwrap();
    let at = |iface: &'static str, vlan| Ingress {
        interface: Some(iface),
        vlan,
        local_addr: Some(SRV),
    };
    let r = reply(&e.handle(&discover(mac(90)).encode(), &at("trunk", None), t(0)));
    assert_eq!(r.yiaddr, Ipv4Addr::new(198, 18, 30, 10));
    let r = reply(&e.handle(&discover(mac(91)).encode(), &at("trunk", Some(100)), t(0)));
    assert_eq!(r.yiaddr, Ipv4Addr::new(198, 18, 40, 10));
    let r = reply(&e.handle(&discover(mac(92)).encode(), &at("vvlan", None), t(0)));
    assert_eq!(r.yiaddr, Ipv4Addr::new(198, 18, 10, 100));
    let o = e.handle(&discover(mac(93)).encode(), &at("other", None), t(0));
    assert!(o.reply.is_none());
    assert_eq!(e.stats().no_pool, 1);
}

#[test]
fn a_flood_from_one_mac_is_rate_limited_and_others_still_served() {
    let mut e = engine();
    let mut replies = 0;
    for i in 0..200 {
        let o = e.handle(
            &discover(mac(99)).encode(),
            &voice(),
            t(0) + Duration::from_millis(i),
        );
        replies += usize::from(o.reply.is_some());
    }
    assert_eq!(replies, 10, "the burst, then nothing");
    assert_eq!(e.stats().rate_limited, 190);
    assert!(e
        .handle(&discover(mac(98)).encode(), &voice(), t(0))
        .reply
        .is_some());
}

#[test]
fn bad_input_is_counted_not_fatal() {
    let mut e = engine();
    let good = discover(mac(1)).encode();
    // Truncated.
    assert!(e.handle(&good[..100], &voice(), t(0)).reply.is_none());
    // Wrong op code (a BOOTREPLY sent to the server).
    let mut op = good.clone();
    op[0] = 2;
    assert!(e.handle(&op, &voice(), t(0)).reply.is_none());
    // Absurd option length.
    let mut long = good[..240].to_vec();
    long.extend_from_slice(&[53, 1, 1, 60, 200, b'x']);
    assert!(e.handle(&long, &voice(), t(0)).reply.is_none());
    // No magic cookie (BOOTP).
    let mut bootp = good.clone();
    bootp[236] = 0;
    assert!(e.handle(&bootp, &voice(), t(0)).reply.is_none());
    // A server message type.
    let offer = ClientMsg::new(2, mac(1), 1).encode();
    assert!(e.handle(&offer, &voice(), t(0)).reply.is_none());
    let s = e.stats();
    assert_eq!(s.malformed, 3);
    assert_eq!(s.wrong_op, 2);
    assert_eq!(e.lease_count(), 0);
}

#[test]
fn config_validation_rejects_overlaps_and_bad_ranges() {
    let mut c = config();
    c.pools[1].range_start = Ipv4Addr::new(198, 18, 10, 105);
    c.pools[1].subnet = "198.18.10.0/24".parse().unwrap();
    assert!(Engine::new(c, None).is_err());
    let mut c = config();
    c.pools[0].range_end = Ipv4Addr::new(198, 18, 11, 1);
    assert!(c.validate().is_err());
    assert!("198.18.0.0/33".parse::<Subnet>().is_err());
}

#[test]
fn a_relayed_nak_asks_the_relay_to_broadcast() {
    let mut e = engine();
    let mut r = ClientMsg::new(3, mac(33), 1).requested(Ipv4Addr::new(10, 9, 9, 9));
    r.giaddr = Ipv4Addr::new(198, 19, 20, 1);
    let o = e.handle(&r.encode(), &voice(), t(0));
    let nak = reply(&o);
    assert_eq!(nak.msg_type(), Some(6));
    assert_eq!(nak.flags & 0x8000, 0x8000);
    assert_eq!(nak.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(o.reply.unwrap().dest, Destination::Relay(r.giaddr));
}
