//! AF_PACKET sockets: one per interface, all protocols, driven by tokio's `AsyncFd`.
//!
//! Needs CAP_NET_RAW only (no promiscuous mode: the discovery multicast MACs are joined with
//! PACKET_ADD_MEMBERSHIP). Frames we send are not looped back to us (PACKET_IGNORE_OUTGOING,
//! and outgoing frames are also filtered by packet type on kernels without it).
//!
//! VLAN tags: some drivers leave the 802.1Q tag in the frame, others strip it and hand it over
//! as metadata. With PACKET_AUXDATA enabled we put a stripped tag back into the frame, so
//! callers always see the frame as it was on the wire and parse the tag in user space by the
//! one rule of [`crate::frame::is_tpid`]. The metadata counts as a tag exactly when the kernel
//! sets TP_STATUS_VLAN_VALID (since Linux 3.0 it does so for every stripped tag, VID 0
//! priority tags included, and only then is `tp_vlan_tci` meaningful); its TPID is the one the
//! kernel reports (TP_STATUS_VLAN_TPID_VALID, Linux 3.14), else 0x8100.
//!
//! The same socket serves the switch side (discovery, one socket per port, kernel filter) and
//! the emulator (one promiscuous socket carrying thousands of phone MACs, deep buffers, bursts
//! read per wake-up with [`AsyncPacketSocket::recv_burst`]).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::frame::{insert_tag, Tci, TPID_8021Q};

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;
/// Largest frame we read (jumbo frames are not expected on phone ports).
pub const MAX_FRAME: usize = 9216;

/// Metadata of one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes of the frame now in the buffer (including a re-inserted tag).
    pub len: usize,
    /// The kernel stripped a tag and we re-inserted it from PACKET_AUXDATA.
    pub tag_from_metadata: Option<Tci>,
    /// sll_pkttype: 0 host, 1 broadcast, 2 multicast, 3 other host.
    pub pkttype: u8,
}

/// A non-blocking AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    ifname: String,
    mac: [u8; 6],
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

