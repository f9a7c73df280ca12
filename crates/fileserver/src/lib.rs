//! phoneboot's file service: the files phones fetch at boot, over TFTP (UDP 69) and HTTP
//! (TCP 6970), from one namespace.
//!
//! * Generated files (SEP<MAC>.cnf.xml, XMLDefault.cnf.xml, dial templates...) come through
//!   the [`FileSource`] trait; the static tree (firmware, locales, tones, rings, Desktops)
//!   from [`Config::root`], cached in memory up to [`Config::cache_bytes`].
//! * Names resolve case-insensitively and never leave the tree.
//! * [`Config::max_transfers`] and [`Config::per_client_limit`] bound concurrent work;
//!   beyond them requests are refused at once (TFTP error, HTTP 503).
//! * Every request becomes a [`FileEvent`], sent to the boot journal when its MAC is known
//!   (from a `SEP<MAC>` name, else from [`MacLookup`]).
//!
//! Entry points: [`Sockets::bind`] then [`spawn`] (or [`run`] with a shutdown future).
//! [`client`] holds the tokio TFTP/HTTP fetchers the emulator and the load tool use.

pub mod client;
pub mod config;
mod http_srv;
pub mod service;
pub mod source;
mod tftp_srv;
pub mod tree;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use journal::SharedSink;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError};
pub use service::{FileEvent, FileResult, Lookup, Observer, Resolver, Stats, StatsSnapshot};
pub use source::{mac_from_name, File, FileSource, MacLookup, MapSource, StaticMacs};
pub use tree::StaticTree;

/// What the service is wired to.
#[derive(Default, Clone)]
pub struct Deps {
    /// Generated files (the device database's renderer).
    pub source: Option<Arc<dyn FileSource>>,
    /// Address -> MAC, for requests whose name carries no MAC (DHCP leases).
    pub macs: Option<Arc<dyn MacLookup>>,
    /// The boot journal.
    pub sink: Option<SharedSink>,
    /// Sees every request (tests, metrics); called on the request path, keep it cheap.
    pub observer: Option<Observer>,
}

/// Already-bound sockets (tests bind port 0; the daemon may get them from systemd).
#[derive(Debug, Default)]
pub struct Sockets {
    pub tftp: Option<UdpSocket>,
    pub http: Option<TcpListener>,
}

impl Sockets {
    /// Binds `cfg.tftp_bind` and `cfg.http_bind` (port 69 needs root or
    /// CAP_NET_BIND_SERVICE).
    pub async fn bind(cfg: &Config) -> io::Result<Sockets> {
        let tftp = match cfg.tftp_bind {
            Some(a) => Some(UdpSocket::bind(a).await?),
            None => None,
        };
        let http = match cfg.http_bind {
            Some(a) => Some(listen(a)?),
            None => None,
        };
        Ok(Sockets { tftp, http })
    }
}

/// Phones of a boot storm connect by the thousand at once: tokio's default backlog (1,024)
/// overflowed and their SYNs were dropped (retransmitted a second later). The kernel caps
/// this at `net.core.somaxconn`.
const HTTP_BACKLOG: u32 = 8192;

fn listen(a: std::net::SocketAddr) -> io::Result<TcpListener> {
    let s = match a {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    s.set_reuseaddr(true)?;
    s.bind(a)?;
    s.listen(HTTP_BACKLOG)
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// A running file service.
pub struct FileServer {
    stats: Arc<Stats>,
    limiter: Arc<service::Limiter>,
    tftp_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl FileServer {
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Transfers and HTTP requests in progress.
    pub fn in_flight(&self) -> usize {
        self.limiter.in_use()
    }

    pub fn tftp_addr(&self) -> Option<SocketAddr> {
        self.tftp_addr
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Cancelling this token stops the service.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, tells running TFTP transfers (ERROR 0) and waits briefly for them.
    pub async fn shutdown(self) -> StatsSnapshot {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.stats.snapshot()
    }
}

/// Starts the service on the current tokio runtime.
pub fn spawn(cfg: Config, sockets: Sockets, deps: Deps) -> Result<FileServer, Error> {
    cfg.validate()?;
    let tree = match &cfg.root {
        Some(root) => Some(Arc::new(StaticTree::new(
            root,
            cfg.cache_bytes,
            cfg.cache_max_file_bytes,
            cfg.max_file_bytes,
            Duration::from_millis(cfg.revalidate_ms),
        )?)),
        None => None,
    };
    let stats = Arc::new(Stats::default());
    let limiter = service::Limiter::new(cfg.max_transfers, cfg.per_client_limit);
    let ctx = Arc::new(service::Ctx {
        resolver: Resolver::new(deps.source, tree, cfg.secure_cluster)
            .with_lease_gate(deps.macs.clone().filter(|_| cfg.lease_gate)),
        limiter: limiter.clone(),
        stats: stats.clone(),
        reporter: service::Reporter::new(deps.sink, deps.macs, deps.observer)
            .lease_only(cfg.lease_gate),
        cfg,
    });
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut tftp_addr = None;
    let mut http_addr = None;
    if let Some(sock) = sockets.tftp {
        tftp_addr = Some(sock.local_addr()?);
        tasks.push(tokio::spawn(tftp_srv::serve(
            sock,
            ctx.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(listener) = sockets.http {
        http_addr = Some(listener.local_addr()?);
        tasks.push(tokio::spawn(http_srv::serve(
            listener,
            ctx.clone(),
            shutdown.clone(),
        )));
    }
    Ok(FileServer {
        stats,
        limiter,
        tftp_addr,
        http_addr,
        shutdown,
        tasks,
    })
}

/// Runs the service until `shutdown` completes, then stops it and returns its counters.
pub async fn run(
    cfg: Config,
    sockets: Sockets,
    deps: Deps,
    shutdown: impl Future<Output = ()>,
) -> Result<StatsSnapshot, Error> {
    let server = spawn(cfg, sockets, deps)?;
    shutdown.await;
    Ok(server.shutdown().await)
}
