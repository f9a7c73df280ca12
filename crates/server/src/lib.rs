//! `phoneboot serve`: one process that runs every service of the boot chain for one node.
//!
//! The server owns the shared state (the event bus, the registration table, the device
//! database) and hands each protocol service what it needs: its validated configuration,
//! its sockets and a shutdown signal. The admin listener is bound by the caller, before the
//! process enters the server's network namespace, so a lab server's admin API is reachable
//! from the host at 127.0.0.1.

pub mod bus;

use std::net::TcpListener as StdTcpListener;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;

pub use bus::EventBus;

/// Why the server stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("admin listener: {0}")]
    Admin(std::io::Error),
    #[error("{service}: {message}")]
    Service {
        service: &'static str,
        message: String,
    },
}

/// State shared by every service and the admin surfaces.
pub struct Shared {
    pub config: config::Config,
    pub events: Arc<EventBus>,
    pub ris: Arc<ris::Ris>,
    pub started: SystemTime,
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
        services: vec!["admin"],
    })
}

async fn events(State(shared): State<Arc<Shared>>) -> Json<Vec<journal::Event>> {
    Json(shared.events.recent())
}

/// The admin router (health and the recent event stream for now).
pub fn admin_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/api/events", get(events))
        .with_state(shared)
}

/// Runs the node until `shutdown` turns true.
pub async fn run(
    config: config::Config,
    admin: StdTcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let shared = Arc::new(Shared {
        events: Arc::new(EventBus::new(10_000)),
        ris: Arc::new(ris::Ris::new()),
        started: SystemTime::now(),
        config,
    });
    admin.set_nonblocking(true).map_err(ServeError::Admin)?;
    let listener = tokio::net::TcpListener::from_std(admin).map_err(ServeError::Admin)?;
    tracing::info!(
        node = %shared.config.node.name,
        admin = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "phoneboot serving"
    );
    let app = admin_router(shared.clone());
    let mut stop = shutdown.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    let _ = shutdown.wait_for(|s| *s).await;
    match admin_task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Admin(e)),
        Err(e) => Err(ServeError::Service {
            service: "admin",
            message: e.to_string(),
        }),
    }
}
