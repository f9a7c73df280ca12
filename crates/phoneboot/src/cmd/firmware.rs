//! `phoneboot firmware import|list|locales`: the firmware library in the TFTP root (phones
//! request bare names, exactly as Cisco's own install leaves them) and its records in the
//! device database (which loads exist and are complete; files name only those).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use store::Store;

use super::target::Target;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import Cisco packages (.zip, .tar, .tar.gz, .cop.sgn, .cop.sha512), loose files, or
    /// directories of them. All or nothing per package.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Accept loads whose manifest names files the package does not hold.
        #[arg(long)]
        partial: bool,
        /// Firmware directory (default: the TFTP root of the configuration or lab).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Loads in the library: models, protocol, images, completeness.
    List {
        /// Every image with its size.
        #[arg(long)]
        images: bool,
    },
    /// Installed locale directories (user and network locales).
    Locales {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn library(target: &Target, dir: &Option<PathBuf>) -> anyhow::Result<firmware::Library> {
    let d = match dir {
        Some(d) => d.clone(),
        None => target.tftp_root()?,
    };
    firmware::Library::open(&d)
        .map_err(|e| anyhow::anyhow!("firmware directory {}: {e}", d.display()))
}

pub fn run(target: &Target, cmd: Command) -> anyhow::Result<ExitCode> {
    // The cluster's PostgreSQL when the configuration names one, else the SQLite file.
    let store: Box<dyn Store> = match target.database_url()? {
        Some(url) => Box::new(
            store::PgStore::open(&url).map_err(|e| anyhow::anyhow!("database {url}: {e}"))?,
        ),
        None => {
            let db = target.database()?;
            Box::new(
                store::SqliteStore::open(&db)
                    .map_err(|e| anyhow::anyhow!("database {}: {e}", db.display()))?,
            )
        }
    };
    let store = store.as_ref();
    match cmd {
        Command::Import {
            paths,
            partial,
            dir,
        } => {
            let lib = library(target, &dir)?;
            let mut failed = false;
            for p in paths {
                match provision::firmware::import_path(store, &lib, &p, partial) {
                    Ok(reps) => {
                        for r in reps {
                            print!("{}", describe(&r));
                        }
                    }
                    Err(e) => {
                        eprintln!("phoneboot: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::List { images } => {
            print!("{}", list(store, images)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Locales { dir } => {
            let lib = library(target, &dir)?;
            let locs = lib.locales()?;
            if locs.is_empty() {
                println!("no locale installed (import a *-locale-* package)");
            }
            for l in locs {
                println!(
                    "{:<32} {} files: {}",
                    l.name,
                    l.files.len(),
                    l.files.join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe(r: &firmware::ImportReport) -> String {
    let mut s = format!("{}: {:?}", r.package, r.kind);
    if let Some(h) = &r.header {
        let _ = write!(
            s,
            ", signed by {} ({})",
            h.signer.as_deref().unwrap_or("?"),
            h.hash.map(|a| a.name()).unwrap_or_else(|| "no hash".into())
        );
    }
    let _ = writeln!(s, ", {} files written", r.written.len());
    for l in &r.loads {
        let _ = writeln!(
            s,
            "  load {} ({}, {}): {} images, {}",
            l.name,
            l.protocol.as_deref().unwrap_or("protocol unknown"),
            if l.models.is_empty() {
                "models unknown".to_string()
            } else {
                l.models.join(" ")
            },
            l.images.len(),
            if l.complete {
                "complete".to_string()
            } else {
                format!("INCOMPLETE, missing {}", l.missing().join(", "))
            }
        );
    }
    for loc in &r.locales {
        let _ = writeln!(s, "  locale {loc}");
    }
    if !r.dropped.is_empty() {
        let _ = writeln!(s, "  not served (not phone files): {}", r.dropped.join(" "));
    }
    s
}

fn list(store: &dyn Store, images: bool) -> anyhow::Result<String> {
    let loads = store.firmware_loads()?;
    let mut out = format!(
        "{:<32} {:<5} {:<26} {:>6} {:>12}  STATUS\n",
        "LOAD", "PROTO", "MODELS", "IMAGES", "BYTES"
    );
    for l in &loads {
        let bytes: u64 = l.images.iter().filter_map(|i| i.size).sum();
        let _ = writeln!(
            out,
            "{:<32} {:<5} {:<26} {:>6} {:>12}  {}",
            l.name,
            l.protocol,
            l.models.join(","),
            l.images.len(),
            bytes,
            if l.complete {
                "complete".to_string()
            } else {
                format!("incomplete: missing {}", l.missing().join(", "))
            }
        );
        if images {
            for i in &l.images {
                let _ = writeln!(
                    out,
                    "    {}{:<40} {}",
                    if i.platform.is_empty() {
                        String::new()
                    } else {
                        format!("[{}] ", i.platform)
                    },
                    i.name,
                    i.size
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "MISSING".into())
                );
            }
        }
    }
    if loads.is_empty() {
        out.push_str("(no load imported: phoneboot firmware import PACKAGE)\n");
    }
    Ok(out)
}
