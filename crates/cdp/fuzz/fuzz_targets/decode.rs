#![no_main]
//! Arbitrary bytes into the CDP PDU decoder; decodable input must re-encode identically.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cdp::fuzz_one(data));
