//! Fixed DHCP addresses from the device database (`phoneboot phone reserve ...`), as the DHCP
//! engine asks for them on every request: an in-memory copy, refreshed from the store.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mac::Mac;
use provision::Provisioner;

#[derive(Default)]
pub struct StoreReservations {
    maps: RwLock<(HashMap<Mac, Ipv4Addr>, HashMap<Ipv4Addr, Mac>)>,
}

impl StoreReservations {
    /// Re-reads the reservations table (one row per reserved phone); false when it failed.
    pub fn refresh(&self, prov: &Provisioner) -> bool {
        match prov.store().reservations() {
            Ok(list) => {
                let by_mac: HashMap<Mac, Ipv4Addr> = list.iter().copied().collect();
                let by_ip: HashMap<Ipv4Addr, Mac> = list.iter().map(|(m, i)| (*i, *m)).collect();
                let mut g = self.maps.write().unwrap_or_else(|p| p.into_inner());
                *g = (by_mac, by_ip);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading DHCP reservations failed");
                false
            }
        }
    }

    /// Keeps the copy current (changes made by the CLI or the API land within two seconds).
    /// The table is re-read only when the database's configuration generation moved, so a
    /// node with 100,000 reservations does not rebuild its maps every two seconds.
    pub async fn follow(self: Arc<Self>, prov: Arc<Provisioner>) {
        let mut seen: Option<i64> = None;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (me, p) = (self.clone(), prov.clone());
            let last = seen;
            let polled = tokio::task::spawn_blocking(move || {
                let now = p.store().external_change_token().ok().flatten();
                // No token (a backend without one) or a moved one: re-read.
                if (now.is_none() || now != last) && !me.refresh(&p) {
                    return last; // try again at the next tick
                }
                now
            })
            .await;
            if let Ok(now) = polled {
                seen = now;
            }
        }
    }
}

impl dhcp::Reservations for StoreReservations {
    fn reserved_ip(&self, mac: &Mac) -> Option<Ipv4Addr> {
        let g = self.maps.read().unwrap_or_else(|p| p.into_inner());
        g.0.get(mac).copied()
    }

    fn reserved_for(&self, ip: Ipv4Addr) -> Option<Mac> {
        let g = self.maps.read().unwrap_or_else(|p| p.into_inner());
        g.1.get(&ip).copied()
    }
}
