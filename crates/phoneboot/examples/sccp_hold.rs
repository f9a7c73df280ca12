//! SCCP load client for bench/scale (not a test; `cargo build --release -p phoneboot --example
//! sccp_hold`).
//!
//!   sccp-hold hold --server 127.0.0.1:2000 --from 0 --to 17000 [--concurrency 64]
//!       [--keepalive 30] [--hold-secs 120] [--src-net 1] [--counts FILE]
//!     registers phones SEP001B<i as 8 hex digits> for i in from..to, then sends a KeepAlive
//!     every --keepalive seconds per phone (phases spread evenly) and counts KeepAliveAcks,
//!     for --hold-secs after the last registration; rewrites FILE every second with
//!     "sent acked closed" (cumulative) so a driver can take a rate over its own window.
//!   sccp-hold rate --server ... --from 0 --to 20000 [--concurrency 64]
//!     full registrations (Register ... ConfigStat), each connection closed once in service.
//!
//! Every loop is bounded by a phone count and a time. Source addresses are spread over
//! 127.0.<src-net>.1-250 so that many connections fit the ephemeral port range.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sccp::{Frame, FrameReader, Message, PhoneConfig, PhoneProfile};
use sccp_server::phone::register_once;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mac_of(i: usize) -> [u8; 6] {
    let b = (i as u32).to_be_bytes();
    [0x00, 0x1B, b[0], b[1], b[2], b[3]]
}

#[derive(Default)]
struct Counts {
    registered: AtomicUsize,
    failed: AtomicUsize,
    sent: AtomicU64,
    acked: AtomicU64,
    closed: AtomicU64,
}

fn main() {
    let limit = sccp_server::raise_nofile_limit(0).unwrap_or(1024);
    let mode = std::env::args().nth(1).unwrap_or_default();
    let server: SocketAddr = arg("--server", SocketAddr::from(([127, 0, 0, 1], 2000)));
    let (from, to) = (arg("--from", 0usize), arg("--to", 0usize));
    let concurrency = arg("--concurrency", 64usize).max(1);
    let src_net = arg("--src-net", 1u8);
    let threads = arg("--threads", 2usize).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    eprintln!("sccp-hold {mode}: phones {from}..{to}, nofile limit {limit}");
    match mode.as_str() {
        "hold" => rt.block_on(hold(server, from, to, concurrency, src_net)),
        "rate" => rt.block_on(rate(server, from, to, concurrency, src_net)),
        _ => {
            eprintln!("usage: sccp-hold hold|rate --server ADDR --from N --to N [...]");
            std::process::exit(2);
        }
    }
}

fn local_addr(i: usize, src_net: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, src_net, (i % 250) as u8 + 1], 0))
}

async fn rate(server: SocketAddr, from: usize, to: usize, concurrency: usize, src_net: u8) {
    let next = Arc::new(AtomicUsize::new(from));
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(arg("--max-secs", 300u64));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, counts) = (next.clone(), counts.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= to || Instant::now() > deadline {
                    break;
                }
                let cfg = PhoneConfig::new(mac_of(i), Ipv4Addr::LOCALHOST, PhoneProfile::P7962, 1);
                match register_once(
                    cfg,
                    server,
                    Some(local_addr(i, src_net)),
                    Duration::from_secs(20),
                )
                .await
                {
                    Ok(_) => counts.registered.fetch_add(1, Relaxed),
                    Err(_) => counts.failed.fetch_add(1, Relaxed),
                };
            }
        });
    }
    while set.join_next().await.is_some() {}
    let el = t0.elapsed().as_secs_f64();
    let ok = counts.registered.load(Relaxed);
    println!(
        "RATE registered={ok} failed={} secs={el:.3} per_s={:.0}",
        counts.failed.load(Relaxed),
        ok as f64 / el.max(1e-9)
    );
}

