//! Cisco Discovery Protocol (CDPv1/v2) PDU codec.
//!
//! This crate knows the CDP PDU only: the 4-byte header and the TLVs after it, as carried
//! after an 802.3 + LLC/SNAP header (OUI `00 00 0C`, PID `0x2000`). Ethernet framing lives in
//! the `l2` crate. No I/O, no clock: bytes in, values out, and back.
//!
//! Design rules:
//! * Decoding is strict about bounds and never panics. A TLV whose type we know but whose
//!   value does not have the documented layout is kept as [`Tlv::Raw`], exactly as received, so
//!   a decode/encode round trip reproduces the input byte for byte (unknown types likewise).
//! * The checksum follows Cisco's odd-length rule (a lone last byte is added as a sign-extended
//!   char in the low half of a word); see [`checksum`]. Receivers verify it but, like lldpd,
//!   should only count a mismatch: third-party senders get the edge cases wrong.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// SNAP protocol id of CDP (after OUI `00 00 0C`).
pub const SNAP_PID: u16 = 0x2000;
/// Cisco's SNAP OUI.
pub const CISCO_OUI: [u8; 3] = [0x00, 0x00, 0x0c];
/// Destination MAC of CDP frames.
pub const MULTICAST: [u8; 6] = [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc];
/// Largest PDU that fits in one 802.3 frame (1500 minus the 8 bytes of LLC/SNAP).
pub const MAX_PDU_LEN: usize = 1492;

/// TLV type numbers (Wireshark's `packet-cdp.c` numbering).
pub mod tlv_type {
    pub const DEVICE_ID: u16 = 0x0001;
    pub const ADDRESSES: u16 = 0x0002;
    pub const PORT_ID: u16 = 0x0003;
    pub const CAPABILITIES: u16 = 0x0004;
    pub const SOFTWARE_VERSION: u16 = 0x0005;
    pub const PLATFORM: u16 = 0x0006;
    pub const VTP_DOMAIN: u16 = 0x0009;
    pub const NATIVE_VLAN: u16 = 0x000a;
    pub const DUPLEX: u16 = 0x000b;
    pub const VOIP_VLAN_REPLY: u16 = 0x000e;
    pub const VOIP_VLAN_QUERY: u16 = 0x000f;
    pub const POWER_CONSUMPTION: u16 = 0x0010;
    pub const MTU: u16 = 0x0011;
    pub const TRUST_BITMAP: u16 = 0x0012;
    pub const UNTRUSTED_COS: u16 = 0x0013;
    pub const SYSTEM_NAME: u16 = 0x0014;
    pub const SYSTEM_OID: u16 = 0x0015;
    pub const MANAGEMENT_ADDRESSES: u16 = 0x0016;
    pub const POWER_REQUESTED: u16 = 0x0019;
    pub const POWER_AVAILABLE: u16 = 0x001a;
    pub const SPARE_PAIR_POE: u16 = 0x001f;
}

/// Why bytes are not a CDP PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("PDU of {len} bytes is shorter than the 4-byte CDP header")]
    ShortHeader { len: usize },
    #[error("CDP version {0} is not 1 or 2")]
    BadVersion(u8),
    #[error("TLV at offset {offset} has length {len}; the minimum is 4")]
    TlvTooShort { offset: usize, len: u16 },
    #[error("TLV at offset {offset} claims {len} bytes, only {remaining} remain")]
    TlvOverrun {
        offset: usize,
        len: u16,
        remaining: usize,
    },
    #[error("{trailing} stray bytes after the last TLV (at offset {offset})")]
    TrailingBytes { offset: usize, trailing: usize },
}

/// Why a PDU cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("TLV type {ty:#06x} value of {len} bytes does not fit a 16-bit TLV length")]
    TlvTooLong { ty: u16, len: usize },
    #[error("PDU of {len} bytes exceeds the {max}-byte 802.3 limit")]
    PduTooLong { len: usize, max: usize },
    #[error("address list of {0} entries does not fit")]
    TooManyAddresses(usize),
}

