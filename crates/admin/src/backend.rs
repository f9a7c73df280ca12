//! What the admin surfaces need from the rest of phoneboot, as one object-safe trait with
//! plain serde types, and an in-memory implementation for tests and demos.
//!
//! The lead implements [`AdminBackend`] over the device database, DHCP, TFTP and the call
//! manager services. Every write validates all its fields before it changes anything and
//! reports each bad field by name.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::SystemTime;

use journal::{Mac, ResetKind};
use serde::{Deserialize, Serialize};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `lines[0].dn`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a backend operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl BackendError {
    pub fn not_found(what: impl Into<String>) -> Self {
        BackendError::NotFound { what: what.into() }
    }
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        BackendError::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// Registration protocol a device is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceProtocol {
    #[default]
    Sccp,
    Sip,
}

/// A directory number on a device button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Button index, from 1.
    #[serde(default)]
    pub index: u8,
    /// Directory number (digits, `*`, `#`, `+`).
    pub dn: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub display_name: String,
    /// SIP digest user; defaults to the DN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_user: Option<String>,
    /// SIP digest password: write-only, never returned.
    #[serde(default, skip_serializing)]
    pub sip_password: Option<String>,
}

/// A phone as the operator edits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `SEP` + 12 hex digits. Derived from `mac` when omitted on create.
    #[serde(default)]
    pub name: String,
    pub mac: Option<Mac>,
    /// Model, e.g. `CP-7841`.
    pub model: String,
    #[serde(default)]
    pub protocol: DeviceProtocol,
    #[serde(default)]
    pub description: String,
    pub device_pool: String,
    /// Firmware load to hand out; empty for the model default.
    #[serde(default)]
    pub load: String,
    #[serde(default)]
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePool {
    pub name: String,
    pub cm_group: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub date_time_group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmNode {
    pub name: String,
    pub address: String,
    #[serde(default = "default_sccp_port")]
    pub sccp_port: u16,
    #[serde(default = "default_sip_port")]
    pub sip_port: u16,
}

fn default_sccp_port() -> u16 {
    2000
}
fn default_sip_port() -> u16 {
    5060
}

/// An ordered list of call-manager nodes (primary first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmGroup {
    pub name: String,
    pub nodes: Vec<CmNode>,
}

/// A configuration-file template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    /// What it produces, e.g. `SEP<MAC>.cnf.xml (SCCP)`.
    pub produces: String,
    pub source: String,
}

/// A firmware load known to the file server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    pub model: String,
    pub name: String,
    /// Is the file actually present on disk?
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRegistration {
    pub enabled: bool,
    pub protocol: DeviceProtocol,
    pub device_pool: String,
    /// First and last directory number handed to auto-registered phones.
    pub dn_first: String,
    pub dn_last: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    pub pool: String,
    pub expires: SystemTime,
    pub vendor_class: Option<String>,
    pub hostname: Option<String>,
}

/// A DHCP pool and how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUse {
    pub name: String,
    pub size: u32,
    pub used: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighbourProtocol {
    Cdp,
    Lldp,
}

/// A phone heard on a switch port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub mac: Mac,
    pub port: String,
    pub protocol: NeighbourProtocol,
    pub platform: Option<String>,
    pub voice_vlan: Option<u16>,
    pub power_mw: Option<u32>,
    pub last_seen: SystemTime,
}

/// A file a phone would be served, with its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneFile {
    pub name: String,
    pub content_type: String,
    pub content: String,
}

/// What a CSV import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
}

/// Everything the API and UI need. Implementations must be quick (they are called from
/// request handlers) and must leave state untouched when they return an error.
pub trait AdminBackend: Send + Sync {
    fn list_devices(&self) -> BackendResult<Vec<Device>>;
    fn get_device(&self, name: &str) -> BackendResult<Device>;
    /// Creates a device; fills `name` from `mac` (or `mac` from `name`) and line indexes.
    fn create_device(&self, device: Device) -> BackendResult<Device>;
    fn update_device(&self, name: &str, device: Device) -> BackendResult<Device>;
    fn delete_device(&self, name: &str) -> BackendResult<()>;

