//! The tokio service over real loopback sockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use journal::{EventKind, ResetKind};
use ris::RegKey;
use sccp::{Frame, MemoryDirectory, Message, PhoneEvent, PhoneProfile, ResetType};
use sccp_server::phone::{register_once, spawn_phone};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

fn key(name: &str) -> RegKey {
    RegKey {
        device: name.into(),
        line: None,
    }
}

#[tokio::test]
async fn phones_of_each_version_register_and_appear_in_ris_and_journal() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 30).await;
    let addr = n.handle.local_addr();
    for (i, p) in [
        PhoneProfile::P7960,
        PhoneProfile::P7941,
        PhoneProfile::P7962,
    ]
    .into_iter()
    .enumerate()
    {
        dir.insert(device(i as u8, &format!("100{i}"), &[addr]));
        let mut ph = spawn_phone(phone_cfg(i as u8, p), vec![addr]);
        let st = ph
            .wait_status(T, |s| s.in_service)
            .await
            .expect("in service");
        assert_eq!(st.version, p.max_version);
        assert_eq!(st.lines, [format!("100{i}")]);
        let row = n.ris.get(&key(&format!("SEP0011223344{i:02X}"))).unwrap();
        assert_eq!(row.detail, format!("v{}", p.max_version));
        assert_eq!(row.node, "cm1");
        assert_eq!(row.model.as_deref(), Some(p.model));
        ph.stop().await;
    }
    let regs = n
        .journal
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Registered { .. }))
        .count();
    assert_eq!(regs, 3);
    n.handle.shutdown().await;
}

#[tokio::test]
async fn unknown_device_is_rejected_and_journaled() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir, 30).await;
    let r = register_once(
        phone_cfg(0x77, PhoneProfile::P7941),
        n.handle.local_addr(),
        None,
        T,
    )
    .await;
    let e = r.unwrap_err();
    assert_eq!(e.to_string(), "No Authority: SEP001122334477");
    assert!(n.journal.events().iter().any(|e| matches!(&e.kind, EventKind::RegisterRejected { reason, .. } if reason.starts_with("No Authority"))));
    assert!(n.ris.snapshot().is_empty());
    n.handle.shutdown().await;
}

#[tokio::test]
async fn newer_registration_of_the_same_device_wins() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 30).await;
    let addr = n.handle.local_addr();
    dir.insert(device(1, "1001", &[addr]));
    let mut old = register_once(phone_cfg(1, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap();
    let new = register_once(phone_cfg(1, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap();
    // The older connection is closed by the server.
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(T, old.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 0);
    let row = n.ris.get(&key("SEP001122334401")).unwrap();
    assert_eq!(row.from, new.local_addr().unwrap());
    assert_eq!(n.handle.registered(), 1);
    n.handle.shutdown().await;
}

#[tokio::test]
async fn reset_handle_sends_reset_and_the_phone_comes_back() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 30).await;
    let addr = n.handle.local_addr();
    dir.insert(device(2, "1002", &[addr]));
    let mut ph = spawn_phone(phone_cfg(2, PhoneProfile::P7941), vec![addr]);
    ph.wait_status(T, |s| s.in_service).await.unwrap();
    assert_eq!(
        n.handle.reset("SEP00112233440A", ResetKind::Restart),
        Err(sccp_server::ResetError::NotRegistered(
            "SEP00112233440A".into()
        ))
    );
    n.handle
        .reset("sep001122334402", ResetKind::Restart)
        .unwrap();
    let e = ph
        .wait_event(T, |e| matches!(e, PhoneEvent::ResetReceived { .. }))
        .await
        .unwrap();
    assert_eq!(
        e,
        PhoneEvent::ResetReceived {
            server: 0,
            kind: Some(ResetType::Restart)
        }
    );
    ph.wait_event(T, |e| matches!(e, PhoneEvent::InService { .. }))
        .await
        .unwrap();
    assert!(n.journal.events().iter().any(|e| matches!(
        e.kind,
        EventKind::ResetSent {
            reset: ResetKind::Restart,
            ..
        }
    )));
    // Unregister: journal and RIS follow.
    ph.unregister();
    ph.wait_event(T, |e| matches!(e, PhoneEvent::Unregistered { .. }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(n.ris.get(&key("SEP001122334402")).is_none());
    assert!(n
        .journal
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::Unregistered { .. })));
    ph.stop().await;
    n.handle.shutdown().await;
}

#[tokio::test]
async fn silent_phone_is_dropped_and_keepalive_lost_journaled() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 1).await;
    let addr = n.handle.local_addr();
    dir.insert(device(3, "1003", &[addr]));
    let mut s = register_once(phone_cfg(3, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap();
    assert!(n.ris.get(&key("SEP001122334403")).is_some());
    let mut buf = [0u8; 256];
    // Server closes after ~3 s of silence (1.2 × keepalive, at least keepalive + 2 s).
    let t0 = std::time::Instant::now();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if r == 0 {
            break;
        }
    }
    assert!(t0.elapsed() >= Duration::from_secs(2));
    assert!(n.ris.get(&key("SEP001122334403")).is_none());
    assert!(n
        .journal
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::KeepaliveLost { .. })));
    n.handle.shutdown().await;
}

async fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(T, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn bad_input_closes_only_the_offending_session() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 30).await;
    let addr = n.handle.local_addr();
    dir.insert(device(4, "1004", &[addr]));
    let mut good = spawn_phone(phone_cfg(4, PhoneProfile::P7962), vec![addr]);
    good.wait_status(T, |s| s.in_service).await.unwrap();

    // Length larger than the maximum.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 0, 0, 0])
        .await
        .unwrap();
    assert!(closed_by_server(s).await);
    // Length smaller than a header.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[1, 0, 0, 0, 0, 0, 0, 0]).await.unwrap();
    assert!(closed_by_server(s).await);
    // LineStatReq before Register.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&Frame::new(0, Message::LineStatReq(sccp::LineStatReq { line: 1 })).to_bytes())
        .await
        .unwrap();
    assert!(closed_by_server(s).await);
    // A flood of keepalives.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut flood = Vec::new();
    for _ in 0..500 {
        Frame::new(0, Message::KeepAlive).encode(&mut flood);
    }
    let _ = s.write_all(&flood).await;
    assert!(closed_by_server(s).await);
    // A truncated message followed by the peer closing: no panic, nothing registered.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x44, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'S', b'E'])
        .await
        .unwrap();
    drop(s);

    // The registered phone is untouched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(good.status.borrow().in_service);
    assert_eq!(n.handle.registered(), 1);
    assert!(n.ris.get(&key("SEP001122334404")).is_some());
    good.stop().await;
    n.handle.shutdown().await;
}

