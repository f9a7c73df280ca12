//! Registration drivers: the `sccp` crate's phone session and the `sip` crate's REGISTER
//! client, on kernel sockets bound to the phone's leased address, through the CallManager
//! list of the configuration file in priority order.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use journal::Protocol;
use mac::Mac;
use sccp_server::phone::{connect_as_phone, LinkEnd, PhoneDriver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::cnf::PhoneConfig;
use crate::model::{Family, Model};
use crate::phone::resolve_v4;
use crate::report::{CallManagerAttempt, RegistrationInfo};

/// How emulated phones fail over and fall back, for the whole process (the command line
/// sets it once; the phone's defaults otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// Registered to a backup, go back to the primary after this long; None: the
    /// configuration file's connectionMonitorDuration, else [`DEFAULT_FALLBACK`].
    pub fallback_interval: Option<Duration>,
    /// SCCP: keepalives left unanswered before a CallManager is declared dead.
    pub missed_keepalives: u32,
    /// SCCP: keep a standby connection to the next CallManager.
    pub standby: bool,
}

/// CallManager's default connection monitor duration.
pub const DEFAULT_FALLBACK: Duration = Duration::from_secs(120);

impl Default for Failover {
    fn default() -> Self {
        Failover {
            fallback_interval: None,
            missed_keepalives: 3,
            standby: true,
        }
    }
}

static FAILOVER: std::sync::OnceLock<Failover> = std::sync::OnceLock::new();

/// Sets the failover behaviour of every phone this process emulates; only the first call
/// counts (returns false for later ones).
pub fn set_failover(f: Failover) -> bool {
    FAILOVER.set(f).is_ok()
}

fn failover() -> Failover {
    FAILOVER.get().copied().unwrap_or_default()
}

/// How long this phone stays on a backup before going back to a higher-priority
/// CallManager: the command line's choice, else its file's connectionMonitorDuration.
fn fallback_interval(cfg: &PhoneConfig) -> Duration {
    failover().fallback_interval.unwrap_or_else(|| {
        cfg.connection_monitor_secs
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(DEFAULT_FALLBACK)
    })
}

/// What the drivers need to know about the phone.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub mac: Mac,
    pub model: &'static Model,
    pub protocol: Protocol,
    pub ip: Ipv4Addr,
    /// Per CallManager: connect + first answer.
    pub timeout: Duration,
    pub sip_expires: u32,
}

/// The registration step's result: info, and a failure (kind, reason) if any.
pub struct RegDone {
    pub info: RegistrationInfo,
    pub failure: Option<(String, String)>,
}

/// Why a hold loop returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEnd {
    Stopped,
    /// Something worth a line in the timeline; keep holding.
    Event(String),
    /// The server asked for a reset/restart: re-fetch files and re-register.
    Restart(String),
}

/// A live registration.
pub enum Registration {
    Sccp(Box<SccpReg>),
    Sip(Box<SipReg>),
}

impl Registration {
    /// Keeps the registration alive until something happens.
    pub async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> HoldEnd {
        match self {
            Registration::Sccp(s) => s.hold(stop).await,
            Registration::Sip(s) => s.hold(stop).await,
        }
    }

    /// Unregisters (best effort, bounded) and closes.
    pub async fn stop(&mut self) {
        match self {
            Registration::Sccp(s) => s.stop().await,
            Registration::Sip(s) => s.stop().await,
        }
    }
}

/// Resolves the configured CallManagers to addresses, for `protocol`'s port.
async fn targets(cfg: &PhoneConfig, protocol: Protocol) -> Vec<(String, Option<SocketAddr>)> {
    let mut v = Vec::new();
    for cm in &cfg.call_managers {
        let port = match protocol {
            Protocol::Sccp => cm.sccp_port,
            Protocol::Sip => cm.sip_port,
        };
        let a = resolve_v4(&cm.host)
            .await
            .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, port)));
        v.push((format!("{}:{port}", cm.host), a));
    }
    v
}

/// Registers to the first CallManager that accepts.
pub async fn register(
    ctx: &Ctx,
    cfg: &PhoneConfig,
    stop: &mut watch::Receiver<bool>,
) -> (RegDone, Option<Registration>) {
    let t = targets(cfg, ctx.protocol).await;
    let fallback = fallback_interval(cfg);
    match ctx.protocol {
        Protocol::Sccp => sccp_register(ctx, t, fallback, stop).await,
        Protocol::Sip => sip_register(ctx, cfg, t, fallback, stop).await,
    }
}

