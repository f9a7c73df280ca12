//! Phones boot over real sockets between two network namespaces joined by a veth pair:
//! dnsmasq gives leases with a two-address option 150 and serves the files over TFTP; a small
//! SCCP CallManager built on the `sccp` crate's server session accepts registrations (and
//! auto-registers unknown phones). Needs root and dnsmasq; skipped (with a message) otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal::{Protocol, Step, Transport};
use sim::model::Model;
use sim::phone::{run_phone, BootOptions, Env, PhoneSpec};
use sim::report::{FileResult, Outcome, PhoneReport, VlanSource};

mod common;
use common::*;

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
    if let Some(why) = missing() {
        return test_support::skip(&why);
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
    if let Some(why) = missing() {
        return test_support::skip(&why);
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
            // The DHCP range (.50-.150) as AnyIP prefixes: the phones' sockets bind to
            // leased addresses that were never added to the interface.
            opts.anyip = vec![
                (Ipv4Addr::new(198, 18, net, 32), 27),
                (Ipv4Addr::new(198, 18, net, 64), 26),
                (Ipv4Addr::new(198, 18, net, 128), 27),
            ];
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
    if let Some(why) = missing() {
        return test_support::skip(&why);
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
    if let Some(why) = missing() {
        return test_support::skip(&why);
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
    if let Some(why) = missing() {
        return test_support::skip(&why);
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
