//! A smoke run of the benchmark harness (issue 11, item 5): `SMOKE=1 bench/run` with tiny
//! counts against the debug binaries, phoneboot-only areas (scale: devices imported, a pool
//! edit rebuilt, phones held with keepalives; curve: TFTP and SCCP rates at two database
//! sizes; DHCP only with SMOKE_DHCP=1, which needs perfdhcp and root). Not a measurement: it
//! proves the harness runs end to end and writes its machine-readable index with non-zero
//! rates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A workspace binary next to the phoneboot under test, built if `cargo test` did not.
fn sibling(rel: &str, build: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_phoneboot"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let p = dir.join(rel);
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .arg("build")
            .args(build)
            .current_dir(repo())
            .status()
            .expect("cargo build");
        assert!(st.success(), "building {rel} failed");
    }
    assert!(p.exists(), "{} missing", p.display());
    p
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for k in path {
        cur = cur
            .get(k)
            .unwrap_or_else(|| panic!("{} missing in index.json", path.join(".")));
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number: {cur}", path.join(".")))
}

#[test]
fn bench_run_smoke_writes_its_index_with_nonzero_rates() {
    let hold = sibling(
        "examples/sccp_hold",
        &["-p", "phoneboot", "--example", "sccp_hold"],
    );
    let load = sibling("tftp-load", &["-p", "fileserver", "--bin", "tftp-load"]);
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(repo().join("bench/run"))
            .env("SMOKE", "1")
            .env("SKIP_BUILD", "1")
            .env("OUT_DIR", out.path())
            .env("PHONEBOOT_BIN", env!("CARGO_BIN_EXE_phoneboot"))
            .env("SCCP_HOLD_BIN", &hold)
            .env("TFTP_LOAD_BIN", &load)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Own process group, so a time-out stops the scripts and every server they started.
            .process_group(0)
            .spawn()
            .expect("bench/run")
    };
    let deadline = started + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            // SAFETY: signals our own child's process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(3));
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    let logs = || {
        let mut s = String::new();
        for a in ["scale", "curve"] {
            let t =
                std::fs::read_to_string(out.path().join(format!("{a}.log"))).unwrap_or_default();
            s.push_str(&format!("--- {a}.log\n{t}\n"));
        }
        s
    };
    let status = status.unwrap_or_else(|| panic!("bench/run smoke exceeded 120 s\n{}", logs()));
    assert!(
        status.success(),
        "bench/run smoke failed ({status})\n{}",
        logs()
    );
    eprintln!("bench/run smoke took {:.1} s", took.as_secs_f64());

    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("index.json")).expect("index.json written"),
    )
    .expect("index.json is JSON");
    assert_eq!(index["smoke"], Value::Bool(true));
    for area in ["scale", "curve"] {
        assert_eq!(num(&index, &["areas", area, "exit"]), 0.0, "{area} exit");
        let results = index["areas"][area]["results"].as_array().expect("results");
        assert!(!results.is_empty(), "{area}: no RESULT line\n{}", logs());
    }
    // Scale: devices imported, rebuild seen, phones held, keepalives acknowledged.
    let s = |k: &str| num(&index, &["areas", "scale", "data", k]);
    assert_eq!(s("devices"), 300.0);
    assert!(s("import_s") > 0.0 && s("startup_s") > 0.0);
    let rebuilds = index["areas"]["scale"]["data"]["pool_change_rebuild_s"]
        .as_array()
        .expect("rebuild times");
    assert_eq!(rebuilds.len(), 2);
    assert_eq!(s("phones_held"), 200.0, "{}", logs());
    assert_eq!(s("register_failed"), 0.0);
    assert!(s("keepalives_acked_per_s") > 0.0, "{}", logs());
    assert!(s("rss_kib") > 0.0);
    assert_eq!(s("closed_by_server"), 0.0);
    // Curve: both sizes, every measured rate non-zero.
    let sizes = index["areas"]["curve"]["data"]["sizes"]
        .as_object()
        .expect("curve sizes");
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    for (n, row) in sizes {
        for k in ["tftp_per_s", "sccp_registrations_per_s"] {
            assert!(
                row[k].as_f64().unwrap_or(0.0) > 0.0,
                "{n} devices: {k} is {}\n{}",
                row[k],
                logs()
            );
        }
    }
}
