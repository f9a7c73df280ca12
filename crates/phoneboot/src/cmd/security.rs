//! `phoneboot security ...`: the cluster identity (show, import, rotate, reset) and mixed
//! mode, on the database file. A running server picks the change up within a second and
//! rebuilds the trust lists. Private keys are read from files the admin names and written
//! only to the database; nothing here prints one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use provision::store::{SqliteStore, Store};
use provision::trust as ptrust;

use super::target::Target;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The cluster's certificates: role, subject, key, serial, fingerprints, validity.
    Show {
        /// One JSON object per certificate
        #[arg(long)]
        json: bool,
    },
    /// Use an administrator's own certificate(s) and key(s) instead of the generated ones
    /// (PEM; RSA for sast/tftp, P-256 for https). Roles not named keep their identity.
    Import(ImportArgs),
    /// Key rollover: new keys for everything; the old SAST keeps signing the trust list
    /// (which carries both SAST certificates), so phones holding the old list take the new
    /// one. Once every phone has rebooted, `rotate --finish` lets the new SAST sign alone.
    Rotate {
        #[arg(long)]
        finish: bool,
    },
    /// Write the cluster's current ITLFile.tlv to FILE (e.g. for `sim boot --itl`, or to
    /// check it with certutils' tlvfile).
    Itl { file: PathBuf },
    /// Mixed mode: serve CTLFile.tlv / CTLSEP<MAC>.tlv as well.
    MixedMode {
        /// on or off
        state: String,
    },
    /// Remove the stored identity (a damaged one, or to start over): the next start makes a
    /// new one. Phones holding the old trust list will refuse the new one until their trust
    /// list is erased.
    Reset {
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// sast, tftp or https
    #[arg(long)]
    role: String,
    /// PEM certificate
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1)
    #[arg(long)]
    key: PathBuf,
}

fn when(secs: u64) -> String {
    httpdate_like(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `YYYY-MM-DD HH:MM:SS UTC` without a date crate.
fn httpdate_like(t: SystemTime) -> String {
    let s = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (s / 86_400, s % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

pub fn run(target: &Target, cmd: Command) -> anyhow::Result<ExitCode> {
    let db = target.database()?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&db).with_context(|| format!("database {}", db.display()))?);
    match cmd {
        Command::Show { json } => {
            let Some(id) = ptrust::load(&*store)? else {
                println!("no cluster identity yet: `phoneboot serve` makes one on its first start");
                return Ok(ExitCode::SUCCESS);
            };
            let now = SystemTime::now();
            let mixed = ptrust::mixed_mode(&*store)?;
            for (role, c) in id.certificates() {
                if json {
                    let mut v = serde_json::to_value(&c)?;
                    v["role"] = role.into();
                    v["valid_now"] = c.valid_at(now).into();
                    println!("{v}");
                    continue;
                }
                let state = if c.valid_at(now) {
                    ""
                } else {
                    "  ** EXPIRED or not yet valid **"
                };
                println!("{role}:{state}");
                println!("  subject:  {}", c.subject);
                println!("  issuer:   {}", c.issuer);
                println!("  key:      {}", c.key);
                println!("  serial:   {}", c.serial);
                println!("  SHA-1:    {}", c.sha1);
                println!("  SHA-256:  {}", c.sha256);
                println!(
                    "  valid:    {} .. {}",
                    when(c.not_before),
                    when(c.not_after)
                );
            }
            if !json {
                println!(
                    "mode: {}{}",
                    if mixed {
                        "mixed (ITL and CTL served)"
                    } else {
                        "ITL only (not mixed mode)"
                    },
                    if id.previous_sast.is_some() {
                        "; rollover in progress (the previous SAST signs the trust list; `security rotate --finish` once every phone rebooted)"
                    } else {
                        ""
                    }
                );
            }
        }
        Command::Import(a) => {
            let cert = std::fs::read_to_string(&a.cert)
                .with_context(|| format!("--cert {}", a.cert.display()))?;
            let key = std::fs::read_to_string(&a.key)
                .with_context(|| format!("--key {}", a.key.display()))?;
            let new = trust::Identity::from_pem(&cert, &key)
                .map_err(|e| anyhow::anyhow!("--cert/--key: {e}"))?;
            let Some(mut id) = ptrust::load(&*store)? else {
                bail!("no cluster identity yet: start `phoneboot serve` once, then import");
            };
            let info = new.info();
            if !info.valid_at(SystemTime::now()) {
                bail!(
                    "--cert: the certificate is expired or not yet valid ({} .. {})",
                    when(info.not_before),
                    when(info.not_after)
                );
            }
            match a.role.as_str() {
                "sast" | "tftp" if !new.is_rsa() => {
                    bail!(
                        "--role {}: needs an RSA key (phones verify RSA signatures)",
                        a.role
                    )
                }
                "sast" => id.sast = new,
                "tftp" => id.tftp = new,
                "https" => id.https = new,
                other => bail!("--role: expected sast, tftp or https, found {other:?}"),
            }
            ptrust::save(&*store, &id)?;
            println!(
                "imported {} certificate {} ({})",
                a.role, info.subject, info.sha1
            );
        }
        Command::Rotate { finish } => {
            let Some(id) = ptrust::load(&*store)? else {
                bail!("no cluster identity yet: `phoneboot serve` makes one on its first start");
            };
            if finish {
                if id.previous_sast.is_none() {
                    bail!("no rollover in progress");
                }
                let mut id = id;
                id.finish_rotation();
                ptrust::save(&*store, &id)?;
                println!("rollover finished: the new SAST signs the trust list alone");
            } else {
                let cluster = id
                    .sast
                    .info()
                    .subject
                    .split(',')
                    .find_map(|p| p.strip_prefix("O=").map(str::to_string))
                    .unwrap_or_else(|| "phoneboot".into());
                let next = id
                    .rotate(&cluster, SystemTime::now())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ptrust::save(&*store, &next)?;
                println!(
                    "new keys made; the trust list is now signed by the previous SAST ({}) and lists both. \
                     Reboot the phones, then run `phoneboot security rotate --finish`.",
                    next.list_signer().info().sha1
                );
            }
        }
        Command::Itl { file } => {
            let Some(id) = ptrust::load(&*store)? else {
                bail!("no cluster identity yet: `phoneboot serve` makes one on its first start");
            };
            let nodes = ptrust::node_names(&*store)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(0);
            let bytes = id
                .build_itl(&nodes, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::write(&file, bytes).with_context(|| format!("{}", file.display()))?;
            println!("wrote {}", file.display());
        }
        Command::MixedMode { state } => {
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                other => bail!("state: expected on or off, found {other:?}"),
            };
            ptrust::set_mixed_mode(&*store, on)?;
            println!("mixed mode {state}");
        }
        Command::Reset { yes } => {
            if !yes {
                bail!("this discards the cluster's keys; phones holding its trust list will refuse the next one until erased. Add --yes");
            }
            store.put_blob(ptrust::IDENTITY_BLOB, None)?;
            println!("cluster identity removed; the next `phoneboot serve` makes a new one");
        }
    }
    Ok(ExitCode::SUCCESS)
}
