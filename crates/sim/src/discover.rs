//! The phone's side of CDP and LLDP-MED: the `discovery` crate's phone agent, configured
//! per model (platform, software load, power request), and the 802.1Q tag it leads to.

use discovery::PhoneConfig;
use l2::frame::Tci;
use mac::Mac;

use crate::model::Model;
use crate::phone::Timeouts;

/// The discovery agent's settings for one emulated phone: CDP and LLDP-MED, the model's
/// power request (id from the MAC, so that each phone's grant is its own), a query every
/// `discovery_interval` until the switch answers, no VLAN after `discovery`.
pub fn agent_config(
    mac: Mac,
    model: &Model,
    protocol: journal::Protocol,
    t: &Timeouts,
) -> PhoneConfig {
    let request_id: u16 = 1 + (u16::from(mac.0[5]) | (u16::from(mac.0[4]) << 8)) % 0xfffe;
    PhoneConfig {
        mac,
        model: model.digits().to_string(),
        software_version: model.running_load(protocol).to_string(),
        power_consumption_mw: u16::try_from(model.power_request_mw).unwrap_or(u16::MAX),
        power_levels_mw: vec![model.power_request_mw, 0, 0, 0, 0],
        power_request_id: request_id,
        retry: t.discovery_interval,
        vlan_timeout: t.discovery,
        ..PhoneConfig::default()
    }
}

/// The 802.1Q tag a phone writes for voice VLAN `vvid` (None = untagged: 4095 or unknown).
pub fn voice_tag(vvid: Option<u16>, pcp: u8) -> Option<Tci> {
    match vvid {
        Some(4095) | None => None,
        Some(v) => Some(Tci::new(v, pcp)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use cdp::{Pdu, Tlv};
    use discovery::{PhoneAgent, PhoneEvent};
    use journal::VlanVia;
    use l2::frame::{self, Payload};

    fn timeouts() -> Timeouts {
        Timeouts {
            discovery: Duration::from_secs(5),
            discovery_interval: Duration::from_secs(1),
            ..Timeouts::default()
        }
    }

    #[test]
    fn the_phones_cdp_frame_carries_its_model_query_and_power_request() {
        let m = Model::lookup("7965").unwrap();
        let mac: Mac = "001b54aabbcc".parse().unwrap();
        let cfg = agent_config(mac, m, journal::Protocol::Sccp, &timeouts());
        let mut a = PhoneAgent::new(cfg, Instant::now());
        let f = a.poll_transmit().expect("a CDP frame at once");
        let fr = frame::parse(&f).unwrap();
        let Payload::Llc { data, .. } = fr.payload else {
            panic!("not LLC")
        };
        let p = Pdu::decode(data).unwrap();
        assert_eq!(p.device_id(), Some("SEP001B54AABBCC"));
        assert_eq!(p.platform(), Some(m.cdp_platform));
        assert_eq!(
            p.software_version(),
            Some(m.running_load(journal::Protocol::Sccp))
        );
        assert!(p.voip_vlan_query());
        assert_eq!(p.power_requested().unwrap().2[0], 8700);
        assert!(cdp::checksum_ok(data));
        assert!(a.poll_transmit().is_some(), "and an LLDP-MED frame");
    }

    #[test]
    fn learns_vlan_and_its_own_grant_from_a_switch_cdp() {
        let m = Model::lookup("7965").unwrap();
        let mac: Mac = "001b54aabbcc".parse().unwrap();
        let cfg = agent_config(mac, m, journal::Protocol::Sccp, &timeouts());
        let request_id = cfg.power_request_id;
        let now = Instant::now();
        let mut a = PhoneAgent::new(cfg, now);
        let sw = Pdu::new(180)
            .with(Tlv::DeviceId("sw1".into()))
            .with(Tlv::PortId("Gi1/0/5".into()))
            .with(Tlv::VoipVlanReply {
                appliance: 1,
                vlan: 100,
            })
            .with(Tlv::PowerAvailable {
                request_id,
                management_id: 2,
                available_mw: 8700,
                management_level: u32::MAX,
            });
        let f = frame::snap(
            Mac::CDP_MULTICAST.octets(),
            [2, 0, 0, 0, 0, 1],
            None,
            cdp::CISCO_OUI,
            cdp::SNAP_PID,
            &sw.encode().unwrap(),
        )
        .unwrap();
        a.handle_frame(&f, now);
        let evs: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert!(
            evs.contains(&PhoneEvent::PowerGranted { milliwatts: 8700 }),
            "{evs:?}"
        );
        assert!(
            evs.contains(&PhoneEvent::VoiceVlan {
                vlan: Some(100),
                via: VlanVia::Cdp
            }),
            "{evs:?}"
        );
        a.handle_frame(b"junk", now);
        assert_eq!(a.counters().rx_bad, 1);
    }
}
