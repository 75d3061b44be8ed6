//! The operator's commands: `status`, `failover`, `maintenance`, `pause`, `resume`, over one
//! kube context per region, as `forge-manager <command>` or as the kubectl plugin
//! `kubectl forge <command>` (the same binary under the name `kubectl-forge`).
//!
//! Reads and writes go through the API servers only (CardanoForgeCluster, CardanoLeader,
//! Lease); the view and the plans are pure ([`view`], [`change`]). Docs: docs/operator-cli.md.
//!
//! This file runs the commands; their command-line arguments are in `args.rs`.
mod args;
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
use clap::Parser;
use forge_core::crd::OverrideSpec;
use jiff::{SignedDuration, Timestamp};

pub use self::args::OperatorCommand;
use self::{
    args::{
        FailoverArgs, MaintenanceArgs, Output, PauseArgs, PluginCli, PodStatus, ResumeArgs, StatusArgs,
        Target, WriteArgs,
    },
    change::Change,
    kube_io::Region,
    view::{Forging, Style, Verdict, View},
};

/// The name the binary answers to as a kubectl plugin.
pub const PLUGIN_NAME: &str = "kubectl-forge";

/// True when this process was started under the plugin name (`argv[0]`'s file name).
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
