//! CPU cost of one digest registration on the registrar's hot path (parse, handle, encode),
//! without sockets: the same two REGISTERs SIPp sends in bench/sip/run.sh. For profiling
//! (`perf record target/release/examples/register_hotpath`), not a test.
//!
//! usage: register_hotpath [REGISTRATIONS] [USERS]
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sip::{Limits, MemoryDirectory, Message, Registrar, RegistrarConfig, SipLine, Transport};

fn request(user: &str, call: u64, cseq: u32, auth: Option<&str>) -> String {
    let mut s = format!(
        "REGISTER sip:bench.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.18.0.2:5070;branch=z9hG4bK-1-{call}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@bench.test>;tag=1SIPpTag{call}\r\n\
         To: <sip:{user}@bench.test>\r\n\
         Call-ID: {call}-1@198.18.0.2\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@198.18.0.2:5070>\r\n"
    );
    if let Some(a) = auth {
        s.push_str("Authorization: ");
        s.push_str(a);
        s.push_str("\r\n");
    }
    s.push_str("Expires: 3600\r\nUser-Agent: bench-sipp\r\nContent-Length: 0\r\n\r\n");
    s
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: u64 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let users: u64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = MemoryDirectory::new();
    for i in 0..users {
        dir.add_line(SipLine {
            device: format!("SEP{:012X}", 0xBE00_0000_0000u64 + i),
            dn: format!("u{}", 100_000 + i),
            auth_user: "u100000".into(),
            password: Some("pw100000".into()),
        });
    }
    let cfg = RegistrarConfig {
        realm: "bench.test".into(),
        unauth_rate: 1e9,
        unauth_burst: 1e9,
        ..Default::default()
    };
    let Ok(mut reg) = Registrar::new(cfg, [7; 32]) else {
        println!("bad config");
        return;
    };
    let limits = Limits::default();
    let src: SocketAddr = SocketAddr::from(([198, 18, 0, 2], 5070));
    let mut server = Duration::ZERO;
    let mut ok = 0u64;
    let mut bytes_out = 0usize;
    let start = Instant::now();
    for call in 0..n {
        let user = format!("u{}", 100_000 + call % users);
        let now = SystemTime::now();
        let r1 = request(&user, call, 1, None);
        let t0 = Instant::now();
        let m1 = Message::parse(r1.as_bytes(), &limits);
        let out1 = m1
            .as_ref()
            .ok()
            .map(|m| reg.handle(&dir, m, src, Transport::Udp, now));
        let resp1 = out1.and_then(|o| o.response).map(|r| r.encode());
        server += t0.elapsed();
        let Some(resp1) = resp1 else { continue };
        bytes_out += resp1.len();
        let Ok(chal) = Message::parse(&resp1, &limits) else {
            continue;
        };
        let Some(auth) = chal.header("WWW-Authenticate").and_then(|c| {
            sip::digest::authorize(
                c,
                "REGISTER",
                "sip:bench.test",
                "u100000",
                "pw100000",
                "6b8b4567",
                1,
            )
        }) else {
            continue;
        };
        let r2 = request(&user, call, 2, Some(&auth));
        let t0 = Instant::now();
        let m2 = Message::parse(r2.as_bytes(), &limits);
        let out2 = m2
            .as_ref()
            .ok()
            .map(|m| reg.handle(&dir, m, src, Transport::Udp, now));
        let resp2 = out2.and_then(|o| o.response).map(|r| r.encode());
        server += t0.elapsed();
        if let Some(r) = resp2 {
            bytes_out += r.len();
            if r.starts_with(b"SIP/2.0 200") {
                ok += 1;
            }
        }
    }
    let per = server.as_secs_f64() * 1e6 / n.max(1) as f64;
    println!(
        "registrations={n} ok={ok} server_time={:.3}s ({per:.2} us per registration, 2 messages) total={:.3}s bytes_out={bytes_out}",
        server.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}
