//! Sans-IO DHCPv4 server core for phoneboot.
//!
//! [`Engine::handle`] takes one datagram, where it came in ([`Ingress`]) and `now`, and
//! returns an [`Outcome`]: the reply and its [`Destination`] (RFC 2131 section 4.1), the lease
//! changes that must be durable before the reply is sent, and the journal events keyed by MAC.
//! Leases live in memory for fast allocation; a [`LeaseStore`] persists them in batches (group
//! commit) and gives them back at start-up ([`Engine::restore`]).
//!
//! Phones: option 150 is an ordered list of TFTP servers (written raw, see `reply.rs`),
//! classes match option 60 by prefix with Cisco's trailing NUL stripped, and fixed addresses
//! come from the configuration or from a [`Reservations`] implementation (the device database).

pub mod client;
pub mod config;
pub mod engine;
pub mod lease;
pub mod ratelimit;
pub mod reply;
pub mod wire;

pub use config::{
    ClassConfig, ConfigError, DhcpConfig, PoolConfig, RateLimitConfig, Reservation, Subnet,
};
pub use engine::{
    client_key, Destination, Engine, Ingress, Outcome, Reply, Reservations, StaticReservations,
    Stats,
};
pub use lease::{LeaseChange, LeaseRecord, LeaseState, LeaseStore, MemoryStore, StoreError};
pub use wire::{DecodeError, MsgType, RawOptions, Request};
