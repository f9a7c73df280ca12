//! The store against its contract, run against BOTH backends: every test below is a plain
//! function taking a [`Fixture`], instantiated once for SQLite and once for a real, private
//! PostgreSQL (started with initdb/pg_ctl in a temp dir). A machine without PostgreSQL's
//! server programs fails the PostgreSQL half loudly; it never skips it.
//! Covers migrations, validation errors that name the field, all-or-nothing CSV import,
//! BAT round trip, auto-registration, no lost updates across two connections.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use store::pgserver::{PgOptions, PgServer};
use store::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database server (a directory for SQLite, a private PostgreSQL otherwise).
struct Fixture {
    dir: tempfile::TempDir,
    pg: Option<PgServer>,
}

/// A store of either backend.
enum Db {
    Lite(SqliteStore),
    Pg(Box<PgStore>),
}

impl std::ops::Deref for Db {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        match self {
            Db::Lite(s) => s,
            Db::Pg(s) => &**s,
        }
    }
}

impl Db {
    fn schema_version(&self) -> i64 {
        match self {
            Db::Lite(s) => s.schema_version().unwrap(),
            Db::Pg(s) => s.schema_version().unwrap(),
        }
    }

    fn into_arc(self) -> Arc<dyn Store> {
        match self {
            Db::Lite(s) => Arc::new(s),
            Db::Pg(s) => Arc::new(*s),
        }
    }
}

impl Fixture {
    fn new(kind: Kind) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pg = (kind == Kind::Postgres).then(|| {
            PgServer::start_temp(&PgOptions::default())
                .unwrap_or_else(|e| panic!("this test needs a real PostgreSQL: {e}"))
        });
        Fixture { dir, pg }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// Opens (creating on first use) the database `name`; each call is a new connection.
    fn open_named(&self, name: &str) -> Db {
        match &self.pg {
            None => Db::Lite(SqliteStore::open(self.path(name)).unwrap()),
            Some(pg) => {
                let exists = pg
                    .psql(
                        "postgres",
                        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                    )
                    .unwrap();
                if exists.trim().is_empty() {
                    pg.create_db(name).unwrap();
                }
                Db::Pg(Box::new(PgStore::open(&pg.socket_url(name)).unwrap()))
            }
        }
    }

    fn open(&self) -> Db {
        self.open_named("pb")
    }
}

/// Instantiates each listed `fn(Fixture)` once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Fixture::new(super::Kind::Sqlite)); } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Fixture::new(super::Kind::Postgres)); } )*
        }
    };
}

both_backends!(
    migrations_run_once_and_seed_defaults,
    device_crud_canonicalises_names_and_models,
    bad_input_errors_name_the_field_and_expectation,
    bat_import_accepts_cucm_spellings_and_round_trips,
    a_bad_row_names_row_and_column_and_leaves_the_database_untouched,
    auto_registration_hands_out_the_next_free_dn,
    concurrent_edits_from_two_connections_lose_nothing,
    pools_groups_nodes_and_loads,
    dhcp_reservations_are_unique_per_address_and_survive_reopening,
    check_import_changes_nothing,
    change_token_moves_only_on_configuration_writes,
    blobs_are_kept_replaced_removed_and_first_writer_wins,
    phone_field_limits_are_the_firmware_s_and_errors_name_the_field,
    firmware_loads_round_trip_and_replace,
);

fn line(dn: &str) -> Line {
    Line {
        dn: dn.into(),
        label: format!("L{dn}"),
        display_name: format!("User {dn}"),
        ..Default::default()
    }
}

fn app(dn: &str) -> LineAppearance {
    LineAppearance {
        dn: dn.into(),
        ..Default::default()
    }
}

