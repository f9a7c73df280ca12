//! The service over real sockets on loopback: UDP and TCP registration, RIS rows and
//! journal events, CRLF keepalives, large and split TCP messages, expiry, NOTIFY restart,
//! and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use journal::{EventKind, VecSink};
use ris::{Protocol, RegKey, Ris};
use sip::{
    ClientConfig, ClientEvent, Limits, MemoryDirectory, Message, RegisterClient, RegistrarConfig,
    ServiceAction, Transport,
};
use sip_server::{spawn, SipServer, SipServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const MAC: &str = "001b54aabbcc";

async fn start(reg: RegistrarConfig) -> (SipServer, Arc<Ris>, Arc<VecSink>) {
    start_with(reg, false).await
}

async fn start_with(
    reg: RegistrarConfig,
    udp_blocking: bool,
) -> (SipServer, Arc<Ris>, Arc<VecSink>) {
    let dir = MemoryDirectory::new();
    dir.add_device(
        MAC.parse().unwrap(),
        Some("36670"),
        &[("1001", "1001", Some("pw1")), ("1002", "1002", Some("pw2"))],
    );
    let ris = Arc::new(Ris::new());
    let sink = VecSink::new();
    let server = spawn(
        SipServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            node: "test-node".into(),
            registrar: reg,
            sweep_interval: Duration::from_millis(100),
            notify_timeout: Duration::from_secs(3),
            udp_blocking,
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

fn client(user: &str, pw: &str, local: SocketAddr, transport: Transport) -> RegisterClient {
    RegisterClient::new(ClientConfig {
        domain: "127.0.0.1".into(),
        user: user.into(),
        auth_user: user.into(),
        password: pw.into(),
        local,
        transport,
        mac: Some(MAC.parse().unwrap()),
        model: Some("36670".into()),
        user_agent: "Cisco-CP8845/12.8.1".into(),
        reg_id: 1,
        call_id: format!("c-{user}-{}", local.port()),
        from_tag: "t1".into(),
    })
}

async fn udp_exchange(sock: &UdpSocket, to: SocketAddr, m: &Message) -> Message {
    sock.send_to(&m.encode(), to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    Message::parse(&buf[..n], &Limits::default()).unwrap()
}

async fn udp_register(
    sock: &UdpSocket,
    to: SocketAddr,
    c: &mut RegisterClient,
    exp: u32,
) -> ClientEvent {
    for i in 0..3 {
        let req = c.register(exp, &format!("u{i}{exp}"), "cn");
        let resp = udp_exchange(sock, to, &req).await;
        let e = c.on_response(&resp);
        if e != ClientEvent::Challenged {
            return e;
        }
    }
    panic!("no final answer");
}

fn key(line: &str) -> RegKey {
    RegKey {
        device: "SEP001B54AABBCC".into(),
        line: Some(line.into()),
    }
}

#[tokio::test]
async fn udp_register_ris_journal_unregister() {
    udp_register_ris_journal_unregister_with(false).await;
}

/// The same exchange through the blocking receive threads (`udp_blocking`), on a
/// multi-thread runtime as `phoneboot serve` runs; shutdown must still return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_register_with_blocking_receivers() {
    udp_register_ris_journal_unregister_with(true).await;
}

async fn udp_register_ris_journal_unregister_with(udp_blocking: bool) {
    let (server, ris, sink) = start_with(RegistrarConfig::default(), udp_blocking).await;
    let to = server.udp_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c = client("1001", "pw1", sock.local_addr().unwrap(), Transport::Udp);
    assert_eq!(
        udp_register(&sock, to, &mut c, 600).await,
        ClientEvent::Registered { expires: 600 }
    );
    let row = ris.get(&key("1001")).expect("RIS row");
    assert_eq!(row.protocol, Protocol::Sip);
    assert_eq!(row.node, "test-node");
    assert_eq!(row.from, sock.local_addr().unwrap());
    assert_eq!(row.model.as_deref(), Some("36670"));
    assert_eq!(row.detail, "Cisco-CP8845/12.8.1");
    // Second line of the same phone: a second row.
    let sock2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c2 = client("1002", "pw2", sock2.local_addr().unwrap(), Transport::Udp);
    let e = udp_register(&sock2, to, &mut c2, 600).await;
    assert!(matches!(e, ClientEvent::Registered { .. }), "{e:?}");
    assert_eq!(ris.of_device("SEP001B54AABBCC").len(), 2);

    // A CRLF keepalive datagram is absorbed; OPTIONS is answered.
    sock.send_to(b"\r\n\r\n", to).await.unwrap();
    let opt = Message::parse(
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKop\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: op1\r\nCSeq: 1 OPTIONS\r\n\r\n",
        &Limits::default(),
    )
    .unwrap();
    let r = udp_exchange(&sock, to, &opt).await;
    assert_eq!(r.status(), Some(200));
    assert!(r
        .header("Via")
        .unwrap()
        .contains(&format!("rport={}", sock.local_addr().unwrap().port())));
    assert!(
        server
            .io_stats()
            .udp_keepalives
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    assert_eq!(
        udp_register(&sock, to, &mut c, 0).await,
        ClientEvent::Unregistered
    );
    assert!(ris.get(&key("1001")).is_none());
    let kinds: Vec<EventKind> = sink.events().into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, EventKind::Registered { detail, node, .. } if detail == "1001" && node == "test-node")));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, EventKind::Unregistered { .. })));
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown returns");
}

