//! Device-database administration (`phone`, `line`, `pool`, `node`, `group`, `load`,
//! `settings`, `files`, `import`, `export`): on the database file; a running server picks the
//! change up within a second and rebuilds the affected files.

use std::process::ExitCode;

use provision::cli::AdminCommand;

use super::target::Target;

pub fn run(target: &Target, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let result = match target.database_url()? {
        Some(url) => provision::store::PgStore::open(&url)
            .map_err(provision::cli::CliError::from)
            .and_then(|s| provision::cli::run_on(std::sync::Arc::new(s), &cmd)),
        None => provision::cli::run(&target.database()?, &cmd),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            if !text.is_empty() && !text.ends_with('\n') {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("phoneboot: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `phoneboot reset|restart SEP...` through a running server.
pub fn reset(target: &Target, device: &str, kind: &str) -> anyhow::Result<ExitCode> {
    let (status, body) = target.call(
        "POST",
        &format!("/api/devices/{device}/reset"),
        Some(&format!("{{\"kind\":\"{kind}\"}}")),
    )?;
    if status == 200 {
        println!("{}", body.trim());
        return Ok(ExitCode::SUCCESS);
    }
    // Errors come as the REST API's `{"error": {"code", "field", "message"}}`.
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match v["error"]["message"].as_str() {
        Some(m) => eprintln!("phoneboot: {device}: {m}"),
        None => eprintln!("phoneboot: {device}: HTTP {status}: {}", body.trim()),
    }
    Ok(ExitCode::from(1))
}