async fn hold(server: SocketAddr, from: usize, to: usize, concurrency: usize, src_net: u8) {
    let keepalive = Duration::from_secs_f64(arg("--keepalive", 30.0f64).max(0.1));
    let hold_secs = arg("--hold-secs", 120.0f64);
    let counts_file: String = arg("--counts", String::new());
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicUsize::new(from));
    let stop = Instant::now() + Duration::from_secs(600) + Duration::from_secs_f64(hold_secs);
    let stop_tk = tokio::time::Instant::from_std(stop);
    let t0 = Instant::now();

    // Progress file, rewritten every second until the process ends.
    if !counts_file.is_empty() {
        let (c, counts_file) = (counts.clone(), counts_file.clone());
        tokio::spawn(async move {
            loop {
                let s = format!(
                    "{} {} {} {} {}\n",
                    c.sent.load(Relaxed),
                    c.acked.load(Relaxed),
                    c.closed.load(Relaxed),
                    c.registered.load(Relaxed),
                    c.failed.load(Relaxed)
                );
                let tmp = format!("{counts_file}.tmp");
                if std::fs::write(&tmp, s).is_ok() {
                    let _ = std::fs::rename(&tmp, &counts_file);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    let n = to.saturating_sub(from).max(1);
    let mut regs = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, counts) = (next.clone(), counts.clone());
        regs.spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= to || Instant::now() > stop {
                    break;
                }
                let cfg = PhoneConfig::new(mac_of(i), Ipv4Addr::LOCALHOST, PhoneProfile::P7962, 1);
                let stream = match register_once(
                    cfg,
                    server,
                    Some(local_addr(i, src_net)),
                    Duration::from_secs(30),
                )
                .await
                {
                    Ok(s) => s,
                    Err(_) => {
                        counts.failed.fetch_add(1, Relaxed);
                        continue;
                    }
                };
                counts.registered.fetch_add(1, Relaxed);
                // Keepalive phases spread evenly over one period by phone index.
                let phase = keepalive.mul_f64(((i - from) % n) as f64 / n as f64);
                tokio::spawn(keep_alive(
                    stream,
                    keepalive,
                    phase,
                    stop_tk,
                    counts.clone(),
                ));
            }
        });
    }
    while regs.join_next().await.is_some() {}
    let reg_secs = t0.elapsed().as_secs_f64();
    println!(
        "REGISTERED {} failed {} secs {reg_secs:.3}",
        counts.registered.load(Relaxed),
        counts.failed.load(Relaxed)
    );
    let until = (Instant::now() + Duration::from_secs_f64(hold_secs)).min(stop);
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    println!(
        "DONE sent {} acked {} closed {}",
        counts.sent.load(Relaxed),
        counts.acked.load(Relaxed),
        counts.closed.load(Relaxed)
    );
    // Give the progress file its last write, then leave: the runtime drops every socket.
    if !counts_file.is_empty() {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// One held phone: KeepAlive every `period` (first after `phase`), acks counted.
async fn keep_alive(
    stream: tokio::net::TcpStream,
    period: Duration,
    phase: Duration,
    stop: tokio::time::Instant,
    counts: Arc<Counts>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let c = counts.clone();
    let reader = tokio::spawn(async move {
        let mut fr = FrameReader::new();
        let mut buf = vec![0u8; 512];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    c.closed.fetch_add(1, Relaxed);
                    return;
                }
                Ok(k) => {
                    fr.push(&buf[..k]);
                    while let Ok(Some((_, m))) = fr.next_message() {
                        if matches!(m, Message::KeepAliveAck) {
                            c.acked.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
        }
    });
    let ka = Frame::new(0, Message::KeepAlive).to_bytes();
    let mut at = tokio::time::Instant::now() + phase;
    while at < stop {
        tokio::time::sleep_until(at).await;
        if wr.write_all(&ka).await.is_err() {
            break;
        }
        counts.sent.fetch_add(1, Relaxed);
        at += period;
    }
    reader.abort();
}
