//! The configuration file's DHCP pools, as the DHCP service takes them.

use std::net::Ipv4Addr;
use std::path::Path;

use dhcp::{ClassConfig, DhcpConfig, PoolConfig, Subnet};

pub fn build(cfg: &config::Config, db: &Path) -> dhcp_server::ServerConfig {
    let pools = cfg
        .dhcp
        .pools
        .iter()
        .map(|p| {
            let subnet = Subnet {
                network: p.subnet.network(),
                prefix: p.subnet.prefix,
            };
            let mut pool = PoolConfig::new(&p.name, subnet, p.range.0, p.range.1);
            pool.interface = p.interface.clone();
            pool.vlan = p.vlan.map(|v| v.get());
            pool.routers = p.router.into_iter().collect();
            pool.dns = p.dns.clone();
            pool.domain = p.domain.clone();
            pool.ntp = p.ntp.clone();
            pool.time_offset = p.time_offset;
            pool.lease_secs = p.lease_secs;
            pool.tftp_server_name = p.tftp_server_name.clone();
            let tftp: Vec<Ipv4Addr> = p.tftp_servers.iter().copied().collect();
            match &p.vendor_class {
                // Option 150/66 only for clients whose option 60 names them (phones, not PCs).
                Some(prefix) => {
                    pool.tftp_servers = Some(vec![]);
                    pool.classes.push(ClassConfig {
                        name: "phones".into(),
                        vendor_prefix: prefix.clone(),
                        tftp_servers: Some(tftp),
                        tftp_server_name: p.tftp_server_name.clone(),
                        dns: None,
                        domain: None,
                        ntp: None,
                        lease_secs: None,
                        no_tftp: false,
                    });
                }
                None => pool.tftp_servers = Some(tftp),
            }
            pool
        })
        .collect();
    let mut d = DhcpConfig::new(pools);
    d.default_tftp_servers = cfg
        .callmanagers
        .iter()
        .filter_map(|c| c.host.parse().ok())
        .collect();
    d.rate_limit = dhcp::RateLimitConfig {
        burst: cfg.dhcp.rate_limit_burst,
        per_sec: f64::from(cfg.dhcp.rate_limit_per_sec),
    };
    let mut s = dhcp_server::ServerConfig::new(db.to_path_buf(), d);
    s.server_port = cfg.dhcp.listen_port;
    s
}
