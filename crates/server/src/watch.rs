//! Background tasks that keep derived state in step with its source.

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
                // Missed some changes: re-index every device from the current model.
                if let Ok(devices) = prov.store().devices() {
                    for d in devices {
                        lines.refresh(&prov, &d.name);
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Picks up changes another process (the `phoneboot phone ...` CLI) made to the database file.
pub async fn database(prov: Arc<Provisioner>, mut shutdown: tokio_watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let p = prov.clone();
        match tokio::task::spawn_blocking(move || p.reload_if_changed()).await {
            Ok(Ok(Some(change))) => tracing::info!(
                rebuilt = change.rebuilt.len(),
                removed = change.removed.len(),
                "database changed outside this process: files rebuilt"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "reloading the database failed"),
            Err(e) => tracing::warn!(error = %e, "database watcher task failed"),
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
