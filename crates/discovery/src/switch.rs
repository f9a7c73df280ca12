//! The switch role, sans-IO: frames + `now` in, frames + events + next deadline out.
//!
//! Per interface: CDP every `timer` with `holdtime`; an immediate (triggered) CDP when a phone
//! sends a VoIP VLAN Query or a power request we have not answered; LLDP every LLDP timer,
//! with LLDP-MED TLVs (network policy, extended power) once a MED endpoint is heard, and
//! TIA-1057 fast start when one appears. A PoE budget grants power by class and refines it
//! from CDP/LLDP-MED requests. Every neighbour heard is kept until its holdtime runs out.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdp::{Capabilities, Tlv as CTlv};
use journal::VlanVia;
use l2::frame::{self, Payload};
use lldp::{med, Tlv as LTlv};
use mac::Mac;
use serde::{Deserialize, Serialize};

use crate::config::{InterfaceConfig, PowerAdmin, SwitchConfig, VoiceVlan};
use crate::debug::{dbg_adjacency, dbg_events, dbg_ip, dbg_packets, DebugFlags};
use crate::neighbors::{NeighbourInfo, NeighbourTable, NeighbourView, Proto, Update};
use crate::poe::{PortPower, PowerBudget, PowerOper};
use crate::settings::Setting;

/// A frame to send on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Index into the configured interfaces.
    pub port: usize,
    pub frame: Vec<u8>,
}

/// Something that happened, for the journal and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// A new CDP neighbour appeared.
    CdpSeen {
        port: String,
        mac: Mac,
        platform: Option<String>,
        power_requested_mw: Option<u32>,
    },
    /// A new LLDP neighbour appeared.
    LldpSeen {
        port: String,
        mac: Mac,
        model: Option<String>,
        med: bool,
    },
    /// The port's power allocation changed.
    PowerGranted {
        port: String,
        mac: Mac,
        class: Option<u8>,
        milliwatts: u32,
    },
    /// We told a phone its voice VLAN (first time in this adjacency).
    VoiceVlan {
        port: String,
        mac: Mac,
        vlan: Option<u16>,
        via: VlanVia,
    },
    /// A neighbour's holdtime ran out (or it said goodbye).
    NeighbourLost {
        port: String,
        mac: Mac,
        device_id: String,
        protocol: Proto,
    },
}

/// Frame counters (bad input is counted, never fatal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_cdp: u64,
    pub rx_lldp: u64,
    /// Frames of other protocols, or CDP/LLDP ignored because disabled.
    pub rx_ignored: u64,
    /// Not parseable as Ethernet / 802.3.
    pub rx_bad_frame: u64,
    /// Truncated, over-long or otherwise undecodable CDP PDUs.
    pub rx_bad_cdp: u64,
    /// CDP PDUs whose checksum did not match (still accepted, like lldpd).
    pub rx_bad_checksum: u64,
    pub rx_bad_lldp: u64,
    /// Neighbours not stored because their port's table was full.
    pub rx_table_full: u64,
    pub tx_cdp: u64,
    pub tx_lldp: u64,
    /// Send failures reported by the runner.
    pub tx_errors: u64,
    /// `show cdp traffic`: advertisements by CDP version, out and in.
    pub tx_cdp_v1: u64,
    pub tx_cdp_v2: u64,
    pub rx_cdp_v1: u64,
    pub rx_cdp_v2: u64,
    /// "Hdr syntax": shorter than the header, or not version 1/2.
    pub rx_cdp_hdr_syntax: u64,
    /// "Invalid packet": a TLV shorter than its header or stray bytes after the last.
    pub rx_cdp_invalid: u64,
    /// "Fragmented": a TLV running past the end of the frame (a cut-short PDU).
    pub rx_cdp_fragmented: u64,
    /// "No memory": a neighbour not kept because its port's table was full.
    pub rx_cdp_no_memory: u64,
    /// "Encaps failed": our own PDU could not be encoded or framed.
    pub tx_cdp_encaps_failed: u64,
    /// `show lldp traffic`: entries aged out, frames discarded (LLDP off or receive off),
    /// TLVs not understood.
    pub lldp_aged: u64,
    pub rx_lldp_discarded: u64,
    pub rx_lldp_unrecognized_tlvs: u64,
}

impl Counters {
    /// `clear cdp counters`: CDP's counters back to zero.
    pub fn clear_cdp(&mut self) {
        self.rx_cdp = 0;
        self.tx_cdp = 0;
        self.rx_bad_cdp = 0;
        self.rx_bad_checksum = 0;
        self.tx_cdp_v1 = 0;
        self.tx_cdp_v2 = 0;
        self.rx_cdp_v1 = 0;
        self.rx_cdp_v2 = 0;
        self.rx_cdp_hdr_syntax = 0;
        self.rx_cdp_invalid = 0;
        self.rx_cdp_fragmented = 0;
        self.rx_cdp_no_memory = 0;
        self.tx_cdp_encaps_failed = 0;
    }

    /// `clear lldp counters`.
    pub fn clear_lldp(&mut self) {
        self.rx_lldp = 0;
        self.tx_lldp = 0;
        self.rx_bad_lldp = 0;
        self.lldp_aged = 0;
        self.rx_lldp_discarded = 0;
        self.rx_lldp_unrecognized_tlvs = 0;
    }
}

