//! `phoneboot serve`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (see `phoneboot config example`).
    #[arg(long, short, env = "PHONEBOOT_CONFIG")]
    pub config: PathBuf,
    /// Run the protocol services inside this network namespace (the admin listener stays in
    /// the caller's, so a lab server's API is reachable from the host).
    #[arg(long, env = "PHONEBOOT_NETNS")]
    pub netns: Option<String>,
    /// Log format.
    #[arg(long, env = "PHONEBOOT_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_format);
    raise_nofile_limit();
    let cfg = config::Config::load(&args.config)?;
    let admin = TcpListener::bind(cfg.admin.listen)
        .with_context(|| format!("binding the admin listener on {}", cfg.admin.listen))?;
    if let Some(ns) = &args.netns {
        enter_netns(ns)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        server::run(cfg, admin, rx).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHONEBOOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Every held SCCP/TCP phone costs a descriptor: take the whole hard RLIMIT_NOFILE.
fn raise_nofile_limit() {
    match sccp_server::raise_nofile_limit(0) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Moves this thread (and every thread it starts afterwards) into a named network namespace.
pub fn enter_netns(name: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: setns on a valid namespace fd; affects only the calling thread, before any other
    // thread of ours exists.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("entering {path}"));
    }
    Ok(())
}
