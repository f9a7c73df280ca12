#![no_main]
//! The CallManager's per-connection state machine fed arbitrary bytes (split where the first
//! byte says) and timeouts, with one provisioned phone and auto-registration on: never a
//! panic, and its output stays bounded.
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use sccp::{Env, MemoryDirectory, SccpDevice, ServerSession, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let dir = MemoryDirectory::new();
    dir.insert(SccpDevice {
        name: "SEP001122334455".into(),
        ..SccpDevice::default()
    });
    dir.enable_auto_register(1000, 1010, SccpDevice::default());
    let cfg = SessionConfig::default();
    let now = Instant::now();
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    let mut s = ServerSession::new(&cfg, peer, now);
    let env = Env {
        directory: &dir,
        lease: None,
        wall: SystemTime::UNIX_EPOCH,
    };
    let cut = usize::from(split).min(rest.len());
    let mut out = Vec::new();
    for (i, piece) in [&rest[..cut], &rest[cut..]].into_iter().enumerate() {
        s.handle_bytes(&cfg, piece, now + Duration::from_millis(i as u64), &env);
        s.take_output(&mut out);
        assert!(out.len() < 1 << 22, "output out of bounds");
        while s.poll_event().is_some() {}
    }
    s.handle_timeout(now + Duration::from_secs(3600));
    while s.poll_event().is_some() {}
});
