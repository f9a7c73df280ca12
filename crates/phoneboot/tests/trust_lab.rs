//! The emulator enforcing trust against `phoneboot serve` in a lab: a phone with no trust
//! list installs the ITL and registers on the signed configuration; a key rollover keeps a
//! phone holding the old list working (the old SAST vouches for the new list), and after the
//! rollover is finished such a phone is refused with the reason in its timeline; a phone
//! holding a trust list made by certutils for another cluster rejects our configuration, and
//! the boot journal says so in plain words.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::time::Duration;

use test_support::{run_certutils, LabGuard};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

const MAC: &str = "00:1B:54:7E:00:01";
const ITLSEP: &str = "ITLSEP001B547E0001.tlv";

fn boot(lab: &LabGuard, itl: Option<&std::path::Path>) -> (bool, serde_json::Value, String) {
    let mut cmd = lab.sim_boot(bin(), "CP-7965", "SCCP", MAC);
    if let Some(p) = itl {
        cmd.arg("--itl").arg(p);
    }
    let out = cmd.arg("--json").output().expect("sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        v,
        format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn file_detail(report: &serde_json::Value, name: &str) -> String {
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"].as_str() == Some(name))
        .filter_map(|f| f["detail"].as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Lets the server notice a change the CLI made to the database (it polls every 0.5 s).
fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

#[test]
fn emulated_phones_enforce_trust_across_a_rotation_and_against_a_foreign_list() {
    let lab = LabGuard::new().expect("lab up");
    lab.phoneboot(&["line", "add", "4701", "--label", "Trust"]);
    lab.phoneboot(&[
        "phone",
        "add",
        MAC,
        "--model",
        "Cisco 7965",
        "--protocol",
        "SCCP",
        "--line",
        "4701",
    ]);
    lab.serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("phoneboot serve starts in the lab");
    let dir = tempfile::tempdir().unwrap();

    // 1. No trust list: the phone installs ours and registers on the signed file.
    let (ok, r, raw) = boot(&lab, None);
    assert!(ok, "first boot did not register:\n{raw}");
    assert!(
        file_detail(&r, ITLSEP).contains("trust list installed"),
        "{raw}"
    );
    assert_eq!(
        r["config_file"].as_str(),
        Some("SEP001B547E0001.cnf.xml.sgn"),
        "{raw}"
    );

    // The list as it is now: what every phone booted so far holds.
    let old = dir.path().join("old-ITLFile.tlv");
    lab.phoneboot(&["security", "itl", old.to_str().unwrap()]);
    let (ok, r, raw) = boot(&lab, Some(&old));
    assert!(
        ok,
        "a phone holding the current list did not register:\n{raw}"
    );
    // The same list again (byte for byte when served within the same second) or a re-signed
    // copy vouched for by the held SAST: either way the phone keeps trusting it.
    let d = file_detail(&r, ITLSEP);
    assert!(d.contains("accepted") || d.contains("unchanged"), "{raw}");

    // 2. Rollover: new keys; the old SAST signs the new list, so the phone takes it and the
    //    configuration signed by the new TFTP key.
    lab.phoneboot(&["security", "rotate"]);
    settle();
    let (ok, r, raw) = boot(&lab, Some(&old));
    assert!(
        ok,
        "a phone holding the pre-rotation list did not register across the rotation:\n{raw}"
    );
    assert!(
        file_detail(&r, ITLSEP).contains("new trust list accepted"),
        "{raw}"
    );

    // 3. Rollover finished: the new SAST alone signs. A phone that missed the rollover list
    //    keeps its old one and refuses the configuration, saying why.
    lab.phoneboot(&["security", "rotate", "--finish"]);
    settle();
    let (ok, r, raw) = boot(&lab, Some(&old));
    assert!(
        !ok,
        "a phone that never took the rollover list registered:\n{raw}"
    );
    assert_eq!(
        r["failure"]["kind"].as_str(),
        Some("config_untrusted_signer"),
        "{raw}"
    );
    let reason = r["failure"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not vouched for"), "{reason}");
    // A phone with no list (erased) boots again.
    let (ok, _, raw) = boot(&lab, None);
    assert!(
        ok,
        "a phone with an erased trust list did not register:\n{raw}"
    );

    // 4. A trust list from another cluster, made by certutils.
    let sast = dir.path().join("sast.pem");
    let tftp = dir.path().join("tftp.pem");
    for (cn, f) in [("other-sast", &sast), ("other-tftp", &tftp)] {
        let (ok, out) = run_certutils(
            "mkcert",
            &[
                OsStr::new("-c"),
                OsStr::new(cn),
                OsStr::new("-o"),
                OsStr::new("Other"),
                OsStr::new("-u"),
                OsStr::new("Voice"),
                OsStr::new("-f"),
                f.as_os_str(),
            ],
        );
        assert!(ok, "mkcert: {out}");
    }
    let foreign = dir.path().join("ITLFile.tlv");
    let (ok, out) = run_certutils(
        "tlvfile",
        &[
            OsStr::new("-b"),
            OsStr::new("-s"),
            sast.as_os_str(),
            OsStr::new("-C"),
            tftp.as_os_str(),
            foreign.as_os_str(),
        ],
    );
    assert!(ok, "tlvfile -b: {out}");
    let (ok, r, raw) = boot(&lab, Some(&foreign));
    assert!(!ok, "a phone holding a foreign list registered:\n{raw}");
    assert_eq!(
        r["failure"]["kind"].as_str(),
        Some("config_untrusted_signer"),
        "{raw}"
    );
    let reason = r["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("-TFTP")
            && reason.contains("not a TFTP certificate in this phone's trust list")
            && reason.contains("not vouched for"),
        "{reason}"
    );

    // The server's boot journal, once the phone has been quiet for the stall window.
    std::thread::sleep(Duration::from_secs(32));
    let out = lab.phoneboot(&["trace", MAC]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("this phone holds a trust list from another cluster (it asks for .sgn files and rejected the configuration)"),
        "{text}"
    );
}
