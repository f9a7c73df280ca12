//! LLDP (IEEE 802.1AB) LLDPDU codec with the LLDP-MED (ANSI/TIA-1057) and IEEE 802.3
//! power TLVs that phones and access switches exchange.
//!
//! The LLDPDU is the payload after the Ethernet II header (EtherType `0x88CC`); framing lives
//! in the `l2` crate. No I/O, no clock.
//!
//! Design rules (same as the `cdp` crate): strict bounds, never a panic; a TLV of a known type
//! whose value does not have the documented layout is kept raw ([`Tlv::Raw`] or
//! [`Tlv::Org`]) so that decode/encode reproduces the input byte for byte.

use serde::{Deserialize, Serialize};

/// EtherType of LLDP.
pub const ETHERTYPE: u16 = 0x88cc;
/// Nearest-bridge destination MAC.
pub const MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
/// TIA TR-41 (LLDP-MED) OUI.
pub const OUI_MED: [u8; 3] = [0x00, 0x12, 0xbb];
/// IEEE 802.3 OUI.
pub const OUI_8023: [u8; 3] = [0x00, 0x12, 0x0f];
/// IEEE 802.1 OUI.
pub const OUI_8021: [u8; 3] = [0x00, 0x80, 0xc2];

/// Why bytes are not an LLDPDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("TLV header at offset {offset} is cut short")]
    ShortHeader { offset: usize },
    #[error("TLV at offset {offset} claims {len} bytes, only {remaining} remain")]
    TlvOverrun {
        offset: usize,
        len: usize,
        remaining: usize,
    },
    #[error("the LLDPDU does not start with Chassis ID, Port ID, TTL")]
    MissingMandatory,
}

/// Why an LLDPDU cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("TLV type {ty} value of {len} bytes exceeds 511")]
    TlvTooLong { ty: u8, len: usize },
    #[error("TLV type {0} does not fit in 7 bits")]
    BadType(u8),
}

/// LLDP system capability bits (TLV 7).
pub mod cap {
    pub const OTHER: u16 = 0x0001;
    pub const REPEATER: u16 = 0x0002;
    pub const BRIDGE: u16 = 0x0004;
    pub const WLAN_AP: u16 = 0x0008;
    pub const ROUTER: u16 = 0x0010;
    pub const TELEPHONE: u16 = 0x0020;
    pub const DOCSIS: u16 = 0x0040;
    pub const STATION: u16 = 0x0080;
}

/// LLDP-MED capability bits and device types.
pub mod med {
    pub const CAP_CAPABILITIES: u16 = 0x01;
    pub const CAP_NETWORK_POLICY: u16 = 0x02;
    pub const CAP_LOCATION: u16 = 0x04;
    pub const CAP_POWER_PSE: u16 = 0x08;
    pub const CAP_POWER_PD: u16 = 0x10;
    pub const CAP_INVENTORY: u16 = 0x20;
    pub const CLASS_I: u8 = 1;
    pub const CLASS_II: u8 = 2;
    /// An IP phone.
    pub const CLASS_III: u8 = 3;
    /// A switch.
    pub const NETWORK_CONNECTIVITY: u8 = 4;
    /// Application types of a Network Policy.
    pub const APP_VOICE: u8 = 1;
    pub const APP_VOICE_SIGNALING: u8 = 2;
}

/// LLDP-MED Network Policy (MED subtype 2), the voice VLAN of LLDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// 1 voice, 2 voice signalling, ...
    pub app: u8,
    /// U: the network has no policy for this application.
    pub unknown: bool,
    /// T: use an 802.1Q tag with `vlan`.
    pub tagged: bool,
    /// X: reserved, kept for exact round trips.
    pub reserved: bool,
    /// 12 bits.
    pub vlan: u16,
    /// 3 bits (802.1p CoS).
    pub priority: u8,
    /// 6 bits.
    pub dscp: u8,
}

impl NetworkPolicy {
    /// Voice, tagged, `vlan`, CoS 5, DSCP 46 (EF): what a switch sends a phone.
    pub fn voice(vlan: u16) -> Self {
        NetworkPolicy {
            app: med::APP_VOICE,
            unknown: false,
            tagged: true,
            reserved: false,
            vlan: vlan & 0x0fff,
            priority: 5,
            dscp: 46,
        }
    }

