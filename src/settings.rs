//! Layered configuration loading: defaults < file < environment < flags (filled in by the config work).
use clap::Args;

/// Flags of `forge-manager config` and `forge-manager run`.
#[derive(Debug, Args, Default)]
pub struct ConfigArgs {
    /// A YAML or TOML configuration file.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// `forge-manager config`: validate and print the effective settings.
pub fn run_config(_args: &ConfigArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not implemented yet")
}
