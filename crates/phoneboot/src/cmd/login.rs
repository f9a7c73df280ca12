//! `phoneboot login` / `logout`: an API token for the CLI.
//!
//! `login` exchanges a user name and password for an API token with the user's role
//! (`POST /api/login/token`) and stores it, per server URL, in
//! `$XDG_CONFIG_HOME/phoneboot/tokens.json` (else `~/.config/phoneboot/tokens.json`), a file
//! only its owner can read (0600). Commands that talk to a running server then send it as
//! `Authorization: Bearer`; `--token`/`PHONEBOOT_TOKEN` override it.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::target::{http_with, Target};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The user to log in as.
    #[arg(long, default_value = "admin", env = "PHONEBOOT_USER")]
    pub user: String,
    /// The password (asked on the terminal, without echo, when absent; read from the first
    /// line of standard input when that is not a terminal).
    #[arg(long, env = "PHONEBOOT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Print the token instead of storing it (for PHONEBOOT_TOKEN in scripts).
    #[arg(long)]
    pub print: bool,
}

/// Where tokens are kept.
pub fn token_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("phoneboot").join("tokens.json"))
}

fn read_tokens() -> BTreeMap<String, String> {
    token_file()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The token `login` stored for `server`.
pub fn stored_token(server: &str) -> Option<String> {
    read_tokens().remove(server.trim_end_matches('/'))
}

fn write_tokens(tokens: &BTreeMap<String, String>) -> anyhow::Result<PathBuf> {
    let path = token_file().context("neither XDG_CONFIG_HOME nor HOME is set")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    // Written to a private temporary file, then renamed: the token is never world-readable.
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(tokens)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// Reads a password from the terminal without echo (or a line of a non-terminal stdin).
fn ask_password(user: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    eprint!("password for {user}: ");
    std::io::stderr().flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr/tcsetattr on our own stdin.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if have_tty {
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if have_tty {
        // SAFETY: restoring what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

pub fn login(target: &Target, a: LoginArgs) -> anyhow::Result<ExitCode> {
    let server = target.server_url()?;
    let password = match a.password {
        Some(p) => p,
        None => ask_password(&a.user)?,
    };
    let label: String = format!("cli@{}", hostname()).chars().take(40).collect();
    let body = serde_json::json!({"username": a.user, "password": password, "label": label});
    let (status, text) = http_with(
        "POST",
        &format!("{server}/api/login/token"),
        Some(&body.to_string()),
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 201 {
        let msg = v["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text.trim().to_string());
        bail!("login to {server} failed ({status}): {msg}");
    }
    let token = v["token"]
        .as_str()
        .context("the server answered without a token")?
        .to_string();
    if a.print {
        println!("{token}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut tokens = read_tokens();
    tokens.insert(server.clone(), token);
    let path = write_tokens(&tokens)?;
    println!(
        "logged in to {server} as {} ({}); token stored in {}",
        v["user"].as_str().unwrap_or(&a.user),
        v["role"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Forgets the stored token of the target server (revoke it in the UI or with
/// `DELETE /api/tokens/{id}` to make it useless everywhere).
pub fn logout(target: &Target) -> anyhow::Result<ExitCode> {
    let server = target.server_url()?;
    let mut tokens = read_tokens();
    if tokens.remove(&server).is_none() {
        println!("no token stored for {server}");
        return Ok(ExitCode::SUCCESS);
    }
    let path = write_tokens(&tokens)?;
    println!("token for {server} removed from {}", path.display());
    Ok(ExitCode::SUCCESS)
}
