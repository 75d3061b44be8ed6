//! The chaos soak (`forge-manager sim chaos`, docs/chaos.md): one region of three pods (or two
//! regions of three pods each, with cluster management on), every node a realistic simulator
//! under the node guard, and a stream of faults drawn from a seed, one at a time, from the whole
//! matrix: SIGKILL and SIGSTOP/SIGCONT of sidecar, guard and node; node restarts and slow
//! starts; API blackhole, latency and refused connections through each pod's fault proxy; watch
//! drops; credential rotation; and, with two regions, cuts of the link between them.
//!
//! The fault schedule ([`plan`]) is a pure function of the seed: the same seed draws the same
//! faults, targets, durations and pauses (the nodes' reload latencies too). Who happens to lead
//! when a fault meant for "the leader" lands, and so what the fault does, depends on the run.
//!
//! After each fault the soak waits, bounded, until exactly one node forges again (and restarts,
//! as kubelet would, whatever died), pauses, and draws the next. At the end it stops every
//! process (the shutdown is judged too) and the timeline judge decides:
//! - S1: 0 ms of overlap and at most one forger at any instant over the whole run, shutdown
//!   included; no node forging while its pod held no Lease;
//! - L1: after each fault, the longest interval without a forger (from the fault until the
//!   next one) within that fault's bound ([`gap_bound`], derived from the lease timings).
//!
//! Not part of the sidecar.
//!
//! `schedule` draws the faults and bounds the gap each may cause, `soak` runs the worlds and
//! injects, heals and stops, and `report` is what the judge found (and the judge).

mod report;
mod schedule;
mod soak;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::node::SplitMix64;
use crate::timeline::unix_now_ns;
use crate::world::WorldOptions;

pub use report::{ChaosReport, Step};
pub use schedule::{FaultKind, FaultPlan, Target, Timings, draw, draw_kind, gap_bound, plan, plan_opening};
pub use soak::rotate;

use report::judge;
use soak::Soak;

/// What the soak runs.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// The `forge-manager` executable (sidecar, guard and node simulator).
    pub exe: PathBuf,
    /// Seed of the fault schedule and of the nodes' reload latencies.
    pub seed: u64,
    /// How long faults are injected (the start-up and the final shutdown come on top); longer
    /// when the opening needs it.
    pub duration: Duration,
    /// The kinds of the first faults, one each in this order (their targets, holds and calms
    /// are drawn from the seed as usual); the soak goes on until all of them were injected,
    /// past `duration` if need be. Empty: every kind is drawn from the seed.
    pub opening: Vec<FaultKind>,
    /// 1 (three pods) or 2 (two regions of three pods, cluster management on).
    pub regions: usize,
    /// Show the sidecars', guards' and nodes' own output.
    pub show_output: bool,
}

/// Pods per region.
pub const PODS: usize = 3;

/// How long a node restart waits for its sidecar's boot credentials before starting the node
/// anyway: kubelet's first back-off after a container that failed at once (a node without its
/// credential files cannot start). Each such wait adds itself to the fault's gap bound.
pub const BOOT_WAIT: Duration = Duration::from_secs(10);

/// Why the soak could not run at all (a violation is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Building the world failed.
    #[error("setting up the chaos world: {0}")]
    World(#[from] crate::world::WorldError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "chaos: {line}");
}

