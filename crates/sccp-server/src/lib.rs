//! The SCCP CallManager service: TCP 2000, one task per phone connection running the
//! sans-IO [`sccp::ServerSession`], registrations written to the [`ris::Ris`] table and
//! journal events to a [`journal::SharedSink`]. Also a tokio phone driver ([`phone`]) for
//! the emulator, tests and the benchmark.
//!
//! Wiring it into `phoneboot serve`:
//!
//! ```ignore
//! let deps = sccp_server::Deps {
//!     directory: Arc::new(MyDbAdapter),      // implements sccp::SccpDirectory
//!     ris: ris.clone(),
//!     journal: journal_sink.clone(),
//!     lease: Some(Arc::new(|mac: &Mac, ip: IpAddr| dhcp.leased_to(mac) == Some(ip))),
//! };
//! let handle = sccp_server::spawn(ServerConfig { bind, node_name, ..Default::default() }, deps).await?;
//! handle.reset("SEP001122334455", journal::ResetKind::Restart)?;   // admin command
//! handle.shutdown().await;
//! ```

pub mod phone;

/// Raises the soft open-file limit to the hard one, first lifting the hard limit to `want` when
/// it is lower and the process may (root). Every held SCCP/TCP phone costs a descriptor on
/// both ends, so the server (`phoneboot serve`), the emulator and the load clients all call
/// this; systemd and shells often give a soft limit of 1,024 under a hard one of 500,000.
/// Returns the soft limit now in force.
pub fn raise_nofile_limit(want: u64) -> io::Result<u64> {
    if let Ok((_, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if hard < want {
            // Only root may raise the hard limit; otherwise the hard limit stays the ceiling.
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want);
        }
    }
    rlimit::increase_nofile_limit(u64::MAX)
}

pub use sccp::{
    AutoRegisterError, CallManager, LeaseCheck, MemoryDirectory, SccpDevice, SccpDirectory,
    SccpLine, SpeedDial,
};

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use journal::{Event, EventKind, Protocol, ResetKind, SharedSink};
use ris::{RegKey, Registration, Ris};
use sccp::{CloseReason, Env, ResetType, ServerEvent, ServerSession, SessionConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Service settings (validated by [`ServerConfig::validate`]).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address, normally `0.0.0.0:2000`.
    pub bind: SocketAddr,
    /// Keepalive announced to phones (devices may override).
    pub keepalive_secs: u32,
    /// Keepalive of the standby connection.
    pub secondary_keepalive_secs: u32,
    /// This node's name (RIS, journal, ConfigStat, ServerRes).
    pub node_name: String,
    /// Connections beyond this are closed at once.
    pub max_sessions: usize,
    /// Messages per second per connection before it is closed as a flood.
    pub max_msgs_per_sec: u32,
    /// Accept a registration only from the address DHCP leased to the MAC.
    pub lease_check: bool,
    /// Highest protocol version spoken.
    pub max_version: u8,
    /// Address announced in ServerRes when a device has no CallManager group.
    pub advertise_ip: Option<Ipv4Addr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 2000)),
            keepalive_secs: 30,
            secondary_keepalive_secs: 60,
            node_name: "phoneboot".into(),
            max_sessions: 100_000,
            max_msgs_per_sec: 200,
            lease_check: false,
            max_version: 22,
            advertise_ip: None,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("keepalive_secs must be 1..=3600, got {0}")]
    Keepalive(u32),
    #[error("secondary_keepalive_secs must be 1..=3600, got {0}")]
    SecondaryKeepalive(u32),
    #[error("node_name must be 1..=39 printable ASCII characters")]
    NodeName,
    #[error("max_sessions must be at least 1")]
    MaxSessions,
    #[error("max_msgs_per_sec must be at least 10 (a registration is ~20 messages)")]
    Rate,
    #[error("max_version must be 3..=22, got {0}")]
    Version(u8),
    #[error("lease_check is on but no lease lookup was given")]
    NoLeaseLookup,
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.keepalive_secs) {
            return Err(ConfigError::Keepalive(self.keepalive_secs));
        }
        if !(1..=3600).contains(&self.secondary_keepalive_secs) {
            return Err(ConfigError::SecondaryKeepalive(
                self.secondary_keepalive_secs,
            ));
        }
        if self.node_name.is_empty()
            || self.node_name.len() > 39
            || !self
                .node_name
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(ConfigError::NodeName);
        }
        if self.max_sessions == 0 {
            return Err(ConfigError::MaxSessions);
        }
        if self.max_msgs_per_sec < 10 {
            return Err(ConfigError::Rate);
        }
        if !(3..=22).contains(&self.max_version) {
            return Err(ConfigError::Version(self.max_version));
        }
        Ok(())
    }
}

