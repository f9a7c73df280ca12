//! Leases: the durable record, the storage seam and the in-memory store used by tests.
//!
//! The engine keeps every lease in memory (allocation must be fast and synchronous) and hands
//! each change to the driver as a [`LeaseChange`]. The driver writes a batch of changes to a
//! [`LeaseStore`] in one transaction and only then sends the replies of that batch, so an ACK
//! is never on the wire before its lease is durable, and a restart ([`LeaseStore::load`])
//! rebuilds exactly what clients were told.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use mac::Mac;

/// The state a lease can be stored in. Offers are never stored: an offer binds nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Acknowledged to the client until `expires`.
    Bound,
    /// Given back by the client; the address is free but remembered for that client.
    Released,
    /// Declined by the client (address in use by someone else): out of use until `expires`.
    Declined,
}

impl LeaseState {
    pub fn as_str(&self) -> &'static str {
        match self {
            LeaseState::Bound => "bound",
            LeaseState::Released => "released",
            LeaseState::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bound" => LeaseState::Bound,
            "released" => LeaseState::Released,
            "declined" => LeaseState::Declined,
            _ => return None,
        })
    }
}

/// A lease as stored, one per address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub ip: Ipv4Addr,
    /// What identifies the client (RFC 2131 4.2): option 61 if sent, else `[1] + chaddr`.
    pub client_id: Vec<u8>,
    pub mac: Mac,
    pub state: LeaseState,
    /// Seconds since the Unix epoch.
    pub expires: u64,
    /// Option 60 (trailing NULs stripped): tells the phone model.
    pub vendor_class: Option<String>,
    pub hostname: Option<String>,
    pub pool: String,
}

/// One write the driver must make durable before sending the reply that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    Upsert(LeaseRecord),
    Delete(Ipv4Addr),
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("lease store: {0}")]
    Backend(String),
}

/// Durable lease storage. `commit` must be atomic: all of the batch or nothing.
pub trait LeaseStore: Send {
    /// Every stored lease, at start-up.
    fn load(&mut self) -> Result<Vec<LeaseRecord>, StoreError>;
    /// Applies a batch in one transaction; returns once it is durable.
    fn commit(&mut self, changes: &[LeaseChange]) -> Result<(), StoreError>;
}

/// A `LeaseStore` in memory, for tests and the property tests' simulated restarts.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    pub leases: BTreeMap<Ipv4Addr, LeaseRecord>,
    /// Number of successful commits (for group-commit tests).
    pub commits: usize,
}

impl LeaseStore for MemoryStore {
    fn load(&mut self) -> Result<Vec<LeaseRecord>, StoreError> {
        Ok(self.leases.values().cloned().collect())
    }

    fn commit(&mut self, changes: &[LeaseChange]) -> Result<(), StoreError> {
        for c in changes {
            match c {
                LeaseChange::Upsert(r) => {
                    self.leases.insert(r.ip, r.clone());
                }
                LeaseChange::Delete(ip) => {
                    self.leases.remove(ip);
                }
            }
        }
        self.commits += 1;
        Ok(())
    }
}
