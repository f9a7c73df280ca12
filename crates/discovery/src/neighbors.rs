//! The neighbour table: every CDP/LLDP neighbour heard, expired after its holdtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Which protocol a neighbour was heard on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Cdp,
    Lldp,
}

/// What we know of one neighbour (one device on one port, per protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourInfo {
    pub protocol: Proto,
    /// Our interface it was heard on.
    pub local_port: String,
    /// CDP Device ID, or LLDP System Name / chassis id.
    pub device_id: String,
    /// Source MAC of its frames.
    pub mac: mac::Mac,
    pub platform: Option<String>,
    pub software_version: Option<String>,
    /// Its own port (CDP Port ID, LLDP Port ID).
    pub port_id: Option<String>,
    pub addresses: Vec<IpAddr>,
    /// CDP capability bits, or LLDP enabled capabilities.
    pub capabilities: u32,
    /// CDP letters (`H P M`) or LLDP letters (`T` telephone, `B` bridge...).
    pub capability_letters: String,
    /// CDP `Host Phone ...`, for the detail view.
    pub capability_words: String,
    /// Holdtime it announced, seconds.
    pub holdtime_secs: u16,
    /// CDP version (1/2), 0 for LLDP.
    pub version: u8,
    pub duplex: Option<String>,
    pub native_vlan: Option<u16>,
    /// CDP Power Consumption / LLDP-MED PD power, mW.
    pub power_drawn_mw: Option<u32>,
    /// CDP Power Requested: (request id, management id, levels mW).
    pub power_request: Option<(u16, u16, Vec<u32>)>,
    /// What we granted on its port, mW.
    pub power_granted_mw: Option<u32>,
    /// It sent a VoIP VLAN Query (CDP) or is an LLDP-MED endpoint that wants policy.
    pub voice_vlan_asked: bool,
    /// The voice VLAN we answered with (VVID).
    pub voice_vlan_sent: Option<u16>,
    /// LLDP-MED device type (3 = phone), if an LLDP-MED endpoint.
    pub med_device_type: Option<u8>,
    /// LLDP-MED inventory model name.
    pub model: Option<String>,
}

/// A row of the table.
#[derive(Debug, Clone)]
pub struct Entry {
    pub info: NeighbourInfo,
    pub port_index: usize,
    pub expires: Instant,
    pub first_seen: Instant,
}

/// A neighbour as the snapshot shows it: with the holdtime left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourView {
    #[serde(flatten)]
    pub info: NeighbourInfo,
    /// Seconds until it expires.
    pub holdtime_left: u32,
    /// Seconds since first heard.
    pub uptime_secs: u64,
}

/// Neighbours on one port: how many, and how many are LLDP-MED endpoints.
#[derive(Debug, Clone, Copy, Default)]
struct PortCount {
    all: usize,
    med: usize,
}

/// All neighbours, in arrival order.
///
/// A lab port (or a hub) can carry tens of thousands of neighbours, and the switch agent
/// consults the table on every frame, so nothing here scans it: entries are found through an
/// index by (port, protocol, device id), expiries come from an ordered set, and per-port
/// counts are kept up to date. Arrival order (for the `show` views) is a sequence number.
#[derive(Debug, Clone)]
pub struct NeighbourTable {
    /// Sequence number (arrival order) -> entry.
    entries: BTreeMap<u64, Entry>,
    /// (port, protocol) -> device id -> sequence number.
    index: HashMap<(usize, Proto), HashMap<String, u64>>,
    /// (expiry, sequence number), earliest first.
    expiry: BTreeSet<(Instant, u64)>,
    per_port: HashMap<usize, PortCount>,
    next_seq: u64,
    per_port_limit: usize,
}

impl Default for NeighbourTable {
    fn default() -> Self {
        NeighbourTable::with_limit(MAX_PER_PORT)
    }
}

/// What an update did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    New,
    Refreshed,
    /// The port already holds [`MAX_PER_PORT`] neighbours: a flood of forged device ids
    /// must not grow memory without bound.
    Full,
}

/// Default for the most neighbours kept per port (a phone port has one or two; a hub a few).
pub const MAX_PER_PORT: usize = 64;

fn is_med(info: &NeighbourInfo) -> bool {
    info.med_device_type.is_some()
}

impl NeighbourTable {
    /// A table that keeps at most `per_port_limit` neighbours on each port.
    pub fn with_limit(per_port_limit: usize) -> Self {
        NeighbourTable {
            entries: BTreeMap::new(),
            index: HashMap::new(),
            expiry: BTreeSet::new(),
            per_port: HashMap::new(),
            next_seq: 0,
            per_port_limit: per_port_limit.max(1),
        }
    }

