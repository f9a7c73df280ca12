//! Registration state shared by the SCCP and SIP services, queryable like CUCM's RIS data.
//!
//! One table answers "which device (and, for SIP, which line) is registered where, since when,
//! from which address, with which protocol version, last heard when". Both call-manager
//! services write to it; the admin API, metrics and the boot journal read it. It holds no
//! clock: writers pass the time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::SystemTime;

pub use journal::Protocol;
use serde::Serialize;

/// The key of one registration: a device, and for SIP the line (AOR user part) it registered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RegKey {
    /// Device name, e.g. `SEP001B54AABBCC`.
    pub device: String,
    /// For SIP, the registered line; `None` for SCCP (one registration per device).
    pub line: Option<String>,
}

/// One registration, as a RIS row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    pub device: String,
    pub line: Option<String>,
    pub protocol: Protocol,
    /// The phoneboot node that holds it (its name or address).
    pub node: String,
    /// Where the phone registered from.
    pub from: SocketAddr,
    pub since: SystemTime,
    pub last_seen: SystemTime,
    /// For SIP the binding's expiry; SCCP registrations last while keepalives arrive.
    pub expires: Option<SystemTime>,
    /// SCCP protocol version, or the SIP user agent.
    pub detail: String,
    /// Model as the phone announced it, when known.
    pub model: Option<String>,
}

impl Registration {
    pub fn key(&self) -> RegKey {
        RegKey {
            device: self.device.clone(),
            line: self.line.clone(),
        }
    }
}

/// The table. Cheap to share behind an `Arc`; readers get snapshots.
#[derive(Debug, Default)]
pub struct Ris {
    rows: RwLock<BTreeMap<RegKey, Registration>>,
}

impl Ris {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a registration, replacing any earlier one with the same key.
    /// Returns the replaced row (a duplicate registration: the caller closes the old session).
    pub fn register(&self, reg: Registration) -> Option<Registration> {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        rows.insert(reg.key(), reg)
    }

    /// Marks a registration alive at `now` (keepalive, refresh). Returns false if unknown.
    pub fn touch(&self, key: &RegKey, now: SystemTime, expires: Option<SystemTime>) -> bool {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        match rows.get_mut(key) {
            Some(r) => {
                r.last_seen = now;
                if expires.is_some() {
                    r.expires = expires;
                }
                true
            }
            None => false,
        }
    }

    /// Removes a registration. Only removes it if it is still the one registered `from`,
    /// so a stale session closing late cannot remove its successor.
    pub fn unregister(&self, key: &RegKey, from: SocketAddr) -> Option<Registration> {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        if rows.get(key).is_some_and(|r| r.from == from) {
            rows.remove(key)
        } else {
            None
        }
    }

    /// Removes every row whose `expires` is at or before `now`, returning them.
    pub fn expire(&self, now: SystemTime) -> Vec<Registration> {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        let dead: Vec<RegKey> = rows
            .iter()
            .filter(|(_, r)| r.expires.is_some_and(|e| e <= now))
            .map(|(k, _)| k.clone())
            .collect();
        dead.iter().filter_map(|k| rows.remove(k)).collect()
    }

    pub fn get(&self, key: &RegKey) -> Option<Registration> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.get(key).cloned()
    }

    /// Every registration of one device (SCCP: at most one; SIP: one per line).
    pub fn of_device(&self, device: &str) -> Vec<Registration> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.values()
            .filter(|r| r.device.eq_ignore_ascii_case(device))
            .cloned()
            .collect()
    }

    /// A snapshot of every row, ordered by device then line.
    pub fn snapshot(&self) -> Vec<Registration> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.values().cloned().collect()
    }

    /// How many rows per protocol, for metrics.
    pub fn count(&self, protocol: Protocol) -> usize {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.values().filter(|r| r.protocol == protocol).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reg(device: &str, line: Option<&str>, from: &str, at: u64) -> Registration {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        Registration {
            device: device.into(),
            line: line.map(Into::into),
            protocol: if line.is_some() {
                Protocol::Sip
            } else {
                Protocol::Sccp
            },
            node: "cm1".into(),
            from: from.parse().unwrap(),
            since: t,
            last_seen: t,
            expires: line.map(|_| t + Duration::from_secs(60)),
            detail: "v20".into(),
            model: None,
        }
    }

    #[test]
    fn newer_registration_replaces_older_and_old_session_cannot_remove_it() {
        let ris = Ris::new();
        assert!(ris
            .register(reg("SEP001", None, "198.18.0.10:5000", 1))
            .is_none());
        let old = ris.register(reg("SEP001", None, "198.18.0.10:5001", 2));
        assert_eq!(old.unwrap().from.port(), 5000);
        let key = RegKey {
            device: "SEP001".into(),
            line: None,
        };
        assert!(ris
            .unregister(&key, "198.18.0.10:5000".parse().unwrap())
            .is_none());
        assert_eq!(ris.count(Protocol::Sccp), 1);
        assert!(ris
            .unregister(&key, "198.18.0.10:5001".parse().unwrap())
            .is_some());
        assert_eq!(ris.count(Protocol::Sccp), 0);
    }

    #[test]
    fn sip_lines_are_separate_rows_and_expire() {
        let ris = Ris::new();
        ris.register(reg("SEP002", Some("1001"), "198.18.0.11:5060", 10));
        ris.register(reg("SEP002", Some("1002"), "198.18.0.11:5060", 40));
        assert_eq!(ris.of_device("sep002").len(), 2);
        let gone = ris.expire(SystemTime::UNIX_EPOCH + Duration::from_secs(75));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].line.as_deref(), Some("1001"));
        let key = RegKey {
            device: "SEP002".into(),
            line: Some("1002".into()),
        };
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(90);
        assert!(ris.touch(&key, later, Some(later + Duration::from_secs(60))));
        assert!(ris.expire(later).is_empty());
        assert_eq!(ris.get(&key).unwrap().last_seen, later);
    }
}
