//! The file service over real loopback sockets (ports chosen by the kernel, no root):
//! TFTP and HTTP answers, events, limits, bad input, timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fileserver::client::{http_get, tftp_get};
use fileserver::{
    Config, Deps, File, FileEvent, FileResult, FileServer, MapSource, Sockets, StaticMacs,
};
use journal::{EventKind, VecSink};
use mac::Mac;
use tftp::packet::{encode_ack, ErrorCode, Packet};
use tftp::{ClientConfig, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const MAC: &str = "001b54aabbcc";

struct Env {
    server: FileServer,
    _dir: tempfile::TempDir,
    sink: Arc<VecSink>,
    events: Arc<Mutex<Vec<FileEvent>>>,
    big: Vec<u8>,
}

impl Env {
    fn tftp(&self) -> SocketAddr {
        self.server.tftp_addr().unwrap()
    }
    fn http(&self) -> SocketAddr {
        self.server.http_addr().unwrap()
    }
    fn events(&self) -> Vec<FileEvent> {
        self.events.lock().unwrap().clone()
    }
}

async fn start(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("English_United_States")).unwrap();
    std::fs::write(
        root.join("English_United_States/mk-sip.jar"),
        b"locale jar bytes",
    )
    .unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(root.join("P0030801SR02.loads"), &big).unwrap();
    std::fs::write(dir.path().join("outside"), b"secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).unwrap();
    // The root is a subdirectory so "outside" really is outside.
    let tree = root.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for entry in ["English_United_States", "P0030801SR02.loads", "escape"] {
        std::fs::rename(root.join(entry), tree.join(entry)).unwrap();
    }

    let generated = MapSource::new();
    generated.insert(
        &format!("SEP{}.cnf.xml", MAC.to_uppercase()),
        File::with_version(
            &b"<device><deviceProtocol>SIP</deviceProtocol></device>\n"[..],
            7,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ),
    );
    // The phone at 127.0.0.1 (per the lease table below) has its own file too.
    generated.insert(
        "SEP001B54000001.cnf.xml",
        File::new(
            &b"<device><authPassword>own</authPassword></device>\n"[..],
            SystemTime::now(),
        ),
    );
    generated.insert(
        "ITLFile.tlv",
        File::new(&b"trust list"[..], SystemTime::now()),
    );
    let mut macs = StaticMacs::default();
    macs.0.insert(
        "127.0.0.1".parse::<IpAddr>().unwrap(),
        "00:1b:54:00:00:01".parse().unwrap(),
    );
    let sink = VecSink::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let mut cfg = Config {
        tftp_bind: None,
        http_bind: None,
        root: Some(tree),
        ..Config::default()
    };
    tweak(&mut cfg);
    let sockets = Sockets {
        tftp: Some(UdpSocket::bind("127.0.0.1:0").await.unwrap()),
        http: Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
    };
    let deps = Deps {
        source: Some(generated),
        macs: Some(Arc::new(macs)),
        sink: Some(sink.clone()),
        observer: Some(Arc::new(move |e: &FileEvent| {
            ev2.lock().unwrap().push(e.clone())
        })),
    };
    cfg.tftp_bind = Some("127.0.0.1:0".parse().unwrap());
    let server = fileserver::spawn(cfg, sockets, deps).unwrap();
    Env {
        server,
        _dir: dir,
        sink,
        events,
        big,
    }
}

fn sep_name() -> String {
    format!("SEP{}.cnf.xml", MAC.to_uppercase())
}

/// Waits until the observer saw `n` events (reports happen after the last packet).
async fn wait_events(env: &Env, n: usize) -> Vec<FileEvent> {
    for _ in 0..200 {
        let e = env.events();
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.events()
}

/// Waits (bounded) until no transfer holds a slot.
async fn wait_idle(env: &Env) {
    for _ in 0..300 {
        if env.server.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("slots still held: {}", env.server.in_flight());
}

#[tokio::test]
async fn tftp_serves_generated_and_static_files_case_insensitively() {
    let env = start(|_| {}).await;
    let got = tftp_get(
        env.tftp(),
        &sep_name().to_lowercase(),
        ClientConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        b"<device><deviceProtocol>SIP</deviceProtocol></device>\n"
    );
    for cfg in [
        ClientConfig::default(),
        ClientConfig {
            blksize: Some(1428),
            tsize: true,
            ..ClientConfig::default()
        },
        ClientConfig {
            blksize: Some(1024),
            windowsize: Some(8),
            timeout_option: Some(2),
            tsize: true,
            ..ClientConfig::default()
        },
    ] {
        let got = tftp_get(env.tftp(), "p0030801sr02.LOADS", cfg)
            .await
            .unwrap();
        assert_eq!(got, env.big);
    }
    let got = tftp_get(
        env.tftp(),
        "/english_united_states/MK-SIP.jar",
        ClientConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(got, b"locale jar bytes");

    let events = wait_events(&env, 5).await;
    assert_eq!(events.len(), 5);
    assert!(events.iter().all(|e| e.result == FileResult::Served));
    // MAC from the name for the SEP file, from the lease table otherwise.
    let sep_mac: Mac = MAC.parse().unwrap();
    assert_eq!(events[0].mac, Some(sep_mac));
    assert_eq!(events[1].mac, Some("00:1b:54:00:00:01".parse().unwrap()));
    assert_eq!(events[1].bytes, 100_000);
    let journal = env.sink.events();
    assert_eq!(journal.len(), 5);
    assert!(matches!(
        &journal[0].kind,
        EventKind::FileServed {
            bytes: 54,
            transport: journal::Transport::Tftp,
            ..
        }
    ));
    assert_eq!(journal[0].mac, sep_mac);
    assert_eq!(env.server.stats().tftp_served, 5);
}

#[tokio::test]
async fn tftp_errors_missing_writes_escapes_and_trust_lists() {
    let env = start(|_| {}).await;
    let err = |r: Result<Vec<u8>, fileserver::client::FetchError>| match r {
        Err(fileserver::client::FetchError::Tftp(ClientError::Server { code, .. })) => code,
        other => panic!("expected a server error, got {other:?}"),
    };
    let missing = err(tftp_get(
        env.tftp(),
        "SEP001B54000000.cnf.xml",
        ClientConfig::default(),
    )
    .await);
    assert_eq!(missing, ErrorCode::FileNotFound);
    // Not a secure cluster: trust lists are "not found" even though the source has one.
    let t0 = Instant::now();
    let ctl = err(tftp_get(env.tftp(), "ITLFile.tlv", ClientConfig::default()).await);
    assert_eq!(ctl, ErrorCode::FileNotFound);
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "answered on the first try"
    );
    assert_eq!(
        err(tftp_get(env.tftp(), "../outside", ClientConfig::default()).await),
        ErrorCode::AccessViolation
    );
    assert_eq!(
        err(tftp_get(env.tftp(), "escape", ClientConfig::default()).await),
        ErrorCode::AccessViolation
    );
    assert_eq!(
        err(tftp_get(env.tftp(), "a\\b", ClientConfig::default()).await),
        ErrorCode::AccessViolation
    );
    // An absolute path means the tree root, never the host's /etc.
    assert_eq!(
        err(tftp_get(env.tftp(), "/etc/passwd", ClientConfig::default()).await),
        ErrorCode::FileNotFound
    );

    // WRQ: refused with access violation from port 69.
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(b"\x00\x02up.bin\x00octet\x00", env.tftp())
        .await
        .unwrap();
    let mut buf = [0u8; 600];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        Packet::decode(&buf[..n]).unwrap(),
        Packet::Error {
            code: ErrorCode::AccessViolation,
            ..
        }
    ));
    let st = env.server.stats();
    assert_eq!(st.tftp_write_refused, 1);
    assert_eq!(st.tftp_missing, 3);
    assert_eq!(st.tftp_refused_paths, 3);
    let events = wait_events(&env, 6).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.result == FileResult::Missing)
            .count(),
        3
    );
    let j = env.sink.events();
    assert!(j
        .iter()
        .any(|e| matches!(&e.kind, EventKind::FileMissing { name, .. } if name == "SEP001B54000000.cnf.xml")));
}

