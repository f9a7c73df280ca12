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

fn cdp_rows(s: &Snapshot) -> Vec<&NeighbourView> {
    s.neighbours
        .iter()
        .filter(|n| n.info.protocol == Proto::Cdp)
        .collect()
}

/// `show cdp neighbors`.
pub fn cdp_neighbors(s: &Snapshot) -> String {
    let mut o = String::new();
    o.push_str("Capability Codes: R - Router, T - Trans Bridge, B - Source Route Bridge\n");
    o.push_str("                  S - Switch, H - Host, I - IGMP, r - Repeater, P - Phone, \n");
    o.push_str("                  D - Remote, C - CVTA, M - Two-port Mac Relay \n\n");
    o.push_str("Device ID        Local Intrfce     Holdtme    Capability  Platform  Port ID\n");
    let rows = cdp_rows(s);
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
    let mut o = String::new();
    let rows = cdp_rows(s);
    for n in &rows {
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
    let _ = writeln!(o, "\nTotal cdp entries displayed : {}", rows.len());
    o
}

/// `show lldp neighbors`.
pub fn lldp_neighbors(s: &Snapshot) -> String {
    let mut o = String::new();
    o.push_str("Capability codes:\n");
    o.push_str("    (R) Router, (B) Bridge, (T) Telephone, (C) DOCSIS Cable Device\n");
    o.push_str("    (W) WLAN Access Point, (P) Repeater, (S) Station, (O) Other\n\n");
    o.push_str("Device ID           Local Intf     Hold-time  Capability      Port ID\n");
    let rows: Vec<_> = s
        .neighbours
        .iter()
        .filter(|n| n.info.protocol == Proto::Lldp)
        .collect();
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
    let mut o = String::new();
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
    o.push_str("Interface Admin  Oper       Power   Device              Class Max\n");
    o.push_str("                            (Watts)                            \n");
    o.push_str("--------- ------ ---------- ------- ------------------- ----- ----\n");
    for p in &s.power.ports {
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
    o
}
