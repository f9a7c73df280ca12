//! The PostgreSQL backend: the same store logic ([`crate::sqlstore`]) over `tokio-postgres`.
//!
//! Why `tokio-postgres` driven by a private runtime, and not the blocking `postgres` crate:
//! [`crate::Store`] is synchronous and `phoneboot serve` calls it from tokio tasks. The
//! `postgres` crate blocks on its own runtime inside every call, which panics ("Cannot start a
//! runtime from within a runtime") when the caller is itself on a tokio worker. Here each
//! statement is a future spawned onto a small runtime the store owns, and the caller waits on
//! a plain channel with a deadline: it works from any thread, a hung server costs a bounded
//! wait (then [`StoreError::Unavailable`]), and the same runtime can later drive the LISTEN
//! connection. The wait blocks the calling thread exactly like SQLite's lock does today.
//!
//! Connection strings are libpq's (URL or `key=value`), including several hosts and
//! `target_session_attrs=read-write`, so after a standby is promoted the next reconnect finds
//! the new primary. A broken or timed-out connection is dropped and re-made on the next call.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use crate::error::StoreError;
use crate::schema;
use crate::sql::{numbered_to_dollar, Backend, Dialect, Row, Tx, TxMode, Value};
use crate::sqlstore::SqlStore;

/// PostgreSQL-backed [`crate::Store`].
pub type PgStore = SqlStore<PgBackend>;

/// Any constant: the advisory lock that keeps two nodes starting at once from both migrating.
const MIGRATION_LOCK: i64 = 0x7068_6f6e_6562; // "phoneb"

/// How long a connection attempt and one statement may take before the store reports the
/// database unavailable.
#[derive(Debug, Clone, Copy)]
pub struct PgTimeouts {
    pub connect: Duration,
    pub statement: Duration,
}

impl Default for PgTimeouts {
    fn default() -> Self {
        PgTimeouts {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(15),
        }
    }
}

/// The connection behind a [`PgStore`].
pub struct PgBackend {
    rt: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    /// The URL with any password replaced, for messages.
    shown: String,
    timeouts: PgTimeouts,
    conn: Mutex<Option<PgConn>>,
    /// The LISTEN connection's wake-up counter, started on first use.
    feed: std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>,
}

/// The channel every configuration write notifies on commit (the payload is the new
/// generation; listeners re-read the generation anyway, so a lost payload loses nothing).
pub const CONFIG_CHANNEL: &str = "phoneboot_config";

struct PgConn {
    client: Arc<Client>,
    stmts: HashMap<String, Statement>,
}

impl PgStore {
    /// Connects to `url` (libpq URL or `key=value` string) and migrates the schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, PgTimeouts::default())
    }

    /// [`PgStore::open`] with explicit timeouts.
    pub fn open_with(url: &str, timeouts: PgTimeouts) -> Result<Self, StoreError> {
        let shown = redact(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Invalid {
            field: "database.url".into(),
            expected: "a PostgreSQL connection string (postgres://user:password@host[,host2]/dbname?target_session_attrs=read-write)".into(),
            found: format!("{shown} ({e})"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeouts.connect);
        }
        if config.get_application_name().is_none() {
            config.application_name("phoneboot");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pb-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the PostgreSQL runtime: {e}"))
            })?;
        let backend = PgBackend {
            rt: Some(rt),
            config,
            shown,
            timeouts,
            conn: Mutex::new(None),
            feed: std::sync::OnceLock::new(),
        };
        backend.transaction(TxMode::Write, |tx| {
            tx.exec(
                "SELECT pg_advisory_xact_lock(?1)",
                &[Value::Int(MIGRATION_LOCK)],
            )?;
            schema::migrate(tx)
        })?;
        Ok(SqlStore::with_backend(backend))
    }

    /// The connection string with the password hidden.
    pub fn url(&self) -> &str {
        &self.db.shown
    }
}

