//! Phones boot over real sockets between two network namespaces joined by a veth pair:
//! dnsmasq gives leases with a two-address option 150 and serves the files over TFTP; a small
//! SCCP CallManager built on the `sccp` crate's server session accepts registrations (and
//! auto-registers unknown phones). Needs root and dnsmasq; skipped (with a message) otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use journal::{Protocol, Step, Transport};
use sim::model::Model;
use sim::phone::{run_phone, BootOptions, Env, PhoneSpec};
use sim::report::{FileResult, Outcome, PhoneReport, VlanSource};

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |p: &str| Path::new(p).exists();
    root && have("/usr/sbin/dnsmasq") && have("/usr/sbin/ip")
}

/// Runs `f` on a new thread that joined namespace `ns`, with its own current-thread runtime:
/// every socket the phones open (raw, netlink, TCP, UDP) then lives in that namespace.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let nsf = File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}");
        f()
    })
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sccp_config(cm: Ipv4Addr, load: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<device><deviceProtocol>SCCP</deviceProtocol><devicePool><callManagerGroup><members>
<member priority="0"><callManager><ports><ethernetPhonePort>2000</ethernetPhonePort></ports><processNodeName>{cm}</processNodeName></callManager></member>
</members></callManagerGroup></devicePool><loadInformation>{load}</loadInformation>
<userLocale><name>English_United_States</name></userLocale><networkLocale>United_States</networkLocale></device>"#
    )
}

fn xml_default(cms: &[Ipv4Addr]) -> String {
    let mut m = String::new();
    for (i, cm) in cms.iter().enumerate() {
        m.push_str(&format!(
            "<member priority=\"{i}\"><callManager><ports><ethernetPhonePort>2000</ethernetPhonePort><sipPort>5060</sipPort></ports><processNodeName>{cm}</processNodeName></callManager></member>"
        ));
    }
    format!("<Default><callManagerGroup><members>{m}</members></callManagerGroup><loadInformation436 model=\"Cisco 7965\">SCCP45.9-4-2SR3-1S</loadInformation436></Default>")
}

/// A CallManager: the sccp crate's server session on TCP 2000, auto-registering unknown
/// phones from DN 5000.
async fn sccp_server(listen: Ipv4Addr, reset_once: bool) {
    let resets = Arc::new(std::sync::Mutex::new(
        std::collections::HashSet::<String>::new(),
    ));
    let dir = Arc::new(sccp::MemoryDirectory::new());
    dir.enable_auto_register(
        5000,
        5999,
        sccp::SccpDevice {
            name: String::new(),
            device_type: 436,
            model: "7965".into(),
            lines: vec![],
            speed_dials: vec![],
            keepalive_secs: Some(30),
            call_managers: vec![],
            date_format: "D.M.Y".into(),
            tz_offset_secs: 0,
            user_name: String::new(),
            forward_all: None,
            firmware: String::new(),
        },
    );
    let cfg = Arc::new(sccp::SessionConfig {
        self_ip: listen,
        ..Default::default()
    });
    let l = tokio::net::TcpListener::bind(SocketAddr::from((listen, 2000)))
        .await
        .unwrap();
    loop {
        let (mut s, peer) = l.accept().await.unwrap();
        let (dir, cfg, resets) = (Arc::clone(&dir), Arc::clone(&cfg), Arc::clone(&resets));
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut sess = sccp::ServerSession::new(&cfg, peer.ip(), Instant::now());
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let env = sccp::Env {
                    directory: dir.as_ref(),
                    lease: None,
                    wall: SystemTime::now(),
                };
                sess.handle_bytes(&cfg, &buf[..n], Instant::now(), &env);
                let mut out = Vec::new();
                sess.take_output(&mut out);
                if !out.is_empty() && s.write_all(&out).await.is_err() {
                    return;
                }
                while let Some(ev) = sess.poll_event() {
                    // Restart each phone once when it comes into service (tests resets).
                    if let sccp::ServerEvent::InService { device } = ev {
                        if reset_once && resets.lock().unwrap().insert(device) {
                            sess.reset(sccp::ResetType::Restart);
                            let mut out = Vec::new();
                            sess.take_output(&mut out);
                            let _ = s.write_all(&out).await;
                        }
                    }
                }
                if sess.is_closed() {
                    return;
                }
            }
        });
    }
}

