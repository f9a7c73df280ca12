//! Small tokio clients for the emulator, the tests and the load tool: a TFTP read driven by
//! [`tftp::ClientTransfer`] and a one-shot HTTP/1.1 GET.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tftp::packet::{error_packet, ErrorCode};
use tftp::{ClientConfig, ClientError, ClientTransfer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("tftp: {0}")]
    Tftp(#[from] ClientError),
    #[error("http: {0}")]
    Http(String),
    #[error("timed out")]
    Timeout,
}

/// Reads `name` from the TFTP server at `server`, from a fresh ephemeral socket.
pub async fn tftp_get(
    server: SocketAddr,
    name: &str,
    cfg: ClientConfig,
) -> Result<Vec<u8>, FetchError> {
    let any = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    tftp_get_with(&sock, server, name, cfg).await
}

/// Reads `name` over an already bound socket (e.g. one bound to an emulated phone's address).
/// The first answer's source port becomes the server's transfer ID; datagrams from anywhere
/// else get ERROR 5 and are otherwise ignored.
pub async fn tftp_get_with(
    sock: &UdpSocket,
    server: SocketAddr,
    name: &str,
    cfg: ClientConfig,
) -> Result<Vec<u8>, FetchError> {
    // Room for the largest DATA we asked for, plus a little so an oversized block is seen as
    // oversized rather than silently truncated to a valid size.
    let room = usize::from(cfg.blksize.unwrap_or(512).max(512)) + 4 + 64;
    let mut t = ClientTransfer::new(name, cfg);
    let mut peer: Option<SocketAddr> = None;
    let mut out = Vec::with_capacity(64);
    let mut inbuf = vec![0u8; room];
    // One timer per fetch, re-armed when the deadline moves (not a new one per packet).
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    let mut armed = far;
    loop {
        let now = std::time::Instant::now();
        while t.poll_transmit(now, &mut out) {
            sock.send_to(&out, peer.unwrap_or(server)).await?;
        }
        if let Some(result) = t.result() {
            result?;
            return Ok(t.into_data());
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
                        let _ = t.handle(&inbuf[..n], std::time::Instant::now());
                    }
                    Some(p) if p == from => {
                        let _ = t.handle(&inbuf[..n], std::time::Instant::now());
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
                t.handle_timeout(std::time::Instant::now());
            }
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Largest response the helper reads.
const MAX_RESPONSE: u64 = 512 * 1024 * 1024;

/// `GET /<name>` over a new connection (`Connection: close`), with extra request headers
/// (e.g. `If-None-Match`), within `timeout`.
pub async fn http_get(
    server: SocketAddr,
    name: &str,
    extra_headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpResponse, FetchError> {
    tokio::time::timeout(timeout, http_get_inner(server, name, extra_headers))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn http_get_inner(
    server: SocketAddr,
    name: &str,
    extra_headers: &[(&str, &str)],
) -> Result<HttpResponse, FetchError> {
    let mut stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    let path = name.trim_start_matches('/');
    let mut req = format!("GET /{path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::with_capacity(8192);
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, FetchError> {
    let bad = |m: &str| FetchError::Http(m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let body = raw[end + 4..].to_vec();
    let resp = HttpResponse {
        status,
        headers,
        body,
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        return Err(bad("chunked responses are not supported"));
    }
    if let Some(cl) = resp.header("content-length") {
        let cl: usize = cl.parse().map_err(|_| bad("bad content-length"))?;
        if status != 304 && cl != resp.body.len() {
            return Err(bad("body shorter or longer than content-length"));
        }
    }
    Ok(resp)
}
