//! phoneboot's DHCPv4 server: the [`dhcp`] engine on tokio sockets, with durable leases.
//!
//! * One UDP socket on port 67 per interface (`SO_BINDTODEVICE`): the receiving interface picks
//!   the pool for clients on a directly attached link (a VLAN sub-interface or an OVS internal
//!   port of the voice VLAN); relayed requests pick it by giaddr / link selection.
//! * Replies go where RFC 2131 section 4.1 says; an unconfigured client that did not ask for a
//!   broadcast is reached by seeding the ARP cache (see [`net::seed_arp`]).
//! * Group commit: the engine task handles a burst of requests, hands their lease changes to
//!   one writer thread, which writes everything waiting in one SQLite transaction and only then
//!   sends that burst's ACKs and emits its events. Offers and NAKs change no lease and go out
//!   at once.

pub mod net;
pub mod store;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, SystemTime};

use dhcp::{
    ConfigError, Destination, DhcpConfig, Engine, Ingress, LeaseChange, LeaseStore, Reply,
    Reservations, StoreError,
};
use journal::{Event, SharedSink};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

pub use dhcp;
pub use store::{LeaseSync, SqliteStore};

/// Why the server could not start (or stopped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("DHCP server configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no interface to listen on: set a pool's interface or `listen`")]
    NoInterface,
    #[error("batch_max and reclaim_secs must be > 0")]
    BadLimits,
    #[error("lease database {path}: {source}")]
    Database { path: PathBuf, source: StoreError },
    #[error("binding UDP {port} on {interface}: {source}")]
    Bind {
        interface: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("DHCP server I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("DHCP server task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn default_server_port() -> u16 {
    67
}
fn default_client_port() -> u16 {
    68
}
fn default_batch() -> usize {
    1024
}
fn default_reclaim() -> u64 {
    60
}

/// The server's configuration: the protocol part ([`DhcpConfig`]) plus where to listen and
/// where leases live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The phoneboot SQLite database (shared with other services; we own `dhcp_leases`).
    pub database: PathBuf,
    /// Interfaces to listen on besides those named by pools (e.g. the link relays send to).
    #[serde(default)]
    pub listen: Vec<String>,
    #[serde(default = "default_server_port")]
    pub server_port: u16,
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    /// Most requests handled per batch (one SQLite transaction covers one or more batches).
    #[serde(default = "default_batch")]
    pub batch_max: usize,
    /// How often expired leases are put back into their pools.
    #[serde(default = "default_reclaim")]
    pub reclaim_secs: u64,
    /// `full` (default): an ACK leaves after the lease is fsynced; `normal`: after it is in
    /// the WAL (survives a phoneboot crash, not a power cut).
    #[serde(default)]
    pub lease_sync: LeaseSync,
    pub dhcp: DhcpConfig,
}

impl ServerConfig {
    /// A configuration with defaults for everything but the pools and the database.
    pub fn new(database: PathBuf, dhcp: DhcpConfig) -> Self {
        ServerConfig {
            database,
            listen: vec![],
            server_port: default_server_port(),
            client_port: default_client_port(),
            batch_max: default_batch(),
            reclaim_secs: default_reclaim(),
            lease_sync: LeaseSync::default(),
            dhcp,
        }
    }

    /// Reads a TOML file.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let c: ServerConfig = toml::from_str(text)?;
        c.validate()?;
        Ok(c)
    }

    /// Every interface a socket is opened on: the pools' and `listen`.
    pub fn interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for i in self
            .dhcp
            .pools
            .iter()
            .filter_map(|p| p.interface.clone())
            .chain(self.listen.iter().cloned())
        {
            if !v.contains(&i) {
                v.push(i);
            }
        }
        v
    }

    pub fn validate(&self) -> Result<(), Error> {
        self.dhcp.validate()?;
        if self.interfaces().is_empty() {
            return Err(Error::NoInterface);
        }
        if self.batch_max == 0 || self.reclaim_secs == 0 {
            return Err(Error::BadLimits);
        }
        Ok(())
    }
}

/// Counters of the I/O side (the engine's own are in [`dhcp::Stats`]).
#[derive(Debug, Default)]
pub struct IoStats {
    pub commits: AtomicU64,
    pub committed_changes: AtomicU64,
    pub commit_failures: AtomicU64,
    /// Replies not sent because their lease could not be written.
    pub withheld_replies: AtomicU64,
    pub send_errors: AtomicU64,
    /// Requests dropped because the engine's queue was full (overload).
    pub queue_drops: AtomicU64,
    pub arp_seed_failures: AtomicU64,
    /// Replies sent by unicast to a client without an address, through a seeded ARP entry.
    pub arp_seeded: AtomicU64,
}

/// What a run ends with.
#[derive(Debug)]
pub struct RunReport {
    pub engine: dhcp::Stats,
    pub io: Arc<IoStats>,
}

