//! Golden tests: the rendered files are compared with the reference examples
//! (`shared/reference/examples/`, copied into `tests/reference/`) byte for byte where the
//! inputs match, pinned with insta snapshots, and parsed with quick-xml.
#![allow(clippy::unwrap_used)]

use cnf::catalog::lookup;
use cnf::*;
use quick_xml::events::Event;
use quick_xml::Reader;

fn node(name: &str, desc: &str, host: &str) -> CallManager {
    CallManager {
        name: name.into(),
        description: desc.into(),
        host: host.into(),
        sccp_port: 2000,
        sip_port: 5060,
        sccp_tls_port: 2443,
        sip_tls_port: 5061,
    }
}

fn hq_pool() -> PoolView {
    PoolView {
        name: "DP-HQ".into(),
        date_time: DateTime {
            name: "CMLocal-Europe".into(),
            date_template: "D.M.Y".into(),
            time_zone: "W. Europe Standard/Daylight Time".into(),
            ntp_servers: vec!["192.0.2.10".into()],
        },
        cm_group: "CMG-HQ".into(),
        tftp_default: true,
        call_managers: vec![
            node("pb-node-a", "phoneboot node A (primary)", "192.0.2.21"),
            node("pb-node-b", "phoneboot node B (secondary)", "192.0.2.22"),
        ],
        connection_monitor_duration: 120,
        sip_register_interval: 120,
    }
}

fn globals() -> Globals {
    Globals {
        authentication_url: "http://192.0.2.21:6972/authenticate".into(),
        directory_url: "http://192.0.2.21:6972/directory".into(),
        services_url: "http://192.0.2.21:6972/services".into(),
        ssh_user: "phoneadmin".into(),
        ssh_password: "change-me".into(),
        dial_template: "dialplan-hq.xml".into(),
        ..Globals::default()
    }
}

/// Drops the leading comment and the versionStamp line, which differ by design.
fn normalise(s: &str) -> String {
    let mut out = String::new();
    let mut in_comment = false;
    for line in s.lines() {
        if line.starts_with("<!--") {
            in_comment = true;
        }
        if in_comment {
            if line.ends_with("-->") {
                in_comment = false;
            }
            continue;
        }
        if line.trim_start().starts_with("<versionStamp>") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Parses with quick-xml (fails on malformed XML) and returns the element paths in order.
fn element_paths(bytes: &[u8]) -> Vec<String> {
    let mut r = Reader::from_reader(bytes);
    let mut stack: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                stack.push(e.name().as_ref().to_string());
                paths.push(stack.join("/"));
            }
            Ok(Event::Empty(e)) => {
                let n = e.name().as_ref().to_string();
                paths.push(format!("{}/{}", stack.join("/"), n));
            }
            Ok(Event::End(e)) => {
                let n = e.name().as_ref().to_string();
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(n.as_str()),
                    "mismatched end tag"
                );
            }
            Ok(Event::GeneralRef(r)) => {
                let name: &str = &r;
                assert!(
                    ["amp", "lt", "gt", "quot", "apos"].contains(&name)
                        || r.resolve_char_ref().ok().flatten().is_some(),
                    "unknown entity &{name};"
                );
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("malformed XML at {}: {e}", r.buffer_position()),
        }
        buf.clear();
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    paths
}

fn sccp_view<'a>(pool: &'a PoolView, g: &'a Globals) -> DeviceView<'a> {
    DeviceView {
        name: "SEP00270D1A2B3C",
        model: lookup("CP-7965G").unwrap(),
        protocol: Protocol::Sccp,
        load: "SCCP45.9-4-2SR3-1S",
        security_mode: 1,
        user_locale: "English_United_States",
        network_locale: "United_States",
        softkey_template: "Standard User",
        pool,
        globals: g,
        lines: vec![],
        speed_dials: vec![],
    }
}

#[test]
fn sccp_file_matches_the_reference_example() {
    let pool = hq_pool();
    let g = globals();
    let got = render_sep(&sccp_view(&pool, &g));
    let text = String::from_utf8(got.bytes.clone()).unwrap();
    let reference = include_str!("reference/SEP-sccp-example.cnf.xml");
    assert_eq!(normalise(&text), normalise(reference));
    assert_eq!(
        element_paths(&got.bytes),
        element_paths(reference.as_bytes())
    );
    assert!(text.contains(&format!("<versionStamp>{}</versionStamp>", got.stamp)));
    insta::assert_snapshot!("sep_sccp_7965", text);
}

