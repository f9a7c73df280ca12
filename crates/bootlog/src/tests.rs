use super::*;
use journal::{Protocol, ResetKind, Transport, VlanVia};
use std::net::Ipv4Addr;

fn mac() -> Mac {
    "001b54aabbcc".parse().unwrap()
}

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_568_523 + s)
}

fn ev(s: u64, kind: EventKind) -> Event {
    Event::server(at(s), mac(), kind)
}

fn cdp(s: u64) -> Event {
    ev(
        s,
        EventKind::CdpSeen {
            port: "ge-0/0/3".into(),
            platform: Some("Cisco IP Phone 7841".into()),
            power_requested_mw: Some(6300),
        },
    )
}

fn ack(s: u64, tftp: Vec<Ipv4Addr>) -> Event {
    ev(
        s,
        EventKind::DhcpAck {
            ip: Ipv4Addr::new(198, 18, 100, 10),
            lease_secs: 3600,
            tftp_servers: tftp,
            vendor_class: None,
        },
    )
}

fn served(s: u64, name: &str) -> Event {
    ev(
        s,
        EventKind::FileServed {
            name: name.into(),
            transport: Transport::Tftp,
            bytes: 4000,
            duration_ms: 12,
        },
    )
}

fn missing(s: u64, name: &str) -> Event {
    ev(
        s,
        EventKind::FileMissing {
            name: name.into(),
            transport: Transport::Tftp,
        },
    )
}

fn registered(s: u64) -> Event {
    ev(
        s,
        EventKind::Registered {
            protocol: Protocol::Sccp,
            node: "cm1".into(),
            from: None,
            detail: "v20".into(),
        },
    )
}

fn full_boot(start: u64) -> Vec<Event> {
    vec![
        cdp(start),
        ev(
            start,
            EventKind::VoiceVlan {
                vlan: Some(100),
                via: VlanVia::Cdp,
            },
        ),
        ev(start + 2, EventKind::DhcpDiscover { vendor_class: None }),
        ev(
            start + 2,
            EventKind::DhcpOffer {
                ip: Ipv4Addr::new(198, 18, 100, 10),
            },
        ),
        ack(start + 3, vec![Ipv4Addr::new(198, 18, 0, 1)]),
        missing(start + 4, "CTLSEP001B54AABBCC.tlv"),
        served(start + 4, "SEP001B54AABBCC.cnf.xml"),
        registered(start + 6),
    ]
}

fn ctx_at(s: u64) -> Context {
    Context {
        now: Some(at(s)),
        ..Context::default()
    }
}

#[test]
fn a_clean_boot_reads_registered() {
    let t = diagnose(&full_boot(0), &ctx_at(100));
    assert_eq!(t.outcome, Outcome::Registered);
    assert!(
        t.verdict.contains("registered with cm1 over SCCP"),
        "{}",
        t.verdict
    );
    assert!(t.cause.is_none());
    assert!(
        t.steps.iter().skip(1).all(|s| s.state == StepState::Done),
        "{:?}",
        t.steps
    );
    assert_eq!(t.entries.len(), 8);
    assert_eq!(t.entries[7].offset_ms, 6000);
    let text = render_trace(mac(), &t);
    assert!(text.contains("SEP001B54AABBCC"));
    assert!(text.contains("REGISTERED"));
    assert!(text.contains("optional"), "CTL missing is optional: {text}");
}

#[test]
fn lease_without_option_150() {
    let events = vec![
        cdp(0),
        ev(1, EventKind::DhcpDiscover { vendor_class: None }),
        ack(2, vec![]),
    ];
    let t = diagnose(&events, &ctx_at(120));
    assert_eq!(t.outcome, Outcome::Stalled);
    assert_eq!(t.stalled_at, Some(Step::Dhcp));
    assert!(t.cause.unwrap().contains("got a lease without option 150"));
}

#[test]
fn unprovisioned_without_autoreg() {
    let mut events = full_boot(0);
    events.truncate(5);
    events.push(missing(4, "SEP001B54AABBCC.cnf.xml"));
    let ctx = Context {
        provisioned: Some(false),
        auto_registration: Some(false),
        now: Some(at(300)),
    };
    let t = diagnose(&events, &ctx);
    assert_eq!(t.stalled_at, Some(Step::Files));
    let cause = t.cause.unwrap();
    assert!(
        cause.contains("asked for SEP001B54AABBCC.cnf.xml but the device is not provisioned and auto-registration is off"),
        "{cause}"
    );
}

#[test]
fn served_but_never_registered_blames_tcp_2000_only_once_quiet() {
    let mut events = full_boot(0);
    events.pop();
    let early = diagnose(&events, &ctx_at(10));
    assert_eq!(early.outcome, Outcome::InProgress);
    let late = diagnose(&events, &ctx_at(200));
    assert_eq!(late.outcome, Outcome::Stalled);
    assert!(late.cause.unwrap().contains("is TCP 2000"));
}

