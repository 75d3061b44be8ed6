//! The operator's commands: `status`, `failover`, `maintenance`, `pause`, `resume`, over one
//! kube context per region, as `forge-manager <command>` or as the kubectl plugin
//! `kubectl forge <command>` (the same binary under the name `kubectl-forge`).
//!
//! Reads and writes go through the API servers only (CardanoForgeCluster, CardanoLeader,
//! Lease); the view and the plans are pure ([`view`], [`change`]). Docs: docs/operator-cli.md.
mod change;
mod kube_io;
mod view;

use std::{
    io::{IsTerminal, Write as _},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use forge_core::crd::OverrideSpec;
use jiff::{SignedDuration, Timestamp};

use self::{
    change::Change,
    kube_io::Region,
    view::{Forging, Style, Verdict, View},
};

/// The name the binary answers to as a kubectl plugin.
pub const PLUGIN_NAME: &str = "kubectl-forge";

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
    target: Target,
    /// Output format (default: a table).
    #[arg(short = 'o', long)]
    output: Option<Output>,
    /// Redraw every `--interval` until interrupted.
    #[arg(short = 'w', long)]
    watch: bool,
    /// Refresh period of `--watch`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    interval: Duration,
}

/// What every write takes.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Why (written into the override and shown in every status).
    #[arg(long)]
    reason: Option<String>,
    /// Show what would change, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before writing.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Do not follow the handover after writing.
    #[arg(long)]
    no_wait: bool,
    /// How long to follow the handover before giving up.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
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
    fn at(&self, now: Timestamp, default: SignedDuration) -> anyhow::Result<Timestamp> {
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
    target: Target,
    /// The region (or CardanoForgeCluster name, or context) that should forge.
    #[arg(long)]
    to: String,
    #[command(flatten)]
    expiry: Expiry,
    #[command(flatten)]
    write: WriteArgs,
}

/// `maintenance REGION on|off`.
#[derive(Debug, Clone, Args)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    target: Target,
    /// The region (or CardanoForgeCluster name, or context).
    region: String,
    /// `on`: stop forging there (override `forceState: Disabled`); `off`: remove that.
    #[arg(value_parser = ["on", "off"])]
    switch: String,
    #[command(flatten)]
    expiry: Expiry,
    #[command(flatten)]
    write: WriteArgs,
}

/// `pause` / `resume`.
#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    target: Target,
    /// Only these regions (default: every region read).
    #[arg(long, value_delimiter = ',')]
    region: Vec<String>,
    #[command(flatten)]
    expiry: Expiry,
    #[command(flatten)]
    write: WriteArgs,
}

/// `resume`.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: Target,
    /// Only these regions (default: every region read).
    #[arg(long, value_delimiter = ',')]
    region: Vec<String>,
    #[command(flatten)]
    write: WriteArgs,
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
struct PluginCli {
    #[command(subcommand)]
    command: OperatorCommand,
}

/// True when this process was started under the plugin name (argv[0]'s file name).
pub fn invoked_as_plugin() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .is_some_and(|n| n == PLUGIN_NAME)
}

/// `forge-manager install DIR --kubectl-plugin`: links `DIR/kubectl-forge` to
/// `DIR/forge-manager` (relative, so the pair can move together), replacing an older link.
pub fn link_plugin(dir: &std::path::Path) -> anyhow::Result<()> {
    let link = dir.join(PLUGIN_NAME);
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?
        }
        Ok(_) => bail!("{} exists and is not a symlink: not replacing it", link.display()),
        Err(_) => {}
    }
    std::os::unix::fs::symlink("forge-manager", &link)
        .with_context(|| format!("linking {}", link.display()))?;
    eprintln!("linked {} -> forge-manager (kubectl forge ...)", link.display());
    Ok(())
}

/// The plugin's main.
pub fn plugin_main() -> anyhow::Result<ExitCode> {
    run(PluginCli::parse().command)
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

/// Runs one operator command.
pub fn run(cmd: OperatorCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match cmd {
            OperatorCommand::Status(a) => status(a).await,
            OperatorCommand::Failover(a) => failover(a).await,
            OperatorCommand::Maintenance(a) => maintenance(a).await,
            OperatorCommand::Pause(a) => pause(a).await,
            OperatorCommand::Resume(a) => resume(a).await,
        }
    })
}

fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn print_view(view: &View, output: Option<Output>, now: Timestamp) -> anyhow::Result<()> {
    let text = match output {
        Some(Output::Json) => serde_json::to_string_pretty(view)? + "\n",
        Some(Output::Yaml) => serde_yaml::to_string(view)?,
        wide => view::render_table(
            view,
            now,
            Style {
                wide: wide == Some(Output::Wide),
                colour: colour(),
            },
        ),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let regions = kube_io::connect(&a.target).await?;
    loop {
        let (view, _) = kube_io::read_view(&regions).await;
        let now = Timestamp::now();
        if a.watch && std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print_view(&view, a.output, now)?;
        if !a.watch {
            return Ok(ExitCode::from(view.exit_code));
        }
        println!();
        tokio::time::sleep(a.interval).await;
    }
}

fn reason_of(w: &WriteArgs, default: &str) -> String {
    w.reason.clone().unwrap_or_else(|| default.to_string())
}

/// Shows the plan, asks, writes; `false` when nothing was written.
async fn apply(
    regions: &[Region],
    plan: &[Change],
    w: &WriteArgs,
    read: &kube_io::Read,
) -> anyhow::Result<bool> {
    let now = Timestamp::now();
    if plan.is_empty() {
        println!("nothing to change");
        return Ok(false);
    }
    for c in plan {
        if let Some(o) = &c.after {
            change::validate(o, now).map_err(|e| anyhow::anyhow!("{} ({}): {e}", c.cluster, c.context))?;
        }
    }
    println!("will change {} CardanoForgeCluster(s):", plan.len());
    for c in plan {
        println!(
            "  {} (region {}, context {}, namespace {}):",
            c.cluster, c.region, c.context, c.namespace
        );
        println!(
            "    spec.override now:   {}",
            change::describe(c.before.as_ref(), now)
        );
        println!(
            "    spec.override after: {}",
            change::describe(c.after.as_ref(), now)
        );
        println!(
            "    same as: kubectl --context {} -n {} patch cfc {} --type merge -p '{}'",
            c.context,
            c.namespace,
            c.cluster,
            change::merge_patch(c.after.as_ref(), None)
        );
    }
    if w.dry_run {
        println!("dry run: nothing written");
        return Ok(false);
    }
    if !w.yes {
        if !std::io::stdin().is_terminal() {
            bail!("not asking on a non-terminal: pass --yes to write, or --dry-run to only look");
        }
        print!("apply? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing written");
            return Ok(false);
        }
    }
    for c in plan {
        let region = regions
            .iter()
            .find(|r| r.context == c.context)
            .context("internal: the plan names a context that was not read")?;
        let rv = read.resource_version(&c.context, &c.cluster);
        kube_io::patch_override(
            region,
            &c.cluster,
            &change::merge_patch(c.after.as_ref(), rv.as_deref()),
        )
        .await
        .with_context(|| format!("writing spec.override of {} in context {}", c.cluster, c.context))?;
        println!("written: {} ({})", c.cluster, c.context);
    }
    Ok(true)
}

