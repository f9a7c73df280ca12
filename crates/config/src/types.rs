//! Small validated types: once a value has one of these types it is known to be good.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Serialize;

/// An 802.1Q VLAN id, 1..=4094 (0 means "priority tagged" and 4095 is reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(id: u16) -> Option<Self> {
        (1..=4094).contains(&id).then_some(VlanId(id))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An IPv4 network in CIDR notation, e.g. `198.18.100.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// The network mask, e.g. 255.255.255.0 for /24.
    pub fn mask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        Ipv4Addr::from(bits)
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.mask()))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask()) == u32::from(self.network())
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("expected ADDRESS/PREFIX, found {s:?}"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix {p:?} is not a number from 0 to 32"))?;
        Ok(Ipv4Net { addr, prefix })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A list that holds at least one element, in the order given (e.g. option 150's TFTP servers,
/// a CallManager group's nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NonEmpty<T>(Vec<T>);

impl<T> NonEmpty<T> {
    pub fn new(items: Vec<T>) -> Option<Self> {
        (!items.is_empty()).then_some(NonEmpty(items))
    }

    pub fn single(item: T) -> Self {
        NonEmpty(vec![item])
    }

    pub fn first(&self) -> &T {
        // Invariant: constructed only from a non-empty Vec.
        &self.0[0]
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; present so clippy's `len_without_is_empty` is satisfied honestly.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<'a, T> IntoIterator for &'a NonEmpty<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_range() {
        assert!(VlanId::new(0).is_none());
        assert!(VlanId::new(4095).is_none());
        assert_eq!(VlanId::new(100).map(VlanId::get), Some(100));
    }

    #[test]
    fn cidr() {
        let n: Ipv4Net = "198.18.100.7/24".parse().unwrap();
        assert_eq!(n.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.network(), Ipv4Addr::new(198, 18, 100, 0));
        assert!(n.contains(Ipv4Addr::new(198, 18, 100, 200)));
        assert!(!n.contains(Ipv4Addr::new(198, 18, 101, 1)));
        assert!("198.18.100.0/33".parse::<Ipv4Net>().is_err());
        assert!("198.18.100.0".parse::<Ipv4Net>().is_err());
    }
}