/// The CDP checksum of `pdu` (version byte to last TLV byte), computed as if the checksum
/// field (bytes 2-3) were zero.
///
/// RFC 1071 ones-complement sum of big-endian words, except a lone last byte `b` is added as
/// `b` when `b < 0x80` and as `0xFF00 + b - 1` otherwise (Cisco's sign-extended char).
pub fn checksum(pdu: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = pdu.chunks_exact(2);
    for (i, w) in chunks.by_ref().enumerate() {
        if i == 1 {
            continue; // the checksum field itself counts as zero
        }
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = chunks.remainder() {
        let b = u32::from(*b);
        sum += if b < 0x80 { b } else { 0xff00 + b - 1 };
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when the checksum stored in `pdu` matches its content.
pub fn checksum_ok(pdu: &[u8]) -> bool {
    pdu.len() >= 4 && u16::from_be_bytes([pdu[2], pdu[3]]) == checksum(pdu)
}

/// Capability bits (TLV 0x0004).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Capabilities(pub u32);

impl Capabilities {
    pub const ROUTER: u32 = 0x001;
    pub const TRANSPARENT_BRIDGE: u32 = 0x002;
    pub const SOURCE_ROUTE_BRIDGE: u32 = 0x004;
    pub const SWITCH: u32 = 0x008;
    pub const HOST: u32 = 0x010;
    pub const IGMP: u32 = 0x020;
    pub const REPEATER: u32 = 0x040;
    pub const PHONE: u32 = 0x080;
    pub const REMOTE: u32 = 0x100;
    pub const CVTA: u32 = 0x200;
    pub const MAC_RELAY: u32 = 0x400;

    /// What an IP phone advertises: Host, Phone, Two-port MAC relay (0x490).
    pub const IP_PHONE: Capabilities = Capabilities(Self::HOST | Self::PHONE | Self::MAC_RELAY);
    /// What an access switch advertises: Switch, IGMP (0x28).
    pub const ACCESS_SWITCH: Capabilities = Capabilities(Self::SWITCH | Self::IGMP);

    const TABLE: [(u32, &'static str, &'static str); 11] = [
        (Self::ROUTER, "R", "Router"),
        (Self::TRANSPARENT_BRIDGE, "T", "Trans-Bridge"),
        (Self::SOURCE_ROUTE_BRIDGE, "B", "Source-Route-Bridge"),
        (Self::SWITCH, "S", "Switch"),
        (Self::HOST, "H", "Host"),
        (Self::IGMP, "I", "IGMP"),
        (Self::REPEATER, "r", "Repeater"),
        (Self::PHONE, "P", "Phone"),
        (Self::REMOTE, "D", "Remotely-Managed-Device"),
        (Self::CVTA, "C", "CVTA"),
        (Self::MAC_RELAY, "M", "Two-port Mac Relay"),
    ];

    pub fn contains(self, bit: u32) -> bool {
        self.0 & bit == bit
    }

    /// Letters as `show cdp neighbors` prints them, e.g. `H P M`.
    pub fn letters(self) -> String {
        Self::TABLE
            .iter()
            .filter(|(b, _, _)| self.contains(*b))
            .map(|(_, l, _)| *l)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Words as `show cdp neighbors detail` prints them, e.g. `Host Phone Two-port Mac Relay`.
    pub fn words(self) -> String {
        Self::TABLE
            .iter()
            .filter(|(b, _, _)| self.contains(*b))
            .map(|(_, _, w)| *w)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capabilities({:#x} {})", self.0, self.letters())
    }
}

/// One record of an Addresses / Management Address TLV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Address {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// Any other protocol, kept as its raw pieces.
    Other {
        proto_type: u8,
        proto: Vec<u8>,
        addr: Vec<u8>,
    },
}

const IPV6_PROTO: [u8; 8] = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x86, 0xdd];

impl Address {
    fn encode(&self, out: &mut Vec<u8>) {
        let (pt, proto, addr): (u8, &[u8], Vec<u8>) = match self {
            Address::V4(a) => (1, &[0xcc], a.octets().to_vec()),
            Address::V6(a) => (2, &IPV6_PROTO, a.octets().to_vec()),
            Address::Other {
                proto_type,
                proto,
                addr,
            } => (*proto_type, proto, addr.clone()),
        };
        out.push(pt);
        out.push(proto.len() as u8);
        out.extend_from_slice(proto);
        out.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        out.extend_from_slice(&addr);
    }

    fn encodable(&self) -> bool {
        match self {
            Address::Other { proto, addr, .. } => proto.len() <= 255 && addr.len() <= 0xffff,
            _ => true,
        }
    }
}

fn decode_addresses(v: &[u8]) -> Option<Vec<Address>> {
    let count = u32::from_be_bytes(v.get(0..4)?.try_into().ok()?);
    let mut rest = &v[4..];
    let mut out = Vec::new();
    for _ in 0..count {
        let pt = *rest.first()?;
        let pl = usize::from(*rest.get(1)?);
        let proto = rest.get(2..2 + pl)?;
        let al = usize::from(u16::from_be_bytes(
            rest.get(2 + pl..4 + pl)?.try_into().ok()?,
        ));
        let addr = rest.get(4 + pl..4 + pl + al)?;
        let a = match (pt, proto, al) {
            (1, [0xcc], 4) => Address::V4(Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?)),
            (2, p, 16) if p == IPV6_PROTO => {
                Address::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?))
            }
            _ => Address::Other {
                proto_type: pt,
                proto: proto.to_vec(),
                addr: addr.to_vec(),
            },
        };
        out.push(a);
        rest = &rest[4 + pl + al..];
    }
    // Stray bytes after the records: keep the TLV raw so it re-encodes exactly.
    rest.is_empty().then_some(out)
}

/// Duplex byte (TLV 0x000B): 0 half, 1 full; other values are kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplex(pub u8);

impl Duplex {
    pub const HALF: Duplex = Duplex(0);
    pub const FULL: Duplex = Duplex(1);
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "half",
            1 => "full",
            _ => "unknown",
        }
    }
}