#[tokio::test]
async fn config_is_validated() {
    let bad = sccp_server::ServerConfig {
        keepalive_secs: 0,
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    let bad = sccp_server::ServerConfig {
        node_name: String::new(),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    let bad = sccp_server::ServerConfig {
        lease_check: true,
        bind: any_port(),
        ..Default::default()
    };
    let deps = sccp_server::Deps {
        directory: Arc::new(MemoryDirectory::new()),
        ris: Arc::new(ris::Ris::new()),
        journal: journal::VecSink::new(),
        lease: None,
    };
    assert!(sccp_server::spawn(bad, deps).await.is_err());
    assert!(sccp_server::ServerConfig::default().validate().is_ok());
}

#[tokio::test]
async fn lease_check_accepts_only_the_leased_address() {
    let dir = Arc::new(MemoryDirectory::new());
    let ris = Arc::new(ris::Ris::new());
    let journal = journal::VecSink::new();
    let leased: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let lease: Arc<dyn sccp::LeaseCheck> = Arc::new(move |m: &mac::Mac, ip: std::net::IpAddr| {
        m.device_name() == "SEP001122334405" && ip == leased
    });
    let cfg = sccp_server::ServerConfig {
        bind: any_port(),
        lease_check: true,
        ..Default::default()
    };
    let h = sccp_server::spawn(
        cfg,
        sccp_server::Deps {
            directory: dir.clone(),
            ris,
            journal,
            lease: Some(lease),
        },
    )
    .await
    .unwrap();
    let addr = h.local_addr();
    dir.insert(device(5, "1005", &[addr]));
    dir.insert(device(6, "1006", &[addr]));
    assert!(
        register_once(phone_cfg(5, PhoneProfile::P7962), addr, None, T)
            .await
            .is_ok()
    );
    let e = register_once(phone_cfg(6, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "IP Not Authorized");
    h.shutdown().await;
}

/// Issue #18 item 4: a device registered and alive at 127.0.0.1 is not taken over by a
/// registration from 127.0.0.2 (rejected, counted, the first stays); once the first session
/// is gone the phone re-registers from the new address at once.
#[tokio::test]
async fn a_live_registration_is_not_taken_over_from_another_address() {
    let dir = Arc::new(MemoryDirectory::new());
    let n = node("cm1", any_port(), dir.clone(), 30).await;
    let addr = n.handle.local_addr();
    dir.insert(device(7, "1007", &[addr]));
    let first = register_once(
        phone_cfg(7, PhoneProfile::P7962),
        addr,
        Some("127.0.0.1:0".parse().unwrap()),
        T,
    )
    .await
    .unwrap();
    let other: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    let e = register_once(phone_cfg(7, PhoneProfile::P7962), addr, Some(other), T)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Device registered elsewhere");
    assert_eq!(n.handle.takeovers_refused(), 1);
    let row = n.ris.get(&key("SEP001122334407")).unwrap();
    assert_eq!(row.from, first.local_addr().unwrap(), "the live one stays");
    // The phone moved for real: its old connection is gone.
    drop(first);
    let deadline = tokio::time::Instant::now() + T;
    while n.handle.registered() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old session not dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let moved = register_once(phone_cfg(7, PhoneProfile::P7962), addr, Some(other), T)
        .await
        .expect("re-registers at once from the new address");
    let row = n.ris.get(&key("SEP001122334407")).unwrap();
    assert_eq!(row.from, moved.local_addr().unwrap());
    n.handle.shutdown().await;
}

/// Issue #18 item 4: the lease check runs before auto-registration writes anything, and
/// auto-registration is limited per source address.
#[tokio::test]
async fn auto_registration_is_lease_checked_first_and_rate_limited_per_source() {
    let dir = Arc::new(MemoryDirectory::new());
    let ris = Arc::new(ris::Ris::new());
    let journal = journal::VecSink::new();
    // Only MACs ending in 0x10..0x1f hold a lease at 127.0.0.1.
    let lease: Arc<dyn sccp::LeaseCheck> = Arc::new(|m: &mac::Mac, ip: std::net::IpAddr| {
        (0x10..0x20).contains(&m.0[5]) && ip == std::net::IpAddr::from([127, 0, 0, 1])
    });
    let cfg = sccp_server::ServerConfig {
        bind: any_port(),
        lease_check: true,
        auto_register_per_minute: 3,
        ..Default::default()
    };
    let h = sccp_server::spawn(
        cfg,
        sccp_server::Deps {
            directory: dir.clone(),
            ris,
            journal,
            lease: Some(lease),
        },
    )
    .await
    .unwrap();
    let addr = h.local_addr();
    dir.enable_auto_register(5000, 5999, device(0, "0", &[addr]));
    // No lease: rejected, and nothing was created.
    let e = register_once(phone_cfg(0x01, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "IP Not Authorized");
    assert_eq!(
        dir.len(),
        0,
        "auto-registration wrote a device for an unleased sender"
    );
    // Three auto-registrations from this source, then the limit.
    for b in 0x10..0x13 {
        register_once(phone_cfg(b, PhoneProfile::P7962), addr, None, T)
            .await
            .unwrap();
    }
    let e = register_once(phone_cfg(0x13, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Auto-registration limit");
    assert_eq!(dir.len(), 3);
    assert_eq!(h.auto_registrations_limited(), 1);
    // Known devices are not limited.
    dir.insert(device(0x14, "1014", &[addr]));
    register_once(phone_cfg(0x14, PhoneProfile::P7962), addr, None, T)
        .await
        .unwrap();
    h.shutdown().await;
}
