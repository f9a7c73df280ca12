//! The server side of one read transfer, sans-IO.
//!
//! Drive it like quinn-proto: feed datagrams with [`ServerTransfer::handle`], call
//! [`ServerTransfer::handle_timeout`] when [`ServerTransfer::poll_timeout`] passes, and send
//! whatever [`ServerTransfer::poll_transmit`] writes until it returns `false`. The transfer
//! never reads a clock and never touches a socket.
//!
//! Retransmission happens **only on timeout**: a duplicate ACK is counted and ignored, which is
//! what prevents the Sorcerer's Apprentice syndrome (RFC 1123 4.2.3.1).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::options::{negotiate, Negotiated, OptionLimits};
use crate::packet::{encode_data, encode_error, DecodeError, ErrorCode, Mode, Packet, Request};

/// Timer and retry policy of a server transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    pub limits: OptionLimits,
    /// First retransmission timeout when the client did not ask for one.
    pub initial_timeout: Duration,
    /// Back-off doubles the timeout up to this.
    pub max_timeout: Duration,
    /// Retransmissions of one packet (or window) before the transfer is abandoned.
    pub max_retries: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: OptionLimits::default(),
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            max_retries: 5,
        }
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last block was acknowledged.
    Completed { bytes: u64 },
    /// No acknowledgement after all retries.
    TimedOut,
    /// The client sent an ERROR.
    ClientError { code: ErrorCode, message: String },
}

/// Why a request cannot become a transfer; the driver sends this as an ERROR packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: &'static str,
}

/// Counters of odd things the peer did during one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Datagrams that were not TFTP.
    pub malformed: u32,
    /// ACKs repeating the last acknowledged block (ignored: no retransmission).
    pub duplicate_acks: u32,
    /// ACKs for blocks never sent.
    pub bad_acks: u32,
    /// Valid packets that make no sense on a read transfer (DATA, RRQ, OACK...).
    pub unexpected: u32,
    /// Packets re-sent after a timeout.
    pub retransmits: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// OACK sent (or to send), waiting for ACK 0.
    Oack,
    Data,
    Done(Outcome),
}

/// One read transfer, from the first OACK/DATA to the final ACK.
#[derive(Debug)]
pub struct ServerTransfer {
    data: Bytes,
    negotiated: Negotiated,
    blksize: usize,
    window: u64,
    /// Number of DATA blocks, including the final short (possibly empty) one.
    total_blocks: u64,
    phase: Phase,
    oack: Vec<u8>,
    oack_pending: bool,
    /// Highest block acknowledged (0 = none).
    acked: u64,
    /// Next block to send.
    next: u64,
    /// Highest block sent so far.
    sent_hi: u64,
    rto: Duration,
    base_rto: Duration,
    cfg: ServerConfig,
    retries: u32,
    deadline: Option<Instant>,
    /// Set when the last transmit round was a retransmission (for the stats).
    resending: bool,
    stats: TransferStats,
}

impl ServerTransfer {
    /// Starts a read transfer of `data` for `req`.
    pub fn new(
        req: &Request<'_>,
        data: Bytes,
        cfg: &ServerConfig,
    ) -> Result<ServerTransfer, Refusal> {
        let data = match req.mode {
            Mode::Octet => data,
            Mode::Netascii => Bytes::from(to_netascii(&data)),
            Mode::Mail => {
                return Err(Refusal {
                    code: ErrorCode::IllegalOperation,
                    message: "mail mode is not supported",
                })
            }
        };
        let negotiated = negotiate(&req.options, data.len() as u64, &cfg.limits);
        let blksize = usize::from(negotiated.blksize);
        let total_blocks = data.len() as u64 / blksize as u64 + 1;
        let base_rto = negotiated.timeout.unwrap_or(cfg.initial_timeout);
        let mut oack = Vec::new();
        let phase = if negotiated.oack.is_empty() {
            Phase::Data
        } else {
            let opts: Vec<(&str, &str)> = negotiated
                .oack
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Packet::Oack { options: opts }.encode(&mut oack);
            Phase::Oack
        };
        Ok(ServerTransfer {
            data,
            window: u64::from(negotiated.windowsize),
            negotiated,
            blksize,
            total_blocks,
            oack_pending: phase == Phase::Oack,
            phase,
            oack,
            acked: 0,
            next: 1,
            sent_hi: 0,
            rto: base_rto,
            base_rto,
            cfg: *cfg,
            retries: 0,
            deadline: None,
            resending: false,
            stats: TransferStats::default(),
        })
    }

    /// What was negotiated (blksize, windowsize, the OACK sent).
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Bytes the transfer carries (after netascii conversion).
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Whether the file is empty (one empty DATA block).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes acknowledged by the client so far.
    pub fn bytes_acked(&self) -> u64 {
        (self.acked.saturating_mul(self.blksize as u64)).min(self.data.len() as u64)
    }

    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.phase {
            Phase::Done(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called. Changes after
    /// `poll_transmit`, `handle` and `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            None
        } else {
            self.deadline
        }
    }

