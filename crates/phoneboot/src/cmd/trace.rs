//! `phoneboot trace <MAC|SEP>`: a phone's last boot as a diagnosed timeline, read from the
//! boot journal `phoneboot serve` keeps next to the device database. The journal is read
//! directly (the server's `/api/journal/{phone}` needs a login), so it works while the server
//! runs and after it stopped.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use provision::store::{SqliteStore, Store};

use super::target::Target;

pub fn run(target: &Target, phone: &str) -> anyhow::Result<ExitCode> {
    let db = target.database()?;
    let path = server::bootlog_path(&db);
    if !path.exists() {
        bail!(
            "no boot journal at {} (has `phoneboot serve` run with the database {}?)",
            path.display(),
            db.display()
        );
    }
    let mac = match bootlog::parse_phone(phone) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("phoneboot: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let log = bootlog::BootLog::open(&path, bootlog::Limits::default())
        .with_context(|| format!("boot journal {}", path.display()))?;
    // What the database knows makes the diagnosis precise ("not provisioned and
    // auto-registration is off"); without it the trace still shows the events.
    let (provisioned, auto_registration) = match SqliteStore::open(&db) {
        Ok(store) => (
            store.device(&mac.device_name()).ok().map(|d| d.is_some()),
            store.settings().ok().map(|s| s.autoreg_enabled),
        ),
        Err(_) => (None, None),
    };
    let ctx = bootlog::Context {
        provisioned,
        auto_registration,
        now: Some(std::time::SystemTime::now()),
    };
    let text = log
        .trace(phone, &ctx)
        .with_context(|| format!("boot journal {}", path.display()))?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
