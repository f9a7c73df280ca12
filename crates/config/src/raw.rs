//! The file as written: serde structs that mirror the TOML, with defaults, and no judgement.
//! `crate::validate` turns them into the validated [`crate::Config`].

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: Option<String>,
    /// The address phones reach this node at (TFTP server, CallManager).
    pub address: Option<String>,
    pub database: Option<String>,
    /// Directory with firmware loads, locales, tones, rings and desktops.
    pub tftp_root: Option<String>,
}

/// `[database]`: where shared state lives when it is not the node's SQLite file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// A PostgreSQL connection string (libpq URL or `key=value`), e.g.
    /// `postgres://pb:pw@db1,db2/phoneboot?target_session_attrs=read-write`.
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: Option<String>,
    /// First administrator's password; when absent a one-time password is printed on first start.
    pub initial_password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryInterface {
    pub name: Option<String>,
    /// Network namespace the interface lives in (the lab's switch), if not the server's own.
    pub netns: Option<String>,
    pub enabled: Option<bool>,
    pub voice_vlan: Option<i64>,
    pub native_vlan: Option<i64>,
    pub max_power_watts: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// `cdp run`: the global switch.
    pub run: Option<bool>,
    pub lldp: Option<bool>,
    pub timer: Option<i64>,
    pub holdtime: Option<i64>,
    pub power_budget_watts: Option<f64>,
    /// Neighbours kept per port (a lab port carrying an emulated storm needs many).
    pub max_neighbours_per_port: Option<i64>,
    #[serde(default)]
    pub interface: Vec<DiscoveryInterface>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpPool {
    pub name: Option<String>,
    /// Receiving interface (a server port) the pool serves.
    pub interface: Option<String>,
    /// VLAN the pool serves when frames arrive tagged.
    pub vlan: Option<i64>,
    pub subnet: Option<String>,
    pub range: Option<Vec<String>>,
    pub router: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    pub domain: Option<String>,
    #[serde(default)]
    pub ntp: Vec<String>,
    pub time_offset: Option<i64>,
    pub lease_secs: Option<i64>,
    /// Option 150, in order. Default: the CallManager group's nodes.
    pub tftp_servers: Option<Vec<String>>,
    /// Option 66.
    pub tftp_server_name: Option<String>,
    /// Only clients whose option 60 starts with this get this pool (phones vs PCs).
    pub vendor_class: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp {
    pub enabled: Option<bool>,
    pub listen_port: Option<i64>,
    pub rate_limit_burst: Option<i64>,
    pub rate_limit_per_sec: Option<i64>,
    #[serde(default)]
    pub pool: Vec<DhcpPool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub enabled: Option<bool>,
    pub tftp_listen: Option<String>,
    pub http_listen: Option<String>,
    pub max_transfers: Option<i64>,
    pub secure_cluster: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sccp {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub keepalive_secs: Option<i64>,
    /// Accept a registration only from the address DHCP leased to that MAC.
    pub require_lease: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sip {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub realm: Option<String>,
    pub min_expires: Option<i64>,
    pub max_expires: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRegistration {
    pub enabled: Option<bool>,
    pub dn_first: Option<String>,
    pub dn_last: Option<String>,
    pub device_pool: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallManager {
    pub host: Option<String>,
    pub sccp_port: Option<i64>,
    pub sip_port: Option<i64>,
}
