//! The embedded SQLite backend: one connection serialised by a mutex. Several processes (or
//! several `SqliteStore`s) may open the same file: SQLite's write lock plus `BEGIN IMMEDIATE`
//! makes their edits queue rather than overwrite each other.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::schema;
use crate::sql::{Backend, Dialect, Row, Tx, TxMode, Value};
use crate::sqlstore::SqlStore;

/// SQLite-backed [`crate::Store`].
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The connection behind a [`SqliteStore`].
pub struct SqliteBackend {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// A private in-memory database, for tests and dry runs.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(conn: Connection, wal: bool) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        if wal {
            // WAL lets readers (the file builder) proceed while an editor writes.
            conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
            conn.execute_batch("PRAGMA synchronous=NORMAL")?;
        }
        conn.execute_batch("PRAGMA foreign_keys=ON")?;
        let backend = SqliteBackend {
            conn: Mutex::new(conn),
        };
        backend.transaction(TxMode::Write, schema::migrate)?;
        Ok(SqlStore::with_backend(backend))
    }
}

impl SqliteBackend {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Backend for SqliteBackend {
    fn transaction<T>(
        &self,
        mode: TxMode,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let behavior = match mode {
            TxMode::Read => TransactionBehavior::Deferred,
            TxMode::Write | TxMode::DryRun => TransactionBehavior::Immediate,
        };
        let tx = conn.transaction_with_behavior(behavior)?;
        let mut w = LiteTx(tx);
        let out = f(&mut w)?;
        match mode {
            TxMode::DryRun => w.0.rollback()?,
            _ => w.0.commit()?,
        }
        Ok(out)
    }
}

struct LiteTx<'a>(Transaction<'a>);

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
        })
    }
}

fn value_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

impl Tx for LiteTx<'_> {
    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(value_of(r.get_ref(i)?));
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}
