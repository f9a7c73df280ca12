//! Fixtures for integration tests.
//!
//! [`LabGuard`] builds a uniquely named lab (namespaces, Open vSwitch, veths) for one test and
//! removes it when dropped — also when the test panics — so integration tests run in parallel
//! without clashing and leave nothing behind.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub use lab::{Host, Lab, LabError};

pub mod webdriver;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A lab that exists for as long as this guard does.
pub struct LabGuard {
    lab: Lab,
    admin_password: Option<String>,
    // Holds the state directory; removed after the lab is down.
    _root: tempfile::TempDir,
}

impl LabGuard {
    /// Builds a lab with voice VLAN 100 and a name unique to this process and call.
    pub fn new() -> Result<LabGuard, LabError> {
        Self::with_vlan(100)
    }

    pub fn with_vlan(voice_vlan: u16) -> Result<LabGuard, LabError> {
        let root = tempfile::Builder::new()
            .prefix("pb-lab-")
            .tempdir()
            .map_err(|source| LabError::Io {
                what: "creating a state directory".into(),
                source,
            })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // 12 characters at most: "t" + 5 digits of pid + "-" + counter.
        let name = format!("t{:05}-{}", std::process::id() % 100_000, n % 1000);
        let lab = Lab::new(&name, root.path())?;
        let admin_password = lab.up(voice_vlan)?;
        Ok(LabGuard {
            lab,
            admin_password,
            _root: root,
        })
    }

    /// The password of the lab server's `admin` user (from the lab's configuration).
    pub fn admin_password(&self) -> Option<&str> {
        self.admin_password.as_deref()
    }

    /// A `Command` running `program` inside `host`'s namespace.
    pub fn cmd(&self, host: Host, program: &str) -> Command {
        self.lab.command(host, program)
    }

    /// `BIN sim boot --model MODEL --protocol PROTOCOL --mac MAC` in the phones namespace;
    /// the caller adds its own flags (`--json`, `--hold` ...).
    pub fn sim_boot(&self, bin: &str, model: &str, protocol: &str, mac: &str) -> Command {
        let mut c = self.cmd(Host::Phones, bin);
        c.args(["sim", "boot", "--model", model, "--protocol", protocol])
            .args(["--mac", mac]);
        c
    }

    /// Runs the admin CLI on the lab's database (`phoneboot --db <db> args...`) and fails the
    /// test, with the CLI's stderr, unless it succeeds.
    pub fn phoneboot(&self, args: &[&str]) -> Output {
        let out = Command::new(phoneboot_bin())
            .arg("--db")
            .arg(self.database_path())
            .args(args)
            .output()
            .expect("phoneboot runs");
        assert!(
            out.status.success(),
            "phoneboot {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A background process (a server, an emulator) killed and reaped when the test ends, also
/// when it panics, so no test leaves a process behind.
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// The running child.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child taken")
    }

    /// Hands the child over (e.g. to wait for its output); it is no longer killed on drop.
    pub fn take(mut self) -> Child {
        self.0.take().expect("child taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Deref for LabGuard {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = self.lab.down() {
            eprintln!("test-support: removing lab {}: {e}", self.lab.name());
        }
    }
}

/// The `phoneboot` binary built for this workspace (tests of other crates use it to start a
/// server), found next to the test executable.
pub fn phoneboot_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PHONEBOOT_BIN") {
        return PathBuf::from(p);
    }
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("phoneboot")
}

/// A certutils program (`tlvfile`, `sgnfile`, `mkcert` ...), the independent implementation
/// trust files are judged by (`../shared/peers/certutils`, or `$CERTUTILS_DIR`). Panics when
/// it or its Python modules are missing: such a test must fail, never pass by skipping.
pub fn certutils(tool: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("CERTUTILS_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(manifest.join("../../../shared/peers/certutils"));
    dirs.push(manifest.join("../../../../shared/peers/certutils"));
    dirs.push(PathBuf::from("/work/shared/peers/certutils"));
    let Some(p) = dirs.iter().map(|d| d.join(tool)).find(|p| p.exists()) else {
        panic!("certutils {tool} not found (looked in {dirs:?}); set CERTUTILS_DIR");
    };
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with the cryptography module is needed for certutils (scripts/install-deps --test)"
    );
    p
}

/// Runs a certutils program with `args`, returning (success, stdout + stderr).
pub fn run_certutils(tool: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    // Each program names its interpreter (python3, or bash for mkcert).
    let out = Command::new(certutils(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
