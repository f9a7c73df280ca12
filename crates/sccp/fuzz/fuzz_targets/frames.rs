#![no_main]
//! Arbitrary bytes through the SCCP stream reader and codec.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sccp::fuzz_body::fuzz_stream(data);
});
