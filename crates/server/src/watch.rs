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

/// Picks up configuration changes made outside this process: by another node of the cluster
/// (PostgreSQL: woken by LISTEN/NOTIFY at once, and after every reconnect of the listening
/// connection; a slow timer only as a safety net) or by the CLI on the same SQLite file
/// (polled every 0.5 s). Either way the reload compares the store's change token, so a
/// wake-up that carries nothing costs one small query and a missed one loses nothing.
pub async fn database(prov: Arc<Provisioner>, mut shutdown: tokio_watch::Receiver<bool>) {
    let mut feed = prov.store().change_feed();
    let period = if feed.is_some() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = woken(&mut feed) => {}
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

/// Resolves when the change feed moves; never, without a feed (or once it is gone).
async fn woken(feed: &mut Option<tokio_watch::Receiver<u64>>) {
    match feed {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *feed = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
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
