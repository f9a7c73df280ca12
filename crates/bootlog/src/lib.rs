//! The boot journal: every service's events for every phone, kept in a bounded SQLite store
//! that survives a restart, grouped per MAC into boots.
//!
//! A *boot* is the run of events from the moment a phone starts over (it is heard on a switch
//! port after it was reset or lost, or it asks for an address after it already had one) to the
//! next such moment. The store keeps, per phone, the last [`Limits::events_per_phone`] events
//! and always the whole of the phone's latest boot (up to [`Limits::max_boot_events`]), so
//! `phoneboot phone trace` can show the last boot in full after a restart.
//!
//! [`diagnose`] is pure: it turns one boot into a timeline and a verdict in plain words.
//! [`render_trace`] prints that for a terminal.

mod diagnose;
mod render;
mod time;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use diagnose::{
    describe, diagnose, Context, Entry, Level, Outcome, StepState, StepStatus, Timeline,
};
pub use journal::{Event, EventKind, Mac, Step};
pub use render::render_trace;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
pub use time::format_utc;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BootLogError {
    #[error("boot journal database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("boot journal event encoding: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why `trace` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0:?} is neither a MAC address nor a SEP device name")]
    BadPhone(String),
    #[error(transparent)]
    Log(#[from] BootLogError),
}

/// A MAC in any notation, or a `SEP<MAC>` device name.
pub fn parse_phone(s: &str) -> Result<Mac, TraceError> {
    let t = s.trim();
    t.parse::<Mac>()
        .or_else(|_| Mac::from_device_name(t))
        .map_err(|_| TraceError::BadPhone(s.to_string()))
}

/// How much the journal keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events kept per phone across boots (older ones are dropped first)…
    pub events_per_phone: usize,
    /// …except those of the phone's latest boot, kept up to this many.
    pub max_boot_events: usize,
    /// Phones kept; the ones heard from least recently are forgotten first.
    pub max_phones: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            events_per_phone: 300,
            max_boot_events: 2000,
            max_phones: 20_000,
        }
    }
}

/// How long the writer gathers events into one transaction after the first one arrives.
const WRITE_TICK: Duration = Duration::from_millis(100);
/// Most events stored in one transaction.
const MAX_BATCH: usize = 2048;

/// Trailing discovery events this close before a new boot's DHCPDISCOVER move into that boot.
const DISCOVERY_CARRY: Duration = Duration::from_secs(120);

/// One phone as the journal knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneSummary {
    pub mac: Mac,
    pub device: String,
    pub boot: u64,
    pub boot_started: SystemTime,
    pub last_event: SystemTime,
    /// The latest boot step reached in the current boot.
    pub step: Step,
    pub events_in_boot: usize,
}

/// The bounded, persistent journal. Cheap to share behind an `Arc`; every method is
/// synchronous and short (one SQLite transaction).
pub struct BootLog {
    conn: Mutex<Connection>,
    /// What the writer knows of each phone it stored events for (taken with `conn` held):
    /// spares a read of the phone and a count of its events for every event.
    known: Mutex<HashMap<String, Known>>,
    limits: Limits,
    dropped: AtomicU64,
}

/// A phone's row and its number of stored events, as the last write left them.
#[derive(Debug, Clone, Copy)]
struct Known {
    boot: i64,
    started: i64,
    held: i64,
}

impl std::fmt::Debug for BootLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootLog")
            .field("limits", &self.limits)
            .finish()
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_ms(v: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(v.max(0) as u64)
}

