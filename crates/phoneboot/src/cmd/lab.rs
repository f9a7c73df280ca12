//! `phoneboot lab up|serve|exec|status|down`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use lab::{Host, Lab};

#[derive(clap::Args)]
pub struct Common {
    /// Lab name (several labs can exist at once).
    #[arg(long, short, env = "PHONEBOOT_LAB", default_value = "demo")]
    pub name: String,
    /// Directory for lab state (namespaces' switch database, configuration, logs).
    #[arg(long, env = "PHONEBOOT_LAB_DIR", default_value_os_t = Lab::default_root())]
    pub state_dir: PathBuf,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build the lab (idempotent) and write a ready server configuration for it.
    Up {
        #[command(flatten)]
        common: Common,
        /// The voice VLAN carried tagged on the phone port.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(2..=4094))]
        voice_vlan: u16,
    },
    /// Start `phoneboot serve` in the lab's server namespace; returns when it is ready.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Seconds to wait for the server to answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Run a command in one of the lab's hosts.
    Exec {
        #[command(flatten)]
        common: Common,
        /// switch, server or phones
        host: Host,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show namespaces, interfaces by role, addresses, the admin URL and what runs.
    Status {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Remove everything the lab made, stopping what `lab serve` started.
    Down {
        #[command(flatten)]
        common: Common,
    },
}

fn open(c: &Common) -> anyhow::Result<Lab> {
    Ok(Lab::new(&c.name, &c.state_dir)?)
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Up { common, voice_vlan } => {
            let lab = open(&common)?;
            match lab.up(voice_vlan)? {
                Some(password) => {
                    println!("lab {} is up", lab.name());
                    println!(
                        "admin login: admin / {password}   (shown once; also in the config file)"
                    );
                }
                None => println!("lab {} was already up", lab.name()),
            }
            print!("{}", lab.status()?.render());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { common, timeout } => {
            let lab = open(&common)?;
            let exe = std::env::current_exe().context("finding the phoneboot binary")?;
            let pid = lab.serve(&exe, Duration::from_secs(timeout))?;
            println!(
                "phoneboot serve runs in {} (pid {pid}); admin {}; log {}",
                lab.netns(Host::Server),
                lab.admin_url().unwrap_or_default(),
                lab.log_path().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec {
            common,
            host,
            command,
        } => {
            let lab = open(&common)?;
            let status = lab.exec(host, &command)?;
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
        Command::Status { common, json } => {
            let lab = open(&common)?;
            let status = lab.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Down { common } => {
            let lab = open(&common)?;
            lab.down()?;
            println!("lab {} is down", lab.name());
            Ok(ExitCode::SUCCESS)
        }
    }
}
