//! Users, roles, sessions and API tokens.
//!
//! Passwords are stored as Argon2id hashes; API tokens (random, 160 bits) as SHA-256 digests,
//! shown once when created. Sessions live in memory (a restart logs everyone out), expire
//! when idle and after a maximum age, and carry a CSRF token that every state-changing request
//! made with the session cookie must echo in `X-CSRF-Token`. Requests with a bearer token do
//! not carry ambient credentials and need no CSRF token.

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
    pub created: SystemTime,
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
        Ok(AuthStore {
            conn: Mutex::new(conn),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            opts,
            argon: Argon2::default(),
        })
    }

    pub fn options(&self) -> AuthOptions {
        self.opts
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hash(&self, pw: &str) -> Result<String, AuthError> {
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

    pub fn delete_user(&self, name: &str) -> Result<bool, AuthError> {
        let n = self
            .db()
            .execute("DELETE FROM admin_users WHERE name = ?1", [name])?;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.user != name);
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

    /// Changes a password after checking the old one; clears the must-change flag.
    pub fn change_password(&self, user: &str, old: &str, new: &str) -> Result<bool, AuthError> {
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
        self.db().execute(
            "UPDATE admin_users SET hash = ?1, must_change = 0 WHERE name = ?2",
            params![hash, user],
        )?;
        for s in self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            if s.user == user {
                s.must_change = false;
            }
        }
        Ok(true)
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
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if f.len() > 10_000 {
                f.clear();
            }
            let e = f.entry(user.to_string()).or_insert((0, now));
            *e = (e.0 + 1, now);
            tracing::warn!(user, failures = e.0, "login failed");
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
        })
    }

    pub fn logout(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Creates an API token; the secret is returned once and stored only as a digest.
    pub fn create_token(&self, name: &str, role: Role) -> Result<String, AuthError> {
        if name.is_empty() || name.len() > 64 {
            return Err(AuthError::Invalid {
                field: "name",
                message: "1 to 64 characters".into(),
            });
        }
        let secret = format!("pbt_{}", random_token(20));
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.db().execute(
            "INSERT INTO admin_tokens (name, role, digest, created_s) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), sha256_hex(&secret), created],
        )?;
        Ok(secret)
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, AuthError> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT id, name, role, created_s FROM admin_tokens ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                role: Role::parse(&r.get::<_, String>(2)?),
                created: UNIX_EPOCH + Duration::from_secs(r.get::<_, i64>(3)?.max(0) as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn revoke_token(&self, id: i64) -> Result<bool, AuthError> {
        Ok(self
            .db()
            .execute("DELETE FROM admin_tokens WHERE id = ?1", [id])?
            > 0)
    }

    /// The principal of a bearer token.
    pub fn token(&self, secret: &str) -> Option<Principal> {
        let digest = sha256_hex(secret);
        let row: Option<(String, String)> = self
            .db()
            .query_row(
                "SELECT name, role FROM admin_tokens WHERE digest = ?1",
                [digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ok()
            .flatten();
        row.map(|(name, role)| Principal {
            user: format!("token:{name}"),
            role: Role::parse(&role),
            must_change_password: false,
            csrf: None,
        })
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
            .change_password("admin", &otp, "a much better secret")
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
        let tok = a.create_token("grafana", Role::ReadOnly).unwrap();
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
}
