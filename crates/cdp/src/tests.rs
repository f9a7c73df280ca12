use super::*;
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// Golden PDUs of the wire reference (l2-dhcp-tftp.md §1.9), checked there with tshark.
const PHONE: &str = "02b4ecdc00010013534550303031313232333334343535000200110000000101
01cc00040a00000a0003000a506f7274203100040008000004900005001a7369
70383878782e31342d322d312d303030312d313400060017436973636f204950
2050686f6e652038383435000b000501000f00082002000100100006189c0019
001c000100000000189c00000000000000000000000000000000";

const SWITCH: &str = "02b44c4b0001000f7377312e6578616d706c6500030018476967616269744574
6865726e6574312f302f35000400080000002800060017636973636f2057532d
43333536302d32345053000a0006000a000b000501000e000701006400120005
000013000500001a0010000100020000189cffffffff";

#[test]
fn odd_length_checksum_vectors() {
    for (pdu, sum) in [
        ("02b4291b000100086f6464c3", 0x291b),
        ("02b484c4000100067880", 0x84c4),
        ("02b49b7e00010007616263", 0x9b7e),
    ] {
        let b = unhex(pdu);
        assert_eq!(checksum(&b), sum, "{pdu}");
        assert!(checksum_ok(&b));
    }
}

#[test]
fn golden_phone_pdu_decodes_to_documented_values() {
    let b = unhex(PHONE);
    assert_eq!(b.len(), 154);
    assert_eq!(checksum(&b), 0xecdc);
    let p = Pdu::decode(&b).unwrap();
    assert_eq!((p.version, p.ttl), (2, 180));
    assert_eq!(p.device_id(), Some("SEP001122334455"));
    assert_eq!(
        p.addresses(),
        vec![Address::V4(Ipv4Addr::new(10, 0, 0, 10))]
    );
    assert_eq!(p.port_id(), Some("Port 1"));
    assert_eq!(p.capabilities(), Some(Capabilities::IP_PHONE));
    assert_eq!(p.capabilities().unwrap().letters(), "H P M");
    assert_eq!(p.software_version(), Some("sip88xx.14-2-1-0001-14"));
    assert_eq!(p.platform(), Some("Cisco IP Phone 8845"));
    assert_eq!(p.duplex(), Some(Duplex::FULL));
    assert!(p.voip_vlan_query());
    assert!(p
        .tlvs
        .contains(&Tlv::VoipVlanQuery(vec![0x20, 0x02, 0x00, 0x01])));
    assert_eq!(p.power_consumption(), Some(6300));
    assert_eq!(p.power_requested(), Some((1, 0, &[6300, 0, 0, 0, 0][..])));
    assert_eq!(p.encode().unwrap(), b, "re-encoding is byte-exact");
}

#[test]
fn golden_switch_pdu_decodes_to_documented_values() {
    let b = unhex(SWITCH);
    assert_eq!(b.len(), 118);
    assert_eq!(checksum(&b), 0x4c4b);
    let p = Pdu::decode(&b).unwrap();
    assert_eq!(p.device_id(), Some("sw1.example"));
    assert_eq!(p.port_id(), Some("GigabitEthernet1/0/5"));
    assert_eq!(p.capabilities(), Some(Capabilities::ACCESS_SWITCH));
    assert_eq!(p.platform(), Some("cisco WS-C3560-24PS"));
    assert_eq!(p.native_vlan(), Some(10));
    assert_eq!(p.duplex(), Some(Duplex::FULL));
    assert_eq!(p.voip_vlan_reply(), Some(100));
    assert!(p.tlvs.contains(&Tlv::TrustBitmap(0)));
    assert!(p.tlvs.contains(&Tlv::UntrustedCos(0)));
    assert_eq!(p.power_available(), Some((1, 2, 6300, 0xffff_ffff)));
    assert_eq!(p.encode().unwrap(), b);
}

#[test]
fn building_the_switch_pdu_gives_the_golden_bytes() {
    let p = Pdu::new(180)
        .with(Tlv::DeviceId("sw1.example".into()))
        .with(Tlv::PortId("GigabitEthernet1/0/5".into()))
        .with(Tlv::Capabilities(Capabilities::ACCESS_SWITCH))
        .with(Tlv::Platform("cisco WS-C3560-24PS".into()))
        .with(Tlv::NativeVlan(10))
        .with(Tlv::Duplex(Duplex::FULL))
        .with(Tlv::VoipVlanReply {
            appliance: 1,
            vlan: 100,
        })
        .with(Tlv::TrustBitmap(0))
        .with(Tlv::UntrustedCos(0))
        .with(Tlv::PowerAvailable {
            request_id: 1,
            management_id: 2,
            available_mw: 6300,
            management_level: 0xffff_ffff,
        });
    assert_eq!(p.encode().unwrap(), unhex(SWITCH));
}