fn migrations_run_once_and_seed_defaults(f: Fixture) {
    assert!(schema::known_version() >= 3);
    {
        let s = f.open();
        assert_eq!(s.schema_version(), schema::known_version());
        s.add_line(&line("1000")).unwrap();
    }
    let s = f.open();
    assert_eq!(s.schema_version(), schema::known_version());
    assert_eq!(s.lines().unwrap().len(), 1, "reopening keeps data");
    assert_eq!(s.pools().unwrap()[0].name, DEFAULT_POOL);
    assert_eq!(s.groups().unwrap()[0].name, DEFAULT_GROUP);
    assert!(!s.dial_rules().unwrap().is_empty());
}

fn device_crud_canonicalises_names_and_models(f: Fixture) {
    let s = f.open();
    s.add_line(&line("1000")).unwrap();
    let mut nd = NewDevice::new("00:1b:54:aa:bb:cc", "CP-7965G", Protocol::Sccp);
    nd.lines = vec![app("1000")];
    nd.speed_dials = vec![SpeedDial {
        number: "4190".into(),
        label: "Door".into(),
    }];
    let d = s.add_device(&nd).unwrap();
    assert_eq!(d.name, "SEP001B54AABBCC");
    assert_eq!(d.model, "Cisco 7965");
    let got = s.device("sep001b54aabbcc").unwrap().unwrap();
    assert_eq!(got, d);
    let e = s
        .edit_device(
            "001B54AABBCC",
            &DevicePatch {
                description: Some("Lobby".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(e.description, "Lobby");
    assert_eq!(e.revision, 2);
    assert_eq!(e.lines, d.lines, "untouched fields stay");
    assert_eq!(
        s.devices_with_line("1000").unwrap(),
        vec!["SEP001B54AABBCC"]
    );
    assert!(matches!(
        s.remove_line("1000"),
        Err(StoreError::InUse { .. })
    ));
    s.remove_device("SEP001B54AABBCC").unwrap();
    assert!(s.device("SEP001B54AABBCC").unwrap().is_none());
    s.remove_line("1000").unwrap();
}

fn bad_input_errors_name_the_field_and_expectation(f: Fixture) {
    let s = f.open();
    let err = |nd: &NewDevice| s.add_device(nd).unwrap_err().to_string();

    let e = err(&NewDevice::new("SEP12345", "Cisco 7965", Protocol::Sccp));
    assert!(e.contains("mac: expected a MAC address"), "{e}");

    let e = err(&NewDevice::new(
        "001B54AABBCC",
        "Cisco 1234",
        Protocol::Sccp,
    ));
    assert!(e.contains("model: expected a known model"), "{e}");

    let e = err(&NewDevice::new(
        "001B54AABBCC",
        "Cisco 8851",
        Protocol::Sccp,
    ));
    assert!(
        e.contains("model: expected a protocol Cisco 8851 supports"),
        "{e}"
    );

    let mut nd = NewDevice::new("001B54AABBCC", "Cisco 7965", Protocol::Sccp);
    nd.lines = vec![app("1000")];
    let e = err(&nd);
    assert!(e.contains("line 1: expected an existing line"), "{e}");

    s.set_dn_ranges(&[DnRange {
        start: "2000".into(),
        end: "2999".into(),
    }])
    .unwrap();
    let e = s.add_line(&line("1000")).unwrap_err().to_string();
    assert!(e.contains("inside a configured range (2000-2999)"), "{e}");

    let mut nd = NewDevice::new("001B54AABBCC", "Cisco 7965", Protocol::Sccp);
    nd.device_pool = "Nowhere".into();
    let e = err(&nd);
    assert!(
        e.contains("device pool: expected an existing device pool"),
        "{e}"
    );

    let nd = NewDevice::new("001B54AABBCC", "Cisco 7965", Protocol::Sccp);
    s.add_device(&nd).unwrap();
    let e = err(&NewDevice::new(
        "SEP001b54aabbcc",
        "Cisco 7965",
        Protocol::Sccp,
    ));
    assert!(
        e.contains("device \"SEP001B54AABBCC\" already exists"),
        "{e}"
    );

    let mut nd = NewDevice::new("001B54AABBCD", "Cisco 7941", Protocol::Sccp);
    s.add_line(&line("2001")).unwrap();
    s.add_line(&line("2002")).unwrap();
    s.add_line(&line("2003")).unwrap();
    nd.lines = vec![app("2001"), app("2002"), app("2003")];
    let e = err(&nd);
    assert!(
        e.contains("lines: expected at most 2 lines on a Cisco 7941"),
        "{e}"
    );
}

const CSV: &str = "\
mac address,DESCRIPTION,Device Type,DEVICE PROTOCOL,DEVICE POOL,DIRECTORY NUMBER  1,DISPLAY  1,LINE TEXT LABEL  1,DIRECTORY NUMBER 2,DISPLAY 2,LINE TEXT LABEL 2,SPEED DIAL NUMBER 1,SPEED DIAL LABEL 1,LOCATION
SEP001B54000001,Reception,Cisco 7965,SCCP,Default,4101,Reception,4101 Reception,4199,Shared,Shared line,4190,Front door,Hub_None
001b54000002,Sales,CP-8851,SIP,Default,4102,Sales,4102 Sales,4199,Shared,Shared line,,,Hub_None
001B54000003,,Cisco 7942,,,4103,\"Smith, Ann\",,,,,,,
";

fn bat_import_accepts_cucm_spellings_and_round_trips(f: Fixture) {
    let s = f.open();
    let parsed = bat::parse(CSV.as_bytes()).unwrap();
    assert_eq!(parsed.ignored_columns, vec!["LOCATION"]);
    let report = s.import(&parsed.rows).unwrap();
    assert_eq!(report.devices_added, 3);
    assert_eq!(report.lines_added, 4, "4101 4102 4103 and the shared 4199");
    let d1 = s.device("SEP001B54000001").unwrap().unwrap();
    assert_eq!(d1.lines[1].dn, "4199");
    assert_eq!(d1.speed_dials[0].label, "Front door");
    let d2 = s.device("SEP001B54000002").unwrap().unwrap();
    assert_eq!(d2.protocol, Protocol::Sip);
    assert_eq!(d2.model, "Cisco 8851");
    let d3 = s.device("SEP001B54000003").unwrap().unwrap();
    assert_eq!(
        d3.protocol,
        Protocol::Sccp,
        "empty protocol defaults to SCCP"
    );
    assert_eq!(s.line("4103").unwrap().unwrap().display_name, "Smith, Ann");
    s.edit_line(
        "4102",
        &LinePatch {
            auth_password: Some("s3cret".into()),
            ..Default::default()
        },
    )
    .unwrap();

    // export -> import into an empty database -> the same database.
    let snap = s.snapshot().unwrap();
    let mut out = Vec::new();
    bat::export(&snap.devices, &snap.lines, true, &mut out).unwrap();
    let s2 = f.open_named("second");
    s2.import(&bat::parse(out.as_slice()).unwrap().rows)
        .unwrap();
    let snap2 = s2.snapshot().unwrap();
    assert_eq!(snap2.devices, snap.devices);
    assert_eq!(snap2.lines, snap.lines);
    let mut out2 = Vec::new();
    bat::export(&snap2.devices, &snap2.lines, true, &mut out2).unwrap();
    assert_eq!(
        String::from_utf8(out2).unwrap(),
        String::from_utf8(out).unwrap()
    );
}

fn a_bad_row_names_row_and_column_and_leaves_the_database_untouched(f: Fixture) {
    let s = f.open();
    s.import(&bat::parse(CSV.as_bytes()).unwrap().rows).unwrap();
    let before = s.snapshot().unwrap();

    let bad_syntax = "MAC ADDRESS,DEVICE TYPE,DIRECTORY NUMBER 1\n001B54000010,Cisco 7965,5000\n001B54000011,Cisco 7965,50a0\n";
    let e = bat::parse(bad_syntax.as_bytes()).unwrap_err().to_string();
    assert!(
        e.starts_with("row 3: DIRECTORY NUMBER 1: expected a directory number"),
        "{e}"
    );

    let bad_mac = "MAC ADDRESS,DEVICE TYPE\n001B5400001,Cisco 7965\n";
    let e = bat::parse(bad_mac.as_bytes()).unwrap_err().to_string();
    assert!(
        e.starts_with("row 2: MAC ADDRESS: expected a MAC address"),
        "{e}"
    );

    let bad_model = "MAC ADDRESS,DEVICE TYPE\n001B54000010,Cisco 7966\n";
    let e = bat::parse(bad_model.as_bytes()).unwrap_err().to_string();
    assert!(
        e.starts_with("row 2: DEVICE TYPE: expected a known model"),
        "{e}"
    );

    let ragged = "MAC ADDRESS,DEVICE TYPE\n001B54000010,Cisco 7965,extra\n";
    let e = bat::parse(ragged.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("row 2"), "{e}");

    // Semantic errors are found while applying: the first rows are written, then rolled back.
    let dup = "MAC ADDRESS,DEVICE TYPE,DIRECTORY NUMBER 1\n001B54000010,Cisco 7965,5000\n001B54000011,Cisco 7965,5001\nSEP001B54000001,Cisco 7965,5002\n";
    let e = s
        .import(&bat::parse(dup.as_bytes()).unwrap().rows)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("row 4: MAC ADDRESS: expected a device not yet in the database"),
        "{e}"
    );
    assert_eq!(s.snapshot().unwrap(), before, "all or nothing");

    let pool = "MAC ADDRESS,DEVICE TYPE,DEVICE POOL\n001B54000010,Cisco 7965,Default\n001B54000011,Cisco 7965,DP-Mars\n";
    let e = s
        .import(&bat::parse(pool.as_bytes()).unwrap().rows)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("row 3: DEVICE POOL: expected an existing device pool"),
        "{e}"
    );

    s.set_dn_ranges(&[DnRange {
        start: "4000".into(),
        end: "4999".into(),
    }])
    .unwrap();
    let before = s.snapshot().unwrap();
    let range = "MAC ADDRESS,DEVICE TYPE,DIRECTORY NUMBER  1,DIRECTORY NUMBER  2\n001B54000010,Cisco 7965,4500,6000\n";
    let e = s
        .import(&bat::parse(range.as_bytes()).unwrap().rows)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "row 2: DIRECTORY NUMBER 2: expected a directory number inside a configured range"
        ),
        "{e}"
    );
    assert_eq!(s.snapshot().unwrap(), before);
}

