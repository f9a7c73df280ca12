//! Property tests: codec round trips, arbitrary bytes never panic, and a client and a server
//! transfer wired together in memory over a lossy, duplicating link with a virtual clock.

#![allow(clippy::unwrap_used)]
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use tftp::packet::{ErrorCode, Mode, Packet, Request};
use tftp::{ClientConfig, ClientTransfer, ServerConfig, ServerTransfer};

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./-]{1,40}"
}

fn opts() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z]{1,10}", "[0-9]{1,6}"), 0..5)
}

#[derive(Debug, Clone)]
enum Owned {
    Rrq(String, Mode, Vec<(String, String)>),
    Wrq(String, Mode, Vec<(String, String)>),
    Data(u16, Vec<u8>),
    Ack(u16),
    Error(u16, String),
    Oack(Vec<(String, String)>),
}

fn owned() -> impl Strategy<Value = Owned> {
    let mode = prop_oneof![Just(Mode::Octet), Just(Mode::Netascii), Just(Mode::Mail)];
    prop_oneof![
        (name(), mode.clone(), opts()).prop_map(|(n, m, o)| Owned::Rrq(n, m, o)),
        (name(), mode, opts()).prop_map(|(n, m, o)| Owned::Wrq(n, m, o)),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(b, d)| Owned::Data(b, d)),
        any::<u16>().prop_map(Owned::Ack),
        (any::<u16>(), "[ -~]{0,60}").prop_map(|(c, m)| Owned::Error(c, m)),
        opts().prop_map(Owned::Oack),
    ]
}

fn b(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn borrow(o: &Owned) -> Packet<'_> {
    match o {
        Owned::Rrq(n, m, op) => Packet::Rrq(Request {
            filename: n,
            mode: *m,
            options: b(op),
        }),
        Owned::Wrq(n, m, op) => Packet::Wrq(Request {
            filename: n,
            mode: *m,
            options: b(op),
        }),
        Owned::Data(bl, d) => Packet::Data {
            block: *bl,
            data: d,
        },
        Owned::Ack(bl) => Packet::Ack { block: *bl },
        Owned::Error(c, m) => Packet::Error {
            code: ErrorCode::from_u16(*c),
            message: m,
        },
        Owned::Oack(op) => Packet::Oack { options: b(op) },
    }
}

/// The fuzz body (also in fuzz/fuzz_targets/packet.rs): decoding never panics, and whatever
/// decodes re-encodes to something that decodes to the same packet.
fn fuzz_packet(data: &[u8]) {
    if let Ok(p) = Packet::decode(data) {
        let again = p.to_vec();
        assert_eq!(Packet::decode(&again), Ok(p));
    }
}

/// Feeds arbitrary datagrams to a server transfer: it must never panic.
/// Returns how many datagrams the transfer sent (at least its OACK).
fn fuzz_server(datagrams: &[Vec<u8>]) -> usize {
    let now = Instant::now();
    let req = Request {
        filename: "f",
        mode: Mode::Octet,
        options: vec![("windowsize", "4"), ("blksize", "16")],
    };
    // A refusal here would make the property vacuous: it must be accepted.
    let mut t = ServerTransfer::new(&req, Bytes::from(vec![1u8; 100]), &ServerConfig::default())
        .expect("an octet request with windowsize and blksize is accepted");
    let mut buf = Vec::new();
    let mut sent = 0;
    let mut drain = |t: &mut ServerTransfer, at: Instant| {
        while t.poll_transmit(at, &mut buf) {
            sent += 1;
        }
    };
    drain(&mut t, now);
    for (i, d) in datagrams.iter().enumerate() {
        let _ = t.handle(d, now);
        if i % 3 == 0 {
            t.handle_timeout(now + Duration::from_secs(100));
        }
        drain(&mut t, now);
    }
    sent
}

struct Link {
    /// (deliver at, to_server, bytes)
    q: VecDeque<(Instant, bool, Vec<u8>)>,
    decisions: Vec<u8>,
    i: usize,
    loss_pct: u8,
    dup_pct: u8,
}

impl Link {
    fn roll(&mut self) -> u8 {
        let d = self
            .decisions
            .get(self.i % self.decisions.len().max(1))
            .copied();
        self.i += 1;
        d.unwrap_or(255) % 100
    }
    fn send(&mut self, now: Instant, to_server: bool, p: &[u8]) {
        if self.roll() < self.loss_pct {
            return;
        }
        let at = now + Duration::from_millis(1);
        self.q.push_back((at, to_server, p.to_vec()));
        if self.roll() < self.dup_pct {
            self.q
                .push_back((at + Duration::from_millis(3), to_server, p.to_vec()));
        }
    }
}

struct Run {
    client_ok: bool,
    client_data: Vec<u8>,
    server_data_packets: u64,
    server: ServerTransfer,
}

