//! `forge-manager sim ...` subcommands (filled in by the test-world work).
use clap::Subcommand;

/// The simulator subcommands.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Merge node timelines and print overlap and gaps.
    Timeline {
        /// Timeline files (JSON lines).
        files: Vec<std::path::PathBuf>,
    },
}

/// Runs one simulator subcommand to completion.
pub fn run(_cmd: SimCommand) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not implemented yet")
}