    /// Writes the next datagram to send into `buf` (cleared first). Returns `false` when
    /// there is nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        match self.phase {
            Phase::Done(_) => false,
            Phase::Oack => {
                if !self.oack_pending {
                    return false;
                }
                self.oack_pending = false;
                buf.extend_from_slice(&self.oack);
                self.arm(now);
                true
            }
            Phase::Data => {
                let limit = (self.acked + self.window).min(self.total_blocks);
                if self.next > limit {
                    return false;
                }
                let idx = self.next;
                let start = ((idx - 1) as usize).saturating_mul(self.blksize);
                let end = start.saturating_add(self.blksize).min(self.data.len());
                let chunk = self.data.get(start..end).unwrap_or(&[]);
                encode_data(buf, idx as u16, chunk);
                if idx <= self.sent_hi {
                    self.stats.retransmits += 1;
                }
                self.sent_hi = self.sent_hi.max(idx);
                self.next += 1;
                if self.next > limit {
                    // Window complete: wait for its ACK.
                    self.arm(now);
                }
                true
            }
        }
    }

    /// Handles one datagram from the client's transfer port.
    pub fn handle(&mut self, datagram: &[u8], now: Instant) -> Result<(), DecodeError> {
        if self.is_done() {
            return Ok(());
        }
        let packet = match Packet::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        match packet {
            Packet::Ack { block } => self.on_ack(block, now),
            Packet::Error { code, message } => {
                self.phase = Phase::Done(Outcome::ClientError {
                    code,
                    message: message.to_string(),
                });
            }
            _ => self.stats.unexpected += 1,
        }
        Ok(())
    }

    fn on_ack(&mut self, block: u16, now: Instant) {
        match self.phase {
            Phase::Oack => {
                if block == 0 {
                    self.phase = Phase::Data;
                    self.progress(now);
                } else {
                    self.stats.bad_acks += 1;
                }
            }
            Phase::Data => {
                if block == self.acked as u16 {
                    // Duplicate (also ACK 0 repeated after an OACK): never retransmit here.
                    self.stats.duplicate_acks += 1;
                    return;
                }
                // Which sent block does this 16-bit number name? Only (acked, sent_hi] counts.
                let delta = block.wrapping_sub(self.acked as u16);
                let idx = self.acked + u64::from(delta);
                if delta == 0 || idx > self.sent_hi {
                    self.stats.bad_acks += 1;
                    return;
                }
                self.acked = idx;
                if self.acked >= self.total_blocks {
                    self.phase = Phase::Done(Outcome::Completed {
                        bytes: self.data.len() as u64,
                    });
                    return;
                }
                // RFC 7440: an ACK inside the window restarts sending from the block after it.
                self.next = self.acked + 1;
                self.progress(now);
            }
            Phase::Done(_) => {}
        }
    }

    fn progress(&mut self, now: Instant) {
        self.retries = 0;
        self.rto = self.base_rto;
        self.resending = false;
        self.deadline = Some(now + self.rto);
    }

    fn arm(&mut self, now: Instant) {
        self.deadline = Some(now + self.rto);
    }

    /// Call when `poll_timeout` has passed: schedules a retransmission with back-off, or ends
    /// the transfer after `max_retries`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if self.is_done() || now < deadline {
            return;
        }
        if self.retries >= self.cfg.max_retries {
            self.phase = Phase::Done(Outcome::TimedOut);
            self.deadline = None;
            return;
        }
        self.retries += 1;
        self.resending = true;
        self.rto = (self.rto * 2).min(self.cfg.max_timeout.max(self.base_rto));
        self.deadline = Some(now + self.rto);
        match self.phase {
            Phase::Oack => {
                self.oack_pending = true;
                self.stats.retransmits += 1;
            }
            Phase::Data => self.next = self.acked + 1,
            Phase::Done(_) => {}
        }
    }

    /// An ERROR packet to send when the server itself aborts (e.g. shutdown).
    pub fn abort(&mut self, buf: &mut Vec<u8>, code: ErrorCode, message: &str) {
        buf.clear();
        encode_error(buf, code, message);
        if !self.is_done() {
            self.phase = Phase::Done(Outcome::ClientError {
                code,
                message: format!("aborted by server: {message}"),
            });
        }
    }
}