/// A SIP registrar: the sip crate's registrar core on UDP 5060 with one provisioned line.
async fn sip_server(listen: Ipv4Addr, mac: mac::Mac, notify_once: bool) {
    let mut notified = std::collections::HashSet::new();
    let dir = sip::MemoryDirectory::new();
    dir.add_device(
        mac,
        Some("CP-8845"),
        &[("4101", "auth4101", Some("s3cret"))],
    );
    let mut reg = sip::Registrar::new(sip::RegistrarConfig::default(), [7; 32]).unwrap();
    let sock = tokio::net::UdpSocket::bind(SocketAddr::from((listen, 5060)))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let Ok(m) = sip::Message::parse(&buf[..n], &sip::Limits::default()) else {
            continue;
        };
        let out = reg.handle(&dir, &m, src, sip::Transport::Udp, SystemTime::now());
        if let Some(r) = out.response {
            let to = sip::response_target(&m, src);
            let _ = sock.send_to(&r.encode(), to).await;
        }
        for ev in out.events {
            // Restart each device once after its first registration (service-control NOTIFY).
            if let sip::RegEvent::Registered { device, .. } = ev {
                if notify_once && notified.insert(device.clone()) {
                    let local = SocketAddr::from((listen, 5060));
                    let reqs = reg.service_control(
                        &device,
                        sip::ServiceAction::Restart,
                        &sip::VersionStamps::default(),
                        local,
                        "t0k",
                    );
                    for r in reqs {
                        let _ = sock.send_to(&r.message.encode(), r.to).await;
                    }
                }
            }
        }
    }
}

fn sip_config(cm: Ipv4Addr, password: &str) -> String {
    format!(
        r#"<device><deviceProtocol>SIP</deviceProtocol><devicePool><callManagerGroup><members>
<member priority="0"><callManager><ports><sipPort>5060</sipPort></ports><processNodeName>{cm}</processNodeName></callManager></member>
</members></callManagerGroup></devicePool>
<sipProfile><sipLines><line button="1"><featureID>9</featureID><name>4101</name><authName>auth4101</authName><authPassword>{password}</authPassword><proxy>USECALLMANAGER</proxy></line></sipLines>
<sipStack><timerRegisterExpires>3600</timerRegisterExpires></sipStack><dialTemplate>dialplan.xml</dialTemplate><softKeyFile>softkeys.xml</softKeyFile></sipProfile>
<transportLayerProtocol>2</transportLayerProtocol><loadInformation>sip88xx.14-2-1-0001-14</loadInformation></device>"#
    )
}

struct Lab {
    _veth: l2::netns::VethPair,
    _dnsmasq: Proc,
    _dir: tempfile::TempDir,
    phone_ns: String,
    phone_if: String,
    net: u8,
}

fn lab(files: &[(&str, String)], sip_mac: mac::Mac) -> Lab {
    lab_with(files, sip_mac, false)
}

