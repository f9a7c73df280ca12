//! The small SQL surface both backends share: values, rows, and a transaction that runs
//! statements. The store's logic (validation, imports, auto-registration) is written once
//! against [`Tx`]; SQLite and PostgreSQL each only implement how a statement is sent.
//!
//! SQL text uses SQLite's numbered parameters (`?1`, `?2`); the PostgreSQL backend rewrites
//! them to `$1`, `$2` (see [`numbered_to_dollar`]). Integers are always 64-bit ([`Value::Int`]);
//! the PostgreSQL schema maps `INTEGER` to `BIGINT` so that binds and reads match.

use crate::error::StoreError;

/// One SQL value, as bound or read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Real(f64),
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(v as i64)
            }
        }
        impl From<&$t> for Value {
            fn from(v: &$t) -> Self {
                Value::Int(*v as i64)
            }
        }
    )*};
}
from_int!(i64, i32, u32, u16, u8, bool);

impl From<u64> for Value {
    /// Revisions and sequence numbers never reach 2^63; saturate rather than wrap.
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds the argument slice of a statement: `args![name, 3, flag]`.
#[macro_export]
#[doc(hidden)]
macro_rules! args {
    () => { &[] as &[$crate::sql::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::sql::Value::from($v)),+] as &[$crate::sql::Value] };
}

/// A type a column can be read as. Out-of-range or wrongly typed values are an error that
/// names the column, never a panic or a silent truncation.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

macro_rules! from_value_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_value_int!(i32, u64, u32, u16, u8, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(r) => Some(*r),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self.0.get(i).ok_or_else(|| StoreError::Schema {
            message: format!("result has no column {i}"),
        })?;
        T::from_value(v).ok_or_else(|| StoreError::Schema {
            message: format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ),
        })
    }
}

/// A transaction of either backend. Each call is one statement, except [`Tx::batch`].
pub trait Tx {
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError>;
    /// Runs a query and returns every row.
    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs several `;`-separated statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Which SQL dialect the statements go to.
    fn dialect(&self) -> Dialect;
}

impl dyn Tx + '_ {
    /// The first row, if any.
    pub fn query_opt(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The single value of a one-row, one-column query.
    pub fn query_value<T: FromValue>(
        &mut self,
        sql: &str,
        args: &[Value],
    ) -> Result<T, StoreError> {
        match self.query_opt(sql, args)? {
            Some(r) => r.get(0),
            None => Err(StoreError::Schema {
                message: format!("no row from {sql:?}"),
            }),
        }
    }

    /// Whether the query returns a row.
    pub fn exists(&mut self, sql: &str, args: &[Value]) -> Result<bool, StoreError> {
        Ok(!self.query(sql, args)?.is_empty())
    }
}

/// The two SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// What a transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// A consistent read of several statements.
    Read,
    /// A write that commits.
    Write,
    /// A write that is rolled back at the end (dry runs).
    DryRun,
}

/// How a backend runs a transaction: begin, `f`, then commit (or roll back when `f` fails
/// or the mode is [`TxMode::DryRun`]).
pub trait Backend: Send + Sync + 'static {
    /// See [`crate::Store::change_feed`].
    fn change_feed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    fn transaction<T>(
        &self,
        mode: TxMode,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
}

/// Rewrites SQLite's `?N` parameters into PostgreSQL's `$N`, leaving quoted text alone.
pub fn numbered_to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('$'),
                _ => out.push(c),
            },
        }
    }
    out
}

/// Adapts portable DDL to PostgreSQL: 64-bit integers and byte strings.
pub fn postgres_ddl(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.as_str() {
            "INTEGER" => out.push_str("BIGINT"),
            "BLOB" => out.push_str("BYTEA"),
            "REAL" => out.push_str("DOUBLE PRECISION"),
            _ => out.push_str(word),
        }
        word.clear();
    };
    let mut quote = false;
    for c in sql.chars() {
        if quote {
            out.push(c);
            if c == '\'' {
                quote = false;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            if c == '\'' {
                quote = true;
            }
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            numbered_to_dollar("SELECT '?1' FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1' FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn ddl_types_map_to_postgres() {
        assert_eq!(
            postgres_ddl("CREATE TABLE t (a INTEGER, b BLOB, c TEXT DEFAULT 'INTEGER', d_INTEGER REAL)"),
            "CREATE TABLE t (a BIGINT, b BYTEA, c TEXT DEFAULT 'INTEGER', d_INTEGER DOUBLE PRECISION)"
        );
    }
}
