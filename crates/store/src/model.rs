//! The device model, in CUCM's nouns: devices, lines (directory numbers), device pools,
//! CallManager groups of ordered nodes, date/time groups, loads, URLs, auto-registration.
//!
//! Optional text is an empty string rather than `Option`, the way CUCM shows "< None >":
//! it keeps SQL portable (no NULL comparisons) and the CSV round trip exact.

pub use cnf::{DialRule, Protocol, Ring};
pub use mac::Mac;
use serde::{Deserialize, Serialize};

/// One phone, keyed by its `SEP<MAC>` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `SEP` + 12 upper-case hex digits.
    pub name: String,
    pub mac: Mac,
    /// Canonical model name from the catalogue, e.g. `Cisco 7965`.
    pub model: String,
    pub protocol: Protocol,
    pub description: String,
    pub device_pool: String,
    pub button_template: String,
    pub softkey_template: String,
    /// Owner user id (BAT `USER ID`), empty when none.
    pub owner: String,
    /// 1 non-secure, 2 authenticated, 3 encrypted.
    pub security_mode: u8,
    /// Firmware load for this device only; empty = the model's default.
    pub load_override: String,
    /// Line appearances in button order (index 0 = line 1).
    pub lines: Vec<LineAppearance>,
    /// Speed dials in order (index 0 = speed dial 1).
    pub speed_dials: Vec<SpeedDial>,
    /// Bumped on every change; lets an editor detect that someone else changed the device.
    pub revision: u64,
}

/// A directory number placed on a device. Empty label/display inherit from the line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineAppearance {
    pub dn: String,
    pub label: String,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpeedDial {
    pub number: String,
    pub label: String,
}

/// A directory number, shared by every device it appears on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    pub dn: String,
    /// Default line text label.
    pub label: String,
    /// Default caller-id display name.
    pub display_name: String,
    /// SIP digest user; empty = the DN.
    pub auth_user: String,
    pub auth_password: String,
    /// Voicemail pilot number for the messages key.
    pub voicemail: String,
}

/// What a new device needs; the rest defaults (templates, security mode 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// `SEP<MAC>` or a MAC in any notation.
    pub name: String,
    /// Any spelling the catalogue knows (`Cisco 7965`, `CP-7965G`, `7965`).
    pub model: String,
    pub protocol: Protocol,
    pub description: String,
    pub device_pool: String,
    pub button_template: String,
    pub softkey_template: String,
    pub owner: String,
    pub security_mode: u8,
    pub load_override: String,
    pub lines: Vec<LineAppearance>,
    pub speed_dials: Vec<SpeedDial>,
}

impl NewDevice {
    /// A device with default templates, pool `Default`, no lines.
    pub fn new(name: &str, model: &str, protocol: Protocol) -> Self {
        NewDevice {
            name: name.to_string(),
            model: model.to_string(),
            protocol,
            description: String::new(),
            device_pool: DEFAULT_POOL.to_string(),
            button_template: "Standard".to_string(),
            softkey_template: "Standard User".to_string(),
            owner: String::new(),
            security_mode: 1,
            load_override: String::new(),
            lines: Vec::new(),
            speed_dials: Vec::new(),
        }
    }
}

/// A change to a device; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevicePatch {
    pub model: Option<String>,
    pub protocol: Option<Protocol>,
    pub description: Option<String>,
    pub device_pool: Option<String>,
    pub button_template: Option<String>,
    pub softkey_template: Option<String>,
    pub owner: Option<String>,
    pub security_mode: Option<u8>,
    pub load_override: Option<String>,
    /// Replaces all line appearances.
    pub lines: Option<Vec<LineAppearance>>,
    /// Appends one appearance (applied after `lines`).
    pub add_line: Option<LineAppearance>,
    /// Removes the appearance of this DN.
    pub remove_line: Option<String>,
    /// Replaces all speed dials.
    pub speed_dials: Option<Vec<SpeedDial>>,
    /// Appends one speed dial (applied after `speed_dials`).
    pub add_speed_dial: Option<SpeedDial>,
    /// When set, the edit fails with `Conflict` unless the device is at this revision.
    pub expected_revision: Option<u64>,
}

/// A change to a line; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinePatch {
    pub label: Option<String>,
    pub display_name: Option<String>,
    pub auth_user: Option<String>,
    pub auth_password: Option<String>,
    pub voicemail: Option<String>,
}

/// A call-control node (one phoneboot instance, or any SCCP/SIP call manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmNode {
    pub name: String,
    /// Host name or address phones connect to.
    pub host: String,
    pub description: String,
    pub sccp_port: u16,
    pub sip_port: u16,
    pub sccp_tls_port: u16,
    pub sip_tls_port: u16,
}

impl CmNode {
    /// A node with the standard ports (2000/5060/2443/5061).
    pub fn new(name: &str, host: &str) -> Self {
        CmNode {
            name: name.to_string(),
            host: host.to_string(),
            description: String::new(),
            sccp_port: 2000,
            sip_port: 5060,
            sccp_tls_port: 2443,
            sip_tls_port: 5061,
        }
    }
}

