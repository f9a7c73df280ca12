//! A tokio driver for [`ClientTransfer`] on a UDP socket, for the phone emulator, the load
//! client and tests (feature `tokio`; the rest of the crate does no I/O).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::packet::{error_packet, ErrorCode};
use crate::{ClientConfig, ClientError, ClientTransfer};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server answered, then the transfer failed.
    #[error("tftp: {0}")]
    Tftp(#[from] ClientError),
    /// Not one datagram came back from the server.
    #[error("no answer")]
    NoAnswer,
}

/// Reads `name` from `server` over an already bound socket (e.g. one bound to an emulated
/// phone's address). The first answer's source port becomes the server's transfer ID;
/// datagrams from anywhere else get ERROR 5 and are otherwise ignored.
pub async fn get(
    sock: &UdpSocket,
    server: SocketAddr,
    name: &str,
    cfg: ClientConfig,
) -> Result<Vec<u8>, GetError> {
    // Room for the largest DATA we asked for, plus a little so an oversized block is seen as
    // oversized rather than silently truncated to a valid size.
    let room = usize::from(cfg.blksize.unwrap_or(512).max(512)) + 4 + 64;
    let mut t = ClientTransfer::new(name, cfg);
    let mut peer: Option<SocketAddr> = None;
    let mut out = Vec::with_capacity(64);
    let mut inbuf = vec![0u8; room];
    // One timer per read, re-armed when the deadline moves (not a new one per packet).
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    let mut armed = far;
    loop {
        let now = Instant::now();
        while t.poll_transmit(now, &mut out) {
            sock.send_to(&out, peer.unwrap_or(server)).await?;
        }
        match t.result() {
            Some(Ok(())) => return Ok(t.into_data()),
            Some(Err(ClientError::TimedOut)) if !t.has_answer() => return Err(GetError::NoAnswer),
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        let wake = t
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
        if wake != armed {
            timer.as_mut().reset(wake);
            armed = wake;
        }
        tokio::select! {
            r = sock.recv_from(&mut inbuf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    // ICMP port unreachable from an earlier send: the server is not there
                    // (yet); the retransmission timer decides.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e.into()),
                };
                match peer {
                    None if from.ip() == server.ip() => {
                        peer = Some(from);
                        let _ = t.handle(&inbuf[..n], Instant::now());
                    }
                    Some(p) if p == from => {
                        let _ = t.handle(&inbuf[..n], Instant::now());
                    }
                    _ => {
                        let _ = sock
                            .send_to(&error_packet(ErrorCode::UnknownTid, "unknown transfer ID"), from)
                            .await;
                    }
                }
            }
            _ = &mut timer => {
                // A fired timer stays ready until reset: force a re-arm next round.
                armed = far + Duration::from_secs(1);
                t.handle_timeout(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClientConfig {
        ClientConfig {
            initial_timeout: Duration::from_millis(50),
            max_timeout: Duration::from_millis(50),
            max_retries: 2,
            ..ClientConfig::default()
        }
    }

    /// Silence is `NoAnswer`; an ERROR 1 from the server's transfer port is the server's
    /// error.
    #[tokio::test]
    async fn no_answer_and_not_found() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r = get(&sock, silent.local_addr().unwrap(), "x", cfg()).await;
        assert!(matches!(r, Err(GetError::NoAnswer)), "{r:?}");

        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        let answer = tokio::spawn(async move {
            let mut buf = [0u8; 600];
            let (_, from) = server.recv_from(&mut buf).await.unwrap();
            let port = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            port.send_to(&error_packet(ErrorCode::FileNotFound, "nope"), from)
                .await
                .unwrap();
        });
        let r = get(&sock, to, "SEP001B54AABBCC.cnf.xml", cfg()).await;
        answer.await.unwrap();
        match r {
            Err(GetError::Tftp(ClientError::Server { code, message })) => {
                assert_eq!(code, ErrorCode::FileNotFound);
                assert_eq!(message, "nope");
            }
            other => panic!("{other:?}"),
        }
    }
}
