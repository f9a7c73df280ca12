//! Run-time debug categories, as IOS's `debug cdp packets|events|adjacency|ip`.
//!
//! The flags are shared atomics: the CLI/admin API flips them while the agent runs. Messages
//! are logged with `tracing` at INFO under targets `phoneboot::cdp::packets`,
//! `phoneboot::cdp::events`, `phoneboot::cdp::adjacency` only while their flag is on.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// One debug category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugCategory {
    /// Every frame sent and received, decoded.
    Packets,
    /// Triggered replies, power grants, bad frames, configuration changes.
    Events,
    /// Neighbours added, refreshed with changes, expired.
    Adjacency,
    /// Addresses learned from neighbours (IOS `debug cdp ip`).
    Ip,
}

impl FromStr for DebugCategory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "packets" => Ok(DebugCategory::Packets),
            "events" => Ok(DebugCategory::Events),
            "adjacency" => Ok(DebugCategory::Adjacency),
            "ip" => Ok(DebugCategory::Ip),
            _ => Err(format!(
                "unknown debug category {s:?} (packets, events, adjacency, ip)"
            )),
        }
    }
}

/// The three switches; all off by default.
#[derive(Debug, Default)]
pub struct DebugFlags {
    packets: AtomicBool,
    events: AtomicBool,
    adjacency: AtomicBool,
    ip: AtomicBool,
}

impl DebugFlags {
    fn flag(&self, c: DebugCategory) -> &AtomicBool {
        match c {
            DebugCategory::Packets => &self.packets,
            DebugCategory::Events => &self.events,
            DebugCategory::Adjacency => &self.adjacency,
            DebugCategory::Ip => &self.ip,
        }
    }

    /// `debug cdp <c>` / `no debug cdp <c>`.
    pub fn set(&self, c: DebugCategory, on: bool) {
        self.flag(c).store(on, Ordering::Relaxed);
    }

    pub fn is_on(&self, c: DebugCategory) -> bool {
        self.flag(c).load(Ordering::Relaxed)
    }

    /// Which categories are on.
    pub fn enabled(&self) -> Vec<DebugCategory> {
        [
            DebugCategory::Packets,
            DebugCategory::Events,
            DebugCategory::Adjacency,
            DebugCategory::Ip,
        ]
        .into_iter()
        .filter(|c| self.is_on(*c))
        .collect()
    }
}

macro_rules! dbg_packets {
    ($flags:expr, $($arg:tt)*) => {
        if $flags.is_on($crate::debug::DebugCategory::Packets) {
            tracing::info!(target: "phoneboot::cdp::packets", $($arg)*);
        }
    };
}
macro_rules! dbg_events {
    ($flags:expr, $($arg:tt)*) => {
        if $flags.is_on($crate::debug::DebugCategory::Events) {
            tracing::info!(target: "phoneboot::cdp::events", $($arg)*);
        }
    };
}
macro_rules! dbg_adjacency {
    ($flags:expr, $($arg:tt)*) => {
        if $flags.is_on($crate::debug::DebugCategory::Adjacency) {
            tracing::info!(target: "phoneboot::cdp::adjacency", $($arg)*);
        }
    };
}
macro_rules! dbg_ip {
    ($flags:expr, $($arg:tt)*) => {
        if $flags.is_on($crate::debug::DebugCategory::Ip) {
            tracing::info!(target: "phoneboot::cdp::ip", $($arg)*);
        }
    };
}
pub(crate) use {dbg_adjacency, dbg_events, dbg_ip, dbg_packets};
