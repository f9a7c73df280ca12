//! Ethernet framing in user space: Ethernet II, 802.3 + LLC (+ SNAP), one 802.1Q tag.
//!
//! This kernel has no 802.1Q module, so VLAN tags are written and read here. Parsing never
//! panics; every length is checked.

use serde::{Deserialize, Serialize};

/// TPID of a C-VLAN tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an S-VLAN tag (accepted on receive).
pub const TPID_8021AD: u16 = 0x88a8;
/// Minimum Ethernet frame without FCS; shorter frames are zero-padded.
pub const MIN_FRAME: usize = 60;

/// The VLAN-tag rule of every raw socket in phoneboot (switch side and emulator alike): a
/// frame is tagged when the two bytes after the source MAC are 0x8100 or 0x88a8. Both TPIDs,
/// because the kernel hands over a stripped 802.1ad tag through the same PACKET_AUXDATA as an
/// 802.1Q one ([`crate::socket`] writes either back into the frame); accepting only 0x8100 in
/// the frame would make the same frame tagged or untagged depending on the driver.
pub fn is_tpid(ethertype: u16) -> bool {
    ethertype == TPID_8021Q || ethertype == TPID_8021AD
}

/// The frame's VLAN tag by [`is_tpid`]'s rule, without parsing the rest; `None` for an
/// untagged frame and for one too short to hold the tag it announces. Never panics.
pub fn peek_vlan(b: &[u8]) -> Option<Tci> {
    let t = u16::from_be_bytes([*b.get(12)?, *b.get(13)?]);
    if !is_tpid(t) {
        return None;
    }
    Some(Tci::from_u16(u16::from_be_bytes([
        *b.get(14)?,
        *b.get(15)?,
    ])))
}

/// An 802.1Q Tag Control Information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tci {
    /// Priority code point (802.1p CoS), 3 bits.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id, 12 bits (0 = priority tag only).
    pub vid: u16,
}

impl Tci {
    pub fn new(vid: u16, pcp: u8) -> Self {
        Tci {
            pcp: pcp & 7,
            dei: false,
            vid: vid & 0x0fff,
        }
    }
    pub fn to_u16(self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
    pub fn from_u16(v: u16) -> Self {
        Tci {
            pcp: (v >> 13) as u8,
            dei: v & 0x1000 != 0,
            vid: v & 0x0fff,
        }
    }
}

/// Why bytes are not an Ethernet frame we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    Short(usize),
    #[error("802.3 length {len} exceeds the {available} bytes present")]
    LengthOverrun { len: usize, available: usize },
    #[error("802.3 frame too short for its LLC/SNAP header")]
    ShortLlc,
}

/// What follows the MAC header (and the tag, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Ethernet II; `data` includes any padding.
    Ethernet2 { ethertype: u16, data: &'a [u8] },
    /// IEEE 802.3 with LLC; `data` is trimmed to the 802.3 length (no padding).
    Llc {
        dsap: u8,
        ssap: u8,
        control: u8,
        /// OUI and protocol id when the LLC is SNAP (`AA AA 03`).
        snap: Option<([u8; 3], u16)>,
        data: &'a [u8],
    },
}

/// A parsed Ethernet frame borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub vlan: Option<Tci>,
    pub payload: Payload<'a>,
}

fn mac_at(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

/// Parses a frame (without FCS) with at most one VLAN tag.
pub fn parse(b: &[u8]) -> Result<Frame<'_>, FrameError> {
    if b.len() < 14 {
        return Err(FrameError::Short(b.len()));
    }
    let dst = mac_at(b, 0);
    let src = mac_at(b, 6);
    let mut off = 12;
    let mut vlan = None;
    let t = u16::from_be_bytes([b[12], b[13]]);
    if is_tpid(t) {
        if b.len() < 18 {
            return Err(FrameError::Short(b.len()));
        }
        vlan = Some(Tci::from_u16(u16::from_be_bytes([b[14], b[15]])));
        off = 16;
    }
    let tl = u16::from_be_bytes([b[off], b[off + 1]]);
    let rest = &b[off + 2..];
    let payload = if tl >= 0x0600 {
        Payload::Ethernet2 {
            ethertype: tl,
            data: rest,
        }
    } else {
        let len = usize::from(tl);
        if len > rest.len() {
            return Err(FrameError::LengthOverrun {
                len,
                available: rest.len(),
            });
        }
        let llc = &rest[..len];
        if llc.len() < 3 {
            return Err(FrameError::ShortLlc);
        }
        let (dsap, ssap, control) = (llc[0], llc[1], llc[2]);
        if dsap == 0xaa && ssap == 0xaa && control == 0x03 {
            if llc.len() < 8 {
                return Err(FrameError::ShortLlc);
            }
            Payload::Llc {
                dsap,
                ssap,
                control,
                snap: Some((
                    [llc[3], llc[4], llc[5]],
                    u16::from_be_bytes([llc[6], llc[7]]),
                )),
                data: &llc[8..],
            }
        } else {
            Payload::Llc {
                dsap,
                ssap,
                control,
                snap: None,
                data: &llc[3..],
            }
        }
    };
    Ok(Frame {
        dst,
        src,
        vlan,
        payload,
    })
}

