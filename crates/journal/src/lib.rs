//! The boot-step vocabulary: what happened to which phone, as one event type.
//!
//! Every service (discovery, DHCP, TFTP/HTTP, SCCP, SIP) reports what a phone did as an
//! [`Event`] keyed by MAC, and the emulator records its own side of a boot with the same
//! [`EventKind`]s, so the two views of a boot can be laid side by side. The journal store,
//! metrics, logs and the UI's live view are all readers of this one stream.
//!
//! This crate does no I/O and reads no clock: whoever emits an event stamps it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use mac::Mac;
use serde::{Deserialize, Serialize};

/// The five steps of a phone's boot, in the order a phone goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Power,
    Discovery,
    Dhcp,
    Files,
    Registration,
}

/// Which side of the wire saw the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// A phoneboot service (switch, DHCP, TFTP, call manager).
    Server,
    /// A phone, real or emulated, reporting its own view.
    Phone,
}

/// How a voice VLAN reached the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VlanVia {
    Cdp,
    LldpMed,
    /// No discovery answer before the timeout: the phone stays untagged.
    None,
}

/// How a file travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tftp,
    Http,
}

/// Which registration protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Sccp,
    Sip,
}

/// What an administrator (or a configuration change) asked a phone to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetKind {
    /// Power-cycle-like reset: the phone reboots and fetches everything again.
    Reset,
    /// Restart: the phone re-reads its configuration and re-registers.
    Restart,
    /// Apply the changed configuration (CUCM's "Apply Config").
    ApplyConfig,
}

/// One thing that happened to one phone during its boot or its registered life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A CDP frame from the phone was heard on a switch port.
    CdpSeen {
        port: String,
        platform: Option<String>,
        /// Power the phone asked for in CDP, in milliwatts.
        power_requested_mw: Option<u32>,
    },
    /// An LLDP(-MED) frame from the phone was heard on a switch port.
    LldpSeen {
        port: String,
        model: Option<String>,
        med: bool,
    },
    /// A neighbour's holdtime ran out (or it said goodbye with holdtime 0).
    NeighbourLost {
        port: String,
    },
    /// Power was granted on the port (PoE class, then CDP/LLDP refinement).
    PowerGranted {
        port: String,
        class: u8,
        milliwatts: u32,
    },
    /// The switch told the phone its voice VLAN, or the phone learned one.
    VoiceVlan {
        vlan: Option<u16>,
        via: VlanVia,
    },
    DhcpDiscover {
        vendor_class: Option<String>,
    },
    DhcpOffer {
        ip: Ipv4Addr,
    },
    DhcpAck {
        ip: Ipv4Addr,
        lease_secs: u32,
        /// Option 150 (or 66 resolved), in the order given.
        tftp_servers: Vec<Ipv4Addr>,
        vendor_class: Option<String>,
    },
    DhcpNak {
        reason: String,
    },
    DhcpRelease {
        ip: Ipv4Addr,
    },
    DhcpDecline {
        ip: Ipv4Addr,
    },
    /// A file was sent completely.
    FileServed {
        name: String,
        transport: Transport,
        bytes: u64,
        duration_ms: u64,
    },
    /// A file was asked for and does not exist.
    FileMissing {
        name: String,
        transport: Transport,
    },
    /// A transfer started but did not finish (timeout, client error, refused under load).
    FileFailed {
        name: String,
        transport: Transport,
        reason: String,
    },
    /// The phone's file was served without the load it is configured for (the firmware
    /// library lacks it or holds it incomplete), so the phone keeps its firmware.
    LoadWithheld {
        load: String,
        reason: String,
    },
    /// A registration was accepted.
    Registered {
        protocol: Protocol,
        /// The call-manager node (host or address) that accepted it.
        node: String,
        from: Option<IpAddr>,
        /// SCCP protocol version, or the SIP line (directory number) registered.
        detail: String,
    },
    RegisterRejected {
        protocol: Protocol,
        reason: String,
    },
    /// The phone stopped sending keepalives / let its binding expire.
    KeepaliveLost {
        protocol: Protocol,
    },
    Unregistered {
        protocol: Protocol,
    },
    ResetSent {
        protocol: Protocol,
        reset: ResetKind,
    },
    /// A free-form step failure seen by the emulator (its own timeline).
    StepFailed {
        step: Step,
        reason: String,
    },
}

