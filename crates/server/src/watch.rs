//! Background tasks that keep derived state in step with its source.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use journal::{Event, EventKind};
use provision::Provisioner;
use tokio::sync::{broadcast, watch as tokio_watch};

use crate::adapters::{LeaseMacs, SipLineIndex};

/// Re-indexes SIP lines of every device a change rebuilt or removed.
pub async fn changes(prov: Arc<Provisioner>, lines: Arc<SipLineIndex>) {
    let mut rx = prov.subscribe();
    loop {
        match rx.recv().await {
            Ok(change) => {
                for d in change.rebuilt.iter().chain(change.removed.iter()) {
                    lines.refresh(&prov, d);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Missed some: rebuild the whole index from the current model.
                let fresh = SipLineIndex::build(&prov);
                if let Ok(devices) = prov.store().devices() {
                    for d in devices {
                        lines.refresh(&prov, &d.name);
                    }
                }
                drop(fresh);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Picks up changes another process (the `phoneboot phone ...` CLI) made to the database file:
/// SQLite's `data_version` changes when another connection commits.
pub async fn database(
    prov: Arc<Provisioner>,
    path: PathBuf,
    mut shutdown: tokio_watch::Receiver<bool>,
) {
    let Ok(conn) = rusqlite::Connection::open(&path) else {
        tracing::warn!(path = %path.display(), "cannot watch the database for outside changes");
        return;
    };
    let version = |c: &rusqlite::Connection| -> Option<i64> {
        c.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
    };
    let mut last = version(&conn);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let now = version(&conn);
        if now != last {
            last = now;
            match prov.reload() {
                Ok(change) if !change.rebuilt.is_empty() || !change.removed.is_empty() => {
                    tracing::info!(
                        rebuilt = change.rebuilt.len(),
                        removed = change.removed.len(),
                        "database changed outside this process: files rebuilt"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reloading the database failed"),
            }
        }
    }
}

/// Learns address -> MAC from DHCP acks on the event stream (for TFTP requests whose file
/// name carries no MAC, and for the SCCP lease check).
pub async fn leases(mut rx: broadcast::Receiver<Event>, macs: Arc<LeaseMacs>) {
    loop {
        match rx.recv().await {
            Ok(Event {
                mac,
                kind: EventKind::DhcpAck { ip, .. },
                ..
            }) => macs.record(ip.into(), mac),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
