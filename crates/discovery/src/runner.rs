//! Tokio drivers: run the sans-IO agents on real AF_PACKET sockets.
//!
//! One task per switch: reader tasks (one per interface) pass frames in through a channel;
//! the main task feeds them to the agent, sleeps until the agent's next deadline, sends what
//! the agent wants sent, and turns its events into journal events. Control (cdp run/enable,
//! snapshots) goes through the [`SwitchHandle`]. A bad frame or a failed send is counted and
//! logged, never fatal.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use journal::{Event, EventKind, SharedSink, Side, VlanVia};
use l2::AsyncPacketSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{PhoneConfig, SwitchConfig};
use crate::debug::{DebugCategory, DebugFlags};
use crate::neighbors::Proto;
use crate::phone::{PhoneAgent, PhoneEvent, VlanState};
use crate::settings::Setting;
use crate::switch::{Snapshot, SwitchAgent, SwitchEvent};

/// Why the switch runner could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error("interface {name}: {source}")]
    Socket { name: String, source: io::Error },
    #[error("{sockets} sockets given for {interfaces} configured interfaces")]
    SocketCount { sockets: usize, interfaces: usize },
}

enum Cmd {
    Snapshot(oneshot::Sender<Snapshot>),
    Run(bool),
    Enable(String, bool, oneshot::Sender<bool>),
    Apply(Setting, oneshot::Sender<Result<(), crate::ConfigError>>),
    ClearTable(Proto),
    ClearCounters(Proto),
}

/// Control and inspection of a running switch agent. Dropping it stops the agent.
#[derive(Debug)]
pub struct SwitchHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    debug: Arc<DebugFlags>,
    task: JoinHandle<()>,
}

impl SwitchHandle {
    /// Neighbours, power and counters as of now (None if the agent has stopped).
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Snapshot(tx)).ok()?;
        rx.await.ok()
    }

    /// `cdp run` / `no cdp run`.
    pub fn set_run(&self, on: bool) {
        let _ = self.tx.send(Cmd::Run(on));
    }

    /// `cdp enable` / `no cdp enable` on an interface; false if it is not configured.
    pub async fn set_interface_enabled(&self, name: &str, on: bool) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Enable(name.into(), on, tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Applies a run-time change at once (see [`SwitchAgent::apply`]).
    pub async fn apply(&self, setting: Setting) -> Result<(), crate::ConfigError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Apply(setting, tx))
            .map_err(|_| crate::ConfigError::Stopped)?;
        rx.await.unwrap_or(Err(crate::ConfigError::Stopped))
    }

    /// `clear cdp|lldp table`.
    pub fn clear_table(&self, proto: Proto) {
        let _ = self.tx.send(Cmd::ClearTable(proto));
    }

    /// `clear cdp|lldp counters`.
    pub fn clear_counters(&self, proto: Proto) {
        let _ = self.tx.send(Cmd::ClearCounters(proto));
    }

    /// `debug cdp packets|events|adjacency|ip` (takes effect at once).
    pub fn set_debug(&self, c: DebugCategory, on: bool) {
        self.debug.set(c, on);
    }

    pub fn debug_flags(&self) -> Arc<DebugFlags> {
        self.debug.clone()
    }

    /// Stops the agent and its readers.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