/// Per-interface view for the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    pub name: String,
    /// `cdp enable`.
    pub enabled: bool,
    /// `lldp transmit` / `lldp receive`.
    pub lldp_transmit: bool,
    pub lldp_receive: bool,
    pub voice_vlan: VoiceVlan,
    pub native_vlan: u16,
    /// An LLDP-MED endpoint is present (MED TLVs are being sent).
    pub med_endpoint: bool,
}

/// A port's power, with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPowerView {
    pub interface: String,
    #[serde(flatten)]
    pub power: PortPower,
}

/// `show power inline` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerView {
    pub total_mw: u32,
    pub used_mw: u32,
    pub remaining_mw: u32,
    pub ports: Vec<PortPowerView>,
}

/// Everything the CLI and admin API show, serde-serializable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `cdp run`.
    pub run: bool,
    pub timer_secs: u16,
    pub holdtime_secs: u16,
    /// CDP version advertised (`cdp advertise-v2`: 2).
    pub cdp_version: u8,
    pub lldp: bool,
    pub lldp_timer_secs: u16,
    pub lldp_holdtime_secs: u16,
    /// Our Device ID (the console's hostname).
    pub device_id: String,
    pub interfaces: Vec<InterfaceView>,
    pub neighbours: Vec<NeighbourView>,
    pub power: PowerView,
    pub counters: Counters,
}

#[derive(Debug)]
struct Port {
    cfg: InterfaceConfig,
    mac: [u8; 6],
    next_cdp: Instant,
    triggered: bool,
    next_lldp: Instant,
    med_fast_left: u8,
    med_seen: bool,
}

/// The switch-side discovery agent for all configured interfaces.
#[derive(Debug)]
pub struct SwitchAgent {
    cfg: SwitchConfig,
    ports: Vec<Port>,
    table: NeighbourTable,
    budget: PowerBudget,
    counters: Counters,
    outbox: VecDeque<Transmit>,
    events: VecDeque<SwitchEvent>,
    debug: Arc<DebugFlags>,
}

const FAST_TX: Duration = Duration::from_secs(1);

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches('\0')
        .to_string()
}

