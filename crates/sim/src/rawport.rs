//! One AF_PACKET socket shared by every emulated phone on the raw interface.
//!
//! The socket is `l2`'s [`AsyncPacketSocket`] (promiscuous, deep queues); this module adds the
//! demultiplexer. Phones send whole Ethernet frames with their own source MAC (and their own
//! 802.1Q tag). A single receive task reads every frame (promiscuous, so unicast to any phone
//! MAC arrives) and hands it to the phone it is for: by destination MAC, or for broadcast DHCP
//! replies by `chaddr`; multicast discovery frames (CDP/LLDP from the switch) go to every
//! phone that listens for them. A tag the kernel stripped is back in the frame (`l2` writes it
//! back), so a frame's VLAN is read by `l2`'s one rule ([`l2::frame::peek_vlan`]).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use l2::{AsyncPacketSocket, PacketSocket};
use mac::Mac;
use tokio::sync::mpsc;

/// Receive and send queue asked for: every phone's broadcast replies land in this one socket.
const QUEUE_BYTES: i32 = 64 << 20;

/// A frame received for one phone (a tag the kernel stripped written back in).
#[derive(Debug, Clone)]
pub struct RxFrame {
    pub data: Vec<u8>,
}

impl RxFrame {
    /// The frame's VLAN id, if tagged (never panics, whatever the frame's length).
    pub fn vlan(&self) -> Option<u16> {
        l2::frame::peek_vlan(&self.data).map(|t| t.vid)
    }
}

/// Whom a received frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Unicast to this MAC.
    Unicast(Mac),
    /// A broadcast DHCP reply: the phone whose `chaddr` it carries.
    Chaddr(Mac),
    /// CDP/LLDP multicast: every phone listening for discovery.
    Discovery,
    /// Nobody (other broadcast/multicast, or too short to have a destination).
    Nobody,
}

/// Decides where a frame goes. Pure and total: any bytes at all give a route, never a panic.
pub fn route(frame: &[u8]) -> Route {
    let Some(dst) = l2::udp::peek_dst(frame) else {
        return Route::Nobody;
    };
    if dst.0[0] & 1 == 0 {
        return Route::Unicast(dst);
    }
    if let Some(u) = l2::udp::parse_udp(frame) {
        if u.dst_port == 68 {
            if let Some(ch) = u
                .payload
                .get(28..34)
                .and_then(|c| <[u8; 6]>::try_from(c).ok())
            {
                return Route::Chaddr(Mac::new(ch));
            }
        }
        return Route::Nobody;
    }
    if dst == Mac::CDP_MULTICAST || dst == Mac::LLDP_MULTICAST {
        return Route::Discovery;
    }
    Route::Nobody
}

#[derive(Default)]
struct Subscribers {
    unicast: HashMap<Mac, mpsc::Sender<RxFrame>>,
    /// Phones listening for multicast discovery frames.
    discovery: HashMap<Mac, mpsc::Sender<RxFrame>>,
}

/// Counters of the shared receive path.
#[derive(Debug, Default)]
pub struct PortStats {
    /// Frames the kernel dropped because the socket queue was full (PACKET_STATISTICS).
    pub kernel_drops: AtomicU64,
    pub rx_frames: AtomicU64,
    pub rx_delivered: AtomicU64,
    /// Frames for no known phone.
    pub rx_unclaimed: AtomicU64,
    /// A phone's queue was full: the frame was dropped (counted, like a busy NIC).
    pub rx_queue_full: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_errors: AtomicU64,
}

/// The shared raw port.
pub struct RawPort {
    sock: AsyncPacketSocket,
    subs: Mutex<Subscribers>,
    pub stats: PortStats,
    pub name: String,
}

/// A phone's handle: receives its frames, unsubscribes on drop.
pub struct PortHandle {
    port: Arc<RawPort>,
    mac: Mac,
    pub rx: mpsc::Receiver<RxFrame>,
}

impl Drop for PortHandle {
    fn drop(&mut self) {
        if let Ok(mut s) = self.port.subs.lock() {
            s.unicast.remove(&self.mac);
            s.discovery.remove(&self.mac);
        }
    }
}

