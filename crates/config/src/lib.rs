//! phoneboot's configuration: one TOML file.
//!
//! Reading is two-layered (as dora does): each section is deserialized into a raw struct that
//! mirrors the file ([`raw`]), then converted into validated types ([`Config`]): a [`VlanId`]
//! is 1..=4094, a pool's range lies inside its subnet, the CallManager list is non-empty and
//! ordered. Every problem is collected, each with its field path and what was expected, so
//! `phoneboot config check` can report them all at once.

pub mod raw;
mod types;

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
pub use types::{Ipv4Net, NonEmpty, VlanId};

/// An annotated example configuration, kept in the repository and tested to be valid.
pub const EXAMPLE: &str = include_str!("../../../phoneboot.example.toml");

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, e.g. `dhcp.pool[0].range[1]`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} error(s) in the configuration:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// The validated configuration of one phoneboot node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub node: Node,
    pub database: Database,
    pub admin: Admin,
    pub discovery: Discovery,
    pub dhcp: Dhcp,
    pub files: Files,
    pub sccp: Sccp,
    pub sip: Sip,
    pub autoregistration: AutoRegistration,
    /// The default CallManager group, in order of preference (seeded into the database).
    pub callmanagers: NonEmpty<CallManager>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    pub address: Ipv4Addr,
    pub database: PathBuf,
    pub tftp_root: Option<PathBuf>,
}

/// `[database]`: without a URL the node keeps everything in its SQLite file
/// (`node.database`); with one, the shared state of a cluster lives in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Database {
    /// A PostgreSQL connection string; may hold a password, so it is never shown.
    #[serde(skip)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admin {
    pub listen: SocketAddr,
    #[serde(skip)]
    pub initial_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoveryInterface {
    pub name: String,
    pub netns: Option<String>,
    pub enabled: bool,
    pub voice_vlan: VlanId,
    pub native_vlan: VlanId,
    pub max_power_mw: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovery {
    pub run: bool,
    pub lldp: bool,
    pub timer_secs: u8,
    pub holdtime_secs: u8,
    pub power_budget_mw: u32,
    pub max_neighbours_per_port: usize,
    pub interfaces: Vec<DiscoveryInterface>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpPool {
    pub name: String,
    pub interface: Option<String>,
    pub vlan: Option<VlanId>,
    pub subnet: Ipv4Net,
    pub range: (Ipv4Addr, Ipv4Addr),
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub ntp: Vec<Ipv4Addr>,
    pub time_offset: Option<i32>,
    pub lease_secs: u32,
    /// Option 150, in order.
    pub tftp_servers: NonEmpty<Ipv4Addr>,
    pub tftp_server_name: Option<String>,
    pub vendor_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dhcp {
    pub enabled: bool,
    pub listen_port: u16,
    /// Per-MAC token bucket: packets at once, then per second.
    pub rate_limit_burst: u32,
    pub rate_limit_per_sec: u32,
    pub pools: Vec<DhcpPool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Files {
    pub enabled: bool,
    pub tftp_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub max_transfers: u32,
    pub secure_cluster: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sccp {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub keepalive_secs: u32,
    pub require_lease: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sip {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub realm: String,
    pub min_expires: u32,
    pub max_expires: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoRegistration {
    pub enabled: bool,
    pub dn_first: String,
    pub dn_last: String,
    pub device_pool: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallManager {
    pub host: String,
    pub sccp_port: u16,
    pub sip_port: u16,
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(ConfigError::Invalid)
    }

    /// Parses and validates TOML text, returning every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<FieldError>> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            vec![FieldError {
                path: "(file)".into(),
                message: format!("not valid TOML: {}", e.message()),
            }]
        })?;
        let mut v = Validator::default();
        const SECTIONS: [&str; 10] = [
            "node",
            "database",
            "admin",
            "discovery",
            "dhcp",
            "files",
            "sccp",
            "sip",
            "autoregistration",
            "callmanager",
        ];
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                v.err(
                    key,
                    format!("unknown section; expected one of {SECTIONS:?}"),
                );
            }
        }
        let node: raw::Node = v.section(&table, "node");
        let database: raw::Database = v.section(&table, "database");
        let admin: raw::Admin = v.section(&table, "admin");
        let discovery: raw::Discovery = v.section(&table, "discovery");
        let dhcp: raw::Dhcp = v.section(&table, "dhcp");
        let files: raw::Files = v.section(&table, "files");
        let sccp: raw::Sccp = v.section(&table, "sccp");
        let sip: raw::Sip = v.section(&table, "sip");
        let autoreg: raw::AutoRegistration = v.section(&table, "autoregistration");
        let cms: Vec<raw::CallManager> = v.section(&table, "callmanager");

        let node = v.node(node);
        let callmanagers = v.callmanagers(cms, node.address);
        let cfg = Config {
            database: v.database(database),
            admin: v.admin(admin),
            discovery: v.discovery(discovery),
            dhcp: v.dhcp(dhcp, &callmanagers),
            files: v.files(files),
            sccp: v.sccp(sccp),
            sip: v.sip(sip),
            autoregistration: v.autoreg(autoreg),
            callmanagers: NonEmpty::new(callmanagers).unwrap_or_else(|| {
                NonEmpty::single(CallManager {
                    host: node.address.to_string(),
                    sccp_port: 2000,
                    sip_port: 5060,
                })
            }),
            node,
        };
        if v.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(v.errors)
        }
    }
}

