//! The client side of one read transfer, sans-IO (used by the phone emulator and the load
//! client).
//!
//! Same driving pattern as the server: `poll_transmit` until `false`, `handle` each datagram
//! from the server's transfer port, `handle_timeout` when `poll_timeout` passes. The driver
//! locks onto the source port of the first answer (the server's transfer ID) and answers
//! packets from any other port with ERROR 5 without feeding them here.

use std::time::{Duration, Instant};

use crate::options::{parse_decimal, BLKSIZE_MAX, BLKSIZE_MIN, DEFAULT_BLKSIZE};
use crate::packet::{encode_ack, encode_error, DecodeError, ErrorCode, Mode, Packet, Request};

/// What the client asks for and how patient it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub blksize: Option<u16>,
    pub windowsize: Option<u16>,
    /// Ask for `tsize` (sends 0).
    pub tsize: bool,
    /// Ask the server for this retransmission timeout (seconds, 1..=255).
    pub timeout_option: Option<u8>,
    /// Our own retransmission timeout (doubles on each retry).
    pub initial_timeout: Duration,
    pub max_timeout: Duration,
    pub max_retries: u32,
    /// Refuse files larger than this (ERROR 3 to the server).
    pub max_size: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            blksize: None,
            windowsize: None,
            tsize: false,
            timeout_option: None,
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(4),
            max_retries: 5,
            max_size: 256 * 1024 * 1024,
        }
    }
}

/// How a client transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("server error {code}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("no answer after retries")]
    TimedOut,
    #[error("server sent an OACK we cannot accept: {0}")]
    BadOack(String),
    #[error("file larger than {0} bytes")]
    TooLarge(u64),
    #[error("server sent a DATA block larger than the block size")]
    OversizedBlock,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// RRQ sent, no answer yet.
    Requested,
    Receiving,
    Done(Result<(), ClientError>),
}

/// One read transfer as a client sees it.
#[derive(Debug)]
pub struct ClientTransfer {
    cfg: ClientConfig,
    phase: Phase,
    /// The last packet sent (RRQ or ACK), re-sent on timeout.
    last: Vec<u8>,
    pending: bool,
    blksize: usize,
    window: u16,
    tsize: Option<u64>,
    /// Next block index expected (1-based, not wrapped).
    expected: u64,
    in_window: u16,
    /// A gap was already reported with an ACK since the last progress.
    gap_acked: bool,
    data: Vec<u8>,
    rto: Duration,
    retries: u32,
    deadline: Option<Instant>,
    /// A valid TFTP packet came back (the server is there, whatever happens next).
    answered: bool,
    /// Datagrams that were not TFTP or made no sense here.
    pub malformed: u32,
    pub duplicates: u32,
}

impl ClientTransfer {
    /// Starts a read of `filename` (octet mode).
    pub fn new(filename: &str, cfg: ClientConfig) -> ClientTransfer {
        let mut opts: Vec<(&str, String)> = Vec::new();
        if let Some(b) = cfg.blksize {
            opts.push(("blksize", b.to_string()));
        }
        if cfg.tsize {
            opts.push(("tsize", "0".to_string()));
        }
        if let Some(t) = cfg.timeout_option {
            opts.push(("timeout", t.to_string()));
        }
        if let Some(w) = cfg.windowsize {
            opts.push(("windowsize", w.to_string()));
        }
        let options: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let rrq = Packet::Rrq(Request {
            filename,
            mode: Mode::Octet,
            options,
        })
        .to_vec();
        let rto = cfg.initial_timeout;
        ClientTransfer {
            cfg,
            phase: Phase::Requested,
            last: rrq,
            pending: true,
            blksize: usize::from(DEFAULT_BLKSIZE),
            window: 1,
            tsize: None,
            expected: 1,
            in_window: 0,
            gap_acked: false,
            data: Vec::new(),
            rto,
            retries: 0,
            deadline: None,
            answered: false,
            malformed: 0,
            duplicates: 0,
        }
    }

    /// The bytes received so far.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the received bytes.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The size the server announced in its OACK.
    pub fn tsize(&self) -> Option<u64> {
        self.tsize
    }

    /// Negotiated block size.
    pub fn blksize(&self) -> usize {
        self.blksize
    }