impl PacketSocket {
    /// Opens a socket for every protocol on `ifname`, in the calling thread's network namespace.
    pub fn open(ifname: &str) -> io::Result<Self> {
        let cname = std::ffi::CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // SAFETY: plain FFI calls with valid arguments; the fd is owned right away.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(ETH_P_ALL.to_be()),
            )
        })?;
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: cname is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {ifname}"),
            ));
        }
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size passed.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        let one: libc::c_int = 1;
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)?;
        // Best effort: older kernels lack it; recv() filters by packet type anyway.
        let _ = setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
        );
        // getsockname on a bound packet socket reports the interface's hardware address.
        // SAFETY: out-parameters of the right size.
        let mut name: libc::sockaddr_ll = unsafe { zeroed() };
        let mut nlen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        cvt(unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&mut name as *mut libc::sockaddr_ll).cast(),
                &mut nlen,
            )
        })?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&name.sll_addr[..6]);
        Ok(PacketSocket {
            fd,
            ifindex: ifindex as i32,
            ifname: ifname.to_owned(),
            mac,
        })
    }

    /// Receives frames sent to `mac` (a multicast group) without promiscuous mode.
    pub fn join_multicast(&self, mac: [u8; 6]) -> io::Result<()> {
        // SAFETY: all-zero is a valid packet_mreq.
        let mut mr: libc::packet_mreq = unsafe { zeroed() };
        mr.mr_ifindex = self.ifindex;
        mr.mr_type = libc::PACKET_MR_MULTICAST as u16;
        mr.mr_alen = 6;
        mr.mr_address[..6].copy_from_slice(&mac);
        setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mr,
        )
    }

    /// Keeps only CDP and LLDP frames in the kernel (a classic BPF filter): frames to the CDP
    /// multicast address, and frames of EtherType 0x88cc, untagged or behind one 802.1Q tag.
    /// A switch port's socket otherwise receives every frame the port carries (a boot storm's
    /// DHCP, TFTP and SIP included) only to throw almost all of them away in user space.
    pub fn filter_discovery(&self) -> io::Result<()> {
        let prog = discovery_filter();
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        };
        setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog,
        )?;
        // Frames queued between bind and attach passed no filter (an IPv6 MLD report of a
        // veth coming up, say): drop them, so what is read afterwards is only what it passes.
        let mut scratch = [0u8; 64];
        loop {
            // SAFETY: a valid buffer of the given length; MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    scratch.as_mut_ptr().cast(),
                    scratch.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                break;
            }
        }
        Ok(())
    }

    /// Receives every frame on the interface whatever its destination MAC: the emulator's one
    /// socket carries the unicast frames of thousands of phone MACs that are not the
    /// interface's own. Undone when the socket closes.
    pub fn set_promiscuous(&self) -> io::Result<()> {
        // SAFETY: all-zero is a valid packet_mreq.
        let mut mr: libc::packet_mreq = unsafe { zeroed() };
        mr.mr_ifindex = self.ifindex;
        mr.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mr,
        )
    }

    /// Asks for `bytes` of receive and send queue. The FORCE variants pass `net.core.rmem_max`
    /// with CAP_NET_ADMIN; without it the plain ones are capped by the sysctls (best effort:
    /// a storm's broadcast replies all land in one socket, a small queue only drops more).
    pub fn set_buffers(&self, bytes: i32) {
        let fd = self.fd.as_raw_fd();
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if setsockopt(fd, libc::SOL_SOCKET, force, &bytes).is_err() {
                let _ = setsockopt(fd, libc::SOL_SOCKET, plain, &bytes);
            }
        }
    }

    /// Frames the kernel dropped for a full receive queue since the previous call
    /// (PACKET_STATISTICS resets on read).
    pub fn take_drops(&self) -> io::Result<u32> {
        // SAFETY: tpacket_stats is plain data; getsockopt writes at most `len` bytes.
        let mut st: libc::tpacket_stats = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        })?;
        Ok(st.tp_drops)
    }

    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
    /// The interface's own MAC address (the source of frames we send).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends one whole frame (tags, if any, already written into it).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: frame is a valid slice.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Receives one frame into `buf` (replacing its contents; a tag the kernel stripped is
    /// written back). Returns `WouldBlock` when nothing is queued. Our own outgoing frames are
    /// skipped. The buffer is not zeroed per frame (a 9 KiB memset per frame cost more than
    /// the frame in a storm): the kernel writes the bytes we keep.
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> io::Result<RecvMeta> {
        loop {
            buf.clear();
            buf.reserve(MAX_FRAME + 4);
            // SAFETY: zeroed structs are valid; every pointer below points to live buffers of
            // the lengths given (`buf` has capacity for MAX_FRAME bytes).
            let mut name: libc::sockaddr_ll = unsafe { zeroed() };
            let mut cbuf = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: MAX_FRAME,
            };
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = (&mut name as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>() as _;
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut len = (n as usize).min(MAX_FRAME);
            // SAFETY: recvmsg initialised the first `len` bytes (at most the iov's length).
            unsafe { buf.set_len(len) };
            if name.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            let mut tag = None;
            // SAFETY: standard cmsg walk over the control buffer the kernel filled in.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA
                    {
                        let aux: libc::tpacket_auxdata =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                            let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0
                                && aux.tp_vlan_tpid != 0
                            {
                                aux.tp_vlan_tpid
                            } else {
                                TPID_8021Q
                            };
                            tag = Some((tpid, Tci::from_u16(aux.tp_vlan_tci)));
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            if let Some((tpid, tci)) = tag {
                insert_tag(buf, tpid, tci);
                len = buf.len();
            }
            return Ok(RecvMeta {
                len,
                tag_from_metadata: tag.map(|t| t.1),
                pkttype: name.sll_pkttype,
            });
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
const LD_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_H: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K

/// The program of [`PacketSocket::filter_discovery`]. Jumps are relative (next + jt/jf).
pub fn discovery_filter() -> [libc::sock_filter; 11] {
    [
        /* 0 */ insn(LD_W, 0, 0, 0),
        /* 1 */ insn(JEQ, 0, 2, 0x0100_0ccc), // dst 01:00:0c:cc:... ? 2 : 4
        /* 2 */ insn(LD_H, 0, 0, 4),
        /* 3 */ insn(JEQ, 5, 0, 0xcccc), // ...:cc:cc ? accept : 4
        /* 4 */ insn(LD_H, 0, 0, 12),
        /* 5 */ insn(JEQ, 3, 0, 0x88cc), // LLDP ? accept : 6
        /* 6 */ insn(JEQ, 0, 3, u32::from(TPID_8021Q)), // tagged ? 7 : reject
        /* 7 */ insn(LD_H, 0, 0, 16),
        /* 8 */ insn(JEQ, 0, 1, 0x88cc), // LLDP ? accept : reject
        /* 9 */ insn(RET, 0, 0, 0x0004_0000),
        /* 10 */ insn(RET, 0, 0, 0),
    ]
}

/// A [`PacketSocket`] registered with the tokio reactor.
#[derive(Debug)]
pub struct AsyncPacketSocket {
    inner: AsyncFd<PacketSocket>,
}

impl AsyncPacketSocket {
    /// Must be called inside a tokio runtime.
    pub fn new(sock: PacketSocket) -> io::Result<Self> {
        Ok(AsyncPacketSocket {
            // SAFETY: PacketSocket owns its fd and never replaces or closes it while registered.
            inner: unsafe {
                AsyncFd::register_with_interest(sock, Interest::READABLE | Interest::WRITABLE)?
            },
        })
    }

    /// Opens `ifname` in the current namespace and joins the given multicast groups.
    pub fn open(ifname: &str, groups: &[[u8; 6]]) -> io::Result<Self> {
        let s = PacketSocket::open(ifname)?;
        for g in groups {
            s.join_multicast(*g)?;
        }
        Self::new(s)
    }

    pub fn get_ref(&self) -> &PacketSocket {
        self.inner.get_ref()
    }

    pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.inner
            .async_io(Interest::WRITABLE, |s| s.try_send(frame))
            .await
    }

    /// Waits until frames are queued, then hands every queued one to `each` without waiting
    /// again (one wake-up per burst: the emulator's socket carries every phone's frames).
    /// Returns how many frames it handed over.
    pub async fn recv_burst(
        &self,
        buf: &mut Vec<u8>,
        mut each: impl FnMut(&[u8], RecvMeta),
    ) -> io::Result<usize> {
        let mut guard = self.inner.readable().await?;
        let mut n = 0;
        loop {
            match guard.try_io(|s| s.get_ref().try_recv(buf)) {
                Ok(Ok(meta)) => {
                    n += 1;
                    each(&buf[..meta.len], meta);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => return Ok(n),
            }
        }
    }

    /// Waits for the next frame; see [`PacketSocket::try_recv`].
    pub async fn recv(&self, buf: &mut Vec<u8>) -> io::Result<RecvMeta> {
        self.inner
            .async_io(Interest::READABLE, |s| s.try_recv(buf))
            .await
    }
}
