use super::*;
use proptest::prelude::*;

/// The golden switch frame of the wire reference (l2-dhcp-tftp.md §2.9), whole Ethernet frame.
const GOLDEN: &str = "0180c200000e00112233445588cc0207040011223344550408056769312f302f
35060200780a037377310e0400140004fe070012bb01003f04fe080012bb0201
40c96efe080012bb020240c8d8fe070012bb0410009afe0c00120f0207010400
003f003f0000";

fn golden() -> Vec<u8> {
    hex::decode(GOLDEN.split_whitespace().collect::<String>()).unwrap()
}

#[test]
fn golden_frame_decodes_to_documented_values() {
    let f = golden();
    assert_eq!(&f[0..6], &MULTICAST);
    assert_eq!(u16::from_be_bytes([f[12], f[13]]), ETHERTYPE);
    let p = Lldpdu::decode(&f[14..]).unwrap();
    assert_eq!(
        p.chassis_id(),
        Some((4u8, &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55][..]))
    );
    assert_eq!(p.port_id(), Some((5u8, &b"gi1/0/5"[..])));
    assert_eq!(p.ttl(), Some(120));
    assert_eq!(p.system_name(), Some("sw1"));
    assert_eq!(p.capabilities(), Some((0x0014, 0x0004)));
    assert_eq!(
        p.med_capabilities(),
        Some((0x003f, med::NETWORK_CONNECTIVITY))
    );
    let voice = p.network_policy(med::APP_VOICE).unwrap();
    assert_eq!(voice, NetworkPolicy::voice(100));
    assert_eq!(voice.to_u32(), 0x0140_c96e);
    let sig = p.network_policy(med::APP_VOICE_SIGNALING).unwrap();
    assert_eq!(sig.to_u32(), 0x0240_c8d8);
    assert_eq!(
        (sig.vlan, sig.priority, sig.dscp, sig.tagged),
        (100, 3, 24, true)
    );
    assert_eq!(
        p.extended_power(),
        Some(ExtendedPower {
            power_type: 0,
            source: 1,
            priority: 0,
            deciwatts: 154
        })
    );
    assert!(p.tlvs.contains(&Tlv::Dot3Power(Dot3Power {
        mdi_support: 0x07,
        pair: 1,
        class_plus_one: 4,
        at: Some((0, 63, 63)),
    })));
    assert_eq!(p.encode().unwrap(), f[14..], "re-encoding is byte-exact");
}

#[test]
fn building_the_golden_frame() {
    let p = Lldpdu::new([0, 0x11, 0x22, 0x33, 0x44, 0x55], "gi1/0/5", 120)
        .with(Tlv::SystemName("sw1".into()))
        .with(Tlv::SystemCapabilities {
            available: cap::BRIDGE | cap::ROUTER,
            enabled: cap::BRIDGE,
        })
        .with(Tlv::MedCapabilities {
            capabilities: 0x3f,
            device_type: med::NETWORK_CONNECTIVITY,
        })
        .with(Tlv::NetworkPolicy(NetworkPolicy::voice(100)))
        .with(Tlv::NetworkPolicy(NetworkPolicy {
            app: med::APP_VOICE_SIGNALING,
            priority: 3,
            dscp: 24,
            ..NetworkPolicy::voice(100)
        }))
        .with(Tlv::ExtendedPower(ExtendedPower {
            power_type: 0,
            source: 1,
            priority: 0,
            deciwatts: 154,
        }))
        .with(Tlv::Dot3Power(Dot3Power {
            mdi_support: 7,
            pair: 1,
            class_plus_one: 4,
            at: Some((0, 63, 63)),
        }));
    assert_eq!(p.encode().unwrap(), golden()[14..]);
}

#[test]
fn bad_pdus_are_errors() {
    assert_eq!(Lldpdu::decode(&[]), Err(DecodeError::MissingMandatory));
    assert_eq!(
        Lldpdu::decode(&[2]),
        Err(DecodeError::ShortHeader { offset: 0 })
    );
    assert!(matches!(
        Lldpdu::decode(&[0x02, 0x07, 4, 0]),
        Err(DecodeError::TlvOverrun { .. })
    ));
    // TTL first, no chassis.
    assert_eq!(
        Lldpdu::decode(&[0x06, 0x02, 0, 120, 0, 0]),
        Err(DecodeError::MissingMandatory)
    );
}

