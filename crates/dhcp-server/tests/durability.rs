//! Leases are durable before they are acknowledged, and survive a restart: driven through a
//! relay socket (giaddr) in the client namespace, with the real server and SQLite file.
//! Needs root (namespaces); skips otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use dhcp::client::{ClientMsg, ParsedReply};
use dhcp::{LeaseChange, LeaseRecord, LeaseStore, StoreError};
use journal::VecSink;

struct Relay {
    sock: UdpSocket,
    giaddr: Ipv4Addr,
    server: SocketAddr,
}

impl Relay {
    fn new(lab: &Lab) -> Relay {
        let giaddr = lab.ip(2);
        sh(&[
            "ip",
            "-n",
            &lab.cli_ns,
            "addr",
            "add",
            &format!("{giaddr}/24"),
            "dev",
            &lab.cli_if,
        ]);
        let sock = socket_in(&lab.cli_ns, SocketAddr::from((giaddr, 67)));
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        Relay {
            sock,
            giaddr,
            server: SocketAddr::from((lab.ip(1), 67)),
        }
    }

    /// Sends `m` as relayed and returns the reply, if any; retransmits after 1.5 s, twice,
    /// as a client does (a loaded test machine can hold a durable commit back that long).
    fn ask(&self, mut m: ClientMsg) -> Option<ParsedReply> {
        m.giaddr = self.giaddr;
        let bytes = m.encode();
        let mut buf = [0u8; 1500];
        for _ in 0..3 {
            self.sock.send_to(&bytes, self.server).unwrap();
            while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                match ParsedReply::parse(&buf[..n]) {
                    Some(r) if r.xid == m.xid => return Some(r),
                    _ => continue,
                }
            }
        }
        None
    }
}

fn mac(n: u8) -> [u8; 6] {
    [0x00, 0x1b, 0x54, 0x11, 0x22, n]
}

struct FailingStore;

impl LeaseStore for FailingStore {
    fn load(&mut self) -> Result<Vec<LeaseRecord>, StoreError> {
        Ok(vec![])
    }
    fn commit(&mut self, _: &[LeaseChange]) -> Result<(), StoreError> {
        Err(StoreError::Backend("disk full (simulated)".into()))
    }
}

#[test]
fn no_ack_when_the_lease_cannot_be_written() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new('d', 104);
    let sink = VecSink::new();
    let mut cfg = lab.config(&dir.path().join("db"));
    cfg.dhcp.pools[0].interface = None;
    cfg.listen = vec![lab.srv_if.clone()];
    let srv = Server::start_with(&lab, cfg, sink.clone(), Some(Box::new(FailingStore)));
    let relay = Relay::new(&lab);
    let offer = relay
        .ask(ClientMsg::new(1, mac(1), 1))
        .expect("an offer (no write needed)");
    assert_eq!(offer.msg_type(), Some(2));
    let req = ClientMsg::new(3, mac(1), 2)
        .requested(offer.yiaddr)
        .server_id(lab.ip(1));
    assert!(
        relay.ask(req).is_none(),
        "an ACK went out without a durable lease"
    );
    let report = srv.stop();
    // The REQUEST and its two retransmissions: each answer withheld.
    assert_eq!(report.io.withheld_replies.load(Ordering::Relaxed), 3);
    assert_eq!(acks(&sink), 0, "no DhcpAck event for an unwritten lease");
}

#[test]
fn a_restart_keeps_every_lease() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("phoneboot.db");
    let lab = Lab::new('e', 105);
    let mut cfg = lab.config(&db);
    cfg.dhcp.pools[0].interface = None;
    cfg.listen = vec![lab.srv_if.clone()];
    let relay = Relay::new(&lab);

    let srv = Server::start(&lab, cfg.clone(), VecSink::new());
    let mut held = vec![];
    for n in 0..20u8 {
        let offer = relay
            .ask(ClientMsg::new(1, mac(n), u32::from(n) * 2 + 1))
            .unwrap();
        let ack = relay
            .ask(
                ClientMsg::new(3, mac(n), u32::from(n) * 2 + 2)
                    .requested(offer.yiaddr)
                    .server_id(lab.ip(1)),
            )
            .unwrap();
        assert_eq!(ack.msg_type(), Some(5));
        held.push(ack.yiaddr);
    }
    srv.stop();

    let srv = Server::start(&lab, cfg, VecSink::new());
    // Newcomers never get a held address.
    for n in 100..120u8 {
        let offer = relay
            .ask(ClientMsg::new(1, mac(n), 1000 + u32::from(n)))
            .unwrap();
        assert!(
            !held.contains(&offer.yiaddr),
            "{} offered twice",
            offer.yiaddr
        );
    }
    // A newcomer asking for a held address is refused; its owner gets it confirmed.
    let nak = relay
        .ask(ClientMsg::new(3, mac(200), 5000).requested(held[3]))
        .unwrap();
    assert_eq!(nak.msg_type(), Some(6));
    let ack = relay
        .ask(ClientMsg::new(3, mac(3), 5001).requested(held[3]))
        .unwrap();
    assert_eq!(ack.msg_type(), Some(5));
    assert_eq!(ack.yiaddr, held[3]);
    srv.stop();
}
