//! Synthetic packages in every container Cisco ships, read and imported; and every bad-input
//! rule of issue 19 item 8, each refused whole with nothing written.

use firmware::{package, testkit, ImportError, Library, Limits, PackageError, PackageKind};

fn lib() -> (tempfile::TempDir, Library) {
    let d = tempfile::tempdir().expect("tempdir");
    let l = Library::open(d.path().join("fw")).expect("library");
    (d, l)
}

fn files_in(l: &Library) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(l.dir())
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read(name: &str, data: &[u8]) -> Result<firmware::Package, PackageError> {
    package::read(name, data, &Limits::default())
}

#[test]
fn every_container_imports_the_same_complete_load() {
    let set = testkit::sccp45("9-4-2SR4-3", 3000);
    let mut with_script = set.clone();
    with_script.push(("install.sh".into(), b"#!/bin/sh\nrm -rf /\n".to_vec()));
    let cases: Vec<(&str, Vec<u8>, PackageKind)> = vec![
        (
            "cmterm-7945_7965-sccp.9-4-2SR4-3.zip",
            testkit::zip(&set),
            PackageKind::Zip,
        ),
        (
            "cmterm-7945_7965-sccp.9-4-2SR4-3.tar",
            testkit::tar(&set),
            PackageKind::Tar,
        ),
        (
            "cmterm-7945_7965-sccp.9-4-2SR4-3.tar.gz",
            testkit::gzip(&testkit::tar(&set)),
            PackageKind::TarGz,
        ),
        (
            "cmterm-7945_7965-sccp.9-4-2SR4-3.k3.cop.sgn",
            testkit::cop("cmterm-7945_7965-sccp.9-4-2SR4-3.k3.cop.sgn", &with_script),
            PackageKind::Cop(firmware::PayloadFound::HeaderLength),
        ),
        // A third-party repack: a tar inside a zip.
        (
            "repack.zip",
            testkit::zip(&[("inner/firmware.tar".into(), testkit::tar(&set))]),
            PackageKind::Zip,
        ),
    ];
    for (name, data, kind) in cases {
        let (_d, l) = lib();
        let pkg = read(name, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pkg.kind, kind, "{name}");
        let rep = l
            .import(&pkg, false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rep.loads.len(), 1, "{name}");
        let load = &rep.loads[0];
        assert_eq!(load.name, "SCCP45.9-4-2SR4-3S");
        assert!(load.complete, "{name}: {:?}", load.missing());
        assert_eq!(load.protocol.as_deref(), Some("SCCP"));
        assert_eq!(load.models, ["7945", "7965"]);
        assert_eq!(load.images.len(), 5);
        for i in &load.images {
            let (_, d) = set
                .iter()
                .find(|(n, _)| *n == i.name)
                .expect("image in the set");
            assert_eq!(i.size, Some(d.len() as u64), "{name}: {}", i.name);
        }
        assert_eq!(
            load.header.as_ref().and_then(|h| h.file_name.as_deref()),
            Some("SCCP45.9-4-2SR4-3S.loads")
        );
        // Bytes on disk are the package's bytes.
        for (n, d) in &set {
            assert_eq!(
                &std::fs::read(l.dir().join(n)).expect("written"),
                d,
                "{name}: {n}"
            );
        }
        assert!(
            !files_in(&l).iter().any(|f| f == "install.sh"),
            "{name}: script kept"
        );
        if let PackageKind::Cop(_) = kind {
            assert_eq!(rep.dropped, ["install.sh"]);
            let h = rep.header.expect("COP header kept");
            assert_eq!(h.hash, Some(firmware::HashAlg::Sha512));
            assert_eq!(
                h.signer.as_deref(),
                Some("CN=phoneboot-test;OU=synthetic;O=phoneboot")
            );
        }
    }
}

#[test]
fn cop_whose_header_length_misses_the_gzip_is_found_by_scanning() {
    let set = testkit::sccp45("9-4-2SR4-3", 100);
    let mut cop = testkit::cop("x.cop.sha512", &set);
    // Point the header length 8 bytes early (at padding/signature bytes, not gzip).
    let hl = u16::from_be_bytes([cop[8], cop[9]]) - 8;
    cop[8..10].copy_from_slice(&hl.to_be_bytes());
    let pkg = read("x.cop.sha512", &cop).expect("scan fallback");
    assert_eq!(pkg.kind, PackageKind::Cop(firmware::PayloadFound::Scanned));
    assert_eq!(pkg.manifests.len(), 1);
}

