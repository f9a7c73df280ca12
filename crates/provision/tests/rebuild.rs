//! The provisioner rebuilds exactly what a change touches, publishes atomically, and
//! answers the lookups the other services need.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use provision::*;
use store::*;

/// The firmware library holds these loads complete (what `phoneboot firmware import`
/// records), so files name them: every catalogue default and the ones the tests set.
fn record_loads(s: &dyn Store) {
    let mut names: Vec<String> = cnf::catalog::MODELS
        .iter()
        .flat_map(|m| [m.sccp_load, m.sip_load])
        .flatten()
        .map(str::to_string)
        .collect();
    names.extend(["SIP45.9-4-2SR4-3".into(), "SCCP45.9-4-2SR4-3S".into()]);
    names.sort();
    names.dedup();
    for name in names {
        s.put_firmware_load(&FirmwareLoad {
            manifest_file: format!("{name}.loads"),
            name,
            protocol: String::new(),
            models: vec![],
            complete: true,
            images: vec![],
            package: "test".into(),
            signer: String::new(),
            header: "{}".into(),
            imported_at: 0,
        })
        .unwrap();
    }
}

fn setup() -> (tempfile::TempDir, Provisioner) {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("pb.db")).unwrap());
    record_loads(s.as_ref());
    s.put_node(&CmNode::new("pb-a", "192.0.2.21")).unwrap();
    s.put_node(&CmNode::new("pb-b", "192.0.2.22")).unwrap();
    s.put_group(&CmGroup {
        name: "CMG-HQ".into(),
        tftp_default: true,
        members: vec!["pb-a".into(), "pb-b".into()],
    })
    .unwrap();
    s.put_group(&CmGroup {
        name: "CMG-BR".into(),
        tftp_default: true,
        members: vec!["pb-b".into()],
    })
    .unwrap();
    for (name, group) in [("DP-HQ", "CMG-HQ"), ("DP-BR", "CMG-BR")] {
        s.put_pool(&DevicePool {
            name: name.into(),
            cm_group: group.into(),
            date_time_group: DEFAULT_DATETIME.into(),
            user_locale: "English_United_States".into(),
            network_locale: "United_States".into(),
            connection_monitor_duration: 120,
            sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
        })
        .unwrap();
    }
    for dn in ["4101", "4102", "4103", "4199"] {
        s.add_line(&Line {
            dn: dn.into(),
            label: format!("L{dn}"),
            display_name: format!("User {dn}"),
            ..Default::default()
        })
        .unwrap();
    }
    let add = |mac: &str, model: &str, proto: Protocol, pool: &str, lines: &[&str]| {
        let mut d = NewDevice::new(mac, model, proto);
        d.device_pool = pool.into();
        d.lines = lines
            .iter()
            .map(|dn| LineAppearance {
                dn: dn.to_string(),
                ..Default::default()
            })
            .collect();
        s.add_device(&d).unwrap();
    };
    add(
        "001B54000001",
        "Cisco 7965",
        Protocol::Sccp,
        "DP-HQ",
        &["4101", "4199"],
    );
    add(
        "001B54000002",
        "Cisco 8851",
        Protocol::Sip,
        "DP-HQ",
        &["4102", "4199"],
    );
    add(
        "001B54000003",
        "Cisco 7965",
        Protocol::Sip,
        "DP-BR",
        &["4103"],
    );
    let p = Provisioner::new(s).unwrap();
    (dir, p)
}

fn versions(p: &Provisioner) -> HashMap<String, u64> {
    p.list()
        .iter()
        .map(|f| (f.name.clone(), f.version))
        .collect()
}

fn changed(before: &HashMap<String, u64>, p: &Provisioner) -> Vec<String> {
    let after = versions(p);
    let mut v: Vec<String> = after
        .iter()
        .filter(|(k, ver)| before.get(*k) != Some(ver))
        .map(|(k, _)| k.clone())
        .collect();
    v.sort();
    v
}

