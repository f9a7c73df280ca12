//! The CLI's login and the restart-surviving settings, against `phoneboot serve` in a lab:
//!
//! - `phoneboot login` gets an API token, stores it in a 0600 file under
//!   `$XDG_CONFIG_HOME/phoneboot`, and later commands send it (a wrong token is refused even
//!   on the server's own host, the stored one is accepted); the token also opens the REST API;
//! - auto-registration settings changed through the API survive a real restart of the server
//!   with an unchanged configuration file (the file seeds them only when its section changes).
//!
//! Needs root and the lab's packages (Open vSwitch, iproute2).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use test_support::webdriver::http;
use test_support::LabGuard;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

fn phoneboot(xdg: &std::path::Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .env_remove("PHONEBOOT_TOKEN")
        .env_remove("PHONEBOOT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cli_login_token_and_api_settings_surviving_a_restart() {
    let lab = LabGuard::new().expect("lab up");
    lab.serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("phoneboot serve starts in the lab");
    let url = lab.admin_url().unwrap();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let password = lab.admin_password().unwrap().to_string();
    let xdg = tempfile::tempdir().unwrap();
    let file = xdg.path().join("phoneboot/tokens.json");

    // A wrong password: refused, nothing stored.
    let o = phoneboot(
        xdg.path(),
        &[
            "--server",
            &url,
            "login",
            "--user",
            "admin",
            "--password",
            "not the password",
        ],
        "",
        &[],
    );
    assert!(!o.status.success());
    assert!(
        all(&o).contains("wrong user name or password"),
        "{}",
        all(&o)
    );
    assert!(!file.exists());

    // The right one, read from standard input (not a terminal).
    let o = phoneboot(
        xdg.path(),
        &["--server", &url, "login"],
        &format!("{password}\n"),
        &[],
    );
    assert!(o.status.success(), "{}", all(&o));
    assert!(all(&o).contains("as admin (admin)"), "{}", all(&o));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = stored[&url].as_str().unwrap().to_string();
    assert!(token.starts_with("pbt_"), "{stored}");

    // The CLI sends a token: a wrong one is refused even on the server's own host...
    let o = phoneboot(
        xdg.path(),
        &["--server", &url, "reset", "SEP001B54000001"],
        "",
        &[("PHONEBOOT_TOKEN", "pbt_0000")],
    );
    assert!(!o.status.success());
    assert!(
        all(&o).contains("unknown or revoked API token"),
        "{}",
        all(&o)
    );
    // ...the stored one is accepted (the phone is simply not registered).
    let o = phoneboot(
        xdg.path(),
        &["--server", &url, "reset", "SEP001B54000001"],
        "",
        &[],
    );
    assert!(all(&o).contains("not registered"), "{}", all(&o));
    let o = phoneboot(xdg.path(), &["--server", &url, "power", "inline"], "", &[]);
    assert!(o.status.success(), "{}", all(&o));

    // The token opens the REST API too: turn auto-registration off there.
    let bearer = format!("Bearer {token}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = http(addr, "GET", "/api/auto-registration", &auth, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut ar = r.json();
    assert_eq!(ar["enabled"], true, "the lab's file enables it: {ar}");
    ar["enabled"] = false.into();
    let r = http(
        addr,
        "PUT",
        "/api/auto-registration",
        &auth,
        ar.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // The REST API over the real backend: CSV import is all rows or none, the error names
    // the row and field; export, leases, registrations, neighbours, files, OpenAPI, metrics.
    let csv = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "text/csv"),
    ];
    let r = http(
        addr,
        "POST",
        "/api/import",
        &csv,
        b"MAC ADDRESS,DEVICE TYPE,DEVICE PROTOCOL,DIRECTORY NUMBER 1\n001B54E3E001,Cisco 8845,SIP,4901\nzz,Cisco 8845,SIP,4902\n",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .contains("mac"),
        "{}",
        r.text()
    );
    let r = http(addr, "GET", "/api/devices/SEP001B54E3E001", &auth, b"");
    assert_eq!(
        r.status,
        404,
        "a failed import changes nothing: {}",
        r.text()
    );
    let r = http(
        addr,
        "POST",
        "/api/import",
        &csv,
        b"MAC ADDRESS,DEVICE TYPE,DEVICE PROTOCOL,DIRECTORY NUMBER 1\n001B54E3E001,Cisco 8845,SIP,4901\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http(addr, "GET", "/api/export", &auth, b"");
    assert!(
        r.text().contains("001B54E3E001,,Cisco 8845,SIP"),
        "{}",
        r.text()
    );
    let r = http(
        addr,
        "GET",
        "/api/devices/SEP001B54E3E001/files",
        &auth,
        b"",
    );
    assert!(r.text().contains("SEP001B54E3E001.cnf.xml"), "{}", r.text());
    for path in [
        "/api/leases",
        "/api/registrations",
        "/api/neighbours",
        "/api/dhcp-pools",
        "/api/journal",
        "/api/openapi.json",
    ] {
        let r = http(addr, "GET", path, &auth, b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = http(
        addr,
        "POST",
        "/api/devices",
        &auth,
        br#"{"mac": "001B54E3E002", "model": "CP-8845", "device_pool": "Default", "lines": [{"dn": "49x1"}]}"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    // Named as the API (and the UI form) names it.
    assert_eq!(r.json()["error"]["field"], "lines[0].dn", "{}", r.text());
    let big = vec![b'x'; 3 << 20];
    let r = http(addr, "POST", "/api/devices", &auth, &big);
    assert_eq!(r.status, 413, "oversized body: {}", r.text());
    let r = http(addr, "GET", "/metrics", &auth, b"");
    for name in [
        "phoneboot_registered_phones",
        "phoneboot_dhcp_leases",
        "phoneboot_provisioned_devices",
        "phoneboot_uptime_seconds",
        "phoneboot_neighbours",
    ] {
        assert!(
            r.text().contains(name),
            "metrics lack {name}:\n{}",
            r.text()
        );
    }
    // The shipped Grafana dashboard only plots series this node exposes.
    let used = dashboard_metrics();
    assert!(used.len() >= 15, "dashboard uses too few metrics: {used:?}");
    for name in &used {
        assert!(
            r.text().lines().any(|l| l
                .strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))),
            "the Grafana dashboard plots {name}, which /metrics does not expose:\n{}",
            r.text()
        );
    }

    // A real restart with the same configuration file: the API's setting stays.
    lab.stop_server().unwrap();
    lab.serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("phoneboot serve restarts");
    let r = http(addr, "GET", "/api/auto-registration", &auth, b"");
    assert_eq!(r.status, 200, "the token survives a restart: {}", r.text());
    assert_eq!(
        r.json()["enabled"],
        false,
        "overwritten by the file: {}",
        r.text()
    );
    assert!(lab.database_path().with_extension("seed").exists());

    // Logging out forgets the token.
    let o = phoneboot(xdg.path(), &["--server", &url, "logout"], "", &[]);
    assert!(o.status.success(), "{}", all(&o));
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(stored.get(&url).is_none());
}

/// Every metric name the Grafana dashboard (packaging/grafana-dashboard.json) queries.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("packaging/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut names = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("phoneboot_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names
}
