#![no_main]
//! Any bytes received on a raw socket through the Ethernet/802.1Q/LLC-SNAP frame parser:
//! never a panic, and what parses describes bytes inside the frame.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = l2::frame::parse(data) {
        let _ = format!("{f:?}");
    }
});
