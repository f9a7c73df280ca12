//! Real user agent: baresip (Debian package `baresip-core`) registers with digest to the
//! service over loopback UDP, and unregisters when it quits. Needs the `baresip` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use journal::{EventKind, VecSink};
use ris::{RegKey, Ris};
use sip::{MemoryDirectory, RegistrarConfig};
use sip_server::{spawn, SipServerConfig};

#[tokio::test]
async fn baresip_registers_and_unregisters() {
    let dir = MemoryDirectory::new();
    dir.add_device(
        "001b54aabbcc".parse().unwrap(),
        None,
        &[("1001", "1001", Some("pw1001"))],
    );
    let ris = Arc::new(Ris::new());
    let sink = VecSink::new();
    let server = spawn(
        SipServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tcp: false,
            // MD5 only: libre 1.0 (baresip 1.0) answers a challenge list that starts with
            // SHA-256 with ENOSYS instead of picking the MD5 one.
            registrar: RegistrarConfig::default(),
            ..Default::default()
        },
        Arc::new(dir),
        ris.clone(),
        sink.clone(),
    )
    .await
    .unwrap();
    let srv = server.udp_addr().unwrap();

    // A free local port for baresip.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = std::env::temp_dir().join(format!("sip-baresip-{}", std::process::id()));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\nmodule_app account.so\nmodule g711.so\naudio_player aufile,/dev/null\naudio_source aufile,/dev/null\n"
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        format!("<sip:1001@{srv};transport=udp>;auth_pass=pw1001;regint=600\n"),
    )
    .unwrap();
    std::fs::write(conf.join("contacts"), "").unwrap();

    let child = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(&conf)
        .args(["-t", "2"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip not found: install Debian package baresip-core");

    let key = RegKey {
        device: "SEP001B54AABBCC".into(),
        line: Some("1001".into()),
    };
    let t0 = Instant::now();
    while ris.get(&key).is_none() && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let registered = ris.get(&key);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("baresip quit in time")
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let row = registered.unwrap_or_else(|| panic!("baresip did not register:\n{log}"));
    assert!(
        row.detail.to_ascii_lowercase().contains("baresip"),
        "{}",
        row.detail
    );
    assert!(server.stats().challenges >= 1);
    // On quit baresip sends REGISTER with Expires: 0.
    let t1 = Instant::now();
    while ris.get(&key).is_some() && t1.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ris.get(&key).is_none(), "not unregistered:\n{log}");
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::Unregistered { .. })));
    let _ = std::fs::remove_dir_all(&conf);
    server.shutdown().await;
}