/// One CDP TLV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Tlv {
    DeviceId(String),
    Addresses(Vec<Address>),
    PortId(String),
    Capabilities(Capabilities),
    SoftwareVersion(String),
    Platform(String),
    VtpDomain(String),
    NativeVlan(u16),
    Duplex(Duplex),
    /// The voice VLAN from the switch: appliance id (1 in practice) and VVID
    /// (0 = dot1p, 4095 = untagged).
    VoipVlanReply {
        appliance: u8,
        vlan: u16,
    },
    /// The phone's request for the voice VLAN. Its content has no known meaning; its presence
    /// is the request. Kept raw.
    VoipVlanQuery(Vec<u8>),
    /// Power the device draws, mW.
    PowerConsumption(u16),
    Mtu(u32),
    TrustBitmap(u8),
    UntrustedCos(u8),
    SystemName(String),
    SystemOid(Vec<u8>),
    ManagementAddresses(Vec<Address>),
    /// Levels in mW, in order of preference (unused slots 0).
    PowerRequested {
        request_id: u16,
        management_id: u16,
        levels_mw: Vec<u32>,
    },
    PowerAvailable {
        request_id: u16,
        management_id: u16,
        available_mw: u32,
        /// `0xFFFF_FFFF` = no preference.
        management_level: u32,
    },
    SparePairPoe(u8),
    /// Unknown type, or a known type whose value does not have the documented layout;
    /// re-encoded exactly as received.
    Raw {
        ty: u16,
        value: Vec<u8>,
    },
}

impl Tlv {
    /// The TLV type number.
    pub fn ty(&self) -> u16 {
        use tlv_type::*;
        match self {
            Tlv::DeviceId(_) => DEVICE_ID,
            Tlv::Addresses(_) => ADDRESSES,
            Tlv::PortId(_) => PORT_ID,
            Tlv::Capabilities(_) => CAPABILITIES,
            Tlv::SoftwareVersion(_) => SOFTWARE_VERSION,
            Tlv::Platform(_) => PLATFORM,
            Tlv::VtpDomain(_) => VTP_DOMAIN,
            Tlv::NativeVlan(_) => NATIVE_VLAN,
            Tlv::Duplex(_) => DUPLEX,
            Tlv::VoipVlanReply { .. } => VOIP_VLAN_REPLY,
            Tlv::VoipVlanQuery(_) => VOIP_VLAN_QUERY,
            Tlv::PowerConsumption(_) => POWER_CONSUMPTION,
            Tlv::Mtu(_) => MTU,
            Tlv::TrustBitmap(_) => TRUST_BITMAP,
            Tlv::UntrustedCos(_) => UNTRUSTED_COS,
            Tlv::SystemName(_) => SYSTEM_NAME,
            Tlv::SystemOid(_) => SYSTEM_OID,
            Tlv::ManagementAddresses(_) => MANAGEMENT_ADDRESSES,
            Tlv::PowerRequested { .. } => POWER_REQUESTED,
            Tlv::PowerAvailable { .. } => POWER_AVAILABLE,
            Tlv::SparePairPoe(_) => SPARE_PAIR_POE,
            Tlv::Raw { ty, .. } => *ty,
        }
    }