fn lab_with(files: &[(&str, String)], sip_mac: mac::Mac, reset_once: bool) -> Lab {
    let veth = l2::netns::VethPair::new("sm").unwrap();
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    for (ns, ifn) in [(&veth.ns_a, &veth.if_a), (&veth.ns_b, &veth.if_b)] {
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-K", ifn, "tx", "off"])
            .output();
    }
    sh(&[
        "ip",
        "-n",
        &veth.ns_b,
        "addr",
        "add",
        &format!("{srv}/24"),
        "dev",
        &veth.if_b,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tftp");
    std::fs::create_dir(&root).unwrap();
    for (name, body) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &veth.ns_b,
            "dnsmasq",
            "-k",
            "--conf-file=/dev/null",
        ])
        .arg("--port=0")
        .arg("--user=root")
        .arg("--no-ping")
        .arg(format!("--interface={}", veth.if_b))
        .arg("--bind-interfaces")
        .arg(format!(
            "--dhcp-range=198.18.{net}.50,198.18.{net}.150,255.255.255.0,1h"
        ))
        // Two TFTP servers: the second one does not exist (tests the full option 150 list).
        .arg(format!("--dhcp-option=150,{srv},198.18.{net}.9"))
        .arg("--enable-tftp")
        .arg(format!("--tftp-root={}", root.display()))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.path().join("leases").display()
        ))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .arg(format!(
            "--log-facility={}",
            dir.path().join("log").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dnsmasq = Proc(child);
    // CallManager thread in the server namespace (ends with the test process).
    let _cm = in_ns(&veth.ns_b, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::spawn(sip_server(srv, sip_mac, reset_once));
            sccp_server(srv, reset_once).await
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    Lab {
        phone_ns: veth.ns_a.clone(),
        phone_if: veth.if_a.clone(),
        _veth: veth,
        _dnsmasq: dnsmasq,
        _dir: dir,
        net,
    }
}

fn boot_all(lab: &Lab, specs: Vec<PhoneSpec>) -> Vec<PhoneReport> {
    let ifn = lab.phone_if.clone();
    in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut opts = BootOptions::default();
            opts.timeouts.discovery = Duration::from_millis(300);
            opts.timeouts.dhcp = Duration::from_secs(10);
            opts.timeouts.dhcp_retransmit = Duration::from_secs(1);
            opts.timeouts.tftp = Duration::from_millis(300);
            opts.timeouts.tftp_retries = 2;
            opts.timeouts.http = Duration::from_secs(1);
            opts.timeouts.register = Duration::from_secs(2);
            let env = Env::open(&ifn, &ifn, opts, None).unwrap();
            let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let tasks: Vec<_> = specs
                .into_iter()
                .map(|s| {
                    tokio::spawn(run_phone(
                        Arc::clone(&env),
                        s,
                        stop_rx.clone(),
                        None,
                        None,
                        false,
                    ))
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    })
    .join()
    .unwrap()
}

#[test]
fn phones_boot_through_dhcp_tftp_and_sccp() {
    if !can_run() {
        eprintln!("skipped: needs root, ip and dnsmasq");
        return;
    }
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    let known: mac::Mac = "02:1b:54:00:10:01".parse().unwrap();
    let unknown: mac::Mac = "02:1b:54:00:10:02".parse().unwrap();
    let broken: mac::Mac = "02:1b:54:00:10:03".parse().unwrap();
    let sip: mac::Mac = "02:1b:54:00:10:04".parse().unwrap();
    let sip_bad: mac::Mac = "02:1b:54:00:10:05".parse().unwrap();
    let lab = lab(
        &[
            (
                &format!("{}.cnf.xml", known.device_name()),
                sccp_config(srv, "SCCP45.9-4-2SR3-1S"),
            ),
            (
                &format!("{}.cnf.xml", broken.device_name()),
                "this is not XML".into(),
            ),
            (
                "XMLDefault.cnf.xml",
                xml_default(&[Ipv4Addr::new(198, 18, net, 7), srv]),
            ),
            ("English_United_States/be-sccp.jar", "jar".into()),
            (
                &format!("{}.cnf.xml", sip.device_name()),
                sip_config(srv, "s3cret"),
            ),
            (
                &format!("{}.cnf.xml", sip_bad.device_name()),
                sip_config(srv, "wrong"),
            ),
            ("dialplan.xml", "<dialTemplate></dialTemplate>".into()),
        ],
        sip,
    );
    assert_eq!(lab.net, net);
    let m7965 = Model::lookup("7965").unwrap();
    let m7940 = Model::lookup("7940").unwrap();
    let m8845 = Model::lookup("8845").unwrap();
    let started = Instant::now();
    let r = boot_all(
        &lab,
        vec![
            PhoneSpec {
                mac: known,
                model: m7965,
                protocol: Protocol::Sccp,
            },
            PhoneSpec {
                mac: unknown,
                model: m7940,
                protocol: Protocol::Sccp,
            },
            PhoneSpec {
                mac: broken,
                model: m7965,
                protocol: Protocol::Sccp,
            },
            PhoneSpec {
                mac: sip,
                model: m8845,
                protocol: Protocol::Sip,
            },
            PhoneSpec {
                mac: sip_bad,
                model: m8845,
                protocol: Protocol::Sip,
            },
        ],
    );
    eprintln!("4 phones in {:?}", started.elapsed());
    for x in &r {
        eprint!("{}", x.render_text());
    }

    // The provisioned 7965: every step, option 150 kept whole, files by TFTP, registered.
    let k = &r[0];
    assert!(k.registered, "{}", k.render_text());
    assert_eq!(k.step(Step::Discovery).unwrap().outcome, Outcome::Degraded);
    assert_eq!(k.discovery.as_ref().unwrap().via, VlanSource::None);
    let lease = k.lease.as_ref().unwrap();
    assert_eq!(lease.option150, vec![srv, Ipv4Addr::new(198, 18, net, 9)]);
    assert_eq!(lease.tftp_server, Some(srv));
    assert!(lease.ip.unwrap().octets()[..3] == [198, 18, net]);
    assert_eq!(
        k.config_file.as_deref(),
        Some(&*format!("{}.cnf.xml", known.device_name()))
    );
    let f = |name: &str| k.files.iter().find(|f| f.name == name).unwrap();
    assert_eq!(
        f(&format!("CTL{}.tlv", known.device_name())).result,
        FileResult::Missing
    );
    let cfg = f(&format!("{}.cnf.xml", known.device_name()));
    assert_eq!(
        (cfg.result, cfg.transport),
        (FileResult::Ok, Transport::Tftp)
    );
    assert!(cfg.bytes > 100);
    assert_eq!(f("English_United_States/be-sccp.jar").bytes, 3);
    assert_eq!(f("United_States/g3-tones.xml").result, FileResult::Missing);
    let reg = k.registration.as_ref().unwrap();
    assert_eq!(reg.registered_to.as_deref(), Some(&*format!("{srv}:2000")));
    assert!(reg.detail.contains("SCCP version 22"), "{}", reg.detail);
    assert!(k.total_ms.unwrap() > 0.0);

    // The unknown 7940 takes XMLDefault, finds its first CallManager dead, auto-registers on
    // the second.
    let u = &r[1];
    assert!(u.registered, "{}", u.render_text());
    assert_eq!(u.config_file.as_deref(), Some("XMLDefault.cnf.xml"));
    let ureg = u.registration.as_ref().unwrap();
    assert_eq!(ureg.attempts.len(), 2, "{:?}", ureg.attempts);
    assert!(ureg.attempts[0].result.starts_with("no connection"));
    assert!(ureg.detail.contains("SCCP version 11"), "{}", ureg.detail);

    // A configuration that is not XML is that phone's failure reason.
    let b = &r[2];
    assert!(!b.registered);
    let fail = b.failure.as_ref().unwrap();
    assert_eq!(
        (fail.step, fail.kind.as_str()),
        (Step::Files, "config_not_xml")
    );

    // The 8845 tries HTTP 6970 first, falls back to TFTP, fetches its dial template, and
    // registers its line with digest over UDP.
    let s = &r[3];
    let first = &s.files[0];
    assert_eq!(
        (first.transport, first.result),
        (Transport::Http, FileResult::Failed)
    );
    assert!(s.files.iter().any(|f| f.transport == Transport::Tftp
        && f.name == "dialplan.xml"
        && f.result == FileResult::Ok));
    assert!(s.registered, "{}", s.render_text());
    let sreg = s.registration.as_ref().unwrap();
    assert_eq!(sreg.registered_to.as_deref(), Some(&*format!("{srv}:5060")));
    assert!(
        sreg.detail.contains("4101@") && sreg.detail.contains("with digest"),
        "{}",
        sreg.detail
    );

    // A wrong password is refused: that phone's failure reason.
    let sb = &r[4];
    let sf = sb.failure.as_ref().unwrap();
    assert_eq!(
        (sf.step, sf.kind.as_str()),
        (Step::Registration, "register_rejected"),
        "{}",
        sf.reason
    );
    // Every address was removed from the phone interface.
    let out = Command::new("ip")
        .args([
            "-n",
            &lab.phone_ns,
            "-4",
            "addr",
            "show",
            "dev",
            &lab.phone_if,
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("198.18."));
}

#[test]
fn a_storm_registers_every_phone_and_holds_them() {
    if !can_run() {
        eprintln!("skipped: needs root, ip and dnsmasq");
        return;
    }
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    let lab = lab(
        &[("XMLDefault.cnf.xml", xml_default(&[srv]))],
        "02:00:00:00:00:01".parse().unwrap(),
    );
    let ifn = lab.phone_if.clone();
    let n = 40usize;
    let (summary, finals, counters_reg) = in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Configured untagged (no discovery wait), configuration file only.
            let mut opts = BootOptions {
                static_vlan: Some(4095),
                optional_files: false,
                ..Default::default()
            };
            opts.timeouts.dhcp_retransmit = Duration::from_secs(1);
            opts.timeouts.tftp = Duration::from_millis(500);
            let env = Env::open(&ifn, &ifn, opts, None).unwrap();
            let mix = sim::cli::parse_mix("7965:sccp,7940,7941:sccp").unwrap();
            let base: mac::Mac = "02:1b:54:20:00:00".parse().unwrap();
            let phones = (0..n)
                .map(|i| PhoneSpec {
                    mac: base.offset(i as u64),
                    model: mix[i % mix.len()].0,
                    protocol: mix[i % mix.len()].1,
                })
                .collect();
            let storm = sim::storm::run(
                Arc::clone(&env),
                sim::storm::StormConfig {
                    phones,
                    rate: Some(400.0),
                    concurrency: 16,
                    progress: false,
                },
            )
            .await;
            let summary = storm.summary();
            let reg = storm.counters.ok(Step::Registration);
            // Registrations are held until stop.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let finals = storm.stop().await;
            (summary, finals, reg)
        })
    })
    .join()
    .unwrap();
    eprint!("{}", summary.render_text());
    assert_eq!(summary.phones, n);
    assert_eq!(summary.registered, n, "{:?}", summary.failures);
    assert_eq!(counters_reg, n);
    for step in ["power", "discovery", "dhcp", "files", "registration"] {
        assert_eq!(summary.reached[step], n, "{step}");
        assert_eq!(summary.per_step[step].count, n);
    }
    let e2e = summary.end_to_end.unwrap();
    assert!(e2e.p50 <= e2e.p95 && e2e.p95 <= e2e.p99 && e2e.p99 <= e2e.max);
    assert!(summary.registered_per_sec > 0.0);
    assert_eq!(finals.len(), n);
    assert!(finals.iter().all(|r| r.registered));
    // Every phone got its own address.
    let mut ips: Vec<_> = finals
        .iter()
        .map(|r| r.lease.as_ref().unwrap().ip.unwrap())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n);
    let mut csv = Vec::new();
    sim::report::write_csv(&mut csv, &finals).unwrap();
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), n + 1);
}

