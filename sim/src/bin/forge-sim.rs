//! `forge-sim`: the same subcommands as `forge-manager sim`, as a binary of this crate, so the
//! crate's own integration tests can run them as processes (`CARGO_BIN_EXE_forge-sim`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// The test world: API server launcher, fault proxy, node simulator, timeline judge.
#[derive(Debug, Parser)]
#[command(name = "forge-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: forge_sim::cli::SimCommand,
}

fn main() -> ExitCode {
    match forge_sim::cli::run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