    /// The value bytes (without the 4-byte header).
    fn value(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        match self {
            Tlv::DeviceId(s)
            | Tlv::PortId(s)
            | Tlv::SoftwareVersion(s)
            | Tlv::Platform(s)
            | Tlv::VtpDomain(s)
            | Tlv::SystemName(s) => v.extend_from_slice(s.as_bytes()),
            Tlv::Addresses(a) | Tlv::ManagementAddresses(a) => {
                let n =
                    u32::try_from(a.len()).map_err(|_| EncodeError::TooManyAddresses(a.len()))?;
                if !a.iter().all(Address::encodable) {
                    return Err(EncodeError::TlvTooLong {
                        ty: self.ty(),
                        len: usize::MAX,
                    });
                }
                v.extend_from_slice(&n.to_be_bytes());
                for r in a {
                    r.encode(&mut v);
                }
            }
            Tlv::Capabilities(c) => v.extend_from_slice(&c.0.to_be_bytes()),
            Tlv::NativeVlan(n) => v.extend_from_slice(&n.to_be_bytes()),
            Tlv::Duplex(d) => v.push(d.0),
            Tlv::VoipVlanReply { appliance, vlan } => {
                v.push(*appliance);
                v.extend_from_slice(&vlan.to_be_bytes());
            }
            Tlv::VoipVlanQuery(b) | Tlv::SystemOid(b) => v.extend_from_slice(b),
            Tlv::PowerConsumption(mw) => v.extend_from_slice(&mw.to_be_bytes()),
            Tlv::Mtu(m) => v.extend_from_slice(&m.to_be_bytes()),
            Tlv::TrustBitmap(b) | Tlv::UntrustedCos(b) | Tlv::SparePairPoe(b) => v.push(*b),
            Tlv::PowerRequested {
                request_id,
                management_id,
                levels_mw,
            } => {
                v.extend_from_slice(&request_id.to_be_bytes());
                v.extend_from_slice(&management_id.to_be_bytes());
                for l in levels_mw {
                    v.extend_from_slice(&l.to_be_bytes());
                }
            }
            Tlv::PowerAvailable {
                request_id,
                management_id,
                available_mw,
                management_level,
            } => {
                v.extend_from_slice(&request_id.to_be_bytes());
                v.extend_from_slice(&management_id.to_be_bytes());
                v.extend_from_slice(&available_mw.to_be_bytes());
                v.extend_from_slice(&management_level.to_be_bytes());
            }
            Tlv::Raw { value, .. } => v.extend_from_slice(value),
        }
        Ok(v)
    }

    /// Decodes one TLV value of type `ty`; layouts that do not match become [`Tlv::Raw`].
    fn decode(ty: u16, v: &[u8]) -> Tlv {
        Self::decode_typed(ty, v).unwrap_or_else(|| Tlv::Raw {
            ty,
            value: v.to_vec(),
        })
    }

