#![no_main]
//! Arbitrary bytes into the `.loads` manifest parser (with or without a signed header): never
//! a panic; a parsed manifest re-renders to a body that parses to the same images.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firmware::fuzz_manifest(data));