    pub fn to_u32(self) -> u32 {
        (u32::from(self.app) << 24)
            | (u32::from(self.unknown) << 23)
            | (u32::from(self.tagged) << 22)
            | (u32::from(self.reserved) << 21)
            | (u32::from(self.vlan & 0x0fff) << 9)
            | (u32::from(self.priority & 7) << 6)
            | u32::from(self.dscp & 0x3f)
    }

    pub fn from_u32(v: u32) -> Self {
        NetworkPolicy {
            app: (v >> 24) as u8,
            unknown: v & (1 << 23) != 0,
            tagged: v & (1 << 22) != 0,
            reserved: v & (1 << 21) != 0,
            vlan: ((v >> 9) & 0x0fff) as u16,
            priority: ((v >> 6) & 7) as u8,
            dscp: (v & 0x3f) as u8,
        }
    }
}

/// LLDP-MED Extended Power-via-MDI (MED subtype 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedPower {
    /// 2 bits: 0 PSE, 1 PD.
    pub power_type: u8,
    /// 2 bits.
    pub source: u8,
    /// 4 bits: 0 unknown, 1 critical, 2 high, 3 low.
    pub priority: u8,
    /// Power in 0.1 W.
    pub deciwatts: u16,
}

/// Which inventory string (MED subtypes 5-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inventory {
    HardwareRevision = 5,
    FirmwareRevision = 6,
    SoftwareRevision = 7,
    SerialNumber = 8,
    Manufacturer = 9,
    Model = 10,
    AssetId = 11,
}

impl Inventory {
    fn from_subtype(s: u8) -> Option<Self> {
        use Inventory::*;
        Some(match s {
            5 => HardwareRevision,
            6 => FirmwareRevision,
            7 => SoftwareRevision,
            8 => SerialNumber,
            9 => Manufacturer,
            10 => Model,
            11 => AssetId,
            _ => return None,
        })
    }
}

/// IEEE 802.3 Power via MDI (OUI 00-12-0F subtype 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dot3Power {
    pub mdi_support: u8,
    pub pair: u8,
    /// Power class as on the wire: class + 1.
    pub class_plus_one: u8,
    /// 802.3at extension: (type/source/priority byte, requested 0.1 W, allocated 0.1 W).
    pub at: Option<(u8, u16, u16)>,
}

/// One LLDP TLV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Tlv {
    ChassisId {
        subtype: u8,
        id: Vec<u8>,
    },
    PortId {
        subtype: u8,
        id: Vec<u8>,
    },
    Ttl(u16),
    PortDescription(String),
    SystemName(String),
    SystemDescription(String),
    SystemCapabilities {
        available: u16,
        enabled: u16,
    },
    ManagementAddress {
        /// IANA address family (1 IPv4, 2 IPv6, 6 MAC).
        family: u8,
        addr: Vec<u8>,
        if_subtype: u8,
        if_number: u32,
        oid: Vec<u8>,
    },
    MedCapabilities {
        capabilities: u16,
        device_type: u8,
    },
    NetworkPolicy(NetworkPolicy),
    ExtendedPower(ExtendedPower),
    Inventory(Inventory, String),
    Dot3Power(Dot3Power),
    /// Any other organisationally specific TLV (type 127).
    Org {
        oui: [u8; 3],
        subtype: u8,
        info: Vec<u8>,
    },
    /// Unknown type, or a known type of unexpected layout; re-encoded as received.
    Raw {
        ty: u8,
        value: Vec<u8>,
    },
}

fn text(v: &[u8]) -> Option<String> {
    String::from_utf8(v.to_vec()).ok()
}