#[tokio::test]
async fn trust_lists_are_served_on_a_secure_cluster() {
    let env = start(|c| c.secure_cluster = true).await;
    let got = tftp_get(env.tftp(), "itlfile.tlv", ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(got, b"trust list");
}

#[tokio::test]
async fn bad_input_is_counted_and_other_transfers_continue() {
    let env = start(|_| {}).await;
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Start a transfer by hand (blksize 512, big file): get DATA 1.
    s.send_to(b"\x00\x01P0030801SR02.loads\x00octet\x00", env.tftp())
        .await
        .unwrap();
    let mut buf = vec![0u8; 2000];
    let (n, tid) = s.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..4], b"\x00\x03\x00\x01");
    assert_eq!(n, 516);
    // Garbage to port 69: unknown opcode, truncated RRQ, bad mode, empty datagram.
    for junk in [
        &b"\x00\x09hello"[..],
        b"\x00\x01noterminator",
        b"\x00\x01f\x00binary\x00",
        b"",
        b"\x00\x04\x00\x01",
    ] {
        s.send_to(junk, env.tftp()).await.unwrap();
    }
    // Out-of-range options are ignored, not fatal: plain DATA comes back (no OACK).
    let s2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s2.send_to(
        b"\x00\x01English_United_States/mk-sip.jar\x00octet\x00blksize\x001\x00windowsize\x000\x00timeout\x00999\x00",
        env.tftp(),
    )
    .await
    .unwrap();
    let mut b2 = vec![0u8; 2000];
    let (n2, tid2) = s2.recv_from(&mut b2).await.unwrap();
    assert_eq!(&b2[..4], b"\x00\x03\x00\x01");
    assert_eq!(&b2[4..n2], b"locale jar bytes");
    let mut ack = Vec::new();
    encode_ack(&mut ack, 1);
    s2.send_to(&ack, tid2).await.unwrap();

    // On the transfer port: an ACK for a block never sent, garbage, a duplicate of ACK 0.
    let mut bad = Vec::new();
    encode_ack(&mut bad, 999);
    s.send_to(&bad, tid).await.unwrap();
    s.send_to(b"\xff\xff\xff", tid).await.unwrap();
    // The transfer goes on: ACK every block to the end.
    let mut total = n - 4;
    let mut block = 1u16;
    let mut errors_seen = 0;
    loop {
        let mut a = Vec::new();
        encode_ack(&mut a, block);
        s.send_to(&a, tid).await.unwrap();
        if n - 4 < 512 && block > 1 {
            break;
        }
        let (m, from) = tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if from != tid {
            // Error 4 answers to the junk sent to port 69.
            errors_seen += 1;
            continue;
        }
        let b = u16::from_be_bytes([buf[2], buf[3]]);
        assert_eq!(b, block.wrapping_add(1));
        block = b;
        total += m - 4;
        if m - 4 < 512 {
            let mut a = Vec::new();
            encode_ack(&mut a, block);
            s.send_to(&a, tid).await.unwrap();
            break;
        }
    }
    assert_eq!(total, env.big.len());
    let events = wait_events(&env, 2).await;
    assert!(
        events.iter().all(|e| e.result == FileResult::Served),
        "{events:?}"
    );
    let st = env.server.stats();
    assert_eq!(st.tftp_unknown_opcode, 1);
    // Three bad requests to port 69, one bad datagram on the transfer port.
    assert_eq!(st.tftp_malformed, 4, "{st:?}");
    assert_eq!(st.tftp_stray_packets, 1);
    assert!(st.tftp_bad_acks >= 1);
    assert!(errors_seen <= 3);
}