#[test]
fn sip_file_matches_the_reference_example() {
    let pool = hq_pool();
    let mut g = globals();
    g.directory_url = "http://192.0.2.21:6972/directory".into();
    let lines = vec![LineView {
        dn: "4101",
        label: "4101 Reception",
        display: "Reception",
        auth_user: "4101",
        auth_password: "change-me-too",
        voicemail: "8000",
        shared: false,
    }];
    let view = DeviceView {
        name: "SEP00270D4E5F60",
        model: lookup("Cisco 8851").unwrap(),
        protocol: Protocol::Sip,
        load: "sip88xx.14-2-1-0001-14",
        security_mode: 1,
        user_locale: "English_United_States",
        network_locale: "United_States",
        softkey_template: "Standard User",
        pool: &pool,
        globals: &g,
        lines,
        speed_dials: vec![SpeedDialView {
            number: "4190",
            label: "Front door",
        }],
    };
    let got = render_sep(&view);
    let text = String::from_utf8(got.bytes.clone()).unwrap();
    // The reference also shows a BLF key (button 2) and a service-URI key (button 4), which
    // phoneboot does not model yet; drop them and renumber the speed dial.
    let reference = include_str!("reference/SEP-sip-example.cnf.xml");
    let mut expected = String::new();
    let mut skip = false;
    for line in normalise(reference).lines() {
        if line.contains("<line button=\"2\">") || line.contains("<line button=\"4\">") {
            skip = true;
        }
        if !skip {
            expected.push_str(&line.replace("<line button=\"3\">", "<line button=\"2\">"));
            expected.push('\n');
        }
        if skip && line.trim() == "</line>" {
            skip = false;
        }
    }
    // Two deliberate differences from the CUCM sample (issue 24 item 3): the registration
    // interval is the pool's (CUCM's station keepalive, 120 s, is what CUCM grants anyway),
    // and call-log BLF is off because presence subscriptions are not served (489).
    let expected = expected
        .replace("softkeys-standard.xml", "softkeys-standard-user.xml")
        .replace(
            "<timerRegisterExpires>3600</timerRegisterExpires>",
            "<timerRegisterExpires>120</timerRegisterExpires>",
        )
        .replace(
            "<callLogBlfEnabled>1</callLogBlfEnabled>",
            "<callLogBlfEnabled>0</callLogBlfEnabled>",
        );
    assert_eq!(normalise(&text), expected);
    element_paths(&got.bytes);
    insta::assert_snapshot!("sep_sip_8851", text);
}

#[test]
fn sip_on_a_java_phone_uses_the_79xx_layout() {
    let pool = hq_pool();
    let g = globals();
    let lines = vec![
        LineView {
            dn: "2001",
            label: "",
            display: "Ann & Bob <Sales>",
            auth_user: "",
            auth_password: "p\"w'd",
            voicemail: "",
            shared: true,
        },
        LineView {
            dn: "2002",
            label: "Second",
            display: "",
            auth_user: "u2002",
            auth_password: "x",
            voicemail: "",
            shared: false,
        },
    ];
    let mut view = sccp_view(&pool, &g);
    view.protocol = Protocol::Sip;
    view.load = "SIP45.9-4-2SR3-1S";
    view.lines = lines;
    let got = render_sep(&view);
    let paths = element_paths(&got.bytes);
    assert!(!paths.iter().any(|p| p.ends_with("ipAddressMode")));
    assert!(!paths.iter().any(|p| p.ends_with("inactiveLoadInformation")));
    let text = String::from_utf8(got.bytes).unwrap();
    assert!(text.contains("<displayName>Ann &amp; Bob &lt;Sales&gt;</displayName>"));
    assert!(text.contains("<phoneLabel>Ann&amp;Bob&lt;Sale</phoneLabel>"));
    assert!(
        text.contains("<authName>2001</authName>"),
        "auth user defaults to the DN"
    );
    assert!(text.contains("<MissedCallLoggingOption>11</MissedCallLoggingOption>"));
    insta::assert_snapshot!("sep_sip_7965", text);
}

