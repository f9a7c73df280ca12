//! Pool, class and server-behaviour configuration, as read from a file (serde) and validated.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 network, written `198.18.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The subnet mask (option 1).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_u32())
    }

    fn mask_u32(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask_u32() == u32::from(self.network)
    }

    /// The directed broadcast address, never handed out.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask_u32())
    }
}

impl FromStr for Subnet {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = p.trim().parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let mut sn = Subnet {
            network: addr,
            prefix,
        };
        sn.network = Ipv4Addr::from(u32::from(addr) & sn.mask_u32());
        Ok(sn)
    }
}

impl TryFrom<String> for Subnet {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Options a vendor class (option 60) replaces for its members, e.g. a TFTP list for phones
/// that PCs on the same VLAN must not get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    pub name: String,
    /// Matches when option 60 (trailing NULs stripped) starts with this text, e.g.
    /// `"Cisco Systems"`. An empty prefix is rejected.
    pub vendor_prefix: String,
    #[serde(default)]
    pub tftp_servers: Option<Vec<Ipv4Addr>>,
    #[serde(default)]
    pub tftp_server_name: Option<String>,
    #[serde(default)]
    pub dns: Option<Vec<Ipv4Addr>>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub ntp: Option<Vec<Ipv4Addr>>,
    #[serde(default)]
    pub lease_secs: Option<u32>,
    /// Members get no option 150/66 at all (e.g. a "pc" class on a voice pool).
    #[serde(default)]
    pub no_tftp: bool,
}

fn default_lease() -> u32 {
    86_400
}

/// One address pool and the options handed out with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    /// Receiving interface for clients on a directly attached link (including a VLAN
    /// sub-interface or an OVS internal port of the voice VLAN).
    #[serde(default)]
    pub interface: Option<String>,
    /// 802.1Q tag the request arrived with, for a server reading a trunk.
    #[serde(default)]
    pub vlan: Option<u16>,
    pub subnet: Subnet,
    pub range_start: Ipv4Addr,
    pub range_end: Ipv4Addr,
    #[serde(default)]
    pub routers: Vec<Ipv4Addr>,
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default)]
    pub domain: Option<String>,
    /// Option 42.
    #[serde(default)]
    pub ntp: Vec<Ipv4Addr>,
    /// Option 2, seconds east of UTC (signed).
    #[serde(default)]
    pub time_offset: Option<i32>,
    /// Option 4.
    #[serde(default)]
    pub time_servers: Vec<Ipv4Addr>,
    /// Option 150, in preference order. `None` = the configuration's CallManager/TFTP nodes
    /// ([`DhcpConfig::default_tftp_servers`]).
    #[serde(default)]
    pub tftp_servers: Option<Vec<Ipv4Addr>>,
    /// Option 66.
    #[serde(default)]
    pub tftp_server_name: Option<String>,
    #[serde(default = "default_lease")]
    pub lease_secs: u32,
    /// Option 58 (T1); default half the lease. Short values make clients renew early.
    #[serde(default)]
    pub renew_secs: Option<u32>,
    /// Option 59 (T2); default 7/8 of the lease.
    #[serde(default)]
    pub rebind_secs: Option<u32>,
    /// Option 54 for this pool; default: the address the request arrived on.
    #[serde(default)]
    pub server_id: Option<Ipv4Addr>,
    #[serde(default)]
    pub classes: Vec<ClassConfig>,
}

impl PoolConfig {
    /// A pool with defaults for everything but its addresses.
    pub fn new(name: &str, subnet: Subnet, range_start: Ipv4Addr, range_end: Ipv4Addr) -> Self {
        PoolConfig {
            name: name.to_string(),
            interface: None,
            vlan: None,
            subnet,
            range_start,
            range_end,
            routers: vec![],
            dns: vec![],
            domain: None,
            ntp: vec![],
            time_offset: None,
            time_servers: vec![],
            tftp_servers: None,
            tftp_server_name: None,
            lease_secs: default_lease(),
            renew_secs: None,
            rebind_secs: None,
            server_id: None,
            classes: vec![],
        }
    }
}

/// Per-MAC token bucket against floods (a stuck phone, a spoofing tool).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Packets a MAC may send at once.
    pub burst: u32,
    /// Sustained packets per second per MAC.
    pub per_sec: f64,
}

impl Default for RateLimitConfig {
    /// A booting phone sends 2-4 packets per boot and retransmits after 4 s: 10 then 2/s is
    /// generous for it and stops a flood.
    fn default() -> Self {
        RateLimitConfig {
            burst: 10,
            per_sec: 2.0,
        }
    }
}

