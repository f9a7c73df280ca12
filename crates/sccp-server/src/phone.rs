//! The one tokio driver of the sans-IO [`PhoneSession`]: it owns the TCP connections to the
//! CallManagers of the phone's list and runs the session's timers. Everything that plays an
//! SCCP phone uses it: the emulator (`sim`, one driver per phone, bound to the phone's leased
//! address), this crate's tests ([`spawn_phone`]) and the load clients ([`register_once`]).
//!
//! No task per connection: the driver waits on its own sockets' readiness, so a storm of
//! thousands of phones costs their sockets and sessions, not a reader task and buffer each.
//! Every message the session produces in one step leaves in one write per connection (a phone
//! answering a burst of replies sends one segment, not up to eight).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use sccp::{PhoneAction, PhoneConfig, PhoneEvent, PhoneSession};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A snapshot of the phone's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneStatus {
    pub active: Option<usize>,
    pub standby: Option<usize>,
    pub in_service: bool,
    pub version: u8,
    pub lines: Vec<String>,
}

impl PhoneStatus {
    fn of(s: &PhoneSession) -> Self {
        PhoneStatus {
            active: s.active(),
            standby: s.standby(),
            in_service: s.is_in_service(),
            version: s.version(),
            lines: s.lines().to_vec(),
        }
    }
}

/// How a connection to CallManager `server` ended without the session asking.
#[derive(Debug)]
pub enum LinkEnd {
    /// The connect failed (refused, timed out, the local address could not be bound).
    ConnectFailed(io::Error),
    /// An open connection was closed by the peer or failed on read or write.
    Closed,
}

struct Link {
    /// Bumped on every connect and close: a late connect result of an older try is dropped.
    gen: u64,
    stream: Option<TcpStream>,
    /// Bytes the socket did not take yet (a CallManager that is not reading).
    pending: Vec<u8>,
}

struct Connected {
    server: usize,
    gen: u64,
    result: io::Result<TcpStream>,
}

enum Ready {
    Read(usize),
    Write(usize),
}

/// Connects to `to` from `local` (if given) within `timeout`, as a phone's stack does: no
/// Nagle, delayed ACKs (the reply to a CallManager's message carries its ACK instead of a
/// pure ACK frame ahead of it). The emulator's SIP over TCP connects the same way.
pub async fn connect_as_phone(
    local: Option<SocketAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(l) = local {
        s.bind(l)
            .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", l.ip())))?;
    }
    match tokio::time::timeout(timeout, s.connect(to)).await {
        Ok(Ok(c)) => {
            let _ = c.set_nodelay(true);
            let _ = c.set_quickack(false);
            Ok(c)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer in {:.1} s", timeout.as_secs_f64()),
        )),
    }
}

/// A [`PhoneSession`] with its connections. Drive it with [`PhoneDriver::next_event`].
pub struct PhoneDriver {
    session: PhoneSession,
    addrs: Vec<Option<SocketAddr>>,
    local: Option<SocketAddr>,
    connect_timeout: Duration,
    links: Vec<Link>,
    tx: mpsc::Sender<Connected>,
    rx: mpsc::Receiver<Connected>,
    ends: Vec<(usize, LinkEnd)>,
    /// A connection ended since the last step (for `break_on_failure`).
    ended: bool,
    break_on_failure: bool,
    status: Option<watch::Sender<PhoneStatus>>,
}

impl PhoneDriver {
    /// A phone whose CallManager list is `addrs` (index 0 = primary; `None` = a name that did
    /// not resolve, tried and failed like a refused connect), connecting from `local` if given.
    pub fn new(
        mut cfg: PhoneConfig,
        addrs: Vec<Option<SocketAddr>>,
        local: Option<SocketAddr>,
        connect_timeout: Duration,
    ) -> Self {
        let n = addrs.len().max(1);
        cfg.servers = n;
        let (tx, rx) = mpsc::channel(8);
        PhoneDriver {
            session: PhoneSession::new(cfg),
            addrs,
            local,
            connect_timeout,
            links: (0..n)
                .map(|_| Link {
                    gen: 0,
                    stream: None,
                    pending: Vec::new(),
                })
                .collect(),
            tx,
            rx,
            ends: Vec::new(),
            ended: false,
            break_on_failure: false,
            status: None,
        }
    }

    /// Publishes a [`PhoneStatus`] on `tx` whenever it changes.
    pub fn with_status(mut self, tx: watch::Sender<PhoneStatus>) -> Self {
        self.status = Some(tx);
        self
    }

    /// While set, [`PhoneDriver::next_event`] also returns (with the session's pending event,
    /// if any) as soon as a connection fails or closes, so that "no CallManager answered" is known when
    /// the last one refused rather than at the next timer.
    pub fn set_break_on_failure(&mut self, on: bool) {
        self.break_on_failure = on;
    }

    pub fn session(&self) -> &PhoneSession {
        &self.session
    }

