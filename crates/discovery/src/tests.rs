//! Sans-IO tests: a switch agent and phone agents wired in memory with a virtual clock.

use std::time::{Duration, Instant};

use journal::VlanVia;
use proptest::prelude::*;

use super::*;
use crate::poe::PowerOper;
use crate::settings::Setting;

const SW_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];

fn switch_cfg() -> SwitchConfig {
    SwitchConfig {
        device_id: "sw1.example".into(),
        platform: "cisco WS-C3560-24PS".into(),
        interfaces: vec![
            InterfaceConfig {
                voice_vlan: VoiceVlan::Vlan(100),
                native_vlan: 10,
                pd_class: Some(2),
                ..InterfaceConfig::new("gi1")
            },
            InterfaceConfig {
                voice_vlan: VoiceVlan::Vlan(200),
                ..InterfaceConfig::new("gi2")
            },
        ],
        ..SwitchConfig::default()
    }
}

fn phone_cfg(n: u64) -> PhoneConfig {
    PhoneConfig {
        mac: mac::Mac::new([0x00, 0x1b, 0x54, 0xaa, 0xbb, 0x00]).offset(n),
        address: Some(std::net::Ipv4Addr::new(198, 18, 0, 10)),
        ..PhoneConfig::default()
    }
}

/// Moves frames both ways until nobody has anything to send. Returns the switch frames.
fn pump(sw: &mut SwitchAgent, port: usize, ph: &mut PhoneAgent, now: Instant) -> Vec<Vec<u8>> {
    let mut from_switch = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        while let Some(f) = ph.poll_transmit() {
            sw.handle_frame(port, &f, now);
            moved = true;
        }
        while let Some(t) = sw.poll_transmit() {
            if t.port == port {
                ph.handle_frame(&t.frame, now);
                from_switch.push(t.frame);
            }
            moved = true;
        }
        if !moved {
            break;
        }
    }
    from_switch
}

fn cdp_of(frame: &[u8]) -> Option<cdp::Pdu> {
    match l2::frame::parse(frame).ok()?.payload {
        l2::frame::Payload::Llc { data, .. } => {
            assert!(cdp::checksum_ok(data));
            cdp::Pdu::decode(data).ok()
        }
        _ => None,
    }
}

fn lldp_of(frame: &[u8]) -> Option<lldp::Lldpdu> {
    match l2::frame::parse(frame).ok()?.payload {
        l2::frame::Payload::Ethernet2 {
            ethertype: 0x88cc,
            data,
        } => lldp::Lldpdu::decode(data).ok(),
        _ => None,
    }
}

fn drain_events(sw: &mut SwitchAgent) -> Vec<SwitchEvent> {
    std::iter::from_fn(|| sw.poll_event()).collect()
}

#[test]
fn phone_learns_voice_vlan_and_power_from_switch() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(
        PhoneConfig {
            lldp: false,
            ..phone_cfg(1)
        },
        t0,
    );
    pump(&mut sw, 0, &mut ph, t0);
    assert_eq!(ph.voice_vlan(), Some(100));
    assert_eq!(ph.granted_mw(), Some(6300));
    let pe: Vec<_> = std::iter::from_fn(|| ph.poll_event()).collect();
    assert!(pe.contains(&PhoneEvent::VoiceVlan {
        vlan: Some(100),
        via: VlanVia::Cdp
    }));
    assert!(pe.contains(&PhoneEvent::PowerGranted { milliwatts: 6300 }));

    let ev = drain_events(&mut sw);
    let mac = mac::Mac::new([0x00, 0x1b, 0x54, 0xaa, 0xbb, 0x01]);
    assert!(
        matches!(&ev[0], SwitchEvent::CdpSeen { port, mac: m, platform: Some(p), power_requested_mw: Some(6300) }
        if port == "gi1" && *m == mac && p == "Cisco IP Phone 8845")
    );
    // Class 2 first (7 W), then refined to the 6.3 W the phone asked for.
    let grants: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            SwitchEvent::PowerGranted { milliwatts, .. } => Some(*milliwatts),
            _ => None,
        })
        .collect();
    assert_eq!(grants, vec![7000, 6300]);
    assert!(ev.contains(&SwitchEvent::VoiceVlan {
        port: "gi1".into(),
        mac,
        vlan: Some(100),
        via: VlanVia::Cdp
    }));

    let snap = sw.snapshot(t0 + Duration::from_secs(20));
    let n = &snap.neighbours[0];
    assert_eq!(n.info.device_id, "SEP001B54AABB01");
    assert_eq!(n.info.platform.as_deref(), Some("Cisco IP Phone 8845"));
    assert_eq!(n.info.capability_letters, "H P M");
    assert_eq!(n.info.power_request, Some((1, 0, vec![6300, 0, 0, 0, 0])));
    assert_eq!(n.info.power_granted_mw, Some(6300));
    assert!(n.info.voice_vlan_asked);
    assert_eq!(n.info.voice_vlan_sent, Some(100));
    assert_eq!(n.holdtime_left, 160);
    assert_eq!(snap.power.used_mw, 6300);
    assert_eq!(snap.power.ports[0].power.oper, PowerOper::On);
    assert_eq!(snap.counters.rx_bad_checksum, 0);
    // The phone now echoes the switch's management id: no further triggered replies.
    let mgmt = snap.power.ports[0].power.management_id;
    let pdu = ph.cdp_pdu();
    assert_eq!(pdu.power_requested().map(|r| r.1), Some(mgmt));
    assert!(!pdu.voip_vlan_query(), "no query once the VLAN is known");
}

