//! Build -> parse -> verify round trips, the phone's rules, and damaged input.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::SystemTime;

use proptest::prelude::*;
use trust::identity::NodeName;
use trust::phone::ItlOutcome;
use trust::{ClusterIdentity, HashAlg, PhoneTrust, Reject, Role, SignedFile, TrustList};

/// RSA key generation costs a second or so: one identity (and one foreign one) per process.
fn cluster() -> &'static ClusterIdentity {
    static C: OnceLock<ClusterIdentity> = OnceLock::new();
    C.get_or_init(|| ClusterIdentity::generate("phoneboot-test", SystemTime::now()).unwrap())
}

fn foreign() -> &'static ClusterIdentity {
    static C: OnceLock<ClusterIdentity> = OnceLock::new();
    C.get_or_init(|| ClusterIdentity::generate("other-cluster", SystemTime::now()).unwrap())
}

fn nodes() -> Vec<NodeName> {
    vec![
        NodeName {
            host: "cm1.example".into(),
        },
        NodeName {
            host: "10.0.0.2".into(),
        },
    ]
}

#[test]
fn itl_parses_lists_records_and_verifies() {
    let id = cluster();
    let bytes = id.build_itl(&nodes(), 1_700_000_000).unwrap();
    let list = TrustList::parse(&bytes).unwrap();
    assert_eq!(
        list.header.length % 4,
        0,
        "padding keeps the header at a multiple of 4"
    );
    assert_eq!(list.header.version, (1, 2));
    assert_eq!(list.header.signer_version, Some((1, 1)));
    assert_eq!(list.header.filename, "ITLFile.tlv");
    assert_eq!(list.header.timestamp, 1_700_000_000);
    assert_eq!(list.header.signature.len(), 256);
    let roles: Vec<Role> = list.records.iter().filter_map(|r| r.role).collect();
    assert_eq!(
        roles,
        vec![Role::Sast, Role::CcmTftp, Role::CcmTftp, Role::Tftp]
    );
    let dns: Vec<_> = list
        .records
        .iter()
        .filter_map(|r| r.dns_name.clone())
        .collect();
    assert_eq!(dns, vec!["cm1.example", "10.0.0.2"]);
    assert!(list.records[0].subject.contains("CN=phoneboot-test-SAST"));
    list.verify(&bytes).unwrap();
    // One flipped byte anywhere in a record breaks the signature.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    let parsed = TrustList::parse(&bad).unwrap();
    assert!(parsed.verify(&bad).is_err());
}

#[test]
fn sgn_keeps_the_payload_and_verifies_with_the_tftp_key() {
    let id = cluster();
    let payload = b"<device><fullConfig>true</fullConfig></device>\n";
    let bytes = id
        .sign_file("SEP001122334455.cnf.xml.sgn", payload, 1_700_000_000)
        .unwrap();
    let f = SignedFile::parse(&bytes).unwrap();
    assert_eq!(f.payload, payload);
    assert_eq!(f.header.filename, "SEP001122334455.cnf.xml.sgn");
    assert_eq!(f.header.version, (1, 0));
    assert_eq!(f.header.hash, HashAlg::Sha1);
    let itl = TrustList::parse(&id.build_itl(&[], 0).unwrap()).unwrap();
    let tftp = itl.with_role(Role::CcmTftp).next().unwrap();
    f.verify(&bytes, &tftp.rsa_key().unwrap()).unwrap();
    let sast = itl.signer_record().unwrap();
    assert!(f.verify(&bytes, &sast.rsa_key().unwrap()).is_err());
}

#[test]
fn phone_installs_first_itl_then_requires_signed_config() {
    let id = cluster();
    let itl = id.build_itl(&nodes(), 1).unwrap();
    let mut phone = PhoneTrust::default();
    assert_eq!(phone.offer_itl(&itl).unwrap(), ItlOutcome::Installed);
    assert_eq!(phone.offer_itl(&itl).unwrap(), ItlOutcome::Unchanged);
    let cfg = b"<device/>";
    let sgn = id.sign_file("SEPAABBCCDDEEFF.cnf.xml.sgn", cfg, 1).unwrap();
    assert_eq!(phone.check_signed(&sgn).unwrap(), cfg);
    assert!(matches!(phone.check_signed(cfg), Err(Reject::Unsigned(_))));
    let other = foreign()
        .sign_file("SEPAABBCCDDEEFF.cnf.xml.sgn", cfg, 1)
        .unwrap();
    let e = phone.check_signed(&other).unwrap_err();
    assert!(matches!(e, Reject::UnknownSigner { .. }), "{e}");
    assert!(e.to_string().contains("other-cluster-TFTP"));
    // A list from another cluster is not vouched for.
    let foreign_itl = foreign().build_itl(&[], 2).unwrap();
    let e = phone.offer_itl(&foreign_itl).unwrap_err();
    assert!(matches!(e, Reject::NotVouched { .. }), "{e}");
    // Still holding ours.
    assert_eq!(phone.list_bytes(), Some(itl.as_slice()));
}