/// What the service uses from the rest of phoneboot.
#[derive(Clone)]
pub struct Deps {
    pub directory: Arc<dyn SccpDirectory>,
    pub ris: Arc<Ris>,
    pub journal: SharedSink,
    /// DHCP lease lookup, required when `lease_check` is on.
    pub lease: Option<Arc<dyn LeaseCheck>>,
}

/// Service start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Why a reset could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    #[error("{0} is not registered on this node")]
    NotRegistered(String),
    #[error("the session of {0} is busy or closing")]
    Busy(String),
}

enum Cmd {
    Reset(ResetType),
    Supersede,
}

struct Shared {
    cfg: ServerConfig,
    session_cfg: SessionConfig,
    deps: Deps,
    sessions: AtomicUsize,
    next_id: AtomicU64,
    /// Registered device → (session id, command channel).
    registry: Mutex<HashMap<String, (u64, mpsc::Sender<Cmd>)>>,
}

/// A running service.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sends Reset of `kind` to a registered phone.
    pub fn reset(&self, device: &str, kind: ResetKind) -> Result<(), ResetError> {
        let t = match kind {
            ResetKind::Reset => ResetType::Reset,
            ResetKind::Restart => ResetType::Restart,
            ResetKind::ApplyConfig => ResetType::ApplyConfig,
        };
        let key = device.to_ascii_uppercase();
        let reg = lock(&self.shared.registry);
        let (_, tx) = reg
            .get(&key)
            .ok_or_else(|| ResetError::NotRegistered(key.clone()))?;
        tx.try_send(Cmd::Reset(t))
            .map_err(|_| ResetError::Busy(key.clone()))
    }

    /// Devices registered on this node.
    pub fn registered(&self) -> usize {
        lock(&self.shared.registry).len()
    }

    /// Open connections.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes every session.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds and starts the service in the background.
pub async fn spawn(cfg: ServerConfig, deps: Deps) -> Result<ServerHandle, ServerError> {
    cfg.validate()?;
    if cfg.lease_check && deps.lease.is_none() {
        return Err(ConfigError::NoLeaseLookup.into());
    }
    let listener = TcpListener::bind(cfg.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: cfg.bind,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: cfg.bind,
        source,
    })?;
    let self_ip = cfg.advertise_ip.unwrap_or(match local_addr.ip() {
        IpAddr::V4(v4) if !v4.is_unspecified() => v4,
        _ => Ipv4Addr::LOCALHOST,
    });
    let session_cfg = SessionConfig {
        node_name: cfg.node_name.clone(),
        keepalive_secs: cfg.keepalive_secs,
        secondary_keepalive_secs: cfg.secondary_keepalive_secs,
        max_version: cfg.max_version,
        max_msgs_per_sec: cfg.max_msgs_per_sec,
        self_ip,
        self_port: local_addr.port(),
    };
    let shared = Arc::new(Shared {
        cfg,
        session_cfg,
        deps,
        sessions: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        registry: Mutex::new(HashMap::new()),
    });
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared.clone(), rx));
    tracing::info!(%local_addr, "sccp: listening");
    Ok(ServerHandle {
        local_addr,
        shared,
        shutdown: tx,
        task,
    })
}