#[test]
fn voip_vlan_query_is_answered_at_once_and_timer_runs_every_60s() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    // Initial CDP + LLDP on both ports.
    let first: Vec<_> = std::iter::from_fn(|| sw.poll_transmit()).collect();
    assert_eq!(first.len(), 4);
    let p = cdp_of(&first[0].frame).unwrap();
    assert_eq!(p.ttl, 180);
    assert_eq!(p.voip_vlan_reply(), Some(100));
    assert_eq!(p.native_vlan(), Some(10));
    assert_eq!(sw.poll_timeout(), Some(t0 + Duration::from_secs(30)));

    // 5 s later a phone asks: the reply goes out now, not at t0+60.
    let t1 = t0 + Duration::from_secs(5);
    let ph = PhoneAgent::new(phone_cfg(2), t1);
    let mut ph = ph;
    let f = ph.poll_transmit().unwrap();
    sw.handle_frame(0, &f, t1);
    let out: Vec<_> = std::iter::from_fn(|| sw.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].port, 0);
    assert_eq!(cdp_of(&out[0].frame).unwrap().voip_vlan_reply(), Some(100));

    // Periodic: next CDP on port 1 (untouched) at t0+60, on port 0 at t1+60.
    let mut t = t0;
    let mut cdp_times = Vec::new();
    while t < t0 + Duration::from_secs(200) {
        let Some(next) = sw.poll_timeout() else { break };
        t = next;
        sw.handle_timeout(t);
        while let Some(x) = sw.poll_transmit() {
            if x.port == 1 && cdp_of(&x.frame).is_some() {
                cdp_times.push((t - t0).as_secs());
            }
        }
    }
    assert_eq!(&cdp_times[..3], &[60, 120, 180]);
}

#[test]
fn neighbours_expire_after_holdtime_and_power_is_released() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(
        PhoneConfig {
            holdtime_secs: 30,
            lldp: false,
            ..phone_cfg(3)
        },
        t0,
    );
    pump(&mut sw, 1, &mut ph, t0);
    drain_events(&mut sw);
    assert_eq!(sw.snapshot(t0).neighbours.len(), 1);
    assert_eq!(sw.snapshot(t0).power.used_mw, 6300);
    sw.handle_timeout(t0 + Duration::from_secs(29));
    assert_eq!(sw.snapshot(t0).neighbours.len(), 1);
    sw.handle_timeout(t0 + Duration::from_secs(30));
    let snap = sw.snapshot(t0 + Duration::from_secs(30));
    assert!(snap.neighbours.is_empty());
    assert_eq!(snap.power.used_mw, 0);
    assert!(drain_events(&mut sw)
        .iter()
        .any(|e| matches!(e, SwitchEvent::NeighbourLost { port, .. } if port == "gi2")));
}

#[test]
fn lldp_med_endpoint_gets_policy_with_fast_start() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    // Before any MED endpoint: plain LLDP, no MED TLVs.
    let first: Vec<_> = std::iter::from_fn(|| sw.poll_transmit()).collect();
    let l = first.iter().find_map(|t| lldp_of(&t.frame)).unwrap();
    assert!(l.med_capabilities().is_none() && l.network_policy(1).is_none());

    let t1 = t0 + Duration::from_secs(3);
    let mut ph = PhoneAgent::new(
        PhoneConfig {
            cdp: false,
            ..phone_cfg(4)
        },
        t1,
    );
    let frames = pump(&mut sw, 0, &mut ph, t1);
    let l = frames.iter().find_map(|f| lldp_of(f)).unwrap();
    let pol = l.network_policy(lldp::med::APP_VOICE).unwrap();
    assert_eq!(pol, lldp::NetworkPolicy::voice(100));
    assert_eq!((pol.tagged, pol.priority, pol.dscp), (true, 5, 46));
    assert_eq!(l.med_capabilities().map(|m| m.1), Some(4));
    assert_eq!(ph.voice_vlan(), Some(100));
    let ev = drain_events(&mut sw);
    assert!(ev.iter().any(
        |e| matches!(e, SwitchEvent::LldpSeen { med: true, model: Some(m), .. } if m == "CP-8845")
    ));
    assert!(ev.contains(&SwitchEvent::VoiceVlan {
        port: "gi1".into(),
        mac: mac::Mac::new([0x00, 0x1b, 0x54, 0xaa, 0xbb, 0x04]),
        vlan: Some(100),
        via: VlanVia::LldpMed
    }));
    // Fast start: 3 more LLDPDUs one second apart on port 0, then the 30 s interval.
    let mut times = Vec::new();
    let mut t = t1;
    while t < t1 + Duration::from_secs(40) {
        t = sw.poll_timeout().unwrap();
        sw.handle_timeout(t);
        while let Some(x) = sw.poll_transmit() {
            if x.port == 0 && lldp_of(&x.frame).is_some() {
                times.push((t - t1).as_secs());
            }
        }
    }
    assert_eq!(&times[..4], &[1, 2, 3, 33]);
}

