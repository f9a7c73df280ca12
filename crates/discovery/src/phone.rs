//! The phone role, sans-IO (used by the emulator): sends CDP as a Cisco IP phone (with VoIP
//! VLAN Query and Power Requested) and LLDP-MED as a Class III endpoint, listens to the
//! switch, and reports the voice VLAN it learned, or none after a timeout.

use std::collections::VecDeque;
use std::time::Instant;

use cdp::{Capabilities, Tlv as CTlv};
use journal::VlanVia;
use l2::frame::{self, Payload};
use lldp::{med, Tlv as LTlv};

use crate::config::PhoneConfig;

/// What the phone learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    /// The voice VLAN learned (Some = tag with it; None = untagged), or, with
    /// `via: VlanVia::None`, that nothing came before the timeout.
    VoiceVlan { vlan: Option<u16>, via: VlanVia },
    /// The switch granted power (CDP Power Available matching our request).
    PowerGranted { milliwatts: u32 },
    /// First frame from a switch, per protocol.
    SwitchSeen {
        via: VlanVia,
        device_id: String,
        port_id: Option<String>,
    },
}

/// The voice-VLAN outcome so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanState {
    Waiting,
    Learned { vlan: Option<u16>, via: VlanVia },
    TimedOut,
}

/// Counters of what the phone received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhoneCounters {
    pub rx_cdp: u64,
    pub rx_lldp: u64,
    pub rx_bad: u64,
    pub tx_cdp: u64,
    pub tx_lldp: u64,
}

/// One emulated phone's discovery state machine.
#[derive(Debug)]
pub struct PhoneAgent {
    cfg: PhoneConfig,
    started: Instant,
    next_send: Instant,
    state: VlanState,
    management_id: u16,
    granted_mw: Option<u32>,
    seen_cdp: bool,
    seen_lldp: bool,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<PhoneEvent>,
    counters: PhoneCounters,
}

impl PhoneAgent {
    /// The first CDP/LLDP frames go out at `now`.
    pub fn new(cfg: PhoneConfig, now: Instant) -> Self {
        let mut a = PhoneAgent {
            cfg,
            started: now,
            next_send: now,
            state: VlanState::Waiting,
            management_id: 0,
            granted_mw: None,
            seen_cdp: false,
            seen_lldp: false,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            counters: PhoneCounters::default(),
        };
        a.drive(now);
        a
    }

    pub fn state(&self) -> VlanState {
        self.state
    }

    /// The voice VLAN to tag with, once learned.
    pub fn voice_vlan(&self) -> Option<u16> {
        match self.state {
            VlanState::Learned { vlan, .. } => vlan,
            _ => None,
        }
    }

    pub fn granted_mw(&self) -> Option<u32> {
        self.granted_mw
    }

    pub fn counters(&self) -> PhoneCounters {
        self.counters
    }

    pub fn handle_frame(&mut self, bytes: &[u8], now: Instant) {
        let Ok(f) = frame::parse(bytes) else {
            self.counters.rx_bad += 1;
            return;
        };
        match f.payload {
            Payload::Llc {
                snap: Some((cdp::CISCO_OUI, cdp::SNAP_PID)),
                data,
                ..
            } if self.cfg.cdp => self.handle_cdp(data),
            Payload::Ethernet2 {
                ethertype: lldp::ETHERTYPE,
                data,
            } if self.cfg.lldp => self.handle_lldp(data),
            _ => {}
        }
        self.drive(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_send;
        if self.state == VlanState::Waiting {
            t = t.min(self.started + self.cfg.vlan_timeout);
        }
        Some(t)
    }

    /// Next whole Ethernet frame to send (untagged, from the phone's MAC).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    fn learn(&mut self, vlan: Option<u16>, via: VlanVia) {
        let new = VlanState::Learned { vlan, via };
        // Cisco phones apply whichever policy arrived last; report changes only.
        let changed = match self.state {
            VlanState::Learned { vlan: v, .. } => v != vlan,
            _ => true,
        };
        self.state = new;
        if changed {
            self.events.push_back(PhoneEvent::VoiceVlan { vlan, via });
        }
    }

    fn handle_cdp(&mut self, data: &[u8]) {
        let Ok(pdu) = cdp::Pdu::decode(data) else {
            self.counters.rx_bad += 1;
            return;
        };
        self.counters.rx_cdp += 1;
        if !self.seen_cdp {
            self.seen_cdp = true;
            self.events.push_back(PhoneEvent::SwitchSeen {
                via: VlanVia::Cdp,
                device_id: pdu.device_id().unwrap_or_default().to_string(),
                port_id: pdu.port_id().map(str::to_owned),
            });
        }
        if let Some((req, mgmt, avail, _)) = pdu.power_available() {
            if req == self.cfg.power_request_id && req != 0 {
                self.management_id = mgmt;
                if self.granted_mw != Some(avail) {
                    self.granted_mw = Some(avail);
                    self.events
                        .push_back(PhoneEvent::PowerGranted { milliwatts: avail });
                }
            }
        }
        if let Some(vvid) = pdu.voip_vlan_reply() {
            // 4095 = untagged; 0 = priority tagged on the native VLAN.
            let vlan = (vvid != 4095).then_some(vvid);
            self.learn(vlan, VlanVia::Cdp);
        }
    }

