//! The phone emulator: one Cisco IP phone, or a storm of thousands, booting over the wire.
//!
//! * [`model`]: the per-model catalogue (PoE class, CDP platform, DHCP option 60/55, file
//!   sequence, transports, SCCP device type and version).
//! * [`phone`]: one phone walking power → discovery → DHCP → files → registration, with
//!   its [`report::PhoneReport`] timeline.
//! * [`storm`]: many phones with an arrival rate and a concurrency limit, a progress line and
//!   a [`stats::Summary`].
//! * Protocol pieces: [`dhcp`] (sans-IO client), [`tftp`] (sans-IO read), [`http`] (GET),
//!   [`cnf`] (config file reader), [`discover`] (CDP/LLDP-MED phone side), [`register`]
//!   (SCCP/SIP drivers over the `sccp` and `sip` crates).
//! * I/O: [`rawport`] (one AF_PACKET socket for every phone's MAC), [`netlink`] (leased
//!   addresses on the IP interface), [`eth`] (Ethernet/802.1Q/IPv4/UDP framing).
//! * [`cli`]: clap `Args` and the `run_boot` / `run_storm` entry points.

pub mod cli;
pub mod cnf;
pub mod dhcp;
pub mod discover;
pub mod eth;
pub mod http;
pub mod model;
pub mod netlink;
pub mod phone;
pub mod rawport;
pub mod register;
pub mod report;
pub mod stats;
pub mod storm;
pub mod tftp;
