//! Which node or database an administration command talks to.

use std::path::PathBuf;

use anyhow::{bail, Context};

/// Where to find the database and the running server: flags, their environment twins, a
/// lab's name, or a configuration file, in that order.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The SQLite device database.
    #[arg(long, global = true, env = "PHONEBOOT_DB")]
    pub db: Option<PathBuf>,
    /// A running server's admin URL, e.g. http://127.0.0.1:8080.
    #[arg(long, global = true, env = "PHONEBOOT_SERVER")]
    pub server: Option<String>,
    /// Use the database and server of this lab.
    #[arg(long, global = true, env = "PHONEBOOT_LAB")]
    pub lab: Option<String>,
    /// Take the database path and admin address from this configuration.
    #[arg(long, global = true, env = "PHONEBOOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// API token sent as `Authorization: Bearer` to the server (default: on the server's own
    /// host the local console credential next to the database, else the token
    /// `phoneboot login` stored for this server). The console routes (reset, events, show,
    /// debug) answer no request without one.
    #[arg(long, global = true, env = "PHONEBOOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Target {
    fn lab(&self) -> anyhow::Result<Option<lab::Lab>> {
        match &self.lab {
            Some(name) => Ok(Some(lab::Lab::new(name, &lab::Lab::default_root())?)),
            None => Ok(None),
        }
    }

    pub fn database(&self) -> anyhow::Result<PathBuf> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        if let Some(cfg) = &self.config {
            return Ok(config::Config::load(cfg)?.node.database);
        }
        if let Some(lab) = self.lab()? {
            if !lab.exists() {
                bail!("lab {} does not exist", lab.name());
            }
            return Ok(lab.database_path());
        }
        Ok(PathBuf::from("/var/lib/phoneboot/phoneboot.db"))
    }

    /// The TFTP root (where the firmware library lives): the configuration's or lab's
    /// `tftp_root`, else `/var/lib/phoneboot/tftp`.
    pub fn tftp_root(&self) -> anyhow::Result<PathBuf> {
        if let Some(cfg) = &self.config {
            if let Some(r) = config::Config::load(cfg)?.node.tftp_root {
                return Ok(r);
            }
        }
        if let Some(lab) = self.lab()? {
            return Ok(lab.tftp_root());
        }
        Ok(PathBuf::from("/var/lib/phoneboot/tftp"))
    }

    /// The cluster's PostgreSQL connection string, when the configuration names one
    /// (`[database] url`); `None` means the SQLite file of [`Target::database`].
    pub fn database_url(&self) -> anyhow::Result<Option<String>> {
        if self.db.is_some() {
            return Ok(None);
        }
        match &self.config {
            Some(cfg) => Ok(config::Config::load(cfg)?.database.url),
            None => Ok(None),
        }
    }

    pub fn server_url(&self) -> anyhow::Result<String> {
        if let Some(s) = &self.server {
            return Ok(s.trim_end_matches('/').to_string());
        }
        if let Some(cfg) = &self.config {
            return Ok(format!(
                "http://{}",
                config::Config::load(cfg)?.admin.listen
            ));
        }
        if let Some(lab) = self.lab()? {
            return lab
                .admin_url()
                .with_context(|| format!("lab {} is not up", lab.name()));
        }
        Ok("http://127.0.0.1:8080".into())
    }
}

impl Target {
    /// The token to send to `server`: `--token`/`PHONEBOOT_TOKEN`, else the stored one.
    pub fn token_for(&self, server: &str) -> Option<String> {
        if let Some(t) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Some(t.to_string());
        }
        self.local_credential(server)
            .or_else(|| super::login::stored_token(server))
    }

    /// The local console credential `phoneboot serve` wrote next to the database, when the
    /// server is on this host (a loopback URL) and this user may read the file (root or the
    /// service user): local console commands then need no login.
    fn local_credential(&self, server: &str) -> Option<String> {
        let host = server.strip_prefix("http://")?.split('/').next()?;
        let ip = host
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .ok()
            .or_else(|| host.parse().ok())?;
        if !admin::is_loopback(ip) {
            return None;
        }
        let path = server::console_token_path(&self.database().ok()?);
        let secret = std::fs::read_to_string(path).ok()?;
        Some(secret.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// `METHOD <server>/<path>` with the token, if any.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let server = self.server_url()?;
        let token = self.token_for(&server);
        let (status, text) = http_with(method, &format!("{server}{path}"), body, token.as_deref())?;
        if status == 401 && token.is_some() {
            eprintln!("phoneboot: the server refused the API token; run `phoneboot login` again");
        }
        Ok((status, text))
    }
}

/// A minimal HTTP/1.1 client for the local admin API (no TLS, no redirects): enough for the
/// CLI to ask a running server, without pulling an HTTP client stack into the binary.
/// `token`, when given, goes out as `Authorization: Bearer`.
pub fn http_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// admin URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host).with_context(|| {
        format!("connecting to the server at {host} (is `phoneboot serve` running?)")
    })?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP answer")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
