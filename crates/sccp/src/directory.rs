//! What the server needs to know about a device, and the trait through which it asks the
//! device database (the lead's adapter implements it; [`MemoryDirectory`] serves tests).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// One line appearance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SccpLine {
    /// Directory number, e.g. "1001".
    pub dn: String,
    /// Text next to the line key.
    pub label: String,
    /// Caller-id / fully qualified display name.
    pub display: String,
}

/// One speed-dial key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpeedDial {
    pub number: String,
    pub label: String,
}

/// One CallManager of the device's group, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallManager {
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// A provisioned SCCP device as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SccpDevice {
    /// `SEP` + 12 hex digits.
    pub name: String,
    /// Register.deviceType of the model (e.g. 7 = 7960, 115 = 7941).
    pub device_type: u32,
    pub model: String,
    pub lines: Vec<SccpLine>,
    pub speed_dials: Vec<SpeedDial>,
    /// Overrides the server's keepalive interval.
    pub keepalive_secs: Option<u32>,
    /// The device's CallManager group, highest priority first.
    pub call_managers: Vec<CallManager>,
    /// RegisterAck date template, e.g. "M/D/Y" or "D.M.Y".
    pub date_format: String,
    /// Offset of the phone's time zone from UTC, seconds.
    pub tz_offset_secs: i32,
    /// ConfigStat user name.
    pub user_name: String,
    /// Forward-all target of line 1, if set.
    pub forward_all: Option<String>,
    /// Firmware load name answered to VersionReq.
    pub firmware: String,
}

/// Why auto-registration did not create a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoRegisterError {
    #[error("auto-registration is disabled")]
    Disabled,
    #[error("no free directory number left in the auto-registration range")]
    RangeExhausted,
    #[error("device model {0} cannot be auto-registered")]
    UnsupportedModel(u32),
    #[error("database: {0}")]
    Store(String),
}

/// The device database as the SCCP server consumes it. Calls are synchronous and must be
/// quick (an index lookup); they run on the session's task.
pub trait SccpDirectory: Send + Sync {
    /// The provisioned device of that name (`SEP…`, case-insensitive), if any.
    fn device(&self, name: &str) -> Option<SccpDevice>;
    /// Creates an unknown device like CUCM auto-registration does (next free DN of the
    /// range, files built) and returns it; `Disabled` when auto-registration is off.
    fn auto_register(&self, name: &str, device_type: u32) -> Result<SccpDevice, AutoRegisterError>;
    /// May `device` register from `peer` now? Asked after the lease check and before the
    /// device is looked up or auto-registered; `Err(reason)` rejects with that text (e.g. the
    /// device is registered and alive from another address). Default: yes.
    fn admit(&self, device: &str, peer: std::net::IpAddr) -> Result<(), String> {
        let _ = (device, peer);
        Ok(())
    }
}

/// In-memory directory for tests, benchmarks and the emulator's own lab.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    inner: Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    devices: HashMap<String, SccpDevice>,
    auto: Option<(u32, u32)>,
    template: SccpDevice,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a device.
    pub fn insert(&self, dev: SccpDevice) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.devices.insert(dev.name.to_ascii_uppercase(), dev);
    }

    /// Turns auto-registration on with DNs `first..=last`; new devices copy `template`
    /// (CallManager group, keepalive, date format) and get one line.
    pub fn enable_auto_register(&self, first: u32, last: u32, template: SccpDevice) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.auto = Some((first, last));
        g.template = template;
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .devices
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SccpDirectory for MemoryDirectory {
    fn device(&self, name: &str) -> Option<SccpDevice> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.devices.get(&name.to_ascii_uppercase()).cloned()
    }

    fn auto_register(&self, name: &str, device_type: u32) -> Result<SccpDevice, AutoRegisterError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (first, last) = g.auto.ok_or(AutoRegisterError::Disabled)?;
        let used: std::collections::HashSet<&str> = g
            .devices
            .values()
            .flat_map(|d| d.lines.iter().map(|l| l.dn.as_str()))
            .collect();
        let dn = (first..=last)
            .map(|n| n.to_string())
            .find(|n| !used.contains(n.as_str()))
            .ok_or(AutoRegisterError::RangeExhausted)?;
        let mut dev = g.template.clone();
        dev.name = name.to_ascii_uppercase();
        dev.device_type = device_type;
        dev.lines = vec![SccpLine {
            dn: dn.clone(),
            label: dn.clone(),
            display: format!("Auto {dn}"),
        }];
        g.devices.insert(dev.name.clone(), dev.clone());
        Ok(dev)
    }
}
