//! The phone's side of CDP and LLDP-MED: announce itself with a power request and a VoIP
//! VLAN query, and learn the voice VLAN and power grant from the switch's answers.

use cdp::{Capabilities, Duplex, Pdu, Tlv};
use l2::frame::{self, Payload, Tci};
use mac::Mac;

use crate::model::Model;

/// CDP's SNAP OUI and protocol id.
const CISCO_OUI: [u8; 3] = [0x00, 0x00, 0x0c];
const CDP_PID: u16 = 0x2000;
const ETHERTYPE_LLDP: u16 = 0x88cc;
/// H + P + M, what `show cdp neighbors` shows for a phone.
const PHONE_CAPS: u32 = 0x490;
/// The query bytes voiphopper uses to impersonate a phone (l2-dhcp-tftp.md 1.6.3).
const VOIP_VLAN_QUERY: [u8; 4] = [0x20, 0x02, 0x00, 0x01];

/// What the phone has learnt so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learnt {
    /// VVID from CDP 0x000E.
    pub cdp_vlan: Option<u16>,
    /// VLAN from an LLDP-MED voice Network Policy (tagged, not "unknown").
    pub lldp_vlan: Option<u16>,
    /// (request id, management id, available mW) from CDP Power Available.
    pub power: Option<(u16, u16, u32)>,
    pub switch: Option<String>,
    pub bad_frames: u32,
}

/// Builds the phone's CDP frame (untagged: before the VLAN is known).
pub fn cdp_frame(mac: Mac, model: &Model, load: &str, request_id: u16, mgmt_id: u16) -> Vec<u8> {
    let mut levels = vec![model.power_request_mw, 0, 0, 0, 0];
    levels.truncate(5);
    let pdu = Pdu::new(180)
        .with(Tlv::DeviceId(mac.device_name()))
        .with(Tlv::PortId("Port 1".into()))
        .with(Tlv::Capabilities(Capabilities(PHONE_CAPS)))
        .with(Tlv::SoftwareVersion(load.to_string()))
        .with(Tlv::Platform(model.cdp_platform.to_string()))
        .with(Tlv::Duplex(Duplex(1)))
        .with(Tlv::VoipVlanQuery(VOIP_VLAN_QUERY.to_vec()))
        .with(Tlv::PowerConsumption(
            u16::try_from(model.power_request_mw).unwrap_or(u16::MAX),
        ))
        .with(Tlv::PowerRequested {
            request_id,
            management_id: mgmt_id,
            levels_mw: levels,
        });
    let body = pdu.encode().unwrap_or_default();
    frame::snap(
        Mac::CDP_MULTICAST.octets(),
        mac.octets(),
        None,
        CISCO_OUI,
        CDP_PID,
        &body,
    )
    .unwrap_or_default()
}

/// Builds the phone's LLDP-MED frame (class III endpoint, PD power request).
pub fn lldp_frame(mac: Mac, model: &Model, load: &str) -> Vec<u8> {
    let pdu = lldp::Lldpdu::new(mac.octets(), "Port 1", 180)
        .with(lldp::Tlv::SystemName(mac.device_name()))
        .with(lldp::Tlv::SystemDescription(format!(
            "{} {load}",
            model.cdp_platform
        )))
        .with(lldp::Tlv::SystemCapabilities {
            available: 0x24, // bridge + telephone
            enabled: 0x20,
        })
        .with(lldp::Tlv::MedCapabilities {
            capabilities: 0x33, // capabilities, network policy, extended power PD, inventory
            device_type: 3,     // endpoint class III
        });
    let body = pdu.encode().unwrap_or_default();
    frame::ethernet2(
        Mac::LLDP_MULTICAST.octets(),
        mac.octets(),
        None,
        ETHERTYPE_LLDP,
        &body,
    )
}