impl Drop for SwitchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens an AF_PACKET socket on every configured interface (in the current network
/// namespace), joins the CDP and LLDP groups, and starts the switch agent.
pub fn spawn_switch(cfg: SwitchConfig, sink: SharedSink) -> Result<SwitchHandle, RunError> {
    cfg.validate()?;
    let mut socks = Vec::new();
    for i in &cfg.interfaces {
        let err = |source| RunError::Socket {
            name: i.name.clone(),
            source,
        };
        let s = l2::PacketSocket::open(&i.name).map_err(err)?;
        for g in [cdp::MULTICAST, lldp::MULTICAST] {
            s.join_multicast(g).map_err(err)?;
        }
        s.filter_discovery().map_err(err)?;
        socks.push(AsyncPacketSocket::new(s).map_err(err)?);
    }
    spawn_switch_on(cfg, socks, sink)
}

/// Starts the switch agent on sockets already opened (one per configured interface, in
/// order; they should have joined the CDP and LLDP multicast groups).
pub fn spawn_switch_on(
    cfg: SwitchConfig,
    sockets: Vec<AsyncPacketSocket>,
    sink: SharedSink,
) -> Result<SwitchHandle, RunError> {
    if sockets.len() != cfg.interfaces.len() {
        return Err(RunError::SocketCount {
            sockets: sockets.len(),
            interfaces: cfg.interfaces.len(),
        });
    }
    let macs: Vec<[u8; 6]> = sockets.iter().map(|s| s.get_ref().mac()).collect();
    let agent = SwitchAgent::new(cfg, &macs, Instant::now().into_std())?;
    let debug = agent.debug_flags();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(switch_task(agent, sockets, sink, rx));
    Ok(SwitchHandle { tx, debug, task })
}

/// Reads frames from one socket into the channel until the channel closes.
fn spawn_reader(
    port: usize,
    sock: Arc<AsyncPacketSocket>,
    out: mpsc::Sender<(usize, Vec<u8>)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        loop {
            match sock.recv(&mut buf).await {
                Ok(meta) => {
                    if out.send((port, buf[..meta.len].to_vec())).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(interface = sock.get_ref().ifname(), error = %e, "receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
}

struct Readers(Vec<JoinHandle<()>>);
impl Drop for Readers {
    fn drop(&mut self) {
        for r in &self.0 {
            r.abort();
        }
    }
}

fn journal_event(ev: SwitchEvent) -> Option<Event> {
    let now = SystemTime::now();
    Some(match ev {
        SwitchEvent::CdpSeen {
            port,
            mac,
            platform,
            power_requested_mw,
        } => Event::server(
            now,
            mac,
            EventKind::CdpSeen {
                port,
                platform,
                power_requested_mw,
            },
        ),
        SwitchEvent::LldpSeen {
            port,
            mac,
            model,
            med,
        } => Event::server(now, mac, EventKind::LldpSeen { port, model, med }),
        SwitchEvent::PowerGranted {
            port,
            mac,
            class,
            milliwatts,
        } => Event::server(
            now,
            mac,
            EventKind::PowerGranted {
                port,
                class: class.unwrap_or(0),
                milliwatts,
            },
        ),
        SwitchEvent::VoiceVlan { mac, vlan, via, .. } => {
            Event::server(now, mac, EventKind::VoiceVlan { vlan, via })
        }
        SwitchEvent::NeighbourLost { port, mac, .. } => {
            Event::server(now, mac, EventKind::NeighbourLost { port })
        }
    })
}

async fn switch_task(
    mut agent: SwitchAgent,
    sockets: Vec<AsyncPacketSocket>,
    sink: SharedSink,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) {
    let sockets: Vec<Arc<AsyncPacketSocket>> = sockets.into_iter().map(Arc::new).collect();
    let (ftx, mut frx) = mpsc::channel(1024);
    let _readers = Readers(
        sockets
            .iter()
            .enumerate()
            .map(|(i, s)| spawn_reader(i, s.clone(), ftx.clone()))
            .collect(),
    );
    drop(ftx);
    loop {
        while let Some(t) = agent.poll_transmit() {
            if let Some(s) = sockets.get(t.port) {
                if let Err(e) = s.send(&t.frame).await {
                    agent.note_send_error();
                    tracing::warn!(interface = s.get_ref().ifname(), error = %e, "send failed");
                }
            }
        }
        while let Some(ev) = agent.poll_event() {
            tracing::debug!(event = ?ev, "discovery event");
            if let Some(j) = journal_event(ev) {
                sink.emit(j);
            }
        }
        let deadline = agent
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            f = frx.recv() => match f {
                Some(first) => {
                    // Take whatever else is already waiting, and answer it all at once.
                    let mut batch = vec![first];
                    while batch.len() < 256 {
                        match frx.try_recv() {
                            Ok(f) => batch.push(f),
                            Err(_) => break,
                        }
                    }
                    agent.handle_frames(
                        batch.iter().map(|(p, f)| (*p, f.as_slice())),
                        Instant::now().into_std(),
                    );
                }
                None => return,
            },
            _ = tokio::time::sleep_until(deadline) => agent.handle_timeout(Instant::now().into_std()),
            c = cmds.recv() => match c {
                Some(Cmd::Snapshot(tx)) => { let _ = tx.send(agent.snapshot(Instant::now().into_std())); }
                Some(Cmd::Run(on)) => agent.set_run(on, Instant::now().into_std()),
                Some(Cmd::Enable(name, on, tx)) => {
                    let ok = agent.set_interface_enabled(&name, on, Instant::now().into_std());
                    let _ = tx.send(ok);
                }
                Some(Cmd::Apply(setting, tx)) => {
                    let _ = tx.send(agent.apply(&setting, Instant::now().into_std()));
                }
                Some(Cmd::ClearTable(p)) => agent.clear_table(p, Instant::now().into_std()),
                Some(Cmd::ClearCounters(p)) => agent.clear_counters(p),
                None => return,
            },
        }
    }
}

/// What a phone learned by [`run_phone`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneOutcome {
    /// `Learned` or `TimedOut`.
    pub state: VlanState,
    pub granted_mw: Option<u32>,
    pub events: Vec<PhoneEvent>,
}

/// Runs a phone's discovery on `sock` until it learns its voice VLAN or gives up
/// (`cfg.vlan_timeout`); if `cfg.power_levels_mw` asks for power it also waits (within the
/// same timeout) for the grant. Journal events go to `sink` with `Side::Phone`.
pub async fn run_phone(
    sock: &AsyncPacketSocket,
    cfg: PhoneConfig,
    sink: Option<SharedSink>,
) -> io::Result<PhoneOutcome> {
    let mac = cfg.mac;
    let want_power = cfg.cdp && cfg.power_levels_mw.iter().any(|l| *l > 0);
    let mut agent = PhoneAgent::new(cfg, Instant::now().into_std());
    let mut events = Vec::new();
    let mut buf = Vec::new();
    loop {
        while let Some(f) = agent.poll_transmit() {
            sock.send(&f).await?;
        }
        while let Some(ev) = agent.poll_event() {
            if let Some(s) = &sink {
                let kind = match &ev {
                    PhoneEvent::VoiceVlan { vlan, via } => Some(EventKind::VoiceVlan {
                        vlan: *vlan,
                        via: *via,
                    }),
                    PhoneEvent::PowerGranted { milliwatts } => Some(EventKind::PowerGranted {
                        port: "uplink".into(),
                        class: 0,
                        milliwatts: *milliwatts,
                    }),
                    PhoneEvent::SwitchSeen { .. } => None,
                };
                if let Some(kind) = kind {
                    s.emit(Event {
                        at: SystemTime::now(),
                        mac,
                        side: Side::Phone,
                        kind,
                    });
                }
            }
            events.push(ev);
        }
        let done = match agent.state() {
            VlanState::TimedOut => true,
            VlanState::Learned { via, .. } => {
                !want_power || via != VlanVia::Cdp || agent.granted_mw().is_some()
            }
            VlanState::Waiting => false,
        };
        if done {
            return Ok(PhoneOutcome {
                state: agent.state(),
                granted_mw: agent.granted_mw(),
                events,
            });
        }
        let deadline = agent
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = sock.recv(&mut buf) => {
                let meta = r?;
                agent.handle_frame(&buf[..meta.len], Instant::now().into_std());
            }
            _ = tokio::time::sleep_until(deadline) => agent.handle_timeout(Instant::now().into_std()),
        }
    }
}
