//! Native load client for TFTP and HTTP file fetches: N concurrent clients, each fetching
//! the same file in a loop (a new socket/connection per fetch, as phones do), bounded by a
//! count and a duration. Prints one `tftp_load:` line and, with --json, a JSON object.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use fileserver::client::{http_get, tftp_get};
use tftp::ClientConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Proto {
    Tftp,
    Http,
}

#[derive(Parser, Debug)]
#[command(about = "Concurrent TFTP/HTTP fetch load (bounded by count and duration)")]
struct Args {
    /// Server address, e.g. 198.18.0.1:69 or 198.18.0.1:6970.
    #[arg(long)]
    server: SocketAddr,
    #[arg(long)]
    file: String,
    #[arg(long, value_enum, default_value = "tftp")]
    proto: Proto,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Stop after this many completed fetches in total.
    #[arg(long, default_value_t = 10000)]
    count: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// TFTP blksize option (0: none).
    #[arg(long, default_value_t = 0)]
    blksize: u16,
    /// Ask for tsize.
    #[arg(long)]
    tsize: bool,
    /// Expected size; other sizes count as failures.
    #[arg(long)]
    expect_size: Option<usize>,
    /// Per-fetch timeout for HTTP, and TFTP's first retransmission timeout, in ms.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    #[arg(long)]
    json: bool,
    /// Runtime threads (1: current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<(), BoxError> {
    let args = Arc::new(args);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs_f64(args.duration);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (args, done, failed) = (args.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let cfg = ClientConfig {
                blksize: (args.blksize != 0).then_some(args.blksize),
                tsize: args.tsize,
                initial_timeout: Duration::from_millis(args.timeout_ms),
                max_retries: 3,
                ..ClientConfig::default()
            };
            while Instant::now() < stop_at && done.load(Ordering::Relaxed) < args.count {
                let t0 = Instant::now();
                let got = match args.proto {
                    Proto::Tftp => tftp_get(args.server, &args.file, cfg.clone())
                        .await
                        .map_err(|e| e.to_string()),
                    Proto::Http => http_get(
                        args.server,
                        &args.file,
                        &[],
                        Duration::from_millis(args.timeout_ms.max(1000) * 5),
                    )
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        if r.status == 200 {
                            Ok(r.body)
                        } else {
                            Err(format!("status {}", r.status))
                        }
                    }),
                };
                let ok = match (&got, args.expect_size) {
                    (Ok(b), Some(n)) => b.len() == n,
                    (Ok(_), None) => true,
                    (Err(_), _) => false,
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                    lat.push(t0.elapsed());
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            0.0
        } else {
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            lat[i].as_secs_f64() * 1000.0
        }
    };
    let completed = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    let rate = completed as f64 / elapsed;
    println!(
        "tftp_load: proto={:?} conc={} completed={} failed={} elapsed={:.2}s rate={:.0}/s p50={:.2}ms p99={:.2}ms",
        args.proto, args.concurrency, completed, failures, elapsed, rate, pct(0.5), pct(0.99)
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "completed": completed, "failed": failures, "elapsed_s": elapsed,
                "rate_per_s": rate, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "concurrency": args.concurrency,
            })
        );
    }
    Ok(())
}
