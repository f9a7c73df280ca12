//! The neighbour table: every CDP/LLDP neighbour heard, expired after its holdtime.

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

/// All neighbours, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct NeighbourTable {
    entries: Vec<Entry>,
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

/// Most neighbours kept per port (a phone port has one or two; a hub a few).
pub const MAX_PER_PORT: usize = 64;

impl NeighbourTable {
    /// Inserts or refreshes the entry (same port, protocol and device id). A holdtime of 0
    /// removes it (the sender is going away).
    pub fn update(&mut self, port_index: usize, info: NeighbourInfo, now: Instant) -> Update {
        let pos = self.entries.iter().position(|e| {
            e.port_index == port_index
                && e.info.protocol == info.protocol
                && e.info.device_id == info.device_id
        });
        let expires = now + Duration::from_secs(u64::from(info.holdtime_secs));
        match pos {
            Some(i) => {
                let e = &mut self.entries[i];
                // Keep what we told it / granted it across refreshes.
                let sent = e.info.voice_vlan_sent;
                let granted = e.info.power_granted_mw;
                let asked = e.info.voice_vlan_asked;
                e.info = info;
                e.info.voice_vlan_sent = e.info.voice_vlan_sent.or(sent);
                e.info.power_granted_mw = e.info.power_granted_mw.or(granted);
                e.info.voice_vlan_asked |= asked;
                e.expires = expires;
                Update::Refreshed
            }
            None if self.on_port(port_index).count() >= MAX_PER_PORT => Update::Full,
            None => {
                self.entries.push(Entry {
                    info,
                    port_index,
                    expires,
                    first_seen: now,
                });
                Update::New
            }
        }
    }

    pub fn get_mut(&mut self, port_index: usize, proto: Proto, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| {
            e.port_index == port_index && e.info.protocol == proto && e.info.device_id == id
        })
    }

    /// Removes expired entries (and those with holdtime 0) and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Entry> {
        let (gone, kept): (Vec<_>, Vec<_>) = self
            .entries
            .drain(..)
            .partition(|e| e.expires <= now || e.info.holdtime_secs == 0);
        self.entries = kept;
        gone
    }

    /// Earliest expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.iter().map(|e| e.expires).min()
    }

    pub fn on_port(&self, port_index: usize) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.port_index == port_index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn views(&self, now: Instant) -> Vec<NeighbourView> {
        self.entries
            .iter()
            .map(|e| NeighbourView {
                info: e.info.clone(),
                holdtime_left: e.expires.saturating_duration_since(now).as_secs() as u32,
                uptime_secs: now.saturating_duration_since(e.first_seen).as_secs(),
            })
            .collect()
    }
}