    fn decode_typed(ty: u16, v: &[u8]) -> Option<Tlv> {
        use tlv_type::*;
        let text = || String::from_utf8(v.to_vec()).ok();
        let u8v = || (v.len() == 1).then(|| v[0]);
        let u16v = || <[u8; 2]>::try_from(v).ok().map(u16::from_be_bytes);
        let u32v = || <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes);
        Some(match ty {
            DEVICE_ID => Tlv::DeviceId(text()?),
            ADDRESSES => Tlv::Addresses(decode_addresses(v)?),
            PORT_ID => Tlv::PortId(text()?),
            CAPABILITIES => Tlv::Capabilities(Capabilities(u32v()?)),
            SOFTWARE_VERSION => Tlv::SoftwareVersion(text()?),
            PLATFORM => Tlv::Platform(text()?),
            VTP_DOMAIN => Tlv::VtpDomain(text()?),
            NATIVE_VLAN => Tlv::NativeVlan(u16v()?),
            DUPLEX => Tlv::Duplex(Duplex(u8v()?)),
            VOIP_VLAN_REPLY if v.len() == 3 => Tlv::VoipVlanReply {
                appliance: v[0],
                vlan: u16::from_be_bytes([v[1], v[2]]),
            },
            VOIP_VLAN_QUERY => Tlv::VoipVlanQuery(v.to_vec()),
            POWER_CONSUMPTION => Tlv::PowerConsumption(u16v()?),
            MTU => Tlv::Mtu(u32v()?),
            TRUST_BITMAP => Tlv::TrustBitmap(u8v()?),
            UNTRUSTED_COS => Tlv::UntrustedCos(u8v()?),
            SYSTEM_NAME => Tlv::SystemName(text()?),
            SYSTEM_OID => Tlv::SystemOid(v.to_vec()),
            MANAGEMENT_ADDRESSES => Tlv::ManagementAddresses(decode_addresses(v)?),
            POWER_REQUESTED if v.len() >= 4 && v.len().is_multiple_of(4) => Tlv::PowerRequested {
                request_id: u16::from_be_bytes([v[0], v[1]]),
                management_id: u16::from_be_bytes([v[2], v[3]]),
                levels_mw: v[4..]
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            },
            POWER_AVAILABLE if v.len() == 12 => Tlv::PowerAvailable {
                request_id: u16::from_be_bytes([v[0], v[1]]),
                management_id: u16::from_be_bytes([v[2], v[3]]),
                available_mw: u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                management_level: u32::from_be_bytes([v[8], v[9], v[10], v[11]]),
            },
            SPARE_PAIR_POE => Tlv::SparePairPoe(u8v()?),
            _ => return None,
        })
    }
}

/// A CDP PDU: header fields and TLVs in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pdu {
    /// 1 or 2.
    pub version: u8,
    /// Holdtime in seconds; 0 asks the receiver to forget us now.
    pub ttl: u8,
    pub tlvs: Vec<Tlv>,
}

impl Pdu {
    /// A CDPv2 PDU with the given holdtime and no TLVs.
    pub fn new(ttl: u8) -> Self {
        Pdu {
            version: 2,
            ttl,
            tlvs: Vec::new(),
        }
    }

    /// Adds a TLV (builder style).
    pub fn with(mut self, tlv: Tlv) -> Self {
        self.tlvs.push(tlv);
        self
    }

    /// Encodes the PDU with a correct checksum.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![self.version, self.ttl, 0, 0];
        for t in &self.tlvs {
            let v = t.value()?;
            let len = u16::try_from(v.len() + 4).map_err(|_| EncodeError::TlvTooLong {
                ty: t.ty(),
                len: v.len(),
            })?;
            out.extend_from_slice(&t.ty().to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&v);
        }
        if out.len() > MAX_PDU_LEN {
            return Err(EncodeError::PduTooLong {
                len: out.len(),
                max: MAX_PDU_LEN,
            });
        }
        let c = checksum(&out);
        out[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(out)
    }

    /// Decodes a PDU (already trimmed to the 802.3 length). The checksum is not checked here:
    /// use [`checksum_ok`] on the same bytes and count a mismatch.
    pub fn decode(pdu: &[u8]) -> Result<Pdu, DecodeError> {
        if pdu.len() < 4 {
            return Err(DecodeError::ShortHeader { len: pdu.len() });
        }
        let version = pdu[0];
        if version != 1 && version != 2 {
            return Err(DecodeError::BadVersion(version));
        }
        let mut tlvs = Vec::new();
        let mut off = 4;
        while off < pdu.len() {
            let remaining = pdu.len() - off;
            if remaining < 4 {
                return Err(DecodeError::TrailingBytes {
                    offset: off,
                    trailing: remaining,
                });
            }
            let ty = u16::from_be_bytes([pdu[off], pdu[off + 1]]);
            let len = u16::from_be_bytes([pdu[off + 2], pdu[off + 3]]);
            if len < 4 {
                return Err(DecodeError::TlvTooShort { offset: off, len });
            }
            if usize::from(len) > remaining {
                return Err(DecodeError::TlvOverrun {
                    offset: off,
                    len,
                    remaining,
                });
            }
            tlvs.push(Tlv::decode(ty, &pdu[off + 4..off + usize::from(len)]));
            off += usize::from(len);
        }
        Ok(Pdu {
            version,
            ttl: pdu[1],
            tlvs,
        })
    }

