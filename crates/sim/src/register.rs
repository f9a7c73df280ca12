//! Registration drivers: the `sccp` crate's phone session and the `sip` crate's REGISTER
//! client, on kernel sockets bound to the phone's leased address, through the CallManager
//! list of the configuration file in priority order.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use journal::Protocol;
use mac::Mac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cnf::PhoneConfig;
use crate::model::{Family, Model};
use crate::phone::resolve_v4;
use crate::report::{CallManagerAttempt, RegistrationInfo};

/// How emulated SCCP phones fail over and fall back, for the whole process (the command
/// line sets it once; the phone's defaults otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SccpFailover {
    /// Registered to a backup, ask the primary for a token after this long.
    pub fallback_interval: Duration,
    /// Keepalives left unanswered before a CallManager is declared dead.
    pub missed_keepalives: u32,
    /// Keep a standby connection to the next CallManager.
    pub standby: bool,
}

impl Default for SccpFailover {
    fn default() -> Self {
        SccpFailover {
            fallback_interval: Duration::from_secs(30),
            missed_keepalives: 3,
            standby: true,
        }
    }
}

static SCCP_FAILOVER: std::sync::OnceLock<SccpFailover> = std::sync::OnceLock::new();

/// Sets the failover behaviour of every SCCP phone this process emulates; only the first
/// call counts (returns false for later ones).
pub fn set_sccp_failover(f: SccpFailover) -> bool {
    SCCP_FAILOVER.set(f).is_ok()
}

fn sccp_failover() -> SccpFailover {
    SCCP_FAILOVER.get().copied().unwrap_or_default()
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
    match ctx.protocol {
        Protocol::Sccp => sccp_register(ctx, t, stop).await,
        Protocol::Sip => sip_register(ctx, cfg, t, stop).await,
    }
}

async fn connect_from(
    local: Ipv4Addr,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let s = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    s.bind(SocketAddr::V4(SocketAddrV4::new(local, 0)))
        .map_err(|e| format!("bind {local}: {e}"))?;
    match tokio::time::timeout(timeout, s.connect(to)).await {
        Ok(Ok(c)) => {
            let _ = c.set_nodelay(true);
            // Delayed ACKs, as a phone's stack does: the reply to a CallManager's message
            // carries its ACK instead of a pure ACK frame ahead of it.
            let _ = c.set_quickack(false);
            Ok(c)
        }
        Ok(Err(e)) => Err(format!("{e}")),
        Err(_) => Err(format!("no answer in {:.1} s", timeout.as_secs_f64())),
    }
}

// ---------------------------------------------------------------- SCCP

enum ConnEv {
    Connected(usize, u64, OwnedWriteHalf, JoinHandle<()>),
    Failed(usize, u64, String),
    Bytes(usize, u64, Vec<u8>),
    Closed(usize, u64),
}