#[test]
fn unknown_and_misshapen_tlvs_survive_round_trip() {
    // Type 0x1234 (unknown), a Native VLAN of 3 bytes, a 6-byte VoIP reply, bad UTF-8 platform.
    let p = Pdu::new(60)
        .with(Tlv::Raw {
            ty: 0x1234,
            value: vec![1, 2, 3],
        })
        .with(Tlv::Raw {
            ty: tlv_type::NATIVE_VLAN,
            value: vec![0, 1, 2],
        })
        .with(Tlv::Raw {
            ty: tlv_type::VOIP_VLAN_REPLY,
            value: vec![1, 0],
        })
        .with(Tlv::Raw {
            ty: tlv_type::PLATFORM,
            value: vec![0xff, 0xfe],
        });
    let b = p.encode().unwrap();
    let back = Pdu::decode(&b).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.encode().unwrap(), b);
}

#[test]
fn bad_pdus_are_errors_not_panics() {
    assert_eq!(
        Pdu::decode(&[2, 180]),
        Err(DecodeError::ShortHeader { len: 2 })
    );
    assert_eq!(
        Pdu::decode(&[3, 180, 0, 0]),
        Err(DecodeError::BadVersion(3))
    );
    assert!(matches!(
        Pdu::decode(&[2, 180, 0, 0, 0, 1, 0, 2]),
        Err(DecodeError::TlvTooShort { .. })
    ));
    assert!(matches!(
        Pdu::decode(&[2, 180, 0, 0, 0, 1, 0, 9, b'a']),
        Err(DecodeError::TlvOverrun { .. })
    ));
    assert!(matches!(
        Pdu::decode(&[2, 180, 0, 0, 0, 1]),
        Err(DecodeError::TrailingBytes { .. })
    ));
    let mut b = unhex(PHONE);
    b[10] ^= 0x20;
    assert!(!checksum_ok(&b), "a flipped bit must fail the checksum");
}

#[test]
fn capability_words() {
    assert_eq!(
        Capabilities::IP_PHONE.words(),
        "Host Phone Two-port Mac Relay"
    );
    assert_eq!(Capabilities::ACCESS_SWITCH.letters(), "S I");
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Address::V4(o.into())),
        any::<[u8; 16]>().prop_map(|o| Address::V6(o.into())),
        (
            3u8..=255,
            proptest::collection::vec(any::<u8>(), 0..10),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(proto_type, proto, addr)| Address::Other {
                proto_type,
                proto,
                addr
            }),
    ]
}

fn known_types() -> Vec<u16> {
    use tlv_type::*;
    vec![
        DEVICE_ID,
        ADDRESSES,
        PORT_ID,
        CAPABILITIES,
        SOFTWARE_VERSION,
        PLATFORM,
        VTP_DOMAIN,
        NATIVE_VLAN,
        DUPLEX,
        VOIP_VLAN_REPLY,
        VOIP_VLAN_QUERY,
        POWER_CONSUMPTION,
        MTU,
        TRUST_BITMAP,
        UNTRUSTED_COS,
        SYSTEM_NAME,
        SYSTEM_OID,
        MANAGEMENT_ADDRESSES,
        POWER_REQUESTED,
        POWER_AVAILABLE,
        SPARE_PAIR_POE,
    ]
}

