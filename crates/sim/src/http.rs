//! A small HTTP/1.1 GET client for port 6970 provisioning: one keep-alive connection per
//! phone, bound to the phone's leased address; Content-Length, chunked, or read-to-close
//! bodies. The response-head parser is pure and fuzzed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Limits of the client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Per-request deadline (head and body).
    pub timeout: Duration,
    pub max_body: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_body: 64 << 20,
        }
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub close: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("bad response: {0}")]
    Bad(String),
    #[error("connection closed early")]
    Closed,
    #[error("i/o: {0}")]
    Io(String),
}

/// Parses a response head from the start of `buf`: Ok(None) if incomplete, else the head and
/// the number of bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(HttpError::Bad("response head over 64 KiB".into()));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| HttpError::Bad("response head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Bad(format!(
            "status line {:?}",
            status_line.chars().take(60).collect::<String>()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| HttpError::Bad(format!("status line {status_line:?}")))?;
    let mut head = Head {
        status,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Err(HttpError::Bad(format!("header line {l:?}")));
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                head.content_length = Some(
                    v.parse()
                        .map_err(|_| HttpError::Bad(format!("Content-Length {v:?}")))?,
                )
            }
            "transfer-encoding" => head.chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    head.close = true;
                } else if v.contains("keep-alive") {
                    head.close = false;
                }
            }
            _ => {}
        }
    }
    Ok(Some((head, end + 4)))
}

/// Decodes a complete chunked body from `buf`: Ok(None) if more bytes are needed, else the
/// body and the bytes consumed (trailers included).
pub fn decode_chunked(buf: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(eol) = buf[i..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[i..i + eol])
            .map_err(|_| HttpError::Bad("chunk size line".into()))?;
        let size_txt = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_txt, 16)
            .map_err(|_| HttpError::Bad(format!("chunk size {size_txt:?}")))?;
        i += eol + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(e) = buf[i..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                i += e + 2;
                if e == 0 {
                    return Ok(Some((out, i)));
                }
            }
        }
        if out.len().saturating_add(size) > max {
            return Err(HttpError::Bad("body larger than the limit".into()));
        }
        if buf.len() < i + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[i..i + size]);
        if &buf[i + size..i + size + 2] != b"\r\n" {
            return Err(HttpError::Bad("chunk not followed by CRLF".into()));
        }
        i += size + 2;
    }
}

/// Reads what the connection has into the end of `buf` (no zeroed scratch buffer per
/// request). Ok(0) at the close.
async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, HttpError> {
    buf.reserve(16384);
    conn.read_buf(buf)
        .await
        .map_err(|e| HttpError::Io(e.to_string()))
}

