//! Sockets: one UDP socket on port 67 per interface (`SO_BINDTODEVICE`, so we know which link
//! a broadcast came from and broadcasts go out the right link), the interface's address as
//! default server identifier, and ARP-cache seeding for unicast to unconfigured clients.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds 0.0.0.0:`port` on `iface` only.
pub fn bind_interface(iface: &str, port: u16) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.as_bytes()))?;
    // A boot storm arrives in bursts: let the kernel queue a few thousand requests.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    Ok(s.into())
}

/// The first IPv4 address of `iface` (our server identifier on that link).
pub fn interface_ipv4(iface: &str) -> Option<Ipv4Addr> {
    let mut found = None;
    // SAFETY: getifaddrs fills a linked list we only read and then free with freeifaddrs;
    // every pointer is checked for null before use and the list outlives the loop.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return None;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name);
            if name.to_bytes() != iface.as_bytes() {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            break;
        }
        libc::freeifaddrs(head);
    }
    found
}

/// `ATF_COM` from <net/if_arp.h>: the entry is complete (has a link address).
const ATF_COM: libc::c_int = 0x02;

/// Seeds the kernel ARP cache with `ip` -> `mac` on `iface`, so a plain UDP unicast reaches a
/// client that has no address yet and so cannot answer ARP (RFC 2131 4.1). The entry is not
/// permanent: it ages out like any learned entry. This is what dnsmasq does; the alternative,
/// building Ethernet frames on an AF_PACKET socket, needs a second socket per link and
/// checksum code for a case most phones avoid by setting the broadcast flag or by a relay.
pub fn seed_arp(sock: &impl AsRawFd, iface: &str, ip: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
    if iface.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    // SAFETY: arpreq is plain old data; zeroed is a valid value. We write an AF_INET
    // sockaddr_in into the sockaddr-sized arp_pa (sockaddr_in is 16 bytes, like sockaddr),
    // and the ioctl only reads the struct we pass by pointer.
    unsafe {
        let mut req: libc::arpreq = std::mem::zeroed();
        let pa = &mut req.arp_pa as *mut libc::sockaddr as *mut libc::sockaddr_in;
        (*pa).sin_family = libc::AF_INET as libc::sa_family_t;
        (*pa).sin_addr.s_addr = u32::from(ip).to_be();
        req.arp_ha.sa_family = libc::ARPHRD_ETHER;
        for (d, s) in req.arp_ha.sa_data.iter_mut().zip(mac) {
            *d = s as libc::c_char;
        }
        req.arp_flags = ATF_COM;
        for (d, s) in req.arp_dev.iter_mut().zip(iface.bytes()) {
            *d = s as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSARP as _, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
