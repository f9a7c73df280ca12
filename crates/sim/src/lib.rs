//! The phone emulator.
pub mod dhcp;
pub mod eth;
pub mod model;
pub mod report;
pub mod stats;