#[tokio::test]
async fn tcp_register_keepalive_split_and_large_messages() {
    let (server, ris, _sink) = start(RegistrarConfig::default()).await;
    let to = server.tcp_addr().unwrap();
    let mut s = TcpStream::connect(to).await.unwrap();
    let local = s.local_addr().unwrap();
    let mut c = client("1001", "pw1", local, Transport::Tcp);

    // CRLF ping -> CRLF pong.
    s.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    let mut buf = Vec::new();
    let read_msg = async |s: &mut TcpStream, buf: &mut Vec<u8>| -> Message {
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(sip::Frame::Message(n)) = sip::frame(buf, &Limits::default()) {
                let m = Message::parse(&buf[..n], &Limits::default()).unwrap();
                buf.drain(..n);
                return m;
            }
            let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    };

    // First REGISTER written in three pieces.
    let req = c.register(600, "t1", "cn").encode();
    for part in req.chunks(req.len() / 3 + 1) {
        s.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = read_msg(&mut s, &mut buf).await;
    assert_eq!(c.on_response(&r), ClientEvent::Challenged);
    // Authenticated REGISTER with a 30 kB body (a Cisco bulk-register body is large),
    // followed in the same write by an OPTIONS.
    let mut reg = c.register(600, "t2", "cn");
    reg.push_header("Content-Type", "application/x-cisco-remotecc-request+xml");
    reg.body = vec![b'x'; 30_000];
    let mut wire = reg.encode();
    wire.extend_from_slice(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKo2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: op2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    s.write_all(&wire).await.unwrap();
    let r = read_msg(&mut s, &mut buf).await;
    assert_eq!(c.on_response(&r), ClientEvent::Registered { expires: 600 });
    let r2 = read_msg(&mut s, &mut buf).await;
    assert_eq!(r2.status(), Some(200));
    assert_eq!(r2.header("Call-ID"), Some("op2"));
    assert_eq!(ris.get(&key("1001")).unwrap().from, local);

    // Restart NOTIFY over the phone's own TCP connection.
    let notifier = server.notifier();
    let job = tokio::spawn(async move {
        notifier
            .notify_service_control("SEP001B54AABBCC", ServiceAction::Restart)
            .await
    });
    let n = read_msg(&mut s, &mut buf).await;
    assert_eq!(n.method(), Some(&sip::Method::Notify));
    assert_eq!(n.header("Event"), Some("service-control"));
    assert!(String::from_utf8_lossy(&n.body).starts_with("action=restart"));
    s.write_all(&n.response(200, "OK").encode()).await.unwrap();
    let res = job.await.unwrap().unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].status, Some(200));

    // An oversized message closes the connection.
    let mut huge = b"REGISTER sip:x SIP/2.0\r\nContent-Length: 900000\r\n\r\n".to_vec();
    huge.extend_from_slice(&[b'a'; 100]);
    s.write_all(&huge).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
    assert!(String::from_utf8_lossy(&rest).contains("513"));
    server.shutdown().await;
}

