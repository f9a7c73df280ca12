//! The `phoneboot` command: the server, the lab, and the administration tools.

mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Boots and registers Cisco IP phones: CDP/LLDP-MED voice VLAN and PoE, DHCP with option 150,
/// TFTP/HTTP configuration files built from a device database, SCCP and SIP registration.
#[derive(Parser)]
#[command(name = "phoneboot", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    target: cmd::target::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service of the boot chain for one node.
    Serve(cmd::serve::Args),
    /// Emulate Cisco IP phones: one phone's boot as a timeline, or a boot storm.
    #[command(subcommand)]
    Sim(Box<SimCommand>),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Build, inspect and remove a lab network of namespaces and a VLAN-aware switch.
    #[command(subcommand)]
    Lab(cmd::lab::Command),
    /// Get an API token from a running server and store it for the other commands
    /// (`$XDG_CONFIG_HOME/phoneboot/tokens.json`, mode 0600).
    Login(cmd::login::LoginArgs),
    /// Forget the stored API token of the target server.
    Logout,
    #[command(flatten)]
    Admin(Box<provision::cli::AdminCommand>),
    /// Send a Reset to a registered phone (it reboots and fetches everything again).
    Reset {
        /// SEP<MAC> name or MAC
        device: String,
    },
    /// Send a Restart to a registered phone (re-reads its configuration, re-registers).
    Restart { device: String },
    /// Apply a changed configuration to a registered phone.
    ApplyConfig { device: String },
    /// A phone's last boot as a diagnosed timeline, from the node's boot journal.
    Trace {
        /// MAC (any notation) or SEP<MAC> name
        phone: String,
    },
    /// CDP neighbours heard on the switch ports (`show cdp neighbors`).
    #[command(subcommand)]
    Cdp(cmd::show::CdpCommand),
    /// LLDP neighbours (`show lldp neighbors`).
    #[command(subcommand)]
    Lldp(cmd::show::LldpCommand),
    /// PoE state per port (`show power inline`).
    #[command(subcommand)]
    Power(cmd::show::PowerCommand),
    /// Turn CDP debugging on or off at run time (`debug cdp packets|events|adjacency`).
    Debug {
        #[command(subcommand)]
        what: DebugWhat,
    },
    /// The firmware and locale library: import Cisco packages, list loads and locales.
    #[command(subcommand)]
    Firmware(cmd::firmware::Command),
    /// Write the node's state (device database with leases, admin users; optionally the boot
    /// journal) into one archive, consistently, while the node runs.
    Backup(cmd::backup::BackupArgs),
    /// Restore a backup into this node's database (stop `phoneboot serve` first).
    Restore(cmd::backup::RestoreArgs),
    /// The cluster's trust identity: certificates, import, key rollover, mixed mode.
    #[command(subcommand)]
    Security(cmd::security::Command),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (phoneboot.1 and one per subcommand) into a directory; the
    /// Debian package ships them (scripts/package).
    Manpages {
        /// Directory to write `*.1` files into (created if missing).
        #[arg(env = "PHONEBOOT_MANPAGES_DIR")]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Boot one phone through the whole chain and print its timeline (exit 0 only when registered).
    Boot(sim::cli::BootArgs),
    /// Boot many phones (a range of MACs or a CSV, a mix of models) and summarise.
    Storm(sim::cli::StormArgs),
}

#[derive(Subcommand)]
enum DebugWhat {
    /// packets, events or adjacency
    Cdp(cmd::show::DebugArgs),
}

fn run_sim(c: SimCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async move {
        match c {
            SimCommand::Boot(a) => sim::cli::run_boot(a).await,
            SimCommand::Storm(a) => sim::cli::run_storm(a).await,
        }
    });
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
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
        Command::Sim(c) => run_sim(*c),
        Command::Lab(c) => cmd::lab::run(c),
        Command::Login(a) => cmd::login::login(&cli.target, a),
        Command::Logout => cmd::login::logout(&cli.target),
        Command::Admin(c) => cmd::admin::run(&cli.target, *c),
        Command::Reset { device } => cmd::admin::reset(&cli.target, &device, "reset"),
        Command::Restart { device } => cmd::admin::reset(&cli.target, &device, "restart"),
        Command::ApplyConfig { device } => cmd::admin::reset(&cli.target, &device, "apply-config"),
        Command::Trace { phone } => cmd::trace::run(&cli.target, &phone),
        Command::Firmware(c) => cmd::firmware::run(&cli.target, c),
        Command::Cdp(c) => cmd::show::cdp(&cli.target, c),
        Command::Lldp(cmd::show::LldpCommand::Neighbors) => {
            cmd::show::view(&cli.target, "lldp-neighbors")
        }
        Command::Power(cmd::show::PowerCommand::Inline) => {
            cmd::show::view(&cli.target, "power-inline")
        }
        Command::Debug {
            what: DebugWhat::Cdp(a),
        } => cmd::show::debug(&cli.target, a),
        Command::Backup(a) => cmd::backup::backup(&cli.target, a),
        Command::Restore(a) => cmd::backup::restore(&cli.target, a),
        Command::Security(c) => cmd::security::run(&cli.target, c),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "phoneboot",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpages { dir } => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| anyhow::anyhow!("writing manual pages into {}: {e}", dir.display())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("phoneboot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// (flag as `--long`, or a positional's value name, its variable) for every argument
    /// with an environment twin, in every subcommand.
    fn env_flags(c: &clap::Command, out: &mut BTreeSet<(String, String)>) {
        for a in c.get_arguments() {
            if let Some(env) = a.get_env() {
                let name = match a.get_long() {
                    Some(l) => format!("--{l}"),
                    None => a.get_id().as_str().to_uppercase(),
                };
                out.insert((name, env.to_string_lossy().into_owned()));
            }
        }
        for s in c.get_subcommands() {
            env_flags(s, out);
        }
    }

    /// Does the README name `flag` with `env`: "`... --flag` (`ENV`" or "(`ENV`, also `... --flag`)"?
    fn readme_names(text: &str, flag: &str, env: &str) -> bool {
        let direct = text.match_indices(&format!("` (`{env}`")).any(|(i, _)| {
            text[..i]
                .rsplit('`')
                .next()
                .is_some_and(|f| f.ends_with(flag))
        });
        let also = format!("(`{env}`, also `");
        direct
            || text.match_indices(&also).any(|(i, _)| {
                text[i + also.len()..]
                    .split('`')
                    .next()
                    .is_some_and(|f| f.ends_with(flag))
            })
    }

    /// README.md names exactly the flags that have an environment-variable twin.
    #[test]
    fn the_readme_names_every_environment_twin() {
        let mut found = BTreeSet::new();
        env_flags(&Cli::command(), &mut found);
        assert!(found.len() >= 10, "{found:?}");
        let readme = include_str!("../../../README.md");
        let text = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for (flag, env) in &found {
            assert!(
                readme_names(&text, flag, env),
                "README.md does not name {flag} ({env})"
            );
        }
        assert!(!readme_names(&text, "--count", "PHONEBOOT_DB"));
        let named: BTreeSet<&str> = readme
            .split('`')
            .filter(|w| w.starts_with("PHONEBOOT_") && *w != "PHONEBOOT_LOG")
            .collect();
        let have: BTreeSet<&str> = found.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(named, have, "README.md names a twin no flag has");
    }
}
