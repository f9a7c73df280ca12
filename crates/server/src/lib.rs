//! `phoneboot serve`: one process that runs every service of the boot chain for one node.
//!
//! The server owns the shared state (the event bus, the registration table, the device
//! database) and hands each protocol service what it needs: its validated configuration,
//! its sockets and a shutdown signal. The admin listener is bound by the caller, before the
//! process enters the server's network namespace, so a lab server's admin API is reachable
//! from the host at 127.0.0.1.

pub mod actions;
pub mod adapters;
pub mod admin_backend;
pub mod bus;
mod dhcp_config;
mod discovery_service;
pub mod reservations;
mod seed;
mod trust_files;
mod watch;

use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch as tokio_watch;

use adapters::{LeaseMacs, ProvisionedFiles, SccpDirectory, SipDirectory, SipLineIndex};
pub use bus::EventBus;
use journal::SharedSink;
use provision::Provisioner;
use store::{SqliteStore, Store};

/// Why the server stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("admin listener: {0}")]
    Admin(std::io::Error),
    #[error("device database {path}: {message}")]
    Database { path: String, message: String },
    #[error("{service}: {message}")]
    Service {
        service: &'static str,
        message: String,
    },
}

fn service_err(service: &'static str) -> impl Fn(String) -> ServeError {
    move |message| ServeError::Service { service, message }
}

/// State shared by every service and the admin surfaces.
pub struct Shared {
    pub config: config::Config,
    pub events: Arc<EventBus>,
    pub ris: Arc<ris::Ris>,
    pub started: SystemTime,
    pub provisioner: Arc<Provisioner>,
    pub services: Services,
}

/// Handles of the running services (None when disabled in the configuration).
#[derive(Default)]
pub struct Services {
    pub files: Option<fileserver::FileServer>,
    pub sccp: Option<sccp_server::ServerHandle>,
    pub sip: Option<sip_server::SipServer>,
    pub discovery: Option<discovery::SwitchHandle>,
    pub dhcp: Option<dhcp_server::DhcpServer>,
}

impl Services {
    fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["admin"];
        if self.files.is_some() {
            v.push("tftp+http");
        }
        if self.sccp.is_some() {
            v.push("sccp");
        }
        if self.sip.is_some() {
            v.push("sip");
        }
        if self.discovery.is_some() {
            v.push("discovery");
        }
        if self.dhcp.is_some() {
            v.push("dhcp");
        }
        v
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    node: String,
    address: String,
    uptime_secs: u64,
    services: Vec<&'static str>,
}

async fn health(State(shared): State<Arc<Shared>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        node: shared.config.node.name.clone(),
        address: shared.config.node.address.to_string(),
        uptime_secs: shared.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
        services: shared.services.names(),
    })
}

async fn events(State(shared): State<Arc<Shared>>) -> Json<Vec<journal::Event>> {
    Json(shared.events.recent())
}

/// `show cdp neighbors [detail]` / `show power inline` as text, for the CLI.
async fn show(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(what): axum::extract::Path<String>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let Some(sw) = &shared.services.discovery else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "discovery is not running on this node (no [[discovery.interface]])\n".into(),
        );
    };
    let Some(snap) = sw.snapshot().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "discovery agent stopped\n".into(),
        );
    };
    match what.as_str() {
        "cdp-neighbors" => (StatusCode::OK, discovery::show::cdp_neighbors(&snap)),
        "cdp-neighbors-detail" => (StatusCode::OK, discovery::show::cdp_neighbors_detail(&snap)),
        "lldp-neighbors" => (StatusCode::OK, discovery::show::lldp_neighbors(&snap)),
        "power-inline" => (StatusCode::OK, discovery::show::power_inline(&snap)),
        _ => (StatusCode::NOT_FOUND, format!("unknown view {what}\n")),
    }
}

#[derive(serde::Deserialize)]
struct DebugQuery {
    on: bool,
}

/// `debug cdp packets|events|adjacency` / `no debug ...` at run time.
async fn debug_cdp(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(category): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<DebugQuery>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    use discovery::DebugCategory;
    let Some(sw) = &shared.services.discovery else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "discovery is not running on this node".into(),
        );
    };
    let c = match category.as_str() {
        "packets" => DebugCategory::Packets,
        "events" => DebugCategory::Events,
        "adjacency" => DebugCategory::Adjacency,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("category: expected packets, events or adjacency, found {other:?}"),
            )
        }
    };
    sw.set_debug(c, q.on);
    let state = if q.on { "on" } else { "off" };
    (
        StatusCode::OK,
        format!("CDP {category} debugging is {state}"),
    )
}

#[derive(serde::Deserialize)]
struct ResetBody {
    #[serde(default)]
    kind: Option<String>,
}

