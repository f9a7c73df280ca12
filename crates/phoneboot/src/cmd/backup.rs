//! `phoneboot backup FILE` / `phoneboot restore FILE`: a node's state in one tar file.
//!
//! The archive holds `MANIFEST.json` (format, phoneboot version, schema version, time), the
//! device database (devices, lines, pools, groups, settings, DHCP leases), the admin users
//! and tokens, and with `--with-journal` the boot journal — each a consistent SQLite snapshot
//! taken while the node may be running (`store::backup`). A restore checks the whole archive
//! before it replaces anything, refuses a schema newer than this binary, and will not
//! overwrite a database that already holds devices or lines unless told to.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use store::Store;

use super::target::Target;

const FORMAT: &str = "phoneboot-backup/1";
const MANIFEST: &str = "MANIFEST.json";

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The archive to write (a tar file); refused if it exists.
    #[arg(env = "PHONEBOOT_BACKUP_FILE")]
    pub file: PathBuf,
    /// Include the boot journal (history of every phone's boots; can be large).
    #[arg(long, env = "PHONEBOOT_BACKUP_WITH_JOURNAL")]
    pub with_journal: bool,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The archive `phoneboot backup` wrote.
    #[arg(env = "PHONEBOOT_RESTORE_FILE")]
    pub file: PathBuf,
    /// Replace a database that already holds devices or lines.
    #[arg(long, env = "PHONEBOOT_RESTORE_FORCE")]
    pub force: bool,
}

/// The node's files, by their name in the archive.
fn members(db: &Path, with_journal: bool) -> Vec<(&'static str, PathBuf)> {
    let mut m = vec![
        ("phoneboot.db", db.to_path_buf()),
        ("phoneboot.auth.db", server::auth_path(db)),
    ];
    if with_journal {
        m.push(("phoneboot.bootlog.db", server::bootlog_path(db)));
    }
    m
}

pub fn backup(target: &Target, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let db = target.database()?;
    if !db.exists() {
        bail!("no device database at {}", db.display());
    }
    if args.file.exists() {
        bail!("{} exists; choose a new file name", args.file.display());
    }
    let work = tempfile::tempdir().context("a temporary directory for the snapshots")?;
    let schema = store::SqliteStore::open(&db)
        .and_then(|s| s.schema_version())
        .with_context(|| format!("reading {}", db.display()))?;
    let mut files = Vec::new();
    for (name, src) in members(&db, args.with_journal) {
        if !src.exists() {
            continue;
        }
        let copy = work.path().join(name);
        store::backup::snapshot_sqlite(&src, &copy)
            .with_context(|| format!("snapshot of {}", src.display()))?;
        files.push((name, copy));
    }
    let manifest = json!({
        "format": FORMAT,
        "phoneboot": env!("CARGO_PKG_VERSION"),
        "schema_version": schema,
        "created_unix": unix_now(),
        "files": files.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    });
    // Written beside the target, renamed into place only when complete.
    let partial = args.file.with_extension("partial");
    let out = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut tar = tar::Builder::new(out);
    let text = serde_json::to_vec_pretty(&manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, text.as_slice())?;
    for (name, copy) in &files {
        tar.append_path_with_name(copy, name)?;
    }
    tar.into_inner()?.sync_all()?;
    std::fs::rename(&partial, &args.file)?;
    println!(
        "backup of {} (schema {schema}): {} -> {}",
        db.display(),
        files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(target: &Target, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let db = target.database()?;
    if let Ok(url) = target.server_url() {
        if super::target::http_with("GET", &format!("{url}/healthz"), None, None).is_ok() {
            bail!("a server answers at {url}: stop phoneboot on this node before restoring");
        }
    }
    let work = tempfile::tempdir().context("a temporary directory")?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut manifest = None;
    let mut found = Vec::new();
    let known: Vec<&str> = members(&db, true).iter().map(|(n, _)| *n).collect();
    for entry in archive
        .entries()
        .with_context(|| format!("{} is not a tar archive", args.file.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", args.file.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == MANIFEST {
            let mut text = String::new();
            entry.by_ref().take(64 * 1024).read_to_string(&mut text)?;
            manifest = Some(serde_json::from_str::<serde_json::Value>(&text)?);
        } else if let Some(n) = known.iter().find(|k| **k == name) {
            // Only the names a backup writes, unpacked under the work directory.
            let dst = work.path().join(n);
            entry.unpack(&dst)?;
            if !store::backup::is_sqlite(&dst) {
                bail!("{name} in {} is not a SQLite database", args.file.display());
            }
            found.push((*n, dst));
        } else {
            bail!(
                "{} holds {name:?}, which no phoneboot backup contains",
                args.file.display()
            );
        }
    }
    let manifest =
        manifest.with_context(|| format!("{} has no {MANIFEST}", args.file.display()))?;
    if manifest["format"] != FORMAT {
        bail!(
            "{}: format {} is not {FORMAT}",
            args.file.display(),
            manifest["format"]
        );
    }
    let Some((_, device_db)) = found.iter().find(|(n, _)| *n == "phoneboot.db") else {
        bail!("{} holds no phoneboot.db", args.file.display());
    };
    // Opening runs the migrations: an older schema is brought forward, a newer one refused.
    let restored = store::SqliteStore::open(device_db)
        .with_context(|| format!("the device database in {}", args.file.display()))?;
    let devices = restored.devices()?.len();
    let lines = restored.lines()?.len();
    drop(restored);
    if db.exists() && !args.force {
        let current =
            store::SqliteStore::open(&db).with_context(|| format!("reading {}", db.display()))?;
        let (d, l) = (current.devices()?.len(), current.lines()?.len());
        if d + l > 0 {
            bail!(
                "{} already holds {d} devices and {l} lines; add --force to replace them",
                db.display()
            );
        }
    }
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)?;
    }
    for (name, src) in &found {
        let dst = members(&db, true)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .context("member path")?;
        let staged = dst.with_extension("restore");
        std::fs::copy(src, &staged)?;
        // A stale write-ahead log of the replaced database must not be replayed onto it.
        for suffix in ["-wal", "-shm"] {
            let mut side = dst.clone().into_os_string();
            side.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(side));
        }
        std::fs::rename(&staged, &dst)?;
    }
    println!(
        "restored {devices} devices and {lines} lines ({}) into {}",
        found.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        db.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
