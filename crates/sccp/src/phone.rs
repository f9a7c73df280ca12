//! The phone side, sans-IO: behaves as a phone of a given model and protocol version
//! across an ordered list of CallManagers (index 0 = primary). The caller owns the
//! sockets: it performs [`PhoneAction`]s and reports connects, bytes and closes.
//!
//! Registration follows the commonly assumed order (reference §3.1): Register, answer
//! CapabilitiesReq, ButtonTemplateReq, then SoftKeyTemplate, SoftKeySet, LineStat per line,
//! SpeedDialStat per speed dial, ForwardStat per line, RegisterAvailableLines, TimeDate,
//! ServerReq, ConfigStatReq. When registered it keeps a standby connection to the next
//! CallManager (KeepAlive only), fails over to it when the active one dies or misses
//! keepalives, and falls back to the primary with RegisterTokenReq.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::frame::{Frame, FrameReader};
use crate::msg::*;
use crate::tables::ResetType;
use crate::text::Text;

/// Delay before re-opening a lost standby connection.
const STANDBY_RETRY: Duration = Duration::from_secs(2);

/// What a model looks like on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneProfile {
    pub model: &'static str,
    pub device_type: u32,
    /// Maximum protocol version announced in Register.
    pub max_version: u8,
    /// Register payload size (68 for 7940/7960, 124 for 79x1/79x2).
    pub register_len: usize,
    pub feature0: u8,
    pub features: u16,
    pub max_streams: u32,
    pub line_keys: u32,
    /// Value sent in RegisterAvailableLines.
    pub available_lines: u32,
}

impl PhoneProfile {
    pub const P7960: PhoneProfile = PhoneProfile {
        model: "7960",
        device_type: 7,
        max_version: 11,
        register_len: 68,
        feature0: 0,
        features: 0x8560,
        max_streams: 0,
        line_keys: 6,
        available_lines: 0,
    };
    pub const P7940: PhoneProfile = PhoneProfile {
        model: "7940",
        device_type: 8,
        line_keys: 2,
        ..Self::P7960
    };
    pub const P6961: PhoneProfile = PhoneProfile {
        model: "6961",
        device_type: 497,
        max_version: 15,
        register_len: 68,
        feature0: 0x20,
        features: 0x8570,
        max_streams: 40,
        line_keys: 12,
        available_lines: 12,
    };
    pub const P7941: PhoneProfile = PhoneProfile {
        model: "7941",
        device_type: 115,
        max_version: 17,
        register_len: 124,
        feature0: 0,
        features: 0x8572,
        max_streams: 5,
        line_keys: 2,
        available_lines: 2,
    };
    pub const P7962: PhoneProfile = PhoneProfile {
        model: "7962",
        device_type: 404,
        max_version: 22,
        register_len: 124,
        feature0: 0,
        features: 0x8572,
        max_streams: 5,
        line_keys: 6,
        available_lines: 2,
    };

    pub const ALL: [PhoneProfile; 5] = [
        Self::P7940,
        Self::P7960,
        Self::P6961,
        Self::P7941,
        Self::P7962,
    ];

    /// The profile of a model name ("7960", "CP-7941G", …).
    pub fn by_model(model: &str) -> Option<PhoneProfile> {
        Self::ALL.iter().copied().find(|p| model.contains(p.model))
    }

    /// This profile limited to an older protocol version (a firmware that speaks less).
    pub fn with_max_version(mut self, v: u8) -> Self {
        self.max_version = v;
        self
    }
}

/// Per-phone settings.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    pub device_name: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub profile: PhoneProfile,
    /// Number of CallManagers in the list (indices 0..n, 0 = primary).
    pub servers: usize,
    /// Unanswered keepalives before the CM is declared dead.
    pub missed_keepalives: u32,
    /// Wait before re-trying after a reject or when no CM answers.
    pub retry_delay: Duration,
    /// How long to wait for RegisterAck.
    pub register_timeout: Duration,
    /// Keep a standby connection to the next CM.
    pub standby: bool,
    /// Fall back to the primary when it is reachable again.
    pub fallback: bool,
    pub fallback_interval: Duration,
    /// Shuffle the post-registration requests with this seed (to test a server's order
    /// independence); `None` keeps the usual order.
    pub shuffle_seed: Option<u64>,
    /// Send IpPort after Register, as old (pre-v17) firmwares do.
    pub send_ip_port: bool,
}

