#![no_main]
//! Arbitrary bytes into the LLDPDU decoder; decodable input must re-encode identically.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lldp::fuzz_one(data));