fn auto_registration_hands_out_the_next_free_dn(f: Fixture) {
    let s = f.open();
    let e = s
        .auto_register("SEP001B54000001", "CP-7965G", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("auto-registration: expected enabled"), "{e}");
    s.add_line(&line("3000")).unwrap();
    let settings = Settings {
        autoreg_enabled: true,
        autoreg_dn_start: "3000".into(),
        autoreg_dn_end: "3002".into(),
        ..Settings::default()
    };
    s.put_settings(&settings).unwrap();
    let d = s
        .auto_register("SEP001B54000001", "CP-7965G", None)
        .unwrap();
    assert_eq!(d.lines[0].dn, "3001", "3000 is taken");
    assert_eq!(d.protocol, Protocol::Sccp);
    let d = s.auto_register("SEP001B54000002", "CP-8851", None).unwrap();
    assert_eq!(d.lines[0].dn, "3002");
    assert_eq!(d.protocol, Protocol::Sip, "SIP-only models get SIP");
    let e = s
        .auto_register("SEP001B54000003", "CP-7965G", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("all in use"), "{e}");
    assert!(s
        .auto_register("SEP001B54000001", "CP-7965G", None)
        .is_err());
    // A number freed below the search cursor is found again once the range wraps.
    s.remove_device("SEP001B54000001").unwrap();
    s.remove_line("3001").unwrap();
    let d = s
        .auto_register("SEP001B54000004", "CP-7965G", None)
        .unwrap();
    assert_eq!(d.lines[0].dn, "3001", "the freed number is reused");
}

