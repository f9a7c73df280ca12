//! Users, roles, sessions and API tokens.
//!
//! Passwords are stored as Argon2id hashes; API tokens (random, 160 bits) as SHA-256 digests,
//! shown once when created. Sessions live in memory (a restart logs everyone out), expire
//! when idle and after a maximum age, and carry a CSRF token that every state-changing request
//! made with the session cookie must echo in `X-CSRF-Token`. Requests with a bearer token do
//! not carry ambient credentials and need no CSRF token.
//!
//! Lifecycle (issue #18 item 2): every API token belongs to a user, expires (default
//! [`DEFAULT_TOKEN_TTL`], at most [`MAX_TOKEN_TTL`]), is listed and revocable, and dies with
//! its user and when that user's password changes — as do the user's other sessions. Password
//! hashing runs at most [`MAX_PARALLEL_HASHES`] at a time (Argon2id takes ~19 MiB each), so a
//! login flood queues or is refused instead of exhausting memory. Failed logins are tracked
//! only for existing users, so the lockout table is bounded by the user list and cannot be
//! flushed by failing with made-up names.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including writes and actions.
    Admin,
    /// Reads only.
    ReadOnly,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReadOnly => "read_only",
        }
    }
    fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::ReadOnly
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct AuthOptions {
    /// A session unused this long expires.
    pub idle: Duration,
    /// A session expires this long after login, used or not.
    pub max_age: Duration,
    /// Mark the cookie `Secure` (when served behind TLS).
    pub secure_cookie: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            idle: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 3600),
            secure_cookie: false,
        }
    }
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// Must change the password before doing anything else (first admin).
    pub must_change_password: bool,
    /// The session's CSRF token (`None` for API tokens).
    #[serde(skip)]
    pub csrf: Option<String>,
    /// The user account behind this principal (the token's owner for an API token).
    #[serde(skip)]
    pub owner: String,
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    role: Role,
    csrf: String,
    created: Instant,
    last_used: Instant,
    must_change: bool,
}

/// A new session, as login returns it.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf: String,
    pub principal: Principal,
}

/// An API token's listing (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The user it acts for; it dies with that user and with a change of their password.
    pub owner: String,
    pub created: SystemTime,
    pub expires: SystemTime,
}

/// Token lifetime when none is asked for.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Longest token lifetime.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Password hashes computed at the same time, at most (each Argon2id run holds ~19 MiB).
pub const MAX_PARALLEL_HASHES: usize = 4;
/// How long a login waits for a hashing slot before it is refused as busy.
const HASH_WAIT: Duration = Duration::from_secs(5);

/// Counts running password hashes; `acquire` waits (bounded) for a free slot.
#[derive(Default)]
struct HashGate {
    running: Mutex<usize>,
    freed: std::sync::Condvar,
    /// Highest number running at once (for tests and metrics).
    peak: std::sync::atomic::AtomicUsize,
}

struct HashSlot<'a>(&'a HashGate);

impl HashGate {
    fn acquire(&self, wait: Duration) -> Option<HashSlot<'_>> {
        let deadline = Instant::now() + wait;
        let mut n = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= MAX_PARALLEL_HASHES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            n = self
                .freed
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *n += 1;
        self.peak
            .fetch_max(*n, std::sync::atomic::Ordering::Relaxed);
        Some(HashSlot(self))
    }
}

impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub must_change_password: bool,
}

/// Users and tokens in SQLite, sessions in memory.
pub struct AuthStore {
    conn: Mutex<Connection>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Failed logins per user name: (count, last failure), to slow password guessing.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    opts: AuthOptions,
    argon: Argon2<'static>,
    hashing: HashGate,
    /// The host-local console credential (see [`AuthStore::set_local_token`]): its digest.
    local_token: Mutex<Option<String>>,
}

/// After this many failed logins in a row a user name is locked for [`LOCKOUT`].
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("opts", &self.opts)
            .finish()
    }
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// A fresh random secret for the local console credential.
pub fn new_local_secret() -> String {
    format!("pbl_{}", random_token(24))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time string comparison for secrets (`subtle`, as the SIP digest check does).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

fn check_username(name: &str) -> Result<(), AuthError> {
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(AuthError::Invalid {
            field: "username",
            message: "1 to 32 letters, digits, '-', '_' or '.'".into(),
        });
    }
    Ok(())
}