impl Tlv {
    pub fn ty(&self) -> u8 {
        match self {
            Tlv::ChassisId { .. } => 1,
            Tlv::PortId { .. } => 2,
            Tlv::Ttl(_) => 3,
            Tlv::PortDescription(_) => 4,
            Tlv::SystemName(_) => 5,
            Tlv::SystemDescription(_) => 6,
            Tlv::SystemCapabilities { .. } => 7,
            Tlv::ManagementAddress { .. } => 8,
            Tlv::MedCapabilities { .. }
            | Tlv::NetworkPolicy(_)
            | Tlv::ExtendedPower(_)
            | Tlv::Inventory(..)
            | Tlv::Dot3Power(_)
            | Tlv::Org { .. } => 127,
            Tlv::Raw { ty, .. } => *ty,
        }
    }

    fn org(oui: [u8; 3], subtype: u8, info: &[u8]) -> Vec<u8> {
        let mut v = oui.to_vec();
        v.push(subtype);
        v.extend_from_slice(info);
        v
    }

    fn value(&self) -> Vec<u8> {
        match self {
            Tlv::ChassisId { subtype, id } | Tlv::PortId { subtype, id } => {
                let mut v = vec![*subtype];
                v.extend_from_slice(id);
                v
            }
            Tlv::Ttl(t) => t.to_be_bytes().to_vec(),
            Tlv::PortDescription(s) | Tlv::SystemName(s) | Tlv::SystemDescription(s) => {
                s.as_bytes().to_vec()
            }
            Tlv::SystemCapabilities { available, enabled } => {
                let mut v = available.to_be_bytes().to_vec();
                v.extend_from_slice(&enabled.to_be_bytes());
                v
            }
            Tlv::ManagementAddress {
                family,
                addr,
                if_subtype,
                if_number,
                oid,
            } => {
                let mut v = vec![(addr.len() + 1) as u8, *family];
                v.extend_from_slice(addr);
                v.push(*if_subtype);
                v.extend_from_slice(&if_number.to_be_bytes());
                v.push(oid.len() as u8);
                v.extend_from_slice(oid);
                v
            }
            Tlv::MedCapabilities {
                capabilities,
                device_type,
            } => {
                let mut i = capabilities.to_be_bytes().to_vec();
                i.push(*device_type);
                Self::org(OUI_MED, 1, &i)
            }
            Tlv::NetworkPolicy(p) => Self::org(OUI_MED, 2, &p.to_u32().to_be_bytes()),
            Tlv::ExtendedPower(p) => {
                let b = ((p.power_type & 3) << 6) | ((p.source & 3) << 4) | (p.priority & 0x0f);
                let mut i = vec![b];
                i.extend_from_slice(&p.deciwatts.to_be_bytes());
                Self::org(OUI_MED, 4, &i)
            }
            Tlv::Inventory(kind, s) => Self::org(OUI_MED, *kind as u8, s.as_bytes()),
            Tlv::Dot3Power(p) => {
                let mut i = vec![p.mdi_support, p.pair, p.class_plus_one];
                if let Some((b, req, alloc)) = p.at {
                    i.push(b);
                    i.extend_from_slice(&req.to_be_bytes());
                    i.extend_from_slice(&alloc.to_be_bytes());
                }
                Self::org(OUI_8023, 2, &i)
            }
            Tlv::Org { oui, subtype, info } => Self::org(*oui, *subtype, info),
            Tlv::Raw { value, .. } => value.clone(),
        }
    }

    fn decode(ty: u8, v: &[u8]) -> Tlv {
        Self::decode_typed(ty, v).unwrap_or_else(|| Tlv::Raw {
            ty,
            value: v.to_vec(),
        })
    }

