//! Discovery's switch role on the configured ports, each possibly in another network
//! namespace (the lab's switch): sockets are opened inside that namespace, then driven here.

use std::io;

use discovery::{InterfaceConfig, PowerAdmin, SwitchConfig, SwitchHandle, VoiceVlan};
use journal::SharedSink;
use l2::{AsyncPacketSocket, PacketSocket};

pub fn spawn(cfg: &config::Config, sink: SharedSink) -> io::Result<SwitchHandle> {
    let d = &cfg.discovery;
    let swcfg = SwitchConfig {
        run: d.run,
        timer_secs: d.timer_secs.into(),
        holdtime_secs: d.holdtime_secs.into(),
        device_id: cfg.node.name.clone(),
        platform: "phoneboot".into(),
        address: Some(cfg.node.address),
        power_budget_mw: d.power_budget_mw,
        lldp: d.lldp,
        max_neighbours_per_port: d.max_neighbours_per_port,
        interfaces: d
            .interfaces
            .iter()
            .map(|i| InterfaceConfig {
                name: i.name.clone(),
                enabled: i.enabled,
                voice_vlan: VoiceVlan::Vlan(i.voice_vlan.get()),
                native_vlan: i.native_vlan.get(),
                power: PowerAdmin::Auto,
                power_max_mw: i.max_power_mw,
                ..InterfaceConfig::default()
            })
            .collect(),
        ..SwitchConfig::default()
    };
    let mut sockets = Vec::new();
    for i in &d.interfaces {
        let name = i.name.clone();
        let sock = match &i.netns {
            Some(ns) => l2::netns::in_netns(ns, move || PacketSocket::open(&name))?,
            None => PacketSocket::open(&name)?,
        };
        for group in [cdp::MULTICAST, lldp::MULTICAST] {
            sock.join_multicast(group)?;
        }
        // The lab's phone port carries every frame of a storm; the agent wants only these.
        sock.filter_discovery()?;
        sockets.push(AsyncPacketSocket::new(sock)?);
    }
    discovery::spawn_switch_on(swcfg, sockets, sink).map_err(|e| io::Error::other(e.to_string()))
}