/// Collects errors while converting raw sections into validated ones.
#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn section<T: DeserializeOwned + Default>(&mut self, table: &toml::Table, name: &str) -> T {
        match table.get(name) {
            None => T::default(),
            Some(value) => match value.clone().try_into::<T>() {
                Ok(t) => t,
                Err(e) => {
                    self.err(name, e.message().to_string());
                    T::default()
                }
            },
        }
    }

    fn ip(&mut self, path: &str, s: &str) -> Option<Ipv4Addr> {
        match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(path, format!("expected an IPv4 address, found {s:?}"));
                None
            }
        }
    }

    fn sock(&mut self, path: &str, s: Option<String>, default: &str) -> SocketAddr {
        let text = s.unwrap_or_else(|| default.to_string());
        match text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.err(
                    path,
                    format!("expected ADDRESS:PORT (e.g. {default}), found {text:?}"),
                );
                default
                    .parse()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
            }
        }
    }

    fn int<T: TryFrom<i64> + Copy>(
        &mut self,
        path: &str,
        v: Option<i64>,
        default: T,
        lo: i64,
        hi: i64,
    ) -> T {
        match v {
            None => default,
            Some(n) if (lo..=hi).contains(&n) => T::try_from(n).unwrap_or(default),
            Some(n) => {
                self.err(
                    path,
                    format!("expected a number from {lo} to {hi}, found {n}"),
                );
                default
            }
        }
    }

    fn vlan(&mut self, path: &str, v: Option<i64>, default: u16) -> VlanId {
        let n: u16 = self.int(path, v, default, 1, 4094);
        VlanId::new(n).unwrap_or(VlanId::new(1).unwrap_or_else(|| unreachable!("1 is a VLAN")))
    }

    fn watts(&mut self, path: &str, v: Option<f64>, default_mw: u32, max_w: f64) -> u32 {
        match v {
            None => default_mw,
            Some(w) if w.is_finite() && (0.0..=max_w).contains(&w) => (w * 1000.0).round() as u32,
            Some(w) => {
                self.err(path, format!("expected watts from 0 to {max_w}, found {w}"));
                default_mw
            }
        }
    }

    fn node(&mut self, n: raw::Node) -> Node {
        let address = match n.address {
            Some(a) => self.ip("node.address", &a).unwrap_or(Ipv4Addr::LOCALHOST),
            None => {
                self.err(
                    "node.address",
                    "required: the IPv4 address phones reach this node at",
                );
                Ipv4Addr::LOCALHOST
            }
        };
        let name = n.name.unwrap_or_else(|| "phoneboot".into());
        if name.trim().is_empty() {
            self.err("node.name", "expected a non-empty name");
        }
        Node {
            name,
            address,
            database: PathBuf::from(
                n.database
                    .unwrap_or_else(|| "/var/lib/phoneboot/phoneboot.db".into()),
            ),
            tftp_root: n.tftp_root.map(PathBuf::from),
        }
    }

    fn database(&mut self, d: raw::Database) -> Database {
        let url = d.url.filter(|u| !u.trim().is_empty());
        if let Some(u) = &url {
            let postgres = u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.contains("host=")
                || u.contains("dbname=");
            if !postgres {
                self.err(
                    "database.url",
                    "expected a PostgreSQL connection string (postgres://user:password@host[,host2]/dbname?target_session_attrs=read-write)",
                );
            }
        }
        Database { url }
    }

    fn admin(&mut self, a: raw::Admin) -> Admin {
        Admin {
            listen: self.sock("admin.listen", a.listen, "127.0.0.1:8080"),
            initial_password: a.initial_password,
        }
    }

    fn discovery(&mut self, d: raw::Discovery) -> Discovery {
        let mut names = HashSet::new();
        let mut interfaces = Vec::new();
        for (i, it) in d.interface.into_iter().enumerate() {
            let p = format!("discovery.interface[{i}]");
            let name = match it.name {
                Some(n) if !n.is_empty() && n.len() <= 15 => n,
                Some(n) => {
                    self.err(
                        &format!("{p}.name"),
                        format!("expected an interface name of 1 to 15 characters, found {n:?}"),
                    );
                    continue;
                }
                None => {
                    self.err(
                        &format!("{p}.name"),
                        "required: the switch port's interface",
                    );
                    continue;
                }
            };
            if !names.insert((it.netns.clone(), name.clone())) {
                self.err(
                    &format!("{p}.name"),
                    format!("interface {name:?} listed twice"),
                );
            }
            interfaces.push(DiscoveryInterface {
                voice_vlan: self.vlan(&format!("{p}.voice_vlan"), it.voice_vlan, 100),
                native_vlan: self.vlan(&format!("{p}.native_vlan"), it.native_vlan, 1),
                max_power_mw: self.watts(
                    &format!("{p}.max_power_watts"),
                    it.max_power_watts,
                    15_400,
                    90.0,
                ),
                enabled: it.enabled.unwrap_or(true),
                netns: it.netns,
                name,
            });
        }
        Discovery {
            run: d.run.unwrap_or(true),
            lldp: d.lldp.unwrap_or(true),
            timer_secs: self.int("discovery.timer", d.timer, 60, 5, 254),
            holdtime_secs: self.int("discovery.holdtime", d.holdtime, 180, 10, 255),
            power_budget_mw: self.watts(
                "discovery.power_budget_watts",
                d.power_budget_watts,
                370_000,
                10_000.0,
            ),
            max_neighbours_per_port: self.int(
                "discovery.max_neighbours_per_port",
                d.max_neighbours_per_port,
                64,
                1,
                1_000_000,
            ),
            interfaces,
        }
    }

    fn dhcp(&mut self, d: raw::Dhcp, cms: &[CallManager]) -> Dhcp {
        let default_tftp: Vec<Ipv4Addr> = cms.iter().filter_map(|c| c.host.parse().ok()).collect();
        let mut pools = Vec::new();
        let mut names = HashSet::new();
        for (i, p) in d.pool.into_iter().enumerate() {
            let at = |f: &str| format!("dhcp.pool[{i}].{f}");
            let name = p.name.unwrap_or_else(|| format!("pool{i}"));
            if !names.insert(name.clone()) {
                self.err(&at("name"), format!("pool name {name:?} used twice"));
            }
            let Some(subnet_text) = p.subnet else {
                self.err(
                    &at("subnet"),
                    "required: the pool's network, e.g. 198.18.100.0/24",
                );
                continue;
            };
            let subnet: Ipv4Net = match subnet_text.parse() {
                Ok(s) => s,
                Err(e) => {
                    self.err(&at("subnet"), e);
                    continue;
                }
            };
            let range = match p.range.as_deref() {
                Some([a, b]) => {
                    let a = self.ip(&at("range[0]"), a);
                    let b = self.ip(&at("range[1]"), b);
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            if u32::from(a) > u32::from(b) {
                                self.err(
                                    &at("range"),
                                    format!("first address {a} is after last {b}"),
                                );
                            }
                            for (k, ip) in [(0, a), (1, b)] {
                                if !subnet.contains(ip) {
                                    self.err(
                                        &at(&format!("range[{k}]")),
                                        format!("{ip} is outside subnet {subnet}"),
                                    );
                                }
                            }
                            (a, b)
                        }
                        _ => continue,
                    }
                }
                _ => {
                    self.err(&at("range"), "expected [FIRST, LAST], two IPv4 addresses");
                    continue;
                }
            };
            let router = p.router.and_then(|r| self.ip(&at("router"), &r));
            let dns = self.ips(&at("dns"), &p.dns);
            let ntp = self.ips(&at("ntp"), &p.ntp);
            let tftp = match p.tftp_servers {
                Some(list) => self.ips(&at("tftp_servers"), &list),
                None => default_tftp.clone(),
            };
            let tftp_servers = match NonEmpty::new(tftp) {
                Some(t) => t,
                None => {
                    self.err(
                        &at("tftp_servers"),
                        "expected at least one TFTP server (option 150); the CallManager hosts are used when absent, but none is an IPv4 address",
                    );
                    continue;
                }
            };
            pools.push(DhcpPool {
                name,
                interface: p.interface,
                vlan: p.vlan.map(|v| self.vlan(&at("vlan"), Some(v), 1)),
                subnet,
                range,
                router,
                dns,
                domain: p.domain,
                ntp,
                time_offset: p
                    .time_offset
                    .map(|o| self.int(&at("time_offset"), Some(o), 0i32, -86_400, 86_400)),
                lease_secs: self.int(&at("lease_secs"), p.lease_secs, 86_400, 60, 31_536_000),
                tftp_servers,
                tftp_server_name: p.tftp_server_name,
                vendor_class: p.vendor_class,
            });
        }
        Dhcp {
            enabled: d.enabled.unwrap_or(!pools.is_empty()),
            listen_port: self.int("dhcp.listen_port", d.listen_port, 67, 1, 65_535),
            rate_limit_burst: self.int(
                "dhcp.rate_limit_burst",
                d.rate_limit_burst,
                10,
                1,
                1_000_000,
            ),
            rate_limit_per_sec: self.int(
                "dhcp.rate_limit_per_sec",
                d.rate_limit_per_sec,
                2,
                1,
                1_000_000,
            ),
            pools,
        }
    }

    fn ips(&mut self, path: &str, list: &[String]) -> Vec<Ipv4Addr> {
        list.iter()
            .enumerate()
            .filter_map(|(k, s)| self.ip(&format!("{path}[{k}]"), s))
            .collect()
    }

    fn files(&mut self, f: raw::Files) -> Files {
        Files {
            enabled: f.enabled.unwrap_or(true),
            tftp_listen: self.sock("files.tftp_listen", f.tftp_listen, "0.0.0.0:69"),
            http_listen: self.sock("files.http_listen", f.http_listen, "0.0.0.0:6970"),
            max_transfers: self.int("files.max_transfers", f.max_transfers, 2000, 1, 1_000_000),
            secure_cluster: f.secure_cluster.unwrap_or(true),
        }
    }

    fn sccp(&mut self, s: raw::Sccp) -> Sccp {
        Sccp {
            enabled: s.enabled.unwrap_or(true),
            listen: self.sock("sccp.listen", s.listen, "0.0.0.0:2000"),
            keepalive_secs: self.int("sccp.keepalive_secs", s.keepalive_secs, 30, 5, 3600),
            require_lease: s.require_lease.unwrap_or(false),
        }
    }

    fn sip(&mut self, s: raw::Sip) -> Sip {
        let min: u32 = self.int("sip.min_expires", s.min_expires, 60, 1, 86_400);
        let max: u32 = self.int("sip.max_expires", s.max_expires, 3600, 1, 604_800);
        if min > max {
            self.err(
                "sip.min_expires",
                format!("{min} is above sip.max_expires {max}"),
            );
        }
        Sip {
            enabled: s.enabled.unwrap_or(true),
            listen: self.sock("sip.listen", s.listen, "0.0.0.0:5060"),
            realm: s.realm.unwrap_or_else(|| "phoneboot".into()),
            min_expires: min,
            max_expires: max,
        }
    }

    fn autoreg(&mut self, a: raw::AutoRegistration) -> AutoRegistration {
        let first = a.dn_first.unwrap_or_else(|| "2000".into());
        let last = a.dn_last.unwrap_or_else(|| "2999".into());
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 24 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&first) {
            self.err(
                "autoregistration.dn_first",
                format!("expected digits, found {first:?}"),
            );
        }
        if !digits(&last) {
            self.err(
                "autoregistration.dn_last",
                format!("expected digits, found {last:?}"),
            );
        }
        if digits(&first) && digits(&last) {
            let (f, l) = (first.parse::<u128>().ok(), last.parse::<u128>().ok());
            if f > l || first.len() != last.len() {
                self.err(
                    "autoregistration.dn_last",
                    format!(
                        "expected a number of {} digits not below {first}, found {last}",
                        first.len()
                    ),
                );
            }
        }
        AutoRegistration {
            enabled: a.enabled.unwrap_or(false),
            dn_first: first,
            dn_last: last,
            device_pool: a.device_pool.unwrap_or_else(|| "Default".into()),
        }
    }

    fn callmanagers(&mut self, list: Vec<raw::CallManager>, node: Ipv4Addr) -> Vec<CallManager> {
        if list.is_empty() {
            return vec![CallManager {
                host: node.to_string(),
                sccp_port: 2000,
                sip_port: 5060,
            }];
        }
        let mut out = Vec::new();
        for (i, c) in list.into_iter().enumerate() {
            let p = |f: &str| format!("callmanager[{i}].{f}");
            let Some(host) = c.host.filter(|h| !h.trim().is_empty()) else {
                self.err(&p("host"), "required: the node's address or name");
                continue;
            };
            if out.iter().any(|o: &CallManager| o.host == host) {
                self.err(&p("host"), format!("{host} is listed twice"));
            }
            out.push(CallManager {
                host,
                sccp_port: self.int(&p("sccp_port"), c.sccp_port, 2000, 1, 65_535),
                sip_port: self.int(&p("sip_port"), c.sip_port, 5060, 1, 65_535),
            });
        }
        out
    }
}

