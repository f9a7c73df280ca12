//! Two phoneboot nodes of one CallManager group on loopback, and a phone driven by the
//! phone-side session: standby connection, failover when the primary dies, fallback when
//! it returns.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ris::RegKey;
use sccp::{MemoryDirectory, PhoneEvent, PhoneProfile};
use sccp_server::phone::spawn_phone;

const T: Duration = Duration::from_secs(8);

#[tokio::test]
async fn phone_fails_over_to_the_secondary_and_falls_back_to_the_primary() {
    let dir = Arc::new(MemoryDirectory::new());
    let cm1 = node("cm1", any_port(), dir.clone(), 2).await;
    let cm2 = node("cm2", any_port(), dir.clone(), 2).await;
    let (a1, a2) = (cm1.handle.local_addr(), cm2.handle.local_addr());
    dir.insert(device(0x21, "2101", &[a1, a2]));
    let key = RegKey {
        device: "SEP001122334421".into(),
        line: None,
    };

    let mut cfg = phone_cfg(0x21, PhoneProfile::P7962);
    cfg.fallback_interval = Duration::from_secs(1);
    let mut ph = spawn_phone(cfg, vec![a1, a2]);
    ph.wait_status(T, |s| {
        s.in_service && s.active == Some(0) && s.standby == Some(1)
    })
    .await
    .expect("registered to cm1 with a standby connection to cm2");
    assert!(cm1.ris.get(&key).is_some());
    // cm2 holds the standby connection but no registration.
    assert_eq!(cm2.handle.sessions(), 1);
    assert!(cm2.ris.get(&key).is_none());

    // The primary dies.
    cm1.handle.shutdown().await;
    let st = ph
        .wait_status(T, |s| s.in_service && s.active == Some(1))
        .await
        .expect("failed over to cm2");
    assert_eq!(st.lines, ["2101"]);
    assert!(cm2.ris.get(&key).is_some());
    assert!(ph
        .wait_event(T, |e| *e == PhoneEvent::FailedOver { from: 0, to: 1 })
        .await
        .is_some());

    // The primary comes back on the same address: the phone asks it for a token and
    // moves back, keeping cm2 as its standby.
    let cm1 = node("cm1", a1, dir.clone(), 2).await;
    ph.wait_status(T, |s| s.in_service && s.active == Some(0))
        .await
        .expect("fell back to cm1");
    assert!(cm1.ris.get(&key).is_some());
    ph.wait_status(T, |s| s.standby == Some(1))
        .await
        .expect("standby to cm2 again");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cm2.ris.get(&key).is_none(), "unregistered from cm2");
    assert!(cm2
        .journal
        .events()
        .iter()
        .any(|e| matches!(e.kind, journal::EventKind::Unregistered { .. })));
    ph.stop().await;
    cm1.handle.shutdown().await;
    cm2.handle.shutdown().await;
}
