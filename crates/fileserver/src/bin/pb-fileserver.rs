//! Stand-alone file service (TFTP + HTTP 6970) over a static directory, for benchmarks and
//! manual tests. `phoneboot serve` embeds the same service with generated files.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use fileserver::{Config, Deps, Sockets};

/// Any start-up failure, printed by `main`'s `Err` (the library's own errors are typed).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Serve a directory over TFTP and HTTP (phoneboot file service)")]
struct Args {
    /// Directory to serve.
    #[arg(long)]
    root: PathBuf,
    /// TFTP listen address ("none" disables).
    #[arg(long, default_value = "0.0.0.0:69")]
    tftp: String,
    /// HTTP listen address ("none" disables).
    #[arg(long, default_value = "0.0.0.0:6970")]
    http: String,
    #[arg(long, default_value_t = 1500)]
    max_transfers: usize,
    #[arg(long, default_value_t = 8)]
    per_client: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long)]
    secure_cluster: bool,
}

fn addr(s: &str) -> Result<Option<SocketAddr>, BoxError> {
    if s == "none" {
        Ok(None)
    } else {
        Ok(Some(s.parse()?))
    }
}

fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let cfg = Config {
        tftp_bind: addr(&args.tftp)?,
        http_bind: addr(&args.http)?,
        root: Some(args.root),
        max_transfers: args.max_transfers,
        per_client_limit: args.per_client,
        secure_cluster: args.secure_cluster,
        ..Config::default()
    };
    cfg.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let sockets = Sockets::bind(&cfg).await?;
        let server = fileserver::spawn(cfg, sockets, Deps::default())?;
        eprintln!(
            "pb-fileserver: tftp {:?} http {:?}",
            server.tftp_addr(),
            server.http_addr()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let stats = server.shutdown().await;
        eprintln!("pb-fileserver: {}", serde_json::to_string(&stats)?);
        Ok::<(), BoxError>(())
    })
}