#[test]
fn cli_entry_points_boot_and_storm() {
    if !can_run() {
        eprintln!("skipped: needs root, ip and dnsmasq");
        return;
    }
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Boot(sim::cli::BootArgs),
        Storm(sim::cli::StormArgs),
    }
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    let lab = lab(
        &[("XMLDefault.cnf.xml", xml_default(&[srv]))],
        "02:00:00:00:00:01".parse().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("storm.csv");
    let ifn = lab.phone_if.clone();
    let csv2 = csv.clone();
    let (boot_rc, storm_rc, bad_rc) = in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let common = [
            "--raw-if",
            &ifn,
            "--ip-if",
            &ifn,
            "--voice-vlan",
            "4095",
            "--dhcp-retransmit",
            "1",
            "--register-timeout",
            "2",
        ];
        let mut boot = vec![
            "x",
            "boot",
            "--model",
            "CP-7965",
            "--mac",
            "02:1b:54:30:00:01",
        ];
        boot.extend(common);
        let Cmd::Boot(b) = Cli::parse_from(boot).cmd else {
            panic!()
        };
        let boot_rc = rt.block_on(sim::cli::run_boot(b));
        let csv_s = csv2.display().to_string();
        let mut storm = vec![
            "x",
            "storm",
            "--phones",
            "6",
            "--mac-start",
            "02:1b:54:31:00:00",
            "--models",
            "7965:sccp,7941:sccp",
            "--rate",
            "100",
            "--concurrency",
            "3",
            "--no-progress",
            "--csv",
            &csv_s,
            "--config-only",
        ];
        storm.extend(common);
        let Cmd::Storm(s) = Cli::parse_from(storm).cmd else {
            panic!()
        };
        let storm_rc = rt.block_on(sim::cli::run_storm(s));
        let mut bad = vec![
            "x",
            "boot",
            "--mac",
            "02:1b:54:30:00:02",
            "--raw-if",
            "nosuchif0",
        ];
        bad.extend(["--ip-if", "nosuchif0"]);
        let Cmd::Boot(b) = Cli::parse_from(bad).cmd else {
            panic!()
        };
        let bad_rc = rt.block_on(sim::cli::run_boot(b));
        (boot_rc, storm_rc, bad_rc)
    })
    .join()
    .unwrap();
    assert_eq!(boot_rc, sim::cli::EXIT_OK);
    assert_eq!(storm_rc, sim::cli::EXIT_OK);
    assert_eq!(bad_rc, sim::cli::EXIT_SETUP);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.lines().skip(1).all(|l| l.contains(",true,")), "{text}");
}

