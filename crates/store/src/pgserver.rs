//! A real, private PostgreSQL server started with the distribution's `initdb`/`pg_ctl`, for
//! the store's tests, the integration tests and the lab. It lives in its own directory,
//! listens on a unix socket there (and on a TCP address when asked), and is stopped and
//! removed when dropped. No system service, no shared state.
//!
//! PostgreSQL refuses to run as root; when we are root the server runs as the `postgres`
//! user (Debian's package creates it) in a directory that user owns.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a server could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    #[error("PostgreSQL server programs (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH; install Debian's `postgresql` (scripts/install-deps)")]
    NotInstalled,
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

fn failed(what: impl Into<String>, detail: impl Into<String>) -> PgServerError {
    PgServerError::Failed {
        what: what.into(),
        detail: detail.into(),
    }
}

/// How to make the server.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Also listen on this address (`port`), besides the unix socket.
    pub listen: Option<IpAddr>,
    /// The port (also names the unix socket file); 0 = pick a free one.
    pub port: u16,
    /// `fsync=off` for throw-away test data (much faster on loaded CI disks).
    pub fsync: bool,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
}

/// A running private PostgreSQL. Superuser `postgres`, trust authentication on the socket
/// and on loopback; roles with passwords can be added with [`PgServer::psql`].
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    listen: Option<IpAddr>,
    run_as: Option<&'static str>,
    remove_dir: bool,
    running: bool,
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/N/bin`, or
/// the one on `PATH`.
pub fn bin_dir() -> Result<PathBuf, PgServerError> {
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in rd.flatten() {
            let v: u32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
            let bin = e.path().join("bin");
            if bin.join("initdb").exists() && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, bin));
            }
        }
    }
    if let Some((_, b)) = best {
        return Ok(b);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").exists() && d.join("pg_ctl").exists() {
                return Ok(d);
            }
        }
    }
    Err(PgServerError::NotInstalled)
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

fn free_port(ip: IpAddr) -> Result<u16, PgServerError> {
    let l =
        std::net::TcpListener::bind((ip, 0)).map_err(|e| failed("pick a port", e.to_string()))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| failed("pick a port", e.to_string()))
}

impl PgServer {
    /// initdb + start in a fresh temporary directory, removed on drop.
    pub fn start_temp(opts: &PgOptions) -> Result<PgServer, PgServerError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pb-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut s = Self::init(&dir, opts)?;
        s.remove_dir = true;
        s.start()?;
        Ok(s)
    }

    /// Runs `initdb` into `dir/data` (creating `dir`); does not start the server.
    pub fn init(dir: &Path, opts: &PgOptions) -> Result<PgServer, PgServerError> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("create {}", dir.display()), e.to_string()))?;
        let run_as = is_root().then_some("postgres");
        let mut s = PgServer {
            dir: dir.to_path_buf(),
            bin,
            port: 0,
            listen: opts.listen,
            run_as,
            remove_dir: false,
            running: false,
        };
        if let Some(user) = run_as {
            s.host_cmd("chown", &[&format!("{user}:"), &dir.display().to_string()])?;
            s.host_cmd("chmod", &["0700", &dir.display().to_string()])?;
        }
        let data = s.data_dir();
        s.pg(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        s.port = match opts.port {
            0 => free_port(opts.listen.unwrap_or(IpAddr::from([127, 0, 0, 1])))?,
            p => p,
        };
        let mut conf = format!(
            "\n# phoneboot private server\nport = {}\nunix_socket_directories = '{}'\nlisten_addresses = '{}'\nfsync = {}\nfull_page_writes = {}\nmax_connections = 200\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n",
            s.port,
            s.dir.display(),
            opts.listen.map(|a| a.to_string()).unwrap_or_default(),
            if opts.fsync { "on" } else { "off" },
            if opts.fsync { "on" } else { "off" },
        );
        for (k, v) in &opts.settings {
            conf.push_str(&format!("{k} = '{v}'\n"));
        }
        s.append(&data.join("postgresql.conf"), &conf)?;
        // The socket (in a directory only the server user and root may enter) trusts
        // everyone; over TCP the superuser and replication are trusted (the lab's private
        // namespaces and tests only), every other role needs its password. Without
        // `synchronous_commit = off`: an immediate stop must not lose committed rows, even
        // with fsync off.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nlocal replication all trust\n\
             host all postgres 0.0.0.0/0 trust\nhost all postgres ::/0 trust\n\
             host replication all 0.0.0.0/0 trust\nhost replication all ::/0 trust\n\
             host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n",
        )
        .map_err(|e| failed("write pg_hba.conf", e.to_string()))?;
        Ok(s)
    }

    /// Prepends `line` to `pg_hba.conf` (first match wins), e.g. to require a password.
    pub fn hba_first(&self, line: &str) -> Result<(), PgServerError> {
        let p = self.data_dir().join("pg_hba.conf");
        let old =
            std::fs::read_to_string(&p).map_err(|e| failed("read pg_hba.conf", e.to_string()))?;
        std::fs::write(&p, format!("{line}\n{old}"))
            .map_err(|e| failed("write pg_hba.conf", e.to_string()))
    }

    fn append(&self, file: &Path, text: &str) -> Result<(), PgServerError> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| failed(format!("write {}", file.display()), e.to_string()))
    }

    fn host_cmd(&self, prog: &str, args: &[&str]) -> Result<(), PgServerError> {
        let out = Command::new(prog)
            .args(args)
            .output()
            .map_err(|e| failed(prog, e.to_string()))?;
        if !out.status.success() {
            return Err(failed(
                prog,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }

    /// Runs a PostgreSQL program as the server's user; returns its stdout.
    pub fn pg(&self, prog: &str, args: &[&str]) -> Result<String, PgServerError> {
        let path = self.bin.join(prog);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // runuser keeps the cwd; a directory the server user cannot enter makes initdb fail.
        cmd.current_dir(&self.dir).args(args);
        let out = cmd
            .output()
            .map_err(|e| failed(format!("run {}", path.display()), e.to_string()))?;
        if !out.status.success() {
            let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if prog == "pg_ctl" {
                detail.push_str(&format!("\n--- server log ---\n{}", self.log_tail()));
            }
            return Err(failed(prog, detail));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) -> Result<(), PgServerError> {
        let data = self.data_dir().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (`mode`: smart, fast or immediate).
    pub fn stop(&mut self, mode: &str) -> Result<(), PgServerError> {
        let data = self.data_dir().display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", mode, "-w", "stop"])?;
        self.running = false;
        Ok(())
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Runs SQL as the superuser through `psql` (stops at the first error).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, PgServerError> {
        let port = self.port.to_string();
        let host = self.dir.display().to_string();
        self.pg(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-h",
                &host,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    /// Creates an empty database.
    pub fn create_db(&self, name: &str) -> Result<(), PgServerError> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(|_| ())
    }

    /// A connection string for `db` as the superuser over the unix socket.
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.display(),
            self.port
        )
    }

    /// A `postgres://` URL for `db` over TCP (needs [`PgOptions::listen`]).
    pub fn tcp_url(&self, user: &str, db: &str) -> Option<String> {
        let ip = self.listen?;
        let host = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        Some(format!("postgres://{user}@{host}:{}/{db}", self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop("immediate");
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