    fn decode_typed(ty: u8, v: &[u8]) -> Option<Tlv> {
        Some(match ty {
            1 | 2 => {
                let (&subtype, id) = v.split_first()?;
                // 802.1AB: id is 1..255 bytes.
                if id.is_empty() {
                    return None;
                }
                if ty == 1 {
                    Tlv::ChassisId {
                        subtype,
                        id: id.to_vec(),
                    }
                } else {
                    Tlv::PortId {
                        subtype,
                        id: id.to_vec(),
                    }
                }
            }
            3 => Tlv::Ttl(u16::from_be_bytes(<[u8; 2]>::try_from(v).ok()?)),
            4 => Tlv::PortDescription(text(v)?),
            5 => Tlv::SystemName(text(v)?),
            6 => Tlv::SystemDescription(text(v)?),
            7 if v.len() == 4 => Tlv::SystemCapabilities {
                available: u16::from_be_bytes([v[0], v[1]]),
                enabled: u16::from_be_bytes([v[2], v[3]]),
            },
            8 => {
                let alen = usize::from(*v.first()?);
                if alen < 1 {
                    return None;
                }
                let family = *v.get(1)?;
                let addr = v.get(2..1 + alen)?.to_vec();
                let rest = v.get(1 + alen..)?;
                let if_subtype = *rest.first()?;
                let if_number = u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?);
                let olen = usize::from(*rest.get(5)?);
                let oid = rest.get(6..6 + olen)?.to_vec();
                if rest.len() != 6 + olen {
                    return None;
                }
                Tlv::ManagementAddress {
                    family,
                    addr,
                    if_subtype,
                    if_number,
                    oid,
                }
            }
            127 => {
                let oui: [u8; 3] = v.get(0..3)?.try_into().ok()?;
                let subtype = *v.get(3)?;
                let info = &v[4..];
                Self::decode_org(oui, subtype, info).unwrap_or(Tlv::Org {
                    oui,
                    subtype,
                    info: info.to_vec(),
                })
            }
            _ => return None,
        })
    }

    fn decode_org(oui: [u8; 3], subtype: u8, i: &[u8]) -> Option<Tlv> {
        Some(match (oui, subtype) {
            (OUI_MED, 1) if i.len() == 3 => Tlv::MedCapabilities {
                capabilities: u16::from_be_bytes([i[0], i[1]]),
                device_type: i[2],
            },
            (OUI_MED, 2) => Tlv::NetworkPolicy(NetworkPolicy::from_u32(u32::from_be_bytes(
                i.try_into().ok()?,
            ))),
            (OUI_MED, 4) if i.len() == 3 => Tlv::ExtendedPower(ExtendedPower {
                power_type: i[0] >> 6,
                source: (i[0] >> 4) & 3,
                priority: i[0] & 0x0f,
                deciwatts: u16::from_be_bytes([i[1], i[2]]),
            }),
            (OUI_MED, 5..=11) => Tlv::Inventory(Inventory::from_subtype(subtype)?, text(i)?),
            (OUI_8023, 2) if i.len() == 3 || i.len() == 8 => Tlv::Dot3Power(Dot3Power {
                mdi_support: i[0],
                pair: i[1],
                class_plus_one: i[2],
                at: (i.len() == 8).then(|| {
                    (
                        i[3],
                        u16::from_be_bytes([i[4], i[5]]),
                        u16::from_be_bytes([i[6], i[7]]),
                    )
                }),
            }),
            _ => return None,
        })
    }
}

/// An LLDPDU: its TLVs in wire order, without the End TLV (always written on encode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lldpdu {
    pub tlvs: Vec<Tlv>,
}

impl Lldpdu {
    /// The mandatory start: chassis id as a MAC, port id as an interface name, TTL.
    pub fn new(chassis_mac: [u8; 6], port_ifname: &str, ttl: u16) -> Self {
        Lldpdu {
            tlvs: vec![
                Tlv::ChassisId {
                    subtype: 4,
                    id: chassis_mac.to_vec(),
                },
                Tlv::PortId {
                    subtype: 5,
                    id: port_ifname.as_bytes().to_vec(),
                },
                Tlv::Ttl(ttl),
            ],
        }
    }

    pub fn with(mut self, t: Tlv) -> Self {
        self.tlvs.push(t);
        self
    }