impl SwitchAgent {
    /// `macs[i]` is the MAC of `cfg.interfaces[i]` (the source of frames sent there).
    /// The first CDP and LLDP frames go out at `now`.
    pub fn new(
        cfg: SwitchConfig,
        macs: &[[u8; 6]],
        now: Instant,
    ) -> Result<Self, crate::ConfigError> {
        cfg.validate()?;
        let neighbour_limit = cfg.max_neighbours_per_port;
        let ports: Vec<Port> = cfg
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, c)| Port {
                cfg: c.clone(),
                mac: macs.get(i).copied().unwrap_or([0x02, 0, 0, 0, 0, i as u8]),
                next_cdp: now,
                triggered: false,
                next_lldp: now,
                med_fast_left: 0,
                med_seen: false,
            })
            .collect();
        let budget = PowerBudget::new(
            cfg.power_budget_mw,
            cfg.interfaces
                .iter()
                .map(|c| PortPower::new(c.power, c.power_max_mw))
                .collect(),
        );
        let mut agent = SwitchAgent {
            cfg,
            ports,
            table: NeighbourTable::with_limit(neighbour_limit),
            budget,
            counters: Counters::default(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            debug: Arc::new(DebugFlags::default()),
        };
        agent.drive(now);
        Ok(agent)
    }

    /// Shares the debug switches (flip them from anywhere while the agent runs).
    pub fn debug_flags(&self) -> Arc<DebugFlags> {
        self.debug.clone()
    }

    pub fn set_debug_flags(&mut self, flags: Arc<DebugFlags>) {
        self.debug = flags;
    }

    pub fn config(&self) -> &SwitchConfig {
        &self.cfg
    }

    /// Index of an interface by name.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.cfg.name == name)
    }

    /// `cdp run` / `no cdp run`. Turning it off sends a holdtime-0 CDP on every port.
    pub fn set_run(&mut self, on: bool, now: Instant) {
        if self.cfg.run == on {
            return;
        }
        dbg_events!(self.debug, "cdp run {}", if on { "on" } else { "off" });
        if !on {
            for i in 0..self.ports.len() {
                if self.ports[i].cfg.enabled {
                    self.send_cdp(i, 0);
                }
            }
        }
        self.cfg.run = on;
        for p in &mut self.ports {
            p.next_cdp = now;
        }
        self.drive(now);
    }

    /// `cdp enable` / `no cdp enable` on one interface. Disabling sends a holdtime-0 CDP and
    /// LLDP shutdown PDU there. Returns false for an unknown interface.
    pub fn set_interface_enabled(&mut self, name: &str, on: bool, now: Instant) -> bool {
        let Some(i) = self.port_index(name) else {
            return false;
        };
        if self.ports[i].cfg.enabled != on {
            dbg_events!(
                self.debug,
                "{name}: cdp {}",
                if on { "enabled" } else { "disabled" }
            );
            if !on && self.cfg.run {
                self.send_cdp(i, 0);
            }
            self.ports[i].cfg.enabled = on;
            self.ports[i].next_cdp = now;
            if let Some(c) = self.cfg.interfaces.get_mut(i) {
                c.enabled = on;
            }
            self.drive(now);
        }
        true
    }

    /// Applies one run-time change (the IOS console's configuration commands) at once:
    /// timers reschedule from now, `no cdp run` / `no cdp enable` send a holdtime-0 CDP
    /// first, `no lldp transmit` / `no lldp run` a shutdown LLDPDU, `power inline never`
    /// removes the port's power. Ranges are IOS's; an unknown interface is refused.
    pub fn apply(&mut self, setting: &Setting, now: Instant) -> Result<(), crate::ConfigError> {
        use crate::ConfigError as E;
        let port_of = |agent: &Self, name: &str| {
            agent
                .port_index(name)
                .ok_or_else(|| E::UnknownInterface(name.to_string()))
        };
        match setting {
            Setting::CdpRun(on) => self.set_run(*on, now),
            Setting::CdpTimer(secs) => {
                if !(5..=254).contains(secs) {
                    return Err(E::BadTimer(*secs));
                }
                self.cfg.timer_secs = *secs;
                let next = now + Duration::from_secs(u64::from(*secs));
                for p in &mut self.ports {
                    p.next_cdp = p.next_cdp.min(next);
                }
                dbg_events!(self.debug, "CDP-EV: timer set to {secs} seconds");
            }
            Setting::CdpHoldtime(secs) => {
                if !(10..=255).contains(secs) {
                    return Err(E::BadHoldtime(*secs));
                }
                self.cfg.holdtime_secs = *secs;
                dbg_events!(self.debug, "CDP-EV: holdtime set to {secs} seconds");
            }
            Setting::CdpAdvertiseV2(on) => self.cfg.cdp_version = if *on { 2 } else { 1 },
            Setting::LldpRun(on) => {
                if self.cfg.lldp && !*on {
                    for i in 0..self.ports.len() {
                        if self.ports[i].cfg.lldp_transmit {
                            self.send_lldp(i, 0);
                        }
                    }
                }
                if !self.cfg.lldp && *on {
                    for p in &mut self.ports {
                        p.next_lldp = now;
                    }
                }
                self.cfg.lldp = *on;
            }
            Setting::LldpTimer(secs) => {
                if !(5..=65534).contains(secs) {
                    return Err(E::BadLldp(format!("timer {secs}")));
                }
                self.cfg.lldp_timer_secs = *secs;
                let next = now + Duration::from_secs(u64::from(*secs));
                for p in &mut self.ports {
                    p.next_lldp = p.next_lldp.min(next);
                }
            }
            Setting::LldpHoldtime(secs) => self.cfg.lldp_holdtime_secs = *secs,
            Setting::CdpEnable { interface, on } => {
                port_of(self, interface)?;
                self.set_interface_enabled(interface, *on, now);
            }
            Setting::LldpTransmit { interface, on } => {
                let i = port_of(self, interface)?;
                if self.ports[i].cfg.lldp_transmit != *on {
                    if !*on && self.cfg.lldp {
                        self.send_lldp(i, 0);
                    }
                    self.ports[i].cfg.lldp_transmit = *on;
                    self.ports[i].next_lldp = now;
                    if let Some(c) = self.cfg.interfaces.get_mut(i) {
                        c.lldp_transmit = *on;
                    }
                }
            }
            Setting::LldpReceive { interface, on } => {
                let i = port_of(self, interface)?;
                self.ports[i].cfg.lldp_receive = *on;
                if let Some(c) = self.cfg.interfaces.get_mut(i) {
                    c.lldp_receive = *on;
                }
            }
            Setting::PowerInline { interface, admin } => {
                let i = port_of(self, interface)?;
                self.ports[i].cfg.power = *admin;
                if let Some(c) = self.cfg.interfaces.get_mut(i) {
                    c.power = *admin;
                }
                let pw = &mut self.budget.ports[i];
                if pw.admin != *admin {
                    pw.admin = *admin;
                    if *admin == PowerAdmin::Never {
                        // The powered device loses power: its allocation returns to the
                        // budget, and (being off) it says nothing more.
                        self.budget.device_gone(i);
                        self.table.expire_port(i, now);
                        dbg_events!(self.debug, "CDP-EV: {interface}: inline power off (never)");
                    } else if self.budget.ports[i].oper == PowerOper::Off {
                        self.ports[i].next_cdp = now;
                    }
                    self.ports[i].triggered = true;
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    /// `clear cdp table` / `clear lldp table`: forgets the protocol's neighbours now.
    pub fn clear_table(&mut self, proto: Proto, now: Instant) {
        self.table.expire_protocol(proto, now);
        self.drive(now);
    }

    /// `clear cdp counters` / `clear lldp counters`.
    pub fn clear_counters(&mut self, proto: Proto) {
        match proto {
            Proto::Cdp => self.counters.clear_cdp(),
            Proto::Lldp => self.counters.clear_lldp(),
        }
    }

    /// Handles one received frame (whole Ethernet frame, tag included if any).
    pub fn handle_frame(&mut self, port: usize, bytes: &[u8], now: Instant) {
        self.take_frame(port, bytes, now);
        self.drive(now);
    }

    /// Frames that were waiting together: each is handled as by
    /// [`handle_frame`](Self::handle_frame), then timers and triggered sends run once, so a
    /// burst of VoIP VLAN queries on a port (a boot storm behind one port) is answered by one
    /// triggered CDP frame instead of one per query.
    pub fn handle_frames<'a>(
        &mut self,
        frames: impl IntoIterator<Item = (usize, &'a [u8])>,
        now: Instant,
    ) {
        for (port, bytes) in frames {
            self.take_frame(port, bytes, now);
        }
        self.drive(now);
    }

    fn take_frame(&mut self, port: usize, bytes: &[u8], now: Instant) {
        self.counters.rx_frames += 1;
        if port >= self.ports.len() {
            self.counters.rx_ignored += 1;
            return;
        }
        let f = match frame::parse(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.counters.rx_bad_frame += 1;
                dbg_events!(self.debug, "{}: bad frame: {e}", self.ports[port].cfg.name);
                tracing::debug!(port = %self.ports[port].cfg.name, error = %e, "bad frame");
                return;
            }
        };
        match f.payload {
            Payload::Llc {
                snap: Some((cdp::CISCO_OUI, cdp::SNAP_PID)),
                data,
                ..
            } if f.dst == cdp::MULTICAST => self.handle_cdp(port, f.src, data, now),
            Payload::Ethernet2 {
                ethertype: lldp::ETHERTYPE,
                data,
            } => self.handle_lldp(port, f.src, data, now),
            _ => self.counters.rx_ignored += 1,
        }
    }

    /// Advances timers: expiries and periodic sends.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next. Changes after every
    /// `handle_*` and `set_*` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.table.next_expiry();
        for p in &self.ports {
            if self.cfg.run && p.cfg.enabled {
                t = Some(t.map_or(p.next_cdp, |x| x.min(p.next_cdp)));
            }
            if self.cfg.lldp && p.cfg.lldp_transmit {
                t = Some(t.map_or(p.next_lldp, |x| x.min(p.next_lldp)));
            }
        }
        t
    }

    /// Next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// Next event for the journal.
    pub fn poll_event(&mut self) -> Option<SwitchEvent> {
        self.events.pop_front()
    }

    /// The runner reports a failed send.
    pub fn note_send_error(&mut self) {
        self.counters.tx_errors += 1;
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The neighbour table, power state and counters as of `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            run: self.cfg.run,
            timer_secs: self.cfg.timer_secs,
            holdtime_secs: self.cfg.holdtime_secs,
            cdp_version: self.cfg.cdp_version,
            lldp: self.cfg.lldp,
            lldp_timer_secs: self.cfg.lldp_timer_secs,
            lldp_holdtime_secs: self.cfg.lldp_holdtime_secs,
            device_id: self.cfg.device_id.clone(),
            interfaces: self
                .ports
                .iter()
                .map(|p| InterfaceView {
                    name: p.cfg.name.clone(),
                    enabled: p.cfg.enabled,
                    lldp_transmit: p.cfg.lldp_transmit,
                    lldp_receive: p.cfg.lldp_receive,
                    voice_vlan: p.cfg.voice_vlan,
                    native_vlan: p.cfg.native_vlan,
                    med_endpoint: p.med_seen,
                })
                .collect(),
            neighbours: self.table.views(now),
            power: PowerView {
                total_mw: self.budget.total_mw,
                used_mw: self.budget.used_mw(),
                remaining_mw: self.budget.remaining_mw(),
                ports: self
                    .ports
                    .iter()
                    .zip(&self.budget.ports)
                    .map(|(p, pw)| PortPowerView {
                        interface: p.cfg.name.clone(),
                        power: pw.clone(),
                    })
                    .collect(),
            },
            counters: self.counters.clone(),
        }
    }

    fn drive(&mut self, now: Instant) {
        for gone in self.table.expire(now) {
            let port = gone.port_index;
            let name = self.ports[port].cfg.name.clone();
            if gone.info.protocol == Proto::Lldp {
                self.counters.lldp_aged += 1;
            } else {
                dbg_adjacency!(
                    self.debug,
                    "CDP-AD: Deleted table entry for {}, interface {name}",
                    gone.info.device_id
                );
            }
            self.events.push_back(SwitchEvent::NeighbourLost {
                port: name,
                mac: gone.info.mac,
                device_id: gone.info.device_id.clone(),
                protocol: gone.info.protocol,
            });
            if self.table.count_on_port(port) == 0 {
                self.budget.device_gone(port);
                self.ports[port].med_seen = false;
                self.ports[port].med_fast_left = 0;
            } else if gone.info.protocol == Proto::Lldp && self.table.med_on_port(port) == 0 {
                self.ports[port].med_seen = false;
            }
        }
        for i in 0..self.ports.len() {
            if self.cfg.run
                && self.ports[i].cfg.enabled
                && (self.ports[i].triggered || now >= self.ports[i].next_cdp)
            {
                self.send_cdp(i, self.cfg.holdtime_secs.min(255) as u8);
                self.ports[i].triggered = false;
                self.ports[i].next_cdp = now + Duration::from_secs(u64::from(self.cfg.timer_secs));
            }
            if self.cfg.lldp && self.ports[i].cfg.lldp_transmit && now >= self.ports[i].next_lldp {
                self.send_lldp(i, self.cfg.lldp_holdtime_secs);
                let p = &mut self.ports[i];
                p.next_lldp = if p.med_fast_left > 0 {
                    p.med_fast_left -= 1;
                    now + FAST_TX
                } else {
                    now + Duration::from_secs(u64::from(self.cfg.lldp_timer_secs))
                };
            }
        }
    }

    fn detected(&mut self, port: usize, mac: Mac, class: Option<u8>, device: Option<String>) {
        if self.budget.ports[port].oper == PowerOper::Off {
            if let Some(g) = self.budget.device_detected(port, class) {
                self.power_event(port, mac, g.class, g.milliwatts);
            } else if self.budget.ports[port].oper == PowerOper::PowerDeny {
                dbg_events!(
                    self.debug,
                    "{}: power denied (budget)",
                    self.ports[port].cfg.name
                );
            }
        }
        if device.is_some() {
            self.budget.ports[port].device = device;
        }
    }

    fn power_event(&mut self, port: usize, mac: Mac, class: Option<u8>, mw: u32) {
        let name = self.ports[port].cfg.name.clone();
        dbg_events!(
            self.debug,
            "{name}: power granted {mw} mW (class {class:?})"
        );
        self.events.push_back(SwitchEvent::PowerGranted {
            port: name,
            mac,
            class,
            milliwatts: mw,
        });
    }

    fn handle_cdp(&mut self, port: usize, src: [u8; 6], pdu_bytes: &[u8], now: Instant) {
        let name = self.ports[port].cfg.name.clone();
        if !self.cfg.run || !self.ports[port].cfg.enabled {
            self.counters.rx_ignored += 1;
            return;
        }
        let pdu = match cdp::Pdu::decode(pdu_bytes) {
            Ok(p) => p,
            Err(e) => {
                self.counters.rx_bad_cdp += 1;
                match e {
                    cdp::DecodeError::ShortHeader { .. } | cdp::DecodeError::BadVersion(_) => {
                        self.counters.rx_cdp_hdr_syntax += 1
                    }
                    cdp::DecodeError::TlvOverrun { .. } => self.counters.rx_cdp_fragmented += 1,
                    _ => self.counters.rx_cdp_invalid += 1,
                }
                dbg_events!(
                    self.debug,
                    "CDP-EV: Bad packet received on interface {name}: {e}"
                );
                tracing::debug!(port = %name, error = %e, "bad CDP PDU");
                return;
            }
        };
        if !cdp::checksum_ok(pdu_bytes) {
            self.counters.rx_bad_checksum += 1;
            dbg_events!(
                self.debug,
                "CDP-EV: Checksum error on interface {name} (accepted)"
            );
            tracing::debug!(port = %name, "CDP checksum mismatch");
        }
        self.counters.rx_cdp += 1;
        if pdu.version == 1 {
            self.counters.rx_cdp_v1 += 1;
        } else {
            self.counters.rx_cdp_v2 += 1;
        }
        let device_id = pdu
            .device_id()
            .map(|s| s.trim_end_matches('\0').to_string())
            .unwrap_or_else(|| Mac(src).to_string());
        dbg_packets!(
            self.debug,
            "CDP-PA: Packet received from {device_id} on interface {name}"
        );
        let mac = mac_of(&device_id).unwrap_or(Mac(src));
        let caps = pdu.capabilities().unwrap_or_default();
        let addresses: Vec<IpAddr> = pdu
            .addresses()
            .into_iter()
            .filter_map(|a| match a {
                cdp::Address::V4(v) => Some(IpAddr::V4(v)),
                cdp::Address::V6(v) => Some(IpAddr::V6(v)),
                _ => None,
            })
            .collect();
        let request = pdu.power_requested().map(|(r, m, l)| (r, m, l.to_vec()));
        let info = NeighbourInfo {
            protocol: Proto::Cdp,
            local_port: name.clone(),
            device_id: device_id.clone(),
            mac: Mac(src),
            platform: pdu.platform().map(str::to_owned),
            software_version: pdu.software_version().map(str::to_owned),
            port_id: pdu.port_id().map(str::to_owned),
            addresses,
            capabilities: caps.0,
            capability_letters: caps.letters(),
            capability_words: caps.words(),
            holdtime_secs: u16::from(pdu.ttl),
            version: pdu.version,
            duplex: pdu.duplex().map(|d| d.name().to_string()),
            native_vlan: pdu.native_vlan(),
            power_drawn_mw: pdu.power_consumption().map(u32::from),
            power_request: request.clone(),
            power_granted_mw: None,
            voice_vlan_asked: pdu.voip_vlan_query(),
            voice_vlan_sent: None,
            med_device_type: None,
            model: None,
        };
        let platform = info.platform.clone();
        let first_level = request
            .as_ref()
            .and_then(|r| r.2.iter().copied().find(|l| *l > 0));
        let addresses_seen = info.addresses.clone();
        let update = self.table.update(port, info, now);
        if update == Update::Full {
            self.counters.rx_table_full += 1;
            self.counters.rx_cdp_no_memory += 1;
            dbg_events!(
                self.debug,
                "CDP-EV: No memory for table entry {device_id}, interface {name} (port table full)"
            );
            return;
        }
        if update == Update::Refreshed {
            dbg_packets!(self.debug, "**Entry found in cache**");
        }
        for a in &addresses_seen {
            dbg_ip!(
                self.debug,
                "CDP-IP: Updating address {a} of {device_id}, interface {name}"
            );
        }
        if update == Update::New {
            dbg_adjacency!(
                self.debug,
                "CDP-AD: Adding table entry for {device_id}, interface {name}"
            );
            self.events.push_back(SwitchEvent::CdpSeen {
                port: name.clone(),
                mac,
                platform: platform.clone(),
                power_requested_mw: first_level,
            });
        }
        if pdu.ttl == 0 {
            return; // going away; drive() removes it
        }
        self.detected(port, mac, self.ports[port].cfg.pd_class, platform);
        if let Some((req, mgmt, levels)) = &request {
            if let Some(g) = self.budget.cdp_request(port, *req, levels) {
                self.power_event(port, mac, g.class, g.milliwatts);
            }
            // The phone echoes the last Management-ID it saw: answer until it has ours.
            if *mgmt != self.budget.ports[port].management_id {
                dbg_events!(self.debug, "{name}: power request {req} answered at once");
                self.ports[port].triggered = true;
            }
        }
        let granted = self.budget.ports[port].allocated_mw;
        let vvid = self.ports[port].cfg.voice_vlan.vvid();
        let asked = pdu.voip_vlan_query();
        if let Some(e) = self.table.get_mut(port, Proto::Cdp, &device_id) {
            e.power_granted_mw = (granted > 0).then_some(granted);
            if asked && vvid.is_some() {
                let first = e.voice_vlan_sent.is_none();
                e.voice_vlan_sent = vvid;
                self.ports[port].triggered = true;
                dbg_events!(
                    self.debug,
                    "{name}: VoIP VLAN query from {device_id}, reply {vvid:?}"
                );
                if first {
                    self.events.push_back(SwitchEvent::VoiceVlan {
                        port: name,
                        mac,
                        vlan: vvid.filter(|v| *v != 4095),
                        via: VlanVia::Cdp,
                    });
                }
            }
        }
    }

    fn handle_lldp(&mut self, port: usize, src: [u8; 6], data: &[u8], now: Instant) {
        let name = self.ports[port].cfg.name.clone();
        if !self.cfg.lldp || !self.ports[port].cfg.lldp_receive {
            self.counters.rx_ignored += 1;
            self.counters.rx_lldp_discarded += 1;
            return;
        }
        let pdu = match lldp::Lldpdu::decode(data) {
            Ok(p) => p,
            Err(e) => {
                self.counters.rx_bad_lldp += 1;
                dbg_events!(self.debug, "{name}: bad LLDPDU: {e}");
                tracing::debug!(port = %name, error = %e, "bad LLDPDU");
                return;
            }
        };
        self.counters.rx_lldp += 1;
        self.counters.rx_lldp_unrecognized_tlvs += pdu
            .tlvs
            .iter()
            .filter(|t| matches!(t, LTlv::Raw { .. }))
            .count() as u64;
        dbg_packets!(self.debug, "{name}: LLDP in from {}: {pdu:?}", Mac(src));
        let chassis = match pdu.chassis_id() {
            Some((4, id)) if id.len() == 6 => {
                Mac([id[0], id[1], id[2], id[3], id[4], id[5]]).to_string()
            }
            Some((_, id)) => lossy(id),
            None => Mac(src).to_string(),
        };
        let device_id = pdu.system_name().map(str::to_owned).unwrap_or(chassis);
        let mac = mac_of(&device_id).unwrap_or(Mac(src));
        let (_, enabled) = pdu.capabilities().unwrap_or((0, 0));
        let med_type = pdu.med_capabilities().map(|(_, t)| t);
        let model = pdu.inventory(lldp::Inventory::Model).map(str::to_owned);
        let pd_power = pdu
            .extended_power()
            .filter(|p| p.power_type == 1)
            .map(|p| u32::from(p.deciwatts) * 100);
        let class = pdu.tlvs.iter().find_map(|t| match t {
            LTlv::Dot3Power(p) if p.mdi_support & 1 == 0 && (1..=5).contains(&p.class_plus_one) => {
                Some(p.class_plus_one - 1)
            }
            _ => None,
        });
        let info = NeighbourInfo {
            protocol: Proto::Lldp,
            local_port: name.clone(),
            device_id: device_id.clone(),
            mac: Mac(src),
            platform: model
                .clone()
                .or_else(|| pdu.system_description().map(str::to_owned)),
            software_version: pdu
                .inventory(lldp::Inventory::SoftwareRevision)
                .or(pdu.system_description())
                .map(str::to_owned),
            port_id: pdu.port_id().map(|(subtype, id)| match (subtype, id) {
                (3, &[a, b, c, d, e, f]) => Mac([a, b, c, d, e, f]).to_string(),
                _ => lossy(id),
            }),
            addresses: pdu.management_ipv4().into_iter().map(IpAddr::V4).collect(),
            capabilities: u32::from(enabled),
            capability_letters: lldp_letters(enabled),
            capability_words: String::new(),
            holdtime_secs: pdu.ttl().unwrap_or(0),
            version: 0,
            duplex: None,
            native_vlan: None,
            power_drawn_mw: pd_power,
            power_request: None,
            power_granted_mw: None,
            voice_vlan_asked: med_type.is_some(),
            voice_vlan_sent: None,
            med_device_type: med_type,
            model: model.clone(),
        };
        let update = self.table.update(port, info, now);
        if update == Update::Full {
            self.counters.rx_table_full += 1;
            dbg_events!(
                self.debug,
                "{name}: neighbour table full, LLDP {device_id} dropped"
            );
            return;
        }
        if update == Update::New {
            dbg_adjacency!(self.debug, "{name}: new LLDP neighbour {device_id}");
            self.events.push_back(SwitchEvent::LldpSeen {
                port: name.clone(),
                mac,
                model: model.clone(),
                med: med_type.is_some(),
            });
        }
        if pdu.ttl() == Some(0) {
            return;
        }
        self.detected(port, mac, class.or(self.ports[port].cfg.pd_class), model);
        if let Some(mw) = pd_power {
            let rid = self.budget.ports[port].request_id;
            if let Some(g) = self.budget.cdp_request(port, rid, &[mw]) {
                self.power_event(port, mac, g.class, g.milliwatts);
            }
        }
        // TIA-1057: MED TLVs only once a MED endpoint is heard, then fast start.
        if med_type.is_some() && !self.ports[port].med_seen {
            self.ports[port].med_seen = true;
            self.ports[port].med_fast_left = self.cfg.lldp_fast_start;
            self.ports[port].next_lldp = now;
            dbg_events!(
                self.debug,
                "{name}: LLDP-MED endpoint {device_id}, fast start"
            );
        }
        let granted = self.budget.ports[port].allocated_mw;
        let vv = self.ports[port].cfg.voice_vlan;
        if let Some(e) = self.table.get_mut(port, Proto::Lldp, &device_id) {
            e.power_granted_mw = (granted > 0).then_some(granted);
            if med_type.is_some() && vv != VoiceVlan::None {
                let first = e.voice_vlan_sent.is_none();
                e.voice_vlan_sent = vv.vvid();
                if first {
                    self.events.push_back(SwitchEvent::VoiceVlan {
                        port: name,
                        mac,
                        vlan: match vv {
                            VoiceVlan::Vlan(v) => Some(v),
                            VoiceVlan::Dot1p => Some(0),
                            _ => None,
                        },
                        via: VlanVia::LldpMed,
                    });
                }
            }
        }
    }

    /// The CDP PDU we send on `port`.
    pub fn cdp_pdu(&self, port: usize, ttl: u8) -> cdp::Pdu {
        let p = &self.ports[port];
        let mut pdu = cdp::Pdu {
            version: self.cfg.cdp_version,
            ttl,
            tlvs: Vec::new(),
        };
        pdu.tlvs.push(CTlv::DeviceId(self.cfg.device_id.clone()));
        if let Some(a) = self.cfg.address {
            pdu.tlvs.push(CTlv::Addresses(vec![cdp::Address::V4(a)]));
        }
        pdu.tlvs.push(CTlv::PortId(p.cfg.name.clone()));
        pdu.tlvs
            .push(CTlv::Capabilities(Capabilities::ACCESS_SWITCH));
        pdu.tlvs
            .push(CTlv::SoftwareVersion(self.cfg.software_version.clone()));
        pdu.tlvs.push(CTlv::Platform(self.cfg.platform.clone()));
        pdu.tlvs.push(CTlv::NativeVlan(p.cfg.native_vlan));
        pdu.tlvs.push(CTlv::Duplex(cdp::Duplex::FULL));
        if let Some(vvid) = p.cfg.voice_vlan.vvid() {
            pdu.tlvs.push(CTlv::VoipVlanReply {
                appliance: 1,
                vlan: vvid,
            });
        }
        pdu.tlvs.push(CTlv::TrustBitmap(0));
        pdu.tlvs.push(CTlv::UntrustedCos(0));
        pdu.tlvs.push(CTlv::SystemName(self.cfg.device_id.clone()));
        if let Some(a) = self.cfg.address {
            pdu.tlvs
                .push(CTlv::ManagementAddresses(vec![cdp::Address::V4(a)]));
        }
        let pw = &self.budget.ports[port];
        if pw.oper == PowerOper::On {
            pdu.tlvs.push(CTlv::PowerAvailable {
                request_id: pw.request_id,
                management_id: pw.management_id,
                available_mw: pw.allocated_mw,
                management_level: 0xffff_ffff,
            });
        }
        pdu
    }

    /// The LLDPDU we send on `port`.
    pub fn lldpdu(&self, port: usize, ttl: u16) -> lldp::Lldpdu {
        let p = &self.ports[port];
        let mut pdu = lldp::Lldpdu::new(p.mac, &p.cfg.name, ttl)
            .with(LTlv::PortDescription(p.cfg.name.clone()))
            .with(LTlv::SystemName(self.cfg.device_id.clone()))
            .with(LTlv::SystemDescription(format!(
                "{} {}",
                self.cfg.platform, self.cfg.software_version
            )))
            .with(LTlv::SystemCapabilities {
                available: lldp::cap::BRIDGE | lldp::cap::ROUTER,
                enabled: lldp::cap::BRIDGE,
            });
        if let Some(a) = self.cfg.address {
            pdu = pdu.with(LTlv::ManagementAddress {
                family: 1,
                addr: a.octets().to_vec(),
                if_subtype: 2,
                if_number: (port + 1) as u32,
                oid: Vec::new(),
            });
        }
        if p.med_seen && ttl > 0 {
            pdu = pdu.with(LTlv::MedCapabilities {
                capabilities: med::CAP_CAPABILITIES | med::CAP_NETWORK_POLICY | med::CAP_POWER_PSE,
                device_type: med::NETWORK_CONNECTIVITY,
            });
            let policy = match p.cfg.voice_vlan {
                VoiceVlan::Vlan(v) => Some(lldp::NetworkPolicy::voice(v)),
                VoiceVlan::Dot1p => Some(lldp::NetworkPolicy::voice(0)),
                VoiceVlan::Untagged => Some(lldp::NetworkPolicy {
                    tagged: false,
                    priority: 0,
                    ..lldp::NetworkPolicy::voice(0)
                }),
                VoiceVlan::None => None,
            };
            if let Some(pol) = policy {
                pdu = pdu.with(LTlv::NetworkPolicy(pol)).with(LTlv::NetworkPolicy(
                    lldp::NetworkPolicy {
                        app: med::APP_VOICE_SIGNALING,
                        priority: if pol.tagged { 3 } else { 0 },
                        dscp: 24,
                        ..pol
                    },
                ));
            }
            let pw = &self.budget.ports[port];
            pdu = pdu.with(LTlv::ExtendedPower(lldp::ExtendedPower {
                power_type: 0,
                source: 1,
                priority: 0,
                deciwatts: (pw.allocated_mw / 100).min(1023) as u16,
            }));
        }
        pdu
    }

    fn send_cdp(&mut self, port: usize, ttl: u8) {
        let p = &self.ports[port];
        let pdu = self.cdp_pdu(port, ttl);
        match pdu.encode() {
            Ok(bytes) => {
                if let Some(f) = frame::snap(
                    cdp::MULTICAST,
                    p.mac,
                    None,
                    cdp::CISCO_OUI,
                    cdp::SNAP_PID,
                    &bytes,
                ) {
                    dbg_packets!(
                        self.debug,
                        "CDP-PA: version {} packet sent out on {}",
                        pdu.version,
                        p.cfg.name
                    );
                    self.counters.tx_cdp += 1;
                    if pdu.version == 1 {
                        self.counters.tx_cdp_v1 += 1;
                    } else {
                        self.counters.tx_cdp_v2 += 1;
                    }
                    self.outbox.push_back(Transmit { port, frame: f });
                } else {
                    self.counters.tx_cdp_encaps_failed += 1;
                    dbg_events!(
                        self.debug,
                        "CDP-EV: Encapsulation on interface {} failed",
                        p.cfg.name
                    );
                }
            }
            Err(e) => {
                self.counters.tx_cdp_encaps_failed += 1;
                dbg_events!(
                    self.debug,
                    "CDP-EV: Encapsulation on interface {} failed",
                    p.cfg.name
                );
                tracing::warn!(port = %p.cfg.name, error = %e, "cannot encode our CDP")
            }
        }
    }

    fn send_lldp(&mut self, port: usize, ttl: u16) {
        let p = &self.ports[port];
        let pdu = self.lldpdu(port, ttl);
        match pdu.encode() {
            Ok(bytes) => {
                let f = frame::ethernet2(lldp::MULTICAST, p.mac, None, lldp::ETHERTYPE, &bytes);
                dbg_packets!(self.debug, "{}: LLDP out ttl {ttl}: {pdu:?}", p.cfg.name);
                self.counters.tx_lldp += 1;
                self.outbox.push_back(Transmit { port, frame: f });
            }
            Err(e) => tracing::warn!(port = %p.cfg.name, error = %e, "cannot encode our LLDPDU"),
        }
    }
}

/// LLDP capability letters in IOS `show lldp neighbors` style.
pub fn lldp_letters(bits: u16) -> String {
    [
        (lldp::cap::ROUTER, "R"),
        (lldp::cap::BRIDGE, "B"),
        (lldp::cap::TELEPHONE, "T"),
        (lldp::cap::DOCSIS, "C"),
        (lldp::cap::WLAN_AP, "W"),
        (lldp::cap::REPEATER, "P"),
        (lldp::cap::STATION, "S"),
        (lldp::cap::OTHER, "O"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, l)| *l)
    .collect::<Vec<_>>()
    .join(",")
}

/// The MAC inside a `SEP<MAC>` device id. Non-ASCII ids are rejected up front:
/// `Mac::from_device_name` slices bytes and would panic inside a multi-byte character.
fn mac_of(device_id: &str) -> Option<Mac> {
    if !device_id.is_ascii() {
        return None;
    }
    Mac::from_device_name(device_id).ok()
}
