//! IOS-style text: `show cdp neighbors [detail]`, `show lldp neighbors`, `show power inline`.
//! Pure functions of a [`Snapshot`], so the CLI, the admin API and tests share them.

use std::fmt::Write;

use crate::config::PowerAdmin;
use crate::neighbors::{NeighbourView, Proto};
use crate::poe::PowerOper;
use crate::switch::Snapshot;

/// "Cisco IP Phone 7942" -> "IP Phone", "cisco WS-C3560-24PS" -> "WS-C3560-", as the summary
/// table's 9-character Platform column does.
fn short_platform(p: &str) -> String {
    let p = p.trim_end_matches('\0');
    let p = if p.len() >= 6 && p[..6].eq_ignore_ascii_case("cisco ") {
        &p[6..]
    } else {
        p
    };
    p.chars().take(9).collect::<String>().trim_end().to_string()
}

fn cdp_rows<'a>(s: &'a Snapshot, interface: Option<&str>) -> Vec<&'a NeighbourView> {
    s.neighbours
        .iter()
        .filter(|n| n.info.protocol == Proto::Cdp)
        .filter(|n| interface.is_none_or(|i| n.info.local_port == i))
        .collect()
}

/// `show cdp neighbors`.
pub fn cdp_neighbors(s: &Snapshot) -> String {
    cdp_neighbors_on(s, None)
}