/// Reset/restart a registered phone through whichever protocol it registered with.
async fn reset(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(device): axum::extract::Path<String>,
    body: Option<Json<ResetBody>>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    use axum::http::StatusCode;
    let kind = body
        .and_then(|b| b.0.kind)
        .unwrap_or_else(|| "restart".into());
    let Some(name) = mac::Mac::from_device_name(&device)
        .ok()
        .map(|m| m.device_name())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({"error": {"code": "invalid", "field": "device", "message": format!("{device:?} is not a SEP<MAC> name or MAC")}}),
            ),
        );
    };
    let reset_kind = match kind.as_str() {
        "reset" => journal::ResetKind::Reset,
        "restart" => journal::ResetKind::Restart,
        "apply-config" | "apply_config" => journal::ResetKind::ApplyConfig,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    serde_json::json!({"error": {"code": "invalid", "field": "kind", "message": format!("expected reset, restart or apply-config, found {other:?}")}}),
                ),
            )
        }
    };
    match actions::reset(&shared, &name, reset_kind).await {
        Ok(how) => (
            StatusCode::OK,
            Json(serde_json::json!({"device": name, "sent": how})),
        ),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(
                serde_json::json!({"error": {"code": "not_registered", "field": "device", "message": e}}),
            ),
        ),
    }
}

/// The console part of the admin listener: health, recent events, IOS-style views, CDP
/// debugging and the reset action the CLI and the lab use. Every request needs an API token
/// (`phoneboot login`), or on this host the local console credential the CLI reads from
/// [`console_token_path`] — see [`actions::console_guard`]. Everything else (REST API, UI,
/// metrics, SSE) is [`admin::App`]'s router, behind login.
pub fn admin_router(shared: Arc<Shared>, guard: actions::ConsoleAuth) -> Router {
    let local = Router::new()
        .route("/api/events", get(events))
        .route("/api/show/{what}", get(show))
        .route("/api/devices/{name}/reset", axum::routing::post(reset))
        .route("/api/debug/cdp/{category}", axum::routing::post(debug_cdp))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            actions::console_guard,
        ));
    Router::new()
        .route("/healthz", get(health))
        .merge(local)
        .with_state(shared)
}