    fn list_pools(&self) -> BackendResult<Vec<DevicePool>>;
    fn put_pool(&self, pool: DevicePool) -> BackendResult<DevicePool>;
    fn delete_pool(&self, name: &str) -> BackendResult<()>;
    fn list_cm_groups(&self) -> BackendResult<Vec<CmGroup>>;
    fn put_cm_group(&self, group: CmGroup) -> BackendResult<CmGroup>;
    fn delete_cm_group(&self, name: &str) -> BackendResult<()>;
    fn list_templates(&self) -> BackendResult<Vec<Template>>;
    fn list_loads(&self) -> BackendResult<Vec<Load>>;
    fn auto_registration(&self) -> BackendResult<AutoRegistration>;
    fn set_auto_registration(&self, settings: AutoRegistration) -> BackendResult<AutoRegistration>;

    /// CSV with a header row; all rows are validated before any is applied.
    fn import_csv(&self, csv: &str) -> BackendResult<ImportReport>;
    fn export_csv(&self) -> BackendResult<String>;

    fn leases(&self) -> BackendResult<Vec<Lease>>;
    fn pool_use(&self) -> BackendResult<Vec<PoolUse>>;
    fn neighbours(&self) -> BackendResult<Vec<Neighbour>>;
    /// The files the named device would be served now (generated configuration and friends).
    fn files_for(&self, name: &str) -> BackendResult<Vec<PhoneFile>>;
    /// Sends a reset, restart or apply-config to a registered device.
    fn action(&self, name: &str, action: ResetKind) -> BackendResult<()>;
}

// ---------------------------------------------------------------------------------------------
// Validation shared by implementations.