#[test]
fn xml_default_matches_the_reference_example() {
    let pool = hq_pool();
    let g = globals();
    let load = |m: &str, l: &'static str| (lookup(m).unwrap(), l);
    let v = DefaultView {
        call_managers: &pool.call_managers,
        loads: vec![
            load("7960", "P0030801SR02"),
            load("7940", "P0030801SR02"),
            load("7941", "SCCP41.9-4-2SR3-1S"),
            load("7961", "SCCP41.9-4-2SR3-1S"),
            load("7942", "SCCP42.9-4-2SR3-1S"),
            load("7965", "SCCP45.9-4-2SR3-1S"),
            load("7975", "SCCP75.9-4-2SR3-1S"),
            load("7821", "sip78xx.14-2-1-0001-14"),
            load("7841", "sip78xx.14-2-1-0001-14"),
            load("8841", "sip88xx.14-2-1-0001-14"),
            load("8851", "sip88xx.14-2-1-0001-14"),
            load("8861", "sip88xx.14-2-1-0001-14"),
        ],
        globals: &g,
    };
    let got = render_xml_default(&v);
    let text = String::from_utf8(got.bytes.clone()).unwrap();
    let reference = include_str!("reference/XMLDefault-example.cnf.xml");
    assert_eq!(normalise(&text).trim_end(), normalise(reference).trim_end());
    element_paths(&got.bytes);
    insta::assert_snapshot!("xml_default", text);
}

#[test]
fn companion_files_are_well_formed_and_stable() {
    let rules = vec![
        DialRule {
            pattern: "911".into(),
            timeout: 0,
            rewrite: String::new(),
        },
        DialRule {
            pattern: "9.1..........".into(),
            timeout: 0,
            rewrite: String::new(),
        },
        DialRule {
            pattern: "".into(),
            timeout: 0,
            rewrite: "4000".into(),
        },
        DialRule {
            pattern: "*".into(),
            timeout: 5,
            rewrite: String::new(),
        },
    ];
    let dial = render_dial_template(&rules);
    element_paths(&dial.bytes);
    assert_eq!(dial, render_dial_template(&rules), "same input, same bytes");
    insta::assert_snapshot!("dialplan", String::from_utf8(dial.bytes).unwrap());

    let sk = render_softkeys("Standard User");
    let paths = element_paths(&sk.bytes);
    assert!(paths.contains(&"softKeyCfg/softKeySets/softKeySet/softKey".to_string()));
    insta::assert_snapshot!(
        "softkeys_standard_user",
        String::from_utf8(sk.bytes).unwrap()
    );
    assert_ne!(render_softkeys("Standard Feature").stamp, sk.stamp);

    let rings = render_ring_list(&[
        Ring {
            display_name: "Chirp 1".into(),
            file_name: "Chirp1.raw".into(),
        },
        Ring {
            display_name: "Analog <1>".into(),
            file_name: "Analog1.raw".into(),
        },
    ]);
    element_paths(&rings.bytes);
    insta::assert_snapshot!("ringlist", String::from_utf8(rings.bytes).unwrap());
}

#[test]
fn stamp_changes_with_content_only() {
    let pool = hq_pool();
    let g = globals();
    let a = render_sep(&sccp_view(&pool, &g));
    let b = render_sep(&sccp_view(&pool, &g));
    assert_eq!(a, b);
    let mut pool2 = hq_pool();
    pool2.call_managers.swap(0, 1);
    let c = render_sep(&sccp_view(&pool2, &g));
    assert_ne!(a.stamp, c.stamp);
}

proptest::proptest! {
    /// Any string the database may hold yields a well-formed document.
    #[test]
    fn arbitrary_strings_stay_well_formed(display in ".*", label in ".*", host in ".*", url in ".*") {
        let mut pool = hq_pool();
        pool.call_managers[0].host = host;
        let mut g = globals();
        g.services_url = url;
        let line = LineView { dn: "1000", label: &label, display: &display, auth_user: "", auth_password: &label, voicemail: "", shared: false };
        let mut view = sccp_view(&pool, &g);
        view.protocol = Protocol::Sip;
        view.lines = vec![line];
        let r = render_sep(&view);
        element_paths(&r.bytes);
        let v = DefaultView { call_managers: &pool.call_managers, loads: vec![], globals: &g };
        element_paths(&render_xml_default(&v).bytes);
    }
}
