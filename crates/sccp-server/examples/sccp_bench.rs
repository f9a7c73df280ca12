//! SCCP registration benchmark (not a test). Runs the server in a child process so its
//! memory can be read alone, then:
//!   1. holds `--hold` phones registered at once and reports server RSS per phone;
//!   2. registers `--phones` phones through `--concurrency` concurrent sessions (each a full
//!      registration: Register … ConfigStat, then close) and reports registrations/s.
//!
//! cargo run --release -p sccp-server --example sccp_bench -- [--hold 50000]
//!     [--phones 20000] [--concurrency 64]

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sccp::{MemoryDirectory, PhoneConfig, PhoneProfile, SccpDevice, SccpLine};
use sccp_server::phone::register_once;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

fn mac_of(i: usize) -> [u8; 6] {
    let b = (i as u32).to_be_bytes();
    [0x00, 0x1B, b[0], b[1], b[2], b[3]]
}

fn device(i: usize) -> SccpDevice {
    let m = mac_of(i);
    let dn = format!("{}", 100_000 + i);
    SccpDevice {
        name: format!(
            "SEP{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ),
        device_type: 404,
        model: "7962".into(),
        lines: vec![SccpLine {
            dn: dn.clone(),
            label: dn.clone(),
            display: dn,
        }],
        keepalive_secs: Some(3600),
        date_format: "M/D/Y".into(),
        ..Default::default()
    }
}

fn server_main(devices: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = Arc::new(MemoryDirectory::new());
        for i in 0..devices {
            dir.insert(device(i));
        }
        let cfg = sccp_server::ServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            keepalive_secs: 3600,
            secondary_keepalive_secs: 3600,
            node_name: "bench".into(),
            max_sessions: 200_000,
            ..Default::default()
        };
        let deps = sccp_server::Deps {
            directory: dir,
            ris: Arc::new(ris::Ris::new()),
            journal: Arc::new(journal::NullSink),
            lease: None,
        };
        let h = sccp_server::spawn(cfg, deps).await.unwrap();
        println!("PORT {}", h.local_addr().port());
        // Run until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            while std::io::stdin()
                .read_line(&mut s)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                s.clear();
            }
        })
        .await
        .unwrap();
        h.shutdown().await;
    });
}

/// Registers phones `range` with `concurrency` workers; returns the held streams if asked.
async fn register_range(
    server: SocketAddr,
    range: std::ops::Range<usize>,
    concurrency: usize,
    hold: bool,
) -> (Vec<tokio::net::TcpStream>, usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let end = range.end;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        tasks.spawn(async move {
            let mut held = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let cfg = PhoneConfig::new(mac_of(i), Ipv4Addr::LOCALHOST, PhoneProfile::P7962, 1);
                // Spread source addresses so 50k connections fit the ephemeral port range.
                let local = SocketAddr::from(([127, 0, 1, (i % 8) as u8 + 1], 0));
                match register_once(cfg, server, Some(local), Duration::from_secs(20)).await {
                    Ok(s) => {
                        if hold {
                            held.push(s);
                        }
                    }
                    Err(_) => failed += 1,
                }
            }
            (held, failed)
        });
    }
    let mut all = Vec::new();
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        let (h, f) = r.unwrap();
        all.extend(h);
        failed += f;
    }
    (all, failed)
}

/// Registers phones `--from`..`--to` against `--port` and holds them until stdin closes.
fn hold_main() {
    let server = SocketAddr::from(([127, 0, 0, 1], arg("--port", 2000) as u16));
    let (from, to) = (arg("--from", 0), arg("--to", 0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let t0 = Instant::now();
        let (held, failed) = register_range(server, from..to, arg("--concurrency", 64), true).await;
        println!(
            "HELD {} {} {:.3}",
            held.len(),
            failed,
            t0.elapsed().as_secs_f64()
        );
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            while std::io::stdin()
                .read_line(&mut s)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                s.clear();
            }
        })
        .await
        .unwrap();
        drop(held);
    });
}

fn spawn_child(args: &[String]) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(c.stdout.take().unwrap());
    (c, out)
}