fn check_password(pw: &str) -> Result<(), AuthError> {
    if pw.chars().count() < 10 || pw.len() > 256 {
        return Err(AuthError::Invalid {
            field: "password",
            message: "10 to 256 characters".into(),
        });
    }
    Ok(())
}

impl AuthStore {
    /// Opens (creating) the user database at `path`.
    pub fn open(path: &Path, opts: AuthOptions) -> Result<Self, AuthError> {
        Self::with(Connection::open(path)?, opts)
    }

    pub fn in_memory(opts: AuthOptions) -> Result<Self, AuthError> {
        Self::with(Connection::open_in_memory()?, opts)
    }

    fn with(conn: Connection, opts: AuthOptions) -> Result<Self, AuthError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS admin_users (
                 name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
                 must_change INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS admin_tokens (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, role TEXT NOT NULL,
                 digest TEXT NOT NULL UNIQUE, created_s INTEGER NOT NULL);",
        )?;
        // Owner and expiry came later: tokens from before belong to nobody, so no token
        // principal can be found for them (they stop working; `phoneboot login` again).
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('admin_tokens')")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !cols.iter().any(|c| c == "owner") {
            conn.execute_batch(
                "ALTER TABLE admin_tokens ADD COLUMN owner TEXT NOT NULL DEFAULT '';
                 ALTER TABLE admin_tokens ADD COLUMN expires_s INTEGER NOT NULL DEFAULT 0;",
            )?;
        }
        Ok(AuthStore {
            conn: Mutex::new(conn),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            opts,
            argon: Argon2::default(),
            hashing: HashGate::default(),
            local_token: Mutex::new(None),
        })
    }

    pub fn options(&self) -> AuthOptions {
        self.opts
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most password hashes that ran at the same time so far.
    pub fn peak_parallel_hashes(&self) -> usize {
        self.hashing.peak.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hash(&self, pw: &str) -> Result<String, AuthError> {
        let _slot = self
            .hashing
            .acquire(HASH_WAIT)
            .ok_or_else(|| AuthError::Hash("too many logins at once; try again".into()))?;
        let mut salt = [0u8; 16];
        rand::rng().fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
        self.argon
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// Creates the first admin if there is no user at all. With `initial_password` (from
    /// `admin.initial_password`) that is its password; otherwise a random one-time password
    /// is returned, to be printed once, and must be changed at first login.
    pub fn ensure_admin(
        &self,
        initial_password: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        let n: i64 = self
            .db()
            .query_row("SELECT count(*) FROM admin_users", [], |r| r.get(0))?;
        if n > 0 {
            return Ok(None);
        }
        match initial_password {
            // Another node sharing this database may create the admin between the count and
            // the insert: its admin stands, and this node prints no password.
            Some(pw) => match self.create_user("admin", pw, Role::Admin) {
                Err(AuthError::Invalid {
                    field: "username", ..
                }) => Ok(None),
                other => other.map(|()| None),
            },
            None => {
                let pw = random_token(9);
                let hash = self.hash(&pw)?;
                let n = self.db().execute(
                    "INSERT OR IGNORE INTO admin_users (name, role, hash, must_change) VALUES ('admin', 'admin', ?1, 1)",
                    [hash],
                )?;
                Ok((n == 1).then_some(pw))
            }
        }
    }

    pub fn create_user(&self, name: &str, password: &str, role: Role) -> Result<(), AuthError> {
        check_username(name)?;
        check_password(password)?;
        let hash = self.hash(password)?;
        let n = self.db().execute(
            "INSERT OR IGNORE INTO admin_users (name, role, hash, must_change) VALUES (?1, ?2, ?3, 0)",
            params![name, role.as_str(), hash],
        )?;
        if n == 0 {
            return Err(AuthError::Invalid {
                field: "username",
                message: format!("{name} already exists"),
            });
        }
        Ok(())
    }

    pub fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, role, must_change FROM admin_users ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                role: Role::parse(&r.get::<_, String>(1)?),
                must_change_password: r.get::<_, i64>(2)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a user with every token and session of theirs.
    pub fn delete_user(&self, name: &str) -> Result<bool, AuthError> {
        let n = {
            let db = self.db();
            db.execute("DELETE FROM admin_tokens WHERE owner = ?1", [name])?;
            db.execute("DELETE FROM admin_users WHERE name = ?1", [name])?
        };
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.user != name);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(n > 0)
    }

    /// Checks a password. Always does the work of one hash, so unknown users take as long.
    pub fn verify(&self, user: &str, password: &str) -> Option<(Role, bool)> {
        let row: Option<(String, String, i64)> = self
            .db()
            .query_row(
                "SELECT role, hash, must_change FROM admin_users WHERE name = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ok()
            .flatten();
        match row {
            Some((role, hash, must)) => {
                let parsed = PasswordHash::new(&hash).ok()?;
                let _slot = self.hashing.acquire(HASH_WAIT)?;
                self.argon
                    .verify_password(password.as_bytes(), &parsed)
                    .ok()
                    .map(|_| (Role::parse(&role), must != 0))
            }
            None => {
                let _ = self.hash(password);
                None
            }
        }
    }

    /// Changes a password after checking the old one; clears the must-change flag. Every
    /// token of the user and every session but `keep` (the one asking) end.
    pub fn change_password(&self, user: &str, old: &str, new: &str) -> Result<bool, AuthError> {
        self.change_password_keeping(user, old, new, None)
    }

    /// [`AuthStore::change_password`], keeping the session `keep` alive.
    pub fn change_password_keeping(
        &self,
        user: &str,
        old: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<bool, AuthError> {
        if self.verify(user, old).is_none() {
            return Ok(false);
        }
        check_password(new)?;
        if old == new {
            return Err(AuthError::Invalid {
                field: "new_password",
                message: "must differ from the current password".into(),
            });
        }
        let hash = self.hash(new)?;
        {
            let db = self.db();
            db.execute(
                "UPDATE admin_users SET hash = ?1, must_change = 0 WHERE name = ?2",
                params![hash, user],
            )?;
            let gone = db.execute("DELETE FROM admin_tokens WHERE owner = ?1", [user])?;
            if gone > 0 {
                tracing::info!(
                    user,
                    tokens = gone,
                    "password changed: the user's API tokens revoked"
                );
            }
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|id, s| s.user != user || keep.is_some_and(|k| same_secret(k, id)));
        for s in sessions.values_mut() {
            if s.user == user {
                s.must_change = false;
            }
        }
        Ok(true)
    }

    /// Counts a failed login. Only real users are tracked: the table is bounded by the user
    /// list, and failing with made-up names can neither fill it nor flush a lockout out of it.
    fn record_failure(&self, user: &str, now: Instant) {
        if self.user_exists(user) {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let e = f.entry(user.to_string()).or_insert((0, now));
            *e = (e.0 + 1, now);
            tracing::warn!(user, failures = e.0, "login failed");
        } else {
            tracing::warn!(user, "login failed: no such user");
        }
    }

    fn user_exists(&self, user: &str) -> bool {
        self.db()
            .query_row("SELECT 1 FROM admin_users WHERE name = ?1", [user], |_| {
                Ok(())
            })
            .optional()
            .ok()
            .flatten()
            .is_some()
    }

    /// Logs in: a new session, or `None` for a wrong user or password.
    pub fn login(&self, user: &str, password: &str) -> Option<NewSession> {
        self.login_at(user, password, Instant::now())
    }

    pub(crate) fn login_at(&self, user: &str, password: &str, now: Instant) -> Option<NewSession> {
        {
            let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((n, last)) = f.get(user) {
                if *n >= MAX_FAILURES && now.saturating_duration_since(*last) < LOCKOUT {
                    tracing::warn!(user, "login refused: too many failures");
                    return None;
                }
            }
        }
        let Some((role, must_change)) = self.verify(user, password) else {
            self.record_failure(user, now);
            return None;
        };
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
        let id = random_token(24);
        let csrf = random_token(16);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Drop expired sessions while we are here, so the map stays bounded by live ones.
        let opts = self.opts;
        sessions.retain(|_, s| !expired(s, now, &opts));
        sessions.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                role,
                csrf: csrf.clone(),
                created: now,
                last_used: now,
                must_change,
            },
        );
        Some(NewSession {
            id,
            csrf: csrf.clone(),
            principal: Principal {
                user: user.to_string(),
                role,
                must_change_password: must_change,
                csrf: Some(csrf),
                owner: user.to_string(),
            },
        })
    }

    /// The principal of a live session, refreshing its idle timer.
    pub fn session(&self, id: &str) -> Option<Principal> {
        self.session_at(id, Instant::now())
    }

    pub(crate) fn session_at(&self, id: &str, now: Instant) -> Option<Principal> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.get_mut(id)?;
        if expired(s, now, &self.opts) {
            sessions.remove(id);
            return None;
        }
        s.last_used = now;
        Some(Principal {
            user: s.user.clone(),
            role: s.role,
            must_change_password: s.must_change,
            csrf: Some(s.csrf.clone()),
            owner: s.user.clone(),
        })
    }

    pub fn logout(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Creates an API token acting for `owner` (an existing user) with at most `owner`'s role,
    /// expiring after `ttl` (default [`DEFAULT_TOKEN_TTL`], at most [`MAX_TOKEN_TTL`]); the
    /// secret is returned once and stored only as a digest.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<String, AuthError> {
        if name.is_empty() || name.len() > 64 {
            return Err(AuthError::Invalid {
                field: "name",
                message: "1 to 64 characters".into(),
            });
        }
        let ttl = ttl.unwrap_or(DEFAULT_TOKEN_TTL);
        if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
            return Err(AuthError::Invalid {
                field: "expires_in_days",
                message: format!("1 to {} days", MAX_TOKEN_TTL.as_secs() / 86_400),
            });
        }
        let owner_role: Option<String> = self
            .db()
            .query_row(
                "SELECT role FROM admin_users WHERE name = ?1",
                [owner],
                |r| r.get(0),
            )
            .optional()?;
        let Some(owner_role) = owner_role else {
            return Err(AuthError::Invalid {
                field: "owner",
                message: format!("no user {owner}"),
            });
        };
        if role == Role::Admin && Role::parse(&owner_role) != Role::Admin {
            return Err(AuthError::Invalid {
                field: "role",
                message: "a token cannot have more rights than its user".into(),
            });
        }
        let secret = format!("pbt_{}", random_token(20));
        let created = unix_now();
        self.db().execute(
            "INSERT INTO admin_tokens (name, role, digest, created_s, owner, expires_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, role.as_str(), sha256_hex(&secret), created, owner, created + ttl.as_secs() as i64],
        )?;
        Ok(secret)
    }

    /// Every token (`owner`: only that user's), expired ones dropped first.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, AuthError> {
        self.tokens_of(None)
    }

    /// The tokens of `owner` (all with `None`).
    pub fn tokens_of(&self, owner: Option<&str>) -> Result<Vec<TokenInfo>, AuthError> {
        let db = self.db();
        db.execute(
            "DELETE FROM admin_tokens WHERE expires_s <= ?1",
            [unix_now()],
        )?;
        let mut st = db.prepare(
            "SELECT id, name, role, created_s, owner, expires_s FROM admin_tokens
             WHERE ?1 IS NULL OR owner = ?1 ORDER BY id",
        )?;
        let at = |s: i64| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64);
        let rows = st.query_map([owner], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                role: Role::parse(&r.get::<_, String>(2)?),
                created: at(r.get(3)?),
                owner: r.get(4)?,
                expires: at(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes token `id` (of `owner` only, when given).
    pub fn revoke_token(&self, id: i64) -> Result<bool, AuthError> {
        self.revoke_token_of(id, None)
    }

    /// Revokes token `id` if it belongs to `owner` (any token with `None`).
    pub fn revoke_token_of(&self, id: i64, owner: Option<&str>) -> Result<bool, AuthError> {
        Ok(self.db().execute(
            "DELETE FROM admin_tokens WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
            params![id, owner],
        )? > 0)
    }

    /// The principal of a bearer token: unexpired, its owner still there, with the lesser of
    /// the token's and the owner's role.
    pub fn token(&self, secret: &str) -> Option<Principal> {
        let digest = sha256_hex(secret);
        let row: Option<(String, String, String, String)> = self
            .db()
            .query_row(
                "SELECT t.name, t.role, u.name, u.role FROM admin_tokens t
                 JOIN admin_users u ON u.name = t.owner
                 WHERE t.digest = ?1 AND t.expires_s > ?2",
                params![digest, unix_now()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .ok()
            .flatten();
        row.map(|(name, role, owner, owner_role)| Principal {
            user: format!("token:{name}"),
            role: match (Role::parse(&role), Role::parse(&owner_role)) {
                (Role::Admin, Role::Admin) => Role::Admin,
                _ => Role::ReadOnly,
            },
            must_change_password: false,
            csrf: None,
            owner,
        })
    }

    /// Sets the host-local console credential: a secret the server writes to a file only root
    /// and the service user can read (`phoneboot serve`), which the CLI on the same host sends
    /// as a bearer token. Replaced at every start; only its digest is kept.
    pub fn set_local_token(&self, secret: &str) {
        *self.local_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha256_hex(secret));
    }

    /// The principal of the local console credential, if `secret` is it.
    pub fn local_token(&self, secret: &str) -> Option<Principal> {
        let want = self
            .local_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        same_secret(&sha256_hex(secret), &want).then(|| Principal {
            user: "local-console".into(),
            role: Role::Admin,
            must_change_password: false,
            csrf: None,
            owner: "local-console".into(),
        })
    }
}

/// Whether `ip` is this host: 127/8, ::1, or 127/8 as an IPv4-mapped IPv6 address
/// (`::ffff:127.0.0.1`, what a dual-stack listener reports for an IPv4 client).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Which `Host` names the admin listener answers to, and the `Origin` check: against DNS
/// rebinding (a page on an attacker's name that resolves to this host would send its own name
/// as `Host`) and cross-site requests (a foreign page's `fetch` or form carries its `Origin`,
/// or `Sec-Fetch-Site: cross-site`).
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Names besides IP literals and `localhost`, lower case.
    names: Vec<String>,
}

/// Why [`HostPolicy::check`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` names something this listener does not answer to.
    Host,
    /// `Origin` (or `Sec-Fetch-Site`) says the request comes from another site.
    CrossOrigin,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Host => {
                "the Host header names a host this server does not answer to (add it to admin.allowed_hosts)"
            }
            Refusal::CrossOrigin => "cross-origin request refused",
        }
    }
}