/// A phone's TCP connection from its leased address (`sccp-server`'s, shared by SCCP and SIP).
async fn connect_from(
    local: Ipv4Addr,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, String> {
    connect_as_phone(
        Some(SocketAddr::V4(SocketAddrV4::new(local, 0))),
        to,
        timeout,
    )
    .await
    .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- SCCP

/// The SCCP session on `sccp-server`'s phone driver (the one driver of `sccp::PhoneSession`),
/// with what the timeline needs: the CallManagers' names and where the phone is in service.
pub struct SccpReg {
    driver: PhoneDriver,
    names: Vec<String>,
    addrs: Vec<Option<SocketAddr>>,
    /// Connection failures since the last success: (server, reason).
    failures: Vec<(usize, String)>,
    /// The CallManager the last reported "in service" was on.
    in_service_on: Option<usize>,
}

/// The sccp crate's wire profile for a catalogue model.
fn sccp_profile(m: &'static Model) -> sccp::PhoneProfile {
    let legacy = m.family == Family::Legacy79;
    sccp::PhoneProfile {
        model: m.digits(),
        device_type: m.sccp_device_type.unwrap_or(30016),
        max_version: m.sccp_max_version,
        register_len: if legacy { 68 } else { 124 },
        feature0: 0,
        features: if legacy { 0x8560 } else { 0x8572 },
        max_streams: if legacy { 0 } else { 5 },
        line_keys: u32::from(m.lines),
        available_lines: if legacy { 0 } else { u32::from(m.lines.min(2)) },
    }
}

impl SccpReg {
    /// The timeline's record of trying CallManager `i`.
    fn attempt(&self, i: usize, result: String) -> CallManagerAttempt {
        CallManagerAttempt {
            node: self.names.get(i).cloned().unwrap_or_default(),
            port: self
                .addrs
                .get(i)
                .copied()
                .flatten()
                .map(|a| a.port())
                .unwrap_or(0),
            result,
        }
    }

    /// Drives the session until it yields an event, `deadline` passes or `stop`.
    async fn next_event(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        deadline: Option<tokio::time::Instant>,
    ) -> Option<sccp::PhoneEvent> {
        if *stop.borrow() {
            return None;
        }
        let ev = tokio::select! {
            e = self.driver.next_event(deadline) => e,
            _ = crate::phone::stop_requested(stop) => None,
        };
        for (i, end) in self.driver.take_ends() {
            if let LinkEnd::ConnectFailed(e) = end {
                self.failures.push((i, e.to_string()));
            }
        }
        ev
    }

    async fn hold(&mut self, stop: &mut watch::Receiver<bool>) -> HoldEnd {
        loop {
            let ev = self.next_event(stop, None).await;
            // A CallManager that is down is retried (standby, fallback probe) every few
            // seconds while holding: those refusals are expected, not kept.
            self.failures.clear();
            let Some(ev) = ev else {
                return HoldEnd::Stopped;
            };
            let name = |i: usize| self.names.get(i).cloned().unwrap_or_default();
            match ev {
                sccp::PhoneEvent::InService { server, lines } => {
                    if self.in_service_on != Some(server) {
                        self.in_service_on = Some(server);
                        return HoldEnd::Event(format!(
                            "in service on {}, lines {:?}",
                            name(server),
                            lines
                        ));
                    }
                }
                sccp::PhoneEvent::StandbyUp { server } => {
                    return HoldEnd::Event(format!("standby connection to {}", name(server)));
                }
                sccp::PhoneEvent::StandbyLost { server } => {
                    return HoldEnd::Event(format!("standby connection to {} lost", name(server)));
                }
                sccp::PhoneEvent::ResetReceived { server, kind } => {
                    return HoldEnd::Restart(format!("SCCP {kind:?} from {}", name(server)));
                }
                sccp::PhoneEvent::ServerLost { server } => {
                    return HoldEnd::Event(format!("lost CallManager {}", name(server)));
                }
                sccp::PhoneEvent::FailedOver { from, to } => {
                    return HoldEnd::Event(format!("failover {} -> {}", name(from), name(to)));
                }
                sccp::PhoneEvent::FellBack { from } => {
                    return HoldEnd::Event(format!("fell back from {}", name(from)));
                }
                sccp::PhoneEvent::Registered {
                    server, version, ..
                } => {
                    return HoldEnd::Event(format!(
                        "registered to {} (version {version})",
                        name(server)
                    ));
                }
                sccp::PhoneEvent::Rejected { server, text } => {
                    return HoldEnd::Event(format!("rejected by {}: {text}", name(server)));
                }
                sccp::PhoneEvent::Unregistered { server } => {
                    return HoldEnd::Event(format!("unregistered from {}", name(server)));
                }
            }
        }
    }

    async fn stop(&mut self) {
        // Give the Unregister a moment to leave; then drop every connection.
        self.driver.shutdown(Duration::from_millis(300)).await;
    }
}

async fn sccp_register(
    ctx: &Ctx,
    t: Vec<(String, Option<SocketAddr>)>,
    fallback: Duration,
    stop: &mut watch::Receiver<bool>,
) -> (RegDone, Option<Registration>) {
    let n = t.len().max(1);
    let mut pc = sccp::PhoneConfig::new(ctx.mac.octets(), ctx.ip, sccp_profile(ctx.model), n);
    pc.register_timeout = ctx.timeout;
    pc.retry_delay = Duration::from_secs(10);
    let fo = failover();
    pc.fallback_interval = fallback;
    pc.missed_keepalives = fo.missed_keepalives.max(1);
    pc.standby = fo.standby;
    let addrs: Vec<Option<SocketAddr>> = t.iter().map(|x| x.1).collect();
    let local = SocketAddr::V4(SocketAddrV4::new(ctx.ip, 0));
    let mut driver = PhoneDriver::new(pc, addrs.clone(), Some(local), ctx.timeout);
    driver.set_break_on_failure(true);
    let mut s = SccpReg {
        driver,
        names: t.iter().map(|x| x.0.clone()).collect(),
        addrs,
        failures: Vec::new(),
        in_service_on: None,
    };
    let mut info = RegistrationInfo {
        protocol: Protocol::Sccp,
        registered_to: None,
        attempts: Vec::new(),
        detail: String::new(),
        keepalive_secs: None,
    };
    s.driver.start();
    // Each CM gets its connect + RegisterAck time; one spare for slow answers.
    let deadline = tokio::time::Instant::now() + ctx.timeout * (n as u32 * 2 + 1);
    loop {
        let ev = s.next_event(stop, Some(deadline)).await;
        for (i, e) in std::mem::take(&mut s.failures) {
            info.attempts
                .push(s.attempt(i, format!("no connection: {e}")));
        }
        let failed_all = info.attempts.len() >= n && s.driver.session().active().is_none();
        match ev {
            Some(sccp::PhoneEvent::Registered {
                server,
                version,
                keepalive,
            }) => {
                let node = s.names.get(server).cloned().unwrap_or_default();
                info.attempts.push(s.attempt(server, "RegisterAck".into()));
                info.registered_to = Some(node);
                info.keepalive_secs = Some(keepalive);
                s.driver.set_break_on_failure(false);
                info.detail = format!(
                    "SCCP version {version} (phone max {}), keepalive {keepalive} s, device type {}",
                    ctx.model.sccp_max_version,
                    ctx.model.sccp_device_type.unwrap_or(0)
                );
                return (
                    RegDone {
                        info,
                        failure: None,
                    },
                    Some(Registration::Sccp(Box::new(s))),
                );
            }
            Some(sccp::PhoneEvent::Rejected { server, text }) => {
                let node = s.names.get(server).cloned().unwrap_or_default();
                info.attempts
                    .push(s.attempt(server, format!("RegisterReject: {text}")));
                let reason = format!("RegisterReject from {node}: {text:?}");
                s.stop().await;
                return (
                    RegDone {
                        info,
                        failure: Some(("register_rejected".into(), reason)),
                    },
                    None,
                );
            }
            Some(_) if !failed_all => continue,
            None if !failed_all && !*stop.borrow() && tokio::time::Instant::now() < deadline => {
                continue
            }
            _ => {
                let (kind, reason) = if *stop.borrow() {
                    ("stopped".to_string(), "stopped".to_string())
                } else if failed_all {
                    (
                        "no_callmanager".to_string(),
                        format!("none of {n} CallManager(s) answered on TCP"),
                    )
                } else {
                    (
                        "register_timeout".to_string(),
                        format!(
                            "no RegisterAck within {:.1} s",
                            (ctx.timeout * (n as u32 * 2 + 1)).as_secs_f64()
                        ),
                    )
                };
                s.stop().await;
                return (
                    RegDone {
                        info,
                        failure: Some((kind, reason)),
                    },
                    None,
                );
            }
        }
    }
}

// ---------------------------------------------------------------- SIP

enum SipSock {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

impl SipSock {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            SipSock::Udp(s, to) => s.send_to(bytes, *to).await.map(|_| ()),
            SipSock::Tcp(s, _) => s.write_all(bytes).await,
        }
    }

    /// Next message, or an error string for garbage/closure.
    async fn recv(&mut self) -> Result<sip::Message, String> {
        let limits = sip::Limits::default();
        match self {
            SipSock::Udp(s, from) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, a) = s.recv_from(&mut buf).await.map_err(|e| e.to_string())?;
                    if a.ip() != from.ip() {
                        continue;
                    }
                    if buf[..n].iter().all(|b| *b == b'\r' || *b == b'\n') {
                        continue; // keepalive
                    }
                    return sip::Message::parse(&buf[..n], &limits)
                        .map_err(|e| format!("unparsable SIP from {a}: {e:?}"));
                }
            }
            SipSock::Tcp(s, buf) => loop {
                match sip::frame(buf, &limits).map_err(|e| format!("bad SIP framing: {e:?}"))? {
                    sip::Frame::Message(n) => {
                        let m = sip::Message::parse(&buf[..n], &limits)
                            .map_err(|e| format!("unparsable SIP: {e:?}"));
                        buf.drain(..n);
                        return m;
                    }
                    sip::Frame::Ping(n) => {
                        buf.drain(..n);
                        let _ = s.write_all(b"\r\n").await;
                    }
                    sip::Frame::Skip(n) => {
                        buf.drain(..n);
                    }
                    sip::Frame::Incomplete => {
                        let mut chunk = [0u8; 8192];
                        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            return Err("connection closed".into());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
            },
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self, SipSock::Udp(..))
    }
}