#[test]
fn missing_load_is_a_warning_not_a_stall() {
    let mut events = full_boot(0);
    events.insert(7, missing(5, "sip78xx.14-1-1SR2-2.loads"));
    let t = diagnose(&events, &ctx_at(100));
    assert_eq!(t.outcome, Outcome::Registered);
    assert!(t.warnings.iter().any(|w| w.contains(
        "load file sip78xx.14-1-1SR2-2.loads requested but missing: the phone will keep its firmware"
    )));
}

#[test]
fn no_offer_and_keepalive_lost() {
    let t = diagnose(
        &[ev(0, EventKind::DhcpDiscover { vendor_class: None })],
        &ctx_at(60),
    );
    assert!(t.verdict.contains("no offer"));
    let mut events = full_boot(0);
    events.push(ev(
        500,
        EventKind::KeepaliveLost {
            protocol: Protocol::Sccp,
        },
    ));
    let t = diagnose(&events, &ctx_at(600));
    assert_eq!(t.outcome, Outcome::Ended);
    assert!(t.cause.unwrap().contains("TCP 2000"));
    assert_eq!(diagnose(&[], &ctx_at(0)).outcome, Outcome::Unknown);
}

#[test]
fn store_groups_boots_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let log = BootLog::open(&path, Limits::default()).unwrap();
        log.record_all(&full_boot(0)).unwrap();
        // Registered phone keeps sending CDP: same boot.
        log.record(&cdp(60)).unwrap();
        assert_eq!(log.last_boot(mac()).unwrap().len(), 9);
        log.record(&ev(
            100,
            EventKind::ResetSent {
                protocol: Protocol::Sccp,
                reset: ResetKind::Reset,
            },
        ))
        .unwrap();
        // After the reset, the phone shows up on the switch again: a new boot.
        log.record(&cdp(130)).unwrap();
        log.record(&ev(131, EventKind::DhcpDiscover { vendor_class: None }))
            .unwrap();
    }
    let log = BootLog::open(&path, Limits::default()).unwrap();
    let boot = log.last_boot(mac()).unwrap();
    assert_eq!(boot.len(), 2, "{boot:?}");
    assert!(matches!(boot[0].kind, EventKind::CdpSeen { .. }));
    let phones = log.phones().unwrap();
    assert_eq!(phones.len(), 1);
    assert_eq!(phones[0].boot, 2);
    assert_eq!(phones[0].step, Step::Dhcp);
    assert_eq!(log.recent(mac(), 3).unwrap().len(), 3);
}

#[test]
fn rediscover_after_a_lease_opens_a_boot_and_carries_its_cdp() {
    let log = BootLog::in_memory(Limits::default()).unwrap();
    log.record_all(&full_boot(0)).unwrap();
    // Power cut: no keepalive-lost yet, CDP then DISCOVER.
    log.record(&cdp(1000)).unwrap();
    log.record(&ev(1002, EventKind::DhcpDiscover { vendor_class: None }))
        .unwrap();
    let boot = log.last_boot(mac()).unwrap();
    assert_eq!(boot.len(), 2);
    assert_eq!(boot[0].at, at(1000));
    assert_eq!(log.phones().unwrap()[0].boot_started, at(1000));
}

#[test]
fn store_is_bounded_but_keeps_the_last_boot() {
    let limits = Limits {
        events_per_phone: 10,
        max_boot_events: 50,
        max_phones: 2,
    };
    let log = BootLog::in_memory(limits).unwrap();
    for b in 0..5u64 {
        let mut boot = full_boot(b * 1000);
        boot.push(ev(
            b * 1000 + 500,
            EventKind::KeepaliveLost {
                protocol: Protocol::Sccp,
            },
        ));
        log.record_all(&boot).unwrap();
    }
    // Long current boot: 30 keep-alive-era CDP frames beyond the per-phone limit stay.
    log.record_all(&full_boot(9000)).unwrap();
    for i in 0..30 {
        log.record(&cdp(9100 + i)).unwrap();
    }
    assert_eq!(log.last_boot(mac()).unwrap().len(), 38);
    assert_eq!(log.recent(mac(), 1000).unwrap().len(), 38);
    // Other phones push the oldest-heard out.
    for n in 1..=3u64 {
        let other = mac().offset(n);
        log.record(&Event::server(
            at(20_000 + n),
            other,
            EventKind::DhcpDiscover { vendor_class: None },
        ))
        .unwrap();
    }
    let phones = log.phones().unwrap();
    assert_eq!(phones.len(), 2);
    assert!(log.last_boot(mac()).unwrap().is_empty());
    // Forgotten means forgotten, also by the writer's memory of the phone: it starts over.
    log.record(&ev(30_000, EventKind::DhcpDiscover { vendor_class: None }))
        .unwrap();
    let phones = log.phones().unwrap();
    let me = phones.iter().find(|p| p.mac == mac()).unwrap();
    assert_eq!((me.boot, me.events_in_boot), (1, 1));
}

