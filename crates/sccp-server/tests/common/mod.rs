//! Shared test fixtures.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use journal::VecSink;
use ris::Ris;
use sccp::{CallManager, MemoryDirectory, SccpDevice, SccpLine, SpeedDial};
use sccp_server::{Deps, ServerConfig, ServerHandle};

pub fn device(mac_byte: u8, dn: &str, cms: &[SocketAddr]) -> SccpDevice {
    SccpDevice {
        name: format!("SEP0011223344{mac_byte:02X}"),
        device_type: 404,
        model: "7962".into(),
        lines: vec![SccpLine {
            dn: dn.into(),
            label: dn.into(),
            display: format!("User {dn}"),
        }],
        speed_dials: vec![SpeedDial {
            number: "2000".into(),
            label: "Help".into(),
        }],
        keepalive_secs: None,
        call_managers: cms
            .iter()
            .enumerate()
            .map(|(i, a)| CallManager {
                name: format!("cm{}", i + 1),
                ip: match a.ip() {
                    std::net::IpAddr::V4(v) => v,
                    _ => Ipv4Addr::LOCALHOST,
                },
                port: a.port(),
            })
            .collect(),
        date_format: "D/M/Y".into(),
        tz_offset_secs: 0,
        user_name: "user".into(),
        forward_all: None,
        firmware: "SCCP42.9-4-2SR3".into(),
    }
}

pub struct Node {
    pub handle: ServerHandle,
    pub ris: Arc<Ris>,
    pub journal: Arc<VecSink>,
    pub dir: Arc<MemoryDirectory>,
}

pub async fn node(name: &str, bind: SocketAddr, dir: Arc<MemoryDirectory>, keepalive: u32) -> Node {
    let ris = Arc::new(Ris::new());
    let journal = VecSink::new();
    let cfg = ServerConfig {
        bind,
        keepalive_secs: keepalive,
        secondary_keepalive_secs: keepalive,
        node_name: name.into(),
        ..Default::default()
    };
    let deps = Deps {
        directory: dir.clone(),
        ris: ris.clone(),
        journal: journal.clone(),
        lease: None,
    };
    let handle = sccp_server::spawn(cfg, deps).await.unwrap();
    Node {
        handle,
        ris,
        journal,
        dir,
    }
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn phone_cfg(mac_byte: u8, profile: sccp::PhoneProfile) -> sccp::PhoneConfig {
    let mut c = sccp::PhoneConfig::new(
        [0x00, 0x11, 0x22, 0x33, 0x44, mac_byte],
        Ipv4Addr::LOCALHOST,
        profile,
        1,
    );
    c.retry_delay = std::time::Duration::from_millis(500);
    c
}