/// Runs the service until `shutdown` completes.
pub async fn run(
    cfg: ServerConfig,
    deps: Deps,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    let h = spawn(cfg, deps).await?;
    shutdown.await;
    h.shutdown().await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    if shared.sessions.load(Ordering::Relaxed) >= shared.cfg.max_sessions {
                        tracing::warn!(%peer, "sccp: session limit reached, closing");
                        drop(stream);
                        continue;
                    }
                    shared.sessions.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    // Delayed ACKs from the start (Linux quick-ACKs a new connection's first
                    // segments): the replies carry the ACK of a phone's message instead of a
                    // pure ACK frame ahead of them.
                    let _ = stream.set_quickack(false);
                    tasks.spawn(connection(stream, peer, shared.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sccp: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 8192]);
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Cmd>(2);
    let mut session = ServerSession::new(&shared.session_cfg, peer.ip(), Instant::now());
    let mut out = Vec::new();
    let mut device: Option<String> = None;
    let mut eof = false;
    let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
    let mut armed = session
        .poll_timeout()
        .map(tokio::time::Instant::from_std)
        .unwrap_or_else(far);
    // One timer per session, re-armed only when it fires or the deadline moves earlier:
    // the liveness deadline moves with every message and re-arming each time costs.
    let sleep = tokio::time::sleep_until(armed);
    tokio::pin!(sleep);
    loop {
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(far);
        if deadline < armed {
            armed = deadline;
            sleep.as_mut().reset(armed);
        }
        tokio::select! {
            r = stream.readable() => {
                if r.is_err() {
                    break;
                }
                let env = Env {
                    directory: shared.deps.directory.as_ref(),
                    lease: if shared.cfg.lease_check { shared.deps.lease.as_deref() } else { None },
                    wall: SystemTime::now(),
                };
                let now = Instant::now();
                READ_BUF.with(|b| {
                    let mut b = b.borrow_mut();
                    loop {
                        match stream.try_read(&mut b) {
                            Ok(0) => { eof = true; break; }
                            Ok(n) => {
                                session.handle_bytes(&shared.session_cfg, &b[..n], now, &env);
                                if session.is_closed() || n < b.len() { break; }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => { eof = true; break; }
                        }
                    }
                });
            }
            Some(cmd) = rx.recv() => match cmd {
                Cmd::Reset(kind) => { session.reset(kind); }
                Cmd::Supersede => {
                    tracing::info!(%peer, device = ?device, "sccp: newer registration of the device, closing this one");
                    session.supersede();
                }
            },
            _ = &mut sleep => {
                session.handle_timeout(Instant::now());
                armed = session
                    .poll_timeout()
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(far);
                sleep.as_mut().reset(armed);
            }
            _ = stop.changed() => break,
        }
        let mut closed = false;
        while let Some(ev) = session.poll_event() {
            if let ServerEvent::Closed { reason } = &ev {
                closed = true;
                if !matches!(reason, CloseReason::Unregistered | CloseReason::Superseded) {
                    tracing::debug!(%peer, ?reason, "sccp: session closed");
                }
            }
            on_event(&shared, ev, peer, id, &tx, &mut device);
        }
        session.take_output(&mut out);
        if !out.is_empty() {
            if write_all(&stream, &out).await.is_err() {
                break;
            }
            out = Vec::new();
        }
        if closed || eof {
            break;
        }
    }
    if let Some(d) = device {
        let mut reg = lock(&shared.registry);
        if reg.get(&d).is_some_and(|(i, _)| *i == id) {
            reg.remove(&d);
        }
        drop(reg);
        let key = RegKey {
            device: d.clone(),
            line: None,
        };
        if shared.deps.ris.unregister(&key, peer).is_some() && eof {
            tracing::info!(%peer, device = %d, "sccp: connection closed by the phone");
            if let Ok(mac) = mac::Mac::from_device_name(&d) {
                emit(
                    &shared,
                    mac,
                    EventKind::Unregistered {
                        protocol: Protocol::Sccp,
                    },
                );
            }
        }
    }
    shared.sessions.fetch_sub(1, Ordering::Relaxed);
}

async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::timeout(std::time::Duration::from_secs(10), stream.writable())
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write stalled"))??;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn emit(shared: &Shared, mac: mac::Mac, kind: EventKind) {
    shared
        .deps
        .journal
        .emit(Event::server(SystemTime::now(), mac, kind));
}