#[test]
fn phone_reports_none_after_timeout() {
    let t0 = Instant::now();
    let mut ph = PhoneAgent::new(
        PhoneConfig {
            vlan_timeout: Duration::from_secs(10),
            ..phone_cfg(5)
        },
        t0,
    );
    let mut t = t0;
    let mut sent = 0;
    while ph.state() == VlanState::Waiting {
        while ph.poll_transmit().is_some() {
            sent += 1;
        }
        t = ph.poll_timeout().unwrap();
        ph.handle_timeout(t);
    }
    assert_eq!(t - t0, Duration::from_secs(10));
    assert_eq!(ph.state(), VlanState::TimedOut);
    assert!(
        sent >= 8,
        "CDP+LLDP retried every 2 s while waiting ({sent})"
    );
    let ev: Vec<_> = std::iter::from_fn(|| ph.poll_event()).collect();
    assert_eq!(
        ev,
        vec![PhoneEvent::VoiceVlan {
            vlan: None,
            via: VlanVia::None
        }]
    );
}

#[test]
fn cdp_run_and_enable_switches() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    while sw.poll_transmit().is_some() {}
    // no cdp enable on gi2: one holdtime-0 CDP, then no CDP there (LLDP has its own
    // `lldp transmit`, as on IOS).
    assert!(sw.set_interface_enabled("gi2", false, t0));
    let out: Vec<_> = std::iter::from_fn(|| sw.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(cdp_of(&out[0].frame).unwrap().ttl, 0);
    assert!(!sw.set_interface_enabled("nope", false, t0));
    let mut ph = PhoneAgent::new(phone_cfg(6), t0);
    let f = ph.poll_transmit().unwrap();
    sw.handle_frame(1, &f, t0);
    assert!(sw.snapshot(t0).neighbours.is_empty());
    assert_eq!(sw.counters().rx_ignored, 1);
    // no cdp run: holdtime-0 on gi1, nothing periodic afterwards, phones' CDP ignored.
    sw.set_run(false, t0);
    let out: Vec<_> = std::iter::from_fn(|| sw.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(cdp_of(&out[0].frame).unwrap().ttl, 0);
    sw.handle_timeout(t0 + Duration::from_secs(300));
    assert!(std::iter::from_fn(|| sw.poll_transmit()).all(|t| cdp_of(&t.frame).is_none()));
    sw.set_run(true, t0 + Duration::from_secs(300));
    assert!(std::iter::from_fn(|| sw.poll_transmit()).any(|t| cdp_of(&t.frame).is_some()));
}

#[test]
fn budget_is_shared_between_ports() {
    let t0 = Instant::now();
    let mut cfg = switch_cfg();
    cfg.power_budget_mw = 20_000;
    cfg.interfaces[1].pd_class = Some(4);
    let mut sw = SwitchAgent::new(cfg, &[SW_MAC, SW_MAC], t0).unwrap();
    let mut big = PhoneAgent::new(
        PhoneConfig {
            lldp: false,
            power_levels_mw: vec![25_000],
            ..phone_cfg(7)
        },
        t0,
    );
    let mut small = PhoneAgent::new(
        PhoneConfig {
            lldp: false,
            ..phone_cfg(8)
        },
        t0,
    );
    pump(&mut sw, 0, &mut small, t0); // class 2, 7 W -> 6.3 W
    pump(&mut sw, 1, &mut big, t0); // class 4 wants 30 W: only 13.7 W left -> denied
    let s = sw.snapshot(t0);
    assert_eq!(s.power.ports[0].power.allocated_mw, 6300);
    assert_eq!(s.power.ports[1].power.oper, PowerOper::PowerDeny);
    assert!(s.power.used_mw <= s.power.total_mw);
    assert_eq!(big.granted_mw(), None);
    let text = show::power_inline(&s);
    assert!(text.contains("power-deny"), "{text}");
}

#[test]
fn bad_frames_are_counted_not_fatal() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(phone_cfg(9), t0);
    let good = ph.poll_transmit().unwrap();
    // wrong checksum: accepted, counted
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 0xff;
    sw.handle_frame(0, &bad_sum, t0);
    assert_eq!(sw.counters().rx_bad_checksum, 1);
    assert_eq!(sw.counters().rx_cdp, 1);
    // truncated (802.3 length larger than the frame)
    sw.handle_frame(0, &good[..40], t0);
    assert_eq!(sw.counters().rx_bad_frame, 1);
    // over-long TLV inside a frame whose 802.3 length is right
    let mut over = good.clone();
    over[22 + 4 + 2..22 + 4 + 4].copy_from_slice(&0x0fffu16.to_be_bytes());
    sw.handle_frame(0, &over, t0);
    assert_eq!(sw.counters().rx_bad_cdp, 1);
    // garbage
    sw.handle_frame(0, &[0xde, 0xad], t0);
    sw.handle_frame(7, &good, t0);
    assert_eq!(sw.counters().rx_bad_frame, 2);
    assert_eq!(sw.counters().rx_frames, 5);
}

