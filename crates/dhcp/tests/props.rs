//! Property tests: arbitrary input never panics; concurrent clients, restarts and time never
//! lead to one address being held by two clients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcp::client::{ClientMsg, ParsedReply};
use dhcp::wire::code;
use dhcp::*;
use proptest::prelude::*;

const SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 1);

fn cfg(lease: u32) -> DhcpConfig {
    let mut p = PoolConfig::new(
        "p",
        "198.18.50.0/24".parse().unwrap(),
        Ipv4Addr::new(198, 18, 50, 10),
        Ipv4Addr::new(198, 18, 50, 15),
    );
    p.interface = Some("v".into());
    p.routers = vec![SRV];
    p.lease_secs = lease;
    let mut c = DhcpConfig::new(vec![p]);
    c.default_tftp_servers = vec![SRV];
    c.decline_quarantine_secs = 120;
    c.offer_secs = 30;
    // Property runs send many packets per MAC per simulated second.
    c.rate_limit = RateLimitConfig {
        burst: 1000,
        per_sec: 1000.0,
    };
    // Client 0 has a reservation inside the range.
    c.reservations = vec![Reservation {
        mac: mac::Mac([2, 0, 0, 0, 0, 0]),
        ip: Ipv4Addr::new(198, 18, 50, 12),
    }];
    c
}

fn ingress() -> Ingress<'static> {
    Ingress {
        interface: Some("v"),
        vlan: None,
        local_addr: Some(SRV),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Discover(u8),
    Select(u8),
    Renew(u8),
    InitReboot(u8, u8),
    Release(u8),
    Decline(u8),
    Advance(u16),
    /// Write pending changes, then deliver the replies that waited for them.
    Commit,
    /// Crash: pending (uncommitted) work is lost, the engine reloads from the store.
    Restart,
    Reclaim,
}

fn op(clients: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..clients).prop_map(Op::Discover),
        4 => (0..clients).prop_map(Op::Select),
        2 => (0..clients).prop_map(Op::Renew),
        2 => (0..clients, 0u8..8).prop_map(|(c, i)| Op::InitReboot(c, i)),
        1 => (0..clients).prop_map(Op::Release),
        1 => (0..clients).prop_map(Op::Decline),
        2 => (1u16..400).prop_map(Op::Advance),
        4 => Just(Op::Commit),
        1 => Just(Op::Restart),
        1 => Just(Op::Reclaim),
    ]
}

#[derive(Debug, Default, Clone)]
struct Client {
    /// The transaction the client waits on: replies to older ones are ignored, as real
    /// clients match xid.
    xid: u32,
    offered: Option<Ipv4Addr>,
    bound: Option<(Ipv4Addr, u64)>,
}

/// (changes, client index, reply bytes, time the request was sent).
type Pending = (Vec<LeaseChange>, usize, Option<Vec<u8>>, u64);

