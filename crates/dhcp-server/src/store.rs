//! The SQLite lease store: our own table in the shared phoneboot database, WAL mode,
//! `synchronous=FULL` so a committed batch survives a crash or power loss, one transaction per
//! batch (group commit).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use dhcp::{LeaseChange, LeaseRecord, LeaseState, LeaseStore, StoreError};
use mac::Mac;
use rusqlite::{params, Connection};

/// Leases in SQLite. Other crates own other tables of the same file; we only touch
/// `dhcp_leases`.
pub struct SqliteStore {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dhcp_leases (
    ip           INTEGER PRIMARY KEY,  -- IPv4 address as u32
    client_id    BLOB    NOT NULL,     -- option 61, else 0x01 + chaddr
    mac          BLOB    NOT NULL,     -- 6 bytes
    state        TEXT    NOT NULL,     -- bound | released | declined
    expires      INTEGER NOT NULL,     -- Unix seconds
    vendor_class TEXT,
    hostname     TEXT,
    pool         TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS dhcp_leases_mac ON dhcp_leases(mac);
";

/// How far a commit goes before `commit` returns (and the batch's ACKs are sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseSync {
    /// fsync of the WAL on every commit: a lease survives power loss (SQLite
    /// `synchronous=FULL`).
    #[default]
    Full,
    /// The WAL is written but not fsynced per commit: a lease survives a crash of phoneboot,
    /// not of the machine (SQLite `synchronous=NORMAL`; Kea's memfile and dnsmasq give the same).
    Normal,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, with [`LeaseSync::Full`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, LeaseSync::Full)
    }

    /// Opens the database with the given durability.
    pub fn open_with(path: &Path, sync: LeaseSync) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        // WAL: readers (the UI, other services) never block our writes; FULL: a commit is on
        // disk before `commit` returns, which is what lets us send the ACKs.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                LeaseSync::Full => "FULL",
                LeaseSync::Normal => "NORMAL",
            },
        )
        .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteStore { conn })
    }

    /// Leases of one MAC (for the UI / CLI).
    pub fn leases_of(&self, mac: Mac) -> Result<Vec<LeaseRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT ip, client_id, mac, state, expires, vendor_class, hostname, pool
                 FROM dhcp_leases WHERE mac = ?1",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![&mac.0[..]], row_to_record)
            .map_err(err)?;
        rows.filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()
            .map_err(err)
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<LeaseRecord>> {
    let ip: i64 = row.get(0)?;
    let client_id: Vec<u8> = row.get(1)?;
    let mac: Vec<u8> = row.get(2)?;
    let state: String = row.get(3)?;
    let expires: i64 = row.get(4)?;
    let (Ok(ip), Ok(mac), Some(state)) = (
        u32::try_from(ip),
        <[u8; 6]>::try_from(mac.as_slice()),
        LeaseState::parse(&state),
    ) else {
        // A row another version wrote that we cannot read: skip it, never guess.
        return Ok(None);
    };
    Ok(Some(LeaseRecord {
        ip: Ipv4Addr::from(ip),
        client_id,
        mac: Mac(mac),
        state,
        expires: u64::try_from(expires).unwrap_or(0),
        vendor_class: row.get(5)?,
        hostname: row.get(6)?,
        pool: row.get(7)?,
    }))
}

impl LeaseStore for SqliteStore {
    fn load(&mut self) -> Result<Vec<LeaseRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT ip, client_id, mac, state, expires, vendor_class, hostname, pool
                 FROM dhcp_leases",
            )
            .map_err(err)?;
        let rows = st.query_map([], row_to_record).map_err(err)?;
        rows.filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()
            .map_err(err)
    }

    fn commit(&mut self, changes: &[LeaseChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO dhcp_leases
                       (ip, client_id, mac, state, expires, vendor_class, hostname, pool)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(ip) DO UPDATE SET client_id = excluded.client_id,
                       mac = excluded.mac, state = excluded.state, expires = excluded.expires,
                       vendor_class = excluded.vendor_class, hostname = excluded.hostname,
                       pool = excluded.pool",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare_cached("DELETE FROM dhcp_leases WHERE ip = ?1")
                .map_err(err)?;
            for c in changes {
                match c {
                    LeaseChange::Upsert(r) => {
                        up.execute(params![
                            i64::from(u32::from(r.ip)),
                            &r.client_id,
                            &r.mac.0[..],
                            r.state.as_str(),
                            i64::try_from(r.expires).unwrap_or(i64::MAX),
                            &r.vendor_class,
                            &r.hostname,
                            &r.pool,
                        ])
                        .map_err(err)?;
                    }
                    LeaseChange::Delete(ip) => {
                        del.execute(params![i64::from(u32::from(*ip))])
                            .map_err(err)?;
                    }
                }
            }
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ip: u8, mac: u8) -> LeaseRecord {
        LeaseRecord {
            ip: Ipv4Addr::new(198, 18, 0, ip),
            client_id: vec![1, 0, 0x1b, 0x54, 0, 0, mac],
            mac: Mac([0, 0x1b, 0x54, 0, 0, mac]),
            state: LeaseState::Bound,
            expires: 1_900_000_000,
            vendor_class: Some("Cisco Systems, Inc. IP Phone CP-8845".into()),
            hostname: None,
            pool: "voice".into(),
        }
    }

    #[test]
    fn round_trip_upsert_delete_and_coexist_with_other_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phoneboot.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE devices(mac TEXT PRIMARY KEY); INSERT INTO devices VALUES('x');",
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        s.commit(&[
            LeaseChange::Upsert(rec(10, 1)),
            LeaseChange::Upsert(rec(11, 2)),
        ])
        .unwrap();
        let mut moved = rec(10, 3);
        moved.state = LeaseState::Released;
        s.commit(&[
            LeaseChange::Upsert(moved.clone()),
            LeaseChange::Delete(rec(11, 2).ip),
        ])
        .unwrap();
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), vec![moved.clone()]);
        assert_eq!(s.leases_of(moved.mac).unwrap(), vec![moved]);
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let n: i64 = s
            .conn
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "other tables untouched");
    }
}
