//! What TFTP and HTTP share: the name resolver, the serving limits, the counters and the
//! event reporting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use journal::{Event, EventKind, SharedSink, Transport};
use mac::Mac;
use serde::Serialize;

use crate::source::{mac_from_name, File, FileSource, MacLookup};
use crate::tree::{clean_name, Loaded, PathError, StaticTree};

/// The answer to "what is this name?".
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<File>),
    NotFound,
    /// The name tries to leave the tree (or names something that is not a file).
    Refused(String),
    TooLarge(u64),
}

/// One namespace over generated files and the static tree.
pub struct Resolver {
    generated: Option<Arc<dyn FileSource>>,
    tree: Option<Arc<StaticTree>>,
    secure_cluster: bool,
    /// When set, `SEP<MAC>` names resolve only for the address leased to that MAC.
    lease_gate: Option<Arc<dyn MacLookup>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("generated", &self.generated.is_some())
            .field("tree", &self.tree)
            .field("secure_cluster", &self.secure_cluster)
            .finish()
    }
}

/// `CTL*.tlv` / `ITL*.tlv` (with `.sgn` variants): the security trust lists.
pub fn is_trust_list(clean: &str) -> bool {
    let base = clean
        .rsplit('/')
        .next()
        .unwrap_or(clean)
        .to_ascii_lowercase();
    (base.starts_with("ctl") || base.starts_with("itl"))
        && (base.ends_with(".tlv") || base.ends_with(".tlv.sgn"))
}

impl Resolver {
    pub fn new(
        generated: Option<Arc<dyn FileSource>>,
        tree: Option<Arc<StaticTree>>,
        secure_cluster: bool,
    ) -> Resolver {
        Resolver {
            generated,
            tree,
            secure_cluster,
            lease_gate: None,
        }
    }

    /// Serves a phone's own files only to the holder of its lease (see
    /// [`crate::Config::lease_gate`]).
    pub fn with_lease_gate(mut self, macs: Option<Arc<dyn MacLookup>>) -> Resolver {
        self.lease_gate = macs;
        self
    }

    /// [`Resolver::resolve`] for a request from `client`: with the lease gate on, a name
    /// carrying `SEP<MAC>` is "not found" (what an unknown phone gets) unless `client` holds
    /// that MAC's lease.
    pub async fn resolve_for(&self, name: &str, client: IpAddr) -> Lookup {
        if let Some(gate) = &self.lease_gate {
            if let Some(mac) = mac_from_name(name) {
                let holder = gate.mac_for_ip(client);
                if holder != Some(mac) {
                    tracing::info!(%client, file = name, %mac, holder = ?holder,
                        "file of another phone refused: the client does not hold its DHCP lease");
                    return Lookup::NotFound;
                }
            }
        }
        self.resolve(name).await
    }

    /// Resolves a requested name: generated files first, then the static tree. Blocking disk
    /// work (cache misses) runs on tokio's blocking pool.
    pub async fn resolve(&self, name: &str) -> Lookup {
        let clean = match clean_name(name) {
            Ok(c) => c,
            Err(PathError::Empty) => return Lookup::NotFound,
            Err(e) => return Lookup::Refused(e.to_string()),
        };
        if !self.secure_cluster && is_trust_list(&clean) {
            return Lookup::NotFound;
        }
        if let Some(g) = &self.generated {
            if let Some(f) = g.get(&clean) {
                return Lookup::Found(f);
            }
        }
        let Some(tree) = &self.tree else {
            return Lookup::NotFound;
        };
        let now = Instant::now();
        match tree.cached(&clean, now) {
            Some(Some(f)) => return Lookup::Found(f),
            Some(None) => return Lookup::NotFound,
            None => {}
        }
        let tree = tree.clone();
        let loaded = tokio::task::spawn_blocking(move || tree.load(&clean, Instant::now())).await;
        match loaded {
            Ok(Loaded::Found(f)) => Lookup::Found(f),
            Ok(Loaded::NotFound) => Lookup::NotFound,
            Ok(Loaded::Refused) => Lookup::Refused("outside the tree or not a file".into()),
            Ok(Loaded::TooLarge(n)) => Lookup::TooLarge(n),
            Err(_) => Lookup::NotFound,
        }
    }
}

/// Why a new transfer was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// `max_transfers` reached.
    Total,
    /// This client already holds `per_client_limit` transfers.
    Client,
}

#[derive(Debug, Default)]
struct LimiterState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Admission control shared by TFTP and HTTP: a global and a per-client count.
#[derive(Debug)]
pub struct Limiter {
    max: usize,
    per_client: usize,
    state: Mutex<LimiterState>,
}