/// `show cdp neighbors [IFACE]`.
pub fn cdp_neighbors_on(s: &Snapshot, interface: Option<&str>) -> String {
    let mut o = String::new();
    o.push_str("Capability Codes: R - Router, T - Trans Bridge, B - Source Route Bridge\n");
    o.push_str("                  S - Switch, H - Host, I - IGMP, r - Repeater, P - Phone, \n");
    o.push_str("                  D - Remote, C - CVTA, M - Two-port Mac Relay \n\n");
    o.push_str("Device ID        Local Intrfce     Holdtme    Capability  Platform  Port ID\n");
    let rows = cdp_rows(s, interface);
    for n in &rows {
        let i = &n.info;
        if i.device_id.len() > 16 {
            let _ = writeln!(o, "{}", i.device_id);
            o.push_str(&" ".repeat(17));
        } else {
            let _ = write!(o, "{:<17}", i.device_id);
        }
        let _ = writeln!(
            o,
            "{:<18}{:<11}{:>10}  {:<9} {}",
            i.local_port,
            n.holdtime_left,
            i.capability_letters,
            short_platform(i.platform.as_deref().unwrap_or("")),
            i.port_id.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(o, "\nTotal cdp entries displayed : {}", rows.len());
    o
}

/// `show cdp neighbors detail`.
pub fn cdp_neighbors_detail(s: &Snapshot) -> String {
    cdp_neighbors_detail_on(s, None)
}

/// `show cdp neighbors [IFACE] detail`.
pub fn cdp_neighbors_detail_on(s: &Snapshot, interface: Option<&str>) -> String {
    let mut o = String::new();
    let rows = cdp_rows(s, interface);
    for n in &rows {
        cdp_block(&mut o, n);
    }
    let _ = writeln!(o, "\nTotal cdp entries displayed : {}", rows.len());
    o
}

/// `show cdp entry NAME` (`*`: every entry): the detail blocks, without a total.
pub fn cdp_entry(s: &Snapshot, name: &str) -> String {
    let mut o = String::new();
    for n in cdp_rows(s, None) {
        if name == "*" || n.info.device_id == name {
            cdp_block(&mut o, n);
        }
    }
    o
}

fn cdp_block(o: &mut String, n: &NeighbourView) {
    {
        let i = &n.info;
        o.push_str("-------------------------\n");
        let _ = writeln!(o, "Device ID: {}", i.device_id);
        o.push_str("Entry address(es): \n");
        for a in &i.addresses {
            match a {
                std::net::IpAddr::V4(v) => {
                    let _ = writeln!(o, "  IP address: {v}");
                }
                std::net::IpAddr::V6(v) => {
                    let _ = writeln!(o, "  IPv6 address: {v}");
                }
            }
        }
        let _ = writeln!(
            o,
            "Platform: {},  Capabilities: {}",
            i.platform.as_deref().unwrap_or(""),
            i.capability_words
        );
        let _ = writeln!(
            o,
            "Interface: {},  Port ID (outgoing port): {}",
            i.local_port,
            i.port_id.as_deref().unwrap_or("")
        );
        let _ = writeln!(o, "Holdtime : {} sec", n.holdtime_left);
        o.push_str("\nVersion :\n");
        let _ = writeln!(o, "{}", i.software_version.as_deref().unwrap_or(""));
        let _ = writeln!(o, "\nadvertisement version: {}", i.version);
        if let Some(v) = i.native_vlan {
            let _ = writeln!(o, "Native VLAN: {v}");
        }
        if let Some(d) = &i.duplex {
            let _ = writeln!(o, "Duplex: {d}");
        }
        if let Some(mw) = i.power_drawn_mw {
            let _ = writeln!(o, "Power drawn: {}.{:03} Watts", mw / 1000, mw % 1000);
        }
        if let Some((req, mgmt, levels)) = &i.power_request {
            let _ = writeln!(o, "Power request id: {req}, Power management id: {mgmt}");
            let l: Vec<String> = levels.iter().map(u32::to_string).collect();
            let _ = writeln!(o, "Power request levels are:{}", l.join(" "));
        }
        if let Some(mw) = i.power_granted_mw {
            let _ = writeln!(o, "Power granted: {}.{:03} Watts", mw / 1000, mw % 1000);
        }
        if i.voice_vlan_asked {
            match i.voice_vlan_sent {
                Some(v) => {
                    let _ = writeln!(o, "VoIP VLAN query: answered with VLAN {v}");
                }
                None => o.push_str("VoIP VLAN query: not answered (no voice VLAN)\n"),
            }
        }
        o.push('\n');
    }
}

/// `show cdp`: the global settings (IOS prints "is  enabled" with two blanks).
pub fn cdp_global(s: &Snapshot) -> String {
    if !s.run {
        return "% CDP is not enabled\n".into();
    }
    format!(
        "Global CDP information:\n        Sending CDP packets every {} seconds\n        Sending a holdtime value of {} seconds\n        Sending CDPv2 advertisements is  {}\n",
        s.timer_secs,
        s.holdtime_secs,
        if s.cdp_version == 2 { "enabled" } else { "disabled" }
    )
}

/// `show cdp interface [IFACE]`: the CDP-enabled interfaces with their timers.
pub fn cdp_interface(s: &Snapshot, interface: Option<&str>) -> String {
    if !s.run {
        return "% CDP is not enabled\n".into();
    }
    let mut o = String::new();
    let mut n = 0;
    for i in &s.interfaces {
        if !i.enabled || interface.is_some_and(|x| x != i.name) {
            continue;
        }
        n += 1;
        let _ = writeln!(o, "{} is up, line protocol is up", i.name);
        o.push_str("  Encapsulation ARPA\n");
        let _ = writeln!(o, "  Sending CDP packets every {} seconds", s.timer_secs);
        let _ = writeln!(o, "  Holdtime is {} seconds", s.holdtime_secs);
    }
    if interface.is_none() {
        let _ = writeln!(o, "\n cdp enabled interfaces : {n}");
    }
    o
}

/// `show cdp traffic`, IOS's counters.
pub fn cdp_traffic(s: &Snapshot) -> String {
    let c = &s.counters;
    let mut o = String::from("CDP counters :\n");
    let _ = writeln!(
        o,
        "        Total packets output: {}, Input: {}",
        c.tx_cdp, c.rx_cdp
    );
    let _ = writeln!(
        o,
        "        Hdr syntax: {}, Chksum error: {}, Encaps failed: {}",
        c.rx_cdp_hdr_syntax, c.rx_bad_checksum, c.tx_cdp_encaps_failed
    );
    let _ = writeln!(
        o,
        "        No memory: {}, Invalid packet: {}, Fragmented: {}",
        c.rx_cdp_no_memory, c.rx_cdp_invalid, c.rx_cdp_fragmented
    );
    let _ = writeln!(
        o,
        "        CDP version 1 advertisements output: {}, Input: {}",
        c.tx_cdp_v1, c.rx_cdp_v1
    );
    let _ = writeln!(
        o,
        "        CDP version 2 advertisements output: {}, Input: {}",
        c.tx_cdp_v2, c.rx_cdp_v2
    );
    o
}

/// `show lldp`: the global settings.
pub fn lldp_global(s: &Snapshot) -> String {
    if !s.lldp {
        return "% LLDP is not enabled\n".into();
    }
    format!(
        "\nGlobal LLDP Information:\n    Status: ACTIVE\n    LLDP advertisements are sent every {} seconds\n    LLDP hold time advertised is {} seconds\n    LLDP interface reinitialisation delay is 2 seconds\n",
        s.lldp_timer_secs, s.lldp_holdtime_secs
    )
}

/// `show lldp traffic`. TLVs are never discarded here (unknown ones are kept), so that
/// counter is zero by construction.
pub fn lldp_traffic(s: &Snapshot) -> String {
    if !s.lldp {
        return "% LLDP is not enabled\n".into();
    }
    let c = &s.counters;
    format!(
        "\nLLDP traffic statistics: \n    Total frames out: {}\n    Total entries aged: {}\n    Total frames in: {}\n    Total frames received in error: {}\n    Total frames discarded: {}\n    Total TLVs discarded: 0\n    Total TLVs unrecognized: {}\n",
        c.tx_lldp, c.lldp_aged, c.rx_lldp, c.rx_bad_lldp, c.rx_lldp_discarded, c.rx_lldp_unrecognized_tlvs
    )
}

fn lldp_rows<'a>(s: &'a Snapshot, interface: Option<&str>) -> Vec<&'a NeighbourView> {
    s.neighbours
        .iter()
        .filter(|n| n.info.protocol == Proto::Lldp)
        .filter(|n| interface.is_none_or(|i| n.info.local_port == i))
        .collect()
}

