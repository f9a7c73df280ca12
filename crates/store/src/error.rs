//! Errors an administrator can act on: each names the field (and the CSV row) and says
//! what was expected.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A value has the wrong shape (bad MAC, unknown model, DN outside every range ...).
    #[error("{field}: expected {expected}, found {found:?}")]
    Invalid {
        field: String,
        expected: String,
        found: String,
    },
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("{kind} {name:?} is still used by {by}")]
    InUse {
        kind: &'static str,
        name: String,
        by: String,
    },
    /// Optimistic-concurrency check failed: someone else changed the record first.
    #[error("{name} was changed by someone else (now at revision {found}, expected {expected}); read it again and retry")]
    Conflict {
        name: String,
        expected: u64,
        found: u64,
    },
    /// An error in one CSV row (1-based line number in the file, header = line 1).
    #[error("row {row}: {source}")]
    Row {
        row: usize,
        #[source]
        source: Box<StoreError>,
    },
    /// The CSV itself could not be read (bad quoting, wrong column count, not UTF-8).
    #[error("CSV: {0}")]
    Csv(String),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// PostgreSQL refused a statement or a login (its message and SQLSTATE code).
    #[error("{0}")]
    Postgres(String),
    /// The database cannot be reached now (refused, timed out, connection lost, standby);
    /// the write did not happen. Admin surfaces answer 503 with this text.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row did not have the shape the program expects (a schema from another program).
    #[error("database schema: {message}")]
    Schema { message: String },
    #[error("database schema is at version {found}, newer than this program ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    /// Auto-registration refused a device (typed, so that the SCCP service answers the phone
    /// with the right reason without reading the message).
    #[error("{0}")]
    AutoRegistration(AutoRegRefusal),
}

/// Why auto-registration refused a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoRegRefusal {
    /// Switched off in the settings.
    Disabled,
    /// Every directory number of the range is taken.
    RangeFull { start: String, end: String },
}

impl AutoRegRefusal {
    /// The refusal as an invalid value: (field, expected, found), as the API reports it.
    pub fn as_invalid(&self) -> (&'static str, &'static str, String) {
        match self {
            AutoRegRefusal::Disabled => {
                ("auto-registration", "enabled (settings)", "disabled".into())
            }
            AutoRegRefusal::RangeFull { start, end } => (
                "auto-registration DN range",
                "a free directory number",
                format!("{start}-{end} all in use"),
            ),
        }
    }
}

impl std::fmt::Display for AutoRegRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (field, expected, found) = self.as_invalid();
        write!(f, "{field}: expected {expected}, found {found:?}")
    }
}

impl StoreError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        StoreError::Invalid {
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn at_row(self, row: usize) -> Self {
        match self {
            StoreError::Row { .. } => self,
            other => StoreError::Row {
                row,
                source: Box::new(other),
            },
        }
    }
}
