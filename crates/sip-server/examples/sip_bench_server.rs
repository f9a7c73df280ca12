//! The registrar service with an in-memory directory of N benchmark lines, for
//! bench/sip/run.sh. Every line `u<first+i>` authenticates as one digest identity (SIPp
//! 3.6.1 cannot send per-call credentials; see bench/sip/README.md).
//!
//! usage: sip_bench_server BIND USERS FIRST AUTH_USER AUTH_PASS REALM [WORKERS [UDP_MODE]]
//! UDP_MODE: `async` (default: receive tasks on the tokio reactor) or `blocking`
//! (receiver threads blocking in recvfrom, `SipServerConfig::udp_blocking`).
//! Runs until SIGTERM/SIGINT, then prints the registrar's counters.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use sip::{MemoryDirectory, RegistrarConfig, SipLine};
use sip_server::{spawn, SipServerConfig};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 7,
        "usage: BIND USERS FIRST AUTH_USER AUTH_PASS REALM [WORKERS]"
    );
    let bind = a[1].parse()?;
    let users: u64 = a[2].parse()?;
    let first: u64 = a[3].parse()?;
    let workers: usize = a.get(7).map(|w| w.parse()).transpose()?.unwrap_or(2);
    let udp_blocking = match a.get(8).map(String::as_str) {
        None | Some("async") => false,
        Some("blocking") => true,
        Some(other) => anyhow::bail!("UDP_MODE must be blocking or async, not {other}"),
    };
    let dir = MemoryDirectory::new();
    for i in 0..users {
        dir.add_line(SipLine {
            device: format!("SEP{:012X}", 0xBE00_0000_0000u64 + i),
            dn: format!("u{}", first + i),
            auth_user: a[4].clone(),
            password: Some(a[5].clone()),
        });
    }
    let cfg = SipServerConfig {
        bind,
        tcp: false,
        udp_tasks: workers,
        udp_blocking,
        node: "bench".into(),
        registrar: RegistrarConfig {
            realm: a[6].clone(),
            // One SIPp source sends everything: the per-source limit must not apply.
            unauth_rate: 1e9,
            unauth_burst: 1e9,
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let ris = Arc::new(ris::Ris::new());
        let server = spawn(cfg, Arc::new(dir), ris.clone(), Arc::new(journal::NullSink)).await?;
        println!("listening on {:?} with {users} lines", server.udp_addr());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        println!("stats: {:?}", server.stats());
        println!("ris rows: {}", ris.count(ris::Protocol::Sip));
        server.shutdown().await;
        anyhow::Ok(())
    })
}
