//! HTTP/1.1 on TCP 6970: `GET /<name>` (and `HEAD`) over the same namespace as TFTP, with
//! `Content-Length`, `ETag`, `Last-Modified` and 304 answers.
//!
//! hyper is used directly (not axum) so each connection gets a header timeout and a hard
//! lifetime, and connections beyond the cap are answered 503 at once instead of queueing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use journal::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::service::{inc, Busy, Ctx, FileResult, Lookup, Permit};
use crate::source::File;

/// Sent on a connection we will not serve (over the connection cap).
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

/// Serves HTTP on `listener` until `shutdown` is cancelled.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let conns = Arc::new(Semaphore::new(ctx.cfg.http_max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (mut stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little rather than spin.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        while tasks.try_join_next().is_some() {}
        let Ok(conn_permit) = conns.clone().try_acquire_owned() else {
            inc(&ctx.stats.http_connections_refused);
            tasks.spawn(async move {
                // Answer, then read (and drop) what the client sent for a moment: closing
                // with unread bytes would reset the connection before it reads the 503.
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    stream.write_all(BUSY_RESPONSE).await?;
                    stream.shutdown().await?;
                    let mut sink = [0u8; 4096];
                    let mut total = 0;
                    while total < 65536 {
                        let n = stream.read(&mut sink).await?;
                        if n == 0 {
                            break;
                        }
                        total += n;
                    }
                    std::io::Result::Ok(())
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Delayed ACKs: the response carries the ACK of the request (one frame less per
        // request through the switch).
        let _ = stream.set_quickack(false);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _conn_permit = conn_permit;
            let lifetime = ctx.cfg.transfer_deadline();
            let header_timeout = Duration::from_secs(ctx.cfg.http_header_timeout_secs);
            let svc_ctx = ctx.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let ctx = svc_ctx.clone();
                async move { Ok::<_, Infallible>(handle(ctx, peer, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = tokio::time::sleep(lifetime) => {}
                _ = shutdown.cancelled() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Reports the outcome of a 200 response once its bytes are handed to the connection, and
/// holds the serving slot until then.
struct Completion {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    name: String,
    started: Instant,
    bytes: u64,
    _permit: Permit,
}

impl Completion {
    fn finish(self, ok: bool) {
        let result = if ok {
            inc(&self.ctx.stats.http_served);
            FileResult::Served
        } else {
            inc(&self.ctx.stats.http_failed);
            FileResult::Failed("connection closed before the body was sent".into())
        };
        self.ctx.reporter.report(
            self.peer,
            &self.name,
            Transport::Http,
            result,
            if ok { self.bytes } else { 0 },
            self.started.elapsed(),
        );
    }
}

/// A whole-file body (one frame) that reports when it has been taken.
pub(crate) struct FileBody {
    data: Option<Bytes>,
    done: Option<Completion>,
}

impl FileBody {
    fn empty() -> FileBody {
        FileBody {
            data: None,
            done: None,
        }
    }

    fn text(s: &'static str) -> FileBody {
        FileBody {
            data: Some(Bytes::from_static(s.as_bytes())),
            done: None,
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let data = this.data.take();
        if let Some(done) = this.done.take() {
            done.finish(true);
        }
        Poll::Ready(data.map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            // A HEAD answer (no data) counts as served; a dropped GET body did not arrive.
            let ok = self.data.is_none();
            done.finish(ok);
        }
    }
}

fn response(status: StatusCode, body: FileBody) -> Response<FileBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<FileBody> {
    let mut r = response(status, FileBody::text(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `%XX` decoding of a URL path; `None` on a malformed escape or non-UTF-8 result.
pub(crate) fn percent_decode(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".xml") {
        "text/xml"
    } else if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".txt") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// Whether the client's copy (per `If-None-Match`, else `If-Modified-Since`) is current.
fn not_modified(req: &Request<Incoming>, file: &File) -> bool {
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else {
            return false;
        };
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == file.etag.as_str());
    }
    if let Some(ims) = req.headers().get(header::IF_MODIFIED_SINCE) {
        let Some(since) = ims
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
        else {
            return false;
        };
        // HTTP dates have whole seconds.
        let modified = file
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let since = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return modified <= since;
    }
    false
}

fn set_validators(r: &mut Response<FileBody>, file: &File) {
    if let Ok(v) = HeaderValue::from_str(&file.etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(file.modified)) {
        r.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

async fn handle(ctx: Arc<Ctx>, peer: SocketAddr, req: Request<Incoming>) -> Response<FileBody> {
    inc(&ctx.stats.http_requests);
    let started = Instant::now();
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        inc(&ctx.stats.http_bad_requests);
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(decoded) = percent_decode(req.uri().path()) else {
        inc(&ctx.stats.http_bad_requests);
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    };
    let name = decoded.trim_start_matches('/').to_string();
    let report = |result: FileResult| {
        ctx.reporter
            .report(peer, &name, Transport::Http, result, 0, started.elapsed())
    };
    let permit = match ctx.limiter.try_acquire(peer.ip()) {
        Ok(p) => p,
        Err(busy) => {
            inc(&ctx.stats.http_busy);
            let why = match busy {
                Busy::Total => "server busy",
                Busy::Client => "too many requests from this client",
            };
            report(FileResult::Failed(format!("refused: {why}")));
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "busy, retry\n");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    match ctx.resolver.resolve_for(&decoded, peer.ip()).await {
        Lookup::Found(file) => {
            if not_modified(&req, &file) {
                inc(&ctx.stats.http_not_modified);
                report(FileResult::NotModified);
                let mut r = response(StatusCode::NOT_MODIFIED, FileBody::empty());
                set_validators(&mut r, &file);
                return r;
            }
            let len = file.len();
            let done = Completion {
                ctx: ctx.clone(),
                peer,
                name: name.clone(),
                started,
                bytes: len,
                _permit: permit,
            };
            let body = FileBody {
                data: if head || len == 0 {
                    None
                } else {
                    Some(file.bytes.clone())
                },
                done: Some(done),
            };
            let mut r = response(StatusCode::OK, body);
            set_validators(&mut r, &file);
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&name)),
            );
            r
        }
        Lookup::NotFound => {
            inc(&ctx.stats.http_missing);
            report(FileResult::Missing);
            plain(StatusCode::NOT_FOUND, "File not found\n")
        }
        Lookup::Refused(why) => {
            inc(&ctx.stats.http_refused_paths);
            report(FileResult::Failed(format!("refused path: {why}")));
            plain(StatusCode::FORBIDDEN, "forbidden\n")
        }
        Lookup::TooLarge(n) => {
            inc(&ctx.stats.http_failed);
            report(FileResult::Failed(format!("file of {n} bytes too large")));
            plain(StatusCode::INTERNAL_SERVER_ERROR, "file too large\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%4"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }
}