/// Polls until `done` holds for the view (or the timeout), printing each change of verdict;
/// returns the time from the call to the first view where it held.
async fn follow(
    regions: &[Region],
    timeout: Duration,
    what: &str,
    done: impl Fn(&View) -> bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let (view, _) = kube_io::read_view(regions).await;
        let line = view.verdict.line(Timestamp::now());
        if line != last {
            println!("  {:>6.2}s  {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if done(&view) {
            println!(
                "{what}: done in {:.2} s (from the write to the first status that shows it, polled every 100 ms)",
                started.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::from(view.exit_code));
        }
        if started.elapsed() >= timeout {
            println!(
                "{what}: NOT done after {:.0} s; current state below",
                timeout.as_secs_f64()
            );
            print_view(&view, None, Timestamp::now())?;
            return Ok(ExitCode::from(1));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn forges(view: &View, name: &str) -> bool {
    matches!(&view.verdict, Verdict::OneForger { region, .. } if region == name)
        && view
            .rows
            .iter()
            .all(|r| r.forging != Forging::Claiming || view::row_name(r) == name)
}

async fn failover(a: FailoverArgs) -> anyhow::Result<ExitCode> {
    let regions = kube_io::connect(&a.target).await?;
    let (view, read) = kube_io::read_view(&regions).await;
    let now = Timestamp::now();
    let reason = a
        .write
        .reason
        .clone()
        .context("--reason: required (say why; it is shown in every status)")?;
    let expires = a.expiry.at(now, SignedDuration::from_hours(1))?;
    let current = |r: &view::Row| read.override_of(&r.context, r.cluster.as_deref());
    let plan =
        change::failover(&view.rows, &current, &a.to, &reason, expires, now).map_err(anyhow::Error::msg)?;
    let to = change::find(&view.rows, &a.to).map_err(anyhow::Error::msg)?;
    let target = view::row_name(to);
    print_view(&view, None, now)?;
    if to.healthy == Some(false) {
        println!("warning: {target}'s health check is failing; forcePriority replaces the health penalty");
    }
    if !apply(&regions, &plan, &a.write, &read).await? || a.write.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    println!("following the handover to {target}:");
    follow(&regions, a.write.timeout, &format!("failover to {target}"), |v| {
        forges(v, &target)
    })
    .await
}

async fn maintenance(a: MaintenanceArgs) -> anyhow::Result<ExitCode> {
    let regions = kube_io::connect(&a.target).await?;
    let (view, read) = kube_io::read_view(&regions).await;
    let now = Timestamp::now();
    let on = a.switch == "on";
    let reason = reason_of(&a.write, "maintenance");
    let expires = a.expiry.at(now, SignedDuration::from_hours(2))?;
    let current = |r: &view::Row| read.override_of(&r.context, r.cluster.as_deref());
    let plan = change::maintenance(&view.rows, &current, &a.region, on, &reason, expires, now)
        .map_err(anyhow::Error::msg)?;
    let name = view::row_name(change::find(&view.rows, &a.region).map_err(anyhow::Error::msg)?);
    print_view(&view, None, now)?;
    if !apply(&regions, &plan, &a.write, &read).await? || a.write.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let what = format!("maintenance {} {}", name, a.switch);
    follow(&regions, a.write.timeout, &what, |v| {
        let here = v.rows.iter().find(|r| view::row_name(r) == name);
        if on {
            here.is_some_and(|r| r.forging == Forging::No)
                && (matches!(v.verdict, Verdict::OneForger { .. }) && settled(v) || v.rows.len() == 1)
        } else {
            here.is_some_and(|r| r.reason.as_deref() != Some("override_disabled")) && settled(v)
        }
    })
    .await
}

/// One forger and nobody else claiming.
fn settled(v: &View) -> bool {
    matches!(v.verdict, Verdict::OneForger { .. }) && v.rows.iter().all(|r| r.forging != Forging::Claiming)
}

async fn pause(a: PauseArgs) -> anyhow::Result<ExitCode> {
    let regions = kube_io::connect(&a.target).await?;
    let (view, read) = kube_io::read_view(&regions).await;
    let now = Timestamp::now();
    let reason = reason_of(&a.write, "paused by forge-manager pause");
    let expires = a.expiry.at(now, SignedDuration::from_hours(1))?;
    let current = |r: &view::Row| read.override_of(&r.context, r.cluster.as_deref());
    let plan =
        change::pause(&view.rows, &current, &a.region, &reason, expires, now).map_err(anyhow::Error::msg)?;
    print_view(&view, None, now)?;
    if !apply(&regions, &plan, &a.write, &read).await? || a.write.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&regions, a.write.timeout, "pause", |v| {
        v.rows.iter().all(|r| {
            matches!(r.forging, Forging::No)
                && r.error.is_none()
                && r.pods.iter().all(|p| p.observed_forging != Some(true))
        })
    })
    .await
    .map(|code| {
        if code == ExitCode::from(view::EXIT_NO_FORGER) {
            ExitCode::SUCCESS
        } else {
            code
        }
    })
}

async fn resume(a: ResumeArgs) -> anyhow::Result<ExitCode> {
    let regions = kube_io::connect(&a.target).await?;
    let (view, read) = kube_io::read_view(&regions).await;
    let now = Timestamp::now();
    let current = |r: &view::Row| read.override_of(&r.context, r.cluster.as_deref());
    let plan = change::resume(&view.rows, &current, &a.region).map_err(anyhow::Error::msg)?;
    print_view(&view, None, now)?;
    if !apply(&regions, &plan, &a.write, &read).await? || a.write.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&regions, a.write.timeout, "resume", |v| {
        settled(v)
            && v.rows
                .iter()
                .all(|r| r.reason.as_deref() != Some("override_disabled"))
    })
    .await
}

/// The override a cluster has, as read (for the plans).
impl kube_io::Read {
    fn override_of(&self, context: &str, cluster: Option<&str>) -> Option<OverrideSpec> {
        let cluster = cluster?;
        self.cluster(context, cluster)
            .and_then(|c| c.spec.override_.clone())
    }
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
