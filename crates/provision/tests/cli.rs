//! The admin commands, parsed by clap as the binary will and run on a database file.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use clap::Parser;
use provision::cli::{run, AdminCommand, CliError};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AdminCommand,
}

fn pb(db: &Path, args: &[&str]) -> Result<String, CliError> {
    let mut argv = vec!["phoneboot"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    run(db, &cli.cmd)
}

/// What `phoneboot firmware import` records for a complete load.
fn record_complete_load(db: &Path, name: &str) {
    use store::Store;
    let s = store::SqliteStore::open(db).unwrap();
    s.put_firmware_load(&store::FirmwareLoad {
        name: name.into(),
        protocol: "SIP".into(),
        models: vec![],
        manifest_file: format!("{name}.loads"),
        complete: true,
        images: vec![store::FirmwareImage {
            platform: String::new(),
            name: "rootfs.sbn".into(),
            size: Some(1),
            declared_size: None,
            optional: false,
        }],
        package: "test".into(),
        signer: String::new(),
        header: "{}".into(),
        imported_at: 0,
    })
    .unwrap();
}

#[test]
fn an_admin_session_from_empty_database_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pb.db");
    pb(
        &db,
        &[
            "node",
            "set",
            "pb-a",
            "192.0.2.21",
            "--description",
            "node A",
        ],
    )
    .unwrap();
    pb(&db, &["node", "set", "pb-b", "192.0.2.22"]).unwrap();
    pb(&db, &["group", "set", "CMG-HQ", "pb-a", "pb-b"]).unwrap();
    pb(&db, &["pool", "add", "DP-HQ", "--group", "CMG-HQ"]).unwrap();
    pb(
        &db,
        &[
            "line",
            "add",
            "4101",
            "--display",
            "Reception",
            "--label",
            "4101 Reception",
            "--auth-password",
            "pw",
        ],
    )
    .unwrap();
    let out = pb(
        &db,
        &[
            "phone",
            "add",
            "00:27:0d:1a:2b:3c",
            "--model",
            "CP-8851",
            "--pool",
            "DP-HQ",
            "--line",
            "4101",
            "--speed-dial",
            "4190:Front door",
        ],
    )
    .unwrap();
    assert_eq!(out, "added SEP00270D1A2B3C (Cisco 8851 SIP)\n");

    let list = pb(&db, &["phone", "list"]).unwrap();
    assert!(
        list.contains("SEP00270D1A2B3C  Cisco 8851  SIP   DP-HQ"),
        "{list}"
    );
    let show = pb(&db, &["phone", "show", "sep00270d1a2b3c"]).unwrap();
    assert!(
        show.contains("speed dial 1:     4190 \"Front door\""),
        "{show}"
    );

    let files = pb(&db, &["files", "list"]).unwrap();
    assert!(files.contains("SEP00270D1A2B3C.cnf.xml"), "{files}");
    assert!(files.contains("XMLDefault.cnf.xml"));
    let sep = pb(&db, &["files", "show", "sep00270d1a2b3c.cnf.xml"]).unwrap();
    assert!(sep.contains("<authPassword>pw</authPassword>"));
    assert!(sep.contains("<processNodeName>192.0.2.22</processNodeName>"));
    assert!(sep.contains("<speedDialNumber>4190</speedDialNumber>"));

    pb(
        &db,
        &["phone", "edit", "SEP00270D1A2B3C", "--description", "Lobby"],
    )
    .unwrap();
    let out = pb(&db, &["phone", "show", "SEP00270D1A2B3C"]).unwrap();
    assert!(
        out.contains("description:      Lobby") && out.contains("revision:         2"),
        "{out}"
    );

    let set_load = || {
        pb(
            &db,
            &[
                "load",
                "set",
                "Cisco 8851",
                "sip88xx.14-3-1-0001-1",
                "--protocol",
                "SIP",
            ],
        )
    };
    // Not in the firmware library: refused (a phone would fail the upgrade every boot).
    let e = set_load().unwrap_err().to_string();
    assert!(e.contains("not in the firmware library"), "{e}");
    record_complete_load(&db, "sip88xx.14-3-1-0001-1");
    set_load().unwrap();
    assert!(pb(&db, &["files", "show", "SEP00270D1A2B3C.cnf.xml"])
        .unwrap()
        .contains("sip88xx.14-3-1-0001-1"));
    pb(
        &db,
        &[
            "settings",
            "set",
            "services_url",
            "http://192.0.2.21:6972/services",
        ],
    )
    .unwrap();
    assert!(pb(&db, &["files", "show", "XMLDefault.cnf.xml"])
        .unwrap()
        .contains("<servicesURL>http://192.0.2.21:6972/services</servicesURL>"));

    let e = pb(&db, &["line", "rm", "4101"]).unwrap_err().to_string();
    assert!(e.contains("still used by SEP00270D1A2B3C"), "{e}");
    pb(&db, &["phone", "rm", "SEP00270D1A2B3C"]).unwrap();
    pb(&db, &["line", "rm", "4101"]).unwrap();
    let e = pb(&db, &["files", "show", "SEP00270D1A2B3C.cnf.xml"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("file not found"), "{e}");
}

#[test]
fn import_export_and_errors_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pb.db");
    let csv = dir.path().join("phones.csv");
    std::fs::write(
        &csv,
        "MAC ADDRESS,DESCRIPTION,DEVICE TYPE,DEVICE PROTOCOL,DEVICE POOL,DIRECTORY NUMBER  1,DISPLAY  1,LINE TEXT LABEL  1,SPEED DIAL NUMBER 1,SPEED DIAL LABEL 1\n\
         SEP001B54000001,Desk 1,Cisco 7965,SCCP,Default,2001,Ann,2001 Ann,2100,Boss\n\
         001B54000002,Desk 2,Cisco 8841,SIP,Default,2002,Bob,2002 Bob,,\n",
    )
    .unwrap();
    let out = pb(&db, &["import", "--dry-run", csv.to_str().unwrap()]).unwrap();
    assert!(
        out.starts_with("dry run: would import 2 phones, 2 new lines"),
        "{out}"
    );
    assert!(pb(&db, &["phone", "list"]).unwrap().ends_with("0 phones\n"));
    let out = pb(&db, &["import", csv.to_str().unwrap()]).unwrap();
    assert_eq!(out, "imported 2 phones, 2 new lines, 0 lines updated\n");
    let out_csv = dir.path().join("out.csv");
    pb(&db, &["export", "--out", out_csv.to_str().unwrap()]).unwrap();
    let exported = std::fs::read_to_string(&out_csv).unwrap();
    assert!(exported.starts_with("MAC ADDRESS,DESCRIPTION,DEVICE TYPE,DEVICE PROTOCOL,DEVICE POOL,USER ID,DIRECTORY NUMBER 1"));
    assert!(
        exported
            .contains("001B54000001,Desk 1,Cisco 7965,SCCP,Default,,2001,Ann,2001 Ann,2100,Boss"),
        "{exported}"
    );

    // Re-importing the export into a new database gives the same export.
    let db2 = dir.path().join("pb2.db");
    pb(&db2, &["import", out_csv.to_str().unwrap()]).unwrap();
    assert_eq!(pb(&db2, &["export"]).unwrap(), exported);

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "MAC ADDRESS,DEVICE TYPE\n001B54000003,Cisco 7965\n001B54000004,Cisco 9999\n",
    )
    .unwrap();
    let e = pb(&db, &["import", bad.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("row 3: DEVICE TYPE: expected a known model"),
        "{e}"
    );
    assert!(
        !pb(&db, &["phone", "list"])
            .unwrap()
            .contains("SEP001B54000003"),
        "nothing imported"
    );

    let e = pb(&db, &["phone", "add", "xyz", "--model", "Cisco 7965"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("mac: expected a MAC address"), "{e}");
    let e = pb(
        &db,
        &["phone", "add", "001B54000001", "--model", "Cisco 7965"],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("already exists"), "{e}");
    let e = pb(
        &db,
        &[
            "phone",
            "add",
            "001B54000005",
            "--model",
            "Cisco 7965",
            "--line",
            "7777",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 1: expected an existing line"), "{e}");
    let e = pb(&db, &["settings", "set", "bogus", "1"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown setting"), "{e}");
}