impl PhoneConfig {
    pub fn new(mac: [u8; 6], ip: Ipv4Addr, profile: PhoneProfile, servers: usize) -> Self {
        let device_name = format!(
            "SEP{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        PhoneConfig {
            device_name,
            mac,
            ip,
            profile,
            servers: servers.max(1),
            missed_keepalives: 3,
            retry_delay: Duration::from_secs(10),
            register_timeout: Duration::from_secs(10),
            standby: true,
            fallback: true,
            fallback_interval: Duration::from_secs(30),
            shuffle_seed: None,
            send_ip_port: profile.max_version < 17,
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneAction {
    Connect(usize),
    Send(usize, Vec<u8>),
    Close(usize),
}

/// What happened, for the emulator's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    Registered {
        server: usize,
        version: u8,
        keepalive: u32,
    },
    /// Every post-registration request answered.
    InService {
        server: usize,
        lines: Vec<String>,
    },
    Rejected {
        server: usize,
        text: String,
    },
    ResetReceived {
        server: usize,
        kind: Option<ResetType>,
    },
    /// The active CM was lost (closed or keepalives missed).
    ServerLost {
        server: usize,
    },
    FailedOver {
        from: usize,
        to: usize,
    },
    FellBack {
        from: usize,
    },
    /// A standby connection (KeepAlive only, no registration) is open to `server`.
    StandbyUp {
        server: usize,
    },
    /// The standby connection to `server` closed or stopped answering keepalives.
    StandbyLost {
        server: usize,
    },
    Unregistered {
        server: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Connecting,
    Registering,
    Active,
    Standby,
    Probe,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    /// Role to take once connected.
    then: Role,
    reader: FrameReader,
    due: Instant,
    unanswered: u32,
}

/// The phone state machine.
#[derive(Debug)]
pub struct PhoneSession {
    cfg: PhoneConfig,
    conns: Vec<Option<Conn>>,
    active: Option<usize>,
    version: u8,
    keepalive: u32,
    secondary: u32,
    pending: u32,
    in_service: bool,
    lines: Vec<String>,
    actions: VecDeque<PhoneAction>,
    events: VecDeque<PhoneEvent>,
    retry_at: Option<Instant>,
    fallback_at: Option<Instant>,
    standby_at: Option<Instant>,
    attempt: usize,
}

impl PhoneSession {
    pub fn new(cfg: PhoneConfig) -> Self {
        let n = cfg.servers;
        PhoneSession {
            cfg,
            conns: (0..n).map(|_| None).collect(),
            active: None,
            version: 0,
            keepalive: 30,
            secondary: 60,
            pending: 0,
            in_service: false,
            lines: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            retry_at: None,
            fallback_at: None,
            standby_at: None,
            attempt: 0,
        }
    }

    /// Starts registering with the primary.
    pub fn start(&mut self, now: Instant) {
        self.connect(0, Role::Registering, now);
    }

    pub fn device_name(&self) -> &str {
        &self.cfg.device_name
    }

    /// Index of the CM the phone is registered to.
    pub fn active(&self) -> Option<usize> {
        self.active
    }

    pub fn standby(&self) -> Option<usize> {
        self.conns
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.role == Role::Standby))
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn is_in_service(&self) -> bool {
        self.in_service
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn poll_action(&mut self) -> Option<PhoneAction> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .iter()
            .flatten()
            .filter(|c| c.role != Role::Connecting)
            .map(|c| c.due)
            .chain(self.retry_at)
            .chain(self.fallback_at)
            .chain(self.standby_at)
            .min()
    }

    /// Sends Unregister on the active connection.
    pub fn unregister(&mut self) {
        if let Some(a) = self.active {
            self.send(a, Message::Unregister(Unregister { reason: 0 }));
        }
    }

    fn connect(&mut self, idx: usize, then: Role, now: Instant) {
        if self.conns[idx].is_some() {
            return;
        }
        self.conns[idx] = Some(Conn {
            role: Role::Connecting,
            then,
            reader: FrameReader::new(),
            due: now + self.cfg.register_timeout,
            unanswered: 0,
        });
        self.actions.push_back(PhoneAction::Connect(idx));
    }

    fn close(&mut self, idx: usize) {
        if self.conns[idx].take().is_some() {
            self.actions.push_back(PhoneAction::Close(idx));
        }
        if self.active == Some(idx) {
            self.active = None;
        }
    }

    fn hv(&self) -> u32 {
        if self.active.is_some() && self.version >= 10 {
            u32::from(self.version)
        } else {
            0
        }
    }

    fn send(&mut self, idx: usize, m: Message) {
        let f = Frame::new(self.hv(), m);
        self.actions.push_back(PhoneAction::Send(idx, f.to_bytes()));
    }

    fn register_frame(&self) -> Vec<u8> {
        let p = &self.cfg.profile;
        let mut mac = [0u8; 12];
        mac[..6].copy_from_slice(&self.cfg.mac);
        let r = Register {
            device_name: self.cfg.device_name.as_str().into(),
            user_id: 0,
            instance: 1,
            ip: self.cfg.ip.octets(),
            device_type: p.device_type,
            max_streams: p.max_streams,
            active_streams: 0,
            protocol_version: p.max_version,
            feature0: p.feature0,
            features: p.features,
            mac,
            ipv4_scope: if p.register_len > 64 { 3 } else { 0 },
            max_lines: p.line_keys,
            firmware: Text::from(format!("SCCP{}.emu", p.model)),
            ..Default::default()
        };
        Frame::with_payload_len(0, Message::Register(r), p.register_len).to_bytes()
    }

    /// The driver connected `idx`.
    pub fn handle_connected(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        c.role = c.then;
        match c.role {
            Role::Registering => {
                c.due = now + self.cfg.register_timeout;
                let bytes = self.register_frame();
                self.actions.push_back(PhoneAction::Send(idx, bytes));
                if self.cfg.send_ip_port {
                    self.send(idx, Message::IpPort(IpPort { rtp_port: 0x1389 }));
                }
            }
            Role::Standby => {
                c.due = now;
                self.events.push_back(PhoneEvent::StandbyUp { server: idx });
            }
            Role::Probe => {
                c.due = now + self.cfg.register_timeout;
                let t = RegisterTokenReq {
                    device_name: self.cfg.device_name.as_str().into(),
                    instance: 1,
                    ip: self.cfg.ip.octets(),
                    device_type: self.cfg.profile.device_type,
                    ..Default::default()
                };
                self.send(idx, Message::RegisterTokenReq(t));
            }
            Role::Active | Role::Connecting => {}
        }
    }

    /// The connection `idx` failed or closed.
    pub fn handle_closed(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.take()) else {
            return;
        };
        match c.role {
            Role::Active => {
                self.active = None;
                self.in_service = false;
                self.events
                    .push_back(PhoneEvent::ServerLost { server: idx });
                self.fail_over(idx, now);
            }
            Role::Registering | Role::Connecting if c.then == Role::Registering => {
                self.next_attempt(idx, now);
            }
            Role::Probe | Role::Connecting if c.then == Role::Probe => {
                // The primary is not back yet: ask again after the fallback interval, and
                // keep trying to open the standby connection to it meanwhile.
                self.fallback_at = Some(now + self.cfg.fallback_interval);
                if self.cfg.standby && self.active.is_some() {
                    self.standby_at = Some(now + STANDBY_RETRY);
                }
            }
            Role::Standby | Role::Connecting if self.cfg.standby && self.active.is_some() => {
                if c.role == Role::Standby {
                    self.events
                        .push_back(PhoneEvent::StandbyLost { server: idx });
                }
                // Re-open the standby connection a little later (not in a tight loop
                // when that CM is down).
                self.standby_at = Some(now + STANDBY_RETRY);
            }
            Role::Standby => {
                self.events
                    .push_back(PhoneEvent::StandbyLost { server: idx });
            }
            _ => {}
        }
    }