#[tokio::test]
async fn udp_notify_restart_and_expiry() {
    let (server, ris, sink) = start(RegistrarConfig {
        min_expires: 1,
        default_expires: 1,
        ..Default::default()
    })
    .await;
    let to = server.udp_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c = client("1001", "pw1", sock.local_addr().unwrap(), Transport::Udp);
    assert!(matches!(
        udp_register(&sock, to, &mut c, 2).await,
        ClientEvent::Registered { expires: 2 }
    ));
    let notifier = server.notifier();
    let job = tokio::spawn(async move {
        notifier
            .notify_service_control("SEP001B54AABBCC", ServiceAction::Reset)
            .await
    });
    let mut buf = vec![0u8; 65_536];
    // Ignore the first copy to exercise retransmission; answer the second.
    let (n, _) = sock.recv_from(&mut buf).await.unwrap();
    let first = Message::parse(&buf[..n], &Limits::default()).unwrap();
    let (n, src) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("retransmitted")
        .unwrap();
    let again = Message::parse(&buf[..n], &Limits::default()).unwrap();
    assert_eq!(first, again);
    assert!(String::from_utf8_lossy(&again.body).starts_with("action=reset"));
    sock.send_to(&again.response(200, "OK").encode(), src)
        .await
        .unwrap();
    let res = job.await.unwrap().unwrap();
    assert_eq!(res[0].status, Some(200));
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::ResetSent { .. })));
    assert!(server
        .notifier()
        .notify_service_control("SEP000000000001", ServiceAction::Restart)
        .await
        .is_err());

    // No refresh: the binding expires, the RIS row goes, KeepaliveLost is journaled.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(ris.get(&key("1001")).is_none());
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::KeepaliveLost { .. })));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_never_stops_the_service() {
    let (server, _ris, _sink) = start(RegistrarConfig::default()).await;
    let to = server.udp_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let junk: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 50\r\n\r\nshort".to_vec(),
        b"REGISTER sip:x SIP/9.9\r\n\r\n".to_vec(),
        vec![0xff; 1000],
        b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKj\r\n\r\n"
            .to_vec(),
    ];
    for j in &junk {
        sock.send_to(j, to).await.unwrap();
    }
    // The last one has a Via but misses mandatory headers: 400.
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let r = Message::parse(&buf[..n], &Limits::default()).unwrap();
    assert_eq!(r.status(), Some(400));
    // Still serving.
    let mut c = client("1001", "pw1", sock.local_addr().unwrap(), Transport::Udp);
    assert!(matches!(
        udp_register(&sock, to, &mut c, 600).await,
        ClientEvent::Registered { .. }
    ));
    assert!(
        server
            .io_stats()
            .parse_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    server.shutdown().await;
}

#[tokio::test]
async fn config_is_validated() {
    let bad = SipServerConfig {
        udp: false,
        tcp: false,
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    let bad = SipServerConfig {
        registrar: RegistrarConfig {
            max_expires: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    assert!(SipServerConfig::default().validate().is_ok());
}

#[tokio::test]
async fn auto_registered_phone_is_told_to_restart() {
    let dir = Arc::new(MemoryDirectory::new());
    dir.enable_auto_register(7000, 7009);
    let ris = Arc::new(Ris::new());
    let server = spawn(
        SipServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tcp: false,
            registrar: RegistrarConfig {
                auto_register: true,
                ..Default::default()
            },
            restart_after_auto_register: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        dir.clone(),
        ris.clone(),
        VecSink::new(),
    )
    .await
    .unwrap();
    let to = server.udp_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A phone that booted on XMLDefault: its MAC is unknown, it asks for some line.
    let mut cfg = client("xmldefault", "", sock.local_addr().unwrap(), Transport::Udp)
        .config()
        .clone();
    cfg.mac = Some("00aabb112233".parse().unwrap());
    let mut c = RegisterClient::new(cfg);
    assert!(matches!(
        udp_register(&sock, to, &mut c, 600).await,
        ClientEvent::Registered { .. }
    ));
    let row = ris
        .get(&RegKey {
            device: "SEP00AABB112233".into(),
            line: Some("7000".into()),
        })
        .expect("auto-registered row under the new DN");
    assert_eq!(row.from, sock.local_addr().unwrap());
    use sip::SipDirectory;
    assert_eq!(
        dir.device_by_mac("00aabb112233".parse().unwrap())
            .unwrap()
            .lines,
        vec!["7000".to_string()]
    );
    let mut buf = vec![0u8; 65_536];
    let (n, src) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("restart NOTIFY")
        .unwrap();
    let m = Message::parse(&buf[..n], &Limits::default()).unwrap();
    assert_eq!(m.header("Event"), Some("service-control"));
    assert!(String::from_utf8_lossy(&m.body).starts_with("action=restart"));
    sock.send_to(&m.response(200, "OK").encode(), src)
        .await
        .unwrap();
    server.shutdown().await;
}
