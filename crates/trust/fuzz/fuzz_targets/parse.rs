#![no_main]
//! Arbitrary bytes into the .tlv and .sgn parsers: never a panic, and what parses re-encodes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| trust::fuzz_one(data));