/// Reads one frame heard on the phone port; updates `l` with anything the switch said.
pub fn learn(frame_bytes: &[u8], own: Mac, l: &mut Learnt) {
    let Ok(f) = frame::parse(frame_bytes) else {
        l.bad_frames += 1;
        return;
    };
    if f.src == own.octets() {
        return;
    }
    match f.payload {
        Payload::Llc {
            snap: Some((oui, pid)),
            data,
            ..
        } if oui == CISCO_OUI && pid == CDP_PID => match Pdu::decode(data) {
            Ok(p) => {
                if let Some(v) = p.voip_vlan_reply() {
                    l.cdp_vlan = Some(v);
                }
                if let Some((req, mgmt, avail, _)) = p.power_available() {
                    l.power = Some((req, mgmt, avail));
                }
                if l.switch.is_none() {
                    l.switch = p.device_id().map(|d| match p.port_id() {
                        Some(port) => format!("{d} {port}"),
                        None => d.to_string(),
                    });
                }
            }
            Err(_) => l.bad_frames += 1,
        },
        Payload::Ethernet2 {
            ethertype: ETHERTYPE_LLDP,
            data,
        } => match lldp::Lldpdu::decode(data) {
            Ok(p) => {
                if let Some(np) = p.network_policy(lldp::med::APP_VOICE) {
                    if !np.unknown {
                        l.lldp_vlan = Some(if np.tagged { np.vlan } else { 4095 });
                    }
                }
                if l.switch.is_none() {
                    l.switch = p.system_name().map(str::to_string);
                }
            }
            Err(_) => l.bad_frames += 1,
        },
        _ => {}
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

    #[test]
    fn phone_cdp_frame_decodes_with_query_and_power_request() {
        let m = crate::model::Model::lookup("7965").unwrap();
        let mac: Mac = "001b54aabbcc".parse().unwrap();
        let f = cdp_frame(mac, m, "SCCP45.9-4-2SR3-1S", 7, 0);
        let fr = frame::parse(&f).unwrap();
        let Payload::Llc { data, .. } = fr.payload else {
            panic!("not LLC")
        };
        let p = Pdu::decode(data).unwrap();
        assert_eq!(p.device_id(), Some("SEP001B54AABBCC"));
        assert_eq!(p.platform(), Some("Cisco IP Phone 7965"));
        assert!(p.voip_vlan_query());
        assert_eq!(p.power_requested().unwrap().2[0], 8700);
        assert!(cdp::checksum_ok(data));
    }

    #[test]
    fn learns_vlan_and_grant_from_a_switch_cdp() {
        let sw = Pdu::new(180)
            .with(Tlv::DeviceId("sw1".into()))
            .with(Tlv::PortId("Gi1/0/5".into()))
            .with(Tlv::VoipVlanReply {
                appliance: 1,
                vlan: 100,
            })
            .with(Tlv::PowerAvailable {
                request_id: 7,
                management_id: 2,
                available_mw: 8700,
                management_level: u32::MAX,
            });
        let f = frame::snap(
            Mac::CDP_MULTICAST.octets(),
            [2, 0, 0, 0, 0, 1],
            None,
            CISCO_OUI,
            CDP_PID,
            &sw.encode().unwrap(),
        )
        .unwrap();
        let mut l = Learnt::default();
        learn(&f, "001b54aabbcc".parse().unwrap(), &mut l);
        assert_eq!(l.cdp_vlan, Some(100));
        assert_eq!(l.power, Some((7, 2, 8700)));
        assert_eq!(l.switch.as_deref(), Some("sw1 Gi1/0/5"));
        learn(b"junk", "001b54aabbcc".parse().unwrap(), &mut l);
        assert_eq!(l.bad_frames, 1);
    }

    #[test]
    fn learns_vlan_from_lldp_med() {
        let sw = lldp::Lldpdu::new([2, 0, 0, 0, 0, 1], "ge5", 120)
            .with(lldp::Tlv::NetworkPolicy(lldp::NetworkPolicy::voice(200)));
        let f = frame::ethernet2(
            Mac::LLDP_MULTICAST.octets(),
            [2, 0, 0, 0, 0, 1],
            None,
            ETHERTYPE_LLDP,
            &sw.encode().unwrap(),
        );
        let mut l = Learnt::default();
        learn(&f, "001b54aabbcc".parse().unwrap(), &mut l);
        assert_eq!(l.lldp_vlan, Some(200));
        let m = crate::model::Model::lookup("8845").unwrap();
        let own = lldp_frame("001b54aabbcc".parse().unwrap(), m, "x");
        assert!(frame::parse(&own).is_ok());
    }
}
