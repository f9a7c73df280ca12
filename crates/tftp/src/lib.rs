//! Sans-IO TFTP for phoneboot: the packet codec and read-transfer state machines.
//!
//! * [`packet`]: decode/encode RRQ, WRQ, DATA, ACK, ERROR, OACK (RFC 1350, 2347).
//! * [`options`]: server-side negotiation of blksize, timeout, tsize, windowsize
//!   (RFC 2348, 2349, 7440).
//! * [`server::ServerTransfer`]: one read transfer as the server drives it.
//! * [`client::ClientTransfer`]: one read transfer as a phone (or load client) drives it.
//!
//! Nothing here opens a socket or reads a clock: callers pass datagrams and `now`, and send
//! what `poll_transmit` produces. That makes loss, duplication and reordering testable in
//! memory (see the tests in `tests/`). The one exception is behind the `tokio` feature:
//! [`udp::get`], the client transfer driven on a UDP socket.

pub mod client;
pub mod options;
pub mod packet;
pub mod server;
#[cfg(feature = "tokio")]
pub mod udp;

pub use client::{ClientConfig, ClientError, ClientTransfer};
pub use options::{negotiate, Negotiated, OptionLimits};
pub use packet::{DecodeError, ErrorCode, Mode, Packet, Request};
pub use server::{Outcome, Refusal, ServerConfig, ServerTransfer, TransferStats};