/// Who the phone registers as: the same towards every CallManager of its list.
#[derive(Debug, Clone)]
struct SipIdentity {
    user: String,
    auth_user: String,
    password: String,
    tcp: bool,
    expires: u32,
}

impl SipIdentity {
    fn new(ctx: &Ctx, cfg: &PhoneConfig) -> SipIdentity {
        let line = cfg.sip_lines.first();
        let user = line
            .map(|l| l.name.clone())
            .unwrap_or_else(|| ctx.mac.device_name());
        SipIdentity {
            auth_user: line
                .and_then(|l| l.auth_name.clone())
                .unwrap_or_else(|| user.clone()),
            password: line
                .and_then(|l| l.auth_password.clone())
                .unwrap_or_default(),
            user,
            tcp: cfg.transport == Some(1),
            expires: cfg.register_expires.unwrap_or(ctx.sip_expires).max(60),
        }
    }

    /// The timeline's detail of a registration to `addr`.
    fn describe(&self, addr: SocketAddr, granted: u32) -> String {
        format!(
            "SIP {} as {}@{} over {}, expires {granted} s",
            if self.password.is_empty() {
                "(no digest)"
            } else {
                "with digest"
            },
            self.user,
            addr.ip(),
            if self.tcp { "TCP" } else { "UDP" }
        )
    }
}