/// A held serving slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    pub fn new(max: usize, per_client: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            max,
            per_client,
            state: Mutex::new(LimiterState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Busy> {
        let mut s = self.lock();
        if s.total >= self.max {
            return Err(Busy::Total);
        }
        let n = s.per_ip.entry(ip).or_insert(0);
        if *n >= self.per_client {
            return Err(Busy::Client);
        }
        *n += 1;
        s.total += 1;
        Ok(Permit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.limiter.lock();
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Live counters of the file service (monotonic).
        #[derive(Debug, Default)]
        pub struct Stats { $(pub $name: AtomicU64,)* }

        /// A copy of [`Stats`] at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
        pub struct StatsSnapshot { $(pub $name: u64,)* }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    tftp_requests,
    tftp_served,
    tftp_missing,
    tftp_failed,
    tftp_timeouts,
    tftp_busy,
    tftp_write_refused,
    tftp_malformed,
    tftp_unknown_opcode,
    tftp_stray_packets,
    tftp_duplicate_requests,
    tftp_duplicate_acks,
    tftp_bad_acks,
    tftp_retransmits,
    tftp_refused_paths,
    http_requests,
    http_served,
    http_not_modified,
    http_missing,
    http_failed,
    http_busy,
    http_bad_requests,
    http_refused_paths,
    http_connections_refused,
);

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum FileResult {
    Served,
    /// HTTP 304: the client's copy is current.
    NotModified,
    Missing,
    Failed(String),
}

/// One request, with everything the boot journal and the logs want to know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileEvent {
    pub at: SystemTime,
    pub client: SocketAddr,
    /// From a `SEP<MAC>` in the name, else from the lease table.
    pub mac: Option<Mac>,
    pub name: String,
    pub transport: Transport,
    pub result: FileResult,
    pub bytes: u64,
    pub duration: Duration,
}

impl FileEvent {
    /// The journal form, when a MAC is known (the journal is keyed by MAC). The journal's
    /// file events carry neither the client address nor a 304; those stay in the logs.
    pub fn to_journal(&self) -> Option<Event> {
        let mac = self.mac?;
        let kind = match &self.result {
            FileResult::Served | FileResult::NotModified => EventKind::FileServed {
                name: self.name.clone(),
                transport: self.transport,
                bytes: self.bytes,
                duration_ms: self.duration.as_millis() as u64,
            },
            FileResult::Missing => EventKind::FileMissing {
                name: self.name.clone(),
                transport: self.transport,
            },
            FileResult::Failed(reason) => EventKind::FileFailed {
                name: self.name.clone(),
                transport: self.transport,
                reason: reason.clone(),
            },
        };
        Some(Event::server(self.at, mac, kind))
    }
}

/// Optional extra reader of every [`FileEvent`] (tests, metrics).
pub type Observer = Arc<dyn Fn(&FileEvent) + Send + Sync>;

/// Turns request outcomes into events: journal (when the MAC is known), log, observer.
pub struct Reporter {
    sink: Option<SharedSink>,
    macs: Option<Arc<dyn MacLookup>>,
    observer: Option<Observer>,
    /// Tie events to a phone only through its lease (no journal spoofing by naming a MAC).
    lease_only: bool,
}

impl Reporter {
    pub fn new(
        sink: Option<SharedSink>,
        macs: Option<Arc<dyn MacLookup>>,
        observer: Option<Observer>,
    ) -> Reporter {
        Reporter {
            sink,
            macs,
            observer,
            lease_only: false,
        }
    }

    /// Events name a phone only when the client holds that phone's lease.
    pub fn lease_only(mut self, on: bool) -> Reporter {
        self.lease_only = on;
        self
    }

    /// The phone a request belongs to: by default the MAC in the name, else the lease of the
    /// address; with `lease_only` the lease of the address, and none when the name carries
    /// another MAC (a request naming `SEP<MAC>` from elsewhere writes nothing to that phone's
    /// journal).
    pub fn mac_for(&self, name: &str, ip: IpAddr) -> Option<Mac> {
        let leased = self.macs.as_ref().and_then(|m| m.mac_for_ip(ip));
        let named = mac_from_name(name);
        if self.lease_only {
            return match (named, leased) {
                (Some(n), Some(l)) if n != l => None,
                (_, l) => l,
            };
        }
        named.or(leased)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn report(
        &self,
        client: SocketAddr,
        name: &str,
        transport: Transport,
        result: FileResult,
        bytes: u64,
        duration: Duration,
    ) {
        let ev = FileEvent {
            at: SystemTime::now(),
            client,
            mac: self.mac_for(name, client.ip()),
            name: name.to_string(),
            transport,
            result,
            bytes,
            duration,
        };
        match &ev.result {
            FileResult::Failed(reason) => tracing::info!(
                client = %client, mac = ?ev.mac, file = name, transport = ?transport,
                reason = %reason, duration_ms = duration.as_millis() as u64, "file failed"
            ),
            r => tracing::debug!(
                client = %client, mac = ?ev.mac, file = name, transport = ?transport,
                result = ?r, bytes, duration_ms = duration.as_millis() as u64, "file request"
            ),
        }
        if let Some(o) = &self.observer {
            o(&ev);
        }
        if let (Some(sink), Some(e)) = (&self.sink, ev.to_journal()) {
            sink.emit(e);
        }
    }
}

/// Everything a request handler needs.
pub(crate) struct Ctx {
    pub resolver: Resolver,
    pub limiter: Arc<Limiter>,
    pub stats: Arc<Stats>,
    pub reporter: Reporter,
    pub cfg: crate::Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_lists() {
        assert!(is_trust_list("CTLSEP001B54AABBCC.tlv"));
        assert!(is_trust_list("ITLFile.tlv"));
        assert!(is_trust_list("itlsep001b54aabbcc.TLV.sgn"));
        assert!(!is_trust_list("SEP001B54AABBCC.cnf.xml"));
        assert!(!is_trust_list("ctlfoo.xml"));
    }

    #[test]
    fn limiter_counts_total_and_per_client() {
        let l = Limiter::new(3, 2);
        let a: IpAddr = "198.18.0.2".parse().unwrap();
        let b: IpAddr = "198.18.0.3".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let _p2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Busy::Client);
        let _p3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), Busy::Total);
        drop(p1);
        let _p4 = l.try_acquire(a).unwrap();
        assert_eq!(l.in_use(), 3);
    }
}