/// Runs a client and a server transfer against each other until both are done (or virtual
/// time exceeds 10 minutes).
fn simulate(file: &[u8], ccfg: ClientConfig, link: &mut Link) -> Run {
    let t0 = Instant::now();
    let mut now = t0;
    let mut client = ClientTransfer::new("f", ccfg);
    let mut server: Option<ServerTransfer> = None;
    let scfg = ServerConfig {
        max_retries: 8,
        ..ServerConfig::default()
    };
    let mut buf = Vec::new();
    let mut server_data_packets = 0;
    loop {
        while client.poll_transmit(now, &mut buf) {
            link.send(now, true, &buf);
        }
        if let Some(s) = server.as_mut() {
            while s.poll_transmit(now, &mut buf) {
                if buf[1] == 3 {
                    server_data_packets += 1;
                }
                link.send(now, false, &buf);
            }
        }
        let client_done = client.is_done();
        let server_done = server.as_ref().map(|s| s.is_done()).unwrap_or(false);
        if (client_done && (server_done || server.is_none())) || now - t0 > Duration::from_secs(600)
        {
            break;
        }
        // Next event: a delivery or a timer.
        let mut next = link.q.iter().map(|e| e.0).min();
        for d in [
            client.poll_timeout(),
            server.as_ref().and_then(|s| s.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(d, |n: Instant| n.min(d)));
        }
        let Some(next) = next else { break };
        now = now.max(next);
        // Deliver everything due.
        let due: Vec<_> = {
            let mut due = Vec::new();
            let mut rest = VecDeque::new();
            while let Some(e) = link.q.pop_front() {
                if e.0 <= now {
                    due.push(e);
                } else {
                    rest.push_back(e);
                }
            }
            link.q = rest;
            due
        };
        for (_, to_server, p) in due {
            if to_server {
                match (&mut server, Packet::decode(&p)) {
                    (None, Ok(Packet::Rrq(req))) => {
                        server =
                            ServerTransfer::new(&req, Bytes::copy_from_slice(file), &scfg).ok();
                    }
                    (Some(s), Ok(Packet::Rrq(_))) => {
                        // A retransmitted RRQ for a running transfer: the real server ignores it.
                        let _ = s;
                    }
                    (Some(s), _) => {
                        let _ = s.handle(&p, now);
                    }
                    (None, _) => {}
                }
            } else {
                let _ = client.handle(&p, now);
            }
        }
        client.handle_timeout(now);
        if let Some(s) = server.as_mut() {
            s.handle_timeout(now);
        }
    }
    let client_ok = matches!(client.result(), Some(Ok(())));
    Run {
        client_ok,
        client_data: client.into_data(),
        server_data_packets,
        server: server.unwrap_or_else(|| {
            ServerTransfer::new(
                &Request {
                    filename: "f",
                    mode: Mode::Octet,
                    options: vec![],
                },
                Bytes::new(),
                &scfg,
            )
            .unwrap()
        }),
    }
}

proptest! {
    #[test]
    fn codec_round_trips(o in owned()) {
        let p = borrow(&o);
        let wire = p.to_vec();
        prop_assert_eq!(Packet::decode(&wire), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..700)) {
        fuzz_packet(&data);
    }

    #[test]
    fn arbitrary_datagrams_never_panic_a_transfer(
        ds in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..40)
    ) {
        prop_assert!(fuzz_server(&ds) >= 1, "the transfer never sent its OACK");
    }

    /// Lossless link, every ACK possibly duplicated: the server sends each block exactly
    /// once (no Sorcerer's Apprentice) and the client gets the file.
    #[test]
    fn duplicate_acks_cause_no_extra_data(
        len in 0usize..6000,
        blksize in prop::option::of(8u16..1500),
        decisions in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let file: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut link = Link { q: VecDeque::new(), decisions, i: 0, loss_pct: 0, dup_pct: 50 };
        let cfg = ClientConfig { blksize, tsize: true, ..ClientConfig::default() };
        let run = simulate(&file, cfg, &mut link);
        prop_assert!(run.client_ok);
        prop_assert_eq!(&run.client_data, &file);
        let bs = blksize.map(usize::from).unwrap_or(512).min(1468);
        let blocks = (len / bs + 1) as u64;
        prop_assert_eq!(run.server_data_packets, blocks);
        prop_assert_eq!(run.server.stats().retransmits, 0);
    }

    /// Lossy, duplicating link with windows: when the client reports success its bytes equal
    /// the file, and with moderate loss it does succeed.
    #[test]
    fn lossy_link_delivers_identical_bytes(
        len in 0usize..20000,
        blksize in prop::option::of(8u16..1500),
        window in prop::option::of(1u16..8),
        loss in 0u8..15,
        decisions in prop::collection::vec(any::<u8>(), 1..256),
    ) {
        let file: Vec<u8> = (0..len).map(|i| (i * 13 % 253) as u8).collect();
        let mut link = Link { q: VecDeque::new(), decisions, i: 0, loss_pct: loss, dup_pct: 10 };
        let cfg = ClientConfig {
            blksize,
            windowsize: window,
            tsize: true,
            max_retries: 12,
            ..ClientConfig::default()
        };
        let run = simulate(&file, cfg, &mut link);
        if run.client_ok {
            prop_assert_eq!(&run.client_data, &file);
        }
        if loss == 0 {
            prop_assert!(run.client_ok);
        }
    }
}