/// Why a CallManager did not take the registration.
#[derive(Debug)]
enum SipFail {
    Rejected(u16, String),
    Other(String),
}

impl std::fmt::Display for SipFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SipFail::Rejected(code, reason) => write!(f, "{code} {reason}"),
            SipFail::Other(e) => f.write_str(e),
        }
    }
}

/// A registration one CallManager accepted, on its own socket and dialog.
struct SipBinding {
    sock: SipSock,
    client: sip::RegisterClient,
    addr: SocketAddr,
    /// The expiry asked for (raised by 423 Interval Too Brief).
    expires: u32,
    granted: u32,
}

/// REGISTER until a final answer: the first request, the one answering a challenge, the
/// one after a 423.
async fn register_rounds(
    sock: &mut SipSock,
    client: &mut sip::RegisterClient,
    expires: &mut u32,
    timeout: Duration,
) -> Result<u32, SipFail> {
    for _ in 0..4 {
        match transact(sock, client, *expires, timeout).await {
            Ok(sip::ClientEvent::Challenged) => continue,
            Ok(sip::ClientEvent::IntervalTooBrief { min }) => *expires = min,
            Ok(sip::ClientEvent::Registered { expires: granted }) => return Ok(granted),
            Ok(sip::ClientEvent::Rejected { code, reason }) => {
                return Err(SipFail::Rejected(code, reason))
            }
            Ok(other) => return Err(SipFail::Other(format!("unexpected {other:?}"))),
            Err(e) => return Err(SipFail::Other(e)),
        }
    }
    Err(SipFail::Other("challenged repeatedly".into()))
}