/// Runs the node until `shutdown` turns true.
pub async fn run(
    config: config::Config,
    admin: StdTcpListener,
    mut shutdown: tokio_watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let events = Arc::new(EventBus::new(10_000));
    let sink: SharedSink = events.clone();
    let ris = Arc::new(ris::Ris::new());

    let db = config.node.database.clone();
    let db_err = |message: String| ServeError::Database {
        path: db.display().to_string(),
        message,
    };
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| db_err(e.to_string()))?;
    }
    // With `[database] url` the configuration lives in the cluster's PostgreSQL; otherwise
    // in the node's SQLite file.
    let (store, shown): (Arc<dyn Store>, String) = match &config.database.url {
        Some(url) => {
            let shown = store::redact(url);
            let pg = store::PgStore::open(url).map_err(|e| ServeError::Database {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            (Arc::new(pg), shown)
        }
        None => (
            Arc::new(SqliteStore::open(&db).map_err(|e| db_err(e.to_string()))?),
            db.display().to_string(),
        ),
    };
    let db_err = |message: String| ServeError::Database {
        path: shown.clone(),
        message,
    };
    seed::apply(&*store, &config).map_err(|e| db_err(e.to_string()))?;
    // The cluster identity (made on first start) before any file is served: a damaged one
    // stops the start with a clear error instead of serving unsigned files.
    provision::trust::load_or_create(&*store, &config.node.name)
        .map_err(|e| service_err("trust")(e.to_string()))?;
    let prov = Arc::new(Provisioner::new(store).map_err(|e| db_err(e.to_string()))?);
    let trust = Arc::new(
        provision::trust::TrustFiles::new(prov.clone())
            .map_err(|e| service_err("trust")(e.to_string()))?,
    );
    tokio::spawn(trust.clone().follow());
    tracing::info!(files = prov.file_count(), database = %shown, "device database open");

    let lease_macs = Arc::new(LeaseMacs::default());
    // DHCP acks teach `lease_macs` who holds which address as they are emitted, before the
    // phone can ask for its files (the event bus subscriber alone could lag behind it).
    let sink: SharedSink = Arc::new(adapters::LeaseRecorder {
        inner: sink,
        macs: lease_macs.clone(),
    });
    let sip_lines = Arc::new(SipLineIndex::build(&prov));
    let mut services = Services::default();
    let dhcp_here = config.dhcp.enabled && !config.dhcp.pools.is_empty();
    let lease_gate = config.files.require_lease && dhcp_here;
    if config.files.enabled && !lease_gate {
        eprintln!(
            "phoneboot: WARNING: phone configuration files (with their SIP/SSH credentials) are served to ANY \
             address that names a phone's MAC ({}); gate them on DHCP leases with phoneboot as \
             the DHCP server and files.require_lease = true",
            if dhcp_here { "files.require_lease = false" } else { "phoneboot is not the DHCP server" }
        );
        tracing::warn!(
            dhcp_here,
            require_lease = config.files.require_lease,
            "phone files with credentials are served to any address: not gated on DHCP leases"
        );
    }

    if config.files.enabled {
        let fcfg = fileserver::Config {
            tftp_bind: Some(config.files.tftp_listen),
            http_bind: Some(config.files.http_listen),
            root: config.node.tftp_root.clone(),
            max_transfers: config.files.max_transfers as usize,
            // Trust lists are always generated; `secure_cluster = false` in the file service's
            // configuration still answers them "not found" (a cluster handing phones over
            // to one that has no trust list, like CUCM's rollback to pre-8.0).
            secure_cluster: config.files.secure_cluster,
            lease_gate,
            ..fileserver::Config::default()
        };
        let sockets = fileserver::Sockets::bind(&fcfg)
            .await
            .map_err(|e| service_err("tftp/http")(e.to_string()))?;
        let deps = fileserver::Deps {
            source: Some(Arc::new(trust_files::TrustedFiles {
                files: ProvisionedFiles(prov.clone(), Some(sink.clone())),
                trust: trust.clone(),
            })),
            macs: Some(lease_macs.clone()),
            sink: Some(sink.clone()),
            observer: None,
        };
        services.files = Some(
            fileserver::spawn(fcfg, sockets, deps)
                .map_err(|e| service_err("tftp/http")(e.to_string()))?,
        );
    }

    if config.sccp.enabled {
        let scfg = sccp_server::ServerConfig {
            bind: config.sccp.listen,
            keepalive_secs: config.sccp.keepalive_secs,
            node_name: config.node.name.clone(),
            lease_check: config.sccp.require_lease,
            allow_takeover: config.sccp.allow_takeover,
            auto_register_per_minute: config.sccp.auto_register_per_minute,
            advertise_ip: Some(config.node.address),
            ..sccp_server::ServerConfig::default()
        };
        let macs = lease_macs.clone();
        let lease: Arc<dyn sccp::LeaseCheck> =
            Arc::new(move |mac: &mac::Mac, ip: std::net::IpAddr| macs.lookup(ip) == Some(*mac));
        let deps = sccp_server::Deps {
            directory: Arc::new(SccpDirectory {
                prov: prov.clone(),
                keepalive_secs: config.sccp.keepalive_secs,
            }),
            ris: ris.clone(),
            journal: sink.clone(),
            lease: Some(lease),
        };
        services.sccp = Some(
            sccp_server::spawn(scfg, deps)
                .await
                .map_err(|e| service_err("sccp")(e.to_string()))?,
        );
    }

    if config.sip.enabled {
        let mut reg = sip::RegistrarConfig {
            realm: config.sip.realm.clone(),
            min_expires: config.sip.min_expires,
            max_expires: config.sip.max_expires,
            // The database's setting decides (the store refuses when it is off), so a change
            // made through the API or CLI applies without a restart.
            auto_register: true,
            ..sip::RegistrarConfig::default()
        };
        reg.default_expires = reg.default_expires.clamp(reg.min_expires, reg.max_expires);
        let scfg = sip_server::SipServerConfig {
            bind: config.sip.listen,
            node: config.node.name.clone(),
            advertised: Some(std::net::SocketAddr::new(
                config.node.address.into(),
                config.sip.listen.port(),
            )),
            registrar: reg,
            ..sip_server::SipServerConfig::default()
        };
        let dir = Arc::new(SipDirectory {
            prov: prov.clone(),
            lines: sip_lines.clone(),
        });
        services.sip = Some(
            sip_server::spawn(scfg, dir, ris.clone(), sink.clone())
                .await
                .map_err(|e| service_err("sip")(e.to_string()))?,
        );
    }

    if config.discovery.run && !config.discovery.interfaces.is_empty() {
        services.discovery = Some(
            discovery_service::spawn(&config, sink.clone())
                .map_err(|e| service_err("discovery")(e.to_string()))?,
        );
    }

    if config.dhcp.enabled && !config.dhcp.pools.is_empty() {
        let dcfg = dhcp_config::build(&config, &db);
        dcfg.validate()
            .map_err(|e| service_err("dhcp")(format!("{e:#}")))?;
        let reserved = Arc::new(reservations::StoreReservations::default());
        reserved.refresh(&prov);
        tokio::spawn(reserved.clone().follow(prov.clone()));
        services.dhcp = Some(dhcp_server::DhcpServer::spawn(
            dcfg,
            sink.clone(),
            Some(reserved),
        ));
    }

    let shared = Arc::new(Shared {
        events,
        ris,
        started: SystemTime::now(),
        provisioner: prov.clone(),
        services,
        config,
    });

    // Keep derived state current: the SIP line index follows every change, a change made
    // to the database by another process (the CLI) is picked up, and DHCP acks teach the
    // file service which MAC an address belongs to.
    tokio::spawn(watch::changes(prov.clone(), sip_lines.clone()));
    tokio::spawn(watch::database(prov.clone(), shutdown.clone()));
    tokio::spawn(watch::leases(shared.events.subscribe(), lease_macs.clone()));

    // The admin surfaces: REST API, UI, login, metrics, journal.
    let bootlog = Arc::new(
        bootlog::BootLog::open(&bootlog_path(&db), bootlog::Limits::default())
            .map_err(|e| service_err("journal")(e.to_string()))?,
    );
    let auth = Arc::new(
        admin::AuthStore::open(&auth_path(&db), admin::AuthOptions::default())
            .map_err(|e| service_err("admin users")(e.to_string()))?,
    );
    if let Some(pw) = auth
        .ensure_admin(shared.config.admin.initial_password.as_deref())
        .map_err(|e| service_err("admin users")(e.to_string()))?
    {
        // Shown once: only its hash is stored, and it must be changed at first login.
        println!("phoneboot: first start; log in as \"admin\" with the one-time password {pw}");
        tracing::warn!(user = "admin", password = %pw, "one-time admin password generated; change it at first login");
    }
    let hosts = admin::HostPolicy::new(&shared.config.admin.allowed_hosts);
    // The CLI on this host authenticates with this, read from a file only root and the
    // service user can read; a new one at every start.
    let local_secret = admin::auth::new_local_secret();
    auth.set_local_token(&local_secret);
    let token_file = console_token_path(&db);
    if let Err(e) = write_private(&token_file, &local_secret) {
        tracing::warn!(path = %token_file.display(), error = %e,
            "could not write the local console credential: the CLI on this host needs `phoneboot login`");
    }
    let neighbours = admin_backend::NeighbourCache::default();
    if shared.services.discovery.is_some() {
        tokio::spawn(admin_backend::refresh_neighbours(
            shared.clone(),
            neighbours.clone(),
            shutdown.clone(),
        ));
    }
    let backend = Arc::new(admin_backend::NodeBackend::new(shared.clone(), neighbours));
    let app = admin::App::start(
        backend,
        shared.ris.clone(),
        shared.events.clone(),
        bootlog,
        auth.clone(),
        admin::AdminOptions {
            node: shared.config.node.name.clone(),
            hosts: hosts.clone(),
            ..admin::AdminOptions::default()
        },
    );

    admin.set_nonblocking(true).map_err(ServeError::Admin)?;
    let listener = tokio::net::TcpListener::from_std(admin).map_err(ServeError::Admin)?;
    tracing::info!(
        node = %shared.config.node.name,
        admin = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        services = ?shared.services.names(),
        "phoneboot serving"
    );
    let router = admin_router(
        shared.clone(),
        actions::ConsoleAuth {
            auth: Some(auth),
            hosts,
        },
    )
    .merge(app.router());
    let mut stop = shutdown.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    notify_systemd("READY=1");
    let _ = shutdown.wait_for(|s| *s).await;
    notify_systemd("STOPPING=1");
    let served = admin_task.await;
    // Store the journal events still queued before the process exits.
    let closing = app.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown(Duration::from_secs(5))).await;
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Admin(e)),
        Err(e) => Err(ServeError::Service {
            service: "admin",
            message: e.to_string(),
        }),
    }
}

fn notify_systemd(state: &str) {
    if let Err(e) = admin::systemd::notify(state) {
        tracing::warn!(state, error = %e, "could not notify systemd");
    }
}

/// The boot journal kept next to the device database (`phoneboot.db` -> `phoneboot.bootlog.db`).
pub fn bootlog_path(db: &Path) -> PathBuf {
    sibling(db, "bootlog")
}

/// Admin users, sessions and API tokens, next to the device database (`phoneboot.auth.db`).
pub fn auth_path(db: &Path) -> PathBuf {
    sibling(db, "auth")
}

/// The host-local console credential, next to the device database
/// (`phoneboot.console-token`): written by `phoneboot serve` with mode 0600, read by the CLI.
pub fn console_token_path(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "phoneboot".into());
    db.with_file_name(format!("{stem}.console-token"))
}

/// Writes `secret` to `path` readable by this user only: a fresh file (mode 0600 from the
/// start, never a moment wider) renamed over any old one.
pub fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn sibling(db: &Path, what: &str) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "phoneboot".into());
    db.with_file_name(format!("{stem}.{what}.db"))
}
