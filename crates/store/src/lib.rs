//! The device database: what phones exist and what each one gets.
//!
//! [`Store`] is the interface every backend implements: [`SqliteStore`] is the embedded
//! default, [`PgStore`] the shared database of a cluster. Both run the same logic
//! ([`sqlstore`]) over a small statement interface ([`sql::Tx`]) and apply the same versioned
//! migrations ([`schema`]) on open.
//! Every write runs in one transaction that takes the write lock first (`BEGIN IMMEDIATE`),
//! so concurrent editors serialise instead of overwriting each other, and a CSV import is
//! all-or-nothing. Validation errors name the field (and CSV row) and what was expected.
//!
//! SQL is kept portable: plain `CREATE TABLE`, `INSERT ... ON CONFLICT ... DO UPDATE`,
//! no SQLite-only types; PostgreSQL gets `$N` for `?N` and `BIGINT` for `INTEGER`.

pub mod backup;
pub mod bat;
mod error;
pub mod model;
pub mod pgserver;
mod postgres;
pub mod schema;
pub mod sql;
mod sqlite;
pub mod sqlstore;
pub mod validate;

pub use error::{AutoRegRefusal, StoreError};
pub use model::*;
pub use postgres::{redact, PgBackend, PgStore, PgTimeouts};
pub use sqlite::{SqliteBackend, SqliteStore};
pub use sqlstore::SqlStore;

/// One device row of an import, with the line data the file carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based line number in the file (header = 1), for error messages.
    pub row: usize,
    pub device: NewDevice,
    /// SIP credentials per line appearance (same order as `device.lines`), when the file
    /// carries them (phoneboot's `SIP AUTH USER n` / `SIP AUTH PASSWORD n` columns).
    pub auth: Vec<Option<(String, String)>>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    pub devices_added: usize,
    pub lines_added: usize,
    pub lines_updated: usize,
    /// Names of the devices added, in file order.
    pub devices: Vec<String>,
}

/// The device database. Implementations must be usable from several threads; each method
/// is one transaction.
pub trait Store: Send + Sync {
    // devices
    fn add_device(&self, d: &NewDevice) -> Result<Device, StoreError>;
    /// By `SEP<MAC>` name or MAC in any notation.
    fn device(&self, name: &str) -> Result<Option<Device>, StoreError>;
    fn devices(&self) -> Result<Vec<Device>, StoreError>;
    fn edit_device(&self, name: &str, patch: &DevicePatch) -> Result<Device, StoreError>;
    fn remove_device(&self, name: &str) -> Result<Device, StoreError>;

    // lines
    fn add_line(&self, l: &Line) -> Result<Line, StoreError>;
    fn line(&self, dn: &str) -> Result<Option<Line>, StoreError>;
    fn lines(&self) -> Result<Vec<Line>, StoreError>;
    fn edit_line(&self, dn: &str, patch: &LinePatch) -> Result<Line, StoreError>;
    /// Fails with `InUse` while a device shows the line.
    fn remove_line(&self, dn: &str) -> Result<Line, StoreError>;
    /// Names of devices showing `dn`.
    fn devices_with_line(&self, dn: &str) -> Result<Vec<String>, StoreError>;

    // pools, groups, nodes, date/time groups (insert or replace by name)
    fn put_pool(&self, p: &DevicePool) -> Result<(), StoreError>;
    fn pools(&self) -> Result<Vec<DevicePool>, StoreError>;
    fn remove_pool(&self, name: &str) -> Result<(), StoreError>;
    fn put_group(&self, g: &CmGroup) -> Result<(), StoreError>;
    fn groups(&self) -> Result<Vec<CmGroup>, StoreError>;
    fn remove_group(&self, name: &str) -> Result<(), StoreError>;
    fn put_node(&self, n: &CmNode) -> Result<(), StoreError>;
    fn nodes(&self) -> Result<Vec<CmNode>, StoreError>;
    fn remove_node(&self, name: &str) -> Result<(), StoreError>;
    fn put_date_time_group(&self, d: &DateTimeGroup) -> Result<(), StoreError>;
    fn date_time_groups(&self) -> Result<Vec<DateTimeGroup>, StoreError>;

    // firmware, settings, dial plan, rings, DN ranges
    /// Sets (or with an empty load, clears) a model's default load for a protocol.
    fn set_model_load(&self, model: &str, protocol: Protocol, load: &str)
        -> Result<(), StoreError>;
    fn model_loads(&self) -> Result<Vec<ModelLoad>, StoreError>;
    /// Records (inserts or replaces by name) a firmware load the library holds.
    fn put_firmware_load(&self, l: &FirmwareLoad) -> Result<(), StoreError>;
    fn firmware_loads(&self) -> Result<Vec<FirmwareLoad>, StoreError>;
    fn settings(&self) -> Result<Settings, StoreError>;
    fn put_settings(&self, s: &Settings) -> Result<(), StoreError>;
    fn dial_rules(&self) -> Result<Vec<DialRule>, StoreError>;
    fn set_dial_rules(&self, rules: &[DialRule]) -> Result<(), StoreError>;
    fn rings(&self) -> Result<Vec<Ring>, StoreError>;
    fn set_rings(&self, rings: &[Ring]) -> Result<(), StoreError>;
    fn dn_ranges(&self) -> Result<Vec<DnRange>, StoreError>;
    fn set_dn_ranges(&self, ranges: &[DnRange]) -> Result<(), StoreError>;

    /// Creates an unknown phone in the auto-registration pool with the lowest free DN of
    /// the auto-registration range (a new line whose label and display are the DN).
    fn auto_register(
        &self,
        name: &str,
        model: &str,
        protocol: Option<Protocol>,
    ) -> Result<Device, StoreError>;

    /// Adds every row or nothing (one transaction). Missing lines are created.
    fn import(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError>;

    /// Runs the import in a transaction and rolls it back: the same checks, no change.
    fn check_import(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError>;

    /// Fixed DHCP addresses of provisioned phones, by MAC.
    fn reservations(&self) -> Result<Vec<(mac::Mac, std::net::Ipv4Addr)>, StoreError>;
    /// Reserves `ip` for `mac` (replacing its earlier one), or with `None` removes it. An
    /// address reserved for another phone is refused, naming the field.
    fn set_reservation(
        &self,
        mac: mac::Mac,
        ip: Option<std::net::Ipv4Addr>,
    ) -> Result<(), StoreError>;

    /// An opaque value kept with the cluster (shared by every node), e.g. the trust
    /// identity with its private keys: never part of a snapshot, export or API answer.
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores (or with `None` removes) a blob. Counts as a configuration change (files
    /// derived from it, such as the trust lists, are rebuilt).
    fn put_blob(&self, name: &str, value: Option<&[u8]>) -> Result<(), StoreError>;
    /// Stores `value` under `name` only if no value is there yet; returns what is stored
    /// afterwards (so two nodes starting at once agree on one identity).
    fn put_blob_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Everything, read in one transaction.
    fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// A token that changes whenever the configuration changes (a generation counter every
    /// configuration write bumps; writes to other tables sharing the database, such as DHCP
    /// leases, leave it alone); `None` when the backend cannot tell (then poll with a full
    /// reload, or use LISTEN/NOTIFY on PostgreSQL).
    fn external_change_token(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// A counter that moves soon after any writer (this process or another node) commits a
    /// configuration change, and after the backend reconnects; `None` when the backend has
    /// no push path (SQLite: poll [`Store::external_change_token`]). A wake-up only: compare
    /// the change token to know what changed, so nothing is lost between wake-ups.
    fn change_feed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
