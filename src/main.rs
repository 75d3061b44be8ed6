//! forge-manager: the command line. Thin: parsing, config loading, wiring.
#![forbid(unsafe_code)]

mod crds;
mod fail_safe;
mod guard;
mod operator;
mod reference_names;
mod run;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps exactly one cardano-node forging per pool, across pods and regions.
#[derive(Debug, Parser)]
#[command(name = "forge-manager", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar (the default when no subcommand is given).
    Run(settings::ConfigArgs),
    /// Print the CustomResourceDefinitions (CardanoForgeCluster, CardanoLeader) as YAML.
    Crds {
        /// Write one file per CRD into this directory (`<name>.yaml`) instead of printing.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Load and validate the layered configuration; print the effective settings as YAML.
    Config(settings::ConfigCommand),
    /// The node guard: run the node as its child and fence it when the forging permit lapses.
    Guard(guard::GuardArgs),
    /// Send protocol lines to a running node guard and print its answers.
    GuardCtl(guard::GuardCtlArgs),
    /// Copy this binary into DIR (an init container puts the guard into a shared volume; the
    /// image has no shell or `cp`).
    Install {
        /// The directory to copy `forge-manager` into (created if needed).
        dir: std::path::PathBuf,
        /// Also link `DIR/kubectl-forge` to it, so that `kubectl forge ...` runs the operator
        /// commands when DIR is on PATH.
        #[arg(long)]
        kubectl_plugin: bool,
    },
    /// Operator commands (also as `kubectl forge`, see docs/operator-cli.md).
    #[command(flatten)]
    Operator(operator::OperatorCommand),
    /// Test-world tools: real API server launcher, fault proxy, node simulator, timeline judge
    /// (the `sim` feature, on by default; the image is built without it).
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Sim(forge_sim::cli::SimCommand),
}

fn main() -> ExitCode {
    if operator::invoked_as_plugin() {
        return report(operator::plugin_main());
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Crds { out }) => crds::run(out.as_deref()),
        Some(Command::Config(cmd)) => settings::run_config(&cmd),
        Some(Command::Guard(args)) => guard::run(args),
        Some(Command::GuardCtl(args)) => guard::ctl(args),
        Some(Command::Install { dir, kubectl_plugin }) => install(&dir).and_then(|code| {
            if kubectl_plugin {
                operator::link_plugin(&dir)?;
            }
            Ok(code)
        }),
        Some(Command::Operator(cmd)) => operator::run(cmd),
        #[cfg(feature = "sim")]
        Some(Command::Sim(cmd)) => forge_sim::cli::run(cmd),
        Some(Command::Run(args)) => run::run(&args),
        None => run::run(&settings::ConfigArgs::default()),
    };
    report(result)
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `forge-manager install DIR`: copies the running executable to `DIR/forge-manager`, mode 0555,
/// atomically (a temporary file in DIR, then a rename), so a node container never starts a
/// half-written guard.
fn install(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::PermissionsExt;

    use anyhow::Context as _;
    let me = std::env::current_exe().context("locating this executable")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join("forge-manager");
    let tmp = dir.join(".forge-manager.tmp");
    std::fs::copy(&me, &tmp).with_context(|| format!("copying {} to {}", me.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("renaming into {}", target.display()))?;
    eprintln!("installed {}", target.display());
    Ok(ExitCode::SUCCESS)
}
