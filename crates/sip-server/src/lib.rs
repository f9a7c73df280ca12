//! phoneboot's SIP registrar service: UDP and TCP (default port 5060) around the sans-IO
//! [`sip::Registrar`], mirroring registrations into the shared [`ris::Ris`] table (one row
//! per device + line) and reporting to the boot journal.
//!
//! Wiring: build a [`SipServerConfig`], call [`spawn`] with a [`sip::SipDirectory`]
//! (the device database adapter), the RIS table and a journal sink; keep the returned
//! [`SipServer`] for its addresses, its [`NotifyHandle`] (restart/reset) and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use journal::{Event, EventKind, Protocol, ResetKind, SharedSink};
use ris::{RegKey, Registration, Ris};
use sip::{
    frame, Frame, Limits, Message, OutRequest, RegEvent, Registrar, RegistrarConfig, ServiceAction,
    SipDirectory, Transport, VersionStamps,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use sip;

/// Service settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SipServerConfig {
    /// Address for both UDP and TCP (port 0: any; TCP then tries UDP's port).
    pub bind: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    /// Tasks receiving on the UDP socket concurrently (parse and encode run in parallel;
    /// the registrar state is behind one short-held lock).
    pub udp_tasks: usize,
    /// Receive UDP on `udp_tasks` dedicated threads that block in `recvfrom` (the kernel
    /// wakes one waiting thread per datagram, as Kamailio's receiver processes do) instead
    /// of async tasks on the reactor. Off by default: on the benchmark machine it answered
    /// sooner in one run and later in another, and cost about 25 % more CPU per
    /// registration (smaller batches: a wake-up per datagram, on both sides), see
    /// bench/sip/README.md. TCP and NOTIFY sends stay async either way.
    pub udp_blocking: bool,
    /// Requested UDP receive/send buffer (a boot storm arrives in bursts); the kernel caps
    /// it at net.core.rmem_max / wmem_max.
    pub udp_buffer_bytes: usize,
    /// Our address as phones reach it (Via/Contact of NOTIFYs); default: `bind`, or the
    /// local address of the flow when `bind` is unspecified.
    pub advertised: Option<SocketAddr>,
    /// This node's name in RIS rows and journal events.
    pub node: String,
    /// Realm, expiry bounds, nonce lifetime, rate limits, auto-registration.
    pub registrar: RegistrarConfig,
    /// Nonce key; random when `None`. Share it across nodes that share phones.
    pub nonce_secret: Option<[u8; 32]>,
    /// Largest message accepted (UDP datagram or TCP message).
    pub max_message: usize,
    pub max_tcp_connections: usize,
    /// A TCP connection silent this long is closed (phones send CRLF keepalives).
    pub tcp_idle_timeout: Duration,
    /// How long a NOTIFY waits for the phone's answer (UDP retransmits meanwhile).
    pub notify_timeout: Duration,
    /// How often expired bindings are swept.
    pub sweep_interval: Duration,
    /// After auto-registering an unknown phone, send it a restart NOTIFY this long after
    /// the 200 so it fetches its new SEP file (as CUCM resets auto-registered phones).
    /// `None`: leave it alone.
    pub restart_after_auto_register: Option<Duration>,
}

impl Default for SipServerConfig {
    fn default() -> Self {
        SipServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            udp: true,
            tcp: true,
            udp_tasks: 2,
            udp_blocking: false,
            udp_buffer_bytes: 4 << 20,
            advertised: None,
            node: "phoneboot".into(),
            registrar: RegistrarConfig::default(),
            nonce_secret: None,
            max_message: 65_535,
            max_tcp_connections: 10_000,
            tcp_idle_timeout: Duration::from_secs(3900),
            notify_timeout: Duration::from_secs(8),
            sweep_interval: Duration::from_secs(1),
            restart_after_auto_register: Some(Duration::from_secs(2)),
        }
    }
}