    fn seq_of(&self, port_index: usize, proto: Proto, id: &str) -> Option<u64> {
        self.index.get(&(port_index, proto))?.get(id).copied()
    }

    /// Inserts or refreshes the entry (same port, protocol and device id). A holdtime of 0
    /// removes it (the sender is going away) at the next [`expire`](Self::expire).
    pub fn update(&mut self, port_index: usize, info: NeighbourInfo, now: Instant) -> Update {
        let expires = now + Duration::from_secs(u64::from(info.holdtime_secs));
        if let Some(seq) = self.seq_of(port_index, info.protocol, &info.device_id) {
            if let Some(e) = self.entries.get_mut(&seq) {
                let count = self.per_port.entry(port_index).or_default();
                count.med = count.med + usize::from(is_med(&info)) - usize::from(is_med(&e.info));
                // Keep what we told it / granted it across refreshes.
                let sent = e.info.voice_vlan_sent;
                let granted = e.info.power_granted_mw;
                let asked = e.info.voice_vlan_asked;
                e.info = info;
                e.info.voice_vlan_sent = e.info.voice_vlan_sent.or(sent);
                e.info.power_granted_mw = e.info.power_granted_mw.or(granted);
                e.info.voice_vlan_asked |= asked;
                self.expiry.remove(&(e.expires, seq));
                e.expires = expires;
                self.expiry.insert((expires, seq));
                return Update::Refreshed;
            }
        }
        if self.count_on_port(port_index) >= self.per_port_limit {
            return Update::Full;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let count = self.per_port.entry(port_index).or_default();
        count.all += 1;
        count.med += usize::from(is_med(&info));
        self.index
            .entry((port_index, info.protocol))
            .or_default()
            .insert(info.device_id.clone(), seq);
        self.expiry.insert((expires, seq));
        self.entries.insert(
            seq,
            Entry {
                info,
                port_index,
                expires,
                first_seen: now,
            },
        );
        Update::New
    }

    /// The neighbour's details, to note what was granted or sent to it. Its identity
    /// (protocol, device id) and LLDP-MED device type are the table's keys and counts: change
    /// them only through [`update`](Self::update).
    pub fn get_mut(
        &mut self,
        port_index: usize,
        proto: Proto,
        id: &str,
    ) -> Option<&mut NeighbourInfo> {
        let seq = self.seq_of(port_index, proto, id)?;
        self.entries.get_mut(&seq).map(|e| &mut e.info)
    }

    /// Removes expired entries (and those with holdtime 0) and returns them, oldest expiry
    /// first. Costs O(log n) per removed entry, nothing when none is due.
    pub fn expire(&mut self, now: Instant) -> Vec<Entry> {
        let mut gone = Vec::new();
        while let Some(&(at, seq)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            let Some(e) = self.entries.remove(&seq) else {
                continue;
            };
            if let Some(ids) = self.index.get_mut(&(e.port_index, e.info.protocol)) {
                ids.remove(&e.info.device_id);
                if ids.is_empty() {
                    self.index.remove(&(e.port_index, e.info.protocol));
                }
            }
            if let Some(c) = self.per_port.get_mut(&e.port_index) {
                c.all = c.all.saturating_sub(1);
                c.med = c.med.saturating_sub(usize::from(is_med(&e.info)));
                if c.all == 0 {
                    self.per_port.remove(&e.port_index);
                }
            }
            gone.push(e);
        }
        gone
    }

    /// Makes every entry of `proto` due at `now` (`clear cdp table`): the next
    /// [`expire`](Self::expire) removes them, with the usual per-entry bookkeeping.
    pub fn expire_protocol(&mut self, proto: Proto, now: Instant) {
        let due: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.info.protocol == proto)
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            if let Some(e) = self.entries.get_mut(&seq) {
                self.expiry.remove(&(e.expires, seq));
                e.expires = now;
                self.expiry.insert((now, seq));
            }
        }
    }

    /// Makes every entry on one port due at `now` (its device lost power).
    pub fn expire_port(&mut self, port_index: usize, now: Instant) {
        let due: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.port_index == port_index)
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            if let Some(e) = self.entries.get_mut(&seq) {
                self.expiry.remove(&(e.expires, seq));
                e.expires = now;
                self.expiry.insert((now, seq));
            }
        }
    }

    /// Earliest expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// Neighbours on one port, in arrival order (a scan: for views, not per frame).
    pub fn on_port(&self, port_index: usize) -> impl Iterator<Item = &Entry> {
        self.entries
            .values()
            .filter(move |e| e.port_index == port_index)
    }

    /// How many neighbours one port has.
    pub fn count_on_port(&self, port_index: usize) -> usize {
        self.per_port.get(&port_index).map_or(0, |c| c.all)
    }

    /// How many of one port's neighbours are LLDP-MED endpoints.
    pub fn med_on_port(&self, port_index: usize) -> usize {
        self.per_port.get(&port_index).map_or(0, |c| c.med)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn views(&self, now: Instant) -> Vec<NeighbourView> {
        self.entries
            .values()
            .map(|e| NeighbourView {
                info: e.info.clone(),
                holdtime_left: e.expires.saturating_duration_since(now).as_secs() as u32,
                uptime_secs: now.saturating_duration_since(e.first_seen).as_secs(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(proto: Proto, id: &str, hold: u16, med: bool) -> NeighbourInfo {
        NeighbourInfo {
            protocol: proto,
            local_port: "p0".into(),
            device_id: id.into(),
            mac: mac::Mac([0, 0x1b, 0x54, 0, 0, 1]),
            platform: None,
            software_version: None,
            port_id: None,
            addresses: vec![],
            capabilities: 0,
            capability_letters: String::new(),
            capability_words: String::new(),
            holdtime_secs: hold,
            version: 2,
            duplex: None,
            native_vlan: None,
            power_drawn_mw: None,
            power_request: None,
            power_granted_mw: None,
            voice_vlan_asked: false,
            voice_vlan_sent: None,
            med_device_type: med.then_some(3),
            model: None,
        }
    }

    #[test]
    fn refresh_keeps_order_and_sent_values_and_moves_the_expiry() {
        let t0 = Instant::now();
        let mut t = NeighbourTable::with_limit(10);
        assert_eq!(
            t.update(0, info(Proto::Cdp, "a", 10, false), t0),
            Update::New
        );
        assert_eq!(
            t.update(0, info(Proto::Lldp, "b", 5, true), t0),
            Update::New
        );
        assert_eq!(
            t.update(1, info(Proto::Cdp, "a", 20, false), t0),
            Update::New
        );
        t.get_mut(0, Proto::Cdp, "a").unwrap().voice_vlan_sent = Some(100);
        let later = t0 + Duration::from_secs(8);
        assert_eq!(
            t.update(0, info(Proto::Cdp, "a", 10, false), later),
            Update::Refreshed
        );
        assert_eq!(
            t.get_mut(0, Proto::Cdp, "a").unwrap().voice_vlan_sent,
            Some(100)
        );
        assert_eq!(t.count_on_port(0), 2);
        assert_eq!(t.med_on_port(0), 1);
        let ids: Vec<_> = t
            .iter()
            .map(|e| (e.port_index, e.info.device_id.clone()))
            .collect();
        assert_eq!(ids, [(0, "a".into()), (0, "b".into()), (1, "a".into())]);
        assert_eq!(t.next_expiry(), Some(t0 + Duration::from_secs(5)));
        let gone = t.expire(t0 + Duration::from_secs(10));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].info.device_id, "b");
        assert_eq!(t.med_on_port(0), 0);
        assert_eq!(t.next_expiry(), Some(t0 + Duration::from_secs(18)));
        let gone = t.expire(t0 + Duration::from_secs(20));
        assert_eq!(gone.len(), 2);
        assert!(t.is_empty());
        assert_eq!(t.count_on_port(0), 0);
        assert_eq!(t.next_expiry(), None);
        assert!(t.get_mut(0, Proto::Cdp, "a").is_none());
    }

    #[test]
    fn holdtime_zero_goes_at_once_and_the_limit_holds() {
        let t0 = Instant::now();
        let mut t = NeighbourTable::with_limit(2);
        t.update(0, info(Proto::Cdp, "a", 100, false), t0);
        t.update(0, info(Proto::Cdp, "b", 100, false), t0);
        assert_eq!(
            t.update(0, info(Proto::Cdp, "c", 100, false), t0),
            Update::Full
        );
        assert_eq!(
            t.update(1, info(Proto::Cdp, "c", 100, false), t0),
            Update::New
        );
        t.update(0, info(Proto::Cdp, "a", 0, false), t0);
        let gone = t.expire(t0);
        assert_eq!(gone.len(), 1);
        assert_eq!(
            t.update(0, info(Proto::Cdp, "c", 100, false), t0),
            Update::New
        );
    }

    #[test]
    fn ten_thousand_neighbours_on_one_port_stay_cheap() {
        let t0 = Instant::now();
        let mut t = NeighbourTable::with_limit(100_000);
        for i in 0..10_000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            t.update(0, info(Proto::Cdp, &format!("SEP{i:012}"), 180, false), at);
            assert!(t.expire(at).is_empty());
        }
        assert_eq!(t.count_on_port(0), 10_000);
        let gone = t.expire(t0 + Duration::from_secs(200));
        assert_eq!(gone.len(), 10_000);
        assert!(t.is_empty());
    }
}