/// Normalises and checks a device; returns every problem at once.
pub fn validate_device(d: &mut Device, pools: &[String]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (&d.mac, d.name.trim().is_empty()) {
        (Some(m), true) => d.name = m.device_name(),
        (Some(m), false) => {
            let n = d.name.trim().to_ascii_uppercase();
            if n.starts_with("SEP") && n != m.device_name() {
                errs.push(FieldError::new(
                    "name",
                    format!("{n} does not match mac {m} (expected {})", m.device_name()),
                ));
            }
            d.name = n;
        }
        (None, true) => errs.push(FieldError::new("mac", "give a MAC address or a SEP name")),
        (None, false) => {
            let n = d.name.trim().to_ascii_uppercase();
            match Mac::from_device_name(&n) {
                Ok(m) => d.mac = Some(m),
                Err(e) => errs.push(FieldError::new("name", e.to_string())),
            }
            d.name = n;
        }
    }
    d.model = d.model.trim().to_string();
    if d.model.is_empty() {
        errs.push(FieldError::new("model", "required, e.g. CP-7841"));
    } else if d.model.len() > 40
        || !d
            .model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        errs.push(FieldError::new(
            "model",
            "letters, digits and '-' only, at most 40 characters",
        ));
    }
    if d.description.len() > 128 {
        errs.push(FieldError::new("description", "at most 128 characters"));
    }
    if !pools.iter().any(|p| p == &d.device_pool) {
        errs.push(FieldError::new(
            "device_pool",
            format!("no device pool named {:?}", d.device_pool),
        ));
    }
    if d.load.len() > 64 || d.load.contains(['/', '\\']) {
        errs.push(FieldError::new(
            "load",
            "a load name, at most 64 characters, no '/'",
        ));
    }
    if d.lines.len() > 16 {
        errs.push(FieldError::new("lines", "at most 16 lines"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, l) in d.lines.iter_mut().enumerate() {
        if l.index == 0 {
            l.index = (i + 1) as u8;
        }
        l.dn = l.dn.trim().to_string();
        if l.dn.is_empty() {
            errs.push(FieldError::new(format!("lines[{i}].dn"), "required"));
        } else if l.dn.len() > 24
            || !l
                .dn
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
        {
            errs.push(FieldError::new(
                format!("lines[{i}].dn"),
                "digits, '*', '#' and '+' only, at most 24",
            ));
        }
        if !seen.insert(l.index) {
            errs.push(FieldError::new(
                format!("lines[{i}].index"),
                format!("button {} is used twice", l.index),
            ));
        }
        if l.label.len() > 40 {
            errs.push(FieldError::new(
                format!("lines[{i}].label"),
                "at most 40 characters",
            ));
        }
        if l.display_name.len() > 40 {
            errs.push(FieldError::new(
                format!("lines[{i}].display_name"),
                "at most 40 characters",
            ));
        }
        if l.sip_password.as_ref().is_some_and(|p| p.len() > 128) {
            errs.push(FieldError::new(
                format!("lines[{i}].sip_password"),
                "at most 128 characters",
            ));
        }
    }
    errs
}

fn check_name(field: &str, v: &str) -> Option<FieldError> {
    if v.is_empty()
        || v.len() > 50
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_ .".contains(c))
    {
        Some(FieldError::new(
            field,
            "1 to 50 letters, digits, spaces, '-', '_' or '.'",
        ))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory implementation.

#[derive(Debug, Default)]
struct Mem {
    devices: BTreeMap<String, Device>,
    pools: BTreeMap<String, DevicePool>,
    groups: BTreeMap<String, CmGroup>,
    autoreg: Option<AutoRegistration>,
    leases: Vec<Lease>,
    neighbours: Vec<Neighbour>,
    actions: Vec<(String, ResetKind)>,
}

/// An [`AdminBackend`] that keeps everything in memory: for tests, demos and the browser test.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    inner: Mutex<Mem>,
}

const CSV_HEADER: &str =
    "name,mac,model,protocol,device_pool,description,line1_dn,line1_label,line2_dn,line2_label";

impl MemoryBackend {
    /// An empty database with one call-manager group and a `Default` device pool.
    pub fn new() -> Self {
        let b = MemoryBackend::default();
        {
            let mut m = b.lock();
            m.groups.insert(
                "Default".into(),
                CmGroup {
                    name: "Default".into(),
                    nodes: vec![CmNode {
                        name: "cm1".into(),
                        address: "198.18.0.1".into(),
                        sccp_port: 2000,
                        sip_port: 5060,
                    }],
                },
            );
            m.pools.insert(
                "Default".into(),
                DevicePool {
                    name: "Default".into(),
                    cm_group: "Default".into(),
                    region: "Default".into(),
                    date_time_group: "UTC".into(),
                },
            );
            m.autoreg = Some(AutoRegistration {
                enabled: false,
                protocol: DeviceProtocol::Sccp,
                device_pool: "Default".into(),
                dn_first: "2000".into(),
                dn_last: "2999".into(),
            });
        }
        b
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Test hooks: what the DHCP and discovery services would report.
    pub fn add_lease(&self, lease: Lease) {
        self.lock().leases.push(lease);
    }
    pub fn add_neighbour(&self, n: Neighbour) {
        self.lock().neighbours.push(n);
    }
    /// The actions sent so far, oldest first.
    pub fn actions(&self) -> Vec<(String, ResetKind)> {
        self.lock().actions.clone()
    }

    fn pool_names(m: &Mem) -> Vec<String> {
        m.pools.keys().cloned().collect()
    }

    fn validated(m: &Mem, mut d: Device) -> BackendResult<Device> {
        let errs = validate_device(&mut d, &Self::pool_names(m));
        if errs.is_empty() {
            Ok(d)
        } else {
            Err(BackendError::Invalid(errs))
        }
    }

    fn parse_csv(m: &Mem, text: &str) -> BackendResult<Vec<Device>> {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| BackendError::field("csv", format!("header row: {e}")))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let mut out = Vec::new();
        let mut errs = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let row = i + 2;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    errs.push(FieldError::new(format!("csv.row[{row}]"), e.to_string()));
                    continue;
                }
            };
            let get = |name: &str| col(name).and_then(|c| rec.get(c)).unwrap_or("").to_string();
            let mac = get("mac");
            let mut d = Device {
                name: get("name"),
                mac: None,
                model: get("model"),
                protocol: if get("protocol").eq_ignore_ascii_case("sip") {
                    DeviceProtocol::Sip
                } else {
                    DeviceProtocol::Sccp
                },
                description: get("description"),
                device_pool: {
                    let p = get("device_pool");
                    if p.is_empty() {
                        "Default".into()
                    } else {
                        p
                    }
                },
                load: get("load"),
                lines: vec![],
            };
            if !mac.is_empty() {
                match mac.parse::<Mac>() {
                    Ok(m) => d.mac = Some(m),
                    Err(e) => errs.push(FieldError::new(
                        format!("csv.row[{row}].mac"),
                        e.to_string(),
                    )),
                }
            }
            for n in 1..=16 {
                let dn = get(&format!("line{n}_dn"));
                if !dn.is_empty() {
                    d.lines.push(Line {
                        index: n,
                        dn,
                        label: get(&format!("line{n}_label")),
                        ..Line::default()
                    });
                }
            }
            for e in validate_device(&mut d, &Self::pool_names(m)) {
                errs.push(FieldError::new(
                    format!("csv.row[{row}].{}", e.field),
                    e.message,
                ));
            }
            out.push(d);
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(BackendError::Invalid(errs))
        }
    }
}