/// One phone's HTTP client toward one server.
pub struct HttpClient {
    local: Ipv4Addr,
    server: SocketAddrV4,
    opts: HttpOptions,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    pub connects: u32,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpClient {
    pub fn new(local: Ipv4Addr, server: SocketAddrV4, opts: HttpOptions) -> Self {
        HttpClient {
            local,
            server,
            opts,
            conn: None,
            buf: Vec::new(),
            connects: 0,
        }
    }

    async fn connect(&mut self) -> Result<(), HttpError> {
        let s = TcpSocket::new_v4().map_err(|e| HttpError::Io(e.to_string()))?;
        s.bind(SocketAddr::V4(SocketAddrV4::new(self.local, 0)))
            .map_err(|e| HttpError::Connect(format!("bind {}: {e}", self.local)))?;
        let c = tokio::time::timeout(self.opts.connect_timeout, s.connect(self.server.into()))
            .await
            .map_err(|_| HttpError::Connect(format!("{} did not answer", self.server)))?
            .map_err(|e| HttpError::Connect(format!("{}: {e}", self.server)))?;
        let _ = c.set_nodelay(true);
        // Delayed ACKs, as a phone's stack does: the next request carries the ACK of a
        // response instead of a pure ACK frame of its own.
        let _ = c.set_quickack(false);
        self.connects += 1;
        self.conn = Some(c);
        self.buf.clear();
        Ok(())
    }

    /// GET `/path`. Reuses the connection; reconnects once if a kept-alive one was closed.
    pub async fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        let fresh = self.conn.is_none();
        if fresh {
            self.connect().await?;
        }
        match tokio::time::timeout(self.opts.timeout, self.exchange(path)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(HttpError::Closed)) if !fresh => {
                self.conn = None;
                self.connect().await?;
                tokio::time::timeout(self.opts.timeout, self.exchange(path))
                    .await
                    .map_err(|_| HttpError::Timeout)?
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(HttpError::Timeout)
            }
        }
    }

    async fn exchange(&mut self, path: &str) -> Result<Response, HttpError> {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: phoneboot-sim\r\nAccept: */*\r\n\r\n",
            self.server
        );
        let conn = self.conn.as_mut().ok_or(HttpError::Closed)?;
        if let Err(e) = conn.write_all(req.as_bytes()).await {
            return Err(match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    HttpError::Closed
                }
                _ => HttpError::Io(e.to_string()),
            });
        }
        let (head, used) = loop {
            if let Some(h) = parse_head(&self.buf)? {
                break h;
            }
            let n = read_more(conn, &mut self.buf).await?;
            if n == 0 {
                return Err(HttpError::Closed);
            }
        };
        self.buf.drain(..used);
        let body = if head.status == 204 || head.status == 304 || (100..200).contains(&head.status)
        {
            Vec::new()
        } else if head.chunked {
            loop {
                if let Some((b, n)) = decode_chunked(&self.buf, self.opts.max_body)? {
                    self.buf.drain(..n);
                    break b;
                }
                let n = read_more(conn, &mut self.buf).await?;
                if n == 0 {
                    return Err(HttpError::Bad("closed inside a chunked body".into()));
                }
            }
        } else if let Some(len) = head.content_length {
            if len > self.opts.max_body {
                return Err(HttpError::Bad(format!(
                    "Content-Length {len} over the limit"
                )));
            }
            while self.buf.len() < len {
                let n = read_more(conn, &mut self.buf).await?;
                if n == 0 {
                    return Err(HttpError::Bad(format!(
                        "closed after {} of {len} body bytes",
                        self.buf.len()
                    )));
                }
            }
            self.buf.drain(..len).collect()
        } else {
            // No length: the body runs to the close.
            loop {
                let n = read_more(conn, &mut self.buf).await?;
                if n == 0 {
                    break;
                }
                if self.buf.len() > self.opts.max_body {
                    return Err(HttpError::Bad("body larger than the limit".into()));
                }
            }
            self.conn = None;
            std::mem::take(&mut self.buf)
        };
        if head.close {
            self.conn = None;
        }
        Ok(Response {
            status: head.status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn heads() {
        let (h, n) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.content_length, Some(5));
        assert!(!h.close);
        assert_eq!(n, 38);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let (h, _) = parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 404);
        assert!(h.close);
        assert!(parse_head(b"garbage garbage\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc x\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies() {
        let b = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (body, n) = decode_chunked(b, 1000).unwrap().unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&b[n..], b"NEXT");
        assert_eq!(decode_chunked(b"5\r\nhel", 1000).unwrap(), None);
        assert!(decode_chunked(b"zz\r\n", 1000).is_err());
        assert!(decode_chunked(b"ff\r\n", 10).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_head(&data);
            let _ = decode_chunked(&data, 1 << 20);
            let mut framed = b"HTTP/1.1 200 OK\r\n".to_vec();
            framed.extend_from_slice(&data);
            framed.extend_from_slice(b"\r\n\r\n");
            let _ = parse_head(&framed);
        }
    }

    #[tokio::test]
    async fn get_over_loopback_with_keepalive_and_404() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = match l.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            let mut answered = 0;
            while answered < 3 {
                let n = s.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let req = String::from_utf8(buf[..p].to_vec()).unwrap();
                    buf.drain(..p + 4);
                    let resp: Vec<u8> = if req.starts_with("GET /a.xml ") {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec()
                    } else if req.starts_with("GET /c.xml ") {
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                            .to_vec()
                    } else {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
                    };
                    s.write_all(&resp).await.unwrap();
                    answered += 1;
                }
            }
        });
        let mut c = HttpClient::new(Ipv4Addr::LOCALHOST, addr, HttpOptions::default());
        let r = c.get("a.xml").await.unwrap();
        assert_eq!((r.status, r.body), (200, b"abc".to_vec()));
        let r = c.get("/missing").await.unwrap();
        assert_eq!(r.status, 404);
        let r = c.get("/c.xml").await.unwrap();
        assert_eq!(r.body, b"hi");
        assert_eq!(c.connects, 1);
        server.await.unwrap();
    }
}
