//! One module per subcommand.

pub mod config;
pub mod lab;
pub mod serve;
