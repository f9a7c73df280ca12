//! The CallManager side of one TCP connection, sans-IO: bytes and `now` in, bytes, events
//! and a liveness deadline out. Every request is answered in any order and at any time
//! (reference §3.1/§3.2); only KeepAlive, Register, RegisterTokenReq and Alarm are
//! accepted before registration.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mac::Mac;

use crate::directory::{AutoRegisterError, SccpDevice, SccpDirectory};
use crate::frame::{Frame, FrameReader};
use crate::msg::*;
use crate::tables::{self, ResetType};
use crate::text::Text;

/// Settings shared by every session of a server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// This node's name (ServerRes/ConfigStat when the device lists no group).
    pub node_name: String,
    /// Default keepalive announced in RegisterAck.
    pub keepalive_secs: u32,
    /// Keepalive of the standby connection.
    pub secondary_keepalive_secs: u32,
    /// Highest protocol version this server speaks.
    pub max_version: u8,
    /// Messages per second above which the session is closed as a flood.
    pub max_msgs_per_sec: u32,
    /// This server's address and port, for ServerRes when the device lists no group.
    pub self_ip: Ipv4Addr,
    pub self_port: u16,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            node_name: "phoneboot".into(),
            keepalive_secs: 30,
            secondary_keepalive_secs: 60,
            max_version: 22,
            max_msgs_per_sec: 200,
            self_ip: Ipv4Addr::UNSPECIFIED,
            self_port: 2000,
        }
    }
}

/// Answer of the DHCP lease check for a registering device.
pub trait LeaseCheck: Send + Sync {
    /// True if `ip` is the address phoneboot's DHCP leased to `mac`.
    fn allowed(&self, mac: &Mac, ip: IpAddr) -> bool;
}

impl<F: Fn(&Mac, IpAddr) -> bool + Send + Sync> LeaseCheck for F {
    fn allowed(&self, mac: &Mac, ip: IpAddr) -> bool {
        self(mac, ip)
    }
}

/// What the session needs from outside while handling input.
pub struct Env<'a> {
    pub directory: &'a dyn SccpDirectory,
    pub lease: Option<&'a dyn LeaseCheck>,
    /// Wall clock, for DefineTimeDate and events.
    pub wall: SystemTime,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Framing error: bad length field.
    Framing(String),
    /// A request that needs registration arrived before Register.
    OutOfOrder(&'static str),
    /// More messages per second than allowed.
    Flood,
    /// No message within the liveness timeout.
    KeepaliveLost,
    /// The phone unregistered.
    Unregistered,
    /// The registration was rejected.
    Rejected,
    /// A newer registration of the same device took over.
    Superseded,
    /// The server sent Reset.
    Reset,
    /// Register on a session that is already registered.
    DuplicateRegister,
}

/// Something the service must act on (RIS, journal, duplicate handling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// RegisterAck sent.
    Registered {
        device: String,
        mac: Option<Mac>,
        version: u8,
        device_type: u32,
        auto_registered: bool,
    },
    /// TimeDateReq answered: the device is in service.
    InService {
        device: String,
    },
    RegisterRejected {
        device: String,
        reason: String,
    },
    /// A keepalive refreshed a registered device.
    Alive {
        device: String,
    },
    Unregistered {
        device: String,
    },
    KeepaliveLost {
        device: Option<String>,
    },
    ResetSent {
        device: String,
        kind: ResetType,
    },
    /// The session is over; the transport must flush and close.
    Closed {
        reason: CloseReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Registered,
    Closed,
}

/// One connection's server-side state.
#[derive(Debug)]
pub struct ServerSession {
    state: State,
    peer: IpAddr,
    reader: FrameReader,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    device: Option<Box<SccpDevice>>,
    version: u8,
    keepalive: u32,
    secondary_keepalive: u32,
    last_rx: Instant,
    window_start: Instant,
    window_count: u32,
    max_rate: u32,
    unknown_count: u32,
}

impl ServerSession {
    pub fn new(cfg: &SessionConfig, peer: IpAddr, now: Instant) -> Self {
        ServerSession {
            state: State::Open,
            peer,
            reader: FrameReader::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            device: None,
            version: 0,
            keepalive: cfg.keepalive_secs.max(1),
            secondary_keepalive: cfg.secondary_keepalive_secs.max(1),
            last_rx: now,
            window_start: now,
            window_count: 0,
            max_rate: cfg.max_msgs_per_sec.max(1),
            unknown_count: 0,
        }
    }

    /// The registered device name.
    pub fn device_name(&self) -> Option<&str> {
        match self.state {
            State::Registered => self.device.as_deref().map(|d| d.name.as_str()),
            _ => None,
        }
    }

