//! SCCP failover between two phoneboot nodes of one CallManager group, in a lab.
//!
//! Node cm1 (the lab's server: CDP, DHCP, TFTP/HTTP, SCCP at 198.18.100.1) and node cm2 (its
//! own namespace at 198.18.100.2, SCCP/SIP only, the same device database) are the CallManager
//! group of the phone's device pool, cm1 first. An emulated 7965 boots through cm1, registers
//! there and keeps a standby connection to cm2; cm1 is killed (SIGKILL: the kernel resets its
//! connections, as when the host's process crashes) and the phone registers to cm2; cm1 comes
//! back and the phone falls back to it through RegisterTokenReq. Every claim is checked on
//! what the system shows: each node's registration table (RIS, `/api/registrations`), the
//! phone's TCP connections (`ss` in the phones namespace) and the emulator's timeline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{Host, KillOnDrop, LabGuard};

const MAC: &str = "00:1b:54:f0:00:01";
const DEVICE: &str = "SEP001B54F00001";
const CM1: &str = "198.18.100.1:2000";
const CM2: &str = "198.18.100.2:2000";
const SIP_MAC: &str = "00:1b:54:f0:00:02";
const SIP_DEVICE: &str = "SEP001B54F00002";
const SIP_CM1: &str = "198.18.100.1:5060";
const SIP_CM2: &str = "198.18.100.2:5060";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneboot")
}

/// One node's admin API, logged in as the lab's administrator.
struct Api {
    url: String,
    password: String,
    jar: PathBuf,
    logged_in: bool,
}

impl Api {
    fn new(url: String, password: &str, dir: &Path, name: &str) -> Api {
        Api {
            url,
            password: password.to_string(),
            jar: dir.join(format!("{name}.cookies")),
            logged_in: false,
        }
    }

    fn login(&mut self) -> bool {
        let body = serde_json::json!({"username": "admin", "password": self.password});
        let ok = Command::new("curl")
            .args(["-sf", "-m", "5", "-c"])
            .arg(&self.jar)
            .args(["-H", "content-type: application/json", "-d"])
            .arg(body.to_string())
            .arg(format!("{}/api/login", self.url))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        self.logged_in = ok;
        ok
    }

