//! The phone's TFTP read (RFC 1350 + 2347/2348/2349) as a sans-IO state machine, and a small
//! tokio driver bound to the phone's leased address.
//!
//! The `tftp` branch's client state machine can replace [`TftpRead`] once merged; the driver
//! and its outcome type stay.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

const RRQ: u16 = 1;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

/// Options and limits of one read.
#[derive(Debug, Clone)]
pub struct TftpOptions {
    /// `blksize` to ask for (None = plain RFC 1350, 512-byte blocks).
    pub blksize: Option<u16>,
    /// Ask for `tsize`.
    pub tsize: bool,
    /// Retransmission timeout.
    pub timeout: Duration,
    pub retries: u32,
    /// Largest file accepted (bytes).
    pub max_size: u64,
}

impl Default for TftpOptions {
    fn default() -> Self {
        TftpOptions {
            blksize: Some(1428),
            tsize: true,
            timeout: Duration::from_secs(1),
            retries: 5,
            max_size: 64 << 20,
        }
    }
}

/// How a read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TftpOutcome {
    /// The whole file.
    Done(Vec<u8>),
    /// ERROR 1 (file not found).
    NotFound(String),
    /// Any other ERROR from the server.
    ServerError(u16, String),
    /// No answer after the retries.
    Timeout { got_any: bool },
    /// The server broke the protocol (bad packet, wrong block, oversized file...).
    Protocol(String),
}

/// Where a packet goes: the server's port 69, or its transfer port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Listen,
    Transfer(u16),
}

/// One read transfer.
#[derive(Debug)]
pub struct TftpRead {
    opts: TftpOptions,
    /// The server's transfer id (port), learnt from its first answer.
    tid: Option<u16>,
    blksize: usize,
    /// Last block acknowledged (0 after OACK).
    acked: u16,
    /// Blocks received, for rollover.
    blocks: u64,
    data: Vec<u8>,
    last: Option<(Vec<u8>, Dest)>,
    pending: Option<(Vec<u8>, Dest)>,
    next: Option<Instant>,
    tries: u32,
    outcome: Option<TftpOutcome>,
    pub tsize: Option<u64>,
}

fn rrq(file: &str, o: &TftpOptions) -> Vec<u8> {
    let mut p = RRQ.to_be_bytes().to_vec();
    p.extend_from_slice(file.as_bytes());
    p.push(0);
    p.extend_from_slice(b"octet\0");
    if let Some(b) = o.blksize {
        p.extend_from_slice(format!("blksize\0{b}\0").as_bytes());
    }
    if o.tsize {
        p.extend_from_slice(b"tsize\x000\x00");
    }
    p
}

fn ack(block: u16) -> Vec<u8> {
    let mut p = ACK.to_be_bytes().to_vec();
    p.extend_from_slice(&block.to_be_bytes());
    p
}

fn error_pkt(code: u16, msg: &str) -> Vec<u8> {
    let mut p = ERROR.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    p
}

