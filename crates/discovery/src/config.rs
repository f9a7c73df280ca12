//! Configuration of the switch role (validated) and of the phone role.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the switch tells a phone about its voice VLAN (IOS `switchport voice vlan ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VoiceVlanWire", into = "VoiceVlanWire")]
pub enum VoiceVlan {
    /// No voice VLAN: the VoIP VLAN Reply is not sent.
    None,
    /// Priority-tagged on the native VLAN (VVID 0).
    Dot1p,
    /// Untagged (VVID 4095).
    Untagged,
    /// Tagged with this VLAN (1-4094).
    Vlan(u16),
}

impl VoiceVlan {
    /// The VVID carried in CDP's VoIP VLAN Reply, if one is sent.
    pub fn vvid(self) -> Option<u16> {
        match self {
            VoiceVlan::None => None,
            VoiceVlan::Dot1p => Some(0),
            VoiceVlan::Untagged => Some(4095),
            VoiceVlan::Vlan(v) => Some(v),
        }
    }
}

/// File form of [`VoiceVlan`]: a number, or "none" / "dot1p" / "untagged".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VoiceVlanWire {
    Id(u16),
    Word(String),
}

impl TryFrom<VoiceVlanWire> for VoiceVlan {
    type Error = ConfigError;
    fn try_from(w: VoiceVlanWire) -> Result<Self, ConfigError> {
        match w {
            VoiceVlanWire::Id(v) if (1..=4094).contains(&v) => Ok(VoiceVlan::Vlan(v)),
            VoiceVlanWire::Id(v) => Err(ConfigError::BadVlan(v)),
            VoiceVlanWire::Word(s) => match s.to_ascii_lowercase().as_str() {
                "none" => Ok(VoiceVlan::None),
                "dot1p" => Ok(VoiceVlan::Dot1p),
                "untagged" => Ok(VoiceVlan::Untagged),
                other => other
                    .parse::<u16>()
                    .map_err(|_| ConfigError::BadVoiceVlan(s.clone()))
                    .and_then(|v| VoiceVlan::try_from(VoiceVlanWire::Id(v))),
            },
        }
    }
}

impl From<VoiceVlan> for VoiceVlanWire {
    fn from(v: VoiceVlan) -> Self {
        match v {
            VoiceVlan::None => VoiceVlanWire::Word("none".into()),
            VoiceVlan::Dot1p => VoiceVlanWire::Word("dot1p".into()),
            VoiceVlan::Untagged => VoiceVlanWire::Word("untagged".into()),
            VoiceVlan::Vlan(v) => VoiceVlanWire::Id(v),
        }
    }
}

/// `power inline auto|never` of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PowerAdmin {
    #[default]
    Auto,
    Never,
}

/// One switch port that speaks CDP/LLDP to a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Linux interface name (the switch-side veth of a phone port, or a NIC).
    pub name: String,
    /// `cdp enable` on this interface.
    pub enabled: bool,
    pub voice_vlan: VoiceVlan,
    /// Access ("native") data VLAN, advertised in CDP Native VLAN.
    pub native_vlan: u16,
    /// `power inline auto|never`.
    pub power: PowerAdmin,
    /// `power inline auto max N`: the most this port may grant, mW.
    pub power_max_mw: u32,
    /// `lldp transmit` on this interface.
    pub lldp_transmit: bool,
    /// `lldp receive` on this interface.
    pub lldp_receive: bool,
    /// The PoE class the powered device classifies as (None: pre-standard/unknown, budgeted
    /// like class 0). A phone's LLDP 802.3 Power-via-MDI class overrides it.
    pub pd_class: Option<u8>,
}

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            name: String::new(),
            enabled: true,
            voice_vlan: VoiceVlan::None,
            native_vlan: 1,
            power: PowerAdmin::Auto,
            power_max_mw: 30_000,
            lldp_transmit: true,
            lldp_receive: true,
            pd_class: None,
        }
    }
}

impl InterfaceConfig {
    pub fn new(name: &str) -> Self {
        InterfaceConfig {
            name: name.to_owned(),
            ..Default::default()
        }
    }
}