fn on_event(
    shared: &Shared,
    ev: ServerEvent,
    peer: SocketAddr,
    id: u64,
    tx: &mpsc::Sender<Cmd>,
    device: &mut Option<String>,
) {
    let now = SystemTime::now();
    let mac_of = |d: &str| mac::Mac::from_device_name(d).ok();
    match ev {
        ServerEvent::Registered {
            device: name,
            mac,
            version,
            device_type,
            ..
        } => {
            let old = lock(&shared.registry).insert(name.clone(), (id, tx.clone()));
            if let Some((old_id, old_tx)) = old {
                if old_id != id {
                    let _ = old_tx.try_send(Cmd::Supersede);
                }
            }
            shared.deps.ris.register(Registration {
                device: name.clone(),
                line: None,
                protocol: Protocol::Sccp,
                node: shared.cfg.node_name.clone(),
                from: peer,
                since: now,
                last_seen: now,
                expires: None,
                detail: format!("v{version}"),
                model: sccp::tables::model_name(device_type).map(str::to_string),
            });
            if let Some(mac) = mac {
                emit(
                    shared,
                    mac,
                    EventKind::Registered {
                        protocol: Protocol::Sccp,
                        node: shared.cfg.node_name.clone(),
                        from: Some(peer.ip()),
                        detail: format!("v{version}"),
                    },
                );
            }
            *device = Some(name);
        }
        ServerEvent::InService { .. } => {}
        ServerEvent::RegisterRejected { device: d, reason } => {
            if let Some(mac) = mac_of(&d) {
                emit(
                    shared,
                    mac,
                    EventKind::RegisterRejected {
                        protocol: Protocol::Sccp,
                        reason,
                    },
                );
            }
        }
        ServerEvent::Alive { device: d } => {
            shared.deps.ris.touch(
                &RegKey {
                    device: d,
                    line: None,
                },
                now,
                None,
            );
        }
        ServerEvent::Unregistered { device: d } => {
            shared.deps.ris.unregister(
                &RegKey {
                    device: d.clone(),
                    line: None,
                },
                peer,
            );
            if let Some(mac) = mac_of(&d) {
                emit(
                    shared,
                    mac,
                    EventKind::Unregistered {
                        protocol: Protocol::Sccp,
                    },
                );
            }
            *device = Some(d);
        }
        ServerEvent::KeepaliveLost { device: Some(d) } => {
            shared.deps.ris.unregister(
                &RegKey {
                    device: d.clone(),
                    line: None,
                },
                peer,
            );
            if let Some(mac) = mac_of(&d) {
                emit(
                    shared,
                    mac,
                    EventKind::KeepaliveLost {
                        protocol: Protocol::Sccp,
                    },
                );
            }
        }
        ServerEvent::KeepaliveLost { device: None } => {}
        ServerEvent::ResetSent { device: d, kind } => {
            let reset = match kind {
                ResetType::Reset => ResetKind::Reset,
                ResetType::Restart => ResetKind::Restart,
                ResetType::ApplyConfig => ResetKind::ApplyConfig,
            };
            if let Some(mac) = mac_of(&d) {
                emit(
                    shared,
                    mac,
                    EventKind::ResetSent {
                        protocol: Protocol::Sccp,
                        reset,
                    },
                );
            }
        }
        ServerEvent::Closed { .. } => {}
    }
}