proptest! {
    #[test]
    fn switch_survives_random_frames(frames in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let t0 = Instant::now();
        let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
        for (i, f) in frames.iter().enumerate() {
            sw.handle_frame(i % 2, f, t0 + Duration::from_secs(i as u64));
        }
        prop_assert_eq!(sw.counters().rx_frames, frames.len() as u64);
    }

    #[test]
    fn switch_survives_mutated_phone_frames(pos in 0usize..300, byte in any::<u8>(), cut in 0usize..300, lldp in any::<bool>()) {
        let t0 = Instant::now();
        let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
        let mut ph = PhoneAgent::new(phone_cfg(10), t0);
        let mut f = ph.poll_transmit().unwrap();
        if lldp { f = ph.poll_transmit().unwrap(); }
        let p = pos % f.len();
        f[p] = byte;
        f.truncate(f.len().saturating_sub(cut % f.len()));
        sw.handle_frame(0, &f, t0);
        let mut ph2 = PhoneAgent::new(phone_cfg(11), t0);
        ph2.handle_frame(&f, t0);
    }
}

#[test]
fn show_cdp_neighbors_layouts() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(
        PhoneConfig {
            lldp: false,
            ..phone_cfg(1)
        },
        t0,
    );
    pump(&mut sw, 0, &mut ph, t0);
    let s = sw.snapshot(t0 + Duration::from_secs(34));
    let text = show::cdp_neighbors(&s);
    assert!(text
        .contains("Device ID        Local Intrfce     Holdtme    Capability  Platform  Port ID"));
    let row = text
        .lines()
        .find(|l| l.starts_with("SEP001B54AABB01"))
        .unwrap();
    assert_eq!(
        row,
        "SEP001B54AABB01  gi1               146             H P M  IP Phone  Port 1"
    );
    assert!(text.contains("Total cdp entries displayed : 1"));

    let d = show::cdp_neighbors_detail(&s);
    for want in [
        "Device ID: SEP001B54AABB01",
        "  IP address: 198.18.0.10",
        "Platform: Cisco IP Phone 8845,  Capabilities: Host Phone Two-port Mac Relay",
        "Interface: gi1,  Port ID (outgoing port): Port 1",
        "Holdtime : 146 sec",
        "sip88xx.14-2-1-0001-14",
        "advertisement version: 2",
        "Duplex: full",
        "Power drawn: 6.300 Watts",
        "Power request id: 1, Power management id: 0",
        "Power request levels are:6300 0 0 0 0",
    ] {
        assert!(d.contains(want), "missing {want:?} in\n{d}");
    }

    let p = show::power_inline(&s);
    assert!(
        p.contains("1            370.0        6.3       363.7"),
        "{p}"
    );
    let gi1 = p.lines().find(|l| l.starts_with("gi1")).unwrap();
    assert_eq!(
        gi1,
        "gi1       auto   on         6.3     IP Phone 8845       2     30.0"
    );
    let gi2 = p.lines().find(|l| l.starts_with("gi2")).unwrap();
    assert!(gi2.contains("off") && gi2.contains("n/a"));
    // The snapshot serializes (admin API).
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["neighbours"][0]["device_id"], "SEP001B54AABB01");
    assert_eq!(j["power"]["ports"][0]["oper"], "on");
}

