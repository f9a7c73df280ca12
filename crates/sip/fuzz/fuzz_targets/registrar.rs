#![no_main]
//! The registrar (REGISTER with digest challenges, OPTIONS, SUBSCRIBE...) fed a sequence of
//! arbitrary datagrams, each parsed like the server parses them: never a panic. Datagrams are
//! split at NUL bytes so one input can hold a challenge and its answer.
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sip::{Limits, MemoryDirectory, Message, Registrar, RegistrarConfig, Transport};

fuzz_target!(|data: &[u8]| {
    let dir = MemoryDirectory::new();
    dir.add_device(
        "00:11:22:33:44:55".parse().expect("mac"),
        Some("CP-8845"),
        &[("4101", "auth4101", Some("s3cret"))],
    );
    let Ok(mut reg) = Registrar::new(RegistrarConfig::default(), [7; 32]) else {
        return;
    };
    let src: SocketAddr = "10.0.0.9:5060".parse().expect("addr");
    let l = Limits::default();
    for (i, d) in data.split(|b| *b == 0).enumerate() {
        if let Ok(m) = Message::parse(d, &l) {
            let t = if i % 2 == 0 { Transport::Udp } else { Transport::Tcp };
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i as u64);
            let out = reg.handle(&dir, &m, src, t, now);
            if let Some(r) = out.response {
                let _ = r.encode();
            }
        }
    }
});