impl HostPolicy {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        HostPolicy {
            names: names
                .into_iter()
                .map(|n| n.as_ref().trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    fn host_ok(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        // `[v6]:port`, `[v6]`, `name:port`, `name`, `v4:port`, `v4`.
        let host = if let Some(rest) = authority.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h.to_string(),
                _ => return false,
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
                Some(_) => return false,
                None => authority.clone(),
            }
        };
        let host = host.trim_end_matches('.');
        host.parse::<std::net::IpAddr>().is_ok()
            || host == "localhost"
            || self.names.iter().any(|n| n == host)
    }

    /// Checks `Host`, `Origin` and `Sec-Fetch-Site` of a request (`safe`: GET/HEAD/OPTIONS).
    /// A request without `Host` (HTTP/1.0, in-process tests) is not from a browser and passes
    /// the host check.
    pub fn check(&self, headers: &axum::http::HeaderMap, safe: bool) -> Result<(), Refusal> {
        let host = headers
            .get(axum::http::header::HOST)
            .map(|h| h.to_str().unwrap_or(""));
        if let Some(h) = host {
            if !self.host_ok(h) {
                return Err(Refusal::Host);
            }
        }
        if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
            let origin = origin
                .to_str()
                .unwrap_or("null")
                .trim()
                .to_ascii_lowercase();
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            let same = match (authority, host) {
                (Some(a), Some(h)) => a == h.trim().to_ascii_lowercase(),
                (Some(a), None) => self.host_ok(a),
                (None, _) => false, // "null" (sandboxed frames, file:) or another scheme
            };
            if !same {
                return Err(Refusal::CrossOrigin);
            }
        }
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
        if cross_site && !safe {
            return Err(Refusal::CrossOrigin);
        }
        Ok(())
    }
}