struct Link {
    name: String,
    sock: UdpSocket,
    addr: Option<Ipv4Addr>,
}

/// Sends replies; shared by the engine task and the writer thread.
struct Sender {
    links: Vec<Link>,
    server_port: u16,
    client_port: u16,
    io: Arc<IoStats>,
}

impl Sender {
    fn send(&self, link: usize, reply: &Reply) {
        let Some(l) = self.links.get(link) else {
            return;
        };
        if reply.bytes.is_empty() {
            return;
        }
        let to = match reply.dest {
            Destination::Relay(g) => SocketAddrV4::new(g, self.server_port),
            Destination::Unicast(ip) => SocketAddrV4::new(ip, self.client_port),
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, self.client_port),
            Destination::UnicastHw { ip, mac } => {
                match net::seed_arp(&l.sock, &l.name, ip, mac.0) {
                    Ok(()) => {
                        self.io.arp_seeded.fetch_add(1, Ordering::Relaxed);
                        SocketAddrV4::new(ip, self.client_port)
                    }
                    Err(e) => {
                        self.io.arp_seed_failures.fetch_add(1, Ordering::Relaxed);
                        debug!(error = %e, %ip, "ARP seeding failed: broadcasting instead");
                        SocketAddrV4::new(Ipv4Addr::BROADCAST, self.client_port)
                    }
                }
            }
        };
        // The socket is non-blocking (shared with tokio): wait briefly for buffer space.
        for attempt in 0..100 {
            match l.sock.send_to(&reply.bytes, to) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && attempt < 99 => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => {
                    self.io.send_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, %to, "reply not sent");
                    return;
                }
            }
        }
    }
}

struct Packet {
    link: usize,
    data: Vec<u8>,
}

#[derive(Default)]
struct Batch {
    changes: Vec<LeaseChange>,
    replies: Vec<(usize, Reply)>,
    events: Vec<Event>,
}

/// The writer thread: group commit, then replies and events of what was committed.
fn writer(
    mut store: Box<dyn LeaseStore>,
    rx: std_mpsc::Receiver<Batch>,
    sender: Arc<Sender>,
    sink: SharedSink,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        let changes: Vec<LeaseChange> = batches
            .iter_mut()
            .flat_map(|b| std::mem::take(&mut b.changes))
            .collect();
        let io = &sender.io;
        match store.commit(&changes) {
            Ok(()) => {
                io.commits.fetch_add(1, Ordering::Relaxed);
                io.committed_changes
                    .fetch_add(changes.len() as u64, Ordering::Relaxed);
                for b in batches {
                    for (link, r) in &b.replies {
                        sender.send(*link, r);
                    }
                    for e in b.events {
                        sink.emit(e);
                    }
                }
            }
            Err(e) => {
                let n: usize = batches.iter().map(|b| b.replies.len()).sum();
                io.commit_failures.fetch_add(1, Ordering::Relaxed);
                io.withheld_replies.fetch_add(n as u64, Ordering::Relaxed);
                error!(error = %e, withheld = n, "lease commit failed: ACKs withheld");
            }
        }
    }
}