#[test]
fn config_defaults_validation_and_file_form() {
    let d = SwitchConfig::default();
    assert_eq!(
        (d.timer_secs, d.holdtime_secs, d.run, d.lldp),
        (60, 180, true, true)
    );
    d.validate().unwrap();
    let c: SwitchConfig = toml::from_str(
        r#"
        timer_secs = 30
        power_budget_mw = 100000
        [[interfaces]]
        name = "p1"
        voice_vlan = 100
        native_vlan = 10
        [[interfaces]]
        name = "p2"
        voice_vlan = "dot1p"
        enabled = false
        "#,
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.interfaces[0].voice_vlan, VoiceVlan::Vlan(100));
    assert_eq!(c.interfaces[1].voice_vlan, VoiceVlan::Dot1p);
    assert_eq!(c.interfaces[1].power_max_mw, 30_000);
    assert!(toml::from_str::<SwitchConfig>("[[interfaces]]\nname='x'\nvoice_vlan=5000").is_err());
    assert!(toml::from_str::<SwitchConfig>("bogus = 1").is_err());
    let bad = |f: &dyn Fn(&mut SwitchConfig)| {
        let mut c = switch_cfg();
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert_eq!(bad(&|c| c.timer_secs = 4), ConfigError::BadTimer(4));
    assert_eq!(
        bad(&|c| c.holdtime_secs = 256),
        ConfigError::BadHoldtime(256)
    );
    assert_eq!(
        bad(&|c| c.interfaces[1].name = "gi1".into()),
        ConfigError::DuplicateInterface("gi1".into())
    );
    assert_eq!(
        bad(&|c| c.interfaces[0].pd_class = Some(5)),
        ConfigError::BadClass(5)
    );
    assert_eq!(
        bad(&|c| c.interfaces[0].native_vlan = 0),
        ConfigError::BadVlan(0)
    );
    assert_eq!(
        bad(&|c| c.interfaces[0].power_max_mw = 40_000),
        ConfigError::BadPortPower(40_000)
    );
}

#[test]
fn debug_categories_switch_at_run_time() {
    let t0 = Instant::now();
    let sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let flags = sw.debug_flags();
    assert!(flags.enabled().is_empty());
    flags.set("packets".parse().unwrap(), true);
    flags.set(DebugCategory::Adjacency, true);
    assert_eq!(
        flags.enabled(),
        vec![DebugCategory::Packets, DebugCategory::Adjacency]
    );
    flags.set(DebugCategory::Packets, false);
    assert!(!flags.is_on(DebugCategory::Packets));
    assert!("bogus".parse::<DebugCategory>().is_err());
}

#[test]
fn forged_device_id_flood_is_bounded() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    for i in 0..200u32 {
        let pdu = cdp::Pdu::new(180).with(cdp::Tlv::DeviceId(format!("forged{i}")));
        let f = l2::frame::snap(
            cdp::MULTICAST,
            [0x02, 0, 0, 0, (i >> 8) as u8, i as u8],
            None,
            cdp::CISCO_OUI,
            cdp::SNAP_PID,
            &pdu.encode().unwrap(),
        )
        .unwrap();
        sw.handle_frame(0, &f, t0);
    }
    let s = sw.snapshot(t0);
    assert_eq!(s.neighbours.len(), crate::neighbors::MAX_PER_PORT);
    assert_eq!(
        s.counters.rx_table_full,
        200 - crate::neighbors::MAX_PER_PORT as u64
    );
}

#[test]
fn cdp_version_1_when_configured() {
    let t0 = Instant::now();
    let mut cfg = switch_cfg();
    cfg.cdp_version = 1;
    cfg.holdtime_secs = 90;
    let mut sw = SwitchAgent::new(cfg, &[SW_MAC, SW_MAC], t0).unwrap();
    let p = std::iter::from_fn(|| sw.poll_transmit())
        .find_map(|t| cdp_of(&t.frame))
        .unwrap();
    assert_eq!((p.version, p.ttl), (1, 90));
    // A CDPv1 phone is understood as well.
    let mut ph = PhoneAgent::new(phone_cfg(12), t0);
    let mut pdu = ph.cdp_pdu();
    pdu.version = 1;
    let f = l2::frame::snap(
        cdp::MULTICAST,
        [0x00, 0x1b, 0x54, 0xaa, 0xbb, 0x0c],
        None,
        cdp::CISCO_OUI,
        cdp::SNAP_PID,
        &pdu.encode().unwrap(),
    )
    .unwrap();
    while ph.poll_transmit().is_some() {}
    sw.handle_frame(0, &f, t0);
    assert_eq!(sw.snapshot(t0).neighbours[0].info.version, 1);
}