fn concurrent_edits_from_two_connections_lose_nothing(f: Fixture) {
    let a = f.open().into_arc();
    let b = f.open().into_arc();
    a.add_device(&NewDevice::new(
        "001B54000001",
        "Cisco 7975",
        Protocol::Sccp,
    ))
    .unwrap();
    let per_thread = 20;
    let handles: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    s.edit_device(
                        "SEP001B54000001",
                        &DevicePatch {
                            add_speed_dial: Some(SpeedDial {
                                number: format!("{t}{i:02}"),
                                label: format!("t{t} #{i}"),
                            }),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let d = b.device("SEP001B54000001").unwrap().unwrap();
    assert_eq!(d.speed_dials.len(), 4 * per_thread);
    assert_eq!(d.revision, 1 + 4 * per_thread as u64);

    // An editor holding a stale copy is told so instead of overwriting.
    let stale = DevicePatch {
        description: Some("stale".into()),
        expected_revision: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        a.edit_device("SEP001B54000001", &stale),
        Err(StoreError::Conflict { .. })
    ));
}

fn pools_groups_nodes_and_loads(f: Fixture) {
    let s = f.open();
    s.put_node(&CmNode::new("pb-a", "192.0.2.21")).unwrap();
    s.put_node(&CmNode::new("pb-b", "192.0.2.22")).unwrap();
    s.put_group(&CmGroup {
        name: "CMG-HQ".into(),
        tftp_default: true,
        members: vec!["pb-b".into(), "pb-a".into()],
    })
    .unwrap();
    assert_eq!(
        s.groups()
            .unwrap()
            .iter()
            .find(|g| g.name == "CMG-HQ")
            .unwrap()
            .members,
        vec!["pb-b", "pb-a"]
    );
    let e = s
        .put_group(&CmGroup {
            name: "X".into(),
            tftp_default: true,
            members: vec!["nope".into()],
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("member 1: expected an existing node"), "{e}");
    s.put_pool(&DevicePool {
        name: "DP-HQ".into(),
        cm_group: "CMG-HQ".into(),
        date_time_group: DEFAULT_DATETIME.into(),
        user_locale: "English_United_States".into(),
        network_locale: "United_States".into(),
        connection_monitor_duration: 120,
        sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
    })
    .unwrap();
    assert!(matches!(
        s.remove_node("pb-a"),
        Err(StoreError::InUse { .. })
    ));
    assert!(matches!(
        s.remove_group("CMG-HQ"),
        Err(StoreError::InUse { .. })
    ));
    s.set_model_load("CP-7965G", Protocol::Sccp, "SCCP45.9-4-2SR4-3S")
        .unwrap();
    assert_eq!(s.model_loads().unwrap()[0].model, "Cisco 7965");
    s.set_model_load("7965", Protocol::Sccp, "").unwrap();
    assert!(s.model_loads().unwrap().is_empty());
    let e = s
        .set_model_load("Cisco 8851", Protocol::Sccp, "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("model:"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Arbitrary bytes as a CSV file give rows or an error, never a panic; whatever parses
    /// imports or fails cleanly.
    #[test]
    #[test]
    fn arbitrary_csv_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let mut input = b"MAC ADDRESS,DEVICE TYPE,DIRECTORY NUMBER 1,DISPLAY 1\n".to_vec();
        input.extend_from_slice(&body);
        if let Ok(parsed) = bat::parse(input.as_slice()) {
            let s = SqliteStore::in_memory().unwrap();
            let _ = s.import(&parsed.rows);
        }
        let _ = bat::parse(body.as_slice());
    }
}

fn dhcp_reservations_are_unique_per_address_and_survive_reopening(f: Fixture) {
    let a: mac::Mac = "001b54aa0001".parse().unwrap();
    let b: mac::Mac = "001b54aa0002".parse().unwrap();
    let ip = "198.18.100.50".parse().unwrap();
    {
        let s = f.open();
        s.set_reservation(a, Some(ip)).unwrap();
        let err = s.set_reservation(b, Some(ip)).unwrap_err().to_string();
        assert!(
            err.starts_with("ip:") && err.contains("00:1b:54:aa:00:01"),
            "{err}"
        );
    }
    let s = f.open();
    assert_eq!(s.reservations().unwrap(), vec![(a, ip)]);
    s.set_reservation(a, None).unwrap();
    assert!(s.reservations().unwrap().is_empty());
}

fn check_import_changes_nothing(f: Fixture) {
    let s = f.open();
    let before = s.snapshot().unwrap();
    let token = s.external_change_token().unwrap();
    let report = s
        .check_import(&bat::parse(CSV.as_bytes()).unwrap().rows)
        .unwrap();
    assert_eq!(report.devices_added, 3);
    assert_eq!(s.snapshot().unwrap(), before, "a dry run writes nothing");
    assert_eq!(s.external_change_token().unwrap(), token);
}

fn change_token_moves_only_on_configuration_writes(f: Fixture) {
    let s = f.open();
    let other = f.open();
    let t0 = s.external_change_token().unwrap().unwrap();
    s.add_line(&line("1000")).unwrap();
    let t1 = other.external_change_token().unwrap().unwrap();
    assert!(t1 > t0, "another connection sees the write: {t0} -> {t1}");
    let _ = other.lines().unwrap();
    assert!(s.add_line(&line("1000")).is_err());
    assert_eq!(
        s.external_change_token().unwrap().unwrap(),
        t1,
        "a refused write is rolled back, generation included"
    );
}

fn blobs_are_kept_replaced_removed_and_first_writer_wins(f: Fixture) {
    let a = f.open();
    let b = f.open();
    assert_eq!(a.blob("trust.identity").unwrap(), None);
    let gen0 = a.external_change_token().unwrap();
    // Two nodes starting at once: the first identity stays, the second node reads it.
    assert_eq!(
        a.put_blob_if_absent("trust.identity", b"first").unwrap(),
        b"first"
    );
    assert_eq!(
        b.put_blob_if_absent("trust.identity", b"second").unwrap(),
        b"first"
    );
    assert_ne!(
        a.external_change_token().unwrap(),
        gen0,
        "a blob write is a change"
    );
    a.put_blob("trust.identity", Some(&[0u8, 255, 1])).unwrap();
    assert_eq!(b.blob("trust.identity").unwrap(), Some(vec![0u8, 255, 1]));
    a.put_blob("trust.identity", None).unwrap();
    assert_eq!(b.blob("trust.identity").unwrap(), None);
    // Not part of the snapshot that feeds files and the API.
    b.put_blob("trust.identity", Some(b"secret")).unwrap();
    let snap = format!("{:?}", b.snapshot().unwrap());
    assert!(!snap.contains("secret"));
}

/// Issue 24 item 5: the firmware's field limits. usecallmanager.nz documents `featureLabel`,
/// `displayName`, `authName` and `authPassword` of SEP<MAC>.cnf.xml as at most 30 characters;
/// every write path (line add/edit, device appearance, BAT import) refuses longer values with
/// an error naming the field, and nothing is stored.
fn phone_field_limits_are_the_firmware_s_and_errors_name_the_field(f: Fixture) {
    let s = f.open();
    let thirty = "x".repeat(30);
    let long = "x".repeat(31);
    let ok = Line {
        dn: "1000".into(),
        label: thirty.clone(),
        display_name: thirty.clone(),
        auth_user: thirty.clone(),
        auth_password: thirty.clone(),
        voicemail: String::new(),
    };
    s.add_line(&ok).unwrap();
    let cases: [(&str, Line); 4] = [
        (
            "display name",
            Line {
                dn: "1001".into(),
                display_name: long.clone(),
                ..Default::default()
            },
        ),
        (
            "label",
            Line {
                dn: "1001".into(),
                label: long.clone(),
                ..Default::default()
            },
        ),
        (
            "SIP auth user",
            Line {
                dn: "1001".into(),
                auth_user: long.clone(),
                ..Default::default()
            },
        ),
        (
            "SIP auth password",
            Line {
                dn: "1001".into(),
                auth_password: long.clone(),
                ..Default::default()
            },
        ),
    ];
    for (field, l) in cases {
        let e = s.add_line(&l).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{field}: expected")), "{e}");
        assert!(e.contains("at most 30 characters"), "{e}");
    }
    assert!(s.line("1001").unwrap().is_none(), "nothing stored");
    let e = s
        .edit_line(
            "1000",
            &LinePatch {
                auth_password: Some(long.clone()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("SIP auth password: expected"), "{e}");
    let e = s
        .add_line(&Line {
            dn: "1002".into(),
            auth_user: "a\"b".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("SIP auth user: expected"), "{e}");
    assert_eq!(s.line("1000").unwrap().unwrap().auth_password, thirty);

    let mut nd = NewDevice::new("001B54AABB01", "Cisco 7965", Protocol::Sccp);
    nd.lines = vec![LineAppearance {
        dn: "1000".into(),
        label: String::new(),
        display: long.clone(),
    }];
    let e = s.add_device(&nd).unwrap_err().to_string();
    assert!(e.starts_with("line 1 display: expected"), "{e}");

    for (col, cell) in [
        ("DISPLAY 1", "DISPLAY 1"),
        ("LINE TEXT LABEL 1", "LINE TEXT LABEL 1"),
        ("SIP AUTH USER 1", "SIP AUTH USER 1"),
        ("SIP AUTH PASSWORD 1", "SIP AUTH PASSWORD 1"),
    ] {
        let csv = format!("MAC ADDRESS,DEVICE TYPE,PROTOCOL,DIRECTORY NUMBER 1,{col}\n001B54000020,Cisco 8851,SIP,5000,{long}\n");
        let e = bat::parse(csv.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("row 2: {cell}: expected")),
            "{col}: {e}"
        );
    }
}

fn firmware_loads_round_trip_and_replace(f: Fixture) {
    let s = f.open();
    let img = |name: &str, size: Option<u64>| FirmwareImage {
        platform: String::new(),
        name: name.into(),
        size,
        declared_size: None,
        optional: false,
    };
    let mut l = FirmwareLoad {
        name: "SCCP45.9-4-2SR4-3S".into(),
        protocol: "SCCP".into(),
        models: vec!["7945".into(), "7965".into()],
        manifest_file: "SCCP45.9-4-2SR4-3S.loads".into(),
        complete: false,
        images: vec![
            img("jar45sccp.9-4-2SR4-3.sbn", Some(10)),
            img("cnu45.9-4-2SR4-3.sbn", None),
        ],
        package: "cmterm-7945_7965-sccp.9-4-2SR4-3.zip".into(),
        signer: "CN=test".into(),
        header: "{}".into(),
        imported_at: 1,
    };
    s.put_firmware_load(&l).unwrap();
    assert_eq!(s.firmware_loads().unwrap(), vec![l.clone()]);
    assert_eq!(l.missing(), ["cnu45.9-4-2SR4-3.sbn"]);
    // Re-import replaces the row and its images.
    l.images[1].size = Some(20);
    l.complete = true;
    s.put_firmware_load(&l).unwrap();
    let got = s.firmware_loads().unwrap();
    assert_eq!(got, vec![l.clone()]);
    assert!(got[0].missing().is_empty());
    assert_eq!(s.snapshot().unwrap().firmware, got);
    // A name that is not a load name is refused, naming the field.
    l.name = "bad name".into();
    let e = s.put_firmware_load(&l).unwrap_err().to_string();
    assert!(e.contains("load"), "{e}");
}