/// Start-up and configuration failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] sip::ConfigError),
    #[error("invalid SIP server configuration: {0}")]
    Invalid(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl SipServerConfig {
    pub fn validate(&self) -> Result<(), ServerError> {
        self.registrar.validate()?;
        let bad = |s: &str| Err(ServerError::Invalid(s.into()));
        if !self.udp && !self.tcp {
            return bad("enable UDP, TCP or both");
        }
        if self.node.is_empty() {
            return bad("node name must not be empty");
        }
        if !(512..=1 << 20).contains(&self.max_message) {
            return bad("max_message must be between 512 bytes and 1 MiB");
        }
        if self.udp_tasks == 0 || self.udp_tasks > 64 {
            return bad("udp_tasks must be between 1 and 64");
        }
        if self.max_tcp_connections == 0 {
            return bad("max_tcp_connections must be > 0");
        }
        if self.sweep_interval.is_zero() || self.notify_timeout.is_zero() {
            return bad("sweep_interval and notify_timeout must be > 0");
        }
        Ok(())
    }
}

/// Counters kept by the I/O layer (the registrar's own are in [`sip::Stats`]).
#[derive(Debug, Default)]
pub struct IoStats {
    pub udp_datagrams: AtomicU64,
    pub udp_keepalives: AtomicU64,
    pub parse_errors: AtomicU64,
    pub tcp_connections: AtomicU64,
    pub tcp_rejected: AtomicU64,
    pub tcp_pings: AtomicU64,
    pub send_errors: AtomicU64,
}

struct Shared {
    reg: Mutex<Registrar>,
    dir: Arc<dyn SipDirectory>,
    ris: Arc<Ris>,
    journal: SharedSink,
    cfg: SipServerConfig,
    limits: Limits,
    udp: Option<Arc<UdpSocket>>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tcp_conns: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<u16>>>,
    io: IoStats,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running service.
pub struct SipServer {
    shared: Arc<Shared>,
    token: CancellationToken,
    tasks: JoinSet<()>,
}

/// Sends restart/reset NOTIFYs to registered phones. Cheap to clone.
#[derive(Clone)]
pub struct NotifyHandle {
    shared: Arc<Shared>,
}

/// What happened to one NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyResult {
    pub to: SocketAddr,
    pub transport: Transport,
    /// The phone's final status, or `None` if it did not answer in time.
    pub status: Option<u16>,
}

/// Why a NOTIFY could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("device {0} is not registered")]
    NotRegistered(String),
}

fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol as SockProto, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProto::UDP))?;
    // Best effort: a smaller buffer than asked is not fatal.
    let _ = sock.set_recv_buffer_size(buffer);
    let _ = sock.set_send_buffer_size(buffer);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Binds the sockets and starts the service.