/// One step of a random scenario (quinn-style operation-sequence testing).
#[derive(Debug, Clone)]
enum Op {
    PhoneSends { phone: usize, port: usize },
    Advance(u16),
    Run(bool),
    Enable { port: usize, on: bool },
    Garbage { port: usize, bytes: Vec<u8> },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, 0usize..2).prop_map(|(phone, port)| Op::PhoneSends { phone, port }),
        3 => (1u16..400).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Run),
        1 => (0usize..2, any::<bool>()).prop_map(|(port, on)| Op::Enable { port, on }),
        1 => (0usize..2, proptest::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(port, bytes)| Op::Garbage { port, bytes }),
    ]
}

proptest! {
    /// Whatever happens, the budget is never overdrawn, neighbours never outlive their
    /// holdtime, every frame we send decodes, and the agent always has a next deadline.
    #[test]
    fn random_scenarios_keep_invariants(ops in proptest::collection::vec(op(), 1..60),
                                        budget in 5_000u32..60_000) {
        let t0 = Instant::now();
        let mut cfg = switch_cfg();
        cfg.power_budget_mw = budget;
        let mut sw = SwitchAgent::new(cfg, &[SW_MAC, SW_MAC], t0).unwrap();
        let mut phones: Vec<PhoneAgent> = (0..4)
            .map(|i| PhoneAgent::new(PhoneConfig { holdtime_secs: 60, ..phone_cfg(20 + i) }, t0))
            .collect();
        let mut now = t0;
        for op in ops {
            match op {
                Op::PhoneSends { phone, port } => {
                    phones[phone].handle_timeout(now + Duration::from_secs(3600));
                    while let Some(f) = phones[phone].poll_transmit() {
                        sw.handle_frame(port, &f, now);
                    }
                }
                Op::Advance(s) => {
                    now += Duration::from_secs(u64::from(s));
                    sw.handle_timeout(now);
                }
                Op::Run(on) => sw.set_run(on, now),
                Op::Enable { port, on } => {
                    let name = ["gi1", "gi2"][port];
                    prop_assert!(sw.set_interface_enabled(name, on, now));
                }
                Op::Garbage { port, bytes } => sw.handle_frame(port, &bytes, now),
            }
            while let Some(t) = sw.poll_transmit() {
                prop_assert!(cdp_of(&t.frame).is_some() || lldp_of(&t.frame).is_some());
                for p in &mut phones {
                    p.handle_frame(&t.frame, now);
                }
            }
            let s = sw.snapshot(now);
            prop_assert!(s.power.used_mw <= s.power.total_mw);
            for n in &s.neighbours {
                prop_assert!(n.holdtime_left <= u32::from(n.info.holdtime_secs));
                prop_assert!(n.holdtime_left > 0);
            }
            let active = s.interfaces.iter().any(|i| i.enabled) && (s.run || s.lldp);
            prop_assert!(sw.poll_timeout().is_some() || !active);
        }
    }
}

#[test]
fn tagged_phone_frames_are_understood() {
    // A tag left in the frame (or re-inserted by l2 from PACKET_AUXDATA) is skipped.
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(phone_cfg(13), t0);
    let mut f = ph.poll_transmit().unwrap();
    l2::frame::insert_tag(&mut f, 0x8100, l2::Tci::new(100, 5));
    sw.handle_frame(0, &f, t0);
    assert_eq!(sw.counters().rx_cdp, 1);
    assert_eq!(sw.snapshot(t0).neighbours.len(), 1);
}

#[test]
fn long_device_ids_wrap_like_ios() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let pdu = cdp::Pdu::new(180)
        .with(cdp::Tlv::DeviceId("core-switch-01.example.net".into()))
        .with(cdp::Tlv::PortId("GigabitEthernet1/0/48".into()))
        .with(cdp::Tlv::Capabilities(cdp::Capabilities(0x29)))
        .with(cdp::Tlv::Platform("cisco WS-C3850-48P".into()));
    let f = l2::frame::snap(
        cdp::MULTICAST,
        [0x02, 9, 9, 9, 9, 9],
        None,
        cdp::CISCO_OUI,
        cdp::SNAP_PID,
        &pdu.encode().unwrap(),
    )
    .unwrap();
    sw.handle_frame(1, &f, t0);
    let text = show::cdp_neighbors(&sw.snapshot(t0));
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| *l == "core-switch-01.example.net")
        .unwrap();
    assert_eq!(
        lines[i + 1],
        // As IOS: a platform cut to 9 characters leaves one space before the port.
        "                 gi2               180             R S I  WS-C3850- GigabitEthernet1/0/48"
    );
}

/// Every frame the agent has to send now, drained.
fn drain(sw: &mut SwitchAgent) -> Vec<Transmit> {
    std::iter::from_fn(|| sw.poll_transmit()).collect()
}