impl PortHandle {
    pub fn port(&self) -> &Arc<RawPort> {
        &self.port
    }

    /// Also receive multicast discovery frames (CDP/LLDP) seen on the port.
    pub fn listen_discovery(&self, on: bool) {
        if let Ok(mut s) = self.port.subs.lock() {
            if on {
                if let Some(tx) = s.unicast.get(&self.mac).cloned() {
                    s.discovery.insert(self.mac, tx);
                }
            } else {
                s.discovery.remove(&self.mac);
            }
        }
    }

    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.port.send(frame).await
    }
}

impl RawPort {
    /// Opens `ifname` (needs CAP_NET_RAW; CAP_NET_ADMIN for the deep queues) and starts the
    /// receive task.
    pub fn open(ifname: &str) -> io::Result<Arc<RawPort>> {
        let sock = PacketSocket::open(ifname)?;
        sock.set_promiscuous()?;
        sock.set_buffers(QUEUE_BYTES);
        let sock = AsyncPacketSocket::new(sock)?;
        let port = Arc::new(RawPort {
            sock,
            subs: Mutex::new(Subscribers::default()),
            stats: PortStats::default(),
            name: ifname.to_string(),
        });
        let weak = Arc::downgrade(&port);
        tokio::spawn(async move {
            while let Some(p) = weak.upgrade() {
                if p.recv_some().await.is_err() {
                    break;
                }
            }
        });
        Ok(port)
    }

    pub fn ifindex(&self) -> i32 {
        self.sock.get_ref().ifindex()
    }

