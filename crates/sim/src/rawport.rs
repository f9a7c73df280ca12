//! One AF_PACKET socket shared by every emulated phone on the raw interface.
//!
//! Phones send whole Ethernet frames with their own source MAC (and their own 802.1Q tag).
//! A single receive task reads every frame (promiscuous, so unicast to any phone MAC arrives)
//! and hands it to the phone it is for: by destination MAC, or for broadcast DHCP replies by
//! `chaddr`; multicast discovery frames (CDP/LLDP from the switch) go to every phone that
//! listens for them. A VLAN tag the kernel moved into PACKET_AUXDATA is given back as `vlan`.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mac::Mac;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::eth;

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// A frame received for one phone.
#[derive(Debug, Clone)]
pub struct RxFrame {
    pub data: Vec<u8>,
    /// VLAN from PACKET_AUXDATA (tag stripped by the kernel), if any.
    pub aux_vlan: Option<u16>,
}

impl RxFrame {
    /// The frame's VLAN, whether the tag was in the data or in the aux data.
    pub fn vlan(&self) -> Option<u16> {
        if self.aux_vlan.is_some() {
            return self.aux_vlan;
        }
        if self.data.get(12..14) == Some(&eth::ETHERTYPE_VLAN.to_be_bytes()[..]) {
            let tci = u16::from_be_bytes([self.data[14], *self.data.get(15).unwrap_or(&0)]);
            return Some(tci & 0x0fff);
        }
        None
    }
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
    fd: AsyncFd<OwnedFd>,
    ifindex: i32,
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

fn if_index(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::other("interface name has a NUL"))?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name:?}"),
        ));
    }
    Ok(idx as i32)
}

impl RawPort {
    /// Opens `ifname` (needs CAP_NET_RAW) and starts the receive task.
    pub fn open(ifname: &str) -> io::Result<Arc<RawPort>> {
        let ifindex = if_index(ifname)?;
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh, owned descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a properly sized sockaddr_ll.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // Promiscuous: frames for the phones' MACs are not for the interface's own MAC.
        // SAFETY: zeroed packet_mreq is valid.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)?;
        // Every phone's broadcast replies land in this one socket: a storm needs a deep
        // queue. The FORCE variants pass net.core.rmem_max (we have CAP_NET_ADMIN).
        let big: libc::c_int = 64 << 20;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &big).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &big);
        }
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &big).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &big);
        }
        // SAFETY: `fd` is an open descriptor owned by the AsyncFd from here on.
        let afd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        let port = Arc::new(RawPort {
            fd: afd,
            ifindex,
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
        self.ifindex
    }

    /// One line of receive/send counters (kernel drops read and added up on each call).
    pub fn stats_line(&self) -> String {
        // SAFETY: tpacket_stats is plain data; getsockopt writes at most `len` bytes.
        unsafe {
            let mut st: libc::tpacket_stats = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
            if libc::getsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut libc::tpacket_stats as *mut libc::c_void,
                &mut len,
            ) == 0
            {
                self.stats
                    .kernel_drops
                    .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            }
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
        loop {
            let mut guard = self.fd.writable().await?;
            // SAFETY: frame is a valid buffer for its length.
            let r = guard.try_io(|fd| {
                let n = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        frame.as_ptr() as *const libc::c_void,
                        frame.len(),
                        0,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match r {
                Ok(Ok(())) => {
                    self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads every frame available now and dispatches them. Errs only if the socket died.
    async fn recv_some(&self) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        // One receive buffer for the burst; each frame gets an allocation of its own size
        // (a zeroed 9 KiB buffer per frame cost more than the frame).
        let mut buf = vec![0u8; 9216];
        loop {
            match guard.try_io(|fd| recv_frame(fd.as_raw_fd(), &mut buf)) {
                Ok(Ok(Some((len, aux_vlan)))) => {
                    self.dispatch(RxFrame {
                        data: buf[..len.min(buf.len())].to_vec(),
                        aux_vlan,
                    });
                }
                Ok(Ok(None)) => {} // our own outgoing frame
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => return Ok(()),
            }
        }
    }

    fn dispatch(&self, f: RxFrame) {
        self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
        let Some(dst) = eth::peek_dst(&f.data) else {
            return;
        };
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
        if dst.0[0] & 1 == 0 {
            match subs.unicast.get(&dst) {
                Some(tx) => deliver(tx, f),
                None => {
                    self.stats.rx_unclaimed.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        // Broadcast DHCP reply: find the phone by chaddr.
        if let Some(u) = eth::parse_udp(&f.data) {
            if u.dst_port == 68 && u.payload.len() >= 34 {
                if let Ok(ch) = <[u8; 6]>::try_from(&u.payload[28..34]) {
                    if let Some(tx) = subs.unicast.get(&Mac::new(ch)) {
                        deliver(tx, f);
                        return;
                    }
                }
            }
            self.stats.rx_unclaimed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if dst == Mac::CDP_MULTICAST || dst == Mac::LLDP_MULTICAST {
            for tx in subs.discovery.values() {
                deliver(tx, f.clone());
            }
            return;
        }
        self.stats.rx_unclaimed.fetch_add(1, Ordering::Relaxed);
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: val points to a T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One recvmsg: Some((len, vlan from auxdata)), or None for a frame we sent ourselves.
fn recv_frame(fd: i32, buf: &mut [u8]) -> io::Result<Option<(usize, Option<u16>)>> {
    // SAFETY: all pointers below refer to live, correctly sized locals.
    unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut sll as *mut libc::sockaddr_ll as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if sll.sll_pkttype == PACKET_OUTGOING {
            return Ok(None);
        }
        let mut vlan = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                    vlan = Some(aux.tp_vlan_tci & 0x0fff);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok(Some((n as usize, vlan)))
    }
}