/// Opens a socket towards `addr` from the phone's address and registers there.
async fn sip_bind(ctx: &Ctx, id: &SipIdentity, addr: SocketAddr) -> Result<SipBinding, SipFail> {
    let sock = if id.tcp {
        match connect_from(ctx.ip, addr, ctx.timeout).await {
            Ok(s) => SipSock::Tcp(s, Vec::new()),
            Err(e) => return Err(SipFail::Other(format!("no TCP connection: {e}"))),
        }
    } else {
        // 5060 unless another registration of this phone holds it (failover, fallback).
        let s = match UdpSocket::bind(SocketAddrV4::new(ctx.ip, 5060)).await {
            Ok(s) => s,
            Err(_) => UdpSocket::bind(SocketAddrV4::new(ctx.ip, 0))
                .await
                .map_err(|e| SipFail::Other(format!("bind: {e}")))?,
        };
        SipSock::Udp(s, addr)
    };
    let local = match &sock {
        SipSock::Udp(s, _) => s.local_addr(),
        SipSock::Tcp(s, _) => s.local_addr(),
    }
    .unwrap_or(SocketAddr::V4(SocketAddrV4::new(ctx.ip, 5060)));
    let ccfg = sip::ClientConfig {
        domain: addr.ip().to_string(),
        user: id.user.clone(),
        auth_user: id.auth_user.clone(),
        password: id.password.clone(),
        local,
        transport: if id.tcp {
            sip::Transport::Tcp
        } else {
            sip::Transport::Udp
        },
        mac: Some(ctx.mac),
        model: Some(format!("Cisco {}", ctx.model.name)),
        user_agent: format!(
            "Cisco-{}/{} (phoneboot-sim)",
            ctx.model.name.replace('-', ""),
            ctx.model.running_load(Protocol::Sip)
        ),
        reg_id: 1,
        call_id: format!("{}-{}@{}", token(), ctx.mac.device_name(), ctx.ip),
        from_tag: token(),
    };
    let mut client = sip::RegisterClient::new(ccfg);
    let mut sock = sock;
    let mut expires = id.expires;
    let granted = register_rounds(&mut sock, &mut client, &mut expires, ctx.timeout).await?;
    Ok(SipBinding {
        sock,
        client,
        addr,
        expires,
        granted,
    })
}

/// Refresh at 80 % of the granted time.
fn refresh_period(granted: u32) -> Duration {
    Duration::from_secs(u64::from(granted.max(10)) * 8 / 10)
}

/// A SIP registration being kept, with the CallManager list it fails over along: a
/// CallManager that closes the connection or does not answer a refresh is replaced by the
/// next one of the list that accepts; registered to a backup, the phone tries the
/// higher-priority ones again every fallback interval and unregisters from the backup when
/// one takes it.
pub struct SipReg {
    ctx: Ctx,
    id: SipIdentity,
    targets: Vec<(String, Option<SocketAddr>)>,
    /// Index in `targets` of the CallManager registered to.
    active: usize,
    b: SipBinding,
    refresh_at: tokio::time::Instant,
    fallback: Duration,
    /// Registered to a backup: when to try the higher-priority CallManagers again.
    fallback_at: Option<tokio::time::Instant>,
    /// Timeline lines not yet handed out, oldest first.
    queued: VecDeque<HoldEnd>,
}

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Sends a REGISTER and waits for its final answer (UDP retransmission per RFC 3261 T1).
async fn transact(
    sock: &mut SipSock,
    client: &mut sip::RegisterClient,
    expires: u32,
    timeout: Duration,
) -> Result<sip::ClientEvent, String> {
    let msg = client.register(expires, &token(), &token());
    let bytes = msg.encode();
    sock.send(&bytes).await.map_err(|e| format!("send: {e}"))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut t1 = Duration::from_millis(500);
    let mut retx = tokio::time::Instant::now() + t1;
    loop {
        let wake = if sock.is_udp() {
            retx.min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            r = sock.recv() => {
                let m = r?;
                if m.status().is_some() {
                    match client.on_response(&m) {
                        sip::ClientEvent::Ignored => continue,
                        e => return Ok(e),
                    }
                } else {
                    // A request while registering (OPTIONS ping...): answer 200.
                    let _ = sock.send(&m.response(200, "OK").encode()).await;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("no answer in {:.1} s", timeout.as_secs_f64()));
                }
                sock.send(&bytes).await.map_err(|e| format!("send: {e}"))?;
                t1 = (t1 * 2).min(Duration::from_secs(4));
                retx = tokio::time::Instant::now() + t1;
            }
        }
    }
}

