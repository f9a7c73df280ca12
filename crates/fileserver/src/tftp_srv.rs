//! TFTP on UDP 69: one listening socket for requests, and a fresh socket (a new transfer ID)
//! per transfer, driven by [`tftp::ServerTransfer`].
//!
//! The per-transfer socket is `connect`ed to the client, so the kernel drops datagrams from
//! any other address or port (RFC 1350's "unknown transfer ID" packets never reach us; we do
//! not answer them with ERROR 5).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use journal::Transport;
use tftp::packet::{error_packet, ErrorCode, Mode, Packet};
use tftp::{Outcome, ServerTransfer};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::service::{inc, Busy, Ctx, FileResult, Lookup, Permit};

/// A request copied out of the datagram buffer.
struct OwnedRequest {
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
}

/// Client addresses with a transfer in progress: a retransmitted RRQ must not start a
/// second transfer.
#[derive(Default)]
struct Active(Mutex<HashSet<SocketAddr>>);

impl Active {
    fn insert(&self, a: SocketAddr) -> bool {
        match self.0.lock() {
            Ok(mut g) => g.insert(a),
            Err(p) => p.into_inner().insert(a),
        }
    }
    fn remove(&self, a: &SocketAddr) {
        match self.0.lock() {
            Ok(mut g) => g.remove(a),
            Err(p) => p.into_inner().remove(a),
        };
    }
}