fn mac_of(c: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, c]
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn never_one_address_to_two_clients(
        lease in 60u32..600,
        ops in proptest::collection::vec(op(9), 1..250),
    ) {
        let mut store = MemoryStore::default();
        let mut e = Engine::new(cfg(lease), None).unwrap();
        let mut now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let mut clients: Vec<Client> = vec![Client::default(); 9];
        // (changes, client index, reply bytes, time the request was sent) waiting for the next
        // commit. A client counts its lease from the time it sent the REQUEST (RFC 2131 4.4.1).
        let mut pending: Vec<Pending> = vec![];
        let mut xid = 0u32;
        for op in ops {
            xid += 1;
            let (c, msg) = match op {
                Op::Discover(c) => (c, Some(ClientMsg::new(1, mac_of(c), xid))),
                Op::Select(c) => (c, clients[c as usize].offered.map(|ip| {
                    ClientMsg::new(3, mac_of(c), xid).requested(ip).server_id(SRV)
                })),
                Op::Renew(c) => (c, clients[c as usize].bound.map(|(ip, _)| {
                    let mut m = ClientMsg::new(3, mac_of(c), xid);
                    m.ciaddr = ip;
                    m
                })),
                Op::InitReboot(c, i) => (c, Some(ClientMsg::new(3, mac_of(c), xid)
                    .requested(Ipv4Addr::new(198, 18, 50, 9 + i)))),
                Op::Release(c) => (c, clients[c as usize].bound.take().map(|(ip, _)| {
                    let mut m = ClientMsg::new(7, mac_of(c), xid).server_id(SRV);
                    m.ciaddr = ip;
                    m
                })),
                Op::Decline(c) => (c, clients[c as usize].bound.take().map(|(ip, _)| {
                    ClientMsg::new(4, mac_of(c), xid).requested(ip).server_id(SRV)
                })),
                Op::Advance(s) => { now += Duration::from_secs(u64::from(s)); (0, None) }
                Op::Commit => {
                    let changes: Vec<_> = pending.iter().flat_map(|p| p.0.clone()).collect();
                    store.commit(&changes).unwrap();
                    for (_, c, reply, sent) in pending.drain(..) {
                        let Some(bytes) = reply else { continue };
                        let r = ParsedReply::parse(&bytes).unwrap();
                        let cl = &mut clients[c];
                        if r.xid != cl.xid {
                            continue;
                        }
                        match r.msg_type() {
                            Some(2) => cl.offered = Some(r.yiaddr),
                            Some(5) => {
                                let lease = u64::from(r.u32_opt(code::LEASE_TIME).unwrap());
                                cl.bound = Some((r.yiaddr, sent + lease));
                            }
                            Some(6) => { cl.bound = None; cl.offered = None; }
                            other => prop_assert!(false, "unexpected reply {other:?}"),
                        }
                    }
                    (0, None)
                }
                Op::Restart => {
                    pending.clear();
                    e = Engine::new(cfg(lease), None).unwrap();
                    e.restore(store.load().unwrap());
                    (0, None)
                }
                Op::Reclaim => {
                    let ch = e.reclaim_expired(now);
                    pending.push((ch, 0, None, secs(now)));
                    (0, None)
                }
            };
            if let Some(m) = msg {
                clients[c as usize].xid = xid;
                let o = e.handle(&m.encode(), &ingress(), now);
                pending.push((o.changes, c as usize, o.reply.map(|r| r.bytes), secs(now)));
            }
            // The invariant, from the clients' side: live bindings never share an address.
            let t = secs(now);
            let mut holders: HashMap<Ipv4Addr, usize> = HashMap::new();
            for (i, cl) in clients.iter().enumerate() {
                if let Some((ip, exp)) = cl.bound {
                    if exp > t {
                        if let Some(j) = holders.insert(ip, i) {
                            prop_assert!(false, "{ip} held by clients {j} and {i} at {t}");
                        }
                        // The reserved address only ever goes to its owner.
                        if ip == Ipv4Addr::new(198, 18, 50, 12) {
                            prop_assert_eq!(i, 0);
                        }
                    }
                }
            }
        }
    }

    /// The fuzz body (also in fuzz/fuzz_targets/handle.rs): arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut e = Engine::new(cfg(3600), None).unwrap();
        let _ = e.handle(&data, &ingress(), UNIX_EPOCH + Duration::from_secs(1_900_000_000));
    }

    /// Valid requests with random corruption: decoded or refused, never a panic, and the
    /// engine keeps serving.
    #[test]
    fn corrupted_requests_never_panic(
        kind in prop_oneof![Just(1u8), Just(3), Just(4), Just(7), Just(8)],
        flips in proptest::collection::vec((0usize..320, any::<u8>()), 0..8),
        cut in 0usize..400,
        extra in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
    ) {
        let mut m = ClientMsg::new(kind, mac_of(1), 1).requested(Ipv4Addr::new(198, 18, 50, 10));
        for (c, d) in extra { m = m.opt(c, &d); }
        let mut b = m.encode();
        for (at, v) in flips { if at < b.len() { b[at] = v; } }
        b.truncate(cut.max(1));
        let mut e = Engine::new(cfg(3600), None).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let _ = e.handle(&b, &ingress(), t);
        let ok = e.handle(&ClientMsg::new(1, mac_of(2), 2).encode(), &ingress(), t);
        prop_assert!(ok.reply.is_some());
    }
}