/// A ready configuration for a lab: used by `phoneboot lab up`.
pub struct LabParams<'a> {
    pub server_address: Ipv4Addr,
    pub voice_subnet: Ipv4Net,
    pub voice_vlan: u16,
    pub database: &'a Path,
    pub tftp_root: &'a Path,
    pub admin_listen: SocketAddr,
    pub admin_password: &'a str,
    /// (netns, interface) of each switch phone port where discovery's switch role runs.
    pub phone_ports: Vec<(String, String)>,
    pub server_interface: &'a str,
}

/// Renders a server configuration for a lab (voice VLAN, DHCP pool, TFTP and CallManager =
/// the server's address, auto-registration on).
pub fn lab_config(p: &LabParams<'_>) -> String {
    // The pool: from 256 addresses above the server's to the end of the subnet (less the
    // broadcast address), so a /16 holds tens of thousands of phones.
    let base = u32::from(p.server_address);
    let last_host = u32::from(p.voice_subnet.network()) | !u32::from(p.voice_subnet.mask());
    let first = Ipv4Addr::from(base.saturating_add(256).min(last_host - 1));
    let last = Ipv4Addr::from(last_host - 1);
    let mut s = format!(
        r#"# Written by `phoneboot lab up`: a server for this lab's voice VLAN.
[node]
name = "lab-cm1"
address = "{addr}"
database = "{db}"
tftp_root = "{root}"

[admin]
listen = "{admin}"
initial_password = "{pw}"

[discovery]
run = true
lldp = true
timer = 60
holdtime = 180
# One lab phone port carries every emulated phone of a storm.
max_neighbours_per_port = 200000
# The lab's switch has PoE for a storm of phones, not for one 48-port switch.
power_budget_watts = 10000
"#,
        addr = p.server_address,
        db = p.database.display(),
        root = p.tftp_root.display(),
        admin = p.admin_listen,
        pw = p.admin_password,
    );
    for (ns, ifname) in &p.phone_ports {
        s.push_str(&format!(
            "\n[[discovery.interface]]\nname = \"{ifname}\"\nnetns = \"{ns}\"\nvoice_vlan = {vlan}\nnative_vlan = 1\n",
            vlan = p.voice_vlan
        ));
    }
    s.push_str(&format!(
        r#"
[dhcp]
enabled = true

[[dhcp.pool]]
name = "voice"
interface = "{ifname}"
subnet = "{subnet}"
range = ["{first}", "{last}"]
router = "{addr}"
dns = ["{addr}"]
domain = "voice.lab"
lease_secs = 3600
tftp_servers = ["{addr}"]

[files]
tftp_listen = "0.0.0.0:69"
http_listen = "0.0.0.0:6970"
# A storm of 10,000 phones fetches at once; the default of 2,000 turns them away as busy.
max_transfers = 20000

[sccp]
listen = "0.0.0.0:2000"
keepalive_secs = 30

[sip]
listen = "0.0.0.0:5060"
realm = "phoneboot"

[autoregistration]
enabled = true
# Room for a storm of unknown phones: 100,000 DNs.
dn_first = "100000"
dn_last = "199999"
device_pool = "Default"

[[callmanager]]
host = "{addr}"
sccp_port = 2000
sip_port = 5060
"#,
        ifname = p.server_interface,
        subnet = p.voice_subnet,
        first = first,
        last = last,
        addr = p.server_address,
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_valid() {
        let cfg = Config::parse(EXAMPLE).unwrap_or_else(|e| {
            panic!(
                "{}",
                e.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert_eq!(cfg.dhcp.pools.len(), 2);
        assert_eq!(cfg.callmanagers.len(), 2);
        let voice = &cfg.dhcp.pools[0];
        assert_eq!(
            voice.tftp_servers.as_slice(),
            &[
                Ipv4Addr::new(198, 18, 100, 1),
                Ipv4Addr::new(198, 18, 100, 2)
            ]
        );
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let cfg = Config::parse("[node]\naddress = \"198.18.100.1\"\n").unwrap();
        assert_eq!(cfg.discovery.timer_secs, 60);
        assert_eq!(cfg.discovery.holdtime_secs, 180);
        assert_eq!(cfg.callmanagers.first().host, "198.18.100.1");
        assert_eq!(cfg.sccp.listen.port(), 2000);
        assert!(!cfg.dhcp.enabled);
        assert_eq!(
            (cfg.dhcp.rate_limit_burst, cfg.dhcp.rate_limit_per_sec),
            (10, 2)
        );
    }

    #[test]
    fn database_url_selects_postgres_and_is_never_serialised() {
        let cfg = Config::parse("[node]\naddress = \"198.18.100.1\"\n").unwrap();
        assert_eq!(cfg.database.url, None, "SQLite stays the default");
        let url = "postgres://pb:pw@db1,db2/phoneboot?target_session_attrs=read-write";
        let cfg = Config::parse(&format!(
            "[node]\naddress = \"198.18.100.1\"\n[database]\nurl = \"{url}\"\n"
        ))
        .unwrap();
        assert_eq!(cfg.database.url.as_deref(), Some(url));
        let shown = serde_json::to_string(&cfg).unwrap();
        assert!(!shown.contains("pw@"), "{shown}");
        let errs =
            Config::parse("[node]\naddress = \"198.18.100.1\"\n[database]\nurl = \"mysql://x\"\n")
                .unwrap_err();
        assert_eq!(errs[0].path, "database.url");
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let text = r#"
[node]
address = "not-an-ip"
[discovery]
timer = 1
[[discovery.interface]]
name = "sw-ph0"
voice_vlan = 4095
[dhcp]
rate_limit_per_sec = 0
[[dhcp.pool]]
subnet = "198.18.100.0/24"
range = ["198.18.100.10", "198.18.101.5"]
tftp_servers = ["198.18.100.1", "bogus"]
[sip]
listen = "nowhere"
[bogus]
x = 1
"#;
        let errs = Config::parse(text).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "node.address",
            "discovery.timer",
            "discovery.interface[0].voice_vlan",
            "dhcp.pool[0].range[1]",
            "dhcp.pool[0].tftp_servers[1]",
            "dhcp.rate_limit_per_sec",
            "sip.listen",
            "bogus",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        let range = errs
            .iter()
            .find(|e| e.path == "dhcp.pool[0].range[1]")
            .unwrap();
        assert!(range.message.contains("outside subnet 198.18.100.0/24"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_their_section() {
        let errs = Config::parse(
            "[node]\naddress = \"198.18.100.1\"\ncolour = 3\n[sccp]\nkeepalive_secs = \"x\"\n",
        )
        .unwrap_err();
        assert!(errs
            .iter()
            .any(|e| e.path == "node" && e.message.contains("colour")));
        assert!(errs.iter().any(|e| e.path == "sccp"));
    }

    #[test]
    fn lab_config_is_valid() {
        let text = lab_config(&LabParams {
            server_address: Ipv4Addr::new(198, 18, 100, 1),
            voice_subnet: "198.18.0.0/16".parse().unwrap(),
            voice_vlan: 100,
            database: Path::new("/tmp/x.db"),
            tftp_root: Path::new("/tmp/tftp"),
            admin_listen: "127.0.0.1:8080".parse().unwrap(),
            admin_password: "secret",
            phone_ports: vec![("lab-sw".into(), "sw-ph0".into())],
            server_interface: "srv0",
        });
        let cfg = Config::parse(&text).unwrap();
        assert!(cfg.autoregistration.enabled);
        assert_eq!(cfg.discovery.interfaces[0].netns.as_deref(), Some("lab-sw"));
        assert_eq!(cfg.dhcp.pools[0].range.0, Ipv4Addr::new(198, 18, 101, 1));
        assert_eq!(cfg.dhcp.pools[0].range.1, Ipv4Addr::new(198, 18, 255, 254));
    }
}
