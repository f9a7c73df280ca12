//! `phoneboot serve` as the systemd unit runs it: not root, only the capabilities the unit
//! grants (packaging/phoneboot.service: CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_NET_ADMIN,
//! no new privileges). In a lab's server namespace, under uid/gid 65534 through `setpriv`,
//! with its database in a directory that user owns; an unknown emulated phone then gets
//! DHCP (port 67), its files over TFTP (69), auto-registers in the database and registers
//! over SCCP. The lab's CDP/LLDP agent is left out: it runs in the switch's namespace, which
//! only the lab (root) can enter.

use std::os::unix::fs::chown;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use test_support::{Host, KillOnDrop, LabGuard};

const NOBODY: u32 = 65534;
const CAPS: &str = "+net_bind_service,+net_raw,+net_admin";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

/// The lab's server configuration without the discovery agent, its state under `dir`.
fn unprivileged_config(lab: &LabGuard, dir: &Path) -> String {
    let text = std::fs::read_to_string(lab.config_path()).expect("lab server config");
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.starts_with("[discovery") || line.starts_with("[[discovery");
        }
        if skipping {
            continue;
        }
        let line = if line.starts_with("database = ") {
            format!("database = \"{}\"", dir.join("phoneboot.db").display())
        } else if line.starts_with("tftp_root = ") {
            format!("tftp_root = \"{}\"", dir.join("tftp").display())
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn serve_runs_unprivileged_with_the_units_capabilities() {
    let lab = LabGuard::new().expect("lab up");
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path();
    std::fs::create_dir(dir.join("tftp")).expect("tftp root");
    let cfg = unprivileged_config(&lab, dir);
    assert!(!cfg.contains("[discovery"), "{cfg}");
    let cfg_path = dir.join("server.toml");
    std::fs::write(&cfg_path, &cfg).expect("config written");
    for p in [dir, &dir.join("tftp"), &cfg_path] {
        chown(p, Some(NOBODY), Some(NOBODY)).expect("chown to nobody");
    }

    let serve = lab
        .cmd(Host::Server, "setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps=-all,{CAPS}"),
            &format!("--ambient-caps=-all,{CAPS}"),
            &format!("--bounding-set=-all,{CAPS}"),
            "--no-new-privs",
            bin(),
            "serve",
            "--config",
        ])
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    let mut serve = KillOnDrop::new(serve);
    let pid = serve.child().id();
    let log = |serve: &mut KillOnDrop| {
        let _ = serve.child().kill();
        let _ = serve.child().wait();
        let mut err = String::new();
        if let Some(mut e) = serve.child().stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        err
    };

    // The process really is unprivileged: uid 65534 and exactly the unit's capabilities.
    std::thread::sleep(Duration::from_millis(300));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        field("Uid:").iter().all(|u| *u == "65534"),
        "not running as nobody: {status}\n{}",
        log(&mut serve)
    );
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
    let want = (1u64 << 10) | (1 << 12) | (1 << 13);
    let eff = field("CapEff:")
        .first()
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    assert_eq!(eff, Some(want), "effective capabilities: {status}");

    // Every service is up (listeners bound as that user).
    let admin = cfg
        .lines()
        .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
        .and_then(|p| p.trim_end_matches('"').parse::<u16>().ok())
        .expect("admin port in the lab config");
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let out = lab
            .cmd(Host::Server, "curl")
            .args([
                "-sf",
                "-m",
                "2",
                &format!("http://127.0.0.1:{admin}/healthz"),
            ])
            .output()
            .expect("curl runs");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        if Instant::now() > deadline || serve.child().try_wait().ok().flatten().is_some() {
            panic!("serve never became healthy:\n{}", log(&mut serve));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for svc in ["dhcp", "tftp", "http", "sccp", "sip"] {
        assert!(health.contains(svc), "{svc} missing from {health}");
    }

    // An unknown phone boots through it: DHCP, TFTP (XMLDefault), auto-registration, SCCP.
    let out = lab
        .sim_boot(bin(), "CP-7965", "sccp", "00:1b:54:e0:00:01")
        .args(["--voice-vlan", "100", "--no-discovery", "--json"])
        .output()
        .expect("sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let report: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("sim JSON: {e}\n{text}\n{}", log(&mut serve)));
    assert!(
        out.status.success() && report["registered"] == true,
        "the phone did not register:\n{text}\n{}",
        log(&mut serve)
    );
    let files = report["files"].as_array().expect("files");
    assert!(
        files
            .iter()
            // Plain, or signed once the phone installed the cluster's trust list.
            .any(|f| f["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("XMLDefault.cnf.xml"))
                && f["result"] == "ok"),
        "{text}"
    );
    // A client without the broadcast flag (udhcpc, on the voice access port, configuring
    // nothing) is answered by unicast to its new address: the server seeds the ARP entry
    // first, which needs CAP_NET_ADMIN; the entry carries the client's MAC although that
    // address never answered an ARP request.
    let out = lab
        .cmd(Host::Phones, "udhcpc")
        .args([
            "-i",
            "voice0",
            "-n",
            "-q",
            "-f",
            "-s",
            "/bin/true",
            "-t",
            "3",
            "-T",
            "1",
        ])
        .output()
        .expect("udhcpc runs");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let ip = said
        .split_whitespace()
        .skip_while(|w| *w != "lease")
        .nth(2)
        .unwrap_or_else(|| panic!("udhcpc got no lease: {said}\n{}", log(&mut serve)))
        .to_string();
    // (sysfs as the phones namespace sees it.)
    let mac = lab
        .cmd(Host::Phones, "cat")
        .arg("/sys/class/net/voice0/address")
        .output()
        .expect("cat runs");
    let mac = String::from_utf8_lossy(&mac.stdout).to_string();
    assert_eq!(mac.trim().len(), 17, "voice0's MAC: {mac:?}");
    let neigh = lab
        .cmd(Host::Server, "ip")
        .args(["neigh", "show", &ip])
        .output()
        .expect("ip neigh runs");
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(
        neigh.contains(mac.trim()),
        "no ARP entry {ip} -> {} seeded by the server: {neigh:?}\n{}",
        mac.trim(),
        log(&mut serve)
    );

    // The database the unprivileged server wrote is owned by it.
    let meta = std::fs::metadata(dir.join("phoneboot.db")).expect("database created");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), NOBODY);
}