    /// Starts registering (the first connect).
    pub fn start(&mut self) {
        self.session.start(Instant::now());
    }

    /// Asks the session to unregister; the Unregister leaves on the next step.
    pub fn unregister(&mut self) {
        self.session.unregister();
        self.apply_actions();
    }

    /// Connections that ended without the session asking since the last call.
    pub fn take_ends(&mut self) -> Vec<(usize, LinkEnd)> {
        std::mem::take(&mut self.ends)
    }

    /// Closes every connection (the session is not told: the phone is going away).
    pub fn close_all(&mut self) {
        for l in &mut self.links {
            l.gen += 1;
            l.stream = None;
            l.pending.clear();
        }
    }

    /// Unregisters, gives the Unregister `grace` to leave, then closes every connection.
    pub async fn shutdown(&mut self, grace: Duration) {
        self.unregister();
        let deadline = tokio::time::Instant::now() + grace;
        while self.next_event(Some(deadline)).await.is_some() {}
        self.close_all();
    }

    /// The open connection to `server`, taken out of the driver (for load clients that hold
    /// registered connections without timers). Bytes not yet written are written first.
    pub async fn into_stream(mut self, server: usize) -> io::Result<TcpStream> {
        let link = self
            .links
            .get_mut(server)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such server"))?;
        let mut s = link
            .stream
            .take()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        if !link.pending.is_empty() {
            tokio::io::AsyncWriteExt::write_all(&mut s, &link.pending).await?;
        }
        Ok(s)
    }