#[test]
fn sink_writes_in_the_background() {
    let log = Arc::new(BootLog::in_memory(Limits::default()).unwrap());
    let sink = log.sink(100);
    for e in full_boot(0) {
        journal::EventSink::emit(&*sink, e);
    }
    sink.close(Duration::from_secs(5));
    assert_eq!(log.last_boot(mac()).unwrap().len(), 8);
    assert_eq!(log.dropped(), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Any sequence of events diagnoses without panicking, and every event gets a line.
    #[test]
    fn diagnosis_never_panics(picks in proptest::collection::vec(0usize..12, 0..40), now in 0u64..5000) {
        let all: Vec<Event> = {
            let mut v = full_boot(0);
            v.push(ack(1, vec![]));
            v.push(missing(2, "SEP001B54AABBCC.cnf.xml"));
            v.push(ev(3, EventKind::DhcpNak { reason: "wrong subnet".into() }));
            v.push(ev(4, EventKind::KeepaliveLost { protocol: Protocol::Sip }));
            v
        };
        let events: Vec<Event> = picks.iter().map(|&i| all[i % all.len()].clone()).collect();
        for prov in [None, Some(true), Some(false)] {
            let t = diagnose(&events, &Context { provisioned: prov, auto_registration: Some(false), now: Some(at(now)) });
            proptest::prop_assert_eq!(t.entries.len(), events.len());
            proptest::prop_assert!(!t.verdict.is_empty());
            let _ = render_trace(mac(), &t);
        }
    }
}

#[test]
fn trace_by_sep_name_or_mac() {
    let log = BootLog::in_memory(Limits::default()).unwrap();
    log.record_all(&full_boot(0)).unwrap();
    let a = log.trace("SEP001B54AABBCC", &ctx_at(100)).unwrap();
    let b = log.trace("001b.54aa.bbcc", &ctx_at(100)).unwrap();
    assert_eq!(a, b);
    assert!(a.contains("verdict: REGISTERED"), "{a}");
    assert!(matches!(
        log.trace("SEPXYZ", &ctx_at(0)),
        Err(TraceError::BadPhone(_))
    ));
    let none = log.trace("00:00:00:00:00:01", &ctx_at(0)).unwrap();
    assert!(none.contains("nothing heard from this phone yet"), "{none}");
}

/// The statements the writer caches stay prepared: SQLite used to expire the boot-events
/// query at every new binding and re-parse it at each step (a storm's largest journal cost).
#[test]
fn cached_statements_are_not_reprepared_per_phone() {
    let dir = tempfile::tempdir().unwrap();
    let log = BootLog::open(&dir.path().join("b.db"), Limits::default()).unwrap();
    for i in 0..50u64 {
        let m: Mac = format!("001b54aa{i:04x}").parse().unwrap();
        let cdp = EventKind::CdpSeen {
            port: "p".into(),
            platform: None,
            power_requested_mw: None,
        };
        let evs = vec![
            Event::server(at(i), m, cdp.clone()),
            Event::server(at(i), m, EventKind::DhcpDiscover { vendor_class: None }),
            Event::server(at(i), m, cdp),
            Event::server(at(i), m, EventKind::DhcpDiscover { vendor_class: None }),
        ];
        log.record_all(&evs).unwrap();
    }
    let conn = log.lock();
    let s = conn
        .prepare_cached(
            "SELECT id, at_ms, event FROM bootlog_events WHERE mac = ?1 AND boot = ?2 ORDER BY id",
        )
        .unwrap();
    assert!(s.get_status(rusqlite::StatementStatus::Run) >= 100);
    assert_eq!(s.get_status(rusqlite::StatementStatus::RePrepare), 0);
}

#[test]
fn a_phone_asking_for_signed_config_that_never_registers_holds_a_foreign_trust_list() {
    let mut events = full_boot(0);
    events.truncate(5);
    events.push(served(4, "ITLFile.tlv"));
    events.push(served(5, "SEP001B54AABBCC.cnf.xml.sgn"));
    // Still within the stall window: waiting, no verdict yet.
    let t = diagnose(&events, &ctx_at(10));
    assert_eq!(t.outcome, Outcome::InProgress);
    let t = diagnose(&events, &ctx_at(300));
    assert_eq!(t.outcome, Outcome::Stalled);
    assert_eq!(t.stalled_at, Some(Step::Files));
    let cause = t.cause.unwrap();
    assert!(
        cause.contains("this phone holds a trust list from another cluster (it asks for .sgn files and rejected the configuration): erase its trust list on the phone, or import that cluster's signing certificate"),
        "{cause}"
    );
    // The same phone on the unsigned file: the ordinary "never registered" reading.
    let mut plain = full_boot(0);
    plain.truncate(6);
    let t = diagnose(&plain, &ctx_at(300));
    assert!(!t.cause.unwrap_or_default().contains("trust list"));
}