pub async fn spawn(
    cfg: SipServerConfig,
    dir: Arc<dyn SipDirectory>,
    ris: Arc<Ris>,
    journal: SharedSink,
) -> Result<SipServer, ServerError> {
    cfg.validate()?;
    let secret = cfg.nonce_secret.unwrap_or_else(rand::random);
    let registrar = Registrar::new(cfg.registrar.clone(), secret)?;
    let (udp, udp_addr) = if cfg.udp {
        let s = bind_udp(cfg.bind, cfg.udp_buffer_bytes).map_err(|source| ServerError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let a = s.local_addr().map_err(|source| ServerError::Bind {
            addr: cfg.bind,
            source,
        })?;
        (Some(Arc::new(s)), Some(a))
    } else {
        (None, None)
    };
    let (listener, tcp_addr) = if cfg.tcp {
        let mut addr = cfg.bind;
        if addr.port() == 0 {
            if let Some(u) = udp_addr {
                addr.set_port(u.port());
            }
        }
        let l = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(_) if cfg.bind.port() == 0 => {
                TcpListener::bind(cfg.bind)
                    .await
                    .map_err(|source| ServerError::Bind {
                        addr: cfg.bind,
                        source,
                    })?
            }
            Err(source) => return Err(ServerError::Bind { addr, source }),
        };
        let a = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        (Some(l), Some(a))
    } else {
        (None, None)
    };
    let limits = Limits {
        max_message: cfg.max_message,
        ..Limits::default()
    };
    let cfg_bind = cfg.bind;
    let shared = Arc::new(Shared {
        reg: Mutex::new(registrar),
        dir,
        ris,
        journal,
        limits,
        udp,
        udp_addr,
        tcp_addr,
        tcp_conns: Mutex::new(HashMap::new()),
        pending: Mutex::new(HashMap::new()),
        io: IoStats::default(),
        cfg,
    });
    let token = CancellationToken::new();
    let mut tasks = JoinSet::new();
    if let Some(u) = shared.udp.clone() {
        if shared.cfg.udp_blocking {
            // Blocking receives on the shared socket: its (shared) file description becomes
            // blocking, so the async handle is only used to send NOTIFYs (a UDP send blocks
            // only on a full send buffer). The read timeout bounds how long shutdown waits.
            let blocking = socket2::SockRef::from(u.as_ref())
                .try_clone()
                .and_then(|s| {
                    s.set_nonblocking(false)?;
                    s.set_read_timeout(Some(Duration::from_millis(100)))?;
                    Ok(std::net::UdpSocket::from(s))
                })
                .map_err(|source| ServerError::Bind {
                    addr: cfg_bind,
                    source,
                })?;
            for _ in 0..shared.cfg.udp_tasks {
                let sock = blocking.try_clone().map_err(|source| ServerError::Bind {
                    addr: cfg_bind,
                    source,
                })?;
                let (sh, token) = (shared.clone(), token.clone());
                tasks.spawn_blocking(move || udp_blocking_loop(&sh, &sock, &token));
            }
        } else {
            for _ in 0..shared.cfg.udp_tasks {
                tasks.spawn(udp_loop(shared.clone(), u.clone(), token.clone()));
            }
        }
    }
    if let Some(l) = listener {
        tasks.spawn(tcp_accept(shared.clone(), l, token.clone()));
    }
    tasks.spawn(sweeper(shared.clone(), token.clone()));
    info!(udp = ?udp_addr, tcp = ?tcp_addr, node = %shared.cfg.node, "SIP registrar listening");
    Ok(SipServer {
        shared,
        token,
        tasks,
    })
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(
    cfg: SipServerConfig,
    dir: Arc<dyn SipDirectory>,
    ris: Arc<Ris>,
    journal: SharedSink,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let server = spawn(cfg, dir, ris, journal).await?;
    shutdown.cancelled().await;
    server.shutdown().await;
    Ok(())
}

impl SipServer {
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.shared.udp_addr
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_addr
    }

    pub fn notifier(&self) -> NotifyHandle {
        NotifyHandle {
            shared: self.shared.clone(),
        }
    }

    /// A copy of the registrar's counters.
    pub fn stats(&self) -> sip::Stats {
        lock(&self.shared.reg).stats().clone()
    }

    pub fn io_stats(&self) -> &IoStats {
        &self.shared.io
    }

    /// Current bindings of one line (AOR user).
    pub fn bindings(&self, user: &str) -> Vec<sip::Binding> {
        lock(&self.shared.reg)
            .line(user)
            .map(|l| l.bindings.clone())
            .unwrap_or_default()
    }

    /// Stops every task and closes the sockets.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        while self.tasks.join_next().await.is_some() {}
        lock(&self.shared.tcp_conns).clear();
    }
}

impl NotifyHandle {
    /// Sends `Event: service-control` with `action=restart|reset` and all-zero version
    /// stamps to every flow `device` is registered through, and waits for the answers.
    pub async fn notify_service_control(
        &self,
        device: &str,
        action: ServiceAction,
    ) -> Result<Vec<NotifyResult>, NotifyError> {
        self.notify_service_control_with(device, action, &VersionStamps::default())
            .await
    }