struct ActiveGuard(Arc<Active>, SocketAddr);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// Serves TFTP requests arriving on `sock` until `shutdown` is cancelled.
pub(crate) async fn serve(sock: UdpSocket, ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let local_ip = match sock.local_addr() {
        Ok(a) => a.ip(),
        Err(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let active = Arc::new(Active::default());
    let mut buf = vec![0u8; 65536];
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some kernels; keep going.
                    tracing::debug!(error = %e, "tftp recv error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Reap finished transfer tasks without waiting.
        while tasks.try_join_next().is_some() {}
        let dgram = &buf[..n];
        match Packet::decode(dgram) {
            Ok(Packet::Rrq(req)) => {
                inc(&ctx.stats.tftp_requests);
                if !active.insert(peer) {
                    inc(&ctx.stats.tftp_duplicate_requests);
                    continue;
                }
                let guard = ActiveGuard(active.clone(), peer);
                let permit = match ctx.limiter.try_acquire(peer.ip()) {
                    Ok(p) => p,
                    Err(busy) => {
                        drop(guard);
                        inc(&ctx.stats.tftp_busy);
                        let msg = match busy {
                            Busy::Total => "server busy, try again later",
                            Busy::Client => "too many transfers from this client",
                        };
                        let _ = sock
                            .send_to(&error_packet(ErrorCode::NotDefined, msg), peer)
                            .await;
                        ctx.reporter.report(
                            peer,
                            req.filename,
                            Transport::Tftp,
                            FileResult::Failed(format!("refused: {msg}")),
                            0,
                            std::time::Duration::ZERO,
                        );
                        continue;
                    }
                };
                let owned = OwnedRequest {
                    filename: req.filename.to_string(),
                    mode: req.mode,
                    options: req
                        .options
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                };
                tracing::trace!(client = %peer, file = %owned.filename, options = ?owned.options, "rrq");
                let ctx = ctx.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    let _guard = guard;
                    transfer(ctx, local_ip, peer, owned, permit, shutdown).await;
                });
            }
            Ok(Packet::Wrq(req)) => {
                inc(&ctx.stats.tftp_write_refused);
                tracing::debug!(client = %peer, file = req.filename, "write request refused");
                let _ = sock
                    .send_to(
                        &error_packet(ErrorCode::AccessViolation, "write requests are refused"),
                        peer,
                    )
                    .await;
            }
            Ok(_) => {
                // DATA/ACK/ERROR/OACK to port 69 belong to no transfer: count, no answer (an
                // answer could start a ping-pong with another TFTP endpoint).
                inc(&ctx.stats.tftp_stray_packets);
            }
            Err(e) => {
                let unknown = matches!(e, tftp::DecodeError::UnknownOpcode(_));
                if unknown {
                    inc(&ctx.stats.tftp_unknown_opcode);
                } else {
                    inc(&ctx.stats.tftp_malformed);
                }
                tracing::debug!(client = %peer, error = %e, "bad tftp request");
                let looks_like_request = n >= 2 && (buf[1] == 1 || buf[1] == 2) && buf[0] == 0;
                if unknown || looks_like_request {
                    let _ = sock
                        .send_to(
                            &error_packet(ErrorCode::IllegalOperation, &e.to_string()),
                            peer,
                        )
                        .await;
                }
            }
        }
    }
    // Shutdown: every transfer saw the token and sends its ERROR; wait for them briefly.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

async fn bind_transfer_socket(local_ip: IpAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let ip = match (local_ip, peer) {
        (IpAddr::V4(_), SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (ip, _) => ip,
    };
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    sock.connect(peer).await?;
    Ok(sock)
}

async fn transfer(
    ctx: Arc<Ctx>,
    local_ip: IpAddr,
    peer: SocketAddr,
    req: OwnedRequest,
    permit: Permit,
    shutdown: CancellationToken,
) {
    let _permit = permit;
    let started = Instant::now();
    let name = req.filename.as_str();
    let report = |result: FileResult, bytes: u64| {
        ctx.reporter.report(
            peer,
            name,
            Transport::Tftp,
            result,
            bytes,
            started.elapsed(),
        )
    };
    let sock = match bind_transfer_socket(local_ip, peer).await {
        Ok(s) => s,
        Err(e) => {
            inc(&ctx.stats.tftp_failed);
            report(FileResult::Failed(format!("socket: {e}")), 0);
            return;
        }
    };
    let file = match ctx.resolver.resolve_for(name, peer.ip()).await {
        Lookup::Found(f) => f,
        Lookup::NotFound => {
            inc(&ctx.stats.tftp_missing);
            let _ = sock
                .send(&error_packet(ErrorCode::FileNotFound, "File not found"))
                .await;
            report(FileResult::Missing, 0);
            return;
        }
        Lookup::Refused(why) => {
            inc(&ctx.stats.tftp_refused_paths);
            let _ = sock
                .send(&error_packet(
                    ErrorCode::AccessViolation,
                    "Access violation",
                ))
                .await;
            report(FileResult::Failed(format!("refused path: {why}")), 0);
            return;
        }
        Lookup::TooLarge(n) => {
            inc(&ctx.stats.tftp_failed);
            let _ = sock
                .send(&error_packet(ErrorCode::NotDefined, "file too large"))
                .await;
            report(
                FileResult::Failed(format!("file of {n} bytes too large")),
                0,
            );
            return;
        }
    };
    let request = tftp::Request {
        filename: name,
        mode: req.mode,
        options: req
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    };
    let mut t =
        match ServerTransfer::new(&request, file.bytes.clone(), &ctx.cfg.tftp_server_config()) {
            Ok(t) => t,
            Err(refusal) => {
                inc(&ctx.stats.tftp_failed);
                let _ = sock
                    .send(&error_packet(refusal.code, refusal.message))
                    .await;
                report(FileResult::Failed(refusal.to_string()), 0);
                return;
            }
        };
    if !t.negotiated().ignored.is_empty() {
        tracing::debug!(client = %peer, file = name, ignored = ?t.negotiated().ignored, "options ignored");
    }
    let hard_deadline = tokio::time::Instant::now() + ctx.cfg.transfer_deadline();
    let mut out = Vec::with_capacity(usize::from(ctx.cfg.blksize_max) + 4);
    // Clients send only ACKs and ERRORs here; anything longer is truncated and then fails to
    // decode, which is what it deserves.
    let mut inbuf = vec![0u8; 1024];
    // One timer and one cancellation waiter per transfer, re-armed rather than re-created
    // per packet: a new `Sleep` per packet is a timer-wheel insert and remove, and a new
    // `cancelled()` future registers and unregisters in the token's waiter list, which is
    // one lock shared by every transfer.
    let timer = tokio::time::sleep_until(hard_deadline);
    tokio::pin!(timer);
    let mut armed = hard_deadline;
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let failure: Option<String> = loop {
        let now = Instant::now();
        let mut send_err = None;
        while t.poll_transmit(now, &mut out) {
            if let Err(e) = sock.send(&out).await {
                send_err = Some(e);
                break;
            }
        }
        if let Some(e) = send_err {
            break Some(format!("client unreachable: {e}"));
        }
        if t.is_done() {
            break None;
        }
        let wake = t
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(hard_deadline)
            .min(hard_deadline);
        if wake != armed {
            timer.as_mut().reset(wake);
            armed = wake;
        }
        tokio::select! {
            r = sock.recv(&mut inbuf) => match r {
                Ok(n) => {
                    if t.handle(&inbuf[..n], Instant::now()).is_err() {
                        inc(&ctx.stats.tftp_malformed);
                    }
                }
                // ICMP port unreachable: the client is gone.
                Err(e) => break Some(format!("client unreachable: {e}")),
            },
            _ = &mut timer => {
                // A fired `Sleep` stays ready until reset: force a re-arm next round.
                armed = hard_deadline + std::time::Duration::from_secs(1);
                if tokio::time::Instant::now() >= hard_deadline {
                    let _ = sock.send(&error_packet(ErrorCode::NotDefined, "transfer took too long")).await;
                    break Some("transfer deadline exceeded".into());
                }
                t.handle_timeout(Instant::now());
            }
            _ = &mut cancelled => {
                let _ = sock.send(&error_packet(ErrorCode::NotDefined, "server shutting down")).await;
                break Some("server shutting down".into());
            }
        }
    };
    let st = t.stats();
    crate::service::add(&ctx.stats.tftp_duplicate_acks, u64::from(st.duplicate_acks));
    crate::service::add(&ctx.stats.tftp_bad_acks, u64::from(st.bad_acks));
    crate::service::add(&ctx.stats.tftp_retransmits, u64::from(st.retransmits));
    if st.bad_acks > 0 || st.malformed > 0 || st.unexpected > 0 {
        tracing::debug!(client = %peer, file = name, stats = ?st, "odd packets during transfer");
    }
    let result = match (failure, t.outcome()) {
        (Some(f), _) => FileResult::Failed(f),
        (None, Some(Outcome::Completed { .. })) => FileResult::Served,
        (None, Some(Outcome::TimedOut)) => {
            inc(&ctx.stats.tftp_timeouts);
            FileResult::Failed("timeout".into())
        }
        (None, Some(Outcome::ClientError { code, message })) => {
            FileResult::Failed(format!("client error {}: {message}", code.to_u16()))
        }
        (None, None) => FileResult::Failed("unfinished".into()),
    };
    if result == FileResult::Served {
        inc(&ctx.stats.tftp_served);
    } else {
        inc(&ctx.stats.tftp_failed);
    }
    let bytes = if result == FileResult::Served {
        t.len()
    } else {
        t.bytes_acked()
    };
    report(result, bytes);
}
