//! One module per subcommand.

pub mod admin;
pub mod backup;
pub mod config;
pub mod firmware;
pub mod lab;
pub mod login;
pub mod security;
pub mod serve;
pub mod show;
pub mod target;
pub mod trace;