#[test]
fn a_held_phone_obeys_a_restart_from_its_callmanager() {
    if !can_run() {
        eprintln!("skipped: needs root, ip and dnsmasq");
        return;
    }
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    let lab = lab_with(
        &[("XMLDefault.cnf.xml", xml_default(&[srv]))],
        "02:00:00:00:00:01".parse().unwrap(),
        true,
    );
    let ifn = lab.phone_if.clone();
    let report = in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = BootOptions {
                static_vlan: Some(4095),
                optional_files: false,
                ..Default::default()
            };
            let env = Env::open(&ifn, &ifn, opts, None).unwrap();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let spec = PhoneSpec {
                mac: "02:1b:54:40:00:01".parse().unwrap(),
                model: Model::lookup("7962").unwrap(),
                protocol: Protocol::Sccp,
            };
            let t = tokio::spawn(run_phone(env, spec, stop_rx, None, None, true));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop_tx.send(true).unwrap();
            t.await.unwrap()
        })
    })
    .join()
    .unwrap();
    eprint!("{}", report.render_text());
    assert!(report.registered, "{}", report.render_text());
    let later: Vec<&str> = report.later.iter().map(|l| l.what.as_str()).collect();
    assert!(
        later
            .iter()
            .any(|w| w.contains("Restart") && w.contains("re-fetching")),
        "{later:?}"
    );
    assert!(later.contains(&"re-registered"), "{later:?}");
    // The files step ran again after the restart.
    assert!(report.step(Step::Files).unwrap().start_ms > report.later[0].at_ms - 1.0);
}

