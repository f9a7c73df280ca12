//! Small tokio clients for the tests and the load tool: a TFTP read (the `tftp` crate's
//! client driven on a socket) and a one-shot HTTP/1.1 GET.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tftp::{ClientConfig, ClientError};
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

/// Reads `name` over an already bound socket (e.g. one bound to an emulated phone's address);
/// see [`tftp::udp::get`].
pub async fn tftp_get_with(
    sock: &UdpSocket,
    server: SocketAddr,
    name: &str,
    cfg: ClientConfig,
) -> Result<Vec<u8>, FetchError> {
    tftp::udp::get(sock, server, name, cfg)
        .await
        .map_err(|e| match e {
            tftp::udp::GetError::Io(e) => FetchError::Io(e),
            tftp::udp::GetError::Tftp(e) => FetchError::Tftp(e),
            tftp::udp::GetError::NoAnswer => FetchError::Tftp(ClientError::TimedOut),
        })
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
