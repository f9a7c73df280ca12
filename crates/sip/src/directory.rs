//! What the registrar needs from the device database, as a trait the lead adapts.

use std::collections::HashMap;
use std::sync::RwLock;

pub use mac::Mac;

/// One SIP line (directory number) of a provisioned phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipLine {
    /// Owning device, e.g. `SEP001B54AABBCC`.
    pub device: String,
    /// The directory number; also the AOR user part the phone registers.
    pub dn: String,
    /// Digest user name (the SEP file's `authName`).
    pub auth_user: String,
    /// Digest password (`authPassword`); `None` = no digest required for this line, as
    /// CUCM's non-secure profile without "Enable Digest Authentication".
    pub password: Option<String>,
}

/// A provisioned device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDevice {
    pub device: String,
    pub mac: Mac,
    pub model: Option<String>,
    /// Its line DNs, in button order.
    pub lines: Vec<String>,
}

/// What the registrar knows about an unknown phone asking to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRegisterRequest {
    pub mac: Mac,
    /// Model as announced in the Contact (`+u.sip!model.ccm.cisco.com`), if any.
    pub model: Option<String>,
    /// The AOR user the phone asked for (whatever its XMLDefault-booted config holds).
    pub requested_user: String,
}

/// The device database as seen by the registrar. Implementations must be cheap: `line` is
/// called for every REGISTER.
pub trait SipDirectory: Send + Sync {
    /// The line whose DN (AOR user part) is `user`.
    fn line(&self, user: &str) -> Option<SipLine>;
    /// A provisioned device by MAC.
    fn device_by_mac(&self, mac: Mac) -> Option<SipDevice>;
    /// Creates a device and DN for an unknown phone (auto-registration). `None` when
    /// auto-registration is off or the DN range is exhausted.
    fn auto_register(&self, req: &AutoRegisterRequest) -> Option<SipLine>;
    /// The line `user` as it appears on `device`: a shared line (one DN on several phones,
    /// CUCM's "shared line appearance") has one binding set per device. The default knows
    /// only the line's owner.
    fn line_on_device(&self, user: &str, device: &str) -> Option<SipLine> {
        self.line(user)
            .filter(|l| l.device.eq_ignore_ascii_case(device))
    }
    /// The longest registration this device is granted (its SIP profile's
    /// `timerRegisterExpires`, CUCM's 120 s by default); `None` = the registrar's own bound.
    fn register_interval(&self, _device: &str) -> Option<u32> {
        None
    }
}

/// In-memory directory for tests, tools and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    inner: RwLock<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    lines: HashMap<String, SipLine>,
    /// DN -> every device showing it (the owner first).
    appearances: HashMap<String, Vec<String>>,
    /// Device name (upper case) -> registration interval.
    intervals: HashMap<String, u32>,
    devices: HashMap<Mac, SipDevice>,
    /// Next DN and last DN for auto-registration; `None` = off.
    auto_range: Option<(u64, u64)>,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a device with its lines (`(dn, auth_user, password)`).
    pub fn add_device(
        &self,
        mac: Mac,
        model: Option<&str>,
        lines: &[(&str, &str, Option<&str>)],
    ) -> &Self {
        let device = mac.device_name();
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for (dn, user, pw) in lines {
            // A DN already on another device becomes a shared line: the first device keeps
            // owning its credentials, the new one appears on it.
            g.lines.entry((*dn).to_string()).or_insert_with(|| SipLine {
                device: device.clone(),
                dn: (*dn).to_string(),
                auth_user: (*user).to_string(),
                password: pw.map(str::to_string),
            });
            let apps = g.appearances.entry((*dn).to_string()).or_default();
            if !apps.iter().any(|d| d == &device) {
                apps.push(device.clone());
            }
        }
        g.devices.insert(
            mac,
            SipDevice {
                device,
                mac,
                model: model.map(str::to_string),
                lines: lines.iter().map(|(dn, _, _)| (*dn).to_string()).collect(),
            },
        );
        self
    }

    /// Adds a line without a device record (benchmarks: many AORs, one digest identity).
    pub fn add_line(&self, line: SipLine) {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        g.appearances
            .insert(line.dn.clone(), vec![line.device.to_ascii_uppercase()]);
        g.lines.insert(line.dn.clone(), line);
    }

    /// Grants this device registrations of at most `secs`.
    pub fn set_register_interval(&self, mac: Mac, secs: u32) {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        g.intervals.insert(mac.device_name(), secs);
    }

    /// Turns auto-registration on with DNs `first..=last`.
    pub fn enable_auto_register(&self, first: u64, last: u64) {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        g.auto_range = Some((first, last));
    }
}

impl SipDirectory for MemoryDirectory {
    fn line(&self, user: &str) -> Option<SipLine> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.lines.get(user).cloned()
    }

    fn device_by_mac(&self, mac: Mac) -> Option<SipDevice> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.devices.get(&mac).cloned()
    }

    fn line_on_device(&self, user: &str, device: &str) -> Option<SipLine> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let on = g
            .appearances
            .get(user)
            .is_some_and(|ds| ds.iter().any(|d| d.eq_ignore_ascii_case(device)));
        let line = g.lines.get(user).filter(|_| on)?;
        Some(SipLine {
            device: device.to_ascii_uppercase(),
            ..line.clone()
        })
    }

    fn register_interval(&self, device: &str) -> Option<u32> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.intervals.get(&device.to_ascii_uppercase()).copied()
    }

    fn auto_register(&self, req: &AutoRegisterRequest) -> Option<SipLine> {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = g.devices.get(&req.mac) {
            // Already created (a retransmission or a second line): reuse its first line.
            let dn = d.lines.first()?.clone();
            return g.lines.get(&dn).cloned();
        }
        let (next, last) = g.auto_range?;
        let dn = (next..=last).find(|n| !g.lines.contains_key(&n.to_string()))?;
        g.auto_range = Some((dn + 1, last));
        let device = req.mac.device_name();
        let line = SipLine {
            device: device.clone(),
            dn: dn.to_string(),
            auth_user: dn.to_string(),
            password: None,
        };
        g.lines.insert(line.dn.clone(), line.clone());
        g.appearances.insert(line.dn.clone(), vec![device.clone()]);
        g.devices.insert(
            req.mac,
            SipDevice {
                device,
                mac: req.mac,
                model: req.model.clone(),
                lines: vec![line.dn.clone()],
            },
        );
        Some(line)
    }
}
