//! Same body as `fuzz_packet` in tests/props.rs: decode never panics; whatever decodes
//! re-encodes to the same packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tftp::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let again = p.to_vec();
        assert_eq!(Packet::decode(&again), Ok(p));
    }
});