    /// As [`Self::notify_service_control`], with the configuration's version stamps.
    pub async fn notify_service_control_with(
        &self,
        device: &str,
        action: ServiceAction,
        stamps: &VersionStamps,
    ) -> Result<Vec<NotifyResult>, NotifyError> {
        let sh = &self.shared;
        let local = sh
            .cfg
            .advertised
            .or(sh.udp_addr)
            .or(sh.tcp_addr)
            .unwrap_or(sh.cfg.bind);
        let token = format!("{:016x}", rand::random::<u64>());
        let reqs = lock(&sh.reg).service_control(device, action, stamps, local, &token);
        if reqs.is_empty() {
            return Err(NotifyError::NotRegistered(device.to_string()));
        }
        let mac = mac::Mac::from_device_name(device).ok();
        let mut waits = JoinSet::new();
        for r in reqs {
            let sh = sh.clone();
            waits.spawn(async move { send_notify(sh, r).await });
        }
        let mut results = Vec::new();
        while let Some(r) = waits.join_next().await {
            if let Ok(r) = r {
                results.push(r);
            }
        }
        if let Some(mac) = mac {
            sh.journal.emit(Event::server(
                SystemTime::now(),
                mac,
                EventKind::ResetSent {
                    protocol: Protocol::Sip,
                    reset: match action {
                        ServiceAction::Restart => ResetKind::Restart,
                        ServiceAction::Reset => ResetKind::Reset,
                    },
                },
            ));
        }
        info!(device, %action, ?results, "service-control NOTIFY sent");
        Ok(results)
    }
}