fn header(dst: [u8; 6], src: [u8; 6], vlan: Option<Tci>, cap: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(cap.max(MIN_FRAME) + 18);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(t) = vlan {
        f.extend_from_slice(&TPID_8021Q.to_be_bytes());
        f.extend_from_slice(&t.to_u16().to_be_bytes());
    }
    f
}

fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

/// Builds an Ethernet II frame, optionally 802.1Q-tagged, padded to 60 bytes.
pub fn ethernet2(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<Tci>,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = header(dst, src, vlan, payload.len() + 14);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    pad(f)
}

/// Builds an 802.3 + LLC/SNAP frame (CDP, VTP, ...), optionally tagged, padded to 60 bytes.
/// Returns `None` when the payload does not fit the 1500-byte 802.3 length.
pub fn snap(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<Tci>,
    oui: [u8; 3],
    pid: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len() + 8)
        .ok()
        .filter(|l| *l <= 1500)?;
    let mut f = header(dst, src, vlan, payload.len() + 22);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[0xaa, 0xaa, 0x03]);
    f.extend_from_slice(&oui);
    f.extend_from_slice(&pid.to_be_bytes());
    f.extend_from_slice(payload);
    Some(pad(f))
}

/// Inserts an 802.1Q tag after the source MAC (for frames whose tag the kernel stripped).
pub fn insert_tag(frame: &mut Vec<u8>, tpid: u16, tci: Tci) {
    if frame.len() < 12 {
        return;
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_u16().to_be_bytes());
    frame.splice(12..12, tag);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    const CDP: [u8; 6] = [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc];

    #[test]
    fn snap_frame_is_padded_and_trimmed_back() {
        let f = snap(CDP, SRC, None, [0, 0, 0x0c], 0x2000, b"abcd").unwrap();
        assert_eq!(f.len(), 60);
        assert_eq!(&f[12..14], &[0, 12]);
        let p = parse(&f).unwrap();
        assert_eq!(p.src, SRC);
        assert_eq!(
            p.payload,
            Payload::Llc {
                dsap: 0xaa,
                ssap: 0xaa,
                control: 3,
                snap: Some(([0, 0, 0x0c], 0x2000)),
                data: b"abcd"
            }
        );
    }

    #[test]
    fn tags_written_and_read() {
        let t = Tci::new(100, 5);
        assert_eq!(t.to_u16(), 0xa064);
        let f = ethernet2(CDP, SRC, Some(t), 0x0800, &[1, 2, 3]);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0xa0, 0x64]);
        let p = parse(&f).unwrap();
        assert_eq!(p.vlan, Some(t));
        let mut g = ethernet2(CDP, SRC, None, 0x0800, &[1, 2, 3]);
        insert_tag(&mut g, TPID_8021Q, t);
        assert_eq!(&g[..f.len()], &f[..]);
    }

    /// Issue 18 item 8: a 14-byte frame announcing a tag it does not carry.
    #[test]
    fn a_tag_announced_but_missing_is_no_tag_and_no_panic() {
        let mut f = [0u8; 14];
        f[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
        assert_eq!(peek_vlan(&f), None);
        assert_eq!(parse(&f), Err(FrameError::Short(14)));
        let mut g = f.to_vec();
        g.push(0xa0);
        assert_eq!(peek_vlan(&g), None);
        assert_eq!(parse(&g), Err(FrameError::Short(15)));
        g.push(0x64);
        assert_eq!(peek_vlan(&g), Some(Tci::new(100, 5)));
        g[12..14].copy_from_slice(&TPID_8021AD.to_be_bytes());
        assert_eq!(peek_vlan(&g), Some(Tci::new(100, 5)));
        g[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(peek_vlan(&g), None);
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(parse(&[0; 10]), Err(FrameError::Short(10)));
        let mut f = snap(CDP, SRC, None, [0, 0, 0x0c], 0x2000, b"abcd").unwrap();
        f[12..14].copy_from_slice(&1400u16.to_be_bytes());
        assert!(matches!(parse(&f), Err(FrameError::LengthOverrun { .. })));
        f[12..14].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(parse(&f), Err(FrameError::ShortLlc));
    }

    proptest! {
        /// Any bytes at all, short and odd frames included: an error or a frame, never a
        /// panic; and the tag [`peek_vlan`] sees is the one [`parse`] sees.
        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let parsed = parse(&b);
            let peeked = peek_vlan(&b);
            if let Ok(f) = parsed {
                prop_assert_eq!(f.vlan, peeked);
            }
        }

        #[test]
        fn snap_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..200),
                           tag in proptest::option::of((0u16..4096, 0u8..8))) {
            let vlan = tag.map(|(v, p)| Tci::new(v, p));
            let f = snap(CDP, SRC, vlan, [0, 0, 0x0c], 0x2000, &payload).unwrap();
            let p = parse(&f).unwrap();
            prop_assert_eq!(p.vlan, vlan);
            match p.payload {
                Payload::Llc { data, .. } => prop_assert_eq!(data, &payload[..]),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