impl AdminBackend for MemoryBackend {
    fn list_devices(&self) -> BackendResult<Vec<Device>> {
        Ok(self.lock().devices.values().cloned().collect())
    }

    fn get_device(&self, name: &str) -> BackendResult<Device> {
        let key = name.to_ascii_uppercase();
        self.lock()
            .devices
            .get(&key)
            .cloned()
            .ok_or_else(|| BackendError::not_found(format!("device {key}")))
    }

    fn create_device(&self, device: Device) -> BackendResult<Device> {
        let mut m = self.lock();
        let d = Self::validated(&m, device)?;
        if m.devices.contains_key(&d.name) {
            return Err(BackendError::Conflict {
                field: "name".into(),
                message: format!("{} already exists", d.name),
            });
        }
        m.devices.insert(d.name.clone(), d.clone());
        Ok(d)
    }

    fn update_device(&self, name: &str, device: Device) -> BackendResult<Device> {
        let key = name.to_ascii_uppercase();
        let mut m = self.lock();
        let Some(old) = m.devices.get(&key).cloned() else {
            return Err(BackendError::not_found(format!("device {key}")));
        };
        let mut device = device;
        if device.name.is_empty() {
            device.name = key.clone();
        }
        // Keep SIP passwords the client did not resend (they are never returned).
        for l in device.lines.iter_mut() {
            if l.sip_password.is_none() {
                l.sip_password = old
                    .lines
                    .iter()
                    .find(|o| o.dn == l.dn)
                    .and_then(|o| o.sip_password.clone());
            }
        }
        let d = Self::validated(&m, device)?;
        if d.name != key {
            return Err(BackendError::field(
                "name",
                "a device cannot be renamed; delete and add it",
            ));
        }
        m.devices.insert(key, d.clone());
        Ok(d)
    }

    fn delete_device(&self, name: &str) -> BackendResult<()> {
        let key = name.to_ascii_uppercase();
        match self.lock().devices.remove(&key) {
            Some(_) => Ok(()),
            None => Err(BackendError::not_found(format!("device {key}"))),
        }
    }

    fn list_pools(&self) -> BackendResult<Vec<DevicePool>> {
        Ok(self.lock().pools.values().cloned().collect())
    }

