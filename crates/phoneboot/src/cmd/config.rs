//! `phoneboot config check FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// Report every error in a configuration file, each with its field path.
    Check {
        #[arg(env = "PHONEBOOT_CONFIG")]
        file: PathBuf,
    },
    /// Print the annotated example configuration.
    Example,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Example => {
            print!("{}", config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => match config::Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok (node {} at {}, {} DHCP pool(s), {} CallManager(s))",
                    file.display(),
                    cfg.node.name,
                    cfg.node.address,
                    cfg.dhcp.pools.len(),
                    cfg.callmanagers.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                Ok(ExitCode::from(1))
            }
        },
    }
}