#[test]
fn unknown_org_and_misshapen_tlvs_survive() {
    let p = Lldpdu::new([2, 0, 0, 0, 0, 1], "eth0", 120)
        .with(Tlv::Org {
            oui: OUI_8021,
            subtype: 1,
            info: vec![0, 10],
        })
        .with(Tlv::Org {
            oui: OUI_MED,
            subtype: 2,
            info: vec![1, 2, 3],
        })
        .with(Tlv::Raw {
            ty: 7,
            value: vec![0, 1, 2],
        })
        .with(Tlv::Raw {
            ty: 42,
            value: vec![9; 9],
        });
    let b = p.encode().unwrap();
    assert_eq!(Lldpdu::decode(&b).unwrap(), p);
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,32}"
}

fn tlv() -> impl Strategy<Value = Tlv> {
    let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n);
    prop_oneof![
        text().prop_map(Tlv::PortDescription),
        text().prop_map(Tlv::SystemName),
        text().prop_map(Tlv::SystemDescription),
        (any::<u16>(), any::<u16>())
            .prop_map(|(available, enabled)| Tlv::SystemCapabilities { available, enabled }),
        (any::<u8>(), bytes(16), any::<u8>(), any::<u32>(), bytes(12)).prop_map(
            |(family, addr, if_subtype, if_number, oid)| Tlv::ManagementAddress {
                family,
                addr,
                if_subtype,
                if_number,
                oid
            }
        ),
        (any::<u16>(), any::<u8>()).prop_map(|(capabilities, device_type)| {
            Tlv::MedCapabilities {
                capabilities,
                device_type,
            }
        }),
        any::<u32>().prop_map(|v| Tlv::NetworkPolicy(NetworkPolicy::from_u32(v))),
        (0u8..4, 0u8..4, 0u8..16, any::<u16>()).prop_map(|(t, s, p, d)| Tlv::ExtendedPower(
            ExtendedPower {
                power_type: t,
                source: s,
                priority: p,
                deciwatts: d
            }
        )),
        (5u8..=11, text())
            .prop_map(|(s, t)| Tlv::Inventory(Inventory::from_subtype(s).unwrap(), t)),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            proptest::option::of(any::<(u8, u16, u16)>())
        )
            .prop_map(|(a, b, c, at)| Tlv::Dot3Power(Dot3Power {
                mdi_support: a,
                pair: b,
                class_plus_one: c,
                at
            })),
        (any::<[u8; 3]>(), 12u8.., bytes(20)).prop_map(|(oui, subtype, info)| Tlv::Org {
            oui,
            subtype,
            info
        }),
        (9u8..127, bytes(40)).prop_map(|(ty, value)| Tlv::Raw { ty, value }),
    ]
}

proptest! {
    #[test]
    fn typed_pdus_round_trip(mac in any::<[u8; 6]>(), port in "[a-z0-9/]{1,16}", ttl in any::<u16>(),
                             tlvs in proptest::collection::vec(tlv(), 0..10)) {
        let mut p = Lldpdu::new(mac, &port, ttl);
        p.tlvs.extend(tlvs);
        let b = p.encode().unwrap();
        prop_assert_eq!(Lldpdu::decode(&b).unwrap(), p);
    }

    /// Any well-formed TLV walk re-encodes to the same bytes.
    #[test]
    fn any_tlv_walk_reencodes_exactly(
        raw in proptest::collection::vec((1u8..=127, proptest::collection::vec(any::<u8>(), 0..40)), 0..10)) {
        let mut b = vec![0x02, 0x07, 4, 0, 0, 0, 0, 0, 1, 0x04, 0x02, 5, b'p', 0x06, 0x02, 0, 120];
        for (ty, v) in &raw {
            b.extend_from_slice(&((u16::from(*ty) << 9) | v.len() as u16).to_be_bytes());
            b.extend_from_slice(v);
        }
        b.extend_from_slice(&[0, 0]);
        let p = Lldpdu::decode(&b).unwrap();
        prop_assert_eq!(p.encode().unwrap(), b);
    }

    #[test]
    fn fuzz_body_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_one(&data);
    }

    #[test]
    fn fuzz_body_on_mutated_golden(pos in 14usize..102, byte in any::<u8>(), cut in 0usize..88) {
        let mut b = golden()[14..].to_vec();
        b[pos - 14] = byte;
        let l = b.len();
        b.truncate(l - cut);
        fuzz_one(&b);
    }
}
