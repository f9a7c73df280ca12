//! The phone's TFTP read (RFC 1350 + 2347/2348/2349): the `tftp` crate's client transfer on a
//! socket bound to the phone's leased address, its end told the way the boot report needs.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use ::tftp::udp::GetError;
use ::tftp::{ClientConfig, ClientError, ErrorCode};
use tokio::net::UdpSocket;

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

/// Reads `file` from `server` (port `port`, normally 69) with a socket bound to `local`.
pub async fn fetch(
    local: Ipv4Addr,
    server: Ipv4Addr,
    port: u16,
    file: &str,
    opts: TftpOptions,
) -> std::io::Result<TftpOutcome> {
    let sock = UdpSocket::bind(SocketAddrV4::new(local, 0)).await?;
    let cfg = ClientConfig {
        blksize: opts.blksize,
        tsize: opts.tsize,
        // A phone retransmits at a steady pace.
        initial_timeout: opts.timeout,
        max_timeout: opts.timeout,
        max_retries: opts.retries,
        max_size: opts.max_size,
        ..ClientConfig::default()
    };
    let to = SocketAddr::V4(SocketAddrV4::new(server, port));
    outcome(::tftp::udp::get(&sock, to, file, cfg).await)
}

/// The report's view of how a read ended.
fn outcome(r: Result<Vec<u8>, GetError>) -> std::io::Result<TftpOutcome> {
    Ok(match r {
        Ok(data) => TftpOutcome::Done(data),
        Err(GetError::Io(e)) => return Err(e),
        Err(GetError::NoAnswer) => TftpOutcome::Timeout { got_any: false },
        Err(GetError::Tftp(ClientError::TimedOut)) => TftpOutcome::Timeout { got_any: true },
        Err(GetError::Tftp(ClientError::Server {
            code: ErrorCode::FileNotFound,
            message,
        })) => TftpOutcome::NotFound(message),
        Err(GetError::Tftp(ClientError::Server { code, message })) => {
            TftpOutcome::ServerError(code.to_u16(), message)
        }
        Err(GetError::Tftp(e)) => TftpOutcome::Protocol(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_told_apart() {
        let o = |r| outcome(r).unwrap();
        assert_eq!(o(Ok(b"x".to_vec())), TftpOutcome::Done(b"x".to_vec()));
        assert_eq!(
            o(Err(GetError::NoAnswer)),
            TftpOutcome::Timeout { got_any: false }
        );
        assert_eq!(
            o(Err(GetError::Tftp(ClientError::TimedOut))),
            TftpOutcome::Timeout { got_any: true }
        );
        let server = |code, m: &str| {
            Err(GetError::Tftp(ClientError::Server {
                code,
                message: m.into(),
            }))
        };
        assert_eq!(
            o(server(ErrorCode::FileNotFound, "no such file")),
            TftpOutcome::NotFound("no such file".into())
        );
        assert_eq!(
            o(server(ErrorCode::AccessViolation, "no")),
            TftpOutcome::ServerError(2, "no".into())
        );
        assert!(matches!(
            o(Err(GetError::Tftp(ClientError::TooLarge(10)))),
            TftpOutcome::Protocol(m) if m.contains("larger")
        ));
        assert!(outcome(Err(GetError::Io(std::io::ErrorKind::Other.into()))).is_err());
    }
}