/// `url` with the password (URL userinfo or `password=`) replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let scheme = &url[..url.len() - rest.len()];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!("{scheme}{}:***{}", &userinfo[..colon], &rest[at..]);
            }
        }
        return url.to_string();
    }
    url.split(' ')
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // Never block (or panic) when the last reference goes away on a tokio worker.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Turns a driver error into a store error: a broken, refused or timed-out connection is
/// `Unavailable` (the caller answers 503 and the next call reconnects); a server error keeps
/// PostgreSQL's own message and code.
fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // read_only_sql_transaction: we reached a standby (e.g. right after a failover).
        if code == "25006" || code.starts_with("08") || code == "57P01" || code == "57P03" {
            return StoreError::Unavailable(format!("PostgreSQL: {} ({code})", db.message()));
        }
        return StoreError::Postgres(format!("{} ({code})", db.message()));
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    StoreError::Unavailable(format!("PostgreSQL: {msg}"))
}

impl PgBackend {
    fn lock(&self) -> MutexGuard<'_, Option<PgConn>> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `fut` on the store's runtime and waits for it, at most `limit`.
    fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(rt) = self.rt.as_ref() else {
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv_timeout(limit) {
            Ok(r) => r.map_err(pg_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL at {} did not answer within {} s",
                self.shown,
                limit.as_secs_f32()
            ))),
        }
    }

    fn connect(&self) -> Result<PgConn, StoreError> {
        let config = self.config.clone();
        let Some(rt) = self.rt.as_ref() else {
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        };
        let handle = rt.handle().clone();
        // Every host of a multi-host string may cost one connect timeout.
        let hosts = config.get_hosts().len().max(1) as u32;
        let client = self
            .run(
                self.timeouts.connect * hosts + Duration::from_secs(1),
                async move {
                    let (client, connection) = config.connect(NoTls).await?;
                    handle.spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::warn!(error = %e, "PostgreSQL connection closed");
                        }
                    });
                    Ok(client)
                },
            )
            .map_err(|e| match e {
                StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("cannot connect to {}: {m}", self.shown))
                }
                StoreError::Postgres(m) => {
                    StoreError::Postgres(format!("cannot connect to {}: {m}", self.shown))
                }
                other => other,
            })?;
        Ok(PgConn {
            client: Arc::new(client),
            stmts: HashMap::new(),
        })
    }

    fn simple(&self, conn: &PgConn, sql: &'static str) -> Result<(), StoreError> {
        let client = conn.client.clone();
        self.run(self.timeouts.statement, async move {
            client.batch_execute(sql).await
        })
    }
}

/// Keeps one dedicated connection LISTENing on [`CONFIG_CHANNEL`] and bumps `tx` on every
/// notification and on every (re)connect, so that the consumer re-reads the generation and
/// catches up on whatever it missed while the connection was down. Stops when every receiver
/// is gone (or the store's runtime shuts down).
async fn listen_loop(
    config: tokio_postgres::Config,
    shown: String,
    tx: tokio::sync::watch::Sender<u64>,
) {
    use tokio_postgres::AsyncMessage;
    let mut backoff = Duration::from_millis(100);
    while !tx.is_closed() {
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let bump = tx.clone();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                bump.send_modify(|v| *v = v.wrapping_add(1))
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return e.to_string(),
                            None => return "closed".to_string(),
                        }
                    }
                });
                match client
                    .batch_execute(&format!("LISTEN {CONFIG_CHANNEL}"))
                    .await
                {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        // Connected: whatever happened while we were away is caught up now.
                        tx.send_modify(|v| *v = v.wrapping_add(1));
                        let why = driver.await.unwrap_or_else(|e| e.to_string());
                        tracing::warn!(database = %shown, reason = %why, "change listener lost its connection; reconnecting");
                    }
                    Err(e) => {
                        driver.abort();
                        tracing::warn!(database = %shown, error = %e, "LISTEN failed");
                    }
                }
                drop(client);
            }
            Err(e) => {
                tracing::debug!(database = %shown, error = %e, "change listener cannot connect yet");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl Backend for PgBackend {
    fn change_feed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let rt = self.rt.as_ref()?;
        Some(
            self.feed
                .get_or_init(|| {
                    let (tx, rx) = tokio::sync::watch::channel(0);
                    rt.spawn(listen_loop(self.config.clone(), self.shown.clone(), tx));
                    rx
                })
                .clone(),
        )
    }

    fn transaction<T>(
        &self,
        mode: TxMode,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let begin = match mode {
            TxMode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            TxMode::Write | TxMode::DryRun => "BEGIN",
        };
        // A connection that died while idle is replaced before anything is sent on it.
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            *guard = Some(self.connect()?);
        }
        let result = match guard.as_mut() {
            Some(conn) => self.run_in(conn, begin, mode, f),
            None => Err(StoreError::Unavailable("no PostgreSQL connection".into())),
        };
        if let Err(StoreError::Unavailable(_)) = &result {
            // The transaction's fate on the server is decided by the connection closing.
            *guard = None;
        }
        result
    }
}