/// Splits `a\0b\0...` into strings (lossy), ignoring a missing final NUL.
fn cstrings(b: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = b
        .split(|c| *c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if b.last() == Some(&0) {
        v.pop();
    }
    v
}

impl TftpRead {
    pub fn new(file: &str, opts: TftpOptions, now: Instant) -> Self {
        let p = rrq(file, &opts);
        let next = Some(now + opts.timeout);
        TftpRead {
            opts,
            tid: None,
            blksize: 512,
            acked: 0,
            blocks: 0,
            data: Vec::new(),
            last: Some((p.clone(), Dest::Listen)),
            pending: Some((p, Dest::Listen)),
            next,
            tries: 0,
            outcome: None,
            tsize: None,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(Vec<u8>, Dest)> {
        self.pending.take()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            None
        } else {
            self.next
        }
    }

    /// Set once the transfer is over.
    pub fn outcome(&self) -> Option<&TftpOutcome> {
        self.outcome.as_ref()
    }

    pub fn take_outcome(&mut self) -> Option<TftpOutcome> {
        self.outcome.take()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.next else { return };
        if now < at || self.outcome.is_some() {
            return;
        }
        self.tries += 1;
        if self.tries > self.opts.retries {
            self.outcome = Some(TftpOutcome::Timeout {
                got_any: self.tid.is_some(),
            });
            self.next = None;
            return;
        }
        self.pending = self.last.clone();
        self.next = Some(now + self.opts.timeout);
    }

    fn finish(&mut self, o: TftpOutcome) {
        self.outcome = Some(o);
        self.next = None;
    }

    /// Feeds a datagram from the server's port `from_port`.
    pub fn handle_datagram(&mut self, pkt: &[u8], from_port: u16, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        match self.tid {
            None => self.tid = Some(from_port),
            Some(t) if t != from_port => {
                // RFC 1350: an unknown TID gets ERROR 5; the transfer goes on.
                self.pending = Some((
                    error_pkt(5, "unknown transfer id"),
                    Dest::Transfer(from_port),
                ));
                return;
            }
            Some(_) => {}
        }
        let tid = Dest::Transfer(from_port);
        if pkt.len() < 4 {
            self.finish(TftpOutcome::Protocol(format!(
                "{}-byte packet from the server",
                pkt.len()
            )));
            return;
        }
        let op = u16::from_be_bytes([pkt[0], pkt[1]]);
        match op {
            OACK => {
                if self.blocks > 0 || self.acked != 0 {
                    return; // late duplicate
                }
                let kv = cstrings(&pkt[2..]);
                for pair in kv.chunks(2) {
                    let [k, v] = pair else {
                        self.finish(TftpOutcome::Protocol("odd OACK option list".into()));
                        return;
                    };
                    match k.to_ascii_lowercase().as_str() {
                        "blksize" => match v.parse::<usize>() {
                            Ok(b)
                                if (8..=65464).contains(&b)
                                    && self.opts.blksize.is_some_and(|a| b <= usize::from(a)) =>
                            {
                                self.blksize = b
                            }
                            _ => {
                                self.pending = Some((error_pkt(8, "bad blksize in OACK"), tid));
                                self.finish(TftpOutcome::Protocol(format!(
                                    "OACK blksize {v:?} not acceptable"
                                )));
                                return;
                            }
                        },
                        "tsize" => self.tsize = v.parse().ok(),
                        _ => {}
                    }
                }
                if self.tsize.is_some_and(|t| t > self.opts.max_size) {
                    self.pending = Some((error_pkt(3, "too large"), tid));
                    self.finish(TftpOutcome::Protocol("file larger than the limit".into()));
                    return;
                }
                self.send(ack(0), tid, now);
            }
            DATA => {
                let block = u16::from_be_bytes([pkt[2], pkt[3]]);
                let payload = &pkt[4..];
                let expected = self.acked.wrapping_add(1);
                if block == expected {
                    if payload.len() > self.blksize {
                        self.finish(TftpOutcome::Protocol(format!(
                            "DATA of {} bytes with blksize {}",
                            payload.len(),
                            self.blksize
                        )));
                        return;
                    }
                    if self.data.len() as u64 + payload.len() as u64 > self.opts.max_size {
                        self.pending = Some((error_pkt(3, "too large"), tid));
                        self.finish(TftpOutcome::Protocol("file larger than the limit".into()));
                        return;
                    }
                    self.data.extend_from_slice(payload);
                    self.acked = block;
                    self.blocks += 1;
                    self.send(ack(block), tid, now);
                    if payload.len() < self.blksize {
                        let d = std::mem::take(&mut self.data);
                        self.finish(TftpOutcome::Done(d));
                    }
                } else if block == self.acked {
                    // Our ACK was lost: re-ACK (never retransmit on a duplicate otherwise).
                    self.pending = Some((ack(block), tid));
                }
            }
            ERROR => {
                let code = u16::from_be_bytes([pkt[2], pkt[3]]);
                let msg = cstrings(&pkt[4..]).into_iter().next().unwrap_or_default();
                if code == 1 {
                    self.finish(TftpOutcome::NotFound(msg));
                } else {
                    self.finish(TftpOutcome::ServerError(code, msg));
                }
            }
            other => {
                self.pending = Some((error_pkt(4, "illegal operation"), tid));
                self.finish(TftpOutcome::Protocol(format!("unexpected opcode {other}")));
            }
        }
    }

    fn send(&mut self, p: Vec<u8>, d: Dest, now: Instant) {
        self.last = Some((p.clone(), d));
        self.pending = Some((p, d));
        self.tries = 0;
        self.next = Some(now + self.opts.timeout);
    }
}

/// Reads `file` from `server` (port `port`, normally 69) with a socket bound to `local`.
pub async fn fetch(
    local: Ipv4Addr,
    server: Ipv4Addr,
    port: u16,
    file: &str,
    opts: TftpOptions,
) -> std::io::Result<TftpOutcome> {
    let sock = UdpSocket::bind(SocketAddrV4::new(local, 0)).await?;
    // Room for the largest block asked for plus an error message; a longer DATA still shows
    // (truncated, one byte over the block size) and is refused. Not 64 KiB zeroed per file.
    let mut buf = vec![0u8; usize::from(opts.blksize.unwrap_or(512)).max(512) + 512];
    let mut t = TftpRead::new(file, opts, Instant::now());
    loop {
        while let Some((p, d)) = t.poll_transmit() {
            let to = match d {
                Dest::Listen => SocketAddrV4::new(server, port),
                Dest::Transfer(tp) => SocketAddrV4::new(server, tp),
            };
            sock.send_to(&p, to).await?;
        }
        if let Some(o) = t.take_outcome() {
            return Ok(o);
        }
        let Some(deadline) = t.poll_timeout() else {
            return Ok(TftpOutcome::Protocol("transfer stalled".into()));
        };
        let dl = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(dl, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, SocketAddr::V4(from)))) if *from.ip() == server => {
                t.handle_datagram(&buf[..n], from.port(), Instant::now());
            }
            Ok(Ok(_)) => {} // from elsewhere: ignore
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable for the RRQ: nobody serves TFTP there.
                return Ok(TftpOutcome::Timeout { got_any: false });
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => t.handle_timeout(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(block: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = DATA.to_be_bytes().to_vec();
        p.extend_from_slice(&block.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn rrq_asks_for_options() {
        let now = Instant::now();
        let mut t = TftpRead::new("SEP001B54AABBCC.cnf.xml", TftpOptions::default(), now);
        let (p, d) = t.poll_transmit().unwrap();
        assert_eq!(d, Dest::Listen);
        assert_eq!(
            p,
            b"\x00\x01SEP001B54AABBCC.cnf.xml\0octet\0blksize\x001428\0tsize\x000\0".to_vec()
        );
    }

    #[test]
    fn oack_then_blocks() {
        let now = Instant::now();
        let mut t = TftpRead::new("f", TftpOptions::default(), now);
        t.poll_transmit();
        t.handle_datagram(b"\x00\x06blksize\x0010\0tsize\x0015\0", 4000, now);
        assert_eq!(t.tsize, Some(15));
        assert_eq!(
            t.poll_transmit(),
            Some((vec![0, 4, 0, 0], Dest::Transfer(4000)))
        );
        t.handle_datagram(&data(1, b"0123456789"), 4000, now);
        assert_eq!(
            t.poll_transmit(),
            Some((vec![0, 4, 0, 1], Dest::Transfer(4000)))
        );
        // A stranger gets ERROR 5 and does not disturb the transfer.
        t.handle_datagram(&data(2, b"xxxxx"), 4001, now);
        assert_eq!(t.poll_transmit().unwrap().1, Dest::Transfer(4001));
        // Duplicate of block 1: re-ACK.
        t.handle_datagram(&data(1, b"0123456789"), 4000, now);
        assert_eq!(
            t.poll_transmit(),
            Some((vec![0, 4, 0, 1], Dest::Transfer(4000)))
        );
        t.handle_datagram(&data(2, b"abcde"), 4000, now);
        assert_eq!(
            t.outcome(),
            Some(&TftpOutcome::Done(b"0123456789abcde".to_vec()))
        );
    }

    #[test]
    fn no_options_and_not_found_and_timeout() {
        let now = Instant::now();
        let o = TftpOptions {
            blksize: None,
            tsize: false,
            ..Default::default()
        };
        let mut t = TftpRead::new("f", o.clone(), now);
        t.poll_transmit();
        t.handle_datagram(&data(1, &[7u8; 100]), 5000, now);
        assert_eq!(t.outcome(), Some(&TftpOutcome::Done(vec![7u8; 100])));

        let mut t = TftpRead::new("f", o.clone(), now);
        t.handle_datagram(b"\x00\x05\x00\x01File not found\0", 5000, now);
        assert_eq!(
            t.outcome(),
            Some(&TftpOutcome::NotFound("File not found".into()))
        );

        let mut t = TftpRead::new("f", o, now);
        let mut at = now;
        for _ in 0..10 {
            at = t.poll_timeout().unwrap_or(at);
            t.handle_timeout(at);
            if t.outcome().is_some() {
                break;
            }
            assert!(t.poll_transmit().is_some());
        }
        assert_eq!(t.outcome(), Some(&TftpOutcome::Timeout { got_any: false }));
    }

    #[test]
    fn oversized_blocks_are_a_protocol_error() {
        let now = Instant::now();
        let mut t = TftpRead::new("f", TftpOptions::default(), now);
        t.handle_datagram(&data(1, &[0u8; 600]), 5000, now);
        assert!(matches!(t.outcome(), Some(TftpOutcome::Protocol(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..8)) {
            let now = Instant::now();
            let mut t = TftpRead::new("f", TftpOptions::default(), now);
            for p in &pkts {
                t.handle_datagram(p, 6000, now);
                let _ = t.poll_transmit();
            }
        }
    }
}