/// RFC 764 netascii: LF -> CR LF, CR -> CR NUL.
pub fn to_netascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::encode_ack;

    fn req<'a>(opts: Vec<(&'a str, &'a str)>) -> Request<'a> {
        Request {
            filename: "f",
            mode: Mode::Octet,
            options: opts,
        }
    }

    fn ack(n: u16) -> Vec<u8> {
        let mut v = Vec::new();
        encode_ack(&mut v, n);
        v
    }

    fn drain(t: &mut ServerTransfer, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while t.poll_transmit(now, &mut buf) {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn exact_multiple_sends_empty_last_block() {
        let now = Instant::now();
        let data = Bytes::from(vec![7u8; 1024]);
        let mut t = ServerTransfer::new(&req(vec![]), data, &ServerConfig::default()).unwrap();
        let p = drain(&mut t, now);
        assert_eq!(p.len(), 1);
        assert_eq!(&p[0][..4], b"\x00\x03\x00\x01");
        t.handle(&ack(1), now).unwrap();
        let p = drain(&mut t, now);
        assert_eq!(&p[0][..4], b"\x00\x03\x00\x02");
        t.handle(&ack(2), now).unwrap();
        let p = drain(&mut t, now);
        assert_eq!(p, vec![b"\x00\x03\x00\x03".to_vec()]);
        assert!(!t.is_done());
        t.handle(&ack(3), now).unwrap();
        assert_eq!(t.outcome(), Some(&Outcome::Completed { bytes: 1024 }));
    }

    #[test]
    fn duplicate_ack_never_retransmits() {
        let now = Instant::now();
        let data = Bytes::from(vec![1u8; 2000]);
        let mut t = ServerTransfer::new(&req(vec![]), data, &ServerConfig::default()).unwrap();
        drain(&mut t, now);
        t.handle(&ack(1), now).unwrap();
        assert_eq!(drain(&mut t, now).len(), 1);
        // The client's ACK 1 shows up again (delayed duplicate): nothing must go out.
        t.handle(&ack(1), now).unwrap();
        assert!(drain(&mut t, now).is_empty());
        assert_eq!(t.stats().duplicate_acks, 1);
        // An ACK for a block never sent is ignored too.
        t.handle(&ack(9), now).unwrap();
        assert!(drain(&mut t, now).is_empty());
        assert_eq!(t.stats().bad_acks, 1);
    }

    #[test]
    fn oack_then_ack0_then_data() {
        let now = Instant::now();
        let data = Bytes::from(vec![1u8; 3000]);
        let mut t = ServerTransfer::new(
            &req(vec![("blksize", "1428"), ("tsize", "0")]),
            data,
            &ServerConfig::default(),
        )
        .unwrap();
        let p = drain(&mut t, now);
        assert_eq!(
            p[0],
            b"\x00\x06blksize\x001428\x00tsize\x003000\x00".to_vec()
        );
        t.handle(&ack(0), now).unwrap();
        let p = drain(&mut t, now);
        assert_eq!(p[0].len(), 4 + 1428);
    }

    #[test]
    fn retransmits_with_backoff_then_gives_up() {
        let t0 = Instant::now();
        let cfg = ServerConfig {
            max_retries: 3,
            ..ServerConfig::default()
        };
        let mut t = ServerTransfer::new(&req(vec![]), Bytes::from_static(b"hi"), &cfg).unwrap();
        drain(&mut t, t0);
        let mut gaps = Vec::new();
        let mut now = t0;
        while let Some(d) = t.poll_timeout() {
            gaps.push(d - now);
            now = d;
            t.handle_timeout(now);
            drain(&mut t, now);
        }
        assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(
            gaps,
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8)
            ]
        );
        assert_eq!(t.stats().retransmits, 3);
    }

    #[test]
    fn window_sends_several_and_resumes_after_partial_ack() {
        let now = Instant::now();
        let data = Bytes::from(vec![0u8; 512 * 6 + 10]);
        let mut t = ServerTransfer::new(
            &req(vec![("windowsize", "4")]),
            data,
            &ServerConfig::default(),
        )
        .unwrap();
        drain(&mut t, now);
        t.handle(&ack(0), now).unwrap();
        let p = drain(&mut t, now);
        assert_eq!(p.len(), 4);
        // Client got 1 and 2 only.
        t.handle(&ack(2), now).unwrap();
        let p = drain(&mut t, now);
        let blocks: Vec<u16> = p.iter().map(|d| u16::from_be_bytes([d[2], d[3]])).collect();
        assert_eq!(blocks, vec![3, 4, 5, 6]);
    }

    #[test]
    fn mail_mode_refused() {
        let r = Request {
            filename: "f",
            mode: Mode::Mail,
            options: vec![],
        };
        let e = ServerTransfer::new(&r, Bytes::new(), &ServerConfig::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::IllegalOperation);
    }

    #[test]
    fn block_numbers_roll_over() {
        let now = Instant::now();
        let data = Bytes::from(vec![0u8; 8 * 70000]);
        let mut t =
            ServerTransfer::new(&req(vec![("blksize", "8")]), data, &ServerConfig::default())
                .unwrap();
        drain(&mut t, now);
        t.handle(&ack(0), now).unwrap();
        let mut buf = Vec::new();
        let mut n = 0u64;
        while !t.is_done() {
            assert!(t.poll_transmit(now, &mut buf));
            let b = u16::from_be_bytes([buf[2], buf[3]]);
            t.handle(&ack(b), now).unwrap();
            n += 1;
        }
        assert_eq!(n, 70001);
        assert_eq!(t.outcome(), Some(&Outcome::Completed { bytes: 8 * 70000 }));
    }
}