#[test]
fn loose_files_import_and_a_partial_load_needs_the_flag() {
    let set = testkit::sccp45("9-4-2SR4-3", 50);
    let (_d, l) = lib();
    let (mname, mdata) = &set[0];
    let pkg = read(mname, mdata).expect("loose manifest");
    assert_eq!(pkg.kind, PackageKind::Loose);
    match l.import(&pkg, false) {
        Err(ImportError::Incomplete { load, missing, .. }) => {
            assert_eq!(load, "SCCP45.9-4-2SR4-3S");
            assert!(missing.starts_with("jar45sccp.9-4-2SR4-3.sbn"), "{missing}");
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert!(files_in(&l).is_empty(), "nothing half-imported");
    let rep = l.import(&pkg, true).expect("partial allowed");
    assert!(!rep.loads[0].complete);
    assert_eq!(rep.loads[0].missing().len(), 5);
    // The images, one loose file at a time; the load becomes complete.
    for (n, d) in &set[1..] {
        l.import(&read(n, d).expect("loose image"), false)
            .expect("import image");
    }
    let load = l.load("sccp45.9-4-2sr4-3s.loads").expect("found any case");
    assert!(load.complete, "{:?}", load.missing());
}

#[test]
fn sized_manifest_with_a_short_image_is_incomplete() {
    let img = testkit::image("APPS-1.4.6.3.SBN", 1000);
    let body = format!(
        "#? HW_REV 0-4.*\r\nAPPS-1.4.6.3.SBN  {}  0123456789abcdef0123456789abcdef\r\n",
        img.len() + 1
    );
    let set = vec![
        (
            "CP7921G-1.4.6.3.LOADS".to_string(),
            testkit::signed("CP7921G-1.4.6.3.LOADS", body.as_bytes()),
        ),
        ("APPS-1.4.6.3.SBN".to_string(), img),
    ];
    let (_d, l) = lib();
    let pkg = read("cp7921.zip", &testkit::zip(&set)).expect("read");
    let err = l.import(&pkg, false).expect_err("size mismatch refused");
    assert!(err.to_string().contains("the manifest says"), "{err}");
    assert!(files_in(&l).is_empty());
}

#[test]
fn same_name_different_bytes_against_the_library_is_refused() {
    let (_d, l) = lib();
    let set = testkit::sccp45("9-4-2SR4-3", 100);
    l.import(&read("a.zip", &testkit::zip(&set)).expect("read"), false)
        .expect("first");
    let mut other = set.clone();
    other[2].1.push(0);
    let before = files_in(&l);
    let err = l
        .import(&read("b.zip", &testkit::zip(&other)).expect("read"), false)
        .expect_err("conflict");
    assert!(
        matches!(err, ImportError::Conflict { ref name, .. } if name == "cnu45.9-4-2SR4-3.sbn"),
        "{err}"
    );
    assert_eq!(files_in(&l), before);
    // Identical bytes again: fine, nothing rewritten.
    let rep = l
        .import(&read("c.zip", &testkit::zip(&set)).expect("read"), false)
        .expect("same");
    assert!(rep.written.is_empty());
}

fn refused(name: &str, data: &[u8]) -> String {
    let (_d, l) = lib();
    let e = match read(name, data) {
        Err(e) => e.to_string(),
        Ok(p) => match l.import(&p, false) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("{name}: imported {:?}", r.written),
        },
    };
    assert!(files_in(&l).is_empty(), "{name}: nothing half-imported");
    e
}

#[test]
fn bad_input_is_refused_whole_with_a_clear_error() {
    let set = testkit::sccp45("9-4-2SR4-3", 100);
    let good = |mut extra: Vec<(String, Vec<u8>)>| {
        let mut v = set.clone();
        v.append(&mut extra);
        v
    };

    // Zip bomb: 64 MiB of zeros in a few KB.
    let bomb = testkit::zip(&good(vec![("big.sbn".into(), vec![0u8; 64 << 20])]));
    assert!(bomb.len() < 1 << 20);
    let e = refused("bomb.zip", &bomb);
    assert!(e.contains("zip bomb"), "{e}");
    // Gzip bomb.
    let e = refused(
        "bomb.tar.gz",
        &testkit::gzip(&testkit::tar(&good(vec![(
            "big.sbn".into(),
            vec![0u8; 64 << 20],
        )]))),
    );
    assert!(e.contains("zip bomb"), "{e}");

    // Traversal, absolute paths, links.
    let e = refused(
        "dotdot.zip",
        &testkit::zip(&good(vec![("../../etc/x.sbn".into(), vec![1])])),
    );
    assert!(e.contains("`..`"), "{e}");
    let e = refused(
        "abs.zip",
        &testkit::zip(&good(vec![("/etc/x.sbn".into(), vec![1])])),
    );
    assert!(e.contains("absolute path"), "{e}");
    let e = refused(
        "dotdot.tar",
        &testkit::tar_raw("../x.sbn", tar::EntryType::Regular, "", b"x"),
    );
    assert!(e.contains("`..`"), "{e}");
    let e = refused(
        "abs.tar",
        &testkit::tar_raw("/etc/x.sbn", tar::EntryType::Regular, "", b"x"),
    );
    assert!(e.contains("absolute path"), "{e}");
    let e = refused(
        "sym.tar",
        &testkit::tar_raw("x.sbn", tar::EntryType::Symlink, "/etc/shadow", b""),
    );
    assert!(e.contains("links"), "{e}");
    let e = refused(
        "hard.tar",
        &testkit::tar_raw("x.sbn", tar::EntryType::Link, "y.sbn", b""),
    );
    assert!(e.contains("links"), "{e}");

    // A name phones cannot request.
    let e = refused(
        "space.zip",
        &testkit::zip(&good(vec![("bad name.sbn".into(), vec![1])])),
    );
    assert!(e.contains("not a name a phone can request"), "{e}");

    // Duplicate name, different contents (case-insensitive, as served).
    let e = refused(
        "dup.zip",
        &testkit::zip(&good(vec![("a/CNU45.9-4-2SR4-3.SBN".into(), vec![9])])),
    );
    assert!(e.contains("twice with different contents"), "{e}");

    // A manifest naming 10,000 files.
    let many: Vec<String> = (0..10_000).map(|i| format!("img{i}.sbn")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let body = testkit::release_body("1", &refs);
    let e = refused(
        "many.zip",
        &testkit::zip(&[(
            "SCCP45.1S.loads".into(),
            testkit::signed("SCCP45.1S.loads", body.as_bytes()),
        )]),
    );
    assert!(e.contains("more than 256 files"), "{e}");

    // Manifest naming files the package lacks.
    let mut short = set.clone();
    short.pop();
    let e = refused("short.zip", &testkit::zip(&short));
    assert!(e.contains("cvm45sccp.9-4-2SR4-3.sbn is missing"), "{e}");

    // Truncated packages.
    let z = testkit::zip(&set);
    let e = refused("trunc.zip", &z[..z.len() - 30]);
    assert!(e.contains("truncated"), "{e}");
    let t = testkit::tar(&set);
    let e = refused("trunc.tar", &t[..t.len() / 2]);
    assert!(e.contains("truncated"), "{e}");
    let g = testkit::gzip(&t);
    let e = refused("trunc.tar.gz", &g[..g.len() - 10]);
    assert!(e.contains("truncated"), "{e}");
    let c = testkit::cop("t.cop.sgn", &set);
    let e = refused("t.cop.sgn", &c[..c.len() - 10]);
    assert!(e.contains("truncated"), "{e}");
    let e = refused("t.cop.sgn", &c[..200]);
    assert!(e.contains("not a Cisco package"), "{e}");

    // Not a Cisco package at all.
    let e = refused(
        "notes.zip",
        &testkit::zip(&[("readme.md".into(), b"hi".to_vec())]),
    );
    assert!(e.contains("not a Cisco package"), "{e}");
    let e = refused("photo.jpg", b"\xff\xd8\xff\xe0 jpeg");
    assert!(e.contains("not a Cisco package"), "{e}");
    let e = refused(
        "scripts.tar",
        &testkit::tar(&[("install.sh".into(), b"x".to_vec())]),
    );
    assert!(e.contains("not a Cisco package"), "{e}");

    // Too many entries.
    let lots: Vec<(String, Vec<u8>)> = (0..5000).map(|i| (format!("f{i}.txt"), vec![])).collect();
    let e = refused("lots.zip", &testkit::zip(&lots));
    assert!(e.contains("more than 4096 entries"), "{e}");
}

#[test]
fn locale_cop_with_nested_tar_lands_in_its_directories() {
    let inner = testkit::tar(&[
        (
            "usr/local/cm/tftp/english_united_kingdom/be-sccp.jar".into(),
            b"jar".to_vec(),
        ),
        (
            "usr/local/cm/tftp/english_united_kingdom/7960-dictionary.xml".into(),
            b"<d/>".to_vec(),
        ),
        (
            "usr/local/cm/tftp/united_kingdom/g3-tones.xml".into(),
            b"<t/>".to_vec(),
        ),
    ]);
    let cop = testkit::cop(
        "po-locale-en_GB-k3-14.0.1.1000-1.cop.sgn",
        &[
            ("locale.tar".into(), inner),
            ("install.sh".into(), b"x".to_vec()),
        ],
    );
    let (_d, l) = lib();
    let pkg = read("po-locale-en_GB-k3-14.0.1.1000-1.cop.sgn", &cop).expect("read");
    assert!(pkg.is_locale());
    let rep = l.import(&pkg, false).expect("import");
    assert_eq!(rep.locales, ["english_united_kingdom", "united_kingdom"]);
    let locs = l.locales().expect("list");
    assert_eq!(locs.len(), 2);
    assert_eq!(locs[0].files, ["7960-dictionary.xml", "be-sccp.jar"]);
    assert_eq!(
        std::fs::read(
            l.find("United_Kingdom/G3-TONES.XML")
                .expect("found any case")
        )
        .expect("read"),
        b"<t/>"
    );
}