#[test]
fn cdp_timer_and_holdtime_apply_at_once() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    drain(&mut sw);
    sw.apply(&Setting::CdpHoldtime(37), t0).unwrap();
    sw.apply(&Setting::CdpTimer(7), t0).unwrap();
    // The next periodic CDP is due within the new timer, and carries the new holdtime.
    let due = sw.poll_timeout().unwrap();
    assert!(due <= t0 + Duration::from_secs(7), "{:?}", due - t0);
    sw.handle_timeout(t0 + Duration::from_secs(7));
    let cdps: Vec<_> = drain(&mut sw)
        .into_iter()
        .filter_map(|t| cdp_of(&t.frame))
        .collect();
    assert_eq!(cdps.len(), 2, "one per port");
    assert!(cdps.iter().all(|p| p.ttl == 37 && p.version == 2));
    // And then every 7 s.
    sw.handle_timeout(t0 + Duration::from_secs(13));
    assert!(drain(&mut sw).iter().all(|t| cdp_of(&t.frame).is_none()));
    sw.handle_timeout(t0 + Duration::from_secs(14));
    assert_eq!(
        drain(&mut sw)
            .iter()
            .filter(|t| cdp_of(&t.frame).is_some())
            .count(),
        2
    );
    // IOS's ranges, nothing changed on refusal.
    assert_eq!(
        sw.apply(&Setting::CdpTimer(4), t0),
        Err(ConfigError::BadTimer(4))
    );
    assert_eq!(
        sw.apply(&Setting::CdpHoldtime(256), t0),
        Err(ConfigError::BadHoldtime(256))
    );
    let snap = sw.snapshot(t0);
    assert_eq!((snap.timer_secs, snap.holdtime_secs), (7, 37));
    // no cdp advertise-v2: version 1 PDUs, counted as such.
    sw.apply(&Setting::CdpAdvertiseV2(false), t0).unwrap();
    sw.handle_timeout(t0 + Duration::from_secs(21));
    let v: Vec<u8> = drain(&mut sw)
        .iter()
        .filter_map(|t| cdp_of(&t.frame))
        .map(|p| p.version)
        .collect();
    assert_eq!(v, vec![1, 1]);
    assert_eq!(sw.counters().tx_cdp_v1, 2);
    assert!(sw.counters().tx_cdp_v2 >= 4);
    assert_eq!(
        sw.apply(
            &Setting::CdpEnable {
                interface: "gi9".into(),
                on: false
            },
            t0
        ),
        Err(ConfigError::UnknownInterface("gi9".into()))
    );
}

#[test]
fn lldp_transmit_and_run_per_port() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    drain(&mut sw);
    sw.apply(
        &Setting::LldpTransmit {
            interface: "gi2".into(),
            on: false,
        },
        t0,
    )
    .unwrap();
    let out = drain(&mut sw);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].port, 1);
    assert_eq!(lldp_of(&out[0].frame).unwrap().ttl(), Some(0));
    sw.handle_timeout(t0 + Duration::from_secs(30));
    let lldp_ports: Vec<usize> = drain(&mut sw)
        .iter()
        .filter(|t| lldp_of(&t.frame).is_some())
        .map(|t| t.port)
        .collect();
    assert_eq!(lldp_ports, vec![0]);
    sw.apply(&Setting::LldpRun(false), t0 + Duration::from_secs(30))
        .unwrap();
    sw.handle_timeout(t0 + Duration::from_secs(200));
    assert!(drain(&mut sw)
        .iter()
        .all(|t| lldp_of(&t.frame).is_none() || lldp_of(&t.frame).unwrap().ttl() == Some(0)));
    assert_eq!(
        show::lldp_global(&sw.snapshot(t0)),
        "% LLDP is not enabled\n"
    );
}

#[test]
fn power_inline_never_releases_the_budget_and_the_neighbour() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(phone_cfg(1), t0);
    pump(&mut sw, 0, &mut ph, t0);
    let snap = sw.snapshot(t0);
    assert!(snap.power.used_mw > 0);
    assert!(!snap.neighbours.is_empty());
    sw.apply(
        &Setting::PowerInline {
            interface: "gi1".into(),
            admin: PowerAdmin::Never,
        },
        t0,
    )
    .unwrap();
    let snap = sw.snapshot(t0);
    assert_eq!(snap.power.used_mw, 0);
    assert!(snap.neighbours.is_empty());
    let text = show::power_inline_on(&snap, Some("gi1"));
    assert!(text.contains("\ngi1       off    off        0.0"), "{text}");
    assert!(!text.contains("Module"), "{text}");
    assert!(show::running_config(&snap).contains("interface gi1\n switchport access vlan 10\n switchport voice vlan 100\n power inline never\n"));
}

