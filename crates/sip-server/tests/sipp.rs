//! Real peer: SIPp (Debian package `sip-tester`) registers to the service over loopback,
//! UDP and TCP. Needs the `sipp` binary; no root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use journal::{EventKind, VecSink};
use ris::{RegKey, Ris};
use sip::{MemoryDirectory, RegistrarConfig};
use sip_server::{spawn, SipServer, SipServerConfig};

async fn start(reg: RegistrarConfig) -> (SipServer, Arc<Ris>, Arc<VecSink>) {
    let dir = MemoryDirectory::new();
    dir.add_device(
        "001b54aabbcc".parse().unwrap(),
        Some("36670"),
        &[("1001", "1001", Some("pw1001"))],
    );
    let ris = Arc::new(Ris::new());
    let sink = VecSink::new();
    let server = spawn(
        SipServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            registrar: reg,
            sweep_interval: Duration::from_millis(100),
            ..Default::default()
        },
        Arc::new(dir),
        ris.clone(),
        sink.clone(),
    )
    .await
    .unwrap();
    (server, ris, sink)
}

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Runs one SIPp call; returns its exit status (0 = the scenario succeeded).
async fn sipp(server: &SipServer, tcp: bool, file: &str, password: &str, expires: u32) -> i32 {
    let target = if tcp {
        server.tcp_addr().unwrap()
    } else {
        server.udp_addr().unwrap()
    };
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg(target.to_string())
        .arg("-sf")
        .arg(scenario(file))
        .args(["-i", "127.0.0.1", "-p", "0", "-m", "1", "-l", "1"])
        .args(["-t", if tcp { "t1" } else { "u1" }])
        .args(["-s", "1001", "-au", "1001", "-ap", password])
        .args(["-key", "expires", &expires.to_string()])
        .args(["-timeout", "10s", "-timeout_error", "-nostdin", "-nd"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // SIPp writes its logs to the working directory: keep them out of the tree.
    let dir = std::env::temp_dir().join(format!("sip-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    cmd.current_dir(&dir);
    let child = cmd
        .spawn()
        .expect("sipp not found: install Debian package sip-tester");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("sipp finished in time")
        .unwrap();
    if !out.status.success() {
        eprintln!("sipp stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.code().unwrap_or(-1)
}

fn key() -> RegKey {
    RegKey {
        device: "SEP001B54AABBCC".into(),
        line: Some("1001".into()),
    }
}

#[tokio::test]
async fn sipp_registers_with_digest_over_udp_and_tcp() {
    for tcp in [false, true] {
        let (server, ris, sink) = start(RegistrarConfig::default()).await;
        assert_eq!(
            sipp(&server, tcp, "register.xml", "pw1001", 600).await,
            0,
            "tcp={tcp}"
        );
        let row = ris.get(&key()).expect("registered");
        assert_eq!(row.detail, "Cisco-CP8845/12.8.1");
        assert_eq!(row.model.as_deref(), Some("36670"));
        let b = server.bindings("1001");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].device_name.as_deref(), Some("SEP001B54AABBCC"));
        assert_eq!(b[0].reg_id, Some(1));
        assert!(b[0]
            .supported
            .iter()
            .any(|s| s == "X-cisco-service-control"));
        assert!(sink
            .events()
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Registered { detail, .. } if detail == "1001")));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn sipp_wrong_password_is_rejected() {
    let (server, ris, sink) = start(RegistrarConfig::default()).await;
    assert_eq!(
        sipp(&server, false, "wrong_password.xml", "nope", 600).await,
        0
    );
    assert!(ris.get(&key()).is_none());
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(&e.kind, EventKind::RegisterRejected { reason, .. } if reason.starts_with("403"))));
    server.shutdown().await;
}

#[tokio::test]
async fn sipp_refresh_then_unregister() {
    let (server, ris, sink) = start(RegistrarConfig::default()).await;
    assert_eq!(
        sipp(&server, false, "refresh_unregister.xml", "pw1001", 600).await,
        0
    );
    assert!(ris.get(&key()).is_none());
    let ev = sink.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e.kind, EventKind::Registered { .. })));
    assert!(ev
        .iter()
        .any(|e| matches!(e.kind, EventKind::Unregistered { .. })));
    assert_eq!(server.stats().registered, 2, "register + refresh");
    server.shutdown().await;
}

#[tokio::test]
async fn sipp_binding_expires() {
    let (server, ris, sink) = start(RegistrarConfig {
        min_expires: 1,
        default_expires: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(sipp(&server, false, "register.xml", "pw1001", 1).await, 0);
    assert!(ris.get(&key()).is_some());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(ris.get(&key()).is_none(), "expired");
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::KeepaliveLost { .. })));
    server.shutdown().await;
}