/// The SCCP session and its TCP connections.
pub struct SccpReg {
    session: sccp::PhoneSession,
    names: Vec<String>,
    addrs: Vec<Option<SocketAddr>>,
    local: Ipv4Addr,
    timeout: Duration,
    writers: Vec<Option<OwnedWriteHalf>>,
    readers: Vec<Option<JoinHandle<()>>>,
    gen: Vec<u64>,
    tx: mpsc::Sender<ConnEv>,
    rx: mpsc::Receiver<ConnEv>,
    /// Connection failures since the last success: (server, reason).
    failures: Vec<(usize, String)>,
    /// The CallManager the last reported "in service" was on.
    in_service_on: Option<usize>,
    /// While registering: return from `next_event` on a connection failure, so that "no
    /// CallManager answered" is reported as soon as the last one refused.
    break_on_failure: bool,
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
    fn apply_actions(&mut self) {
        // Every message the session produced in one poll leaves in one write (one segment
        // instead of up to eight: a phone answering a burst of replies).
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); self.writers.len()];
        while let Some(a) = self.session.poll_action() {
            match a {
                sccp::PhoneAction::Connect(i) => {
                    self.flush(&mut out, i);
                    let Some(slot) = self.gen.get_mut(i) else {
                        continue;
                    };
                    *slot += 1;
                    let g = *slot;
                    let tx = self.tx.clone();
                    let (local, timeout) = (self.local, self.timeout);
                    let addr = self.addrs.get(i).copied().flatten();
                    tokio::spawn(async move {
                        let Some(addr) = addr else {
                            let _ = tx.send(ConnEv::Failed(i, g, "cannot resolve".into())).await;
                            return;
                        };
                        match connect_from(local, addr, timeout).await {
                            Ok(c) => {
                                let (mut r, w) = c.into_split();
                                let tx2 = tx.clone();
                                let reader = tokio::spawn(async move {
                                    let mut buf = vec![0u8; 16384];
                                    loop {
                                        match r.read(&mut buf).await {
                                            Ok(0) | Err(_) => {
                                                let _ = tx2.send(ConnEv::Closed(i, g)).await;
                                                return;
                                            }
                                            Ok(n) => {
                                                if tx2
                                                    .send(ConnEv::Bytes(i, g, buf[..n].to_vec()))
                                                    .await
                                                    .is_err()
                                                {
                                                    return;
                                                }
                                            }
                                        }
                                    }
                                });
                                if let Err(mpsc::error::SendError(ConnEv::Connected(_, _, _, h))) =
                                    tx.send(ConnEv::Connected(i, g, w, reader)).await
                                {
                                    h.abort();
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(ConnEv::Failed(i, g, e)).await;
                            }
                        }
                    });
                }
                sccp::PhoneAction::Send(i, bytes) => {
                    if let Some(o) = out.get_mut(i) {
                        o.extend_from_slice(&bytes);
                    }
                }
                sccp::PhoneAction::Close(i) => {
                    self.flush(&mut out, i);
                    if let Some(g) = self.gen.get_mut(i) {
                        *g += 1;
                    }
                    if let Some(w) = self.writers.get_mut(i) {
                        *w = None;
                    }
                    if let Some(Some(h)) = self.readers.get_mut(i).map(|r| r.take()) {
                        h.abort();
                    }
                }
            }
        }
        for i in 0..out.len() {
            self.flush(&mut out, i);
        }
    }

    /// Writes the bytes gathered for connection `i`, if any.
    fn flush(&mut self, out: &mut [Vec<u8>], i: usize) {
        let Some(bytes) = out.get_mut(i).map(std::mem::take) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let Some(w) = self.writers.get_mut(i).and_then(|w| w.as_mut()) else {
            return;
        };
        // Writes are small; a full socket buffer means the CM is not reading.
        match w.try_write(&bytes) {
            Ok(n) if n == bytes.len() => {}
            r => {
                let rest = match r {
                    Ok(n) => bytes[n..].to_vec(),
                    Err(_) => bytes,
                };
                let w = self.writers[i].take();
                let tx = self.tx.clone();
                let g = self.gen[i];
                tokio::spawn(async move {
                    if let Some(mut w) = w {
                        if w.write_all(&rest).await.is_err() {
                            let _ = tx.send(ConnEv::Closed(i, g)).await;
                        }
                    }
                });
            }
        }
    }

    fn on_conn(&mut self, ev: ConnEv) {
        let now = Instant::now();
        match ev {
            ConnEv::Connected(i, g, w, h) => {
                if self.gen.get(i) != Some(&g) {
                    h.abort();
                    return;
                }
                self.writers[i] = Some(w);
                self.readers[i] = Some(h);
                self.session.handle_connected(i, now);
            }
            ConnEv::Failed(i, g, e) => {
                if self.gen.get(i) == Some(&g) {
                    self.failures.push((i, e));
                    self.session.handle_closed(i, now);
                }
            }
            ConnEv::Bytes(i, g, b) => {
                if self.gen.get(i) == Some(&g) {
                    self.session.handle_bytes(i, &b, now);
                }
            }
            ConnEv::Closed(i, g) => {
                if self.gen.get(i) == Some(&g) {
                    self.writers[i] = None;
                    self.readers[i] = None;
                    self.session.handle_closed(i, now);
                }
            }
        }
    }

    /// Drives the session until it yields an event, `deadline` passes or `stop`.
    async fn next_event(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        deadline: Option<tokio::time::Instant>,
    ) -> Option<sccp::PhoneEvent> {
        loop {
            self.apply_actions();
            if let Some(e) = self.session.poll_event() {
                return Some(e);
            }
            if *stop.borrow() {
                return None;
            }
            let t = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let wake = match (t, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => {
                        self.on_conn(ev);
                        if self.break_on_failure && !self.failures.is_empty() {
                            self.apply_actions();
                            if let Some(e) = self.session.poll_event() {
                                return Some(e);
                            }
                            return None;
                        }
                    }
                    None => return None,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or(far)) => {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return None;
                    }
                    self.session.handle_timeout(Instant::now());
                }
                _ = crate::phone::stop_requested(stop) => {}
            }
        }
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
        self.session.unregister();
        self.apply_actions();
        // Give the Unregister a moment to leave; then drop every connection.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let (_keep, mut never) = watch::channel(false);
        let _ = self.next_event(&mut never, Some(deadline)).await;
        for i in 0..self.writers.len() {
            self.writers[i] = None;
            if let Some(h) = self.readers[i].take() {
                h.abort();
            }
        }
    }
}