async fn send_notify(sh: Arc<Shared>, r: OutRequest) -> NotifyResult {
    let (tx, mut rx) = oneshot::channel();
    lock(&sh.pending).insert(r.branch.clone(), tx);
    let bytes = r.message.encode();
    let deadline = tokio::time::Instant::now() + sh.cfg.notify_timeout;
    let mut status = None;
    match r.transport {
        Transport::Udp => {
            // Timer E: 500 ms doubling to 4 s, until answered or the deadline.
            let mut interval = Duration::from_millis(500);
            if let Some(u) = &sh.udp {
                loop {
                    if u.send_to(&bytes, r.to).await.is_err() {
                        sh.io.send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let wake = (tokio::time::Instant::now() + interval).min(deadline);
                    match tokio::time::timeout_at(wake, &mut rx).await {
                        Ok(Ok(code)) => {
                            status = Some(code);
                            break;
                        }
                        Ok(Err(_)) => break,
                        Err(_) if tokio::time::Instant::now() >= deadline => break,
                        Err(_) => interval = (interval * 2).min(Duration::from_secs(4)),
                    }
                }
            }
        }
        Transport::Tcp | Transport::Tls => {
            let existing = lock(&sh.tcp_conns).get(&r.to).cloned();
            let sent = match existing {
                Some(tx) => tx.send(bytes).await.is_ok(),
                None => match tokio::time::timeout_at(deadline, TcpStream::connect(r.to)).await {
                    Ok(Ok(stream)) => {
                        let (conn_tx, conn_rx) = mpsc::channel(64);
                        let ok = conn_tx.send(bytes).await.is_ok();
                        tokio::spawn(tcp_conn(
                            sh.clone(),
                            stream,
                            r.to,
                            conn_tx,
                            conn_rx,
                            CancellationToken::new(),
                        ));
                        ok
                    }
                    _ => false,
                },
            };
            if sent {
                if let Ok(Ok(code)) = tokio::time::timeout_at(deadline, &mut rx).await {
                    status = Some(code);
                }
            } else {
                sh.io.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    lock(&sh.pending).remove(&r.branch);
    NotifyResult {
        to: r.to,
        transport: r.transport,
        status,
    }
}

/// Feeds one parsed message to the registrar and applies what came out.
/// Returns the response bytes and where to send them (UDP).
fn process(
    sh: &Arc<Shared>,
    msg: &Message,
    src: SocketAddr,
    transport: Transport,
) -> Option<Vec<u8>> {
    let now = SystemTime::now();
    let out = lock(&sh.reg).handle(sh.dir.as_ref(), msg, src, transport, now);
    if let Some((branch, code)) = out.notify_response {
        if code >= 200 {
            if let Some(tx) = lock(&sh.pending).remove(&branch) {
                let _ = tx.send(code);
            }
        }
    }
    apply_events(sh, out.events, now);
    out.response.map(|r| r.encode())
}

fn reg_key(device: &str, line: &str) -> RegKey {
    RegKey {
        device: device.to_string(),
        line: Some(line.to_string()),
    }
}

fn apply_events(sh: &Arc<Shared>, events: Vec<RegEvent>, now: SystemTime) {
    for ev in events {
        match ev {
            RegEvent::Registered {
                device,
                mac,
                line,
                from,
                transport,
                expires,
                user_agent,
                model,
                first,
            } => {
                let key = reg_key(&device, &line);
                let existing = sh.ris.get(&key);
                match existing {
                    Some(row) if !first && row.from == from => {
                        sh.ris.touch(&key, now, Some(expires));
                    }
                    _ => {
                        sh.ris.register(Registration {
                            device: device.clone(),
                            line: Some(line.clone()),
                            protocol: Protocol::Sip,
                            node: sh.cfg.node.clone(),
                            from,
                            since: existing.map_or(now, |r| r.since),
                            last_seen: now,
                            expires: Some(expires),
                            detail: user_agent
                                .unwrap_or_else(|| format!("SIP/{}", transport.via_name())),
                            model,
                        });
                        if first {
                            debug!(%device, %line, %from, "SIP line registered");
                            if let Some(mac) = mac {
                                sh.journal.emit(Event::server(
                                    now,
                                    mac,
                                    EventKind::Registered {
                                        protocol: Protocol::Sip,
                                        node: sh.cfg.node.clone(),
                                        from: Some(from.ip()),
                                        detail: line,
                                    },
                                ));
                            }
                        }
                    }
                }
            }
            RegEvent::Unregistered {
                device, mac, line, ..
            } => {
                remove_row(sh, &device, &line);
                if let Some(mac) = mac {
                    sh.journal.emit(Event::server(
                        now,
                        mac,
                        EventKind::Unregistered {
                            protocol: Protocol::Sip,
                        },
                    ));
                }
            }
            RegEvent::Expired {
                device, mac, line, ..
            } => {
                remove_row(sh, &device, &line);
                info!(%device, %line, "SIP binding expired");
                if let Some(mac) = mac {
                    sh.journal.emit(Event::server(
                        now,
                        mac,
                        EventKind::KeepaliveLost {
                            protocol: Protocol::Sip,
                        },
                    ));
                }
            }
            RegEvent::Rejected {
                device,
                mac,
                line,
                from,
                code,
                reason,
            } => {
                info!(?device, ?line, %from, code, %reason, "SIP REGISTER rejected");
                if let Some(mac) = mac {
                    sh.journal.emit(Event::server(
                        now,
                        mac,
                        EventKind::RegisterRejected {
                            protocol: Protocol::Sip,
                            reason: format!("{code} {reason}"),
                        },
                    ));
                }
            }
            RegEvent::AutoRegistered { device, dn, .. } => {
                info!(%device, %dn, "SIP phone auto-registered");
                if let Some(delay) = sh.cfg.restart_after_auto_register {
                    let handle = NotifyHandle { shared: sh.clone() };
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        if let Err(e) = handle
                            .notify_service_control(&device, ServiceAction::Restart)
                            .await
                        {
                            info!(%device, error = %e, "no restart after auto-registration");
                        }
                    });
                }
            }
        }
    }
}

fn remove_row(sh: &Shared, device: &str, line: &str) {
    let key = reg_key(device, line);
    if let Some(row) = sh.ris.get(&key) {
        sh.ris.unregister(&key, row.from);
    }
}

/// True for datagrams that are only whitespace: RFC 5626 CRLF keepalives over UDP.
fn is_keepalive(buf: &[u8]) -> bool {
    !buf.is_empty()
        && buf
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
}

async fn udp_loop(sh: Arc<Shared>, sock: Arc<UdpSocket>, token: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, src) = tokio::select! {
            _ = token.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here; keep serving.
                    debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        if let Some((resp, to)) = udp_datagram(&sh, &buf[..n], src) {
            if let Err(e) = sock.send_to(&resp, to).await {
                sh.io.send_errors.fetch_add(1, Ordering::Relaxed);
                debug!(%to, error = %e, "UDP send failed");
            }
        }
    }
}

/// One UDP datagram in: the response and where it goes, if any.
fn udp_datagram(sh: &Arc<Shared>, data: &[u8], src: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
    sh.io.udp_datagrams.fetch_add(1, Ordering::Relaxed);
    if is_keepalive(data) {
        sh.io.udp_keepalives.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let msg = match Message::parse(data, &sh.limits) {
        Ok(m) => m,
        Err(e) => {
            sh.io.parse_errors.fetch_add(1, Ordering::Relaxed);
            debug!(%src, error = %e, "dropping unparseable UDP datagram");
            return None;
        }
    };
    let resp = process(sh, &msg, src, Transport::Udp)?;
    Some((resp, sip::response_target(&msg, src)))
}

/// The blocking receiver (see [`SipServerConfig::udp_blocking`]): runs on a blocking-pool
/// thread until `token` is cancelled (noticed within the socket's read timeout).
fn udp_blocking_loop(sh: &Arc<Shared>, sock: &std::net::UdpSocket, token: &CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    while !token.is_cancelled() {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    // ICMP errors from earlier sends surface here; keep serving.
                    debug!(error = %e, "UDP receive error");
                }
                continue;
            }
        };
        if let Some((resp, to)) = udp_datagram(sh, &buf[..n], src) {
            if let Err(e) = sock.send_to(&resp, to) {
                sh.io.send_errors.fetch_add(1, Ordering::Relaxed);
                debug!(%to, error = %e, "UDP send failed");
            }
        }
    }
}