fn read_line(r: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// Holds `hold` registered phones spread over server processes of at most `per` phones
/// each (this sandbox caps open files at 20,000 per process and cannot raise it), and
/// returns (phones held, failed, summed server RSS growth in KiB, seconds).
fn hold_phase(hold: usize, per: usize, concurrency: usize) -> (usize, usize, u64, f64) {
    let procs = hold.div_ceil(per);
    let mut servers = Vec::new();
    for k in 0..procs {
        let (c, mut out) =
            spawn_child(&["server".into(), "--devices".into(), (hold + 1).to_string()]);
        let port: u16 = read_line(&mut out)
            .trim_start_matches("PORT ")
            .parse()
            .unwrap();
        servers.push((c, port, k));
    }
    std::thread::sleep(Duration::from_millis(300));
    let base: Vec<u64> = servers.iter().map(|(c, _, _)| rss_kib(c.id())).collect();
    let mut loaders = Vec::new();
    for (_, port, k) in &servers {
        let from = k * per;
        let to = ((k + 1) * per).min(hold);
        let args: Vec<String> = [
            "hold",
            "--port",
            &port.to_string(),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        loaders.push(spawn_child(&args));
    }
    let (mut held, mut failed, mut secs) = (0, 0, 0f64);
    for (_, out) in loaders.iter_mut() {
        let l = read_line(out);
        let f: Vec<&str> = l.split_whitespace().collect();
        held += f[1].parse::<usize>().unwrap();
        failed += f[2].parse::<usize>().unwrap();
        secs = secs.max(f[3].parse::<f64>().unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown: u64 = servers
        .iter()
        .zip(&base)
        .map(|((c, _, _), b)| rss_kib(c.id()).saturating_sub(*b))
        .sum();
    for (mut c, _) in loaders {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    for (mut c, _, _) in servers {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    (held, failed, grown, secs)
}

fn main() {
    // 200,000 descriptors if root may raise the hard limit, else the whole hard limit.
    let _ = sccp_server::raise_nofile_limit(200_000);
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => return server_main(arg("--devices", 100_000)),
        Some("hold") => return hold_main(),
        _ => {}
    }
    let hold = arg("--hold", 50_000);
    let phones = arg("--phones", 20_000);
    let concurrency = arg("--concurrency", 64);
    let per_proc = arg("--per-process", 17_000);
    let devices = phones + 1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["server", "--devices", &devices.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().trim_start_matches("PORT ").parse().unwrap();
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let base = rss_kib(pid);
        println!("server RSS with {devices} provisioned devices, no phone: {base} KiB");
        // 1. Memory with `hold` phones registered (in separate processes, see hold_phase).
        if hold > 0 {
            let (held, failed, grown, secs) =
                tokio::task::spawn_blocking(move || hold_phase(hold, per_proc, concurrency))
                    .await
                    .unwrap();
            println!(
                "held {held} registered phones ({failed} failed) over {} server processes, registered in {secs:.1} s; server RSS growth {grown} KiB; {:.0} bytes per registered phone",
                hold.div_ceil(per_proc),
                (grown * 1024) as f64 / held.max(1) as f64
            );
        }
        // 2. Throughput: full registrations then close.
        if phones > 0 {
            let t0 = Instant::now();
            let (cpu0, me0) = (cpu_secs(pid), cpu_secs(std::process::id()));
            let (_, failed) = register_range(server, 0..phones, concurrency, false).await;
            let el = t0.elapsed().as_secs_f64();
            let (cpu, me) = (cpu_secs(pid) - cpu0, cpu_secs(std::process::id()) - me0);
            let ok = (phones - failed).max(1) as f64;
            println!(
                "server CPU {:.0} µs per registration ({:.0} registrations per server CPU-second); load generator CPU {:.0} µs per registration",
                cpu * 1e6 / ok,
                ok / cpu.max(1e-9),
                me * 1e6 / ok
            );
            println!(
                "{} full registrations ({} failed) with {} concurrent phone sessions in {:.2} s: {:.0} registrations/s",
                phones - failed,
                failed,
                concurrency,
                el,
                (phones - failed) as f64 / el
            );
        }
    });
    drop(child.stdin.take());
    let _ = child.wait();
}