/// The switch role (`phoneboot serve` discovery section). Defaults are IOS's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchConfig {
    /// `cdp run`.
    pub run: bool,
    /// `cdp timer`, seconds (5-254).
    pub timer_secs: u16,
    /// `cdp holdtime`, seconds (10-255).
    pub holdtime_secs: u16,
    /// CDP v2 (default) or v1.
    pub cdp_version: u8,
    /// Device ID and System Name we advertise.
    pub device_id: String,
    pub platform: String,
    pub software_version: String,
    /// Management/Addresses TLV content, if any.
    pub address: Option<Ipv4Addr>,
    /// Total PoE budget of the switch, mW.
    pub power_budget_mw: u32,
    /// `lldp run` (LLDP with LLDP-MED once a MED endpoint is seen).
    pub lldp: bool,
    /// LLDP msgTxInterval, seconds.
    pub lldp_timer_secs: u16,
    /// LLDP TTL, seconds.
    pub lldp_holdtime_secs: u16,
    /// LLDP-MED fast start: PDUs sent 1 s apart when a MED endpoint appears (1-10).
    pub lldp_fast_start: u8,
    /// Most neighbours kept per port: a real phone port has one or two, so a flood of
    /// forged device ids is capped; a lab port that carries a whole emulated storm needs more.
    pub max_neighbours_per_port: usize,
    pub interfaces: Vec<InterfaceConfig>,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            run: true,
            timer_secs: 60,
            holdtime_secs: 180,
            cdp_version: 2,
            device_id: "phoneboot".into(),
            platform: "phoneboot".into(),
            software_version: concat!("phoneboot ", env!("CARGO_PKG_VERSION")).into(),
            address: None,
            power_budget_mw: 370_000,
            lldp: true,
            lldp_timer_secs: 30,
            lldp_holdtime_secs: 120,
            lldp_fast_start: 3,
            max_neighbours_per_port: crate::neighbors::MAX_PER_PORT,
            interfaces: Vec::new(),
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("the discovery agent has stopped")]
    Stopped,
    #[error("interface {0} is not a discovery interface")]
    UnknownInterface(String),
    #[error("cdp timer {0} s is outside 5-254")]
    BadTimer(u16),
    #[error("cdp holdtime {0} s is outside 10-255")]
    BadHoldtime(u16),
    #[error("CDP version {0} is not 1 or 2")]
    BadVersion(u8),
    #[error("VLAN {0} is outside 1-4094")]
    BadVlan(u16),
    #[error("voice VLAN {0:?} is not a number, none, dot1p or untagged")]
    BadVoiceVlan(String),
    #[error("interface name {0:?} is empty or longer than 15 characters")]
    BadInterfaceName(String),
    #[error("interface {0} is listed twice")]
    DuplicateInterface(String),
    #[error("PoE class {0} is outside 0-4")]
    BadClass(u8),
    #[error("port power limit {0} mW is outside 1-30000")]
    BadPortPower(u32),
    #[error("LLDP timer/holdtime/fast start out of range ({0})")]
    BadLldp(String),
    #[error("device ID must not be empty")]
    EmptyDeviceId,
    #[error("switch power budget must be positive")]
    ZeroBudget,
}

impl SwitchConfig {
    /// Checks every range; the agent only accepts validated configurations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=254).contains(&self.timer_secs) {
            return Err(ConfigError::BadTimer(self.timer_secs));
        }
        if !(10..=255).contains(&self.holdtime_secs) {
            return Err(ConfigError::BadHoldtime(self.holdtime_secs));
        }
        if !(1..=2).contains(&self.cdp_version) {
            return Err(ConfigError::BadVersion(self.cdp_version));
        }
        if self.device_id.is_empty() {
            return Err(ConfigError::EmptyDeviceId);
        }
        if self.power_budget_mw == 0 {
            return Err(ConfigError::ZeroBudget);
        }
        // IOS's ranges: `lldp timer <5-65534>`, `lldp holdtime <0-65535>`.
        if !(5..=65534).contains(&self.lldp_timer_secs) || !(1..=10).contains(&self.lldp_fast_start)
        {
            return Err(ConfigError::BadLldp(format!(
                "timer {}, holdtime {}, fast start {}",
                self.lldp_timer_secs, self.lldp_holdtime_secs, self.lldp_fast_start
            )));
        }
        let mut seen = HashSet::new();
        for i in &self.interfaces {
            if i.name.is_empty() || i.name.len() > 15 {
                return Err(ConfigError::BadInterfaceName(i.name.clone()));
            }
            if !seen.insert(i.name.as_str()) {
                return Err(ConfigError::DuplicateInterface(i.name.clone()));
            }
            if !(1..=4094).contains(&i.native_vlan) {
                return Err(ConfigError::BadVlan(i.native_vlan));
            }
            if let VoiceVlan::Vlan(v) = i.voice_vlan {
                if !(1..=4094).contains(&v) {
                    return Err(ConfigError::BadVlan(v));
                }
            }
            if let Some(c) = i.pd_class.filter(|c| *c > 4) {
                return Err(ConfigError::BadClass(c));
            }
            if !(1..=30_000).contains(&i.power_max_mw) {
                return Err(ConfigError::BadPortPower(i.power_max_mw));
            }
        }
        Ok(())
    }

    /// Validates and returns self, for `SwitchConfig { .. }.validated()?` chains.
    pub fn validated(self) -> Result<Self, ConfigError> {
        self.validate().map(|_| self)
    }
}

/// The phone role (used by the emulator), modelled on a Cisco enterprise phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneConfig {
    pub mac: mac::Mac,
    /// Model number, e.g. "8845": platform "Cisco IP Phone 8845".
    pub model: String,
    pub software_version: String,
    /// Port ID the phone advertises.
    pub port_id: String,
    pub address: Option<Ipv4Addr>,
    pub cdp: bool,
    pub lldp: bool,
    /// CDP Power Consumption, mW.
    pub power_consumption_mw: u16,
    /// CDP Power Requested levels, mW, in order of preference.
    pub power_levels_mw: Vec<u32>,
    /// Request id of the power request (non-zero).
    pub power_request_id: u16,
    /// CDP interval once the voice VLAN is known.
    pub cdp_timer: Duration,
    /// Interval between CDP/LLDP sends while no switch has answered.
    pub retry: Duration,
    pub holdtime_secs: u8,
    /// Give up waiting for a voice VLAN after this long (reported as "none").
    pub vlan_timeout: Duration,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            mac: mac::Mac::new([0x00, 0x1b, 0x54, 0x00, 0x00, 0x01]),
            model: "8845".into(),
            software_version: "sip88xx.14-2-1-0001-14".into(),
            port_id: "Port 1".into(),
            address: None,
            cdp: true,
            lldp: true,
            power_consumption_mw: 6300,
            power_levels_mw: vec![6300, 0, 0, 0, 0],
            power_request_id: 1,
            cdp_timer: Duration::from_secs(60),
            retry: Duration::from_secs(2),
            holdtime_secs: 180,
            vlan_timeout: Duration::from_secs(30),
        }
    }
}
