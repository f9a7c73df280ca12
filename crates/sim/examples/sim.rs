//! Stand-alone `sim boot|storm` until the lead wires them into `phoneboot sim`:
//! `ip netns exec LAB-ph target/debug/examples/sim boot --mac 001b54aabbcc --model CP-7965`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Cisco IP phone emulator (phoneboot sim)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot one phone and print its timeline.
    Boot(sim::cli::BootArgs),
    /// Boot many phones and print a summary.
    Storm(sim::cli::StormArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rc = rt.block_on(async move {
        match cli.cmd {
            Cmd::Boot(a) => sim::cli::run_boot(a).await,
            Cmd::Storm(a) => sim::cli::run_storm(a).await,
        }
    });
    std::process::ExitCode::from(u8::try_from(rc).unwrap_or(2))
}
