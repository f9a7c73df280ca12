//! The admin surfaces of phoneboot: a JSON REST API with its OpenAPI document, a live event
//! stream (server-sent events), login with roles, sessions, API tokens and CSRF protection,
//! Prometheus metrics, and the embedded web UI, all as one axum [`Router`].
//!
//! The rest of phoneboot plugs in through [`AdminBackend`] (the device database and the
//! services' state), [`ris::Ris`] (registrations), an [`EventSource`] (the event bus),
//! [`bootlog::BootLog`] (the boot journal) and [`AuthStore`] (users and tokens).

pub mod api;
pub mod auth;
pub mod backend;
pub mod metrics;
pub mod openapi;
pub mod systemd;
mod ui;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use journal::{Event, EventSink};
use tokio::sync::broadcast;

pub use auth::{is_loopback, AuthOptions, AuthStore, HostPolicy, Principal, Role};
pub use backend::{
    AdminBackend, AutoRegistration, BackendError, CmGroup, CmNode, Device, DevicePool,
    DeviceProtocol, FieldError, ImportReport, Lease, Line, Load, MemoryBackend, Neighbour,
    NeighbourProtocol, PhoneFile, PoolUse, Template,
};
pub use metrics::Metrics;

/// Where the admin surfaces read events: a live feed and the recent past. The server's event
/// bus implements it; [`LocalBus`] is a stand-alone one.
pub trait EventSource: Send + Sync {
    /// A live feed; lagging readers lose events rather than slow the services.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// The most recent events, oldest first.
    fn recent(&self) -> Vec<Event>;
}

/// A small event bus for tests and tools: an [`EventSink`] and an [`EventSource`].
pub struct LocalBus {
    tx: broadcast::Sender<Event>,
    recent: std::sync::Mutex<std::collections::VecDeque<Event>>,
    keep: usize,
}

impl LocalBus {
    pub fn new(keep: usize) -> Arc<Self> {
        Arc::new(LocalBus {
            tx: broadcast::channel(4096).0,
            recent: std::sync::Mutex::new(std::collections::VecDeque::new()),
            keep: keep.max(1),
        })
    }
}

impl EventSink for LocalBus {
    fn emit(&self, event: Event) {
        {
            let mut q = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= self.keep {
                q.pop_front();
            }
            q.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }
}

impl EventSource for LocalBus {
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
    fn recent(&self) -> Vec<Event> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Knobs of the admin surfaces.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// Requests with a larger body are refused with 413.
    pub body_limit: usize,
    /// The node's name, shown in the UI header.
    pub node: String,
    /// Events queued for the journal writer before new ones are dropped.
    pub journal_queue: usize,
    /// The `Host` names answered besides IP literals and `localhost`, and the Origin check.
    pub hosts: auth::HostPolicy,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions {
            body_limit: 1 << 20,
            node: "phoneboot".into(),
            journal_queue: 10_000,
            hosts: auth::HostPolicy::default(),
        }
    }
}

/// Everything a request handler reads.
pub struct App {
    pub backend: Arc<dyn AdminBackend>,
    pub ris: Arc<ris::Ris>,
    pub events: Arc<dyn EventSource>,
    pub bootlog: Arc<bootlog::BootLog>,
    pub auth: Arc<AuthStore>,
    pub metrics: Arc<Metrics>,
    pub options: AdminOptions,
    pub started: SystemTime,
    journal_sink: Arc<bootlog::BootLogSink>,
}

impl App {
    /// Builds the shared state and starts the ingest task (journal, metrics, logs) on the
    /// current tokio runtime.
    pub fn start(
        backend: Arc<dyn AdminBackend>,
        ris: Arc<ris::Ris>,
        events: Arc<dyn EventSource>,
        bootlog: Arc<bootlog::BootLog>,
        auth: Arc<AuthStore>,
        options: AdminOptions,
    ) -> Arc<App> {
        let journal_sink = bootlog.sink(options.journal_queue);
        let app = Arc::new(App {
            backend,
            ris,
            events,
            bootlog,
            auth,
            metrics: Arc::new(Metrics::default()),
            options,
            started: SystemTime::now(),
            journal_sink,
        });
        let rx = app.events.subscribe();
        tokio::spawn(ingest(Arc::downgrade(&app), rx));
        app
    }

    /// Stops the journal writer after it has stored what is queued (graceful shutdown).
    pub fn shutdown(&self, timeout: Duration) {
        self.journal_sink.close(timeout);
    }

    /// The axum router of every admin surface.
    pub fn router(self: &Arc<Self>) -> Router {
        api::routes(self.clone())
    }
}

/// Builds the admin router: REST API, OpenAPI, SSE, auth, `/metrics` and the web UI.
/// Must be called inside a tokio runtime (it starts the ingest task).
pub fn router(
    backend: Arc<dyn AdminBackend>,
    ris: Arc<ris::Ris>,
    events: Arc<dyn EventSource>,
    bootlog: Arc<bootlog::BootLog>,
    auth: Arc<AuthStore>,
) -> Router {
    App::start(backend, ris, events, bootlog, auth, AdminOptions::default()).router()
}

/// Feeds every event into the journal and the metrics and writes one log line per event.
async fn ingest(app: std::sync::Weak<App>, mut rx: broadcast::Receiver<Event>) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "admin ingest fell behind the event bus");
                if let Some(app) = app.upgrade() {
                    app.metrics.lagged(n);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let Some(app) = app.upgrade() else { break };
        log_event(&ev);
        app.metrics.observe(&ev);
        app.journal_sink.emit(ev);
    }
}

/// One structured log line per event, with the MAC as a field: failures at WARN, warnings
/// and the end of a boot (registered) at INFO, the routine steps of a boot (about twenty per
/// phone; the journal and the live view have them all) at DEBUG; nothing is formatted for a
/// level that is off.
fn log_event(ev: &Event) {
    use tracing::Level;
    const T: &str = "phoneboot::event";
    let (level, detail) = bootlog::describe(&ev.kind);
    let level = match level {
        bootlog::Level::Fail => Level::WARN,
        bootlog::Level::Warn => Level::INFO,
        _ if matches!(ev.kind, journal::EventKind::Registered { .. }) => Level::INFO,
        bootlog::Level::Ok | bootlog::Level::Info => Level::DEBUG,
    };
    let on = match level {
        Level::WARN => tracing::enabled!(target: T, Level::WARN),
        Level::INFO => tracing::enabled!(target: T, Level::INFO),
        _ => tracing::enabled!(target: T, Level::DEBUG),
    };
    if !on {
        return;
    }
    let kind = serde_json::to_value(&ev.kind)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_default();
    let (mac, step, side) = (&ev.mac, ev.kind.step(), ev.side);
    match level {
        Level::WARN => {
            tracing::warn!(target: T, %mac, ?step, %kind, ?side, "{detail}")
        }
        Level::INFO => {
            tracing::info!(target: T, %mac, ?step, %kind, ?side, "{detail}")
        }
        _ => tracing::debug!(target: T, %mac, ?step, %kind, ?side, "{detail}"),
    }
}