/// `show lldp neighbors [IFACE] detail`.
pub fn lldp_neighbors_detail(s: &Snapshot, interface: Option<&str>) -> String {
    if !s.lldp {
        return "% LLDP is not enabled\n".into();
    }
    let mut o = String::new();
    let rows = lldp_rows(s, interface);
    for n in &rows {
        let i = &n.info;
        o.push_str("------------------------------------------------\n");
        let _ = writeln!(o, "Local Intf: {}", i.local_port);
        let _ = writeln!(o, "Chassis id: {}", i.mac);
        let _ = writeln!(o, "Port id: {}", i.port_id.as_deref().unwrap_or(""));
        let _ = writeln!(o, "System Name: {}", i.device_id);
        o.push_str("\nSystem Description: \n");
        let _ = writeln!(o, "{}", i.software_version.as_deref().unwrap_or(""));
        let _ = writeln!(o, "\nTime remaining: {} seconds", n.holdtime_left);
        let _ = writeln!(o, "Enabled Capabilities: {}", i.capability_letters);
        o.push_str("Management Addresses:\n");
        if i.addresses.is_empty() {
            o.push_str("    - not advertised\n");
        }
        for a in &i.addresses {
            let _ = writeln!(o, "    IP: {a}");
        }
        if let Some(t) = i.med_device_type {
            o.push_str("\nMED Information:\n\n");
            if let Some(m) = &i.model {
                let _ = writeln!(o, "    Model: {m}");
            }
            let _ = writeln!(o, "    Device type: Endpoint Class {}", roman(t));
            if let Some(v) = i.voice_vlan_sent {
                let _ = writeln!(o, "    Network Policy(Voice): VLAN {v}");
            }
            if let Some(mw) = i.power_drawn_mw {
                let _ = writeln!(o, "    PD device, Wattage: {}", watts(mw));
            }
        }
        o.push('\n');
    }
    let _ = writeln!(o, "\nTotal entries displayed: {}", rows.len());
    o
}

fn roman(t: u8) -> &'static str {
    match t {
        1 => "I",
        2 => "II",
        3 => "III",
        _ => "unknown",
    }
}

/// `show lldp neighbors`.
pub fn lldp_neighbors(s: &Snapshot) -> String {
    lldp_neighbors_on(s, None)
}

