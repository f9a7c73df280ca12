#![no_main]
//! Arbitrary bytes into the signed-header parser and the payload locator: never a panic, and
//! a parsed header's payload offset lies inside the input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firmware::fuzz_header(data));