    /// Encodes the TLVs followed by End of LLDPDU.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        for t in &self.tlvs {
            let ty = t.ty();
            if ty > 127 {
                return Err(EncodeError::BadType(ty));
            }
            let v = t.value();
            if v.len() > 511 {
                return Err(EncodeError::TlvTooLong { ty, len: v.len() });
            }
            let hdr = (u16::from(ty) << 9) | v.len() as u16;
            out.extend_from_slice(&hdr.to_be_bytes());
            out.extend_from_slice(&v);
        }
        out.extend_from_slice(&[0, 0]);
        Ok(out)
    }

    /// Decodes an LLDPDU. Stops at End of LLDPDU (bytes after it, e.g. Ethernet padding, are
    /// ignored); a PDU without End is accepted. Requires Chassis ID, Port ID, TTL first.
    pub fn decode(b: &[u8]) -> Result<Lldpdu, DecodeError> {
        let mut tlvs = Vec::new();
        let mut off = 0;
        while off < b.len() {
            if b.len() - off < 2 {
                return Err(DecodeError::ShortHeader { offset: off });
            }
            let hdr = u16::from_be_bytes([b[off], b[off + 1]]);
            let ty = (hdr >> 9) as u8;
            let len = usize::from(hdr & 0x1ff);
            if ty == 0 {
                break;
            }
            let remaining = b.len() - off - 2;
            if len > remaining {
                return Err(DecodeError::TlvOverrun {
                    offset: off,
                    len,
                    remaining,
                });
            }
            tlvs.push(Tlv::decode(ty, &b[off + 2..off + 2 + len]));
            off += 2 + len;
        }
        match tlvs.as_slice() {
            [Tlv::ChassisId { .. }, Tlv::PortId { .. }, Tlv::Ttl(_), ..] => Ok(Lldpdu { tlvs }),
            _ => Err(DecodeError::MissingMandatory),
        }
    }

    pub fn chassis_id(&self) -> Option<(u8, &[u8])> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::ChassisId { subtype, id } => Some((*subtype, id.as_slice())),
            _ => None,
        })
    }
    pub fn port_id(&self) -> Option<(u8, &[u8])> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::PortId { subtype, id } => Some((*subtype, id.as_slice())),
            _ => None,
        })
    }
    pub fn ttl(&self) -> Option<u16> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::Ttl(v) => Some(*v),
            _ => None,
        })
    }
    pub fn system_name(&self) -> Option<&str> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::SystemName(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn system_description(&self) -> Option<&str> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::SystemDescription(s) => Some(s.as_str()),
            _ => None,
        })
    }
    pub fn port_description(&self) -> Option<&str> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::PortDescription(s) => Some(s.as_str()),
            _ => None,
        })
    }
    /// `(available, enabled)` system capabilities.
    pub fn capabilities(&self) -> Option<(u16, u16)> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::SystemCapabilities { available, enabled } => Some((*available, *enabled)),
            _ => None,
        })
    }
    /// `(capabilities, device_type)` when the sender is an LLDP-MED device.
    pub fn med_capabilities(&self) -> Option<(u16, u8)> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::MedCapabilities {
                capabilities,
                device_type,
            } => Some((*capabilities, *device_type)),
            _ => None,
        })
    }
    /// The Network Policy for application `app` (1 = voice).
    pub fn network_policy(&self, app: u8) -> Option<NetworkPolicy> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::NetworkPolicy(p) if p.app == app => Some(*p),
            _ => None,
        })
    }
    pub fn extended_power(&self) -> Option<ExtendedPower> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::ExtendedPower(p) => Some(*p),
            _ => None,
        })
    }
    pub fn inventory(&self, kind: Inventory) -> Option<&str> {
        self.tlvs.iter().find_map(|t| match t {
            Tlv::Inventory(k, s) if *k == kind => Some(s.as_str()),
            _ => None,
        })
    }
    /// IPv4 management addresses.
    pub fn management_ipv4(&self) -> Vec<std::net::Ipv4Addr> {
        self.tlvs
            .iter()
            .filter_map(|t| match t {
                Tlv::ManagementAddress {
                    family: 1, addr, ..
                } => <[u8; 4]>::try_from(addr.as_slice()).ok().map(Into::into),
                _ => None,
            })
            .collect()
    }
}

/// The fuzz body: decode arbitrary bytes; decodable input must re-encode to the same TLVs.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(p) = Lldpdu::decode(data) {
        if let Ok(bytes) = p.encode() {
            let again = Lldpdu::decode(&bytes);
            assert_eq!(again.as_ref().ok(), Some(&p), "re-encoding changed the PDU");
            assert!(data.starts_with(&bytes[..bytes.len() - 2]));
        }
    }
}

#[cfg(test)]
mod tests;