    fn put_pool(&self, pool: DevicePool) -> BackendResult<DevicePool> {
        let mut m = self.lock();
        let mut errs: Vec<FieldError> = check_name("name", &pool.name).into_iter().collect();
        if !m.groups.contains_key(&pool.cm_group) {
            errs.push(FieldError::new(
                "cm_group",
                format!("no CallManager group named {:?}", pool.cm_group),
            ));
        }
        if !errs.is_empty() {
            return Err(BackendError::Invalid(errs));
        }
        m.pools.insert(pool.name.clone(), pool.clone());
        Ok(pool)
    }

    fn delete_pool(&self, name: &str) -> BackendResult<()> {
        let mut m = self.lock();
        if m.devices.values().any(|d| d.device_pool == name) {
            return Err(BackendError::Conflict {
                field: "name".into(),
                message: format!("device pool {name} is used by devices"),
            });
        }
        m.pools
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found(format!("device pool {name}")))
    }

    fn list_cm_groups(&self) -> BackendResult<Vec<CmGroup>> {
        Ok(self.lock().groups.values().cloned().collect())
    }

    fn put_cm_group(&self, group: CmGroup) -> BackendResult<CmGroup> {
        let mut errs: Vec<FieldError> = check_name("name", &group.name).into_iter().collect();
        if group.nodes.is_empty() || group.nodes.len() > 3 {
            errs.push(FieldError::new(
                "nodes",
                "one to three nodes, primary first",
            ));
        }
        for (i, n) in group.nodes.iter().enumerate() {
            if let Some(e) = check_name(&format!("nodes[{i}].name"), &n.name) {
                errs.push(e);
            }
            if n.address.parse::<std::net::IpAddr>().is_err()
                && (n.address.is_empty()
                    || !n
                        .address
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            {
                errs.push(FieldError::new(
                    format!("nodes[{i}].address"),
                    "an IP address or host name",
                ));
            }
            if n.sccp_port == 0 {
                errs.push(FieldError::new(
                    format!("nodes[{i}].sccp_port"),
                    "1 to 65535",
                ));
            }
            if n.sip_port == 0 {
                errs.push(FieldError::new(
                    format!("nodes[{i}].sip_port"),
                    "1 to 65535",
                ));
            }
        }
        if !errs.is_empty() {
            return Err(BackendError::Invalid(errs));
        }
        self.lock().groups.insert(group.name.clone(), group.clone());
        Ok(group)
    }

    fn delete_cm_group(&self, name: &str) -> BackendResult<()> {
        let mut m = self.lock();
        if m.pools.values().any(|p| p.cm_group == name) {
            return Err(BackendError::Conflict {
                field: "name".into(),
                message: format!("CallManager group {name} is used by device pools"),
            });
        }
        m.groups
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found(format!("CallManager group {name}")))
    }

    fn list_templates(&self) -> BackendResult<Vec<Template>> {
        Ok(vec![Template {
            name: "sccp-device".into(),
            produces: "SEP<MAC>.cnf.xml (SCCP)".into(),
            source: "<device>…</device>".into(),
        }])
    }

    fn list_loads(&self) -> BackendResult<Vec<Load>> {
        Ok(vec![Load {
            model: "CP-7841".into(),
            name: "sip78xx.14-1-1SR2-2".into(),
            present: false,
        }])
    }

    fn auto_registration(&self) -> BackendResult<AutoRegistration> {
        self.lock()
            .autoreg
            .clone()
            .ok_or_else(|| BackendError::not_found("auto-registration settings"))
    }

    fn set_auto_registration(&self, s: AutoRegistration) -> BackendResult<AutoRegistration> {
        let mut m = self.lock();
        let mut errs = Vec::new();
        if !m.pools.contains_key(&s.device_pool) {
            errs.push(FieldError::new(
                "device_pool",
                format!("no device pool named {:?}", s.device_pool),
            ));
        }
        let first = s.dn_first.parse::<u64>();
        let last = s.dn_last.parse::<u64>();
        if first.is_err() || s.dn_first.len() > 24 {
            errs.push(FieldError::new("dn_first", "digits only"));
        }
        if last.is_err() || s.dn_last.len() > 24 {
            errs.push(FieldError::new("dn_last", "digits only"));
        }
        if let (Ok(a), Ok(b)) = (first, last) {
            if b < a {
                errs.push(FieldError::new("dn_last", "must not be below dn_first"));
            }
        }
        if !errs.is_empty() {
            return Err(BackendError::Invalid(errs));
        }
        m.autoreg = Some(s.clone());
        Ok(s)
    }

    fn import_csv(&self, csv: &str) -> BackendResult<ImportReport> {
        let mut m = self.lock();
        let devices = Self::parse_csv(&m, csv)?;
        let mut report = ImportReport::default();
        for d in devices {
            if m.devices.insert(d.name.clone(), d).is_some() {
                report.updated += 1;
            } else {
                report.created += 1;
            }
        }
        Ok(report)
    }

    fn export_csv(&self) -> BackendResult<String> {
        let m = self.lock();
        let mut w = csv::Writer::from_writer(Vec::new());
        let header: Vec<&str> = CSV_HEADER.split(',').collect();
        let fail = |e: csv::Error| BackendError::Unavailable(e.to_string());
        w.write_record(&header).map_err(fail)?;
        for d in m.devices.values() {
            let line = |i: usize| d.lines.get(i);
            w.write_record([
                d.name.as_str(),
                &d.mac.map(|m| m.to_string()).unwrap_or_default(),
                &d.model,
                match d.protocol {
                    DeviceProtocol::Sccp => "sccp",
                    DeviceProtocol::Sip => "sip",
                },
                &d.device_pool,
                &d.description,
                line(0).map(|l| l.dn.as_str()).unwrap_or(""),
                line(0).map(|l| l.label.as_str()).unwrap_or(""),
                line(1).map(|l| l.dn.as_str()).unwrap_or(""),
                line(1).map(|l| l.label.as_str()).unwrap_or(""),
            ])
            .map_err(fail)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    fn leases(&self) -> BackendResult<Vec<Lease>> {
        Ok(self.lock().leases.clone())
    }

    fn pool_use(&self) -> BackendResult<Vec<PoolUse>> {
        let used = self.lock().leases.len() as u32;
        Ok(vec![PoolUse {
            name: "voice".into(),
            size: 200,
            used,
        }])
    }

    fn neighbours(&self) -> BackendResult<Vec<Neighbour>> {
        Ok(self.lock().neighbours.clone())
    }

    fn files_for(&self, name: &str) -> BackendResult<Vec<PhoneFile>> {
        let d = self.get_device(name)?;
        let m = self.lock();
        let pool = m.pools.get(&d.device_pool);
        let group = pool.and_then(|p| m.groups.get(&p.cm_group));
        let mut xml =
            String::from("<device>\n  <devicePool>\n    <callManagerGroup>\n      <members>\n");
        for (i, n) in group
            .map(|g| g.nodes.as_slice())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            xml.push_str(&format!(
                "        <member priority=\"{i}\"><callManager><name>{}</name><ports><ethernetPhonePort>{}</ethernetPhonePort><sipPort>{}</sipPort></ports><processNodeName>{}</processNodeName></callManager></member>\n",
                n.name, n.sccp_port, n.sip_port, n.address
            ));
        }
        xml.push_str("      </members>\n    </callManagerGroup>\n  </devicePool>\n");
        if !d.load.is_empty() {
            xml.push_str(&format!(
                "  <loadInformation>{}</loadInformation>\n",
                d.load
            ));
        }
        xml.push_str("</device>\n");
        Ok(vec![PhoneFile {
            name: format!("{}.cnf.xml", d.name),
            content_type: "application/xml".into(),
            content: xml,
        }])
    }

    fn action(&self, name: &str, action: ResetKind) -> BackendResult<()> {
        let d = self.get_device(name)?;
        self.lock().actions.push((d.name, action));
        Ok(())
    }
}