impl EventKind {
    /// The boot step this event belongs to.
    pub fn step(&self) -> Step {
        use EventKind::*;
        match self {
            PowerGranted { .. } => Step::Power,
            CdpSeen { .. } | LldpSeen { .. } | VoiceVlan { .. } | NeighbourLost { .. } => {
                Step::Discovery
            }
            DhcpDiscover { .. }
            | DhcpOffer { .. }
            | DhcpAck { .. }
            | DhcpNak { .. }
            | DhcpRelease { .. }
            | DhcpDecline { .. } => Step::Dhcp,
            FileServed { .. } | FileMissing { .. } | FileFailed { .. } | LoadWithheld { .. } => {
                Step::Files
            }
            Registered { .. }
            | RegisterRejected { .. }
            | KeepaliveLost { .. }
            | Unregistered { .. }
            | ResetSent { .. } => Step::Registration,
            StepFailed { step, .. } => *step,
        }
    }

    /// Events that mean "this phone is starting over": a new boot begins here.
    pub fn starts_boot(&self) -> bool {
        matches!(
            self,
            EventKind::CdpSeen { .. } | EventKind::LldpSeen { .. } | EventKind::DhcpDiscover { .. }
        )
    }
}

/// One event, stamped and keyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened; milliseconds since the Unix epoch on the wire.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    pub mac: Mac,
    pub side: Side,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// A server-side event stamped `at`.
    pub fn server(at: SystemTime, mac: Mac, kind: EventKind) -> Self {
        Event {
            at,
            mac,
            side: Side::Server,
            kind,
        }
    }
}

/// `SystemTime` as integer milliseconds since the Unix epoch: what JSON readers (the UI,
/// scripts) can use directly.
pub mod unix_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        s.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_millis(ms))
    }
}

/// Where services send their events. Implementations must be cheap and must not block:
/// services call this on their hot paths.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Shared handle to a sink, as services hold it.
pub type SharedSink = Arc<dyn EventSink>;

/// Drops every event (for tools and benchmarks that do not journal).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event in memory, for tests.
#[derive(Debug, Default)]
pub struct VecSink {
    events: Mutex<Vec<Event>>,
}

impl VecSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A copy of what was emitted so far.
    pub fn events(&self) -> Vec<Event> {
        match self.events.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl EventSink for VecSink {
    fn emit(&self, event: Event) {
        match self.events.lock() {
            Ok(mut g) => g.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_their_kind() {
        let e = Event::server(
            SystemTime::UNIX_EPOCH,
            "001b54aabbcc".parse().unwrap(),
            EventKind::FileMissing {
                name: "SEP001B54AABBCC.cnf.xml".into(),
                transport: Transport::Tftp,
            },
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "file_missing");
        assert_eq!(v["at"], 0, "time is integer milliseconds");
        assert_eq!(v["mac"], "00:1b:54:aa:bb:cc");
        assert_eq!(v["transport"], "tftp");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn steps_follow_the_boot_order() {
        let lease = EventKind::DhcpAck {
            ip: Ipv4Addr::new(198, 18, 100, 10),
            lease_secs: 3600,
            tftp_servers: vec![],
            vendor_class: None,
        };
        assert_eq!(lease.step(), Step::Dhcp);
        assert!(Step::Dhcp < Step::Files && Step::Files < Step::Registration);
        assert!(EventKind::DhcpDiscover { vendor_class: None }.starts_boot());
    }

    #[test]
    fn vec_sink_keeps_order() {
        let sink = VecSink::new();
        let mac: Mac = "001b54aabbcc".parse().unwrap();
        for vlan in [100, 200] {
            sink.emit(Event::server(
                SystemTime::UNIX_EPOCH,
                mac,
                EventKind::VoiceVlan {
                    vlan: Some(vlan),
                    via: VlanVia::Cdp,
                },
            ));
        }
        let got: Vec<_> = sink
            .events()
            .into_iter()
            .map(|e| match e.kind {
                EventKind::VoiceVlan { vlan, .. } => vlan,
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![Some(100), Some(200)]);
    }
}
