//! Discovery for phoneboot: CDP and LLDP-MED in both roles.
//!
//! * [`SwitchAgent`] — the switch side, sans-IO (quinn-proto style): feed it received frames
//!   and `now`, take frames to send ([`SwitchAgent::poll_transmit`]), events
//!   ([`SwitchAgent::poll_event`]) and the next deadline ([`SwitchAgent::poll_timeout`]). It
//!   owns the PoE budget ([`poe`]) and the neighbour table ([`neighbors`]).
//! * [`PhoneAgent`] — the phone side, sans-IO, used by the emulator.
//! * [`runner`] — tokio tasks that drive the agents on `l2` AF_PACKET sockets, emit journal
//!   events and answer snapshot/control requests ([`SwitchHandle`]).
//! * [`show`] — IOS-style text for `show cdp neighbors [detail]` and `show power inline`.
//! * [`config`] — the validated switch configuration and the phone configuration.

pub mod config;
mod debug;
pub mod neighbors;
pub mod phone;
pub mod poe;
pub mod runner;
pub mod settings;
pub mod show;
pub mod switch;

pub use config::{ConfigError, InterfaceConfig, PhoneConfig, PowerAdmin, SwitchConfig, VoiceVlan};
pub use debug::{DebugCategory, DebugFlags};
pub use neighbors::{NeighbourInfo, NeighbourView, Proto};
pub use phone::{PhoneAgent, PhoneEvent, VlanState};
pub use runner::{run_phone, spawn_switch, spawn_switch_on, PhoneOutcome, RunError, SwitchHandle};
pub use settings::Setting;
pub use switch::{Counters, Snapshot, SwitchAgent, SwitchEvent, Transmit};

#[cfg(test)]
mod tests;
