//! Stand-alone DHCP server (benchmarks, lab): `phoneboot-dhcpd --config dhcp.toml`.
//! `phoneboot serve` embeds the same server through `dhcp_server::run`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use dhcp_server::ServerConfig;
use journal::{NullSink, SharedSink};

#[derive(Parser)]
#[command(about = "phoneboot DHCPv4 server")]
struct Args {
    /// TOML configuration (ServerConfig).
    #[arg(long)]
    config: PathBuf,
    /// Override the lease database path.
    #[arg(long)]
    database: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let mut cfg = ServerConfig::from_toml(&text)?;
    if let Some(db) = args.database {
        cfg.database = db;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sink: SharedSink = Arc::new(NullSink);
    rt.block_on(async move {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        dhcp_server::run(cfg, sink, None, shutdown).await
    })?;
    Ok(())
}
