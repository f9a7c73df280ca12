#![no_main]
//! What the emulated phone reads from the network — its configuration file, DHCP replies,
//! raw frames, HTTP heads and chunked bodies — through the emulator's parsers: never a panic.
//! The first byte picks the parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let _ = sim::cnf::parse_config(rest, None);
        }
        1 => {
            let _ = sim::cnf::parse_config(rest, Some(36670));
        }
        2 => {
            let _ = sim::dhcp::decode_reply(rest);
        }
        3 => {
            let _ = sim::eth::parse_udp(rest);
        }
        4 => {
            let _ = sim::http::parse_head(rest);
        }
        _ => {
            let _ = sim::http::decode_chunked(rest, 1 << 16);
        }
    }
});
