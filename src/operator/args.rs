//! The operator commands' command-line arguments (clap), shared by `forge-manager <command>`
//! and the kubectl plugin: which API servers to read, the output format, the override window
//! and reason of a write, and one struct per command. Durations read like kubectl's.
use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};

/// Which API servers to read: kube contexts, kubeconfig and namespace, as kubectl takes them.
#[derive(Debug, Clone, Args, Default)]
pub struct Target {
    /// Kube contexts to read, one per region, comma-separated or repeated (default: the
    /// current context).
    #[arg(long, value_delimiter = ',')]
    pub context: Vec<String>,
    /// Read every context of the kubeconfig.
    #[arg(long, conflicts_with = "context")]
    pub all_contexts: bool,
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace (default: each context's namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Per-request timeout against each API server.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Label selector of the sidecar pods (the chart's block-producer pods).
    #[arg(
        short = 'l',
        long,
        default_value = "app.kubernetes.io/component=block-producer"
    )]
    pub selector: String,
    /// The sidecar's HTTP port in those pods: a container port name or a number.
    #[arg(long, default_value = "forge-metrics")]
    pub pod_port: String,
    /// How to reach each pod's `/status`: through the API server's pod proxy (`proxy`, needs
    /// `get pods/proxy`), straight to the pod IP (`direct`, from inside the cluster network),
    /// `auto` (proxy, then direct) or `off`.
    #[arg(long, value_enum, default_value_t = PodStatus::Auto)]
    pub pod_status: PodStatus,
}

/// How `status` reaches the sidecars' `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PodStatus {
    /// The API server's pod proxy, then the pod IP.
    #[default]
    Auto,
    /// The API server's pod proxy only.
    Proxy,
    /// The pod IP only.
    Direct,
    /// Not at all (forging per pod unknown).
    Off,
}

/// Output format of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// More columns.
    Wide,
    /// The view as JSON.
    Json,
    /// The view as YAML.
    Yaml,
}

/// `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// Output format (default: a table).
    #[arg(short = 'o', long)]
    pub(super) output: Option<Output>,
    /// Redraw every `--interval` until interrupted.
    #[arg(short = 'w', long)]
    pub(super) watch: bool,
    /// Refresh period of `--watch`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(super) interval: Duration,
}

/// What every write takes.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Why (written into the override and shown in every status).
    #[arg(long)]
    pub(super) reason: Option<String>,
    /// Show what would change, write nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Do not ask before writing.
    #[arg(short = 'y', long)]
    pub(super) yes: bool,
    /// Do not follow the handover after writing.
    #[arg(long)]
    pub(super) no_wait: bool,
    /// How long to follow the handover before giving up.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(super) timeout: Duration,
}

/// How long an override lasts.
#[derive(Debug, Clone, Args)]
pub struct Expiry {
    /// Override duration, e.g. `30m`, `2h`, `1h30m`.
    #[arg(long = "for", value_parser = parse_signed, conflicts_with = "until")]
    for_: Option<SignedDuration>,
    /// Override end, an RFC 3339 time (e.g. `2026-11-26T06:00:00Z`).
    #[arg(long)]
    until: Option<Timestamp>,
}

impl Expiry {
    pub(super) fn at(&self, now: Timestamp, default: SignedDuration) -> anyhow::Result<Timestamp> {
        match (self.until, self.for_) {
            (Some(t), _) => Ok(t),
            (None, d) => {
                let t = now
                    .checked_add(d.unwrap_or(default))
                    .context("--for: the expiry is out of range")?;
                // Whole seconds: easier to read in every status and table.
                Timestamp::from_second(t.as_second()).context("--for: the expiry is out of range")
            }
        }
    }
}

/// `failover`.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// The region (or CardanoForgeCluster name, or context) that should forge.
    #[arg(long)]
    pub(super) to: String,
    #[command(flatten)]
    pub(super) expiry: Expiry,
    #[command(flatten)]
    pub(super) write: WriteArgs,
}

/// `maintenance REGION on|off`.
#[derive(Debug, Clone, Args)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// The region (or CardanoForgeCluster name, or context).
    pub(super) region: String,
    /// `on`: stop forging there (override `forceState: Disabled`); `off`: remove that.
    #[arg(value_parser = ["on", "off"])]
    pub(super) switch: String,
    #[command(flatten)]
    pub(super) expiry: Expiry,
    #[command(flatten)]
    pub(super) write: WriteArgs,
}

/// `pause` / `resume`.
#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// Only these regions (default: every region read).
    #[arg(long, value_delimiter = ',')]
    pub(super) region: Vec<String>,
    #[command(flatten)]
    pub(super) expiry: Expiry,
    #[command(flatten)]
    pub(super) write: WriteArgs,
}

/// `resume`.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// Only these regions (default: every region read).
    #[arg(long, value_delimiter = ',')]
    pub(super) region: Vec<String>,
    #[command(flatten)]
    pub(super) write: WriteArgs,
}

/// The operator's subcommands (shared by `forge-manager` and `kubectl forge`).
#[derive(Debug, Clone, Subcommand)]
pub enum OperatorCommand {
    /// One table over every region and its pods: who forges, who claims, overrides, health,
    /// lease, KES expiry, reason.
    /// Exit code: 0 one forger, 3 none, 4 two or more, 5 a region unreadable.
    Status(StatusArgs),
    /// Move forging to a region with expiring overrides, then follow the handover.
    Failover(FailoverArgs),
    /// Stop forging in one region (`on`, expiring override) or end it (`off`).
    Maintenance(MaintenanceArgs),
    /// Stop all forging (every region `Disabled` until the override expires, default 1h).
    Pause(PauseArgs),
    /// End a pause: remove the overrides that force `Disabled`.
    Resume(ResumeArgs),
}

/// `kubectl forge ...`: the binary invoked as `kubectl-forge`.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl forge",
    version,
    about = "forge-manager's operator commands as a kubectl plugin"
)]
pub(super) struct PluginCli {
    #[command(subcommand)]
    pub(super) command: OperatorCommand,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_signed(s)?;
    Duration::try_from(d).map_err(|_| format!("{s:?}: must not be negative"))
}

fn parse_signed(s: &str) -> Result<SignedDuration, String> {
    let d: SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?}: not a duration like 30s, 15m, 2h or 1h30m: {e}"))?;
    if d.is_negative() || d.is_zero() {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl_and_must_be_positive() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").expect_err("bad").contains("soon"));
    }

    #[test]
    fn the_plugin_parses_the_same_commands() {
        let cli = PluginCli::try_parse_from([
            "kubectl-forge",
            "failover",
            "--to",
            "west",
            "--for",
            "30m",
            "--reason",
            "r",
            "--context",
            "a,b",
            "-n",
            "cardano",
        ])
        .expect("parses");
        let OperatorCommand::Failover(f) = cli.command else {
            panic!("not failover")
        };
        assert_eq!(f.to, "west");
        assert_eq!(f.target.context, ["a", "b"]);
        assert_eq!(f.target.namespace.as_deref(), Some("cardano"));
        assert_eq!(f.expiry.for_, Some(SignedDuration::from_mins(30)));
        assert!(
            PluginCli::try_parse_from([
                "kubectl-forge",
                "failover",
                "--to",
                "w",
                "--for",
                "1h",
                "--until",
                "2026-01-01T00:00:00Z"
            ])
            .is_err()
        );
    }
}