    /// Whether the server has answered with a valid TFTP packet (the driver then locks onto
    /// its port); still true after the transfer ended.
    pub fn has_answer(&self) -> bool {
        self.answered
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// `Some(Ok)` once the last block arrived, `Some(Err)` on failure.
    pub fn result(&self) -> Option<Result<(), ClientError>> {
        match &self.phase {
            Phase::Done(r) => Some(r.clone()),
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            None
        } else {
            self.deadline
        }
    }

    /// Writes the next datagram to send into `buf`; `false` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if !self.pending {
            return false;
        }
        self.pending = false;
        buf.extend_from_slice(&self.last);
        if !self.is_done() {
            self.deadline = Some(now + self.rto);
        }
        true
    }

    /// Handles a datagram from the server.
    pub fn handle(&mut self, datagram: &[u8], now: Instant) -> Result<(), DecodeError> {
        if self.is_done() {
            return Ok(());
        }
        let packet = match Packet::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.malformed += 1;
                return Err(e);
            }
        };
        self.answered = true;
        match packet {
            Packet::Oack { options } if self.phase == Phase::Requested => {
                match self.accept_oack(&options) {
                    Ok(()) => {
                        self.phase = Phase::Receiving;
                        self.send_ack(0);
                        self.progress(now);
                    }
                    Err(why) => {
                        self.last.clear();
                        encode_error(&mut self.last, ErrorCode::OptionRefused, &why);
                        self.pending = true;
                        self.phase = Phase::Done(Err(ClientError::BadOack(why)));
                    }
                }
            }
            Packet::Data { block, data } => {
                if self.phase == Phase::Requested {
                    // The server ignored our options: RFC 1350 defaults.
                    self.phase = Phase::Receiving;
                }
                self.on_data(block, data, now);
            }
            Packet::Error { code, message } => {
                self.phase = Phase::Done(Err(ClientError::Server {
                    code,
                    message: message.to_string(),
                }));
            }
            _ => self.malformed += 1,
        }
        Ok(())
    }

    fn accept_oack(&mut self, options: &[(&str, &str)]) -> Result<(), String> {
        for (name, value) in options {
            let v = parse_decimal(value).ok_or_else(|| format!("{name}={value}"))?;
            match name.to_ascii_lowercase().as_str() {
                "blksize" => match self.cfg.blksize {
                    Some(asked)
                        if v >= u64::from(BLKSIZE_MIN)
                            && v <= u64::from(asked.min(BLKSIZE_MAX)) =>
                    {
                        self.blksize = v as usize
                    }
                    _ => return Err(format!("blksize={value}")),
                },
                "windowsize" => match self.cfg.windowsize {
                    Some(asked) if v >= 1 && v <= u64::from(asked) => self.window = v as u16,
                    _ => return Err(format!("windowsize={value}")),
                },
                "timeout" => match self.cfg.timeout_option {
                    Some(asked) if v == u64::from(asked) => {}
                    _ => return Err(format!("timeout={value}")),
                },
                "tsize" if self.cfg.tsize => {
                    if v > self.cfg.max_size {
                        return Err(format!("tsize={value} too large"));
                    }
                    self.tsize = Some(v);
                }
                _ => return Err(format!("{name} was not asked for")),
            }
        }
        Ok(())
    }

    fn on_data(&mut self, block: u16, data: &[u8], now: Instant) {
        if data.len() > self.blksize {
            self.fail(ErrorCode::IllegalOperation, ClientError::OversizedBlock);
            return;
        }
        if block != self.expected as u16 {
            // Old block (our ACK was lost) or a gap in a window: ACK the last good block,
            // once per progress step so a burst does not turn into an ACK storm.
            self.duplicates += 1;
            if !self.gap_acked || self.window == 1 {
                self.gap_acked = true;
                self.in_window = 0;
                self.send_ack((self.expected - 1) as u16);
            }
            return;
        }
        if self.data.len() as u64 + data.len() as u64 > self.cfg.max_size {
            let max = self.cfg.max_size;
            self.fail(ErrorCode::DiskFull, ClientError::TooLarge(max));
            return;
        }
        self.data.extend_from_slice(data);
        self.expected += 1;
        self.in_window += 1;
        self.gap_acked = false;
        self.progress(now);
        if data.len() < self.blksize {
            self.send_ack(block);
            self.phase = Phase::Done(Ok(()));
            self.deadline = None;
        } else if self.in_window >= self.window {
            self.in_window = 0;
            self.send_ack(block);
        }
    }

    fn send_ack(&mut self, block: u16) {
        self.last.clear();
        encode_ack(&mut self.last, block);
        self.pending = true;
    }

    fn fail(&mut self, code: ErrorCode, err: ClientError) {
        self.last.clear();
        encode_error(&mut self.last, code, &err.to_string());
        self.pending = true;
        self.phase = Phase::Done(Err(err));
    }

    fn progress(&mut self, now: Instant) {
        self.retries = 0;
        self.rto = self.cfg.initial_timeout;
        self.deadline = Some(now + self.rto);
    }

    /// Call when `poll_timeout` has passed: re-sends the RRQ or the last ACK, or gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if self.is_done() || now < deadline {
            return;
        }
        if self.retries >= self.cfg.max_retries {
            self.phase = Phase::Done(Err(ClientError::TimedOut));
            self.deadline = None;
            return;
        }
        self.retries += 1;
        self.rto = (self.rto * 2).min(self.cfg.max_timeout.max(self.cfg.initial_timeout));
        self.in_window = 0;
        self.pending = true;
        self.deadline = Some(now + self.rto);
    }
}
