//! Trust files over the wire: a running `phoneboot serve` (loopback) hands out ITLFile.tlv,
//! ITLSEP<MAC>.tlv, CTL files in mixed mode and SEP<MAC>.cnf.xml.sgn over HTTP 6970 (curl)
//! and TFTP (tftp-hpa), and certutils' `tlvfile`/`sgnfile` parse and verify every one. The
//! identity is made once on first start and survives a restart; `security show` lists it;
//! a node change rebuilds the lists; unknown MACs and damaged key stores get clean answers.

#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::{run_certutils, KillOnDrop};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

struct Node {
    dir: tempfile::TempDir,
    http: u16,
    tftp: u16,
    cfg: PathBuf,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, tftp, admin) = (free_tcp(), free_udp(), free_tcp());
        let d = dir.path();
        std::fs::create_dir(d.join("tftp")).expect("tftp root");
        let cfg = d.join("server.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"[node]
name = "trust-test"
address = "127.0.0.1"
database = "{db}"
tftp_root = "{root}"
[admin]
listen = "127.0.0.1:{admin}"
[discovery]
run = false
[dhcp]
enabled = false
[files]
tftp_listen = "127.0.0.1:{tftp}"
http_listen = "127.0.0.1:{http}"
[sccp]
enabled = false
[sip]
enabled = false
"#,
                db = d.join("pb.db").display(),
                root = d.join("tftp").display(),
            ),
        )
        .expect("config");
        Node {
            dir,
            http,
            tftp,
            cfg,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("pb.db")
    }

    fn cli(&self, args: &[&str]) -> Output {
        let o = Command::new(bin())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .expect("phoneboot runs");
        o
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "phoneboot {args:?}: {text}");
        text
    }

    fn serve(&self) -> KillOnDrop {
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&self.cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let mut k = KillOnDrop::new(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.http)).is_err() {
            if let Ok(Some(st)) = k.child().try_wait() {
                let mut err = String::new();
                if let Some(mut e) = k.child().stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("serve exited ({st}): {err}");
            }
            assert!(Instant::now() < deadline, "HTTP 6970 never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
        k
    }

    /// GET over HTTP with curl: (status, body saved at `to`).
    fn http_get(&self, name: &str, to: &Path) -> u16 {
        let o = Command::new("curl")
            .args(["-s", "-o"])
            .arg(to)
            .args(["-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{}/{name}", self.http))
            .output()
            .expect("curl is needed (scripts/install-deps --test)");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// GET over TFTP with tftp-hpa; true when the file arrived.
    fn tftp_get(&self, name: &str, to: &Path) -> bool {
        let o = Command::new("tftp")
            .args([
                "-m",
                "binary",
                "127.0.0.1",
                &self.tftp.to_string(),
                "-c",
                "get",
                name,
            ])
            .arg(to)
            .output()
            .expect("tftp-hpa is needed (scripts/install-deps --test)");
        let err =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        o.status.success() && !err.contains("Error") && to.exists()
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn tlv_ok(path: &Path) -> String {
    let (ok, out) = run_certutils("tlvfile", &[os("-p"), path.as_os_str()]);
    assert!(ok, "tlvfile {}: {out}", path.display());
    assert!(
        out.contains("Valid signature") && !out.contains("Invalid signature"),
        "tlvfile {}: {out}",
        path.display()
    );
    out
}

fn sgn_ok(path: &Path, cert: &Path) -> String {
    let (ok, out) = run_certutils(
        "sgnfile",
        &[os("-p"), os("-t"), cert.as_os_str(), path.as_os_str()],
    );
    assert!(ok, "sgnfile {}: {out}", path.display());
    assert!(
        out.contains("Valid signature") && !out.contains("Invalid signature"),
        "sgnfile {}: {out}",
        path.display()
    );
    out
}

#[test]
fn certutils_verifies_every_trust_file_served_over_http_and_tftp() {
    let node = Node::new();
    let out = node.dir.path().join("got");
    std::fs::create_dir(&out).unwrap();
    node.cli_ok(&["line", "add", "4101", "--label", "Alice"]);
    node.cli_ok(&[
        "phone",
        "add",
        "001B54AA0001",
        "--model",
        "Cisco 7965",
        "--protocol",
        "SCCP",
        "--line",
        "4101",
    ]);
    node.cli_ok(&["node", "set", "cm-a", "127.0.0.1"]);
    let text = node.cli_ok(&["security", "show"]);
    assert!(text.contains("no cluster identity yet"), "{text}");

    let mut serve = node.serve();

    // The identity exists now; show names each certificate, never a key.
    let show = node.cli_ok(&["security", "show"]);
    for want in [
        "sast:",
        "tftp:",
        "https:",
        "CN=trust-test-SAST",
        "RSA 2048",
        "EC P-256",
        "SHA-1:",
        "valid:",
    ] {
        assert!(show.contains(want), "{want} missing: {show}");
    }
    assert!(!show.contains("PRIVATE"), "{show}");
    let sha1_before: Vec<String> = show
        .lines()
        .filter(|l| l.contains("SHA-1:"))
        .map(str::to_string)
        .collect();

    // The TFTP certificate, as an admin would export it for sgnfile -t.
    let o = node.cli_ok(&["security", "show", "--json"]);
    assert!(o.lines().count() >= 3, "{o}");

    // Over HTTP 6970.
    let itl = out.join("ITLFile.tlv");
    assert_eq!(node.http_get("ITLFile.tlv", &itl), 200);
    let parsed = tlv_ok(&itl);
    assert!(parsed.contains("Role:             SAST"), "{parsed}");
    assert!(parsed.contains("Role:             CCM+TFTP"), "{parsed}");
    assert!(parsed.contains("DNS Name:         127.0.0.1"), "{parsed}");
    assert!(parsed.contains("Key Algorithm:    EC"), "{parsed}");
    let per_mac = out.join("ITLSEP001B54AA0001.tlv");
    assert_eq!(node.http_get("ITLSEP001B54AA0001.tlv", &per_mac), 200);
    tlv_ok(&per_mac);
    // Unknown MAC, CTL outside mixed mode, a .sgn of nothing: 404, never a panic.
    let junk = out.join("junk");
    assert_eq!(node.http_get("ITLSEP00000000FFFF.tlv", &junk), 404);
    assert_eq!(node.http_get("CTLFile.tlv", &junk), 404);
    assert_eq!(node.http_get("SEP00000000FFFF.cnf.xml.sgn", &junk), 404);
    assert_eq!(node.http_get("ITLFile.tlv.sgn", &junk), 404);

    // The signed configuration: byte-identical payload, verified with the TFTP certificate
    // taken from the ITL phoneboot served (as a phone would).
    let list = trust::TrustList::parse(&std::fs::read(&itl).unwrap()).unwrap();
    let tftp_rec = list
        .with_role(trust::Role::CcmTftp)
        .next()
        .expect("CCM+TFTP record");
    let tftp_pem = out.join("tftp.pem");
    std::fs::write(
        &tftp_pem,
        trust::identity::cert_pem(&tftp_rec.certificate).unwrap(),
    )
    .unwrap();
    let sgn = out.join("SEP001B54AA0001.cnf.xml.sgn");
    assert_eq!(node.http_get("SEP001B54AA0001.cnf.xml.sgn", &sgn), 200);
    sgn_ok(&sgn, &tftp_pem);
    let plain = out.join("SEP001B54AA0001.cnf.xml");
    assert_eq!(node.http_get("SEP001B54AA0001.cnf.xml", &plain), 200);
    let signed = trust::SignedFile::parse(&std::fs::read(&sgn).unwrap()).unwrap();
    assert_eq!(
        signed.payload,
        std::fs::read(&plain).unwrap(),
        "payload differs from the unsigned file"
    );
    // Other generated files have their .sgn too.
    let xd = out.join("XMLDefault.cnf.xml.sgn");
    assert_eq!(node.http_get("XMLDefault.cnf.xml.sgn", &xd), 200);
    sgn_ok(&xd, &tftp_pem);

    // Over TFTP (tftp-hpa).
    let t_itl = out.join("tftp-ITLFile.tlv");
    assert!(node.tftp_get("ITLFile.tlv", &t_itl), "TFTP ITLFile.tlv");
    tlv_ok(&t_itl);
    let t_sgn = out.join("tftp-SEP.cnf.xml.sgn");
    assert!(
        node.tftp_get("SEP001B54AA0001.cnf.xml.sgn", &t_sgn),
        "TFTP .sgn"
    );
    sgn_ok(&t_sgn, &tftp_pem);

    // Mixed mode and a node change: the server rebuilds the lists within a few seconds.
    node.cli_ok(&["security", "mixed-mode", "on"]);
    node.cli_ok(&["node", "set", "cm-b", "cm-b.example"]);
    let ctl = out.join("CTLFile.tlv");
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.http_get("CTLFile.tlv", &ctl) != 200 {
        assert!(
            Instant::now() < deadline,
            "CTLFile.tlv never appeared in mixed mode"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let parsed = tlv_ok(&ctl);
    assert!(parsed.contains("Filename:         CTLFile.tlv"), "{parsed}");
    let ctl_mac = out.join("CTLSEP001B54AA0001.tlv");
    assert_eq!(node.http_get("CTLSEP001B54AA0001.tlv", &ctl_mac), 200);
    tlv_ok(&ctl_mac);
    let itl2 = out.join("ITLFile2.tlv");
    assert_eq!(node.http_get("ITLFile.tlv", &itl2), 200);
    let parsed = tlv_ok(&itl2);
    assert!(
        parsed.contains("DNS Name:         cm-b.example"),
        "node change not in the ITL: {parsed}"
    );

    // Made once: a restart keeps the same identity.
    drop(serve);
    serve = node.serve();
    let show = node.cli_ok(&["security", "show"]);
    let sha1_after: Vec<String> = show
        .lines()
        .filter(|l| l.contains("SHA-1:"))
        .map(str::to_string)
        .collect();
    assert_eq!(sha1_before, sha1_after);
    drop(serve);

    // A damaged key store: serve refuses to start with a clear error, show says so too.
    corrupt_identity(&node.db());
    let o = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&node.cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "serve started with a damaged identity");
    assert!(err.contains("cluster identity is unreadable"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let o = node.cli(&["security", "show"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("unreadable"), "{err}");
    // The documented way out: reset, and the next start makes a new identity.
    node.cli_ok(&["security", "reset", "--yes"]);
    let _serve = node.serve();
    let show = node.cli_ok(&["security", "show"]);
    assert!(show.contains("sast:"), "{show}");

    // Importing an admin's own certificate: an expired one, a key that is not the
    // certificate's, or an EC key for the signing role are refused naming the problem;
    // a good one replaces the role's identity and shows up.
    let day = Duration::from_secs(86_400);
    let old = std::time::SystemTime::now() - day * 400;
    let expired = trust::Identity::generate_rsa("old-tftp", "Admin", old, 30).unwrap();
    let good =
        trust::Identity::generate_rsa("admin-tftp", "Admin", std::time::SystemTime::now(), 365)
            .unwrap();
    let ec = trust::Identity::generate_ec("admin-ec", "Admin", std::time::SystemTime::now(), 365)
        .unwrap();
    let w = |n: &str, t: String| {
        let p = out.join(n);
        std::fs::write(&p, t).unwrap();
        p.display().to_string()
    };
    let (exp_c, exp_k) = (
        w("exp.crt", expired.cert_pem()),
        w("exp.key", expired.key_pem().unwrap()),
    );
    let (good_c, good_k) = (
        w("good.crt", good.cert_pem()),
        w("good.key", good.key_pem().unwrap()),
    );
    let (ec_c, ec_k) = (
        w("ec.crt", ec.cert_pem()),
        w("ec.key", ec.key_pem().unwrap()),
    );
    let refused = |args: &[&str], want: &str| {
        let o = node.cli(args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    refused(
        &[
            "security", "import", "--role", "tftp", "--cert", &exp_c, "--key", &exp_k,
        ],
        "expired",
    );
    refused(
        &[
            "security", "import", "--role", "tftp", "--cert", &good_c, "--key", &exp_k,
        ],
        "do not belong together",
    );
    refused(
        &[
            "security", "import", "--role", "sast", "--cert", &ec_c, "--key", &ec_k,
        ],
        "needs an RSA key",
    );
    refused(
        &[
            "security", "import", "--role", "tftp", "--cert", &good_k, "--key", &good_k,
        ],
        "--cert",
    );
    node.cli_ok(&[
        "security", "import", "--role", "tftp", "--cert", &good_c, "--key", &good_k,
    ]);
    let show = node.cli_ok(&["security", "show"]);
    assert!(show.contains("CN=admin-tftp"), "{show}");
    // The running server re-signs with the imported key.
    let deadline = Instant::now() + Duration::from_secs(15);
    let good_pem = out.join("good.crt");
    loop {
        let sgn = out.join("after-import.sgn");
        assert_eq!(node.http_get("SEP001B54AA0001.cnf.xml.sgn", &sgn), 200);
        let (_, text) = run_certutils(
            "sgnfile",
            &[os("-p"), os("-t"), good_pem.as_os_str(), sgn.as_os_str()],
        );
        if text.contains("Valid signature") && !text.contains("Invalid") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not re-signed with the imported key: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Overwrites the stored identity blob with truncated bytes, as a damaged disk would.
fn corrupt_identity(db: &Path) {
    let store = provision::store::SqliteStore::open(db).expect("db opens");
    use provision::store::Store;
    let blob = store
        .blob(provision::trust::IDENTITY_BLOB)
        .unwrap()
        .expect("identity stored");
    store
        .put_blob(
            provision::trust::IDENTITY_BLOB,
            Some(&blob[..blob.len() / 3]),
        )
        .unwrap();
}