    /// The node's RIS rows, or None when the node does not answer.
    fn registrations(&mut self) -> Option<Vec<serde_json::Value>> {
        if !self.logged_in && !self.login() {
            return None;
        }
        let out = Command::new("curl")
            .args(["-sf", "-m", "5", "-b"])
            .arg(&self.jar)
            .arg(format!("{}/api/registrations", self.url))
            .output()
            .ok()?;
        if !out.status.success() {
            // A restarted node forgot our session.
            self.logged_in = false;
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// This node's RIS row of `device`, if it is registered here.
    fn row_of(&mut self, device: &str) -> Option<serde_json::Value> {
        self.registrations()?
            .into_iter()
            .find(|r| r["device"] == device)
    }

    /// This node's RIS row of the SCCP test phone.
    fn row(&mut self) -> Option<serde_json::Value> {
        self.row_of(DEVICE)
    }
}

/// An emulator holding one phone's registration (`sim boot --hold`), and what to show when
/// a check fails: its timeline and both nodes' logs.
struct HeldPhone<'a> {
    sim: KillOnDrop,
    lab: &'a LabGuard,
    node2: &'a lab::ExtraNode,
}

impl<'a> HeldPhone<'a> {
    /// `sim boot` of `mac` holding its registration for up to 90 s, JSON report, in the
    /// phones namespace.
    fn boot(
        lab: &'a LabGuard,
        node2: &'a lab::ExtraNode,
        model: &str,
        protocol: &str,
        mac: &str,
        extra: &[&str],
    ) -> HeldPhone<'a> {
        let sim = lab
            .sim_boot(bin(), model, protocol, mac)
            .args(["--hold", "90", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sim runs");
        HeldPhone {
            sim: KillOnDrop::new(sim),
            lab,
            node2,
        }
    }

    /// The value, or a panic with `what`, the emulator's output and both servers' logs.
    fn check<T>(&mut self, v: Option<T>, what: &str) -> T {
        if let Some(v) = v {
            return v;
        }
        let (out, err) = self.finish();
        let log = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        panic!(
            "{what}\n--- sim stdout\n{out}\n--- sim stderr\n{err}\n--- cm1 log\n{}\n--- cm2 log\n{}",
            log(&self.lab.log_path()),
            log(&self.node2.log_path),
        );
    }

    /// cm1 restarts; the phone registers to it again (within 20 s) and leaves cm2. Returns
    /// how long after cm1's return.
    fn falls_back_to_cm1(
        &mut self,
        lab: &LabGuard,
        cm1: &mut Api,
        cm2: &mut Api,
        device: &str,
    ) -> Duration {
        let t_back = restart_cm1(lab);
        let row = self.check(
            wait_for(Duration::from_secs(20), || cm1.row_of(device)),
            &format!("{device} did not fall back to cm1 within 20 s of its return"),
        );
        let fallback = t_back.elapsed();
        assert_eq!(row["node"], "lab-cm1", "{row}");
        self.check(
            wait_for(Duration::from_secs(5), || {
                cm2.registrations()
                    .is_some_and(|r| r.iter().all(|r| r["device"] != device))
                    .then_some(())
            }),
            &format!("cm2 still lists {device} after the fallback (no Unregister / Expires: 0?)"),
        );
        fallback
    }

    /// Stops the emulator (SIGINT: it unregisters and prints its report) and returns its
    /// stdout and stderr.
    fn finish(&mut self) -> (String, String) {
        let sim = &mut self.sim;
        // SAFETY: the emulator's pid (`ip netns exec` execs it), still ours to signal.
        unsafe {
            libc::kill(sim.child().id() as i32, libc::SIGINT);
        }
        let end = Instant::now() + Duration::from_secs(15);
        while sim.child().try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = sim.child().kill();
        use std::io::Read;
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut o) = sim.child().stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = sim.child().stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (out, err)
    }
}

/// Polls `f` every 100 ms until it returns Some or `limit` passes.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Established TCP connections from the phones namespace to `to` (ADDRESS:PORT).
fn connections_to(lab: &LabGuard, to: &str) -> usize {
    let out = lab
        .cmd(Host::Phones, "ss")
        .args(["-Htn", "state", "established", "dst", to])
        .output()
        .expect("ss runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn lab_password(lab: &LabGuard) -> String {
    config::Config::load(&lab.config_path())
        .expect("lab configuration")
        .admin
        .initial_password
        .expect("the lab sets an administrator password")
}

/// A lab with two nodes (cm1 = the lab's server, cm2 in its own namespace), both logged in
/// to, and a device pool `FO` whose CallManager group lists cm1 then cm2, with a 4 s
/// connection monitor duration.
struct TwoNodes {
    lab: LabGuard,
    node2: lab::ExtraNode,
    cm1: Api,
    cm2: Api,
    _scratch: tempfile::TempDir,
}

fn two_nodes() -> TwoNodes {
    let lab = LabGuard::new().expect("lab up");
    lab.serve(Path::new(bin()), Duration::from_secs(60))
        .expect("cm1 (phoneboot serve) starts in the lab");
    let node2 = lab.add_node(2).expect("second node's namespace");
    lab.serve_node(Path::new(bin()), 2, Duration::from_secs(60))
        .expect("cm2 starts in its namespace");
    let password = lab_password(&lab);
    let scratch = tempfile::tempdir().expect("tempdir");
    let cm1 = Api::new(
        lab.admin_url().expect("admin url"),
        &password,
        scratch.path(),
        "cm1",
    );
    let cm2 = Api::new(node2.admin_url.clone(), &password, scratch.path(), "cm2");
    // The CallManager group cm1, cm2 (cm1 exists: the lab server seeded it as lab-cm1) and
    // a device pool using it.
    lab.phoneboot(&["node", "set", "lab-cm2", "198.18.100.2"]);
    lab.phoneboot(&["group", "set", "CMG-FO", "lab-cm1", "lab-cm2"]);
    lab.phoneboot(&[
        "pool",
        "add",
        "FO",
        "--group",
        "CMG-FO",
        "--monitor-secs",
        "4",
    ]);
    TwoNodes {
        lab,
        node2,
        cm1,
        cm2,
        _scratch: scratch,
    }
}

/// SIGKILL of cm1 (the kernel resets its connections, as when the host's process crashes);
/// returns when.
fn kill_cm1(lab: &LabGuard) -> Instant {
    let pid = lab.server_pid().expect("cm1 runs");
    // SAFETY: a pid we started (the lab server), still alive.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    Instant::now()
}

/// cm1 back half a second later; returns when it answers again.
fn restart_cm1(lab: &LabGuard) -> Instant {
    std::thread::sleep(Duration::from_millis(500));
    lab.serve(Path::new(bin()), Duration::from_secs(60))
        .expect("cm1 restarts");
    Instant::now()
}

/// Adds a phone with one line to the pool `FO`.
fn add_phone(lab: &LabGuard, mac: &str, model: &str, protocol: &str, line: &str) {
    lab.phoneboot(&[
        "phone",
        "add",
        mac,
        "--model",
        model,
        "--protocol",
        protocol,
        "--line",
        line,
        "--pool",
        "FO",
    ]);
}

/// The phone's file lists cm1 then cm2; both nodes have reloaded from the shared database.
fn check_group_order(lab: &LabGuard, device: &str) {
    let cnf = String::from_utf8_lossy(
        &lab.phoneboot(&["files", "show", &format!("{device}.cnf.xml")])
            .stdout,
    )
    .to_string();
    let (p1, p2) = (
        cnf.find("198.18.100.1").expect("cm1 listed"),
        cnf.find("198.18.100.2").expect("cm2 listed"),
    );
    assert!(p1 < p2, "cm1 must come first in the group:\n{cnf}");
    assert!(
        cnf.contains("<connectionMonitorDuration>4</connectionMonitorDuration>"),
        "the pool's monitor duration is in the file:\n{cnf}"
    );
    // Both nodes reload from the shared database.
    std::thread::sleep(Duration::from_millis(2500));
}

/// The later events of the emulator's JSON report, in order.
fn later_events(report: &serde_json::Value) -> Vec<String> {
    report["later"]
        .as_array()
        .expect("later events")
        .iter()
        .filter_map(|e| e["what"].as_str().map(str::to_string))
        .collect()
}

/// Asserts that `story` occurs in `later` in order (each a prefix of an event); returns the
/// index after the last one.
fn assert_story(later: &[String], story: &[String]) -> usize {
    let mut at = 0;
    for want in story {
        match later[at..]
            .iter()
            .position(|w| w.starts_with(want.as_str()))
        {
            Some(i) => at += i + 1,
            None => panic!("timeline lacks {want:?} (in order) in {later:#?}"),
        }
    }
    at
}

#[test]
fn sccp_phone_fails_over_to_the_second_node_and_falls_back() {
    let t0 = Instant::now();
    let TwoNodes {
        lab,
        node2,
        mut cm1,
        mut cm2,
        _scratch: _cookies,
    } = two_nodes();
    lab.phoneboot(&["line", "add", "4501", "--label", "Failover"]);
    add_phone(&lab, MAC, "Cisco 7965", "SCCP", "4501");
    check_group_order(&lab, DEVICE);

    // Boot and hold the registration; fall back 4 s after a failover.
    let mut sim = HeldPhone::boot(
        &lab,
        &node2,
        "CP-7965",
        "sccp",
        MAC,
        &["--fallback-secs", "4"],
    );
    let t_boot = Instant::now();

    // 1. Registered to cm1, with a standby connection to cm2 that is not a registration.
    let row = sim.check(
        wait_for(Duration::from_secs(30), || cm1.row()),
        "phone never registered to cm1 (RIS of cm1)",
    );
    assert_eq!(row["node"], "lab-cm1", "{row}");
    let booted = t_boot.elapsed();
    sim.check(
        wait_for(Duration::from_secs(5), || {
            (connections_to(&lab, CM2) == 1).then_some(())
        }),
        "no standby TCP connection from the phone to cm2",
    );
    assert_eq!(connections_to(&lab, CM1), 1, "one active connection to cm1");
    assert!(
        cm2.registrations().expect("cm2 answers").is_empty(),
        "the standby connection must not register the phone on cm2"
    );

    // 2. cm1 dies: the phone registers to cm2 on its standby connection.
    let t_kill = kill_cm1(&lab);
    let row = sim.check(
        wait_for(Duration::from_secs(10), || cm2.row()),
        "the phone did not re-register to cm2 within 10 s of cm1's death",
    );
    let failover = t_kill.elapsed();
    assert_eq!(row["node"], "lab-cm2", "{row}");
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}: the standby connection should make it immediate"
    );