    fn handle_lldp(&mut self, data: &[u8]) {
        let Ok(pdu) = lldp::Lldpdu::decode(data) else {
            self.counters.rx_bad += 1;
            return;
        };
        self.counters.rx_lldp += 1;
        if !self.seen_lldp {
            self.seen_lldp = true;
            self.events.push_back(PhoneEvent::SwitchSeen {
                via: VlanVia::LldpMed,
                device_id: pdu.system_name().unwrap_or_default().to_string(),
                port_id: pdu
                    .port_id()
                    .map(|(_, id)| String::from_utf8_lossy(id).into_owned()),
            });
        }
        if let Some(p) = pdu.network_policy(med::APP_VOICE).filter(|p| !p.unknown) {
            self.learn(p.tagged.then_some(p.vlan), VlanVia::LldpMed);
        }
    }

    fn drive(&mut self, now: Instant) {
        if self.state == VlanState::Waiting && now >= self.started + self.cfg.vlan_timeout {
            self.state = VlanState::TimedOut;
            self.events.push_back(PhoneEvent::VoiceVlan {
                vlan: None,
                via: VlanVia::None,
            });
        }
        if now >= self.next_send {
            if self.cfg.cdp {
                if let Some(f) = self.cdp_frame() {
                    self.counters.tx_cdp += 1;
                    self.outbox.push_back(f);
                }
            }
            if self.cfg.lldp {
                if let Some(f) = self.lldp_frame() {
                    self.counters.tx_lldp += 1;
                    self.outbox.push_back(f);
                }
            }
            let learned = matches!(self.state, VlanState::Learned { .. });
            self.next_send = now
                + if learned {
                    self.cfg.cdp_timer
                } else {
                    self.cfg.retry
                };
        }
    }

    /// The CDP PDU the phone sends.
    pub fn cdp_pdu(&self) -> cdp::Pdu {
        let mut p =
            cdp::Pdu::new(self.cfg.holdtime_secs).with(CTlv::DeviceId(self.cfg.mac.device_name()));
        if let Some(a) = self.cfg.address {
            p = p.with(CTlv::Addresses(vec![cdp::Address::V4(a)]));
        }
        p = p
            .with(CTlv::PortId(self.cfg.port_id.clone()))
            .with(CTlv::Capabilities(Capabilities::IP_PHONE))
            .with(CTlv::SoftwareVersion(self.cfg.software_version.clone()))
            .with(CTlv::Platform(format!("Cisco IP Phone {}", self.cfg.model)))
            .with(CTlv::Duplex(cdp::Duplex::FULL));
        if !matches!(self.state, VlanState::Learned { .. }) {
            p = p.with(CTlv::VoipVlanQuery(vec![0x20, 0x02, 0x00, 0x01]));
        }
        p.with(CTlv::PowerConsumption(self.cfg.power_consumption_mw))
            .with(CTlv::PowerRequested {
                request_id: self.cfg.power_request_id,
                management_id: self.management_id,
                levels_mw: self.cfg.power_levels_mw.clone(),
            })
    }

    fn cdp_frame(&self) -> Option<Vec<u8>> {
        let bytes = self.cdp_pdu().encode().ok()?;
        frame::snap(
            cdp::MULTICAST,
            self.cfg.mac.octets(),
            None,
            cdp::CISCO_OUI,
            cdp::SNAP_PID,
            &bytes,
        )
    }

    /// The LLDPDU the phone sends (LLDP-MED Class III endpoint).
    pub fn lldpdu(&self) -> lldp::Lldpdu {
        let mut p = lldp::Lldpdu {
            tlvs: vec![
                LTlv::ChassisId {
                    subtype: 5,
                    id: match self.cfg.address {
                        Some(a) => {
                            let mut v = vec![1];
                            v.extend_from_slice(&a.octets());
                            v
                        }
                        None => self.cfg.mac.octets().to_vec(),
                    },
                },
                LTlv::PortId {
                    subtype: 3,
                    id: self.cfg.mac.octets().to_vec(),
                },
                LTlv::Ttl(u16::from(self.cfg.holdtime_secs)),
            ],
        };
        if self.cfg.address.is_none() {
            // Without an address, identify the chassis by MAC (subtype 4).
            p.tlvs[0] = LTlv::ChassisId {
                subtype: 4,
                id: self.cfg.mac.octets().to_vec(),
            };
        }
        p = p
            .with(LTlv::SystemName(self.cfg.mac.device_name()))
            .with(LTlv::SystemDescription(format!(
                "Cisco IP Phone CP-{}, V1, {}",
                self.cfg.model, self.cfg.software_version
            )))
            .with(LTlv::PortDescription("SW PORT".into()))
            .with(LTlv::SystemCapabilities {
                available: lldp::cap::BRIDGE | lldp::cap::TELEPHONE,
                enabled: lldp::cap::TELEPHONE,
            })
            .with(LTlv::MedCapabilities {
                capabilities: med::CAP_CAPABILITIES
                    | med::CAP_NETWORK_POLICY
                    | med::CAP_POWER_PD
                    | med::CAP_INVENTORY,
                device_type: med::CLASS_III,
            })
            .with(LTlv::ExtendedPower(lldp::ExtendedPower {
                power_type: 1,
                source: 1,
                priority: 0,
                deciwatts: (self.cfg.power_consumption_mw / 100).min(1023),
            }))
            .with(LTlv::Inventory(
                lldp::Inventory::SoftwareRevision,
                self.cfg.software_version.clone(),
            ))
            .with(LTlv::Inventory(
                lldp::Inventory::Manufacturer,
                "Cisco Systems, Inc.".into(),
            ))
            .with(LTlv::Inventory(
                lldp::Inventory::Model,
                format!("CP-{}", self.cfg.model),
            ));
        p
    }

    fn lldp_frame(&self) -> Option<Vec<u8>> {
        let bytes = self.lldpdu().encode().ok()?;
        Some(frame::ethernet2(
            lldp::MULTICAST,
            self.cfg.mac.octets(),
            None,
            lldp::ETHERTYPE,
            &bytes,
        ))
    }
}
