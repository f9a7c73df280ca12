#![no_main]
//! The TFTP transfer state machines (server sending a file, client receiving one) fed
//! arbitrary datagrams and timeouts: never a panic, and both keep answering within bounds.
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tftp::{ClientConfig, ClientTransfer, Mode, Request, ServerConfig, ServerTransfer};

/// Splits `data` into datagrams: each starts with its length byte.
fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut buf = Vec::new();
    let req = Request {
        filename: "f",
        mode: Mode::Octet,
        options: vec![("windowsize", "4"), ("blksize", "16"), ("tsize", "0")],
    };
    if let Ok(mut s) = ServerTransfer::new(&req, vec![7u8; 300].into(), &ServerConfig::default())
    {
        for (i, d) in datagrams(data).into_iter().enumerate() {
            let mut sent = 0;
            while s.poll_transmit(now, &mut buf) {
                sent += 1;
                assert!(sent < 64, "server transmits without end");
            }
            let _ = s.handle(d, now);
            if i % 4 == 3 {
                s.handle_timeout(now + Duration::from_secs(i as u64));
            }
        }
    }
    let mut c = ClientTransfer::new("f", ClientConfig::default());
    for (i, d) in datagrams(data).into_iter().enumerate() {
        let mut sent = 0;
        while c.poll_transmit(now, &mut buf) {
            sent += 1;
            assert!(sent < 64, "client transmits without end");
        }
        let _ = c.handle(d, now);
        if i % 4 == 3 {
            c.handle_timeout(now + Duration::from_secs(i as u64));
        }
    }
});
