//! certutils (`shared/peers/certutils`, an independent implementation) judges the COP payload:
//! a synthetic `.cop.sgn` signed by certutils `sgnfile` with a test key from its `mkcert`,
//! stripped by its `stripsgn`, must give the same payload bytes phoneboot's importer reads
//! (and the same files once untarred). Needs python3 with python3-cryptography and openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

use firmware::{package, sgn, testkit, Limits};

fn certutils() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CERTUTILS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../../../shared/peers/certutils"),
            manifest.join("../../../../shared/peers/certutils"),
            PathBuf::from("/work/shared/peers/certutils"),
        ])
        .find(|p| p.join("stripsgn").exists())
        .expect("certutils (shared/peers/certutils) not found: set CERTUTILS=DIR")
}

fn run(dir: &Path, prog: &Path, args: &[&str]) {
    let out = Command::new("python3")
        .arg(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 is required for the certutils peer test");
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        prog.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stripsgn_extracts_the_payload_the_importer_reads() {
    let cu = certutils();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // A test signing key (mkcert is a shell script around openssl).
    let st = Command::new("bash")
        .arg(cu.join("mkcert"))
        .args([
            "-c",
            "phoneboot-test-signer",
            "-o",
            "phoneboot",
            "-u",
            "test",
            "-b",
            "2048",
            "-f",
            "signer.pem",
        ])
        .current_dir(d)
        .output()
        .expect("bash");
    assert!(
        st.status.success(),
        "mkcert: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let set = testkit::sccp45("9-4-2SR4-3", 4000);
    let payload = testkit::gzip(&testkit::tar(&set));
    let name = "cmterm-7945_7965-sccp.9-4-2SR4-3.k3.cop";
    std::fs::write(d.join(name), &payload).expect("write payload");
    // sgnfile signs with SHA-512 and writes NAME.sgn.
    run(
        d,
        &cu.join("sgnfile"),
        &["-b", "-t", "signer.pem", "-d", "sha512", name],
    );
    let signed_name = format!("{name}.sgn");
    let signed = std::fs::read(d.join(&signed_name)).expect("signed file");
    // Our header parser on certutils' header.
    let h = sgn::parse_header(&signed).expect("parse certutils header");
    assert_eq!(h.version, (1, 0));
    assert_eq!(h.hash, Some(firmware::HashAlg::Sha512));
    assert_eq!(h.file_name.as_deref(), Some(signed_name.as_str()));
    assert!(h
        .signer
        .as_deref()
        .unwrap_or("")
        .contains("phoneboot-test-signer"));
    // certutils strips it.
    std::fs::remove_file(d.join(name)).expect("remove unsigned copy");
    run(d, &cu.join("stripsgn"), &[&signed_name]);
    let stripped = std::fs::read(d.join(name)).expect("stripsgn output");
    assert_eq!(stripped, payload, "stripsgn payload = what we signed");
    let (_, at, how) = sgn::locate_gzip_payload(&signed).expect("payload");
    assert_eq!(how, sgn::PayloadFound::HeaderLength);
    assert_eq!(
        &signed[at..],
        stripped.as_slice(),
        "same payload as stripsgn"
    );
    // And the importer reads the same files from it.
    let pkg = package::read(&signed_name, &signed, &Limits::default()).expect("import reads");
    assert_eq!(pkg.files.len(), set.len());
    for (n, data) in &set {
        assert_eq!(&pkg.file(n).expect("member").data, data, "{n}");
    }
}
