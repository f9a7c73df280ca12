//! The whole boot chain in a lab, end to end over real sockets: `phoneboot serve` in the
//! server namespace, emulated phones (`phoneboot sim`) in the phones namespace, the switch in
//! between tagging the voice VLAN. Three provisioned phones of different models and
//! protocols, one unknown phone that auto-registers, and a storm of 1,000 phones.

use std::time::Duration;

use test_support::{Host, LabGuard};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

/// Runs an emulator command with `--json`: success, its report, and all it printed.
fn json_of(mut cmd: std::process::Command) -> (bool, serde_json::Value, String) {
    let out = cmd.arg("--json").output().expect("sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        v,
        format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn lab_with_server() -> LabGuard {
    let lab = LabGuard::new().expect("lab up");
    lab.serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("phoneboot serve starts in the lab");
    lab
}

#[test]
fn provisioned_phones_of_three_families_and_an_unknown_phone_boot_and_register() {
    let lab = lab_with_server();
    lab.phoneboot(&[
        "line",
        "add",
        "4101",
        "--label",
        "Alice",
        "--display",
        "Alice A",
    ]);
    lab.phoneboot(&[
        "line",
        "add",
        "4201",
        "--label",
        "Bob",
        "--auth-user",
        "bob",
        "--auth-password",
        "s3cret",
    ]);
    lab.phoneboot(&[
        "line",
        "add",
        "4301",
        "--label",
        "Carol",
        "--auth-user",
        "carol",
        "--auth-password",
        "pw-carol",
    ]);
    lab.phoneboot(&[
        "phone",
        "add",
        "001B54C00001",
        "--model",
        "Cisco 7965",
        "--protocol",
        "SCCP",
        "--line",
        "4101",
    ]);
    lab.phoneboot(&[
        "phone",
        "add",
        "001B54C00002",
        "--model",
        "Cisco 8845",
        "--protocol",
        "SIP",
        "--line",
        "4201",
    ]);
    lab.phoneboot(&[
        "phone",
        "add",
        "001B54C00003",
        "--model",
        "Cisco 7841",
        "--protocol",
        "SIP",
        "--line",
        "4301",
    ]);
    // A provisioned phone can have a fixed address from DHCP.
    lab.phoneboot(&["phone", "reserve", "SEP001B54C00001", "198.18.100.50"]);
    // The running server picks up the database changes within two seconds.
    std::thread::sleep(Duration::from_millis(2500));

    for (mac, model, proto, want) in [
        (
            "00:1b:54:c0:00:01",
            "CP-7965",
            "sccp",
            "SEP001B54C00001.cnf.xml",
        ),
        (
            "00:1b:54:c0:00:02",
            "CP-8845",
            "sip",
            "SEP001B54C00002.cnf.xml",
        ),
        (
            "00:1b:54:c0:00:03",
            "CP-7841",
            "sip",
            "SEP001B54C00003.cnf.xml",
        ),
        // Not in the database: boots on XMLDefault and auto-registers.
        ("00:1b:54:c0:00:04", "CP-7940", "sccp", "XMLDefault.cnf.xml"),
    ] {
        let (ok, report, raw) = json_of(lab.sim_boot(bin(), model, proto, mac));
        assert!(ok, "{model} {mac} did not register:\n{raw}");
        let text = report.to_string();
        assert!(text.contains(want), "{model} did not fetch {want}:\n{raw}");
        if mac.ends_with(":01") {
            assert!(
                text.contains("198.18.100.50"),
                "reserved address not leased:\n{raw}"
            );
        }
        assert!(
            text.contains("198.18.100.1"),
            "{model}: option 150 / CallManager missing:\n{raw}"
        );
        assert!(
            text.to_ascii_lowercase().contains("vlan"),
            "{model}: no voice VLAN step:\n{raw}"
        );
    }

    // The unknown phone is now a device with a DN from the auto-registration range.
    let list = String::from_utf8_lossy(&lab.phoneboot(&["phone", "list"]).stdout).to_string();
    assert!(
        list.contains("SEP001B54C00004"),
        "auto-registered phone missing:\n{list}"
    );
    assert!(
        list.contains("100000"),
        "no DN from the lab's auto-registration range:\n{list}"
    );

    // The server saw each step of each phone: CDP, voice VLAN, DHCP, files, registration.
    let url = lab.admin_url().expect("admin url");
    let secret = std::fs::read_to_string(server::console_token_path(&lab.database_path()))
        .expect("the local console credential");
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{url}/api/events")])
        .args(["-H", &format!("Authorization: Bearer {}", secret.trim())])
        .output()
        .expect("curl");
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    for mac in [
        "00:1b:54:c0:00:01",
        "00:1b:54:c0:00:02",
        "00:1b:54:c0:00:03",
        "00:1b:54:c0:00:04",
    ] {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["mac"] == mac)
            .filter_map(|e| e["kind"].as_str())
            .collect();
        for kind in [
            "cdp_seen",
            "voice_vlan",
            "dhcp_ack",
            "file_served",
            "registered",
        ] {
            assert!(
                kinds.contains(&kind),
                "server saw no {kind} for {mac}: {kinds:?}"
            );
        }
    }
}

#[test]
fn a_storm_of_a_thousand_phones_all_register() {
    let lab = lab_with_server();
    let out = lab
        .cmd(Host::Phones, bin())
        .args([
            "sim",
            "storm",
            "--phones",
            "1000",
            "--rate",
            "250",
            "--concurrency",
            "250",
            "--no-progress",
            "--json",
            "--register-timeout",
            "10",
            "--files-timeout",
            "120",
        ])
        .output()
        .expect("storm runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let registered = v["registered"]
        .as_u64()
        .or_else(|| v["summary"]["registered"].as_u64());
    assert_eq!(
        registered,
        Some(1000),
        "not every phone registered:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}