fn expired(s: &Session, now: Instant, o: &AuthOptions) -> bool {
    now.saturating_duration_since(s.last_used) >= o.idle
        || now.saturating_duration_since(s.created) >= o.max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_admin_gets_a_one_time_password_then_must_change_it() {
        let a = AuthStore::in_memory(AuthOptions::default()).unwrap();
        let otp = a.ensure_admin(None).unwrap().unwrap();
        assert!(a.ensure_admin(None).unwrap().is_none(), "only once");
        let s = a.login("admin", &otp).unwrap();
        assert!(s.principal.must_change_password);
        assert!(a.login("admin", "wrong-password").is_none());
        assert!(a
            .change_password_keeping("admin", &otp, "a much better secret", Some(&s.id))
            .unwrap());
        assert!(!a.session(&s.id).unwrap().must_change_password);
        assert!(a.login("admin", &otp).is_none());
        assert_eq!(
            a.login("admin", "a much better secret")
                .unwrap()
                .principal
                .role,
            Role::Admin
        );
    }

    #[test]
    fn repeated_failures_lock_the_user_name_for_a_while() {
        let a = AuthStore::in_memory(AuthOptions::default()).unwrap();
        a.ensure_admin(Some("configured-password")).unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(a.login_at("admin", "guess-guess", t0).is_none());
        }
        assert!(
            a.login_at("admin", "configured-password", t0).is_none(),
            "locked"
        );
        let later = t0 + LOCKOUT + Duration::from_secs(1);
        assert!(a.login_at("admin", "configured-password", later).is_some());
    }

    #[test]
    fn sessions_expire_when_idle_and_tokens_carry_roles() {
        let a = AuthStore::in_memory(AuthOptions {
            idle: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
            secure_cookie: false,
        })
        .unwrap();
        a.ensure_admin(Some("configured-password")).unwrap();
        let s = a.login("admin", "configured-password").unwrap();
        let t0 = Instant::now();
        assert!(a.session_at(&s.id, t0 + Duration::from_secs(59)).is_some());
        assert!(a.session_at(&s.id, t0 + Duration::from_secs(118)).is_some());
        assert!(a.session_at(&s.id, t0 + Duration::from_secs(200)).is_none());
        let tok = a
            .create_token("grafana", Role::ReadOnly, "admin", None)
            .unwrap();
        assert_eq!(a.token(&tok).unwrap().role, Role::ReadOnly);
        assert!(a.token("pbt_nope").is_none());
        let id = a.tokens().unwrap()[0].id;
        assert!(a.revoke_token(id).unwrap());
        assert!(a.token(&tok).is_none());
        assert!(matches!(
            a.create_user("viewer", "short", Role::ReadOnly),
            Err(AuthError::Invalid {
                field: "password",
                ..
            })
        ));
    }

    fn store() -> AuthStore {
        let a = AuthStore::in_memory(AuthOptions::default()).unwrap();
        a.ensure_admin(Some("configured-password")).unwrap();
        a
    }

    /// Issue #18 item 2: tokens expire, are listed with owner and expiry, revocable, and die
    /// with their user and on a password change, as do the user's other sessions.
    #[test]
    fn tokens_and_sessions_die_with_the_user_and_the_password() {
        let a = store();
        a.create_user("viewer", "viewer-password", Role::ReadOnly)
            .unwrap();
        let t_admin = a.create_token("ci", Role::Admin, "admin", None).unwrap();
        let t_view = a
            .create_token(
                "graf",
                Role::ReadOnly,
                "viewer",
                Some(Duration::from_secs(3600)),
            )
            .unwrap();
        assert!(matches!(
            a.create_token("up", Role::Admin, "viewer", None),
            Err(AuthError::Invalid { field: "role", .. })
        ));
        assert!(matches!(
            a.create_token("x", Role::Admin, "admin", Some(MAX_TOKEN_TTL * 2)),
            Err(AuthError::Invalid {
                field: "expires_in_days",
                ..
            })
        ));
        let list = a.tokens().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].owner, "viewer");
        let d = list[1].expires.duration_since(list[1].created).unwrap();
        assert_eq!(d, Duration::from_secs(3600));
        assert_eq!(a.tokens_of(Some("viewer")).unwrap().len(), 1);
        // A viewer cannot revoke the admin's token; the admin can.
        assert!(!a.revoke_token_of(list[0].id, Some("viewer")).unwrap());
        assert_eq!(a.token(&t_view).unwrap().owner, "viewer");
        // Deleting the user kills their token and sessions.
        let vs = a.login("viewer", "viewer-password").unwrap();
        assert!(a.delete_user("viewer").unwrap());
        assert!(a.token(&t_view).is_none(), "token outlived its user");
        assert!(a.session(&vs.id).is_none());
        // A password change kills the user's tokens and other sessions, not the asking one.
        let s1 = a.login("admin", "configured-password").unwrap();
        let s2 = a.login("admin", "configured-password").unwrap();
        assert!(a
            .change_password_keeping(
                "admin",
                "configured-password",
                "another-password",
                Some(&s1.id)
            )
            .unwrap());
        assert!(a.token(&t_admin).is_none(), "token outlived the password");
        assert!(
            a.session(&s2.id).is_none(),
            "other session outlived the password"
        );
        assert!(a.session(&s1.id).is_some());
    }

    #[test]
    fn expired_tokens_stop_working_and_leave_the_list() {
        let a = store();
        let t = a
            .create_token(
                "short",
                Role::Admin,
                "admin",
                Some(Duration::from_secs(3600)),
            )
            .unwrap();
        assert!(a.token(&t).is_some());
        a.db()
            .execute("UPDATE admin_tokens SET expires_s = ?1", [unix_now() - 1])
            .unwrap();
        assert!(a.token(&t).is_none(), "expired token accepted");
        assert!(a.tokens().unwrap().is_empty());
    }

    /// Failing with 20,000 made-up user names must not flush the lockout of a real one (the
    /// table used to be cleared when it passed 10,000 entries).
    #[test]
    fn a_flood_of_unknown_names_does_not_reset_a_lockout() {
        let a = store();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(a.login_at("admin", "guess-guess", t0).is_none());
        }
        // A full login hashes a password each (slow in debug builds): record the failures the
        // way `login_at` does, then fail one full login more.
        for i in 0..20_000 {
            a.record_failure(&format!("nobody{i}"), t0);
        }
        assert!(a.login_at("nobody-else", "guess-guess", t0).is_none());
        assert!(
            a.login_at("admin", "configured-password", t0).is_none(),
            "the lockout was flushed"
        );
        assert!(
            a.failures.lock().unwrap().len() <= 1,
            "unknown names are not tracked"
        );
    }

    /// A login flood runs at most MAX_PARALLEL_HASHES Argon2 computations at once.
    #[test]
    fn parallel_password_hashing_is_bounded() {
        let a = std::sync::Arc::new(store());
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let a = a.clone();
                std::thread::spawn(move || {
                    a.verify(if i % 2 == 0 { "admin" } else { "ghost" }, "wrong-password")
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().is_none());
        }
        let peak = a.peak_parallel_hashes();
        assert!((1..=MAX_PARALLEL_HASHES).contains(&peak), "peak {peak}");
    }

    #[test]
    fn the_local_console_credential_is_separate_from_tokens() {
        let a = store();
        assert!(a.local_token("pbl_x").is_none(), "no local credential set");
        let secret = new_local_secret();
        a.set_local_token(&secret);
        assert_eq!(a.local_token(&secret).unwrap().role, Role::Admin);
        assert!(a.token(&secret).is_none(), "not an API token from anywhere");
        a.set_local_token(&new_local_secret());
        assert!(a.local_token(&secret).is_none(), "replaced at restart");
    }

    #[test]
    fn ipv4_mapped_loopback_is_loopback() {
        for ip in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.9.9.9",
        ] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "::"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn host_and_origin_checks_refuse_rebinding_and_cross_site_requests() {
        let p = HostPolicy::new(["pb.example.net"]);
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:8080",
            "PB.example.net",
            "10.1.2.3",
        ] {
            assert_eq!(p.check(&h(&[("host", host)]), false), Ok(()), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "[::1]x",
            "a:b:c",
        ] {
            assert_eq!(
                p.check(&h(&[("host", host)]), true),
                Err(Refusal::Host),
                "{host}"
            );
        }
        assert_eq!(
            p.check(
                &h(&[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:8080")
                ]),
                false
            ),
            Ok(())
        );
        for origin in ["http://evil.example", "null", "http://127.0.0.1:9999"] {
            assert_eq!(
                p.check(&h(&[("host", "127.0.0.1:8080"), ("origin", origin)]), true),
                Err(Refusal::CrossOrigin),
                "{origin}"
            );
        }
        let xs = h(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(p.check(&xs, false), Err(Refusal::CrossOrigin));
        assert_eq!(
            p.check(&xs, true),
            Ok(()),
            "a link from elsewhere may open a page"
        );
    }
}
