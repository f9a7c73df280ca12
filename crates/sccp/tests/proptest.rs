//! Round-trip properties of the codec.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sccp::*;

/// Ids whose layouts are fixed-width: any payload bytes must re-encode byte-identical.
const FIXED: &[u32] = &[
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0009, 0x000A, 0x000B, 0x000C,
    0x000D, 0x000E, 0x000F, 0x0012, 0x0020, 0x0022, 0x0024, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029,
    0x002B, 0x002D, 0x0033, 0x0034, 0x0081, 0x0082, 0x0083, 0x0085, 0x0086, 0x0088, 0x0089, 0x008A,
    0x008B, 0x008F, 0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0097, 0x0098, 0x009B, 0x009D, 0x009E,
    0x009F, 0x0100, 0x0105, 0x0106, 0x0108, 0x0109, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115,
    0x0116, 0x0117, 0x0118, 0x0119, 0x011A, 0x011B, 0x011D, 0x011F, 0x0120, 0x0121, 0x0154, 0x7777,
];
/// Versions where layouts switch.
const VERSIONS: &[u32] = &[0, 3, 5, 8, 11, 15, 16, 17, 18, 20, 22];

fn record(hv: u32, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(payload.len() as u32 + 4).to_le_bytes());
    v.extend_from_slice(&hv.to_le_bytes());
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn text(max: usize) -> impl Strategy<Value = Text> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}"))
        .unwrap()
        .prop_map(Text::from)
}

proptest! {
    #[test]
    fn fixed_layouts_reencode_any_payload_identically(
        id in proptest::sample::select(FIXED),
        hv in proptest::sample::select(VERSIONS),
        payload in proptest::collection::vec(any::<u8>(), 0..800),
    ) {
        let bytes = record(hv, id, &payload);
        let f = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(f.message.id(), id);
        prop_assert_eq!(f.to_bytes(), bytes);
    }

    #[test]
    fn every_layout_is_idempotent(
        id in proptest::sample::select(&[0x0010u32, 0x0143, 0x0145, 0x0147, 0x014A][..]),
        hv in proptest::sample::select(VERSIONS),
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let f = Frame::decode(&record(hv, id, &payload)).unwrap();
        let once = f.to_bytes();
        let g = Frame::decode(&once).unwrap();
        prop_assert_eq!(&g.message, &f.message);
        prop_assert_eq!(g.to_bytes(), once);
    }

    #[test]
    fn arbitrary_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        sccp::fuzz_body::fuzz_stream(&data);
    }

    #[test]
    fn register_fields_roundtrip(
        name in text(15), dt in any::<u32>(), ver in any::<u8>(), ip in any::<[u8; 4]>(),
        len in proptest::sample::select(&[36usize, 44, 64, 68, 124, 172][..]),
        fw in text(31),
    ) {
        let mut r = Register { device_name: name, device_type: dt, protocol_version: ver, ip, ..Default::default() };
        if len >= 124 { r.firmware = fw; }
        if len < 44 { r.protocol_version = 0; }
        let f = Frame::with_payload_len(0, Message::Register(r), len);
        let bytes = f.to_bytes();
        prop_assert_eq!(bytes.len(), len + 12);
        prop_assert_eq!(Frame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn server_messages_roundtrip(
        hv in proptest::sample::select(VERSIONS),
        dn in text(23), name in text(39), label in text(39), line in 1u32..50,
        wide in any::<bool>(), port in any::<u32>(), ip in any::<[u8; 4]>(),
    ) {
        let msgs = vec![
            Message::LineStat(LineStat { line, dir_number: dn.clone(), display_name: name.clone(), label: label.clone(), display_options: 15 }),
            Message::LineStatV2(LineStatV2 { line, line_type: 0, dir_number: dn.clone(), display_name: name.clone(), label }),
            Message::SpeedDialStat(SpeedDialStat { number: line, dir_number: dn.clone(), display_name: name.clone() }),
            Message::ForwardStat(ForwardStat { line, all_active: 1, all_number: dn.clone(), wide, ..Default::default() }),
            Message::ServerRes(ServerRes { servers: vec![ServerEntry { name: name.clone(), port, ip: IpField::v4(ip.into()) }], wide }),
            Message::ConfigStat(ConfigStat { device_name: "SEP001122334455".into(), instance: 1, user_name: name.clone(), server_name: name.clone(), lines: line, speed_dials: 2, ..Default::default() }),
            Message::DisplayNotifyV2(DisplayNotifyV2 { timeout: 10, text: name.clone() }),
            Message::DialedNumber(DialedNumber { number: dn.clone(), line, call_ref: port }),
            Message::RegisterReject(RegisterReject { text: dn.clone() }),
            Message::Reset(Reset { reset_type: line }),
        ];
        for m in msgs {
            let f = Frame::new(hv, m);
            let bytes = f.to_bytes();
            prop_assert_eq!(bytes.len() % 4, 0);
            let g = Frame::decode(&bytes).unwrap();
            prop_assert_eq!(&g.message, &f.message);
            prop_assert_eq!(g.to_bytes(), bytes);
        }
    }
}

#[test]
fn framing_rejects_bad_lengths() {
    assert_eq!(record_len(&[3, 0, 0, 0]), Err(FramingError::TooShort(3)));
    assert_eq!(
        record_len(&5000u32.to_le_bytes()),
        Err(FramingError::TooLong(5000))
    );
    assert_eq!(record_len(&[8, 0, 0, 0, 0, 0, 0, 0, 0xb]), Ok(None));
}
