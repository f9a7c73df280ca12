//! The binary as a user runs it: config checking, completions, and a lab with a server in it.

use std::process::Command;

fn pb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phoneboot"))
}

#[test]
fn config_check_reports_every_error_and_accepts_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[node]\naddress = \"x\"\n[sccp]\nlisten = \"bad\"\n[[dhcp.pool]]\nsubnet = \"10.0.0.0/40\"\n",
    )
    .unwrap();
    let out = pb().args(["config", "check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["node.address", "sccp.listen", "dhcp.pool[0].subnet"] {
        assert!(err.contains(path), "{path} missing from:\n{err}");
    }
    let example = dir.path().join("example.toml");
    let out = pb().args(["config", "example"]).output().unwrap();
    std::fs::write(&example, &out.stdout).unwrap();
    let out = pb()
        .args(["config", "check"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_and_help_list_working_subcommands() {
    let out = pb().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("phoneboot"));
    let help = pb().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for sub in ["serve", "config", "lab", "completions"] {
        assert!(help.contains(sub), "{sub} not in help");
    }
}

#[test]
fn lab_serve_answers_on_the_host_and_down_stops_it() {
    let state = tempfile::tempdir().unwrap();
    let name = format!("cli{}", std::process::id() % 100_000);
    let run = |args: &[&str]| {
        pb().args(&args[..2])
            .args(["--name", &name])
            .args(&args[2..])
            .env("PHONEBOOT_LAB_DIR", state.path())
            .output()
            .unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["lab", "down"]);
        }
    }
    let out = run(&["lab", "up"]);
    let _down = Down(&run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["lab", "serve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = run(&["lab", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["server_running"], true);
    let url = v["admin_url"].as_str().unwrap().to_string();
    let health = Command::new("curl")
        .args(["-sf", &format!("{url}/healthz")])
        .output()
        .unwrap();
    assert!(health.status.success());
    let h: serde_json::Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(h["address"], "198.18.100.1");
    // `exec` runs inside the namespace and passes the exit code through.
    let out = run(&[
        "lab", "exec", "server", "--", "ip", "-br", "addr", "show", "srv0",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("198.18.100.1/16"));
    let out = run(&["lab", "exec", "phones", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let pid = v["server_pid"].as_u64().unwrap();
    let out = run(&["lab", "down"]);
    assert!(out.status.success());
    // Gone, or a zombie waiting for its reaper: either way no longer running.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!running, "server {pid} still runs: {state}");
    assert!(!std::path::Path::new(&format!("/run/netns/pb-{name}-srv")).exists());
}