/// `show lldp neighbors [IFACE]`.
pub fn lldp_neighbors_on(s: &Snapshot, interface: Option<&str>) -> String {
    if !s.lldp {
        return "% LLDP is not enabled\n".into();
    }
    let mut o = String::new();
    o.push_str("Capability codes:\n");
    o.push_str("    (R) Router, (B) Bridge, (T) Telephone, (C) DOCSIS Cable Device\n");
    o.push_str("    (W) WLAN Access Point, (P) Repeater, (S) Station, (O) Other\n\n");
    o.push_str("Device ID           Local Intf     Hold-time  Capability      Port ID\n");
    let rows = lldp_rows(s, interface);
    for n in &rows {
        let i = &n.info;
        let id: String = i.device_id.chars().take(20).collect();
        let _ = writeln!(
            o,
            "{:<20}{:<15}{:<11}{:<16}{}",
            id,
            i.local_port,
            n.holdtime_left,
            i.capability_letters,
            i.port_id.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(o, "\nTotal entries displayed: {}", rows.len());
    o
}

fn watts(mw: u32) -> String {
    format!("{}.{}", mw / 1000, (mw % 1000) / 100)
}

/// `show power inline`.
pub fn power_inline(s: &Snapshot) -> String {
    power_inline_on(s, None)
}

/// `show power inline [IFACE]`: with an interface, only its row (no module summary).
pub fn power_inline_on(s: &Snapshot, interface: Option<&str>) -> String {
    let mut o = String::new();
    if interface.is_none() {
        power_summary(&mut o, s);
    }
    power_rows(&mut o, s, interface);
    o
}

fn power_summary(o: &mut String, s: &Snapshot) {
    o.push_str("Module   Available     Used     Remaining\n");
    o.push_str("          (Watts)     (Watts)    (Watts) \n");
    o.push_str("------   ---------   --------   ---------\n");
    let _ = writeln!(
        o,
        "{:<6}   {:>9}   {:>8}   {:>9}",
        "1",
        watts(s.power.total_mw),
        watts(s.power.used_mw),
        watts(s.power.remaining_mw)
    );
}

fn power_rows(o: &mut String, s: &Snapshot, interface: Option<&str>) {
    o.push_str("Interface Admin  Oper       Power   Device              Class Max\n");
    o.push_str("                            (Watts)                            \n");
    o.push_str("--------- ------ ---------- ------- ------------------- ----- ----\n");
    for p in s
        .power
        .ports
        .iter()
        .filter(|p| interface.is_none_or(|i| p.interface == i))
    {
        let pw = &p.power;
        let admin = match pw.admin {
            PowerAdmin::Auto => "auto",
            PowerAdmin::Never => "off",
        };
        let oper = match pw.oper {
            PowerOper::On => "on",
            PowerOper::Off => "off",
            PowerOper::PowerDeny => "power-deny",
        };
        let device = pw
            .device
            .as_deref()
            .map(|d| {
                let d = if d.len() >= 6 && d[..6].eq_ignore_ascii_case("cisco ") {
                    &d[6..]
                } else {
                    d
                };
                d.chars().take(19).collect::<String>()
            })
            .unwrap_or_else(|| "n/a".into());
        let class = match (pw.oper, pw.class) {
            (PowerOper::On, Some(c)) => c.to_string(),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            o,
            "{:<9} {:<6} {:<10} {:<7} {:<19} {:<5} {}",
            p.interface,
            admin,
            oper,
            watts(pw.allocated_mw),
            device,
            class,
            watts(pw.max_mw)
        );
    }
}

/// `show running-config`: the switch role's configuration as IOS lines, only what differs
/// from IOS's defaults (CDP on, timer 60, holdtime 180, version 2; LLDP off, timer 30,
/// holdtime 120), then one block per interface.
pub fn running_config(s: &Snapshot) -> String {
    let mut o = String::new();
    o.push_str("!\n");
    let _ = writeln!(o, "hostname {}", s.device_id);
    o.push_str("!\n");
    if s.timer_secs != 60 {
        let _ = writeln!(o, "cdp timer {}", s.timer_secs);
    }
    if s.holdtime_secs != 180 {
        let _ = writeln!(o, "cdp holdtime {}", s.holdtime_secs);
    }
    if s.cdp_version != 2 {
        o.push_str("no cdp advertise-v2\n");
    }
    if !s.run {
        o.push_str("no cdp run\n");
    }
    if s.lldp {
        o.push_str("lldp run\n");
    }
    if s.lldp_timer_secs != 30 {
        let _ = writeln!(o, "lldp timer {}", s.lldp_timer_secs);
    }
    if s.lldp_holdtime_secs != 120 {
        let _ = writeln!(o, "lldp holdtime {}", s.lldp_holdtime_secs);
    }
    for i in &s.interfaces {
        o.push_str("!\n");
        let _ = writeln!(o, "interface {}", i.name);
        let _ = writeln!(o, " switchport access vlan {}", i.native_vlan);
        match i.voice_vlan {
            crate::VoiceVlan::Vlan(v) => {
                let _ = writeln!(o, " switchport voice vlan {v}");
            }
            crate::VoiceVlan::Dot1p => o.push_str(" switchport voice vlan dot1p\n"),
            crate::VoiceVlan::Untagged => o.push_str(" switchport voice vlan untagged\n"),
            crate::VoiceVlan::None => {}
        }
        if !i.enabled {
            o.push_str(" no cdp enable\n");
        }
        if !i.lldp_transmit {
            o.push_str(" no lldp transmit\n");
        }
        if !i.lldp_receive {
            o.push_str(" no lldp receive\n");
        }
        if let Some(p) = s.power.ports.iter().find(|p| p.interface == i.name) {
            if p.power.admin == PowerAdmin::Never {
                o.push_str(" power inline never\n");
            }
        }
    }
    o.push_str("!\nend\n");
    o
}