#[test]
fn rotation_is_vouched_for_by_the_old_sast() {
    let old = cluster();
    let mut phone = PhoneTrust::holding(&old.build_itl(&[], 1).unwrap()).unwrap();
    let mut new = old.rotate("phoneboot-test", SystemTime::now()).unwrap();
    let rollover = new.build_itl(&[], 2).unwrap();
    let list = TrustList::parse(&rollover).unwrap();
    assert_eq!(list.with_role(Role::Sast).count(), 2, "old and new SAST");
    list.verify(&rollover).unwrap();
    assert_eq!(phone.offer_itl(&rollover).unwrap(), ItlOutcome::Updated);
    // Configuration is now signed by the new TFTP key, which the rollover list carries.
    let sgn = new.sign_file("SEP.cnf.xml.sgn", b"x", 2).unwrap();
    assert_eq!(phone.check_signed(&sgn).unwrap(), b"x");
    // After the rollover ends, the new SAST alone signs; the phone took the rollover list,
    // so it accepts that too.
    new.finish_rotation();
    let after = new.build_itl(&[], 3).unwrap();
    assert_eq!(phone.offer_itl(&after).unwrap(), ItlOutcome::Updated);
    // A phone that never saw the rollover list refuses the final one.
    let mut stale = PhoneTrust::holding(&old.build_itl(&[], 1).unwrap()).unwrap();
    assert!(matches!(
        stale.offer_itl(&after),
        Err(Reject::NotVouched { .. })
    ));
}

#[test]
fn blob_round_trip_and_corruption() {
    let id = cluster();
    let blob = id.to_blob().unwrap();
    let back = ClusterIdentity::from_blob(&blob).unwrap();
    assert_eq!(back.sast.cert_der(), id.sast.cert_der());
    assert_eq!(back.https.cert_der(), id.https.cert_der());
    assert_eq!(back.tftp.key_pem().unwrap(), id.tftp.key_pem().unwrap());
    // Truncated, garbage, a key swapped for another: clear errors, never a panic.
    for bad in [
        &blob[..blob.len() / 2],
        b"\x00\x01garbage".as_slice(),
        b"{}",
    ] {
        let e = ClusterIdentity::from_blob(bad).unwrap_err();
        assert!(e.to_string().contains("unreadable"), "{e}");
    }
    let swapped = String::from_utf8(blob.clone()).unwrap().replacen(
        &serde_json_escape(&id.tftp.key_pem().unwrap()),
        &serde_json_escape(&id.sast.key_pem().unwrap()),
        1,
    );
    let e = ClusterIdentity::from_blob(swapped.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("do not belong together"), "{e}");
    // Debug never shows key material.
    let dbg = format!("{id:?}");
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
}

fn serde_json_escape(s: &str) -> String {
    s.replace('\n', "\\n")
}

#[test]
fn show_lists_subjects_fingerprints_and_expiry() {
    let id = cluster();
    let certs = id.certificates();
    assert_eq!(certs.len(), 3);
    let (_, sast) = &certs[0];
    assert_eq!(sast.key, "RSA 2048");
    assert_eq!(sast.sha1.len(), 59);
    assert!(sast.valid_at(SystemTime::now()));
    assert!(sast.not_after > sast.not_before + 3600 * 24 * 365 * 9);
    assert_eq!(certs[2].1.key, "EC P-256");
}

#[test]
fn truncations_never_panic() {
    let id = cluster();
    let itl = id.build_itl(&nodes(), 5).unwrap();
    for n in 0..itl.len() {
        let _ = TrustList::parse(&itl[..n]).map(|l| l.verify(&itl[..n]));
        let _ = SignedFile::parse(&itl[..n]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sgn_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..3000), ts in any::<u32>()) {
        let id = cluster();
        let bytes = id.sign_file("X.sgn", &payload, ts).unwrap();
        let f = SignedFile::parse(&bytes).unwrap();
        prop_assert_eq!(&f.payload, &payload);
        prop_assert_eq!(f.header.timestamp, ts);
        prop_assert_eq!(f.header.length % 4, 0);
    }

    #[test]
    fn itl_round_trip(hosts in proptest::collection::vec("[a-z0-9.-]{1,40}", 0..5), ts in any::<u32>()) {
        let id = cluster();
        let nodes: Vec<NodeName> = hosts.iter().map(|h| NodeName { host: h.clone() }).collect();
        let bytes = id.build_itl(&nodes, ts).unwrap();
        let list = TrustList::parse(&bytes).unwrap();
        list.verify(&bytes).unwrap();
        prop_assert_eq!(list.encode_unsigned(), bytes);
        let got: Vec<String> = list.records.iter().filter_map(|r| r.dns_name.clone()).collect();
        prop_assert_eq!(got, hosts);
    }

    #[test]
    fn parse_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        trust::fuzz_one(&data);
    }
}
