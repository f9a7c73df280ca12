//! Leased addresses on the IP interface, through rtnetlink (no `ip` process per phone).
//!
//! Each phone's address is added as a /32 on the ip-if, plus one route for the lease's
//! subnet through that interface, so removing one phone's address never takes the others
//! with it (deleting a primary /24 would drop its secondaries).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;

/// A NETLINK_ROUTE socket, one request at a time.
pub struct Netlink {
    fd: Mutex<OwnedFd>,
    seq: AtomicU32,
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2) call, checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: tv is a valid timeval.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Netlink {
            fd: Mutex::new(fd),
            seq: AtomicU32::new(1),
        })
    }

    /// Sends one request and waits for its ACK; the kernel's errno becomes the error.
    fn request(&self, ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        let fd = self
            .fd
            .lock()
            .map_err(|_| io::Error::other("netlink lock poisoned"))?;
        // SAFETY: msg is a valid buffer.
        let n = unsafe {
            libc::send(
                fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is a valid buffer.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let mty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let mseq =
                    u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
                if len < 16 {
                    break;
                }
                if mty == NLMSG_ERROR && mseq == seq && off + 20 <= n {
                    let err = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                off += (len + 3) & !3;
            }
        }
    }

    fn addr_body(ifindex: u32, ip: Ipv4Addr, prefix: u8) -> Vec<u8> {
        let mut b = vec![libc::AF_INET as u8, prefix, 0, 0];
        b.extend_from_slice(&ifindex.to_ne_bytes());
        push_attr(&mut b, IFA_LOCAL, &ip.octets());
        push_attr(&mut b, IFA_ADDRESS, &ip.octets());
        b
    }

    /// Adds `ip/prefix` to the interface (already present is fine).
    pub fn add_addr(&self, ifindex: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        match self.request(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_REPLACE,
            &Self::addr_body(ifindex, ip, prefix),
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes `ip/prefix` (absent is fine).
    pub fn del_addr(&self, ifindex: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        match self.request(RTM_DELADDR, 0, &Self::addr_body(ifindex, ip, prefix)) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            r => r,
        }
    }

    /// Adds or replaces the on-link route `dst/prefix dev ifindex` in the main table.
    pub fn replace_route(&self, ifindex: u32, dst: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let masked = mask(dst, prefix);
        // rtmsg: family, dst_len, src_len, tos, table main, proto boot, scope link, unicast.
        let mut b = vec![libc::AF_INET as u8, prefix, 0, 0, 254, 3, 253, 1];
        b.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut b, RTA_DST, &masked.octets());
        push_attr(&mut b, RTA_OIF, &ifindex.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &b)
    }

    fn local_route_body(ifindex: u32, dst: Ipv4Addr, prefix: u8) -> Vec<u8> {
        // rtmsg: family, dst_len, src_len, tos, table local, proto boot, scope host, local.
        let mut b = vec![libc::AF_INET as u8, prefix, 0, 0, 255, 3, 254, 2];
        b.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut b, RTA_DST, &mask(dst, prefix).octets());
        push_attr(&mut b, RTA_OIF, &ifindex.to_ne_bytes());
        b
    }

    /// `ip route replace local dst/prefix dev ifindex table local`: every address of the
    /// prefix is this host's (AnyIP) without one interface address each.
    pub fn replace_local_route(&self, ifindex: u32, dst: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.request(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_REPLACE,
            &Self::local_route_body(ifindex, dst, prefix),
        )
    }

    /// Removes a route added by [`Netlink::replace_local_route`] (absent is fine).
    pub fn del_local_route(&self, ifindex: u32, dst: Ipv4Addr, prefix: u8) -> io::Result<()> {
        match self.request(
            RTM_DELROUTE,
            0,
            &Self::local_route_body(ifindex, dst, prefix),
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }
}

/// Does `dst/prefix` contain `ip`?
pub fn contains(dst: Ipv4Addr, prefix: u8, ip: Ipv4Addr) -> bool {
    mask(dst, prefix) == mask(ip, prefix)
}

/// `ip` with the host bits cleared.
pub fn mask(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    Ipv4Addr::from(u32::from(ip) & m)
}

/// The interface index of `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::other("NUL in name"))?;
    // SAFETY: c is NUL-terminated.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name:?}"),
        ))
    } else {
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(
            mask(Ipv4Addr::new(198, 18, 100, 77), 24),
            Ipv4Addr::new(198, 18, 100, 0)
        );
        assert_eq!(mask(Ipv4Addr::new(1, 2, 3, 4), 0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            mask(Ipv4Addr::new(1, 2, 3, 4), 32),
            Ipv4Addr::new(1, 2, 3, 4)
        );
    }
}