    fn next_attempt(&mut self, failed: usize, now: Instant) {
        self.attempt += 1;
        if self.attempt >= self.cfg.servers {
            self.attempt = 0;
            self.retry_at = Some(now + self.cfg.retry_delay);
        } else {
            let next = (failed + 1) % self.cfg.servers;
            self.connect(next, Role::Registering, now);
        }
    }

    fn fail_over(&mut self, from: usize, now: Instant) {
        if let Some(sb) = self.standby() {
            if let Some(c) = self.conns[sb].as_mut() {
                c.role = Role::Registering;
                c.due = now + self.cfg.register_timeout;
            }
            let bytes = self.register_frame();
            self.actions.push_back(PhoneAction::Send(sb, bytes));
            self.events
                .push_back(PhoneEvent::FailedOver { from, to: sb });
        } else if self.cfg.servers > 1 {
            let to = (from + 1) % self.cfg.servers;
            self.events.push_back(PhoneEvent::FailedOver { from, to });
            self.connect(to, Role::Registering, now);
        } else {
            self.retry_at = Some(now + self.cfg.retry_delay);
        }
    }

    /// Bytes received on `idx`.
    pub fn handle_bytes(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        c.reader.push(data);
        let mut frames = Vec::new();
        let mut bad = false;
        loop {
            match c.reader.next_message() {
                Ok(Some((_, m))) => frames.push(m),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(server = idx, error = %e, "sccp phone: framing error");
                    bad = true;
                    break;
                }
            }
        }
        for m in frames {
            self.handle_frame(idx, m, now);
        }
        if bad {
            self.close(idx);
            self.handle_closed(idx, now);
        }
    }

    fn handle_frame(&mut self, idx: usize, m: Message, now: Instant) {
        let Some(role) = self.conns[idx].as_ref().map(|c| c.role) else {
            return;
        };
        match m {
            Message::KeepAliveAck => {
                if let Some(c) = self.conns[idx].as_mut() {
                    c.unanswered = 0;
                }
            }
            Message::RegisterAck(a) if role == Role::Registering => {
                self.version = a.protocol_version;
                self.keepalive = a.keepalive.max(1);
                self.secondary = a.secondary_keepalive.max(1);
                self.active = Some(idx);
                self.attempt = 0;
                self.retry_at = None;
                self.lines.clear();
                if let Some(c) = self.conns[idx].as_mut() {
                    c.role = Role::Active;
                    c.unanswered = 0;
                    c.due = now + Duration::from_secs(u64::from(self.keepalive));
                }
                self.events.push_back(PhoneEvent::Registered {
                    server: idx,
                    version: self.version,
                    keepalive: self.keepalive,
                });
                self.send(idx, Message::ButtonTemplateReq);
                if self.cfg.standby && self.cfg.servers > 1 && self.standby().is_none() {
                    let next = (idx + 1) % self.cfg.servers;
                    self.connect(next, Role::Standby, now);
                }
                if idx != 0 && self.cfg.fallback {
                    self.fallback_at = Some(now + self.cfg.fallback_interval);
                } else {
                    self.fallback_at = None;
                }
            }
            Message::RegisterReject(r) => {
                self.events.push_back(PhoneEvent::Rejected {
                    server: idx,
                    text: r.text.as_string(),
                });
                self.close(idx);
                self.retry_at = Some(now + self.cfg.retry_delay);
            }
            Message::CapabilitiesReq => {
                let caps = [4u32, 2, 11, 12]
                    .iter()
                    .map(|&p| Capability {
                        payload_capability: p,
                        max_frames_per_packet: if p >= 11 { 60 } else { 40 },
                        extra: [0; 8],
                    })
                    .collect();
                self.send(idx, Message::CapabilitiesRes(CapabilitiesRes { caps }));
            }
            Message::ButtonTemplate(t) if role == Role::Active => {
                let lines = t
                    .buttons
                    .iter()
                    .filter(|b| b.definition == BUTTON_LINE)
                    .count() as u32;
                let sds = t
                    .buttons
                    .iter()
                    .filter(|b| b.definition == BUTTON_SPEED_DIAL)
                    .count() as u32;
                let mut reqs = vec![Message::SoftKeyTemplateReq, Message::SoftKeySetReq];
                reqs.extend((1..=lines).map(|line| Message::LineStatReq(LineStatReq { line })));
                reqs.extend(
                    (1..=sds).map(|number| Message::SpeedDialStatReq(SpeedDialStatReq { number })),
                );
                reqs.extend(
                    (1..=lines).map(|line| Message::ForwardStatReq(ForwardStatReq { line })),
                );
                self.pending = reqs.len() as u32 + 3;
                reqs.push(Message::RegisterAvailableLines(RegisterAvailableLines {
                    max_lines: self.cfg.profile.available_lines,
                }));
                reqs.push(Message::TimeDateReq);
                reqs.push(Message::ServerReq);
                reqs.push(Message::ConfigStatReq);
                self.lines = vec![String::new(); lines as usize];
                if let Some(mut seed) = self.cfg.shuffle_seed {
                    // Fisher-Yates with a small LCG: deterministic per seed.
                    for i in (1..reqs.len()).rev() {
                        seed = seed
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let j = (seed >> 33) as usize % (i + 1);
                        reqs.swap(i, j);
                    }
                }
                for r in reqs {
                    self.send(idx, r);
                }
            }
            Message::LineStat(l) => {
                self.set_line(l.line, l.dir_number.as_string());
                self.answered(idx);
            }
            Message::LineStatV2(l) => {
                self.set_line(l.line, l.dir_number.as_string());
                self.answered(idx);
            }
            Message::SoftKeyTemplateRes(_)
            | Message::SoftKeySetRes(_)
            | Message::SpeedDialStat(_)
            | Message::ForwardStat(_)
            | Message::DefineTimeDate(_)
            | Message::ServerRes(_)
            | Message::ConfigStat(_) => self.answered(idx),
            Message::Reset(r) => {
                let kind = ResetType::from_wire(r.reset_type);
                self.events
                    .push_back(PhoneEvent::ResetReceived { server: idx, kind });
                // Drop everything and register again from the top of the list.
                for i in 0..self.conns.len() {
                    self.close(i);
                }
                self.in_service = false;
                self.fallback_at = None;
                self.attempt = 0;
                let delay = match kind {
                    Some(ResetType::Reset) => self.cfg.retry_delay.min(Duration::from_secs(2)),
                    _ => Duration::ZERO,
                };
                self.retry_at = Some(now + delay);
            }
            Message::RegisterTokenAck if role == Role::Probe => {
                let from = self.active;
                if let Some(a) = from {
                    self.send(a, Message::Unregister(Unregister { reason: 0 }));
                    if let Some(c) = self.conns[a].as_mut() {
                        // Becomes the standby once unregistered.
                        c.role = Role::Standby;
                    }
                    self.active = None;
                }
                if let Some(c) = self.conns[idx].as_mut() {
                    c.role = Role::Registering;
                    c.due = now + self.cfg.register_timeout;
                }
                let bytes = self.register_frame();
                self.actions.push_back(PhoneAction::Send(idx, bytes));
                self.fallback_at = None;
                self.events.push_back(PhoneEvent::FellBack {
                    from: from.unwrap_or(idx),
                });
            }
            Message::RegisterTokenReject(r) => {
                self.close(idx);
                self.fallback_at = Some(now + Duration::from_secs(u64::from(r.wait_secs.max(1))));
            }
            Message::UnregisterAck(_) => {
                self.events
                    .push_back(PhoneEvent::Unregistered { server: idx });
                if role == Role::Active {
                    self.active = None;
                    self.close(idx);
                } else if role == Role::Standby {
                    // The CM we unregistered from for fallback closes the connection (as
                    // CallManager does). If it is the next CM, a fresh standby connection is
                    // opened at once; if the new registration is not acknowledged yet, its
                    // RegisterAck opens one.
                    let next = self.active.map(|a| (a + 1) % self.cfg.servers) == Some(idx);
                    self.close(idx);
                    if next && self.cfg.standby {
                        self.standby_at = Some(now);
                    }
                }
            }
            _ => {}
        }
    }

    fn set_line(&mut self, line: u32, dn: String) {
        if let Some(slot) = (line as usize)
            .checked_sub(1)
            .and_then(|i| self.lines.get_mut(i))
        {
            *slot = dn;
        }
    }

    fn answered(&mut self, idx: usize) {
        if self.pending > 0 {
            self.pending -= 1;
            if self.pending == 0 && self.active == Some(idx) {
                self.in_service = true;
                self.events.push_back(PhoneEvent::InService {
                    server: idx,
                    lines: self.lines.clone(),
                });
            }
        }
    }

    /// Runs timers: keepalives, missed-keepalive detection, retries, fallback probes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.standby_at.is_some_and(|t| now >= t) {
            self.standby_at = None;
            if let (Some(a), None) = (self.active, self.standby()) {
                let next = (a + 1) % self.cfg.servers;
                if next != a && self.conns[next].is_none() {
                    self.connect(next, Role::Standby, now);
                }
            }
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            if self.active.is_none() {
                self.connect(0, Role::Registering, now);
            }
        }
        if self.fallback_at.is_some_and(|t| now >= t) {
            self.fallback_at = None;
            if self.active.is_some_and(|a| a != 0) {
                match self.conns[0].as_ref().map(|c| c.role) {
                    None => self.connect(0, Role::Probe, now),
                    Some(Role::Standby) => {
                        if let Some(c) = self.conns[0].as_mut() {
                            c.role = Role::Probe;
                        }
                        self.handle_connected_as_probe(now);
                    }
                    Some(Role::Connecting) => {
                        // A standby connection to the primary is being opened: probe on it
                        // once it is up (or try again after the interval if it fails).
                        if let Some(c) = self.conns[0].as_mut() {
                            c.then = Role::Probe;
                        }
                    }
                    _ => {}
                }
            }
        }
        for idx in 0..self.conns.len() {
            let Some(c) = self.conns[idx].as_ref() else {
                continue;
            };
            if c.role == Role::Connecting || now < c.due {
                continue;
            }
            match c.role {
                Role::Registering | Role::Probe => {
                    let then = c.role;
                    tracing::info!(server = idx, "sccp phone: no answer, giving up this CM");
                    self.close(idx);
                    if then == Role::Registering {
                        self.next_attempt(idx, now);
                    } else {
                        self.fallback_at = Some(now + self.cfg.fallback_interval);
                    }
                }
                Role::Active | Role::Standby => {
                    let role = c.role;
                    if c.unanswered >= self.cfg.missed_keepalives {
                        tracing::info!(server = idx, "sccp phone: keepalives unanswered");
                        self.close(idx);
                        if role == Role::Active {
                            self.in_service = false;
                            self.events
                                .push_back(PhoneEvent::ServerLost { server: idx });
                            self.fail_over(idx, now);
                        } else {
                            self.events
                                .push_back(PhoneEvent::StandbyLost { server: idx });
                            if self.cfg.standby && self.active.is_some() {
                                self.standby_at = Some(now + STANDBY_RETRY);
                            }
                        }
                        continue;
                    }
                    let secs = if role == Role::Active {
                        self.keepalive
                    } else {
                        self.secondary
                    };
                    if let Some(c) = self.conns[idx].as_mut() {
                        c.unanswered += 1;
                        c.due = now + Duration::from_secs(u64::from(secs));
                    }
                    self.send(idx, Message::KeepAlive);
                }
                Role::Connecting => {}
            }
        }
    }

    fn handle_connected_as_probe(&mut self, now: Instant) {
        if let Some(c) = self.conns[0].as_mut() {
            c.then = Role::Probe;
        }
        self.handle_connected(0, now);
    }
}