async fn sccp_register(
    ctx: &Ctx,
    t: Vec<(String, Option<SocketAddr>)>,
    stop: &mut watch::Receiver<bool>,
) -> (RegDone, Option<Registration>) {
    let n = t.len().max(1);
    let mut pc = sccp::PhoneConfig::new(ctx.mac.octets(), ctx.ip, sccp_profile(ctx.model), n);
    pc.register_timeout = ctx.timeout;
    pc.retry_delay = Duration::from_secs(10);
    let fo = sccp_failover();
    pc.fallback_interval = fo.fallback_interval;
    pc.missed_keepalives = fo.missed_keepalives.max(1);
    pc.standby = fo.standby;
    let (tx, rx) = mpsc::channel(64);
    let mut s = SccpReg {
        session: sccp::PhoneSession::new(pc),
        names: t.iter().map(|x| x.0.clone()).collect(),
        addrs: t.iter().map(|x| x.1).collect(),
        local: ctx.ip,
        timeout: ctx.timeout,
        writers: (0..n).map(|_| None).collect(),
        readers: (0..n).map(|_| None).collect(),
        gen: vec![0; n],
        tx,
        rx,
        failures: Vec::new(),
        in_service_on: None,
        break_on_failure: true,
    };
    let mut info = RegistrationInfo {
        protocol: Protocol::Sccp,
        registered_to: None,
        attempts: Vec::new(),
        detail: String::new(),
        keepalive_secs: None,
    };
    s.session.start(Instant::now());
    // Each CM gets its connect + RegisterAck time; one spare for slow answers.
    let deadline = tokio::time::Instant::now() + ctx.timeout * (n as u32 * 2 + 1);
    loop {
        let ev = s.next_event(stop, Some(deadline)).await;
        for (i, e) in s.failures.drain(..) {
            info.attempts.push(CallManagerAttempt {
                node: s.names.get(i).cloned().unwrap_or_default(),
                port: s
                    .addrs
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|a| a.port())
                    .unwrap_or(0),
                result: format!("no connection: {e}"),
            });
        }
        let failed_all = info.attempts.len() >= n && s.session.active().is_none();
        match ev {
            Some(sccp::PhoneEvent::Registered {
                server,
                version,
                keepalive,
            }) => {
                let node = s.names.get(server).cloned().unwrap_or_default();
                info.attempts.push(CallManagerAttempt {
                    node: node.clone(),
                    port: s
                        .addrs
                        .get(server)
                        .copied()
                        .flatten()
                        .map(|a| a.port())
                        .unwrap_or(0),
                    result: "RegisterAck".into(),
                });
                info.registered_to = Some(node);
                info.keepalive_secs = Some(keepalive);
                s.break_on_failure = false;
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
                info.attempts.push(CallManagerAttempt {
                    node: node.clone(),
                    port: s
                        .addrs
                        .get(server)
                        .copied()
                        .flatten()
                        .map(|a| a.port())
                        .unwrap_or(0),
                    result: format!("RegisterReject: {text}"),
                });
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

/// A SIP registration being kept.
pub struct SipReg {
    sock: SipSock,
    client: sip::RegisterClient,
    expires: u32,
    refresh_at: tokio::time::Instant,
    node: String,
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
    stop: &mut watch::Receiver<bool>,
) -> (RegDone, Option<Registration>) {
    let mut info = RegistrationInfo {
        protocol: Protocol::Sip,
        registered_to: None,
        attempts: Vec::new(),
        detail: String::new(),
        keepalive_secs: None,
    };
    let line = cfg.sip_lines.first().cloned();
    let device = ctx.mac.device_name();
    let user = line
        .as_ref()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| device.clone());
    let auth_user = line
        .as_ref()
        .and_then(|l| l.auth_name.clone())
        .unwrap_or_else(|| user.clone());
    let password = line
        .as_ref()
        .and_then(|l| l.auth_password.clone())
        .unwrap_or_default();
    let tcp = cfg.transport == Some(1);
    let expires = cfg.register_expires.unwrap_or(ctx.sip_expires).max(60);
    let mut last_reject = None;
    for (name, addr) in t {
        if *stop.borrow() {
            break;
        }
        let attempt = |result: String| CallManagerAttempt {
            node: name.clone(),
            port: addr.map(|a| a.port()).unwrap_or(0),
            result,
        };
        let Some(addr) = addr else {
            info.attempts.push(attempt("cannot resolve".into()));
            continue;
        };
        let sock = if tcp {
            match connect_from(ctx.ip, addr, ctx.timeout).await {
                Ok(s) => SipSock::Tcp(s, Vec::new()),
                Err(e) => {
                    info.attempts
                        .push(attempt(format!("no TCP connection: {e}")));
                    continue;
                }
            }
        } else {
            let s = match UdpSocket::bind(SocketAddrV4::new(ctx.ip, 5060)).await {
                Ok(s) => s,
                Err(_) => match UdpSocket::bind(SocketAddrV4::new(ctx.ip, 0)).await {
                    Ok(s) => s,
                    Err(e) => {
                        info.attempts.push(attempt(format!("bind: {e}")));
                        continue;
                    }
                },
            };
            SipSock::Udp(s, addr)
        };
        let local = match &sock {
            SipSock::Udp(s, _) => s.local_addr(),
            SipSock::Tcp(s, _) => s.local_addr(),
        }
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(ctx.ip, 5060)));
        let domain = addr.ip().to_string();
        let ccfg = sip::ClientConfig {
            domain,
            user: user.clone(),
            auth_user: auth_user.clone(),
            password: password.clone(),
            local,
            transport: if tcp {
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
            call_id: format!("{}-{}@{}", token(), device, ctx.ip),
            from_tag: token(),
        };
        let mut client = sip::RegisterClient::new(ccfg);
        let mut sock = sock;
        let mut exp = expires;
        let mut result = None;
        for _ in 0..4 {
            match transact(&mut sock, &mut client, exp, ctx.timeout).await {
                Ok(sip::ClientEvent::Challenged) => continue,
                Ok(sip::ClientEvent::IntervalTooBrief { min }) => {
                    exp = min;
                    continue;
                }
                Ok(e) => {
                    result = Some(Ok(e));
                    break;
                }
                Err(e) => {
                    result = Some(Err(e));
                    break;
                }
            }
        }
        match result {
            Some(Ok(sip::ClientEvent::Registered { expires: granted })) => {
                info.attempts
                    .push(attempt(format!("200 OK, expires {granted}")));
                info.registered_to = Some(name.clone());
                info.keepalive_secs = Some(granted);
                info.detail = format!(
                    "SIP {} as {user}@{} over {}, expires {granted} s",
                    if password.is_empty() {
                        "(no digest)"
                    } else {
                        "with digest"
                    },
                    addr.ip(),
                    if tcp { "TCP" } else { "UDP" }
                );
                let refresh = Duration::from_secs(u64::from(granted.max(10)) * 8 / 10);
                let reg = SipReg {
                    sock,
                    client,
                    expires: exp,
                    refresh_at: tokio::time::Instant::now() + refresh,
                    node: name,
                };
                return (
                    RegDone {
                        info,
                        failure: None,
                    },
                    Some(Registration::Sip(Box::new(reg))),
                );
            }
            Some(Ok(sip::ClientEvent::Rejected { code, reason })) => {
                info.attempts.push(attempt(format!("{code} {reason}")));
                last_reject = Some(format!("{name} answered {code} {reason}"));
            }
            Some(Ok(other)) => {
                info.attempts.push(attempt(format!("unexpected {other:?}")));
            }
            Some(Err(e)) => info.attempts.push(attempt(e)),
            None => info.attempts.push(attempt("challenged repeatedly".into())),
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
    async fn hold(&mut self, stop: &mut watch::Receiver<bool>) -> HoldEnd {
        loop {
            if *stop.borrow() {
                return HoldEnd::Stopped;
            }
            tokio::select! {
                r = self.sock.recv() => match r {
                    Ok(m) => {
                        if m.status().is_some() {
                            let _ = self.client.on_response(&m);
                            continue;
                        }
                        let _ = self.sock.send(&m.response(200, "OK").encode()).await;
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
                                    self.node
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        if !self.sock.is_udp() {
                            return HoldEnd::Restart(format!("lost {}: {e}", self.node));
                        }
                    }
                },
                _ = tokio::time::sleep_until(self.refresh_at) => {
                    let msg = self.client.register(self.expires, &token(), &token());
                    let _ = self.sock.send(&msg.encode()).await;
                    let period = Duration::from_secs(u64::from(self.expires.max(10)) * 8 / 10);
                    self.refresh_at = tokio::time::Instant::now() + period;
                }
                _ = crate::phone::stop_requested(stop) => {}
            }
        }
    }

    async fn stop(&mut self) {
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            transact(
                &mut self.sock,
                &mut self.client,
                0,
                Duration::from_millis(500),
            ),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