async fn sip_register(
    ctx: &Ctx,
    cfg: &PhoneConfig,
    t: Vec<(String, Option<SocketAddr>)>,
    fallback: Duration,
    stop: &mut watch::Receiver<bool>,
) -> (RegDone, Option<Registration>) {
    let mut info = RegistrationInfo {
        protocol: Protocol::Sip,
        registered_to: None,
        attempts: Vec::new(),
        detail: String::new(),
        keepalive_secs: None,
    };
    let id = SipIdentity::new(ctx, cfg);
    let mut last_reject = None;
    for i in 0..t.len() {
        if *stop.borrow() {
            break;
        }
        let (name, addr) = t[i].clone();
        let attempt = |result: String| CallManagerAttempt {
            node: name.clone(),
            port: addr.map(|a| a.port()).unwrap_or(0),
            result,
        };
        let Some(addr) = addr else {
            info.attempts.push(attempt("cannot resolve".into()));
            continue;
        };
        match sip_bind(ctx, &id, addr).await {
            Ok(b) => {
                info.attempts
                    .push(attempt(format!("200 OK, expires {}", b.granted)));
                info.registered_to = Some(name.clone());
                info.keepalive_secs = Some(b.granted);
                info.detail = id.describe(addr, b.granted);
                let now = tokio::time::Instant::now();
                let reg = SipReg {
                    ctx: ctx.clone(),
                    id,
                    refresh_at: now + refresh_period(b.granted),
                    fallback_at: (i > 0).then(|| now + fallback),
                    targets: t,
                    active: i,
                    b,
                    fallback,
                    queued: VecDeque::new(),
                };
                return (
                    RegDone {
                        info,
                        failure: None,
                    },
                    Some(Registration::Sip(Box::new(reg))),
                );
            }
            Err(e) => {
                if let SipFail::Rejected(..) = e {
                    last_reject = Some(format!("{name} answered {e}"));
                }
                info.attempts.push(attempt(e.to_string()));
            }
        }
    }
    let failure = match last_reject {
        Some(r) => ("register_rejected".to_string(), r),
        None if *stop.borrow() => ("stopped".into(), "stopped".into()),
        None => (
            "no_callmanager".to_string(),
            format!(
                "none of {} CallManager(s) accepted: {}",
                info.attempts.len(),
                info.attempts
                    .iter()
                    .map(|a| format!("{} {}", a.node, a.result))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
    };
    (
        RegDone {
            info,
            failure: Some(failure),
        },
        None,
    )
}

impl SipReg {
    fn name(&self, i: usize) -> String {
        self.targets.get(i).map(|t| t.0.clone()).unwrap_or_default()
    }

    async fn hold(&mut self, stop: &mut watch::Receiver<bool>) -> HoldEnd {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return e;
            }
            if *stop.borrow() {
                return HoldEnd::Stopped;
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                r = self.b.sock.recv() => match r {
                    Ok(m) => {
                        if m.status().is_some() {
                            let _ = self.b.client.on_response(&m);
                            continue;
                        }
                        let _ = self.b.sock.send(&m.response(200, "OK").encode()).await;
                        if m.method() == Some(&sip::Method::Notify) {
                            let event = m.header("Event").unwrap_or("").to_ascii_lowercase();
                            let body = String::from_utf8_lossy(&m.body).to_string();
                            if event.contains("service-control") || event.contains("check-sync") {
                                let action = body
                                    .lines()
                                    .find_map(|l| l.strip_prefix("action="))
                                    .unwrap_or("restart")
                                    .trim()
                                    .to_string();
                                return HoldEnd::Restart(format!(
                                    "SIP NOTIFY {event} action={action} from {}",
                                    self.name(self.active)
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        // UDP: a stray datagram; TCP: the CallManager is gone.
                        if !self.b.sock.is_udp() {
                            self.fail_over(e).await;
                        }
                    }
                },
                _ = tokio::time::sleep_until(self.refresh_at) => {
                    let b = &mut self.b;
                    match register_rounds(&mut b.sock, &mut b.client, &mut b.expires, self.ctx.timeout).await {
                        Ok(granted) => {
                            b.granted = granted;
                            self.refresh_at = tokio::time::Instant::now() + refresh_period(granted);
                        }
                        Err(e) => self.fail_over(format!("refresh failed: {e}")).await,
                    }
                }
                _ = tokio::time::sleep_until(self.fallback_at.unwrap_or(far)) => {
                    self.fall_back().await;
                }
                _ = crate::phone::stop_requested(stop) => {}
            }
        }
    }

    /// Registers to `j` on a new binding; the old one is dropped (its dialog ends).
    fn switch_to(&mut self, j: usize, b: SipBinding) {
        let now = tokio::time::Instant::now();
        self.queued.push_back(HoldEnd::Event(format!(
            "registered to {}: {}",
            self.name(j),
            self.id.describe(b.addr, b.granted)
        )));
        self.refresh_at = now + refresh_period(b.granted);
        self.fallback_at = (j > 0).then(|| now + self.fallback);
        self.active = j;
        self.b = b;
    }

    /// The active CallManager is gone: the next of the list that accepts takes the phone;
    /// none does: start over (files, then the list from the top).
    async fn fail_over(&mut self, why: String) {
        let from = self.active;
        self.queued.push_back(HoldEnd::Event(format!(
            "lost CallManager {}: {why}",
            self.name(from)
        )));
        let n = self.targets.len();
        for j in (1..n).map(|k| (from + k) % n) {
            let Some(addr) = self.targets[j].1 else {
                continue;
            };
            match sip_bind(&self.ctx, &self.id, addr).await {
                Ok(b) => {
                    self.queued.push_back(HoldEnd::Event(format!(
                        "failover {} -> {}",
                        self.name(from),
                        self.name(j)
                    )));
                    self.switch_to(j, b);
                    return;
                }
                Err(e) => self.queued.push_back(HoldEnd::Event(format!(
                    "{} did not take the phone: {e}",
                    self.name(j)
                ))),
            }
        }
        self.queued.push_back(HoldEnd::Restart(format!(
            "no CallManager took the phone after {} was lost",
            self.name(from)
        )));
    }

    /// On a backup: the first higher-priority CallManager that accepts takes the phone
    /// back, then the backup is told the phone left (Expires: 0).
    async fn fall_back(&mut self) {
        let from = self.active;
        for j in 0..from {
            let Some(addr) = self.targets[j].1 else {
                continue;
            };
            // Refusals are expected while the primary is still down: not kept.
            if let Ok(b) = sip_bind(&self.ctx, &self.id, addr).await {
                self.unregister().await;
                self.queued.push_back(HoldEnd::Event(format!(
                    "fell back from {} to {}",
                    self.name(from),
                    self.name(j)
                )));
                self.switch_to(j, b);
                return;
            }
        }
        self.fallback_at = Some(tokio::time::Instant::now() + self.fallback);
    }

    /// Best effort, bounded: REGISTER with Expires: 0 on the active binding.
    async fn unregister(&mut self) {
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            transact(
                &mut self.b.sock,
                &mut self.b.client,
                0,
                Duration::from_millis(500),
            ),
        )
        .await;
    }

    async fn stop(&mut self) {
        self.unregister().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    /// A registrar on loopback UDP that accepts every REGISTER (200 OK, no challenge) and
    /// reports the Expires of each.
    async fn registrar(
        at: SocketAddr,
    ) -> (SocketAddr, JoinHandle<()>, mpsc::UnboundedReceiver<String>) {
        let sock = UdpSocket::bind(at).await.unwrap();
        let addr = sock.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let h = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let Ok(m) = sip::Message::parse(&buf[..n], &sip::Limits::default()) else {
                    continue;
                };
                let _ = tx.send(m.header("Expires").unwrap_or("").to_string());
                let _ = sock.send_to(&m.response(200, "OK").encode(), from).await;
            }
        });
        (addr, h, rx)
    }

    /// The hold loop's next timeline line (bounded).
    async fn next(reg: &mut SipReg, stop: &mut watch::Receiver<bool>) -> HoldEnd {
        tokio::time::timeout(Duration::from_secs(10), reg.hold(stop))
            .await
            .expect("the hold loop answers within 10 s")
    }

    /// UDP: a primary that stops answering is noticed at the refresh, the phone registers to
    /// the backup; when the primary answers again the phone goes back and unregisters from
    /// the backup.
    #[tokio::test]
    async fn sip_fails_over_on_an_unanswered_refresh_and_falls_back() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (a, a_task, _a_rx) = registrar(any).await;
        let (b, _b_task, mut b_rx) = registrar(any).await;
        let ctx = Ctx {
            mac: "001b54aa0001".parse().unwrap(),
            model: Model::lookup("8845").unwrap(),
            protocol: Protocol::Sip,
            ip: Ipv4Addr::LOCALHOST,
            timeout: Duration::from_millis(300),
            sip_expires: 120,
        };
        let (_keep, mut stop) = watch::channel(false);
        let targets = vec![("A".to_string(), Some(a)), ("B".to_string(), Some(b))];
        let cfg = PhoneConfig::default();
        let (done, reg) =
            sip_register(&ctx, &cfg, targets, Duration::from_secs(60), &mut stop).await;
        assert_eq!(
            done.info.registered_to.as_deref(),
            Some("A"),
            "{:?}",
            done.failure
        );
        let Some(Registration::Sip(mut reg)) = reg else {
            panic!("not a SIP registration");
        };
        assert!(
            reg.fallback_at.is_none(),
            "on the primary: no fallback timer"
        );

        // A dies; the refresh is due now.
        a_task.abort();
        let _ = a_task.await;
        reg.refresh_at = tokio::time::Instant::now();
        let want = [
            "lost CallManager A: refresh failed: no answer",
            "failover A -> B",
            "registered to B: SIP (no digest)",
        ];
        for w in want {
            match next(&mut reg, &mut stop).await {
                HoldEnd::Event(e) => assert!(e.starts_with(w), "{e:?} is not {w:?}"),
                other => panic!("{other:?} instead of {w:?}"),
            }
        }
        assert_eq!(b_rx.recv().await.as_deref(), Some("120"));
        assert_eq!(reg.active, 1);
        assert!(reg.fallback_at.is_some(), "on a backup: a fallback timer");

        // A still down at the fallback time: the phone stays on B and tries later.
        reg.fallback_at = Some(tokio::time::Instant::now());
        let _ = tokio::time::timeout(Duration::from_secs(2), reg.hold(&mut stop)).await;
        assert_eq!(reg.active, 1);
        assert!(reg
            .fallback_at
            .is_some_and(|t| t > tokio::time::Instant::now()));

        // A answers again on its address: the phone falls back and leaves B.
        let (_a2, _a2_task, mut a2_rx) = registrar(a).await;
        reg.fallback_at = Some(tokio::time::Instant::now());
        for w in ["fell back from B to A", "registered to A"] {
            match next(&mut reg, &mut stop).await {
                HoldEnd::Event(e) => assert!(e.starts_with(w), "{e:?} is not {w:?}"),
                other => panic!("{other:?} instead of {w:?}"),
            }
        }
        assert_eq!(a2_rx.recv().await.as_deref(), Some("120"));
        assert_eq!(
            b_rx.recv().await.as_deref(),
            Some("0"),
            "B is told the phone left"
        );
        assert_eq!(reg.active, 0);
        assert!(reg.fallback_at.is_none());
    }

    #[test]
    fn profiles_follow_the_catalogue() {
        let p = sccp_profile(Model::lookup("7940").unwrap());
        assert_eq!((p.device_type, p.max_version, p.register_len), (8, 11, 68));
        let p = sccp_profile(Model::lookup("7965").unwrap());
        assert_eq!(
            (p.device_type, p.max_version, p.register_len),
            (436, 22, 124)
        );
    }
}
