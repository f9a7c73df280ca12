//! The one event stream: every service emits here; the journal, metrics, logs and the UI's
//! live view read from it.

use std::collections::VecDeque;
use std::sync::Mutex;

use journal::{Event, EventSink};
use tokio::sync::broadcast;

/// Fans events out to live subscribers and keeps the most recent ones for late readers.
pub struct EventBus {
    live: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
    keep: usize,
}

impl EventBus {
    pub fn new(keep: usize) -> Self {
        let (live, _) = broadcast::channel(4096);
        EventBus {
            live,
            recent: Mutex::new(VecDeque::with_capacity(keep.min(1 << 16))),
            keep,
        }
    }

    /// A live feed; a slow reader misses events rather than slowing the services down.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        let q = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }
}

impl EventSink for EventBus {
    fn emit(&self, event: Event) {
        tracing::debug!(mac = %event.mac, kind = ?event.kind, "event");
        {
            let mut q = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() == self.keep {
                q.pop_front();
            }
            q.push_back(event.clone());
        }
        // No subscribers is fine: the error only says nobody listens.
        let _ = self.live.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::{EventKind, Mac, VlanVia};
    use std::time::SystemTime;

    #[test]
    fn keeps_the_latest_and_feeds_subscribers() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        for v in [1u16, 2, 3] {
            bus.emit(Event::server(
                SystemTime::UNIX_EPOCH,
                Mac::default(),
                EventKind::VoiceVlan {
                    vlan: Some(v),
                    via: VlanVia::Cdp,
                },
            ));
        }
        let recent: Vec<_> = bus
            .recent()
            .into_iter()
            .map(|e| match e.kind {
                EventKind::VoiceVlan { vlan, .. } => vlan,
                _ => None,
            })
            .collect();
        assert_eq!(recent, vec![Some(2), Some(3)]);
        assert!(matches!(
            rx.try_recv().map(|e| e.kind),
            Ok(EventKind::VoiceVlan { vlan: Some(1), .. })
        ));
    }
}