    /// Drives the session until it yields an event. `None` when `deadline` passes, or (with
    /// [`PhoneDriver::set_break_on_failure`]) when a connection failed and no event is
    /// pending. Cancel-safe: dropping the future loses nothing (all state is in `self`).
    pub async fn next_event(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Option<PhoneEvent> {
        loop {
            self.apply_actions();
            self.publish_status();
            if let Some(e) = self.session.poll_event() {
                return Some(e);
            }
            let t = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let wake = match (t, deadline) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a
                    .or(b)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
            };
            let links = &self.links;
            let ready = poll_fn(|cx| {
                for (i, l) in links.iter().enumerate() {
                    let Some(s) = &l.stream else { continue };
                    if s.poll_read_ready(cx).is_ready() {
                        return Poll::Ready(Ready::Read(i));
                    }
                    if !l.pending.is_empty() && s.poll_write_ready(cx).is_ready() {
                        return Poll::Ready(Ready::Write(i));
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                c = self.rx.recv() => {
                    // Never None: the driver holds a sender.
                    let c = c?;
                    self.on_connected(c);
                }
                r = ready => match r {
                    Ready::Read(i) => self.read(i),
                    Ready::Write(i) => self.flush(i),
                },
                _ = tokio::time::sleep_until(wake) => {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return None;
                    }
                    self.session.handle_timeout(Instant::now());
                }
            }
            if std::mem::take(&mut self.ended) && self.break_on_failure {
                self.apply_actions();
                self.publish_status();
                return self.session.poll_event();
            }
        }
    }

    fn publish_status(&self) {
        if let Some(tx) = &self.status {
            tx.send_if_modified(|s| {
                let n = PhoneStatus::of(&self.session);
                let changed = *s != n;
                *s = n;
                changed
            });
        }
    }

    /// Performs what the session asked for, until it asks nothing more; then writes what each
    /// connection gathered (a flush that fails tells the session, which may ask again).
    fn apply_actions(&mut self) {
        while let Some(first) = self.session.poll_action() {
            let mut next = Some(first);
            while let Some(a) = next {
                self.apply(a);
                next = self.session.poll_action();
            }
            for i in 0..self.links.len() {
                self.flush(i);
            }
        }
    }

    fn apply(&mut self, a: PhoneAction) {
        match a {
            PhoneAction::Connect(i) => {
                let Some(l) = self.links.get_mut(i) else {
                    return;
                };
                l.gen += 1;
                l.stream = None;
                l.pending.clear();
                let gen = l.gen;
                let tx = self.tx.clone();
                let (local, timeout) = (self.local, self.connect_timeout);
                let addr = self.addrs.get(i).copied().flatten();
                tokio::spawn(async move {
                    let result = match addr {
                        Some(a) => connect_as_phone(local, a, timeout).await,
                        None => Err(io::Error::new(io::ErrorKind::NotFound, "cannot resolve")),
                    };
                    let _ = tx
                        .send(Connected {
                            server: i,
                            gen,
                            result,
                        })
                        .await;
                });
            }
            PhoneAction::Send(i, bytes) => {
                if let Some(l) = self.links.get_mut(i).filter(|l| l.stream.is_some()) {
                    l.pending.extend_from_slice(&bytes);
                }
            }
            PhoneAction::Close(i) => {
                self.flush(i);
                if let Some(l) = self.links.get_mut(i) {
                    l.gen += 1;
                    l.stream = None;
                    l.pending.clear();
                }
            }
        }
    }

    /// Writes what connection `i` has pending, as far as the socket takes it.
    fn flush(&mut self, i: usize) {
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        let Some(s) = &l.stream else { return };
        while !l.pending.is_empty() {
            match s.try_write(&l.pending) {
                Ok(n) => {
                    l.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.lost(i);
                    return;
                }
            }
        }
    }

    /// Reads what connection `i` has for the session.
    fn read(&mut self, i: usize) {
        let mut buf = [0u8; 16384];
        let Some(s) = self.links.get(i).and_then(|l| l.stream.as_ref()) else {
            return;
        };
        match s.try_read(&mut buf) {
            Ok(0) => self.lost(i),
            Ok(n) => self.session.handle_bytes(i, &buf[..n], Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.lost(i),
        }
    }

    /// Connection `i` ended under us: tell the session.
    fn lost(&mut self, i: usize) {
        if let Some(l) = self.links.get_mut(i) {
            l.gen += 1;
            l.stream = None;
            l.pending.clear();
        }
        self.ends.push((i, LinkEnd::Closed));
        self.ended = true;
        self.session.handle_closed(i, Instant::now());
    }

    /// A connect finished (dropped when an older try than the link's current one).
    fn on_connected(&mut self, c: Connected) {
        let Some(l) = self.links.get_mut(c.server) else {
            return;
        };
        if l.gen != c.gen {
            return;
        }
        let now = Instant::now();
        match c.result {
            Ok(s) => {
                l.stream = Some(s);
                self.session.handle_connected(c.server, now);
            }
            Err(e) => {
                self.ends.push((c.server, LinkEnd::ConnectFailed(e)));
                self.ended = true;
                self.session.handle_closed(c.server, now);
            }
        }
    }
}

/// A running phone.
pub struct PhoneHandle {
    pub events: mpsc::UnboundedReceiver<PhoneEvent>,
    pub status: watch::Receiver<PhoneStatus>,
    cmd: mpsc::UnboundedSender<PhoneCmd>,
    task: JoinHandle<()>,
}

enum PhoneCmd {
    Unregister,
    Stop,
}

impl PhoneHandle {
    /// Waits until the status satisfies `pred`, at most `timeout`.
    pub async fn wait_status(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&PhoneStatus) -> bool,
    ) -> Option<PhoneStatus> {
        let fut = self.status.wait_for(|s| pred(s));
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Waits for an event matching `pred`, at most `timeout`.
    pub async fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&PhoneEvent) -> bool,
    ) -> Option<PhoneEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return Some(e),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    pub fn unregister(&self) {
        let _ = self.cmd.send(PhoneCmd::Unregister);
    }

    /// Closes every connection and ends the task.
    pub async fn stop(self) {
        let _ = self.cmd.send(PhoneCmd::Stop);
        let _ = self.task.await;
    }
}

/// Starts a phone that registers to `servers` (index 0 = primary), in a task of its own.
pub fn spawn_phone(cfg: PhoneConfig, servers: Vec<SocketAddr>) -> PhoneHandle {
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (st_tx, st_rx) = watch::channel(PhoneStatus::default());
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    let mut d = PhoneDriver::new(
        cfg,
        servers.into_iter().map(Some).collect(),
        None,
        Duration::from_secs(3),
    )
    .with_status(st_tx);
    let task = tokio::spawn(async move {
        d.start();
        loop {
            tokio::select! {
                e = d.next_event(None) => {
                    if let Some(e) = e {
                        let _ = ev_tx.send(e);
                    }
                }
                c = cmd_rx.recv() => match c {
                    Some(PhoneCmd::Unregister) => d.unregister(),
                    Some(PhoneCmd::Stop) | None => break,
                },
            }
        }
        d.close_all();
    });
    PhoneHandle {
        events: ev_rx,
        status: st_rx,
        cmd: cmd_tx,
        task,
    }
}

/// Registers one phone over one connection from `local` (if given) to `server`, returning
/// the open connection once every post-registration request is answered. For load tests:
/// no standby connection, no fallback; the caller holds the connection without timers.
pub async fn register_once(
    mut cfg: PhoneConfig,
    server: SocketAddr,
    local: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    cfg.standby = false;
    cfg.fallback = false;
    let mut d = PhoneDriver::new(cfg, vec![Some(server)], local, timeout);
    d.set_break_on_failure(true);
    let deadline = tokio::time::Instant::now() + timeout;
    d.start();
    loop {
        let ev = d.next_event(Some(deadline)).await;
        if let Some((_, end)) = d.take_ends().into_iter().next() {
            return Err(match end {
                LinkEnd::ConnectFailed(e) => e,
                LinkEnd::Closed => io::ErrorKind::UnexpectedEof.into(),
            });
        }
        match ev {
            Some(PhoneEvent::Rejected { text, .. }) => {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, text))
            }
            Some(_) if d.session().is_in_service() => return d.into_stream(0).await,
            Some(_) => {}
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "registration timed out",
                ))
            }
        }
    }
}