/// An ordered list of nodes; phones try `members[0]` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmGroup {
    pub name: String,
    pub tftp_default: bool,
    /// Node names in priority order (at most 5: phones accept priorities 0..4).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeGroup {
    pub name: String,
    pub date_template: String,
    pub time_zone: String,
    pub ntp_servers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePool {
    pub name: String,
    pub cm_group: String,
    pub date_time_group: String,
    pub user_locale: String,
    pub network_locale: String,
    pub connection_monitor_duration: u32,
    /// Longest SIP registration granted to the pool's phones, seconds (CUCM's "SIP Station
    /// KeepAlive Interval": [`DEFAULT_SIP_REGISTER_INTERVAL`]).
    pub sip_register_interval: u32,
}

/// CUCM's default SIP station keepalive interval: a phone re-registers every 120 s, so one
/// that died leaves the registration table within two minutes.
pub const DEFAULT_SIP_REGISTER_INTERVAL: u32 = 120;

/// The default load of a model for a protocol ("Device Defaults").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLoad {
    pub model: String,
    pub protocol: Protocol,
    pub load: String,
}

/// One image of a firmware load as the library holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareImage {
    /// `[PLATFORM_n]` section of 78xx/88xx manifests, "" otherwise.
    pub platform: String,
    pub name: String,
    /// Bytes on disk; `None` = missing.
    pub size: Option<u64>,
    /// Size the manifest declares (792x manifests), if any.
    pub declared_size: Option<u64>,
    /// Parts a phone may skip (`#+` lines).
    pub optional: bool,
}

/// A firmware load in the library (one `.loads` manifest), as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareLoad {
    /// What `loadInformation` names (the manifest without `.loads`).
    pub name: String,
    /// `SCCP`, `SIP` or "" when neither the name nor the images tell.
    pub protocol: String,
    /// Catalogue model numbers (`7965`).
    pub models: Vec<String>,
    pub manifest_file: String,
    /// Every image present with its declared size.
    pub complete: bool,
    pub images: Vec<FirmwareImage>,
    /// Package it came from and that package's signer (COPs), the manifest's signer.
    pub package: String,
    pub signer: String,
    /// The signed headers' details (hash, serial, issuer, file names), JSON.
    pub header: String,
    /// Unix seconds.
    pub imported_at: i64,
}

impl FirmwareLoad {
    /// Images that keep the load from being complete.
    pub fn missing(&self) -> Vec<&str> {
        self.images
            .iter()
            .filter(|i| {
                !i.optional
                    && match (i.size, i.declared_size) {
                        (Some(s), Some(d)) => s != d,
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
            })
            .map(|i| i.name.as_str())
            .collect()
    }
}

/// Cluster-wide settings: URLs, logins, auto-registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub authentication_url: String,
    pub directory_url: String,
    pub idle_url: String,
    pub information_url: String,
    pub messages_url: String,
    pub proxy_server_url: String,
    pub services_url: String,
    pub idle_timeout: u32,
    pub ssh_user: String,
    pub ssh_password: String,
    pub phone_password: String,
    pub autoreg_enabled: bool,
    /// First and last DN handed out by auto-registration (inclusive, numeric).
    pub autoreg_dn_start: String,
    pub autoreg_dn_end: String,
    pub autoreg_pool: String,
    /// `SCCP` or `SIP` for dual-protocol models.
    pub autoreg_protocol: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            authentication_url: String::new(),
            directory_url: String::new(),
            idle_url: String::new(),
            information_url: String::new(),
            messages_url: String::new(),
            proxy_server_url: String::new(),
            services_url: String::new(),
            idle_timeout: 0,
            ssh_user: String::new(),
            ssh_password: String::new(),
            phone_password: String::new(),
            autoreg_enabled: false,
            autoreg_dn_start: String::new(),
            autoreg_dn_end: String::new(),
            autoreg_pool: DEFAULT_POOL.to_string(),
            autoreg_protocol: "SCCP".to_string(),
        }
    }
}

/// A range of directory numbers administrators may assign (inclusive, numeric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnRange {
    pub start: String,
    pub end: String,
}

/// The pool, group and date/time group every new database has, like CUCM's `Default`.
pub const DEFAULT_POOL: &str = "Default";
pub const DEFAULT_GROUP: &str = "Default";
pub const DEFAULT_DATETIME: &str = "CMLocal";

/// Everything in the database at one instant, for building all files at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub devices: Vec<Device>,
    pub lines: Vec<Line>,
    pub pools: Vec<DevicePool>,
    pub groups: Vec<CmGroup>,
    pub nodes: Vec<CmNode>,
    pub date_time_groups: Vec<DateTimeGroup>,
    pub model_loads: Vec<ModelLoad>,
    pub settings: Settings,
    pub dial_rules: Vec<DialRule>,
    pub rings: Vec<Ring>,
    pub dn_ranges: Vec<DnRange>,
    /// Firmware loads in the library (import records).
    pub firmware: Vec<FirmwareLoad>,
}
