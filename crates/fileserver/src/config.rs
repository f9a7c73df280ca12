//! The file service's configuration, with defaults and validation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the file service needs to know. Every field has a default (see `Default`), so
/// a configuration file names only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// TFTP listen address; `None` disables TFTP.
    pub tftp_bind: Option<SocketAddr>,
    /// HTTP listen address (phones use TCP 6970); `None` disables HTTP.
    pub http_bind: Option<SocketAddr>,
    /// Directory of static files (firmware, locales, tones, rings, Desktops/...).
    pub root: Option<PathBuf>,
    /// Transfers (TFTP) plus requests (HTTP) served at once; beyond it new ones are refused
    /// at once (TFTP error 0 "server busy", HTTP 503), like CUCM's Maximum Serving Count.
    pub max_transfers: usize,
    /// Concurrent transfers one client address may hold.
    pub per_client_limit: usize,
    /// Open HTTP connections (idle keep-alive ones included).
    pub http_max_connections: usize,
    /// Largest TFTP block size granted (RFC 2348); 1468 fits a 1500-byte MTU.
    pub blksize_max: u16,
    /// Largest TFTP window granted (RFC 7440).
    pub windowsize_max: u16,
    /// First TFTP retransmission timeout, in milliseconds (when the client asks for none).
    pub tftp_timeout_ms: u64,
    /// Back-off cap, in milliseconds.
    pub tftp_max_timeout_ms: u64,
    /// Retransmissions before a TFTP transfer is abandoned.
    pub tftp_retries: u32,
    /// Hard cap on one transfer's or HTTP connection's lifetime, in seconds: a trickling
    /// client cannot hold a slot longer.
    pub transfer_deadline_secs: u64,
    /// Time an HTTP client has to send its request headers, in seconds.
    pub http_header_timeout_secs: u64,
    /// Bytes of static files kept in memory.
    pub cache_bytes: u64,
    /// Static files larger than this are read for each request and not cached.
    pub cache_max_file_bytes: u64,
    /// Static files larger than this are refused (TFTP error 3 / HTTP 500).
    pub max_file_bytes: u64,
    /// How long a cached static file (or a miss) is trusted before it is checked on disk
    /// again, in milliseconds.
    pub revalidate_ms: u64,
    /// Whether the cluster is secure (CTL/ITL files served). When false, requests for
    /// `CTL*.tlv` / `ITL*.tlv` are answered "file not found" at once.
    pub secure_cluster: bool,
    /// A phone's own files (a `SEP<MAC>` name: its configuration, with its credentials) go
    /// only to the address that holds that MAC's DHCP lease ([`crate::MacLookup`]); anyone
    /// else gets "not found", as an unknown phone does. Journal events are then written only
    /// for requests tied to the phone by its lease. Needs phoneboot to be the DHCP server.
    #[serde(default)]
    pub lease_gate: bool,
}

impl Default for Config {
    fn default() -> Self {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Config {
            tftp_bind: Some(SocketAddr::new(any, 69)),
            http_bind: Some(SocketAddr::new(any, 6970)),
            root: None,
            max_transfers: 1500,
            per_client_limit: 8,
            http_max_connections: 4096,
            blksize_max: 1468,
            windowsize_max: 16,
            tftp_timeout_ms: 1000,
            tftp_max_timeout_ms: 8000,
            tftp_retries: 5,
            transfer_deadline_secs: 300,
            http_header_timeout_secs: 10,
            cache_bytes: 256 * 1024 * 1024,
            cache_max_file_bytes: 64 * 1024 * 1024,
            max_file_bytes: 1024 * 1024 * 1024,
            revalidate_ms: 1000,
            secure_cluster: false,
            lease_gate: false,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} must be at least {min} (got {value})")]
    TooSmall {
        field: &'static str,
        min: u64,
        value: u64,
    },
    #[error("{field} must be at most {max} (got {value})")]
    TooLarge {
        field: &'static str,
        max: u64,
        value: u64,
    },
    #[error("static root {0:?} is not a directory")]
    RootNotDir(PathBuf),
    #[error("neither tftp_bind nor http_bind is set: nothing to serve")]
    NothingToServe,
}

fn at_least(field: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        Err(ConfigError::TooSmall { field, min, value })
    } else {
        Ok(())
    }
}

fn at_most(field: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value > max {
        Err(ConfigError::TooLarge { field, max, value })
    } else {
        Ok(())
    }
}

impl Config {
    /// Checks ranges and that the root is a directory.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tftp_bind.is_none() && self.http_bind.is_none() {
            return Err(ConfigError::NothingToServe);
        }
        at_least("max_transfers", self.max_transfers as u64, 1)?;
        at_least("per_client_limit", self.per_client_limit as u64, 1)?;
        at_least("http_max_connections", self.http_max_connections as u64, 1)?;
        at_least("blksize_max", u64::from(self.blksize_max), 512)?;
        at_most("blksize_max", u64::from(self.blksize_max), 65464)?;
        at_least("windowsize_max", u64::from(self.windowsize_max), 1)?;
        at_least("tftp_timeout_ms", self.tftp_timeout_ms, 10)?;
        at_most("tftp_timeout_ms", self.tftp_timeout_ms, 255_000)?;
        at_least(
            "tftp_max_timeout_ms",
            self.tftp_max_timeout_ms,
            self.tftp_timeout_ms,
        )?;
        at_most("tftp_retries", u64::from(self.tftp_retries), 100)?;
        at_least("transfer_deadline_secs", self.transfer_deadline_secs, 1)?;
        at_least("http_header_timeout_secs", self.http_header_timeout_secs, 1)?;
        at_least("max_file_bytes", self.max_file_bytes, 1)?;
        if let Some(root) = &self.root {
            if !root.is_dir() {
                return Err(ConfigError::RootNotDir(root.clone()));
            }
        }
        Ok(())
    }

    pub(crate) fn tftp_server_config(&self) -> tftp::ServerConfig {
        tftp::ServerConfig {
            limits: tftp::OptionLimits {
                max_blksize: self.blksize_max,
                max_windowsize: self.windowsize_max,
                accept_timeout: true,
                accept_tsize: true,
            },
            initial_timeout: Duration::from_millis(self.tftp_timeout_ms),
            max_timeout: Duration::from_millis(self.tftp_max_timeout_ms),
            max_retries: self.tftp_retries,
        }
    }

    pub(crate) fn transfer_deadline(&self) -> Duration {
        Duration::from_secs(self.transfer_deadline_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config {
            blksize_max: 100,
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::TooSmall { .. })));
        let c = Config {
            tftp_bind: None,
            http_bind: None,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::NothingToServe));
        let c = Config {
            root: Some("/nonexistent/phoneboot".into()),
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::RootNotDir(_))));
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let c: Config =
            serde_json::from_str(r#"{"max_transfers": 10, "secure_cluster": true}"#).unwrap();
        assert_eq!(c.max_transfers, 10);
        assert!(c.secure_cluster);
        assert_eq!(c.blksize_max, 1468);
        assert!(serde_json::from_str::<Config>(r#"{"bogus": 1}"#).is_err());
    }
}
