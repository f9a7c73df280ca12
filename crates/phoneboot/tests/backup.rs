//! `phoneboot backup` / `restore`: a node's database is saved while its server runs, restored
//! into a fresh node (another lab), and a phone provisioned only on the first node boots on
//! the second with its own configuration file and line.

use std::process::Command;
use std::time::Duration;

use test_support::LabGuard;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("phoneboot runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_backup_restored_into_a_fresh_node_boots_the_phone_it_knew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("node.tar");
    let archive_s = archive.to_str().expect("utf-8 path");

    let first = LabGuard::new().expect("first lab up");
    first
        .serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("serve on the first node");
    first.phoneboot(&["line", "add", "4711", "--label", "Restored"]);
    first.phoneboot(&[
        "phone",
        "add",
        "001B54B0C001",
        "--model",
        "Cisco 7965",
        "--protocol",
        "SCCP",
        "--line",
        "4711",
    ]);
    // Taken while the first node's server runs and holds the database open.
    let db1 = first.database_path();
    let db1 = db1.to_str().expect("utf-8 path");
    let (ok, out) = run(&["--db", db1, "backup", archive_s]);
    assert!(ok, "backup failed: {out}");
    assert!(out.contains("phoneboot.db"), "{out}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive)
            .expect("archive")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the archive holds secrets: mode {mode:o}"
        );
    }
    let (ok, out) = run(&["--db", db1, "backup", archive_s]);
    assert!(
        !ok && out.contains("exists"),
        "a backup overwrote a file: {out}"
    );

    // Restoring onto a database that holds devices is refused without --force...
    // (No server answers at the discard port, so only the database is judged.)
    let restore_onto_first = |file: &str| {
        run(&[
            "--db",
            db1,
            "--server",
            "http://127.0.0.1:9",
            "restore",
            file,
        ])
    };
    let (ok, out) = restore_onto_first(archive_s);
    assert!(!ok && out.contains("--force"), "{out}");
    // ...and so is anything that is not a backup.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar file at all").expect("junk written");
    let (ok, out) = restore_onto_first(junk.to_str().expect("utf-8"));
    assert!(!ok, "junk restored: {out}");
    drop(first);

    // A fresh node: restore before its server starts, then boot the phone there.
    let second = LabGuard::new().expect("second lab up");
    let db2 = second.database_path();
    let url2 = second
        .admin_url()
        .unwrap_or_else(|| "http://127.0.0.1:9".into());
    let (ok, out) = run(&[
        "--db",
        db2.to_str().expect("utf-8 path"),
        "--server",
        &url2,
        "restore",
        archive_s,
    ]);
    assert!(ok, "restore failed: {out}");
    assert!(out.contains("1 devices"), "{out}");
    second
        .serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("serve on the restored node");
    let out = second
        .sim_boot(bin(), "CP-7965", "sccp", "00:1b:54:b0:c0:01")
        .arg("--json")
        .output()
        .expect("sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert!(
        out.status.success() && report["registered"] == true,
        "the restored phone did not register:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("SEP001B54B0C001.cnf.xml") && !text.contains("XMLDefault"),
        "the phone booted as unknown on the restored node:\n{text}"
    );
    // Its line came along, as on the first node.
    let list = second.phoneboot(&["phone", "list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.contains("SEP001B54B0C001") && l.contains("4711")),
        "its line is missing:\n{list}"
    );
}