fn tlv() -> impl Strategy<Value = Tlv> {
    let addrs = || proptest::collection::vec(address(), 0..4);
    prop_oneof![
        text().prop_map(Tlv::DeviceId),
        addrs().prop_map(Tlv::Addresses),
        text().prop_map(Tlv::PortId),
        any::<u32>().prop_map(|c| Tlv::Capabilities(Capabilities(c))),
        text().prop_map(Tlv::SoftwareVersion),
        text().prop_map(Tlv::Platform),
        text().prop_map(Tlv::VtpDomain),
        any::<u16>().prop_map(Tlv::NativeVlan),
        any::<u8>().prop_map(|d| Tlv::Duplex(Duplex(d))),
        (any::<u8>(), any::<u16>())
            .prop_map(|(appliance, vlan)| Tlv::VoipVlanReply { appliance, vlan }),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Tlv::VoipVlanQuery),
        any::<u16>().prop_map(Tlv::PowerConsumption),
        any::<u32>().prop_map(Tlv::Mtu),
        any::<u8>().prop_map(Tlv::TrustBitmap),
        any::<u8>().prop_map(Tlv::UntrustedCos),
        text().prop_map(Tlv::SystemName),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Tlv::SystemOid),
        addrs().prop_map(Tlv::ManagementAddresses),
        (
            any::<u16>(),
            any::<u16>(),
            proptest::collection::vec(any::<u32>(), 0..6)
        )
            .prop_map(
                |(request_id, management_id, levels_mw)| Tlv::PowerRequested {
                    request_id,
                    management_id,
                    levels_mw
                }
            ),
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(r, m, a, l)| {
            Tlv::PowerAvailable {
                request_id: r,
                management_id: m,
                available_mw: a,
                management_level: l,
            }
        }),
        any::<u8>().prop_map(Tlv::SparePairPoe),
        (0x0020u16.., proptest::collection::vec(any::<u8>(), 0..30))
            .prop_map(|(ty, value)| Tlv::Raw { ty, value }),
    ]
}

/// Ones-complement sum of every 16-bit word of `pdu`, checksum field included, with the
/// reference's rule for a lone last byte (sign-extended char: `b` below 0x80, else
/// `0xFF00 + b - 1`); a correct checksum makes it fold to 0xFFFF.
fn whole_pdu_sum(pdu: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    for w in pdu.chunks(2) {
        sum += match *w {
            [hi, lo] => u32::from(hi) << 8 | u32::from(lo),
            [b] if b < 0x80 => u32::from(b),
            [b] => 0xff00 + u32::from(b) - 1,
            _ => 0,
        };
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

proptest! {
    #[test]
    fn typed_pdus_round_trip(version in 1u8..=2, ttl in any::<u8>(),
                             tlvs in proptest::collection::vec(tlv(), 0..12)) {
        let p = Pdu { version, ttl, tlvs };
        let b = p.encode().unwrap();
        prop_assert!(checksum_ok(&b));
        prop_assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    /// Any well-formed TLV walk (random types incl. known ones with random values) decodes,
    /// and re-encodes to the very same bytes.
    #[test]
    fn any_tlv_walk_reencodes_exactly(ttl in any::<u8>(),
        raw in proptest::collection::vec(
            (prop_oneof![proptest::sample::select(known_types()), any::<u16>()],
             proptest::collection::vec(any::<u8>(), 0..24)), 0..10)) {
        let mut b = vec![2, ttl, 0, 0];
        for (ty, v) in &raw {
            b.extend_from_slice(&ty.to_be_bytes());
            b.extend_from_slice(&((v.len() + 4) as u16).to_be_bytes());
            b.extend_from_slice(v);
        }
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Pdu::decode(&b).unwrap();
        prop_assert_eq!(p.tlvs.len(), raw.len());
        prop_assert_eq!(p.encode().unwrap(), b);
    }

    /// The checksum verifies the way the reference says: summing the whole PDU with the
    /// stored checksum folds to zero for any length, odd or even.
    #[test]
    ///
    /// Independent of `checksum`/`checksum_ok` (which skip the field and so agree with each
    /// other whatever `checksum` computes): the whole PDU, field included, is summed here.
    fn checksum_self_verifies(mut b in proptest::collection::vec(any::<u8>(), 4..200)) {
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        prop_assert_eq!(whole_pdu_sum(&b), 0xffff, "{:02x?}", b);
        // And a changed last byte is noticed.
        let i = b.len() - 1;
        b[i] = b[i].wrapping_add(1);
        prop_assert!(!checksum_ok(&b), "{:02x?}", b);
    }

    #[test]
    fn fuzz_body_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_one(&data);
    }

    #[test]
    fn fuzz_body_on_mutated_golden(pos in 0usize..154, byte in any::<u8>(), cut in 0usize..154) {
        let mut b = unhex(PHONE);
        b[pos] = byte;
        b.truncate(154 - cut);
        fuzz_one(&b);
    }
}
