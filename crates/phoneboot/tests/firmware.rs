//! `phoneboot firmware import|list|locales` on synthetic packages, and what the files then
//! name: a load only when the library holds it complete (issue 19 items 1 and 2).

use std::path::Path;
use std::process::{Command, Output};

use firmware::testkit;

fn pb(db: &Path, _tftp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phoneboot"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("PHONEBOOT_CONFIG")
        .env_remove("PHONEBOOT_LAB")
        .output()
        .expect("run phoneboot")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn import_list_load_set_and_files_name_only_complete_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("pb.db");
    let tftp = dir.path().join("tftp");
    let fw = tftp.to_str().expect("utf-8 path");
    let pkgs = dir.path().join("pkgs");
    std::fs::create_dir_all(&pkgs).expect("mkdir");

    ok(&pb(&db, &tftp, &["line", "add", "4101"]));
    ok(&pb(
        &db,
        &tftp,
        &[
            "phone",
            "add",
            "001B54000001",
            "--model",
            "Cisco 7965",
            "--line",
            "4101",
        ],
    ));
    // No firmware yet: the file names no load (the catalogue's default is not there).
    let sep = ok(&pb(
        &db,
        &tftp,
        &["files", "show", "SEP001B54000001.cnf.xml"],
    ));
    assert!(
        sep.contains("<loadInformation></loadInformation>") || sep.contains("<loadInformation/>"),
        "{sep}"
    );
    // load set refuses a load the library lacks.
    let e = err(&pb(
        &db,
        &tftp,
        &["load", "set", "Cisco 7965", "SCCP45.9-4-2SR4-3S"],
    ));
    assert!(e.contains("not in the firmware library"), "{e}");

    // A package missing one image is refused whole, naming it; nothing lands.
    let mut set = testkit::sccp45("9-4-2SR4-3", 2000);
    set.push(("term65.default.loads".into(), {
        let imgs: Vec<String> = set[1..].iter().map(|(n, _)| n.clone()).collect();
        let refs: Vec<&str> = imgs.iter().map(String::as_str).collect();
        testkit::signed(
            "term65.default.loads",
            testkit::release_body("9-4-2SR4-3", &refs).as_bytes(),
        )
    }));
    let short: Vec<_> = set
        .iter()
        .filter(|(n, _)| !n.starts_with("dsp45"))
        .cloned()
        .collect();
    let short_zip = pkgs.join("short.zip");
    std::fs::write(&short_zip, testkit::zip(&short)).expect("write");
    let e = err(&pb(
        &db,
        &tftp,
        &[
            "firmware",
            "import",
            "--dir",
            fw,
            short_zip.to_str().expect("path"),
        ],
    ));
    assert!(e.contains("dsp45.9-4-2SR4-3.sbn is missing"), "{e}");
    assert!(
        std::fs::read_dir(&tftp).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing half-imported"
    );

    // --partial takes it; load set still refuses it, naming the missing image.
    ok(&pb(
        &db,
        &tftp,
        &[
            "firmware",
            "import",
            "--partial",
            "--dir",
            fw,
            short_zip.to_str().expect("path"),
        ],
    ));
    let list = ok(&pb(&db, &tftp, &["firmware", "list"]));
    assert!(
        list.contains("SCCP45.9-4-2SR4-3S")
            && list.contains("incomplete: missing dsp45.9-4-2SR4-3.sbn"),
        "{list}"
    );
    let e = err(&pb(
        &db,
        &tftp,
        &["load", "set", "Cisco 7965", "SCCP45.9-4-2SR4-3S"],
    ));
    assert!(
        e.contains("incomplete: missing dsp45.9-4-2SR4-3.sbn"),
        "{e}"
    );
    let e = err(&pb(
        &db,
        &tftp,
        &[
            "phone",
            "edit",
            "001B54000001",
            "--load",
            "SCCP45.9-4-2SR4-3S",
        ],
    ));
    assert!(e.contains("incomplete"), "{e}");

    // The whole package as a signed COP completes it.
    let cop = pkgs.join("cmterm-7945_7965-sccp.9-4-2SR4-3.k3.cop.sgn");
    std::fs::write(
        &cop,
        testkit::cop("cmterm-7945_7965-sccp.9-4-2SR4-3.k3.cop.sgn", &set),
    )
    .expect("write");
    let out = ok(&pb(
        &db,
        &tftp,
        &[
            "firmware",
            "import",
            "--dir",
            fw,
            cop.to_str().expect("path"),
        ],
    ));
    assert!(out.contains("signed by CN=phoneboot-test"), "{out}");
    assert!(
        out.contains("load SCCP45.9-4-2SR4-3S (SCCP, 7945 7965): 5 images, complete"),
        "{out}"
    );
    let list = ok(&pb(&db, &tftp, &["firmware", "list", "--images"]));
    assert!(
        list.contains("complete") && !list.contains("incomplete"),
        "{list}"
    );
    assert!(list.contains("term65.default"), "{list}");
    ok(&pb(
        &db,
        &tftp,
        &["load", "set", "Cisco 7965", "SCCP45.9-4-2SR4-3S"],
    ));
    let sep = ok(&pb(
        &db,
        &tftp,
        &["files", "show", "SEP001B54000001.cnf.xml"],
    ));
    assert!(
        sep.contains("<loadInformation>SCCP45.9-4-2SR4-3S</loadInformation>"),
        "{sep}"
    );
    let xd = ok(&pb(&db, &tftp, &["files", "show", "XMLDefault.cnf.xml"]));
    assert!(xd.contains("SCCP45.9-4-2SR4-3S"), "{xd}");
    assert!(
        !xd.contains("SCCP42."),
        "XMLDefault names only loads the library holds:\n{xd}"
    );
    // termNN.default.loads sits in the TFTP root for factory-reset phones.
    assert!(tftp.join("term65.default.loads").is_file());
}

#[test]
fn locale_packages_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("pb.db");
    let tftp = dir.path().join("tftp");
    let inner = testkit::tar(&[
        (
            "usr/local/cm/tftp/English_United_Kingdom/be-sccp.jar".into(),
            b"jar".to_vec(),
        ),
        (
            "usr/local/cm/tftp/United_Kingdom/g3-tones.xml".into(),
            b"<tones/>".to_vec(),
        ),
    ]);
    let p = dir.path().join("po-locale-en_GB-k3-14.0.1.1000-1.cop.sgn");
    std::fs::write(
        &p,
        testkit::cop(
            "po-locale-en_GB-k3-14.0.1.1000-1.cop.sgn",
            &[("x.tar".into(), inner)],
        ),
    )
    .expect("write");
    let fw = tftp.to_str().expect("path");
    let out = ok(&pb(
        &db,
        &tftp,
        &["firmware", "import", "--dir", fw, p.to_str().expect("path")],
    ));
    assert!(out.contains("locale English_United_Kingdom"), "{out}");
    let out = ok(&pb(&db, &tftp, &["firmware", "locales", "--dir", fw]));
    assert!(
        out.contains("English_United_Kingdom") && out.contains("be-sccp.jar"),
        "{out}"
    );
    assert!(
        out.contains("United_Kingdom ") && out.contains("g3-tones.xml"),
        "{out}"
    );
}