    // 3. cm1 returns: within the fallback interval (+ the phone's 2 s standby retry) the
    //    phone asks cm1 for a token, unregisters from cm2 and registers to cm1 again.
    let fallback = sim.falls_back_to_cm1(&lab, &mut cm1, &mut cm2, DEVICE);
    // And cm2 is the standby again.
    sim.check(
        wait_for(Duration::from_secs(5), || {
            (connections_to(&lab, CM2) == 1 && connections_to(&lab, CM1) == 1).then_some(())
        }),
        "after the fallback: one connection to each node",
    );

    // 4. The emulator's timeline tells the same story, in order.
    let (text, err) = sim.finish();
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("sim JSON: {e}\n{text}\n{err}"));
    assert_eq!(report["registered"], true, "{text}");
    assert_eq!(
        report["registration"]["registered_to"], CM1,
        "first registration: {text}"
    );
    let later = later_events(&report);
    let at = assert_story(
        &later,
        &[
            format!("standby connection to {CM2}"),
            format!("lost CallManager {CM1}"),
            format!("failover {CM1} -> {CM2}"),
            format!("registered to {CM2}"),
            format!("in service on {CM2}"),
            format!("fell back from {CM2}"),
            format!("registered to {CM1}"),
        ],
    );
    // Home again: in service on cm1 with cm2 as standby (in either order).
    for want in [
        format!("in service on {CM1}"),
        format!("standby connection to {CM2}"),
    ] {
        assert!(
            later[at..].iter().any(|w| w.starts_with(want.as_str())),
            "after the fallback the timeline lacks {want:?}: {later:#?}"
        );
    }
    eprintln!(
        "failover test: boot+register {booted:?}, failover {failover:?}, fallback after cm1's return {fallback:?}, total {:?}",
        t0.elapsed()
    );
}

