//! The `phoneboot` command: the server, the lab, and the administration tools.

mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Boots and registers Cisco IP phones: CDP/LLDP-MED voice VLAN and PoE, DHCP with option 150,
/// TFTP/HTTP configuration files built from a device database, SCCP and SIP registration.
#[derive(Parser)]
#[command(name = "phoneboot", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service of the boot chain for one node.
    Serve(cmd::serve::Args),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Build, inspect and remove a lab network of namespaces and a VLAN-aware switch.
    #[command(subcommand)]
    Lab(cmd::lab::Command),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`phoneboot lab status | head`), as command-line tools do.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Config(c) => cmd::config::run(c),
        Command::Lab(c) => cmd::lab::run(c),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "phoneboot",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("phoneboot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