/// Runs the server until `shutdown` completes, with leases in the SQLite database of `cfg`.
pub async fn run(
    cfg: ServerConfig,
    sink: SharedSink,
    reservations: Option<Arc<dyn Reservations>>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, Error> {
    let store = SqliteStore::open_with(&cfg.database, cfg.lease_sync).map_err(|source| {
        Error::Database {
            path: cfg.database.clone(),
            source,
        }
    })?;
    run_with_store(cfg, Box::new(store), sink, reservations, shutdown).await
}

/// Same as [`run`] with any [`LeaseStore`].
pub async fn run_with_store(
    cfg: ServerConfig,
    mut store: Box<dyn LeaseStore>,
    sink: SharedSink,
    reservations: Option<Arc<dyn Reservations>>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, Error> {
    cfg.validate()?;
    let mut engine = Engine::new(cfg.dhcp.clone(), reservations)?;
    let stored = store.load().map_err(|source| Error::Database {
        path: cfg.database.clone(),
        source,
    })?;
    info!(leases = stored.len(), "DHCP leases loaded");
    engine.restore(stored);

    let io = Arc::new(IoStats::default());
    let mut links = Vec::new();
    let mut tokio_socks = Vec::new();
    for name in cfg.interfaces() {
        let sock = net::bind_interface(&name, cfg.server_port).map_err(|source| Error::Bind {
            interface: name.clone(),
            port: cfg.server_port,
            source,
        })?;
        let clone = sock.try_clone()?;
        tokio_socks.push(tokio::net::UdpSocket::from_std(clone)?);
        let addr = net::interface_ipv4(&name);
        if addr.is_none() {
            warn!(interface = %name, "interface has no IPv4 address: pools need server_id");
        }
        info!(interface = %name, ?addr, port = cfg.server_port, "DHCP listening");
        links.push(Link { name, sock, addr });
    }
    let names: Vec<(String, Option<Ipv4Addr>)> =
        links.iter().map(|l| (l.name.clone(), l.addr)).collect();
    let sender = Arc::new(Sender {
        links,
        server_port: cfg.server_port,
        client_port: cfg.client_port,
        io: io.clone(),
    });

    let (pkt_tx, mut pkt_rx) = mpsc::channel::<Packet>(16_384);
    let mut receivers = Vec::new();
    for (link, sock) in tokio_socks.into_iter().enumerate() {
        let tx = pkt_tx.clone();
        let io = io.clone();
        receivers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, _from)) => {
                        let p = Packet {
                            link,
                            data: buf[..n].to_vec(),
                        };
                        match tx.try_send(p) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                io.queue_drops.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "recv failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    drop(pkt_tx);

    let (batch_tx, batch_rx) = std_mpsc::channel::<Batch>();
    let writer_sender = sender.clone();
    let writer_sink = sink.clone();
    let writer_thread = std::thread::Builder::new()
        .name("dhcp-leases".into())
        .spawn(move || writer(store, batch_rx, writer_sender, writer_sink))?;

    let mut reclaim = tokio::time::interval(Duration::from_secs(cfg.reclaim_secs));
    reclaim.tick().await;
    tokio::pin!(shutdown);
    let mut batch: Vec<Packet> = Vec::with_capacity(cfg.batch_max);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = reclaim.tick() => {
                let changes = engine.reclaim_expired(SystemTime::now());
                if !changes.is_empty() {
                    let _ = batch_tx.send(Batch { changes, ..Batch::default() });
                }
            }
            n = pkt_rx.recv_many(&mut batch, cfg.batch_max) => {
                if n == 0 {
                    break;
                }
                let now = SystemTime::now();
                let mut durable = Batch::default();
                for p in batch.drain(..) {
                    let (name, addr) = &names[p.link];
                    let ingress = Ingress {
                        interface: Some(name),
                        vlan: None,
                        local_addr: *addr,
                    };
                    let out = engine.handle(&p.data, &ingress, now);
                    if out.changes.is_empty() {
                        if let Some(r) = &out.reply {
                            sender.send(p.link, r);
                        }
                        for e in out.events {
                            sink.emit(e);
                        }
                    } else {
                        durable.changes.extend(out.changes);
                        durable.replies.extend(out.reply.map(|r| (p.link, r)));
                        durable.events.extend(out.events);
                    }
                }
                if !durable.changes.is_empty() && batch_tx.send(durable).is_err() {
                    error!("lease writer stopped");
                    break;
                }
            }
        }
    }
    for r in &receivers {
        r.abort();
    }
    drop(batch_tx);
    // Let the writer finish what is queued: those leases are granted, their ACKs still due.
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    let report = RunReport {
        engine: engine.stats().clone(),
        io,
    };
    info!(stats = ?report.engine, io = ?report.io, "DHCP server stopped");
    Ok(report)
}

/// A server running on its own task.
pub struct DhcpServer {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<RunReport, Error>>,
}

impl DhcpServer {
    /// Starts [`run`] on the current tokio runtime.
    pub fn spawn(
        cfg: ServerConfig,
        sink: SharedSink,
        reservations: Option<Arc<dyn Reservations>>,
    ) -> Self {
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(run(cfg, sink, reservations, async move {
            let _ = rx.await;
        }));
        DhcpServer {
            stop: Some(stop),
            task,
        }
    }

    /// Stops the server (pending ACKs are committed and sent first) and returns its report.
    pub async fn shutdown(mut self) -> Result<RunReport, Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_validates() {
        let c = ServerConfig::from_toml(include_str!("../dhcp.example.toml")).unwrap();
        assert_eq!(c.interfaces(), vec!["vlan100".to_string()]);
        assert_eq!(c.lease_sync, LeaseSync::Full);
        let voice = &c.dhcp.pools[0];
        assert_eq!(voice.classes.len(), 2);
        assert!(voice.classes[1].no_tftp);
        assert_eq!(c.dhcp.pools[1].tftp_servers.as_ref().unwrap().len(), 2);
        assert_eq!(c.dhcp.reservations[0].mac.device_name(), "SEP001B54AABBCC");
        assert!(dhcp::Engine::new(c.dhcp.clone(), None).is_ok());
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let text = include_str!("../dhcp.example.toml");
        assert!(ServerConfig::from_toml(&text.replace(
            "range_end = \"198.18.100.199\"",
            "range_end = \"198.18.101.199\""
        ))
        .is_err());
        assert!(
            ServerConfig::from_toml(&text.replace("interface = \"vlan100\"", "")).is_err(),
            "nothing to listen on"
        );
        assert!(ServerConfig::from_toml(
            &text.replace("lease_secs = 86400", "lease_secs = 86400\nbogus = 1")
        )
        .is_err());
    }
}
