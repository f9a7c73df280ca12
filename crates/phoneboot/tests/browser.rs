//! The web UI against the real thing, in headless Chromium: `phoneboot serve` runs in a lab,
//! the test logs in, adds a phone with a line through the UI form, boots that MAC with the
//! emulator (`phoneboot sim boot` in the phones namespace), watches the phones list turn
//! "Registered" by itself, opens the phone page (boot timeline with diagnosis, generated
//! files, lease, CDP neighbour entry), resets the phone from the UI and sees the emulator
//! re-register. Screenshots of the main pages go to `<target>/screenshots/lab/` (printed).
//!
//! Needs root, the lab's packages (Open vSwitch, iproute2) and Debian's chromium +
//! chromium-driver; skips with a message only when the browser is missing.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::webdriver::{browser_missing, http, screenshot_dir, Driver};
use test_support::{KillOnDrop, LabGuard};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

/// The server's recent events (the console route, with the local console credential).
fn events(addr: std::net::SocketAddr, lab: &LabGuard) -> Vec<Value> {
    let secret = std::fs::read_to_string(server::console_token_path(&lab.database_path()))
        .expect("the local console credential");
    let auth = format!("Bearer {}", secret.trim());
    let r = http(addr, "GET", "/api/events", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

fn kinds_of(events: &[Value], mac: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["mac"] == mac)
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn add_a_phone_in_the_ui_boot_it_in_the_lab_see_it_register_and_reset_it() {
    if let Some(why) = browser_missing() {
        return test_support::skip(&why);
    }
    let started = Instant::now();
    let lab = LabGuard::new().expect("lab up");
    lab.serve(std::path::Path::new(bin()), Duration::from_secs(60))
        .expect("phoneboot serve starts in the lab");
    let base = lab.admin_url().expect("admin url");
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let password = lab
        .admin_password()
        .expect("lab admin password")
        .to_string();
    eprintln!("lab and server up after {:?}", started.elapsed());

    let shots = screenshot_dir("lab");
    let d = Driver::start(&shots);
    eprintln!("screenshots: {}", shots.display());
    d.go(&base);
    d.typ("#login-user", "admin");
    d.typ("#login-pass", &password);
    d.click("#login-submit");
    d.wait("#add-phone");

    // Add the phone and its line through the form.
    let (mac, name) = ("00:1b:54:e2:e0:01", "SEP001B54E2E001");
    d.click("#add-phone");
    d.typ("#dev-mac", "00:1B:54:E2:E0:01");
    d.typ("#dev-model", "CP-7965");
    d.click("#dev-protocol option[value=sccp]");
    d.typ("#dev-desc", "Browser test phone");
    d.typ("#lines-body tr:first-child input[name=dn]", "4801");
    d.typ("#lines-body tr:first-child input[name=label]", "Reception");
    d.typ(
        "#lines-body tr:first-child input[name=display_name]",
        "Front desk",
    );
    d.screenshot("add-phone");
    d.click("#dev-save");
    let row = format!("tr[data-device={name}]");
    d.wait_text(&format!("{row} .status"), "Never seen");

    // Boot that MAC with the emulator; it stays registered and obeys resets.
    let sim = KillOnDrop::new(
        lab.sim_boot(bin(), "CP-7965", "sccp", mac)
            .args(["--hold", "20", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sim runs"),
    );

    // The list turns registered by itself (live status), with the leased address.
    d.wait_text_for(
        &format!("{row} .status"),
        "Registered",
        Duration::from_secs(30),
    );
    d.wait_text(&row, "198.18.");
    d.screenshot("phones");

    // The phone page: timeline with diagnosis, generated files, lease, neighbour entry.
    d.click(&format!("{row} td:nth-child(3)"));
    d.wait_text("#verdict", "Registered");
    d.wait_text("#files-card", &format!("{name}.cnf.xml"));
    d.wait_text("#files-card", "<deviceProtocol>SCCP</deviceProtocol>");
    d.wait_text("#main", "Front desk");
    d.wait_text("#lease-card", "198.18.");
    d.wait_text("#lease-card", "CP-7965");
    d.wait_text(".timeline", "DHCP");
    // The neighbour table is refreshed from the switch agent every few seconds; the page
    // re-renders itself every 3 s, so the entry shows up without a reload (bounded).
    d.wait_text_for("#neighbour-card", "sw-ph0", Duration::from_secs(20));
    d.wait_text("#neighbour-card", "Cisco IP Phone 7965");
    d.screenshot("phone");

    // Reset it from the UI; the emulator reboots its registration and comes back.
    let registered_before = kinds_of(&events(addr, &lab), mac)
        .iter()
        .filter(|k| *k == "registered")
        .count();
    assert!(registered_before >= 1);
    d.click("#action-reset");
    d.click("#confirm-yes");
    d.wait_text("#toasts", &format!("Reset sent to {name}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kinds = kinds_of(&events(addr, &lab), mac);
        let registered = kinds.iter().filter(|k| *k == "registered").count();
        if kinds.iter().any(|k| k == "reset_sent") && registered > registered_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the phone did not re-register after the reset: {kinds:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.go(&format!("{base}/#/phones"));
    d.wait_text(&format!("{row} .status"), "Registered");

    // The other main pages, with this phone in them.
    d.go(&format!("{base}/#/live"));
    d.wait_text(".tile.registered .n", "1");
    d.wait_text("#feed", mac);
    d.wait_text("#feed", "reset sent");
    let feed = d.text("#feed");
    let first = feed.lines().next().unwrap_or_default();
    assert_eq!(
        first.split_whitespace().nth(1),
        Some(mac),
        "feed lines start with a time, then the MAC: {feed}"
    );
    d.screenshot("live");
    d.go(&format!("{base}/#/neighbours"));
    d.wait_text("#main", name);
    d.wait_text("#main", "sw-ph0");
    d.screenshot("neighbours");
    d.go(&format!("{base}/#/leases"));
    d.wait_text("#main", mac);
    d.screenshot("leases");

    // The emulator's own report saw the reset from the server.
    let child = sim.take();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "emulator failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.to_ascii_lowercase().contains("reset"),
        "the emulator's report shows no reset:\n{report}"
    );
    for page in ["phones", "phone", "live", "neighbours", "leases"] {
        assert!(shots.join(format!("{page}.png")).exists());
    }
    eprintln!("done in {:?}", started.elapsed());
}
