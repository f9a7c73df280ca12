//! An Ethernet MAC address and the Cisco device name built from it.
//!
//! Phones, switches and administrators write the same address in many ways
//! (`00:1B:54:AA:BB:CC`, `001b.54aa.bbcc`, `001B54AABBCC`, `SEP001B54AABBCC`); every part of
//! phoneboot keys its data by MAC, so parsing lives in one place and is strict about length
//! and digits, and lenient about separators and case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("expected 12 hexadecimal digits (e.g. 001B54AABBCC or 00:1b:54:aa:bb:cc), found {found} in {input:?}")]
    WrongLength { input: String, found: usize },
    #[error("{ch:?} is not a hexadecimal digit in {input:?}")]
    BadDigit { input: String, ch: char },
}

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// The CDP/VTP/DTP multicast address.
    pub const CDP_MULTICAST: Mac = Mac([0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc]);
    /// The LLDP nearest-bridge multicast address.
    pub const LLDP_MULTICAST: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);

    pub const fn new(octets: [u8; 6]) -> Self {
        Mac(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Twelve upper-case hex digits, the form inside `SEP<MAC>` names.
    pub fn to_bare_upper(&self) -> String {
        let mut s = String::with_capacity(12);
        for b in self.0 {
            s.push_str(&format!("{b:02X}"));
        }
        s
    }

    /// `SEP` followed by the address in upper case, the Cisco device name.
    pub fn device_name(&self) -> String {
        format!("SEP{}", self.to_bare_upper())
    }

    /// Cisco IOS dotted notation, `001b.54aa.bbcc`.
    pub fn to_cisco_dotted(&self) -> String {
        let o = self.0;
        format!(
            "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }

    /// Parses a device name `SEP<12 hex>` (any case), or a bare MAC in any notation.
    pub fn from_device_name(name: &str) -> Result<Mac, MacError> {
        let trimmed = name.trim();
        // `get` rather than slicing: a non-ASCII name must be an error, not a panic.
        let rest = match (trimmed.get(..3), trimmed.get(3..)) {
            (Some(p), Some(rest)) if p.eq_ignore_ascii_case("SEP") => rest,
            _ => trimmed,
        };
        rest.parse()
    }

    /// The n-th address after this one (wrapping within 48 bits), for ranges of emulated phones.
    pub fn offset(&self, n: u64) -> Mac {
        let mut v = 0u64;
        for b in self.0 {
            v = (v << 8) | u64::from(b);
        }
        let v = v.wrapping_add(n) & 0xffff_ffff_ffff;
        let mut o = [0u8; 6];
        for (i, byte) in o.iter_mut().enumerate() {
            *byte = (v >> (8 * (5 - i))) as u8;
        }
        Mac(o)
    }
}

impl FromStr for Mac {
    type Err = MacError;

    /// Accepts 12 hex digits with any of `:`, `-`, `.` or no separators, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let mut digits = Vec::with_capacity(12);
        for ch in input.chars() {
            match ch {
                ':' | '-' | '.' => continue,
                c if c.is_ascii_hexdigit() => digits.push(c.to_digit(16).unwrap_or(0) as u8),
                c => {
                    return Err(MacError::BadDigit {
                        input: input.to_string(),
                        ch: c,
                    })
                }
            }
        }
        if digits.len() != 12 {
            return Err(MacError::WrongLength {
                input: input.to_string(),
                found: digits.len(),
            });
        }
        let mut o = [0u8; 6];
        for (i, byte) in o.iter_mut().enumerate() {
            *byte = (digits[2 * i] << 4) | digits[2 * i + 1];
        }
        Ok(Mac(o))
    }
}

impl fmt::Display for Mac {
    /// Colon-separated lower case, the Linux form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl From<[u8; 6]> for Mac {
    fn from(o: [u8; 6]) -> Self {
        Mac(o)
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Mac::from_device_name(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_common_notation() {
        let want = Mac([0x00, 0x1b, 0x54, 0xaa, 0xbb, 0xcc]);
        for s in [
            "00:1b:54:aa:bb:cc",
            "00-1B-54-AA-BB-CC",
            "001b.54aa.bbcc",
            "001B54AABBCC",
            " 001b54aabbcc ",
        ] {
            assert_eq!(s.parse::<Mac>().unwrap(), want, "{s}");
        }
        assert_eq!(Mac::from_device_name("sep001b54aabbcc").unwrap(), want);
        assert_eq!(want.device_name(), "SEP001B54AABBCC");
        assert_eq!(want.to_cisco_dotted(), "001b.54aa.bbcc");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(matches!(
            "001b54aabb".parse::<Mac>(),
            Err(MacError::WrongLength { found: 10, .. })
        ));
        assert!(matches!(
            "001b54aabbzz".parse::<Mac>(),
            Err(MacError::BadDigit { ch: 'z', .. })
        ));
        assert!("SEP".parse::<Mac>().is_err());
        assert!(Mac::from_device_name("é001b54aabbcc").is_err());
        assert!(Mac::from_device_name("SEé").is_err());
    }

    #[test]
    fn offset_walks_and_wraps() {
        let m = Mac([0, 0, 0, 0, 0, 0xff]);
        assert_eq!(m.offset(1), Mac([0, 0, 0, 0, 1, 0]));
        assert_eq!(Mac::BROADCAST.offset(1), Mac([0; 6]));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panic(s in ".{0,20}") {
            let _ = Mac::from_device_name(&s);
            let _ = s.parse::<Mac>();
        }

        #[test]
        fn display_and_names_round_trip(o in any::<[u8; 6]>()) {
            let m = Mac(o);
            prop_assert_eq!(m.to_string().parse::<Mac>().unwrap(), m);
            prop_assert_eq!(Mac::from_device_name(&m.device_name()).unwrap(), m);
            prop_assert_eq!(m.to_cisco_dotted().parse::<Mac>().unwrap(), m);
        }
    }
}