    /// The first TLV for which `f` returns a value.
    pub fn find<'a, T>(&'a self, f: impl Fn(&'a Tlv) -> Option<T>) -> Option<T> {
        self.tlvs.iter().find_map(f)
    }

    pub fn device_id(&self) -> Option<&str> {
        self.find(|t| match t {
            Tlv::DeviceId(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn port_id(&self) -> Option<&str> {
        self.find(|t| match t {
            Tlv::PortId(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn platform(&self) -> Option<&str> {
        self.find(|t| match t {
            Tlv::Platform(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn software_version(&self) -> Option<&str> {
        self.find(|t| match t {
            Tlv::SoftwareVersion(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn capabilities(&self) -> Option<Capabilities> {
        self.find(|t| match t {
            Tlv::Capabilities(c) => Some(*c),
            _ => None,
        })
    }
    /// All addresses from the Addresses TLV(s).
    pub fn addresses(&self) -> Vec<Address> {
        self.tlvs
            .iter()
            .filter_map(|t| match t {
                Tlv::Addresses(a) => Some(a.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
    pub fn voip_vlan_query(&self) -> bool {
        self.tlvs.iter().any(|t| matches!(t, Tlv::VoipVlanQuery(_)))
    }
    /// The VVID of a VoIP VLAN Reply TLV.
    pub fn voip_vlan_reply(&self) -> Option<u16> {
        self.find(|t| match t {
            Tlv::VoipVlanReply { vlan, .. } => Some(*vlan),
            _ => None,
        })
    }
    pub fn native_vlan(&self) -> Option<u16> {
        self.find(|t| match t {
            Tlv::NativeVlan(v) => Some(*v),
            _ => None,
        })
    }
    pub fn duplex(&self) -> Option<Duplex> {
        self.find(|t| match t {
            Tlv::Duplex(d) => Some(*d),
            _ => None,
        })
    }
    pub fn power_consumption(&self) -> Option<u16> {
        self.find(|t| match t {
            Tlv::PowerConsumption(p) => Some(*p),
            _ => None,
        })
    }
    /// `(request_id, management_id, levels)` of a Power Requested TLV.
    pub fn power_requested(&self) -> Option<(u16, u16, &[u32])> {
        self.find(|t| match t {
            Tlv::PowerRequested {
                request_id,
                management_id,
                levels_mw,
            } => Some((*request_id, *management_id, levels_mw.as_slice())),
            _ => None,
        })
    }
    /// `(request_id, management_id, available_mw, management_level)` of a Power Available TLV.
    pub fn power_available(&self) -> Option<(u16, u16, u32, u32)> {
        self.find(|t| match t {
            Tlv::PowerAvailable {
                request_id,
                management_id,
                available_mw,
                management_level,
            } => Some((
                *request_id,
                *management_id,
                *available_mw,
                *management_level,
            )),
            _ => None,
        })
    }
}

/// The fuzz body: decode arbitrary bytes, and if they decode, re-encode and decode again.
/// Must never panic; shared by the cargo-fuzz target and a proptest.
pub fn fuzz_one(data: &[u8]) {
    let _ = checksum_ok(data);
    if let Ok(p) = Pdu::decode(data) {
        if let Ok(bytes) = p.encode() {
            // Same content apart from the checksum, which encode recomputes.
            assert_eq!(bytes[4..], data[4..], "re-encoding changed the TLVs");
            assert!(checksum_ok(&bytes));
            let again = Pdu::decode(&bytes);
            assert_eq!(again.as_ref().ok(), Some(&p));
        }
    }
}

#[cfg(test)]
mod tests;