fn well_formed(bytes: &[u8]) {
    let mut r = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut depth = 0i32;
    loop {
        match r.read_event_into(&mut buf).unwrap() {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    assert_eq!(depth, 0);
}

#[test]
fn every_file_is_built_and_found_case_insensitively() {
    let (_d, p) = setup();
    let names: Vec<String> = p.list().iter().map(|f| f.name.clone()).collect();
    for n in [
        "SEP001B54000001.cnf.xml",
        "SEP001B54000002.cnf.xml",
        "SEP001B54000003.cnf.xml",
        "XMLDefault.cnf.xml",
        "dialplan.xml",
        "softkeys-standard-user.xml",
        "RingList.xml",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    for f in p.list() {
        well_formed(&f.bytes());
    }
    let f = p.get("sep001b54000002.CNF.XML").unwrap();
    let text = String::from_utf8(f.bytes().to_vec()).unwrap();
    assert!(text.contains("<proxy>USECALLMANAGER</proxy>"));
    assert!(
        text.contains("<sharedLine>true</sharedLine>"),
        "4199 is on two phones"
    );
    assert!(text.contains("<processNodeName>192.0.2.21</processNodeName>"));
    assert!(text.contains(&format!("<versionStamp>{}</versionStamp>", f.stamp)));
    assert!(p.get("SEP001B54000009.cnf.xml").is_none());

    let info = p.device("00:1b:54:00:00:02").unwrap();
    assert_eq!(info.protocol, Protocol::Sip);
    assert_eq!(info.lines[1].dn, "4199");
    assert_eq!(
        info.lines[0].auth_user, "4102",
        "auth user defaults to the DN"
    );
    assert_eq!(info.call_managers().len(), 2);
    assert_eq!(info.config_stamp, f.stamp);
    assert!(p.device_by_mac("001B54000003".parse().unwrap()).is_some());
}

#[test]
fn a_device_edit_rebuilds_that_device_only() {
    let (_d, p) = setup();
    let mut rx = p.subscribe();
    let before = versions(&p);
    let old = p.get("SEP001B54000003.cnf.xml").unwrap();
    p.edit_device(
        "SEP001B54000003",
        &DevicePatch {
            load_override: Some("SIP45.9-4-2SR4-3".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(changed(&before, &p), vec!["SEP001B54000003.cnf.xml"]);
    let new = p.get("SEP001B54000003.cnf.xml").unwrap();
    assert!(new.version > old.version);
    assert_ne!(new.stamp, old.stamp);
    assert!(String::from_utf8_lossy(&new.bytes())
        .contains("<loadInformation>SIP45.9-4-2SR4-3</loadInformation>"));
    let ch = rx.try_recv().unwrap();
    assert_eq!(ch.rebuilt, vec!["SEP001B54000003"]);
    assert_eq!(ch.content_changed, vec!["SEP001B54000003"]);
    // The old Arc a reader held is untouched: never a half-built file.
    assert!(String::from_utf8_lossy(&old.bytes()).contains("SIP45.9-4-2SR3-1S"));
}

#[test]
fn a_node_change_rebuilds_every_phone_of_the_pools_using_it() {
    let (_d, p) = setup();
    let before = versions(&p);
    let mut n = CmNode::new("pb-a", "192.0.2.31");
    n.description = "moved".into();
    p.put_node(&n).unwrap();
    // pb-a is only in CMG-HQ (DP-HQ: phones 1 and 2) and XMLDefault uses the Default pool.
    assert_eq!(
        changed(&before, &p),
        vec!["SEP001B54000001.cnf.xml", "SEP001B54000002.cnf.xml"]
    );
    let before = versions(&p);
    p.put_node(&CmNode::new("pb-b", "192.0.2.32")).unwrap();
    assert_eq!(
        changed(&before, &p),
        vec![
            "SEP001B54000001.cnf.xml",
            "SEP001B54000002.cnf.xml",
            "SEP001B54000003.cnf.xml"
        ]
    );
    // A locale change on DP-BR rebuilds its phone only.
    let before = versions(&p);
    let mut br = p
        .store()
        .pools()
        .unwrap()
        .into_iter()
        .find(|x| x.name == "DP-BR")
        .unwrap();
    br.user_locale = "German_Germany".into();
    br.network_locale = "Germany".into();
    p.put_pool(&br).unwrap();
    assert_eq!(changed(&before, &p), vec!["SEP001B54000003.cnf.xml"]);
    assert!(
        String::from_utf8_lossy(&p.get("SEP001B54000003.cnf.xml").unwrap().bytes())
            .contains("<langCode>de_DE</langCode>")
    );
    // Moving a phone to another pool changes its CallManager list.
    p.edit_device(
        "SEP001B54000003",
        &DevicePatch {
            device_pool: Some("DP-HQ".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        p.device("SEP001B54000003").unwrap().call_managers().len(),
        2
    );
    // Putting Default's group on pb-a changes XMLDefault.
    let before = versions(&p);
    p.put_group(&CmGroup {
        name: DEFAULT_GROUP.into(),
        tftp_default: true,
        members: vec!["pb-a".into()],
    })
    .unwrap();
    assert_eq!(changed(&before, &p), vec!["XMLDefault.cnf.xml"]);
    assert!(
        String::from_utf8_lossy(&p.get("xmldefault.cnf.xml").unwrap().bytes())
            .contains("192.0.2.31")
    );
}

#[test]
fn a_line_edit_rebuilds_every_phone_showing_it() {
    let (_d, p) = setup();
    let before = versions(&p);
    p.edit_line(
        "4199",
        &LinePatch {
            display_name: Some("Hunt & Co".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        changed(&before, &p),
        vec!["SEP001B54000001.cnf.xml", "SEP001B54000002.cnf.xml"]
    );
    assert!(
        String::from_utf8_lossy(&p.get("SEP001B54000002.cnf.xml").unwrap().bytes())
            .contains("<displayName>Hunt &amp; Co</displayName>")
    );
    assert_eq!(
        p.device("SEP001B54000001").unwrap().lines[1].display,
        "Hunt & Co"
    );
}

#[test]
fn load_url_dialplan_and_removal_changes() {
    let (_d, p) = setup();
    let before = versions(&p);
    p.set_model_load("Cisco 7965", Protocol::Sip, "SIP45.9-4-2SR4-3")
        .unwrap();
    assert_eq!(
        changed(&before, &p),
        vec!["SEP001B54000003.cnf.xml"],
        "only 7965 on SIP; XMLDefault lists SCCP loads"
    );
    let before = versions(&p);
    p.set_model_load("Cisco 7965", Protocol::Sccp, "SCCP45.9-4-2SR4-3S")
        .unwrap();
    assert_eq!(
        changed(&before, &p),
        vec!["SEP001B54000001.cnf.xml", "XMLDefault.cnf.xml"]
    );

    let before = versions(&p);
    let s = Settings {
        services_url: "http://192.0.2.21:6972/services".into(),
        ..Settings::default()
    };
    p.put_settings(&s).unwrap();
    let c = changed(&before, &p);
    assert_eq!(c.len(), 4, "three phones and XMLDefault: {c:?}");

    let before = versions(&p);
    p.set_dial_rules(&[DialRule {
        pattern: "9.*".into(),
        timeout: 3,
        rewrite: String::new(),
    }])
    .unwrap();
    assert_eq!(changed(&before, &p), vec!["dialplan.xml"]);

    p.remove_device("SEP001B54000003").unwrap();
    assert!(p.get("SEP001B54000003.cnf.xml").is_none());
    assert!(p.device("SEP001B54000003").is_none());
    p.remove_device("SEP001B54000002").unwrap();
    assert!(
        String::from_utf8_lossy(&p.get("SEP001B54000001.cnf.xml").unwrap().bytes())
            .contains("<deviceProtocol>SCCP"),
    );
    assert!(
        !p.device("SEP001B54000001").unwrap().lines[1].shared,
        "4199 no longer shared"
    );
}

#[test]
fn auto_registration_and_import_build_files() {
    let (_d, p) = setup();
    let s = Settings {
        autoreg_enabled: true,
        autoreg_dn_start: "5000".into(),
        autoreg_dn_end: "5999".into(),
        ..Settings::default()
    };
    p.put_settings(&s).unwrap();
    let d = p
        .auto_register("SEP001B54000099", "CP-7942G", None)
        .unwrap();
    assert_eq!(d.lines[0].dn, "5000");
    assert!(p.get("SEP001B54000099.cnf.xml").is_some());

    let csv = "MAC ADDRESS,DEVICE TYPE,DEVICE POOL,DIRECTORY NUMBER 1\n001B54000100,Cisco 7965,DP-BR,4199\n001B54000101,Cisco 7942,DP-HQ,6001\n";
    let before = versions(&p);
    p.import(&bat::parse(csv.as_bytes()).unwrap().rows).unwrap();
    // New phones, plus the two phones already showing 4199 (now shared three ways).
    assert_eq!(
        changed(&before, &p),
        vec![
            "SEP001B54000001.cnf.xml",
            "SEP001B54000002.cnf.xml",
            "SEP001B54000100.cnf.xml",
            "SEP001B54000101.cnf.xml"
        ]
    );
    let bad = "MAC ADDRESS,DEVICE TYPE,DEVICE POOL\n001B54000102,Cisco 7965,DP-BR\n001B54000103,Cisco 7965,DP-Nowhere\n";
    let before = versions(&p);
    assert!(p.import(&bat::parse(bad.as_bytes()).unwrap().rows).is_err());
    assert!(changed(&before, &p).is_empty());
    assert!(p.get("SEP001B54000102.cnf.xml").is_none());
}

#[test]
fn readers_never_see_a_partial_file_while_editing() {
    let (_d, p) = setup();
    let p = Arc::new(p);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let p = p.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u32;
            let mut last = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && reads < 200_000 {
                let f = p.get("SEP001B54000002.cnf.xml").unwrap();
                assert!(f.version >= last, "versions only go up");
                last = f.version;
                assert!(f.bytes().ends_with(b"</device>\n"));
                if reads.is_multiple_of(64) {
                    well_formed(&f.bytes());
                }
                reads += 1;
            }
            reads
        })
    };
    for i in 0..40 {
        p.edit_line(
            "4102",
            &LinePatch {
                display_name: Some(format!("Name {i}")),
                ..Default::default()
            },
        )
        .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert!(
        String::from_utf8_lossy(&p.get("SEP001B54000002.cnf.xml").unwrap().bytes())
            .contains("Name 39")
    );
}

#[test]
fn reload_picks_up_changes_made_by_another_process() {
    let (dir, p) = setup();
    let other = SqliteStore::open(dir.path().join("pb.db")).unwrap();
    other
        .edit_line(
            "4103",
            &LinePatch {
                display_name: Some("From CLI".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let before = versions(&p);
    let ch = p
        .reload_if_changed()
        .unwrap()
        .expect("another connection committed");
    assert_eq!(ch.content_changed, vec!["SEP001B54000003"]);
    assert_eq!(
        changed(&before, &p),
        vec!["SEP001B54000003.cnf.xml"],
        "unchanged files keep their version"
    );
    assert!(
        p.reload_if_changed().unwrap().is_none(),
        "nothing new since"
    );
    p.edit_line(
        "4101",
        &LinePatch {
            label: Some("own".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        p.reload_if_changed().unwrap().is_none(),
        "own writes are already applied"
    );
}

#[test]
fn writes_to_other_tables_of_the_database_do_not_reload() {
    // DHCP leases and the boot journal share the database file; their writes are not
    // configuration changes and must not rebuild every phone's files.
    let (dir, p) = setup();
    let conn = rusqlite::Connection::open(dir.path().join("pb.db")).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t_leases (ip TEXT); INSERT INTO t_leases VALUES ('198.18.100.10');")
        .unwrap();
    assert!(
        p.reload_if_changed().unwrap().is_none(),
        "a lease write is not a configuration change"
    );
}

#[test]
fn device_files_are_held_compressed_and_read_back_exactly() {
    let (dir, p) = setup();
    // Enough phones for the parallel render path, over both pools, two models, both
    // protocols, each added alone (one file rendered per change, dictionaries made on the way).
    for i in 0..700u32 {
        let model = if i % 2 == 0 {
            "Cisco 7965"
        } else {
            "Cisco 8851"
        };
        let proto = if i % 2 == 1 || i % 3 == 0 {
            Protocol::Sip
        } else {
            Protocol::Sccp
        };
        let mut d = NewDevice::new(&format!("001B55{i:06X}"), model, proto);
        d.device_pool = if i % 5 == 0 { "DP-BR" } else { "DP-HQ" }.into();
        d.description = format!("Phone {i}");
        p.add_device(&d).unwrap();
    }
    // A second provisioner builds everything at once (parallel, other dictionaries): every
    // file must read back byte for byte the same.
    let q = Provisioner::open(dir.path().join("pb.db")).unwrap();
    let files = p.list();
    assert_eq!(files.len(), q.file_count());
    let (mut plain, mut stored) = (0usize, 0usize);
    for f in &files {
        let g = q.get(&f.name).unwrap();
        assert_eq!(f.bytes(), g.bytes(), "{}", f.name);
        assert_eq!(f.stamp, g.stamp);
        assert_eq!(f.len(), f.bytes().len());
        if f.kind == FileKind::Device {
            let text = String::from_utf8(f.bytes().to_vec()).unwrap();
            assert!(text.contains(&f.stamp), "{}", f.name);
            assert!(text.ends_with("</device>\n"));
            plain += f.len();
            stored += f.stored_len();
        }
    }
    eprintln!("device files: {plain} bytes held in {stored}");
    assert!(
        stored * 5 < plain,
        "device files held compressed: {stored} of {plain} bytes"
    );
    // A pool edit reaches every phone of the pool, through the same storage.
    p.put_pool(&DevicePool {
        name: "DP-BR".into(),
        cm_group: "CMG-BR".into(),
        date_time_group: DEFAULT_DATETIME.into(),
        user_locale: "English_United_States".into(),
        network_locale: "United_States".into(),
        connection_monitor_duration: 77,
        sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
    })
    .unwrap();
    for i in (0..700u32).step_by(5) {
        let f = p.get(&format!("SEP001B55{i:06X}.cnf.xml")).unwrap();
        let text = String::from_utf8(f.bytes().to_vec()).unwrap();
        assert!(text.contains("<connectionMonitorDuration>77<"), "{i}");
    }
}