    /// The negotiated protocol version (0 before registration).
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Unknown message ids skipped so far.
    pub fn unknown_messages(&self) -> u32 {
        self.unknown_count
    }

    /// Feeds received bytes.
    pub fn handle_bytes(&mut self, cfg: &SessionConfig, data: &[u8], now: Instant, env: &Env<'_>) {
        if self.state == State::Closed {
            return;
        }
        self.reader.push(data);
        loop {
            match self.reader.next_message() {
                Ok(Some((_hv, m))) => {
                    self.handle_message(cfg, m, now, env);
                    if self.state == State::Closed {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(peer = %self.peer, error = %e, "sccp: framing error, closing");
                    self.close(CloseReason::Framing(e.to_string()));
                    return;
                }
            }
        }
    }

    /// Outgoing bytes produced so far (drained).
    pub fn take_output(&mut self, into: &mut Vec<u8>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.out);
        } else {
            into.append(&mut self.out);
        }
        self.out = Vec::new();
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Open => Some(self.last_rx + grace(self.secondary_keepalive.max(self.keepalive))),
            State::Registered => Some(self.last_rx + grace(self.keepalive)),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.poll_timeout() {
            if now >= t {
                let device = self.device_name().map(str::to_string);
                tracing::info!(peer = %self.peer, device = ?device, "sccp: keepalive lost");
                self.events.push_back(ServerEvent::KeepaliveLost { device });
                self.close(CloseReason::KeepaliveLost);
            }
        }
    }

    /// Sends Reset to the registered phone (administrator's command).
    pub fn reset(&mut self, kind: ResetType) -> bool {
        let Some(name) = self.device_name().map(str::to_string) else {
            return false;
        };
        self.send(Message::Reset(Reset {
            reset_type: kind as u32,
        }));
        self.events
            .push_back(ServerEvent::ResetSent { device: name, kind });
        true
    }

    /// Closes because a newer registration of the device took over.
    pub fn supersede(&mut self) {
        self.close(CloseReason::Superseded);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push_back(ServerEvent::Closed { reason });
        }
    }

    fn send(&mut self, m: Message) {
        let hv = tables::header_version_for(m.id(), self.version);
        Frame::new(hv, m).encode(&mut self.out);
    }

    fn handle_message(&mut self, cfg: &SessionConfig, m: Message, now: Instant, env: &Env<'_>) {
        self.last_rx = now;
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
        if self.window_count > self.max_rate {
            tracing::warn!(peer = %self.peer, rate = self.window_count, "sccp: message flood, closing");
            self.close(CloseReason::Flood);
            return;
        }
        let registered = self.state == State::Registered;
        match m {
            Message::KeepAlive => {
                self.send(Message::KeepAliveAck);
                if let Some(d) = self.device_name() {
                    let device = d.to_string();
                    self.events.push_back(ServerEvent::Alive { device });
                }
            }
            Message::Register(r) => {
                if registered {
                    tracing::warn!(peer = %self.peer, "sccp: Register on a registered session");
                    self.close(CloseReason::DuplicateRegister);
                } else {
                    self.on_register(cfg, r, env);
                }
            }
            Message::RegisterTokenReq(t) => {
                let name = t.device_name.as_string();
                if env.directory.device(&name).is_some() {
                    self.send(Message::RegisterTokenAck);
                } else {
                    self.send(Message::RegisterTokenReject(RegisterTokenReject {
                        wait_secs: 60,
                    }));
                }
            }
            Message::Alarm(a) => {
                tracing::info!(peer = %self.peer, severity = a.severity, text = %a.text, "sccp: phone alarm");
            }
            Message::Unknown { id, ref payload } => {
                self.unknown_count += 1;
                tracing::debug!(peer = %self.peer, id = format_args!("{id:#06x}"), len = payload.len(), "sccp: unknown message skipped");
            }
            m if !registered => {
                let name = m.name();
                if is_request(&m) {
                    tracing::warn!(peer = %self.peer, msg = name, "sccp: request before Register, closing");
                    self.close(CloseReason::OutOfOrder(name));
                } else {
                    tracing::debug!(peer = %self.peer, msg = name, "sccp: ignored before Register");
                }
            }
            m => self.on_request(cfg, m, env),
        }
    }

    fn reject(&mut self, device: String, reason: &str) {
        tracing::info!(peer = %self.peer, %device, reason, "sccp: registration rejected");
        self.send(Message::RegisterReject(RegisterReject {
            text: Text::from(reason),
        }));
        self.events.push_back(ServerEvent::RegisterRejected {
            device,
            reason: reason.to_string(),
        });
        self.close(CloseReason::Rejected);
    }

    fn on_register(&mut self, cfg: &SessionConfig, r: Register, env: &Env<'_>) {
        let name = r.device_name.as_string().to_ascii_uppercase();
        let mac = Mac::from_device_name(&name).ok();
        // The lease check comes first: nothing is looked up, let alone written (auto-
        // registration creates a device), for a sender that does not hold the MAC's lease.
        if let Some(lease) = env.lease {
            let ok = mac.as_ref().is_some_and(|m| lease.allowed(m, self.peer));
            if !ok {
                return self.reject(name, "IP Not Authorized");
            }
        }
        if let Err(reason) = env.directory.admit(&name, self.peer) {
            return self.reject(name, &reason);
        }
        let mut auto = false;
        let dev = match env.directory.device(&name) {
            Some(d) => d,
            None => match env.directory.auto_register(&name, r.device_type) {
                Ok(d) => {
                    auto = true;
                    d
                }
                Err(AutoRegisterError::Disabled) => {
                    return self.reject(name.clone(), &format!("No Authority: {name}"));
                }
                Err(e) => {
                    tracing::warn!(%name, error = %e, "sccp: auto-registration failed");
                    return self.reject(name, "Device Unknown");
                }
            },
        };
        let phone_max = if r.protocol_version == 0 {
            3
        } else {
            r.protocol_version
        };
        self.version = tables::negotiate(phone_max, cfg.max_version);
        self.keepalive = dev.keepalive_secs.unwrap_or(cfg.keepalive_secs).max(1);
        let date = if dev.date_format.is_empty() {
            "M/D/Y"
        } else {
            dev.date_format.as_str()
        };
        self.send(Message::RegisterAck(RegisterAck {
            keepalive: self.keepalive,
            date_template: Text::from(&date[..date.len().min(6)]),
            secondary_keepalive: self.secondary_keepalive,
            protocol_version: self.version,
            features: RegisterAck::features_for(self.version),
        }));
        self.send(Message::CapabilitiesReq);
        self.state = State::Registered;
        tracing::info!(peer = %self.peer, device = %name, version = self.version, auto, "sccp: registered");
        self.events.push_back(ServerEvent::Registered {
            device: name,
            mac,
            version: self.version,
            device_type: r.device_type,
            auto_registered: auto,
        });
        self.device = Some(Box::new(dev));
    }

    fn on_request(&mut self, cfg: &SessionConfig, m: Message, env: &Env<'_>) {
        let Some(dev) = self.device.take() else {
            return;
        };
        let v = self.version;
        match m {
            Message::ButtonTemplateReq => {
                let mut buttons: Vec<Button> = dev
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, _)| Button {
                        instance: i as u8 + 1,
                        definition: BUTTON_LINE,
                    })
                    .chain(dev.speed_dials.iter().enumerate().map(|(i, _)| Button {
                        instance: i as u8 + 1,
                        definition: BUTTON_SPEED_DIAL,
                    }))
                    .collect();
                buttons.truncate(BUTTON_SLOTS);
                let n = buttons.len() as u32;
                self.send(Message::ButtonTemplate(ButtonTemplate {
                    offset: 0,
                    count: n,
                    total: n,
                    buttons,
                }));
            }
            Message::SoftKeyTemplateReq => {
                let hv = tables::header_version_for(0x0108, v);
                self.out
                    .extend_from_slice(tables::softkey_template_frame(hv));
            }
            Message::SoftKeySetReq => {
                let hv = tables::header_version_for(0x0109, v);
                self.out.extend_from_slice(tables::softkey_sets_frame(hv));
                self.send(Message::SelectSoftKeys(SelectSoftKeys {
                    valid_key_mask: 0xFFFF,
                    ..Default::default()
                }));
            }
            Message::LineStatReq(LineStatReq { line }) => {
                let l = (line as usize)
                    .checked_sub(1)
                    .and_then(|i| dev.lines.get(i));
                let (dn, display, label) = l
                    .map(|l| (l.dn.as_str(), l.display.as_str(), l.label.as_str()))
                    .unwrap_or(("", "", ""));
                if v >= 17 {
                    self.send(Message::LineStatV2(LineStatV2 {
                        line,
                        line_type: 0,
                        dir_number: dn.into(),
                        display_name: display.into(),
                        label: label.into(),
                    }));
                } else {
                    self.send(Message::LineStat(LineStat {
                        line,
                        dir_number: dn.into(),
                        display_name: display.into(),
                        label: label.into(),
                        display_options: 15,
                    }));
                }
            }
            Message::SpeedDialStatReq(SpeedDialStatReq { number }) => {
                let sd = (number as usize)
                    .checked_sub(1)
                    .and_then(|i| dev.speed_dials.get(i));
                self.send(Message::SpeedDialStat(SpeedDialStat {
                    number,
                    dir_number: sd.map(|s| s.number.as_str()).unwrap_or("").into(),
                    display_name: sd.map(|s| s.label.as_str()).unwrap_or("").into(),
                }));
            }
            Message::ForwardStatReq(ForwardStatReq { line }) => {
                let fwd = if line == 1 {
                    dev.forward_all.as_deref()
                } else {
                    None
                };
                self.send(Message::ForwardStat(ForwardStat {
                    active: u32::from(fwd.is_some()),
                    line,
                    all_active: u32::from(fwd.is_some()),
                    all_number: fwd.unwrap_or("").into(),
                    wide: v >= 18,
                    ..Default::default()
                }));
            }
            Message::TimeDateReq => {
                let unix = env
                    .wall
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let local = unix + i64::from(dev.tz_offset_secs);
                let (year, month, day, day_of_week, hour, minute, second) = tables::civil(local);
                self.send(Message::DefineTimeDate(DefineTimeDate {
                    year,
                    month,
                    day_of_week,
                    day,
                    hour,
                    minute,
                    second,
                    milliseconds: 0,
                    system_time: unix as u32,
                }));
                self.events.push_back(ServerEvent::InService {
                    device: dev.name.clone(),
                });
            }
            Message::ServerReq => {
                let servers: Vec<ServerEntry> = if dev.call_managers.is_empty() {
                    vec![ServerEntry {
                        name: cfg.node_name.as_str().into(),
                        port: u32::from(cfg.self_port),
                        ip: IpField::v4(cfg.self_ip),
                    }]
                } else {
                    dev.call_managers
                        .iter()
                        .take(5)
                        .map(|c| ServerEntry {
                            name: c.name.as_str().into(),
                            port: u32::from(c.port),
                            ip: IpField::v4(c.ip),
                        })
                        .collect()
                };
                self.send(Message::ServerRes(ServerRes {
                    servers,
                    wide: v >= 17,
                }));
            }
            Message::ConfigStatReq => {
                self.send(Message::ConfigStat(ConfigStat {
                    device_name: dev.name.as_str().into(),
                    user_id: 0,
                    instance: 1,
                    user_name: dev.user_name.as_str().into(),
                    server_name: cfg.node_name.as_str().into(),
                    lines: dev.lines.len() as u32,
                    speed_dials: dev.speed_dials.len() as u32,
                }));
            }
            Message::VersionReq => {
                self.send(Message::Version(Version {
                    version: dev.firmware.as_str().into(),
                }));
            }
            Message::FeatureStatReq(r) => {
                self.send(Message::FeatureStat(FeatureStat {
                    index: r.index,
                    ..Default::default()
                }));
            }
            Message::Unregister(_) => {
                self.send(Message::UnregisterAck(UnregisterAck { status: 0 }));
                self.events.push_back(ServerEvent::Unregistered {
                    device: dev.name.clone(),
                });
                self.close(CloseReason::Unregistered);
            }
            // Informational or call messages: no answer at this stage.
            other => {
                tracing::trace!(device = %dev.name, msg = other.name(), "sccp: no answer");
            }
        }
        if self.state == State::Registered
            && !matches!(self.events.back(), Some(ServerEvent::Alive { .. }))
        {
            self.events.push_back(ServerEvent::Alive {
                device: dev.name.clone(),
            });
        }
        self.device = Some(dev);
    }
}

/// Liveness timeout: 1.2 × keepalive (chan-sccp's registered-device factor), at least 2 s
/// of slack.
fn grace(keepalive: u32) -> Duration {
    let ms = u64::from(keepalive) * 1200;
    Duration::from_millis(ms.max(u64::from(keepalive) * 1000 + 2000))
}

/// Phone-to-server requests that only make sense once registered.
fn is_request(m: &Message) -> bool {
    matches!(
        m,
        Message::ButtonTemplateReq
            | Message::SoftKeyTemplateReq
            | Message::SoftKeySetReq
            | Message::LineStatReq(_)
            | Message::SpeedDialStatReq(_)
            | Message::ForwardStatReq(_)
            | Message::TimeDateReq
            | Message::ServerReq
            | Message::ConfigStatReq
            | Message::VersionReq
            | Message::CapabilitiesRes(_)
            | Message::RegisterAvailableLines(_)
            | Message::Unregister(_)
            | Message::OffHook(_)
            | Message::OnHook(_)
            | Message::KeypadButton(_)
            | Message::SoftKeyEvent(_)
            | Message::Stimulus(_)
            | Message::EnblocCall(_)
            | Message::FeatureStatReq(_)
    )
}
