//! Arbitrary bytes through stream framing, message parsing (with an encode/re-parse
//! round trip) and every structured header parser. Same body as the proptest
//! `arbitrary_bytes_never_panic` in crates/sip/src/msg.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{frame, Limits, Message};

fuzz_target!(|data: &[u8]| {
    let l = Limits::default();
    let _ = frame(data, &l);
    if let Ok(m) = Message::parse(data, &l) {
        let again = Message::parse(&m.encode(), &l).expect("re-parse of our own output");
        assert_eq!(again, m);
    }
    let _ = sip::fuzz_structured(data);
});