impl BootLog {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, BootLogError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::with_connection(conn, limits)
    }

    /// A journal that lives only in memory (tests, tools).
    pub fn in_memory(limits: Limits) -> Result<Self, BootLogError> {
        Self::with_connection(Connection::open_in_memory()?, limits)
    }

    fn with_connection(conn: Connection, limits: Limits) -> Result<Self, BootLogError> {
        // Without the query planner stability guarantee SQLite marks a statement whose plan
        // could depend on a bound value (the boot's events: `mac = ?1 AND boot = ?2 ORDER BY
        // id`) as expired at every new binding and re-parses it at the next step: the cached
        // statement was re-prepared for every event that can open a boot (16 % of serve's CPU
        // in a boot storm). The plans here do not depend on the values.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bootlog_events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 mac TEXT NOT NULL,
                 boot INTEGER NOT NULL,
                 at_ms INTEGER NOT NULL,
                 step INTEGER NOT NULL,
                 event TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS bootlog_events_mac ON bootlog_events(mac, id);
             CREATE TABLE IF NOT EXISTS bootlog_phones (
                 mac TEXT PRIMARY KEY,
                 boot INTEGER NOT NULL,
                 boot_started_ms INTEGER NOT NULL,
                 last_ms INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS bootlog_phones_last ON bootlog_phones(last_ms);",
        )?;
        Ok(BootLog {
            conn: Mutex::new(conn),
            known: Mutex::new(HashMap::new()),
            limits,
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores one event, opening a new boot when the event says the phone started over.
    pub fn record(&self, event: &Event) -> Result<(), BootLogError> {
        self.record_all(std::slice::from_ref(event))
    }

    /// Stores events in one transaction (the writer thread batches).
    pub fn record_all(&self, events: &[Event]) -> Result<(), BootLogError> {
        let mut conn = self.lock();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let res = (|| {
            let tx = conn.transaction()?;
            for e in events {
                Self::insert(&tx, e, &self.limits, &mut known)?;
            }
            if Self::trim_phones(&tx, &self.limits)? {
                known.clear();
            }
            tx.commit()?;
            Ok(())
        })();
        if res.is_err() {
            // Rolled back: what was learnt in this transaction may not be stored.
            known.clear();
        }
        res
    }

    fn insert(
        tx: &rusqlite::Transaction<'_>,
        e: &Event,
        limits: &Limits,
        known: &mut HashMap<String, Known>,
    ) -> Result<(), BootLogError> {
        let mac = e.mac.to_string();
        let at = ms(e.at);
        // Cached statements: this runs for every event of every phone (a boot storm sends
        // about twenty per phone), and parsing the SQL each time was most of its cost.
        let k = known.get(&mac).copied();
        let current: Option<(i64, i64)> = match k {
            Some(k) => Some((k.boot, k.started)),
            None => tx
                .prepare_cached("SELECT boot, boot_started_ms FROM bootlog_phones WHERE mac = ?1")?
                .query_row([&mac], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        };
        let (boot, started) = match current {
            None => (1, at),
            // Only these kinds can open a new boot: skip reading (and decoding) the boot's
            // events for all the others.
            Some((boot, started))
                if !matches!(
                    e.kind,
                    EventKind::DhcpDiscover { .. }
                        | EventKind::CdpSeen { .. }
                        | EventKind::LldpSeen { .. }
                        | EventKind::PowerGranted { .. }
                ) =>
            {
                (boot, started)
            }
            Some((boot, started)) => {
                let kinds = Self::boot_kinds(tx, &mac, boot)?;
                if opens_new_boot(&kinds, &e.kind) {
                    let next = boot + 1;
                    let mut start = at;
                    if matches!(e.kind, EventKind::DhcpDiscover { .. }) {
                        // The CDP/LLDP frames the phone sent just before asking for an address
                        // belong to the new boot.
                        let carry = carried_discovery(&kinds, at);
                        for (id, t) in &carry {
                            tx.prepare_cached("UPDATE bootlog_events SET boot = ?1 WHERE id = ?2")?
                                .execute(params![next, id])?;
                            start = start.min(*t);
                        }
                    }
                    (next, start)
                } else {
                    (boot, started)
                }
            }
        };
        tx.prepare_cached(
            "INSERT INTO bootlog_events (mac, boot, at_ms, step, event) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![mac, boot, at, e.kind.step() as i64, serde_json::to_string(e)?])?;
        tx.prepare_cached(
            "INSERT INTO bootlog_phones (mac, boot, boot_started_ms, last_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(mac) DO UPDATE SET boot = ?2, boot_started_ms = ?3, last_ms = max(last_ms, ?4)",
        )?
        .execute(params![mac, boot, started, at])?;
        // Bound the phone: drop the oldest events of earlier boots beyond the per-phone limit,
        // then the oldest of the current boot beyond the per-boot limit. A phone within both
        // limits (nearly every phone, nearly every time) has nothing to drop: one indexed
        // count instead of two deletes with sub-selects.
        let held: i64 = match k {
            Some(k) => k.held + 1,
            None => tx
                .prepare_cached("SELECT count(*) FROM bootlog_events WHERE mac = ?1")?
                .query_row([&mac], |r| r.get(0))?,
        };
        if held <= limits.events_per_phone.min(limits.max_boot_events) as i64 {
            known.insert(
                mac,
                Known {
                    boot,
                    started,
                    held,
                },
            );
            return Ok(());
        }
        // Over a limit: trim, and count again at the next event.
        known.remove(&mac);
        tx.prepare_cached(
            "DELETE FROM bootlog_events WHERE mac = ?1 AND boot < ?2 AND id NOT IN
               (SELECT id FROM bootlog_events WHERE mac = ?1 ORDER BY id DESC LIMIT ?3)",
        )?
        .execute(params![mac, boot, limits.events_per_phone as i64])?;
        tx.prepare_cached(
            "DELETE FROM bootlog_events WHERE mac = ?1 AND boot = ?2 AND id NOT IN
               (SELECT id FROM bootlog_events WHERE mac = ?1 AND boot = ?2 ORDER BY id DESC LIMIT ?3)",
        )?
        .execute(params![mac, boot, limits.max_boot_events as i64])?;
        Ok(())
    }

    /// (id, at, kind) of the events of one boot, oldest first.
    fn boot_kinds(
        tx: &rusqlite::Transaction<'_>,
        mac: &str,
        boot: i64,
    ) -> Result<Vec<(i64, i64, EventKind)>, BootLogError> {
        let mut stmt = tx.prepare_cached(
            "SELECT id, at_ms, event FROM bootlog_events WHERE mac = ?1 AND boot = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![mac, boot], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at, json) = row?;
            if let Ok(e) = serde_json::from_str::<Event>(&json) {
                out.push((id, at, e.kind));
            }
        }
        Ok(out)
    }

    /// Forgets the phones heard from least recently beyond the limit. True if any went.
    fn trim_phones(tx: &rusqlite::Transaction<'_>, limits: &Limits) -> Result<bool, BootLogError> {
        let n: i64 = tx
            .prepare_cached("SELECT count(*) FROM bootlog_phones")?
            .query_row([], |r| r.get(0))?;
        let excess = n - limits.max_phones as i64;
        if excess > 0 {
            tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bootlog_gone (mac TEXT PRIMARY KEY)",
                [],
            )?;
            tx.execute("DELETE FROM bootlog_gone", [])?;
            tx.execute(
                "INSERT INTO bootlog_gone SELECT mac FROM bootlog_phones ORDER BY last_ms LIMIT ?1",
                [excess],
            )?;
            tx.execute(
                "DELETE FROM bootlog_events WHERE mac IN (SELECT mac FROM bootlog_gone)",
                [],
            )?;
            tx.execute(
                "DELETE FROM bootlog_phones WHERE mac IN (SELECT mac FROM bootlog_gone)",
                [],
            )?;
        }
        Ok(excess > 0)
    }

    fn events_where(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Event>, BootLogError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            match serde_json::from_str::<Event>(&json?) {
                Ok(e) => out.push(e),
                // A row written by a newer version with an unknown kind: skip, do not fail.
                Err(err) => tracing::debug!(%err, "skipping unreadable journal row"),
            }
        }
        Ok(out)
    }

    /// The phone's latest boot, oldest event first (empty if the phone was never heard).
    pub fn last_boot(&self, mac: Mac) -> Result<Vec<Event>, BootLogError> {
        let m = mac.to_string();
        self.events_where(
            "SELECT e.event FROM bootlog_events e JOIN bootlog_phones p ON p.mac = e.mac
             WHERE e.mac = ?1 AND e.boot = p.boot ORDER BY e.id",
            &[&m],
        )
    }

    /// The phone's last `limit` events across boots, oldest first.
    pub fn recent(&self, mac: Mac, limit: usize) -> Result<Vec<Event>, BootLogError> {
        let m = mac.to_string();
        let lim = limit as i64;
        let mut v = self.events_where(
            "SELECT event FROM bootlog_events WHERE mac = ?1 ORDER BY id DESC LIMIT ?2",
            &[&m, &lim],
        )?;
        v.reverse();
        Ok(v)
    }

    /// Every phone heard, most recently heard first.
    pub fn phones(&self) -> Result<Vec<PhoneSummary>, BootLogError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT p.mac, p.boot, p.boot_started_ms, p.last_ms,
                    (SELECT max(step) FROM bootlog_events e WHERE e.mac = p.mac AND e.boot = p.boot),
                    (SELECT count(*) FROM bootlog_events e WHERE e.mac = p.mac AND e.boot = p.boot)
             FROM bootlog_phones p ORDER BY p.last_ms DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mac, boot, started, last, step, n) = row?;
            let Ok(mac) = mac.parse::<Mac>() else {
                continue;
            };
            out.push(PhoneSummary {
                device: mac.device_name(),
                mac,
                boot: boot as u64,
                boot_started: from_ms(started),
                last_event: from_ms(last),
                step: step_from(step.unwrap_or(0)),
                events_in_boot: n as usize,
            });
        }
        Ok(out)
    }

    /// `phoneboot phone trace <MAC|SEP name>`: the phone's last boot as a diagnosed timeline.
    /// `ctx` carries what the device database knows (provisioned, auto-registration).
    pub fn trace(&self, phone: &str, ctx: &Context) -> Result<String, TraceError> {
        let mac = parse_phone(phone)?;
        let boot = self.last_boot(mac)?;
        Ok(render_trace(mac, &diagnose(&boot, ctx)))
    }

    /// Events the background writer had to drop because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A non-blocking sink in front of this journal: events go through a bounded queue to a
    /// writer thread that stores them in batches; when the queue is full the event is dropped
    /// (and counted) so a service's hot path never waits for the disk.
    pub fn sink(self: &Arc<Self>, queue: usize) -> Arc<BootLogSink> {
        let (tx, rx) = mpsc::sync_channel::<Event>(queue.max(1));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let log = self.clone();
        let spawned = std::thread::Builder::new()
            .name("bootlog-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // One transaction per tick: a commit (WAL frames, the write) costs far
                    // more than an insert, and in a storm events arrive a few at a time.
                    let mut batch = vec![first];
                    let tick = std::time::Instant::now() + WRITE_TICK;
                    while batch.len() < MAX_BATCH {
                        let left = tick.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                    if let Err(err) = log.record_all(&batch) {
                        tracing::warn!(%err, n = batch.len(), "boot journal write failed");
                        log.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
                let _ = done_tx.send(());
            });
        if let Err(err) = &spawned {
            tracing::error!(%err, "cannot start the boot journal writer");
        }
        Arc::new(BootLogSink {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
            log: self.clone(),
        })
    }
}