/// Runs the soak and judges it.
pub async fn run(options: ChaosOptions) -> Result<ChaosReport, ChaosError> {
    if !(1..=2).contains(&options.regions) {
        return Err(ChaosError::Options(format!(
            "--regions: {} is not supported (1 or 2)",
            options.regions
        )));
    }
    if options.regions == 1 && options.opening.contains(&FaultKind::LinkCut) {
        return Err(ChaosError::Options(
            "--opening: link_cut needs two regions (--regions 2)".to_owned(),
        ));
    }
    let mut world_options = WorldOptions::realistic(options.exe.clone(), PODS);
    world_options.guard = true;
    world_options.seed = options.seed;
    world_options.show_output = options.show_output;
    let timings = Timings::of(&world_options, options.regions);
    say(&format!(
        "seed {}, {} region(s) of {PODS} pods under the node guard, reloads {}..{} ms ({}), faults for {:?}",
        options.seed,
        options.regions,
        world_options.node.reload.min.as_millis(),
        world_options.node.reload.max.as_millis(),
        world_options.node.reload_order.as_str(),
        options.duration
    ));
    let mut soak = Soak::start(&options, &world_options).await?;
    let mut violations = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let cold = soak.wait_single_forger(Duration::from_secs(30)).await;
    match cold {
        Some(d) => say(&format!("first forger after {:.1} s", d.as_secs_f64())),
        None => violations.push("nobody forged within 30 s of the cold start".to_owned()),
    }
    if !options.opening.is_empty() {
        let names: Vec<&str> = options.opening.iter().map(|k| k.name()).collect();
        say(&format!(
            "opening with one fault of each of: {}",
            names.join(", ")
        ));
    }
    let mut rng = SplitMix64::new(options.seed);
    let faults_from = Instant::now();
    while faults_from.elapsed() < options.duration || steps.len() < options.opening.len() {
        let f = draw_kind(
            &mut rng,
            options.regions,
            options.opening.get(steps.len()).copied(),
        );
        let n = steps.len() + 1;
        let bound = gap_bound(&f, &timings);
        let late_from = soak.late_boots;
        let (hit, injected, hit_forger, t0) = soak.inject(&f).await;
        let t_rel = soak.started.elapsed().as_secs_f64();
        say(&format!(
            "#{n} t+{t_rel:.1}s {} on {hit}{} (hold {} ms{}); bound {} ms",
            f.kind.name(),
            if hit_forger { " (forging)" } else { "" },
            f.hold.as_millis(),
            match f.kind {
                FaultKind::NodeSlowStart => format!(", handler after {} ms", f.slow_start.as_millis()),
                FaultKind::ApiLatency =>
                    format!(", {}/{} ms", f.latency.0.as_millis(), f.latency.1.as_millis()),
                _ => String::new(),
            },
            bound.as_millis()
        ));
        let since_inject = Instant::now();
        soak.heal(&f, &hit).await;
        let recovered = soak
            .recover(
                bound.saturating_sub(since_inject.elapsed()) + Duration::from_secs(10),
                late_from,
            )
            .await
            .map(|_| since_inject.elapsed());
        let late_boots = soak.late_boots - late_from;
        let bound = bound + BOOT_WAIT * u32::try_from(late_boots).unwrap_or(u32::MAX);
        match recovered {
            Some(d) => say(&format!(
                "#{n} one forger again {:.0} ms after the fault",
                d.as_secs_f64() * 1e3
            )),
            None => {
                violations.push(format!(
                    "#{n} {}: no single forger within {} ms of the fault (forging now: {:?})",
                    f.kind.name(),
                    (bound + Duration::from_secs(10)).as_millis(),
                    soak.forging_now()
                ));
                say(&format!("#{n} no single forger yet: {:?}", soak.forging_now()));
            }
        }
        steps.push(Step {
            n,
            plan: f,
            hit,
            injected,
            hit_forger,
            t_unix_ns: t0,
            bound_ms: bound.as_secs_f64() * 1e3,
            max_gap_ms: 0.0,
            overlap_ms: 0.0,
            recovered_ms: recovered.map(|d| d.as_secs_f64() * 1e3),
            late_boots,
        });
        tokio::time::sleep(f.pause).await;
    }
    let seconds = faults_from.elapsed().as_secs_f64();
    let end_of_faults = unix_now_ns();
    say("stopping every process (the shutdown is judged too)");
    let (events, leases, leases_taken) = soak.stop().await;
    let mut report =
        ChaosReport::unjudged(options.seed, options.regions, seconds, timings, steps, violations);
    for s in &report.steps {
        *report.faults.entry(s.plan.kind.name().to_owned()).or_default() += 1;
    }
    judge(&mut report, &events, &leases, end_of_faults, leases_taken);
    Ok(report)
}
