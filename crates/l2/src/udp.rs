//! Ethernet II (+ one VLAN tag) / IPv4 / UDP framing for DHCP sent and read over a raw socket
//! (the emulator's phones, before they have an address). The kernel here has no 802.1Q, so
//! phones write their voice-VLAN tag themselves; on receive a tag is read by the one rule of
//! [`crate::frame::is_tpid`].

use std::net::Ipv4Addr;

use mac::Mac;

use crate::frame::{is_tpid, Tci, TPID_8021Q};

pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// A UDP datagram lifted out of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    /// VLAN id of the frame's tag (the socket writes a tag the kernel stripped back in).
    pub vlan: Option<u16>,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds `dst <- src` Ethernet, an optional VLAN tag (PCP `pcp`), IPv4 and UDP with checksums.
#[allow(clippy::too_many_arguments)]
pub fn build_udp(
    src_mac: Mac,
    dst_mac: Mac,
    vlan: Option<u16>,
    pcp: u8,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(18 + ip_len);
    f.extend_from_slice(&dst_mac.octets());
    f.extend_from_slice(&src_mac.octets());
    if let Some(v) = vlan {
        f.extend_from_slice(&TPID_8021Q.to_be_bytes());
        f.extend_from_slice(&Tci::new(v, pcp).to_u16().to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0x00]);
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, DF
    f.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum placeholder
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    let ip_csum = csum_fold(csum_add(0, &f[ip_start..ip_start + 20]));
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_csum.to_be_bytes());
    let udp_start = f.len();
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.0.octets());
    pseudo.extend_from_slice(&dst.0.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    let mut c = csum_fold(csum_add(csum_add(0, &pseudo), &f[udp_start..]));
    if c == 0 {
        c = 0xffff;
    }
    f[udp_start + 6..udp_start + 8].copy_from_slice(&c.to_be_bytes());
    f
}

/// The destination MAC and VLAN of any frame (for demultiplexing before full parsing).
pub fn peek_dst(frame: &[u8]) -> Option<Mac> {
    let b: [u8; 6] = frame.get(0..6)?.try_into().ok()?;
    Some(Mac::new(b))
}

/// Parses an Ethernet/IPv4/UDP frame (one optional VLAN tag). None for anything else,
/// including fragments and truncated or inconsistent lengths. Checksums are not verified
/// (veths leave them to offload).
pub fn parse_udp(frame: &[u8]) -> Option<UdpFrame<'_>> {
    let dst_mac = Mac::new(frame.get(0..6)?.try_into().ok()?);
    let src_mac = Mac::new(frame.get(6..12)?.try_into().ok()?);
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    let mut vlan = None;
    if is_tpid(ethertype) {
        let tci = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
        vlan = Some(Tci::from_u16(tci).vid);
        off += 4;
        ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(off + 2..)?;
    let vihl = *ip.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if frag & 0x3fff != 0 || *ip.get(9)? != 17 || total < ihl + 8 || total > ip.len() {
        return None;
    }
    let addr = |at: usize| -> Option<Ipv4Addr> {
        let o: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(o))
    };
    let (src_ip, dst_ip) = (addr(12)?, addr(16)?);
    let udp = ip.get(ihl..total)?;
    let be16 =
        |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*udp.get(at)?, *udp.get(at + 1)?])) };
    let (src_port, dst_port) = (be16(0)?, be16(2)?);
    let ulen = usize::from(be16(4)?);
    if ulen < 8 || ulen > udp.len() {
        return None;
    }
    Some(UdpFrame {
        dst_mac,
        src_mac,
        vlan,
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        payload: udp.get(8..ulen)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builds_a_tagged_frame_and_reads_it_back() {
        let src = Mac::new([0, 0x1b, 0x54, 1, 2, 3]);
        let f = build_udp(
            src,
            Mac::BROADCAST,
            Some(100),
            5,
            (Ipv4Addr::UNSPECIFIED, 68),
            (Ipv4Addr::BROADCAST, 67),
            b"hello",
        );
        assert_eq!(&f[12..16], &[0x81, 0x00, 0xa0, 0x64]);
        let p = parse_udp(&f).unwrap();
        assert_eq!(p.vlan, Some(100));
        assert_eq!(p.src_mac, src);
        assert_eq!((p.src_port, p.dst_port), (68, 67));
        assert_eq!(p.payload, b"hello");
        // IPv4 header checksum verifies to zero.
        assert_eq!(csum_fold(csum_add(0, &f[18..38])), 0);
        // UDP checksum verifies over the pseudo header.
        let mut pseudo = vec![0, 0, 0, 0, 255, 255, 255, 255, 0, 17];
        pseudo.extend_from_slice(&13u16.to_be_bytes());
        assert_eq!(csum_fold(csum_add(csum_add(0, &pseudo), &f[38..])), 0);
    }

    #[test]
    fn untagged_and_non_udp() {
        let f = build_udp(
            Mac::new([2; 6]),
            Mac::new([4; 6]),
            None,
            0,
            (Ipv4Addr::new(198, 18, 0, 1), 67),
            (Ipv4Addr::new(198, 18, 0, 2), 68),
            &[1, 2, 3],
        );
        let p = parse_udp(&f).unwrap();
        assert_eq!(p.vlan, None);
        assert_eq!(p.dst_ip, Ipv4Addr::new(198, 18, 0, 2));
        let mut arp = f.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert!(parse_udp(&arp).is_none());
    }

    proptest! {
        /// Any bytes, short/odd frames and announced-but-missing tags included: never a
        /// panic, and a UDP frame's VLAN is the tag the Ethernet parser reads.
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(u) = parse_udp(&data) {
                prop_assert_eq!(u.vlan, crate::frame::peek_vlan(&data).map(|t| t.vid));
            }
            let _ = peek_dst(&data);
        }

        /// Every prefix of a real tagged DHCP frame (the 14-byte 0x8100 case among them).
        #[test]
        fn truncated_frames_never_panic(cut in 0usize..400) {
            let f = build_udp(Mac::new([2,0,0,0,0,1]), Mac::BROADCAST, Some(100), 0,
                (Ipv4Addr::UNSPECIFIED, 68), (Ipv4Addr::BROADCAST, 67), &[7u8; 300]);
            let p = parse_udp(&f[..cut.min(f.len())]);
            prop_assert_eq!(p.is_some(), cut >= f.len());
        }

        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..600), vlan in proptest::option::of(0u16..4095)) {
            let f = build_udp(Mac::new([2,0,0,0,0,1]), Mac::BROADCAST, vlan, 3,
                (Ipv4Addr::new(1,2,3,4), 1000), (Ipv4Addr::new(5,6,7,8), 2000), &payload);
            let p = parse_udp(&f).unwrap();
            prop_assert_eq!(p.payload, &payload[..]);
            prop_assert_eq!(p.vlan, vlan);
        }
    }
}