impl PgBackend {
    fn run_in<T>(
        &self,
        conn: &mut PgConn,
        begin: &'static str,
        mode: TxMode,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.simple(conn, begin)?;
        let mut tx = PgTx { be: self, conn };
        match f(&mut tx) {
            Ok(v) => {
                let end = if mode == TxMode::DryRun {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                self.simple(tx.conn, end)?;
                Ok(v)
            }
            Err(e) => {
                if !matches!(e, StoreError::Unavailable(_)) {
                    // A failed ROLLBACK means a dead connection, found at the next call.
                    let _ = self.simple(tx.conn, "ROLLBACK");
                }
                Err(e)
            }
        }
    }
}

struct PgTx<'a> {
    be: &'a PgBackend,
    conn: &'a mut PgConn,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.conn.stmts.get(sql) {
            return Ok(s.clone());
        }
        let client = self.conn.client.clone();
        let text = numbered_to_dollar(sql);
        let stmt = self.be.run(self.be.timeouts.statement, async move {
            client.prepare(&text).await
        })?;
        self.conn.stmts.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

impl Tx for PgTx<'_> {
    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let client = self.conn.client.clone();
        let args = args.to_vec();
        self.be.run(self.be.timeouts.statement, async move {
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            client.execute(&stmt, &refs).await
        })
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let client = self.conn.client.clone();
        let args = args.to_vec();
        let rows = self.be.run(self.be.timeouts.statement, async move {
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            client.query(&stmt, &refs).await
        })?;
        rows.iter().map(row_of).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.conn.client.clone();
        let sql = sql.to_string();
        self.be.run(self.be.timeouts.statement, async move {
            client.batch_execute(&sql).await
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

fn row_of(r: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let bad = |e: tokio_postgres::Error| StoreError::Schema {
            message: format!("column {} ({ty}): {e}", col.name()),
        };
        let v = match *ty {
            Type::VOID => None,
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::OID => r
                .try_get::<_, Option<u32>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => r
                .try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)
                .map_err(bad)?
                .map(|v| Value::Real(v.into())),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(Value::Bytes),
            _ => r
                .try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Value::Text),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if is_text(ty) => i.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            Value::Text(s) if is_text(ty) => s.as_str().to_sql(ty, out),
            Value::Text(_) => Err(format!("text cannot be bound to a {ty} parameter").into()),
            Value::Bytes(b) => b.as_slice().to_sql(ty, out),
            Value::Real(r) => match *ty {
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                _ => r.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://pb:s3cret@db1,db2/phoneboot?target_session_attrs=read-write"),
            "postgres://pb:***@db1,db2/phoneboot?target_session_attrs=read-write"
        );
        assert_eq!(
            redact("host=/tmp/x user=pb password=s3cret dbname=p"),
            "host=/tmp/x user=pb password=*** dbname=p"
        );
        assert_eq!(redact("postgres://pb@db/x"), "postgres://pb@db/x");
    }
}