fn step_from(v: i64) -> Step {
    match v {
        0 => Step::Power,
        1 => Step::Discovery,
        2 => Step::Dhcp,
        3 => Step::Files,
        _ => Step::Registration,
    }
}

/// Does `next` open a new boot, given the current boot's events? (`insert` skips this for
/// kinds that always answer false: keep the two lists in step.)
fn opens_new_boot(current: &[(i64, i64, EventKind)], next: &EventKind) -> bool {
    use EventKind::*;
    match next {
        // A phone that already had a lease and asks again from scratch has rebooted.
        DhcpDiscover { .. } => current.iter().any(|(_, _, k)| {
            matches!(
                k,
                DhcpAck { .. } | FileServed { .. } | FileMissing { .. } | Registered { .. }
            )
        }),
        // Heard on the switch again after its registration ended (reset, lost, unregistered).
        CdpSeen { .. } | LldpSeen { .. } | PowerGranted { .. } => {
            let last_reg = current.iter().rev().find(|(_, _, k)| {
                matches!(
                    k,
                    Registered { .. }
                        | KeepaliveLost { .. }
                        | Unregistered { .. }
                        | ResetSent { .. }
                )
            });
            matches!(
                last_reg,
                Some((
                    _,
                    _,
                    KeepaliveLost { .. } | Unregistered { .. } | ResetSent { .. }
                ))
            )
        }
        _ => false,
    }
}

/// The trailing discovery/power events of a boot, within [`DISCOVERY_CARRY`] of `at`.
fn carried_discovery(current: &[(i64, i64, EventKind)], at: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for (id, t, k) in current.iter().rev() {
        let step = k.step();
        if !(step == Step::Discovery || step == Step::Power) {
            break;
        }
        if at - t > DISCOVERY_CARRY.as_millis() as i64 {
            break;
        }
        out.push((*id, *t));
    }
    out
}

/// The journal as a [`journal::EventSink`]: queue, never block.
pub struct BootLogSink {
    tx: Mutex<Option<mpsc::SyncSender<Event>>>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
    log: Arc<BootLog>,
}

impl BootLogSink {
    /// Stops accepting events and waits (bounded by `timeout`) for the writer to drain.
    pub fn close(&self, timeout: Duration) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(tx);
        // The writer exits once the queue is drained and says so.
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done {
            let _ = done.recv_timeout(timeout);
        }
    }
}

impl journal::EventSink for BootLogSink {
    fn emit(&self, event: Event) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let ok = match guard.as_ref() {
            Some(tx) => tx.try_send(event).is_ok(),
            None => false,
        };
        if !ok {
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
