//! Tests that need root, a peer tool or a browser: they must never pass silently where they
//! could not run. In CI (`CI` set) and under `scripts/test` (`PHONEBOOT_REQUIRE_ALL=1`) a missing
//! prerequisite fails the test with the reason; elsewhere (a developer's `cargo test`) the test
//! is skipped, the skip is printed and counted in `<target>/test-skips/` so the summary
//! (`scripts/test-skips`, and nextest's final output for these binaries) shows it.

use std::path::{Path, PathBuf};

/// Whether every test must run (CI or `scripts/test`): a skip then fails.
pub fn all_required() -> bool {
    let set = |k: &str| {
        std::env::var_os(k).is_some_and(|v| {
            let v = v.to_string_lossy();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    };
    set("CI") || set("PHONEBOOT_REQUIRE_ALL")
}

/// The prerequisite `what` is missing: panics (failing the test) when every test must run,
/// otherwise prints and records the skip. Returns so the caller can `return`:
/// `if let Some(why) = missing { return test_support::skip(&why) }`.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string();
    if all_required() {
        panic!(
            "{test}: cannot run here and CI/scripts/test require every test to run: {why} \
             (install it with scripts/install-deps --test, run as root)"
        );
    }
    eprintln!("SKIPPED {test}: {why}");
    record(&test, why);
}

/// Returns `Some(reason)` when not running as root.
pub fn root_missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    (unsafe { libc::geteuid() } != 0).then(|| "needs root (network namespaces, raw sockets)".into())
}

/// Returns `Some(reason)` naming the first of `programs` not found on `PATH` (or absolute).
pub fn programs_missing(programs: &[&str]) -> Option<String> {
    programs
        .iter()
        .find(|p| which(p).is_none())
        .map(|p| format!("`{p}` is not installed (scripts/install-deps --test)"))
}

/// `program` as found on `PATH` (or as given when it is a path that exists).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| program.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Where skips are recorded: `<target>/test-skips/` (next to the test executables).
pub fn skips_dir() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop(); // the executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.pop(); // debug/ or the profile directory
    dir.join("test-skips")
}

fn record(test: &str, why: &str) {
    let dir = skips_dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let _ = std::fs::write(record_path(test), format!("{test}: {why}\n"));
}

/// The file recording a skip of `test` in this executable.
fn record_path(test: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = format!("{exe}--{test}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    skips_dir().join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the environment is process-wide.
    #[test]
    fn skips_fail_when_everything_is_required_and_are_recorded_otherwise() {
        std::env::remove_var("CI");
        std::env::set_var("PHONEBOOT_REQUIRE_ALL", "1");
        let r = std::panic::catch_unwind(|| skip("a tool is missing"));
        assert!(r.is_err(), "PHONEBOOT_REQUIRE_ALL=1 makes a skip fail");
        std::env::set_var("PHONEBOOT_REQUIRE_ALL", "0");
        std::env::set_var("CI", "true");
        assert!(
            std::panic::catch_unwind(|| skip("x")).is_err(),
            "CI makes a skip fail"
        );
        std::env::remove_var("CI");
        std::env::remove_var("PHONEBOOT_REQUIRE_ALL");
        assert!(!all_required());
        let probe = format!("skip-probe-{}", std::process::id());
        let path = record_path(&probe);
        let _ = std::fs::remove_file(&path);
        std::thread::Builder::new()
            .name(probe)
            .spawn(|| skip("probe"))
            .unwrap()
            .join()
            .unwrap();
        let text = std::fs::read_to_string(&path).expect("the skip is recorded");
        assert!(text.contains("probe"), "{text}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(programs_missing(&["sh"]).is_none());
        assert!(programs_missing(&["sh", "no-such-tool-phoneboot"]).is_some());
    }
}