#[test]
fn a_held_sip_phone_obeys_a_service_control_notify() {
    if !can_run() {
        eprintln!("skipped: needs root, ip and dnsmasq");
        return;
    }
    let net = 20 + (std::process::id() % 200) as u8;
    let srv = Ipv4Addr::new(198, 18, net, 1);
    let mac: mac::Mac = "02:1b:54:50:00:01".parse().unwrap();
    let lab = lab_with(
        &[(
            &format!("{}.cnf.xml", mac.device_name()),
            sip_config(srv, "s3cret"),
        )],
        mac,
        true,
    );
    let ifn = lab.phone_if.clone();
    let report = in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = BootOptions {
                static_vlan: Some(4095),
                optional_files: false,
                ..Default::default()
            };
            let env = Env::open(&ifn, &ifn, opts, None).unwrap();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let spec = PhoneSpec {
                mac,
                model: Model::lookup("8865").unwrap(),
                protocol: Protocol::Sip,
            };
            let t = tokio::spawn(run_phone(env, spec, stop_rx, None, None, true));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop_tx.send(true).unwrap();
            t.await.unwrap()
        })
    })
    .join()
    .unwrap();
    eprint!("{}", report.render_text());
    assert!(report.registered, "{}", report.render_text());
    let later: Vec<&str> = report.later.iter().map(|l| l.what.as_str()).collect();
    assert!(
        later
            .iter()
            .any(|w| w.contains("service-control") && w.contains("action=restart")),
        "{later:?}"
    );
    assert!(later.contains(&"re-registered"), "{later:?}");
}
