//! The independent judge: certutils (`tlvfile`, `sgnfile`, `mkcert`) reads what we build,
//! and we read what it builds.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::time::SystemTime;

use test_support::run_certutils;
use trust::identity::NodeName;
use trust::{ClusterIdentity, PhoneTrust, Reject, Role, SignedFile, TrustList};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn tlvfile_and_sgnfile_accept_our_files() {
    let id = ClusterIdentity::generate("judge", SystemTime::now()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nodes = [NodeName {
        host: "cm1.lab".into(),
    }];
    for (name, bytes) in [
        ("ITLFile.tlv", id.build_itl(&nodes, 1_700_000_000).unwrap()),
        ("CTLFile.tlv", id.build_ctl(&nodes, 1_700_000_000).unwrap()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (ok, out) = run_certutils("tlvfile", &[os("-p"), path.as_os_str()]);
        assert!(ok, "tlvfile {name}: {out}");
        assert!(out.contains("Valid signature"), "tlvfile {name}: {out}");
        assert!(!out.contains("Invalid signature"), "{out}");
        assert!(out.contains("Role:             SAST"), "{out}");
        assert!(out.contains("Role:             CCM+TFTP"), "{out}");
        assert!(out.contains("DNS Name:         cm1.lab"), "{out}");
        assert!(out.contains(&format!("Filename:         {name}")), "{out}");
        if name == "ITLFile.tlv" {
            assert!(out.contains("Signer Version:   1.1"), "{out}");
            assert!(out.contains("Key Algorithm:    EC"), "{out}");
        }
    }
    let payload = b"<?xml version=\"1.0\"?><device/>\n";
    let sgn = dir.path().join("SEP001122334455.cnf.xml.sgn");
    std::fs::write(
        &sgn,
        id.sign_file("SEP001122334455.cnf.xml.sgn", payload, 1_700_000_000)
            .unwrap(),
    )
    .unwrap();
    let cert = dir.path().join("tftp.pem");
    std::fs::write(&cert, id.tftp.cert_pem()).unwrap();
    let (ok, out) = run_certutils(
        "sgnfile",
        &[os("-p"), os("-t"), cert.as_os_str(), sgn.as_os_str()],
    );
    assert!(
        ok && out.contains("Valid signature") && !out.contains("Invalid"),
        "{out}"
    );
    // Signed by the TFTP key, not the SAST key.
    let sast = dir.path().join("sast.pem");
    std::fs::write(&sast, id.sast.cert_pem()).unwrap();
    let (_, out) = run_certutils(
        "sgnfile",
        &[os("-p"), os("-t"), sast.as_os_str(), sgn.as_os_str()],
    );
    assert!(out.contains("Invalid signature"), "{out}");
    // sgnfile -r gives back the payload byte for byte.
    let (ok, out) = run_certutils("sgnfile", &[os("-r"), sgn.as_os_str()]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(dir.path().join("SEP001122334455.cnf.xml")).unwrap(),
        payload
    );
}

/// A trust list made by certutils (as another cluster would hand out) parses and verifies
/// with our code, and a phone holding it refuses our files.
#[test]
fn we_read_a_certutils_itl_and_a_phone_holding_it_refuses_ours() {
    let dir = tempfile::tempdir().unwrap();
    let sast = dir.path().join("sast.pem");
    let tftp = dir.path().join("tftp.pem");
    for (cn, file) in [("foreign-sast", &sast), ("foreign-tftp", &tftp)] {
        let (ok, out) = run_certutils(
            "mkcert",
            &[
                os("-c"),
                os(cn),
                os("-o"),
                os("Elsewhere"),
                os("-u"),
                os("Voice"),
                os("-f"),
                file.as_os_str(),
            ],
        );
        assert!(ok, "mkcert: {out}");
    }
    let itl = dir.path().join("ITLFile.tlv");
    let (ok, out) = run_certutils(
        "tlvfile",
        &[
            os("-b"),
            os("-s"),
            sast.as_os_str(),
            os("-C"),
            tftp.as_os_str(),
            itl.as_os_str(),
        ],
    );
    assert!(ok, "tlvfile -b: {out}");
    let bytes = std::fs::read(&itl).unwrap();
    let list = TrustList::parse(&bytes).unwrap();
    list.verify(&bytes).unwrap();
    assert_eq!(list.records.len(), 2);
    assert_eq!(list.records[1].role, Some(Role::CcmTftp));
    assert!(
        list.records[0].subject.contains("CN=foreign-sast"),
        "{:?}",
        list.records[0]
    );

    // sgnfile-built file signed by the foreign TFTP key: a phone holding that ITL takes it.
    let cfg = dir.path().join("SEPAABBCCDDEEFF.cnf.xml");
    std::fs::write(&cfg, b"<device/>").unwrap();
    let (ok, out) = run_certutils(
        "sgnfile",
        &[os("-b"), os("-t"), tftp.as_os_str(), cfg.as_os_str()],
    );
    assert!(ok, "sgnfile -b: {out}");
    let their_sgn = std::fs::read(dir.path().join("SEPAABBCCDDEEFF.cnf.xml.sgn")).unwrap();
    let phone = PhoneTrust::holding(&bytes).unwrap();
    assert_eq!(phone.check_signed(&their_sgn).unwrap(), b"<device/>");
    assert!(SignedFile::parse(&their_sgn).is_ok());

    // Ours: refused, in words.
    let ours = ClusterIdentity::generate("ours", SystemTime::now()).unwrap();
    let mut phone = phone;
    let e = phone
        .offer_itl(&ours.build_itl(&[], 1).unwrap())
        .unwrap_err();
    assert!(matches!(e, Reject::NotVouched { .. }), "{e}");
    let e = phone
        .check_signed(
            &ours
                .sign_file("SEPAABBCCDDEEFF.cnf.xml.sgn", b"<device/>", 1)
                .unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, Reject::UnknownSigner { .. }), "{e}");
}