#[test]
fn clear_table_and_counters() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(phone_cfg(1), t0);
    pump(&mut sw, 0, &mut ph, t0);
    assert!(sw.counters().rx_cdp > 0);
    assert_eq!(sw.counters().rx_cdp, sw.counters().rx_cdp_v2);
    sw.clear_table(Proto::Cdp, t0);
    let snap = sw.snapshot(t0);
    assert!(snap
        .neighbours
        .iter()
        .all(|n| n.info.protocol == Proto::Lldp));
    assert!(snap
        .neighbours
        .iter()
        .any(|n| n.info.protocol == Proto::Lldp));
    sw.clear_counters(Proto::Cdp);
    assert_eq!(sw.counters().rx_cdp, 0);
    assert_eq!(sw.counters().tx_cdp, 0);
    assert!(sw.counters().rx_lldp > 0);
}

/// `show cdp`, `show cdp traffic` and `show cdp interface` as IOS prints them (Cisco IOS
/// Configuration Fundamentals Command Reference, `show cdp` / `show cdp traffic` /
/// `show cdp interface` examples; the "is  enabled" double blank is IOS's).
#[test]
fn global_views_are_ios_layouts() {
    let t0 = Instant::now();
    let mut sw = SwitchAgent::new(switch_cfg(), &[SW_MAC, SW_MAC], t0).unwrap();
    let mut ph = PhoneAgent::new(phone_cfg(1), t0);
    pump(&mut sw, 0, &mut ph, t0);
    // A CDP PDU with a bad version and one cut short, for the error counters.
    drain(&mut sw);
    let mut bad = cdp_frame_from_phone();
    bad[22] = 9; // version 9: the CDP header sits after 802.3 + LLC/SNAP (22 bytes)
    sw.handle_frame(0, &bad, t0);
    let mut cut = cdp_frame_from_phone();
    let l = cut.len();
    cut.truncate(l - 3);
    // Fix the 802.3 length so only the CDP PDU is short.
    let len = (cut.len() - 14) as u16;
    cut[12..14].copy_from_slice(&len.to_be_bytes());
    sw.handle_frame(0, &cut, t0);
    let snap = sw.snapshot(t0);
    assert_eq!(
        show::cdp_global(&snap),
        "Global CDP information:\n        Sending CDP packets every 60 seconds\n        Sending a holdtime value of 180 seconds\n        Sending CDPv2 advertisements is  enabled\n"
    );
    let c = &snap.counters;
    assert_eq!(c.rx_cdp_hdr_syntax, 1);
    assert_eq!(c.rx_cdp_fragmented + c.rx_cdp_invalid, 1);
    let t = show::cdp_traffic(&snap);
    let want = format!(
        "CDP counters :\n        Total packets output: {}, Input: {}\n        Hdr syntax: 1, Chksum error: {}, Encaps failed: 0\n        No memory: 0, Invalid packet: {}, Fragmented: {}\n        CDP version 1 advertisements output: 0, Input: 0\n        CDP version 2 advertisements output: {}, Input: {}\n",
        c.tx_cdp, c.rx_cdp, c.rx_bad_checksum, c.rx_cdp_invalid, c.rx_cdp_fragmented, c.tx_cdp, c.rx_cdp
    );
    assert_eq!(t, want);
    assert_eq!(
        show::cdp_interface(&snap, Some("gi2")),
        "gi2 is up, line protocol is up\n  Encapsulation ARPA\n  Sending CDP packets every 60 seconds\n  Holdtime is 180 seconds\n"
    );
    // The entry view is the detail block of that device only.
    let id = ph_device_id(1);
    let e = show::cdp_entry(&snap, &id);
    assert!(
        e.starts_with(&format!("-------------------------\nDevice ID: {id}\n")),
        "{e}"
    );
    assert_eq!(show::cdp_entry(&snap, "nobody"), "");
    assert_eq!(show::cdp_entry(&snap, "*"), e);
    let mut snap2 = snap.clone();
    snap2.run = false;
    assert_eq!(show::cdp_global(&snap2), "% CDP is not enabled\n");
    // Neighbours by interface.
    assert!(
        show::cdp_neighbors_on(&snap, Some("gi2")).ends_with("Total cdp entries displayed : 0\n")
    );
    assert!(
        show::cdp_neighbors_on(&snap, Some("gi1")).ends_with("Total cdp entries displayed : 1\n")
    );
}

fn ph_device_id(n: u64) -> String {
    phone_cfg(n).mac.device_name()
}

/// A phone's first CDP frame (802.3 + LLC/SNAP + PDU).
fn cdp_frame_from_phone() -> Vec<u8> {
    let mut ph = PhoneAgent::new(phone_cfg(2), Instant::now());
    std::iter::from_fn(|| ph.poll_transmit())
        .find(|f| cdp_of(f).is_some())
        .expect("the phone sends CDP")
}