/// A fixed address for one MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub mac: mac::Mac,
    pub ip: Ipv4Addr,
}

fn default_offer_secs() -> u32 {
    60
}
fn default_quarantine() -> u32 {
    3600
}
fn yes() -> bool {
    true
}

/// Everything the protocol core needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpConfig {
    pub pools: Vec<PoolConfig>,
    /// Option 150 for pools that do not set their own: the CallManager/TFTP nodes.
    #[serde(default)]
    pub default_tftp_servers: Vec<Ipv4Addr>,
    /// How long an offered address stays set aside for the client.
    #[serde(default = "default_offer_secs")]
    pub offer_secs: u32,
    /// How long a declined address stays out of use (RFC 2131 4.3.3).
    #[serde(default = "default_quarantine")]
    pub decline_quarantine_secs: u32,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub reservations: Vec<Reservation>,
    /// NAK requests for addresses we cannot grant (we own these subnets).
    #[serde(default = "yes")]
    pub authoritative: bool,
}

impl DhcpConfig {
    pub fn new(pools: Vec<PoolConfig>) -> Self {
        DhcpConfig {
            pools,
            default_tftp_servers: vec![],
            offer_secs: default_offer_secs(),
            decline_quarantine_secs: default_quarantine(),
            rate_limit: RateLimitConfig::default(),
            reservations: vec![],
            authoritative: true,
        }
    }

    /// Checks what would otherwise fail at run time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pools.is_empty() {
            return Err(ConfigError::Invalid("no pool configured".into()));
        }
        for (i, p) in self.pools.iter().enumerate() {
            let err = |m: &str| ConfigError::Invalid(format!("pool {:?}: {m}", p.name));
            if self.pools[..i].iter().any(|q| q.name == p.name) {
                return Err(err("duplicate pool name"));
            }
            if u32::from(p.range_start) > u32::from(p.range_end) {
                return Err(err("range_start is after range_end"));
            }
            if !p.subnet.contains(p.range_start) || !p.subnet.contains(p.range_end) {
                return Err(err("range is not inside the subnet"));
            }
            if p.lease_secs < 60 {
                return Err(err("lease_secs below 60"));
            }
            let t1 = p.renew_secs.unwrap_or(p.lease_secs / 2);
            let t2 = p.rebind_secs.unwrap_or(p.lease_secs / 8 * 7);
            if t1 == 0 || t1 > t2 || t2 > p.lease_secs {
                return Err(err("need 0 < renew_secs <= rebind_secs <= lease_secs"));
            }
            if let Some(v) = p.vlan {
                if v == 0 || v > 4094 {
                    return Err(err("vlan must be 1..=4094"));
                }
            }
            let tftp = p
                .tftp_servers
                .as_ref()
                .unwrap_or(&self.default_tftp_servers);
            if tftp.len() > 63 {
                return Err(err("more than 63 TFTP servers do not fit option 150"));
            }
            for name in [&p.domain, &p.tftp_server_name].into_iter().flatten() {
                if name.len() > 255 || name.contains('\0') {
                    return Err(err("domain/tftp_server_name too long or contains NUL"));
                }
            }
            for c in &p.classes {
                if c.vendor_prefix.is_empty() {
                    return Err(err(&format!(
                        "class {:?} has an empty vendor_prefix",
                        c.name
                    )));
                }
            }
            for q in &self.pools[..i] {
                let overlap = u32::from(p.range_start) <= u32::from(q.range_end)
                    && u32::from(q.range_start) <= u32::from(p.range_end);
                if overlap {
                    return Err(err(&format!("range overlaps pool {:?}", q.name)));
                }
            }
        }
        for (i, r) in self.reservations.iter().enumerate() {
            if self.reservations[..i]
                .iter()
                .any(|o| o.mac == r.mac || o.ip == r.ip)
            {
                return Err(ConfigError::Invalid(format!(
                    "reservation {} -> {} duplicates another",
                    r.mac, r.ip
                )));
            }
        }
        if self.rate_limit.burst == 0 || self.rate_limit.per_sec.is_nan() {
            return Err(ConfigError::Invalid("rate_limit.burst must be > 0".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("bad subnet {0:?} (expected a.b.c.d/n)")]
    BadSubnet(String),
    #[error("invalid DHCP configuration: {0}")]
    Invalid(String),
}
