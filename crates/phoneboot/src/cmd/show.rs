//! IOS-style views of a running server: `cdp neighbors [detail]`, `lldp neighbors`,
//! `power inline`, and `debug cdp ...` switches.

use std::process::ExitCode;

use clap::Subcommand;

use super::target::Target;

#[derive(Subcommand)]
pub enum CdpCommand {
    /// `show cdp neighbors [detail]`.
    Neighbors {
        /// The detailed layout (`show cdp neighbors detail`).
        #[arg(long)]
        detail: bool,
    },
}

#[derive(Subcommand)]
pub enum LldpCommand {
    /// `show lldp neighbors`.
    Neighbors,
}

#[derive(Subcommand)]
pub enum PowerCommand {
    /// `show power inline`: per-port PoE state and the switch's budget.
    Inline,
}

pub fn view(target: &Target, what: &str) -> anyhow::Result<ExitCode> {
    let (status, body) = target.call("GET", &format!("/api/show/{what}"), None)?;
    print!("{body}");
    Ok(if status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn cdp(target: &Target, c: CdpCommand) -> anyhow::Result<ExitCode> {
    match c {
        CdpCommand::Neighbors { detail: false } => view(target, "cdp-neighbors"),
        CdpCommand::Neighbors { detail: true } => view(target, "cdp-neighbors-detail"),
    }
}

/// `debug cdp packets|events|adjacency` and `no debug ...` (`--off`).
#[derive(clap::Args)]
pub struct DebugArgs {
    /// packets, events or adjacency
    #[arg(value_parser = ["packets", "events", "adjacency"])]
    pub category: String,
    /// Turn the category off (`no debug cdp ...`).
    #[arg(long)]
    pub off: bool,
}

pub fn debug(target: &Target, a: DebugArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/debug/cdp/{}?on={}", a.category, !a.off);
    let (status, body) = target.call("POST", &path, None)?;
    println!("{}", body.trim());
    Ok(if status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