async fn tcp_accept(sh: Arc<Shared>, listener: TcpListener, token: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if lock(&sh.tcp_conns).len() >= sh.cfg.max_tcp_connections {
            sh.io.tcp_rejected.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        sh.io.tcp_connections.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(tcp_conn(
            sh.clone(),
            stream,
            peer,
            tx,
            rx,
            token.child_token(),
        ));
    }
}

/// One TCP connection: framed reads, responses and NOTIFYs written in order by one writer.
async fn tcp_conn(
    sh: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<Vec<u8>>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    token: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    lock(&sh.tcp_conns).insert(peer, tx.clone());
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16_384];
    'conn: loop {
        let n = tokio::select! {
            _ = token.cancelled() => break,
            r = tokio::time::timeout(sh.cfg.tcp_idle_timeout, rd.read(&mut chunk)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            },
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match frame(&buf, &sh.limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::Ping(k)) => {
                    sh.io.tcp_pings.fetch_add(1, Ordering::Relaxed);
                    buf.drain(..k);
                    if tx.send(b"\r\n".to_vec()).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(Frame::Skip(k)) => {
                    buf.drain(..k);
                }
                Ok(Frame::Message(k)) => {
                    let parsed = Message::parse(&buf[..k], &sh.limits);
                    buf.drain(..k);
                    match parsed {
                        Ok(msg) => {
                            if let Some(resp) = process(&sh, &msg, peer, Transport::Tcp) {
                                if tx.send(resp).await.is_err() {
                                    break 'conn;
                                }
                            }
                        }
                        Err(e) => {
                            sh.io.parse_errors.fetch_add(1, Ordering::Relaxed);
                            debug!(%peer, error = %e, "unparseable message on TCP");
                        }
                    }
                }
                Err(e) => {
                    // Framing is lost (oversized or garbage): nothing after it can be trusted.
                    sh.io.parse_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, error = %e, "closing TCP connection");
                    let _ = tx
                        .send(
                            b"SIP/2.0 513 Message Too Large\r\nContent-Length: 0\r\n\r\n".to_vec(),
                        )
                        .await;
                    break 'conn;
                }
            }
        }
    }
    {
        let mut conns = lock(&sh.tcp_conns);
        if conns.get(&peer).is_some_and(|t| t.same_channel(&tx)) {
            conns.remove(&peer);
        }
    }
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

async fn sweeper(sh: Arc<Shared>, token: CancellationToken) {
    let mut tick = tokio::time::interval(sh.cfg.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = SystemTime::now();
        let events = lock(&sh.reg).expire(now);
        if !events.is_empty() {
            apply_events(&sh, events, now);
        }
    }
}