    /// One line of receive/send counters (kernel drops read and added up on each call).
    pub fn stats_line(&self) -> String {
        if let Ok(d) = self.sock.get_ref().take_drops() {
            self.stats
                .kernel_drops
                .fetch_add(u64::from(d), Ordering::Relaxed);
        }
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "raw port {}: rx {} (delivered {}, unclaimed {}, phone queue full {}, kernel drops {}), tx {} ({} errors)",
            self.name,
            g(&s.rx_frames),
            g(&s.rx_delivered),
            g(&s.rx_unclaimed),
            g(&s.rx_queue_full),
            g(&s.kernel_drops),
            g(&s.tx_frames),
            g(&s.tx_errors)
        )
    }

    /// Registers a phone MAC; `queue` bounds its inbox.
    pub fn subscribe(self: &Arc<Self>, mac: Mac, queue: usize) -> PortHandle {
        let (tx, rx) = mpsc::channel(queue.max(1));
        if let Ok(mut s) = self.subs.lock() {
            s.unicast.insert(mac, tx);
        }
        PortHandle {
            port: Arc::clone(self),
            mac,
            rx,
        }
    }

    /// Sends one frame.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        match self.sock.send(frame).await {
            Ok(_) => {
                self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Reads every frame available now and dispatches them. Errs only if the socket died.
    /// One receive buffer for the burst; each frame gets an allocation of its own size.
    async fn recv_some(&self) -> io::Result<()> {
        let mut buf = Vec::new();
        self.sock
            .recv_burst(&mut buf, |frame, _meta| {
                self.dispatch(RxFrame {
                    data: frame.to_vec(),
                })
            })
            .await
            .map(|_| ())
    }

    fn dispatch(&self, f: RxFrame) {
        self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
        let r = route(&f.data);
        let Ok(subs) = self.subs.lock() else { return };
        let deliver = |tx: &mpsc::Sender<RxFrame>, f: RxFrame| match tx.try_send(f) {
            Ok(()) => {
                self.stats.rx_delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.rx_queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        };
        match r {
            Route::Unicast(m) | Route::Chaddr(m) => match subs.unicast.get(&m) {
                Some(tx) => deliver(tx, f),
                None => {
                    self.stats.rx_unclaimed.fetch_add(1, Ordering::Relaxed);
                }
            },
            Route::Discovery => {
                for tx in subs.discovery.values() {
                    deliver(tx, f.clone());
                }
            }
            Route::Nobody => {
                self.stats.rx_unclaimed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const PHONE: Mac = Mac::new([0x00, 0x1b, 0x54, 0xaa, 0xbb, 0xcc]);

    /// Issue 18 item 8: 14 bytes to a phone's MAC announcing an 802.1Q tag they do not carry
    /// panicked the phone's task (the tag was read at bytes 14..16). Now it is routed to the
    /// phone as any unicast frame is, and every reader the phone applies to it says "no".
    #[test]
    fn a_14_byte_0x8100_frame_to_a_phone_is_read_without_panic() {
        let mut b = PHONE.octets().to_vec();
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x81, 0x00]);
        assert_eq!(b.len(), 14);
        assert_eq!(route(&b), Route::Unicast(PHONE));
        let f = RxFrame { data: b.clone() };
        assert_eq!(f.vlan(), None);
        assert!(l2::udp::parse_udp(&f.data).is_none());
        b.push(0xa0);
        assert_eq!(RxFrame { data: b }.vlan(), None);
    }

    #[test]
    fn broadcast_dhcp_goes_by_chaddr_and_discovery_to_listeners() {
        let mut dhcp = vec![0u8; 240];
        dhcp[28..34].copy_from_slice(&PHONE.octets());
        let f = l2::udp::build_udp(
            Mac::new([2, 0, 0, 0, 0, 1]),
            Mac::BROADCAST,
            Some(100),
            0,
            (Ipv4Addr::new(198, 18, 0, 1), 67),
            (Ipv4Addr::BROADCAST, 68),
            &dhcp,
        );
        assert_eq!(route(&f), Route::Chaddr(PHONE));
        assert_eq!(RxFrame { data: f.clone() }.vlan(), Some(100));
        // A DHCP payload too short to hold chaddr is nobody's.
        let short = l2::udp::build_udp(
            Mac::new([2, 0, 0, 0, 0, 1]),
            Mac::BROADCAST,
            None,
            0,
            (Ipv4Addr::new(198, 18, 0, 1), 67),
            (Ipv4Addr::BROADCAST, 68),
            &dhcp[..30],
        );
        assert_eq!(route(&short), Route::Nobody);
        let cdp = l2::frame::snap(
            Mac::CDP_MULTICAST.octets(),
            [2, 0, 0, 0, 0, 1],
            None,
            [0, 0, 0x0c],
            0x2000,
            b"x",
        )
        .unwrap();
        assert_eq!(route(&cdp), Route::Discovery);
        assert_eq!(route(&[0xff; 5]), Route::Nobody);
    }

    proptest! {
        /// Any bytes at all, as the socket could hand them over (short, odd, a tag announced
        /// but cut off, a destination MAC of a phone): routing and every parser a phone runs
        /// on a frame return, never panic.
        #[test]
        fn no_frame_panics_the_demultiplexer_or_a_phone(
            mut b in proptest::collection::vec(any::<u8>(), 0..120),
            tagged in any::<bool>(),
            to_phone in any::<bool>(),
        ) {
            if to_phone && b.len() >= 6 {
                b[..6].copy_from_slice(&PHONE.octets());
            }
            if tagged && b.len() >= 14 {
                b[12..14].copy_from_slice(&[0x81, 0x00]);
            }
            let r = route(&b);
            if to_phone && b.len() >= 6 {
                prop_assert_eq!(r, Route::Unicast(PHONE));
            }
            let f = RxFrame { data: b };
            let _ = f.vlan();
            let _ = l2::udp::parse_udp(&f.data);
            let _ = l2::frame::parse(&f.data);
            let m = crate::model::Model::lookup("7965").expect("7965 in the catalogue");
            let t = crate::phone::Timeouts::default();
            let cfg = crate::discover::agent_config(PHONE, m, journal::Protocol::Sccp, &t);
            let mut agent = discovery::PhoneAgent::new(cfg, std::time::Instant::now());
            agent.handle_frame(&f.data, std::time::Instant::now());
        }
    }
}