#[tokio::test]
async fn limits_refuse_quickly_and_timeouts_free_slots() {
    let env = start(|c| {
        c.max_transfers = 1;
        c.tftp_timeout_ms = 50;
        c.tftp_max_timeout_ms = 50;
        c.tftp_retries = 1;
    })
    .await;
    // A client that asks and then vanishes (never ACKs).
    let ghost = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ghost
        .send_to(b"\x00\x01P0030801SR02.loads\x00octet\x00", env.tftp())
        .await
        .unwrap();
    let mut buf = [0u8; 600];
    ghost.recv_from(&mut buf).await.unwrap();
    // Its retransmitted RRQ does not start a second transfer.
    ghost
        .send_to(b"\x00\x01P0030801SR02.loads\x00octet\x00", env.tftp())
        .await
        .unwrap();
    // The slot is taken: a second client is refused at once (TFTP error, HTTP 503).
    let t0 = Instant::now();
    let r = tftp_get(env.tftp(), "P0030801SR02.loads", ClientConfig::default()).await;
    assert!(
        matches!(
            r,
            Err(fileserver::client::FetchError::Tftp(ClientError::Server {
                code: ErrorCode::NotDefined,
                ..
            }))
        ),
        "{r:?}"
    );
    // Refused on the first try (the client's retransmission timer is 1 s).
    assert!(t0.elapsed() < Duration::from_millis(900));
    let h = http_get(
        env.http(),
        "P0030801SR02.loads",
        &[],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(h.status, 503);
    assert_eq!(h.header("retry-after"), Some("1"));
    // After the ghost times out (50 ms + 50 ms), the slot is free again.
    wait_idle(&env).await;
    let got = tftp_get(env.tftp(), "P0030801SR02.loads", ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(got.len(), env.big.len());
    let st = env.server.stats();
    assert_eq!(st.tftp_busy, 1);
    assert_eq!(st.http_busy, 1);
    assert_eq!(st.tftp_timeouts, 1);
    assert_eq!(st.tftp_duplicate_requests, 1);
    let events = env.events();
    assert!(events
        .iter()
        .any(|e| e.result == FileResult::Failed("timeout".into())));
}

#[tokio::test]
async fn per_client_limit() {
    let env = start(|c| c.per_client_limit = 1).await;
    let ghost = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ghost
        .send_to(b"\x00\x01P0030801SR02.loads\x00octet\x00", env.tftp())
        .await
        .unwrap();
    let mut buf = [0u8; 600];
    ghost.recv_from(&mut buf).await.unwrap();
    let r = tftp_get(env.tftp(), "P0030801SR02.loads", ClientConfig::default()).await;
    assert!(matches!(
        r,
        Err(fileserver::client::FetchError::Tftp(
            ClientError::Server { .. }
        ))
    ));
    assert_eq!(env.server.stats().tftp_busy, 1);
}

#[tokio::test]
async fn http_get_with_validators_and_304() {
    let env = start(|_| {}).await;
    let r = http_get(env.http(), &sep_name(), &[], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        b"<device><deviceProtocol>SIP</deviceProtocol></device>\n"
    );
    assert_eq!(r.header("content-length"), Some("54"));
    assert_eq!(r.header("etag"), Some("\"v7\""));
    assert_eq!(r.header("content-type"), Some("text/xml"));
    let lm = r.header("last-modified").unwrap().to_string();
    let r = http_get(
        env.http(),
        &sep_name().to_lowercase(),
        &[("If-None-Match", "\"v7\"")],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = http_get(
        env.http(),
        &sep_name(),
        &[("If-Modified-Since", &lm)],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 304);
    let r = http_get(
        env.http(),
        &sep_name(),
        &[("If-None-Match", "\"v6\"")],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    // Static, case-insensitive, percent-encoded path.
    let r = http_get(
        env.http(),
        "ENGLISH_united_states/mk%2Dsip.jar",
        &[],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"locale jar bytes");
    let r = http_get(
        env.http(),
        "P0030801SR02.loads",
        &[],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.body, env.big);
    let etag = r.header("etag").unwrap().to_string();
    let r = http_get(
        env.http(),
        "p0030801sr02.loads",
        &[("If-None-Match", &etag)],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 304);
    for (path, status) in [
        ("nothing-here.xml", 404),
        ("CTLSEP001B54AABBCC.tlv", 404),
        ("%2e%2e/outside", 403),
        ("escape", 403),
    ] {
        let r = http_get(env.http(), path, &[], Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(r.status, status, "{path}");
    }
    let st = env.server.stats();
    assert_eq!(st.http_served, 4);
    assert_eq!(st.http_not_modified, 3);
    assert_eq!(st.http_missing, 2);
    let j = env.sink.events();
    assert!(j.iter().any(|e| matches!(
        &e.kind,
        EventKind::FileServed {
            transport: journal::Transport::Http,
            bytes: 100_000,
            ..
        }
    )));
}

#[tokio::test]
async fn slow_http_clients_are_cut_off() {
    let env = start(|c| c.http_header_timeout_secs = 1).await;
    let mut s = TcpStream::connect(env.http()).await.unwrap();
    s.write_all(b"GET /SEP").await.unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("server closes a connection that never finishes its headers");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The server still answers others.
    let r = http_get(env.http(), &sep_name(), &[], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn http_connection_cap_answers_503() {
    let env = start(|c| c.http_max_connections = 1).await;
    let _idle = TcpStream::connect(env.http()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = http_get(env.http(), &sep_name(), &[], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(env.server.stats().http_connections_refused, 1);
}

#[tokio::test]
async fn shutdown_stops_service() {
    let env = start(|_| {}).await;
    let addr = env.tftp();
    let stats = env.server.shutdown().await;
    assert_eq!(stats.tftp_requests, 0);
    let r = tftp_get(
        addr,
        "x",
        ClientConfig {
            initial_timeout: Duration::from_millis(20),
            max_retries: 1,
            ..ClientConfig::default()
        },
    )
    .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn rrq_flood_is_counted_and_a_real_transfer_still_completes() {
    let env = start(|c| {
        c.max_transfers = 32;
        c.per_client_limit = 32;
        c.tftp_timeout_ms = 100;
        c.tftp_retries = 1;
    })
    .await;
    let legit = tokio::spawn({
        let addr = env.tftp();
        async move {
            tftp_get(
                addr,
                "P0030801SR02.loads",
                ClientConfig {
                    blksize: Some(1428),
                    ..ClientConfig::default()
                },
            )
            .await
        }
    });
    // 40 sockets x 50 RRQs that never ACK: missing files, real files, junk options.
    let mut socks = Vec::new();
    for _ in 0..40 {
        socks.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for i in 0..50 {
        for (j, s) in socks.iter().enumerate() {
            let name = match (i + j) % 3 {
                0 => "missing.xml".to_string(),
                1 => "P0030801SR02.loads".to_string(),
                _ => format!("x{i}\0octet\0blksize\099999999999"),
            };
            let mut p = b"\x00\x01".to_vec();
            p.extend_from_slice(name.as_bytes());
            p.extend_from_slice(b"\x00octet\x00");
            let _ = s.send_to(&p, env.tftp()).await;
        }
        tokio::task::yield_now().await;
    }
    let got = legit.await.unwrap().unwrap();
    assert_eq!(got, env.big);
    // Every flood transfer times out (100 ms, one retry) and frees its slot.
    wait_idle(&env).await;
    let st = env.server.stats();
    // A third of the flood carries an option without a value: malformed, answered error 4.
    assert_eq!(st.tftp_requests + st.tftp_malformed, 2001, "{st:?}");
    assert!(st.tftp_malformed > 600);
    assert_eq!(
        st.tftp_requests,
        st.tftp_served
            + st.tftp_missing
            + st.tftp_failed
            + st.tftp_busy
            + st.tftp_duplicate_requests,
        "{st:?}"
    );
    assert!(st.tftp_busy > 0 || st.tftp_duplicate_requests > 0);
}

#[tokio::test]
async fn http_head_has_length_and_no_body() {
    let env = start(|_| {}).await;
    let mut s = TcpStream::connect(env.http()).await.unwrap();
    s.write_all(
        format!(
            "HEAD /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            sep_name()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_lowercase().contains("content-length: 54"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD must carry no body: {text}"
    );
    // Other methods are refused.
    let mut s = TcpStream::connect(env.http()).await.unwrap();
    s.write_all(b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 405"));
}

/// Issue #18 item 3: with the lease gate on, a phone's own file (its credentials) goes only
/// to the address holding its lease: 127.0.0.1 holds 00:1b:54:00:00:01's lease, so it gets
/// that phone's file but "not found" for SEP001B54AABBCC — over TFTP and HTTP — and the
/// refused request writes nothing to 001b54aabbcc's journal.
#[tokio::test]
async fn a_phones_file_goes_only_to_its_lease_holder() {
    let env = start(|c| c.lease_gate = true).await;
    let other = sep_name();
    let e = tftp_get(env.tftp(), &other, ClientConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            fileserver::client::FetchError::Tftp(ClientError::Server {
                code: ErrorCode::FileNotFound,
                ..
            })
        ),
        "{e:?}"
    );
    let r = http_get(env.http(), &other, &[], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    // Its own file, and the files every phone may read, are served.
    let own = tftp_get(
        env.tftp(),
        "SEP001B54000001.cnf.xml",
        ClientConfig::default(),
    )
    .await
    .unwrap();
    assert!(own.starts_with(b"<device>"));
    let r = http_get(
        env.http(),
        "SEP001B54000001.cnf.xml",
        &[],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let evs = wait_events(&env, 4).await;
    let victim: Mac = MAC.parse().unwrap();
    assert!(
        evs.iter()
            .filter(|e| e.name.eq_ignore_ascii_case(&other))
            .all(|e| e.mac.is_none()),
        "{evs:?}"
    );
    assert!(
        env.sink.events().iter().all(|e| e.mac != victim),
        "a request naming another phone reached its journal"
    );
}

/// Without the gate (phoneboot is not the DHCP server) the file is served as before.
#[tokio::test]
async fn without_the_lease_gate_files_go_to_anyone() {
    let env = start(|_| {}).await;
    assert!(tftp_get(env.tftp(), &sep_name(), ClientConfig::default())
        .await
        .is_ok());
}