/// SIP: the phone registers (TCP, digest) to cm1; cm1 dies and closes the connection, the
/// phone registers to cm2; cm1 returns and, after the pool's connection monitor duration
/// (4 s, from the file: no command-line override), the phone registers to cm1 again and
/// unregisters from cm2.
#[test]
fn sip_phone_fails_over_to_the_next_proxy_and_falls_back() {
    let TwoNodes {
        lab,
        node2,
        mut cm1,
        mut cm2,
        _scratch: _cookies,
    } = two_nodes();
    lab.phoneboot(&[
        "line",
        "add",
        "4502",
        "--label",
        "SIP failover",
        "--auth-user",
        "fo4502",
        "--auth-password",
        "pw-4502",
    ]);
    add_phone(&lab, SIP_MAC, "Cisco 8845", "SIP", "4502");
    check_group_order(&lab, SIP_DEVICE);
    let mut sim = HeldPhone::boot(&lab, &node2, "CP-8845", "sip", SIP_MAC, &[]);

    // 1. Registered to cm1 only.
    let row = sim.check(
        wait_for(Duration::from_secs(30), || cm1.row_of(SIP_DEVICE)),
        "SIP phone never registered to cm1",
    );
    assert_eq!(row["node"], "lab-cm1", "{row}");
    assert!(
        cm2.row_of(SIP_DEVICE).is_none(),
        "registered to cm2 as well before any failure"
    );

    // 2. cm1 dies: its TCP connection closes and the phone registers to cm2.
    let t_kill = kill_cm1(&lab);
    let row = sim.check(
        wait_for(Duration::from_secs(10), || cm2.row_of(SIP_DEVICE)),
        "the SIP phone did not register to cm2 within 10 s of cm1's death",
    );
    let failover = t_kill.elapsed();
    assert_eq!(row["node"], "lab-cm2", "{row}");

    // 3. cm1 returns: the phone goes back after the monitor duration and leaves cm2.
    let fallback = sim.falls_back_to_cm1(&lab, &mut cm1, &mut cm2, SIP_DEVICE);

    // 4. The emulator's timeline.
    let (text, err) = sim.finish();
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("sim JSON: {e}\n{text}\n{err}"));
    assert_eq!(report["registered"], true, "{text}");
    assert_eq!(report["registration"]["registered_to"], SIP_CM1, "{text}");
    assert_story(
        &later_events(&report),
        &[
            format!("lost CallManager {SIP_CM1}"),
            format!("failover {SIP_CM1} -> {SIP_CM2}"),
            format!("registered to {SIP_CM2}: SIP with digest"),
            format!("fell back from {SIP_CM2} to {SIP_CM1}"),
            format!("registered to {SIP_CM1}"),
        ],
    );
    eprintln!("SIP failover test: failover {failover:?}, fallback after cm1's return {fallback:?}");
}
