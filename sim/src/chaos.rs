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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;

use crate::creds::{TestCredentials, mainnet_kes_period_now, write_credentials};
use crate::node::SplitMix64;
use crate::process::is_alive;
use crate::timeline::{
    EventKind, TimelineEvent, TimelineWriter, Window, forging_at_end, judge_window, overlaps_until,
    unix_now_ns,
};
use crate::world::{LeaseRecord, RegionLinks, World, WorldOptions, forging_without_lease, start_regions};

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

/// The kinds of fault the soak draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL of a sidecar; it is started again after a delay.
    SidecarKill,
    /// SIGSTOP of a sidecar, SIGCONT after the hold.
    SidecarStop,
    /// SIGKILL of a node guard (its node dies with it); both start again after a delay.
    GuardKill,
    /// SIGSTOP of a node guard (its node runs on), SIGCONT after the hold.
    GuardStop,
    /// SIGKILL of a node process (its guard sees it exit and exits); restarted after a delay.
    NodeKill,
    /// SIGSTOP of a node process, SIGCONT after the hold (the judge counts it forging on).
    NodeStop,
    /// A graceful container restart: SIGTERM to the guard (forwarded to the node), a new one
    /// after a delay.
    NodeRestart,
    /// As [`FaultKind::NodeRestart`], and the new node installs its SIGHUP handler only after
    /// a long delay (a slow start: a SIGHUP before kills it).
    NodeSlowStart,
    /// The pod's API connection hangs (a partition) for the hold.
    ApiBlackhole,
    /// The pod's API traffic is delayed each way for the hold.
    ApiLatency,
    /// The pod's API connections are reset and new ones refused for the hold.
    ApiRefuse,
    /// Every open API connection of the pod (its watches) is reset once.
    WatchDrop,
    /// A new credential set (the next opcert counter) is written into every pod's source
    /// directory at once, as a Secret update (an atomic `..data` symlink swap).
    CredentialRotation,
    /// The link from one region to the other hangs for the hold (two regions only).
    LinkCut,
}

impl FaultKind {
    /// Every kind, in a fixed order (the draw indexes it).
    pub const ALL: [FaultKind; 14] = [
        FaultKind::SidecarKill,
        FaultKind::SidecarStop,
        FaultKind::GuardKill,
        FaultKind::GuardStop,
        FaultKind::NodeKill,
        FaultKind::NodeStop,
        FaultKind::NodeRestart,
        FaultKind::NodeSlowStart,
        FaultKind::ApiBlackhole,
        FaultKind::ApiLatency,
        FaultKind::ApiRefuse,
        FaultKind::WatchDrop,
        FaultKind::CredentialRotation,
        FaultKind::LinkCut,
    ];

    /// Its name as printed (snake case).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::SidecarKill => "sidecar_kill",
            FaultKind::SidecarStop => "sidecar_stop",
            FaultKind::GuardKill => "guard_kill",
            FaultKind::GuardStop => "guard_stop",
            FaultKind::NodeKill => "node_kill",
            FaultKind::NodeStop => "node_stop",
            FaultKind::NodeRestart => "node_restart",
            FaultKind::NodeSlowStart => "node_slow_start",
            FaultKind::ApiBlackhole => "api_blackhole",
            FaultKind::ApiLatency => "api_latency",
            FaultKind::ApiRefuse => "api_refuse",
            FaultKind::WatchDrop => "watch_drop",
            FaultKind::CredentialRotation => "credential_rotation",
            FaultKind::LinkCut => "link_cut",
        }
    }

    /// The kind [`FaultKind::name`] prints as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Whom a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The pod whose node forges when the fault lands (or pod `fallback` of region 0 when
    /// none does).
    Leader {
        /// The pod index used when nobody forges.
        fallback: usize,
    },
    /// A fixed pod.
    Pod {
        /// Region index.
        region: usize,
        /// Pod index in the region.
        index: usize,
    },
}

/// One drawn fault with all its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FaultPlan {
    /// What.
    pub kind: FaultKind,
    /// On whom (ignored by credential rotation, which hits every pod; for a link cut, the
    /// region whose view of the others is cut).
    pub target: Target,
    /// How long the fault stays in force (stalls, API faults, link cuts) or the delay before
    /// a killed or stopped process is started again.
    pub hold: Duration,
    /// The new node's SIGHUP handler delay ([`FaultKind::NodeSlowStart`]).
    pub slow_start: Duration,
    /// API latency up and down ([`FaultKind::ApiLatency`]).
    pub latency: (Duration, Duration),
    /// The calm after recovery, before the next fault.
    pub pause: Duration,
}

/// Pods per region.
pub const PODS: usize = 3;

/// How long a node restart waits for its sidecar's boot credentials before starting the node
/// anyway: kubelet's first back-off after a container that failed at once (a node without its
/// credential files cannot start). Each such wait adds itself to the fault's gap bound.
pub const BOOT_WAIT: Duration = Duration::from_secs(10);

fn ms(rng: &mut SplitMix64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.next_u64() % (hi - lo + 1))
}

/// Draws the next fault. Every step draws the same numbers in the same order, whatever kind
/// it is, so the schedule is a pure function of the seed.
pub fn draw(rng: &mut SplitMix64, regions: usize) -> FaultPlan {
    draw_kind(rng, regions, None)
}

/// [`draw`], of kind `kind` when given (the kind's number is drawn all the same, so the rest of
/// the schedule does not move).
pub fn draw_kind(rng: &mut SplitMix64, regions: usize, kind: Option<FaultKind>) -> FaultPlan {
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| regions > 1 || *k != FaultKind::LinkCut)
        .collect();
    let drawn = kinds[(rng.next_u64() % kinds.len() as u64) as usize];
    let kind = kind.unwrap_or(drawn);
    let to_leader = rng.next_u64().is_multiple_of(2);
    let region = (rng.next_u64() % regions.max(1) as u64) as usize;
    let index = (rng.next_u64() % PODS as u64) as usize;
    let restart = ms(rng, 0, 3000);
    let stall = ms(rng, 500, 6000);
    let api = ms(rng, 1000, 10_000);
    let slow_start = ms(rng, 1000, 5000);
    let latency = (ms(rng, 50, 1500), ms(rng, 50, 1500));
    let pause = ms(rng, 1000, 4000);
    let target = match kind {
        FaultKind::LinkCut => Target::Pod { region, index: 0 },
        _ if to_leader => Target::Leader { fallback: index },
        _ => Target::Pod { region, index },
    };
    let hold = match kind {
        FaultKind::SidecarKill
        | FaultKind::GuardKill
        | FaultKind::NodeKill
        | FaultKind::NodeRestart
        | FaultKind::NodeSlowStart => restart,
        FaultKind::SidecarStop | FaultKind::GuardStop | FaultKind::NodeStop => stall,
        FaultKind::ApiBlackhole | FaultKind::ApiLatency | FaultKind::ApiRefuse | FaultKind::LinkCut => api,
        FaultKind::WatchDrop | FaultKind::CredentialRotation => Duration::ZERO,
    };
    FaultPlan {
        kind,
        target,
        hold,
        slow_start: match kind {
            FaultKind::NodeSlowStart => slow_start,
            _ => Duration::ZERO,
        },
        latency: match kind {
            FaultKind::ApiLatency => latency,
            _ => (Duration::ZERO, Duration::ZERO),
        },
        pause,
    }
}

/// The first `n` faults of the schedule of `seed`.
pub fn plan(seed: u64, regions: usize, n: usize) -> Vec<FaultPlan> {
    plan_opening(seed, regions, &[], n)
}

/// The first `n` faults of the schedule of `seed` opening with the kinds `opening`
/// ([`ChaosOptions::opening`]).
pub fn plan_opening(seed: u64, regions: usize, opening: &[FaultKind], n: usize) -> Vec<FaultPlan> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| draw_kind(&mut rng, regions, opening.get(i).copied()))
        .collect()
}

/// The lease timings and node figures a gap bound is made of.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    /// `LEASE_DURATION`.
    pub lease: Duration,
    /// `RENEW_DEADLINE`.
    pub renew_deadline: Duration,
    /// `RETRY_PERIOD`.
    pub retry: Duration,
    /// The slowest node reload.
    pub reload_max: Duration,
    /// The node's SIGHUP handler delay at a normal start.
    pub handler_delay: Duration,
    /// The node's ledger replay.
    pub replay: Duration,
    /// Room for a loaded machine (scheduling, process starts, API round trips).
    pub allowance: Duration,
    /// More than one region: a takeover may wait for the peer's view of the vacancy too.
    pub regions: usize,
}

impl Timings {
    fn of(o: &WorldOptions, regions: usize) -> Self {
        Self {
            lease: Duration::from_secs(o.lease_duration_s),
            renew_deadline: o.renew_deadline,
            retry: o.retry_period,
            reload_max: o.node.reload.max,
            handler_delay: o.node.handler_delay,
            replay: o.replay,
            allowance: Duration::from_secs(4),
            regions,
        }
    }
}

/// The longest interval without a forger that fault `f` may cause (see docs/chaos.md).
///
/// The base, for any fault that takes the leader out: its last renewal was at most one retry
/// period before the fault; a standby sees the Lease vacant one `LEASE_DURATION` after that
/// renewal, acquires within a retry period, installs the credentials and reloads its node (the
/// slowest reload): `LEASE + 2 RETRY + reload_max`, plus the allowance for a loaded machine.
/// On top:
/// - a fault that kills or restarts a node (kill, guard kill, restart, slow start): its pod may
///   keep the lease while the node comes back: the restart delay, the handler delay (the slow
///   start's), the replay and one more reload;
/// - a stalled guard or node cannot confirm a stop or take a reload until it runs again: the
///   stall;
/// - two regions: the other region may judge the vacancy on its own, one more lease and retry.
pub fn gap_bound(f: &FaultPlan, t: &Timings) -> Duration {
    let base = t.lease + 2 * t.retry + t.reload_max + t.allowance;
    let extra = match f.kind {
        FaultKind::SidecarKill | FaultKind::SidecarStop => Duration::ZERO,
        FaultKind::GuardKill | FaultKind::NodeKill | FaultKind::NodeRestart => {
            f.hold + t.handler_delay + t.replay + t.reload_max
        }
        FaultKind::NodeSlowStart => f.hold + f.slow_start + t.replay + t.reload_max,
        FaultKind::GuardStop | FaultKind::NodeStop => f.hold,
        FaultKind::ApiBlackhole
        | FaultKind::ApiLatency
        | FaultKind::ApiRefuse
        | FaultKind::WatchDrop
        | FaultKind::CredentialRotation
        | FaultKind::LinkCut => Duration::ZERO,
    };
    let regions = match t.regions {
        0 | 1 => Duration::ZERO,
        _ => t.lease + t.retry,
    };
    base + extra + regions
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Its number, from 1.
    pub n: usize,
    /// What was drawn.
    pub plan: FaultPlan,
    /// The pod it hit (`region/name`), or `all` / a link.
    pub hit: String,
    /// Whether it was injected (else `hit` says why not).
    pub injected: bool,
    /// Whether that pod forged when the fault landed.
    pub hit_forger: bool,
    /// When it was injected (Unix ns).
    pub t_unix_ns: u64,
    /// The gap bound for it.
    pub bound_ms: f64,
    /// The longest interval without a forger from the fault until the next one.
    pub max_gap_ms: f64,
    /// Overlap in that interval.
    pub overlap_ms: f64,
    /// Time from the injection until exactly one node forged again (None: not within the bound).
    pub recovered_ms: Option<f64>,
    /// Node restarts after it that found no boot credentials within [`BOOT_WAIT`] (each adds
    /// [`BOOT_WAIT`] to the bound).
    pub late_boots: u64,
}

/// What the soak found.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// Regions.
    pub regions: usize,
    /// How long faults were injected, in seconds.
    pub seconds: f64,
    /// Faults injected per kind.
    pub faults: BTreeMap<String, u64>,
    /// Total overlap over the whole run, shutdown included (S1 wants 0).
    pub overlap_ms: f64,
    /// The most nodes forging at one instant.
    pub max_forgers: usize,
    /// The longest interval without a forger after any fault.
    pub longest_gap_ms: f64,
    /// The fault it followed (its number and kind).
    pub longest_gap_after: Option<String>,
    /// Its bound.
    pub longest_gap_bound_ms: f64,
    /// `forging_on` lines of nodes whose pod held no Lease at that instant.
    pub forging_without_lease: usize,
    /// Every node that forged at some point.
    pub forgers: Vec<String>,
    /// The timing figures the bounds were derived from.
    pub timings: Timings,
    /// Each fault.
    pub steps: Vec<Step>,
    /// What broke the contract; empty on a pass.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// Whether the run kept the contract.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The human summary (one line each: seed, faults per kind, overlap, longest gap, verdict).
    pub fn summary(&self) -> String {
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let total: u64 = self.faults.values().sum();
        let mut s = String::new();
        s.push_str(&format!(
            "chaos: seed {}, {} region(s) of {PODS} pods, {:.0} s of faults\n",
            self.seed, self.regions, self.seconds
        ));
        s.push_str(&format!(
            "chaos: faults injected ({total}): {}\n",
            faults.join(", ")
        ));
        s.push_str(&format!(
            "chaos: overlap {:.3} ms (most forgers at once: {}); forging without a lease: {}\n",
            self.overlap_ms, self.max_forgers, self.forging_without_lease
        ));
        let late: u64 = self.steps.iter().map(|s| s.late_boots).sum();
        if late > 0 {
            s.push_str(&format!(
                "chaos: node restarts that found no boot credentials within {} s: {late}\n",
                BOOT_WAIT.as_secs()
            ));
        }
        s.push_str(&format!(
            "chaos: longest gap {:.0} ms{} (its bound {:.0} ms); forgers: {}\n",
            self.longest_gap_ms,
            self.longest_gap_after
                .as_ref()
                .map(|a| format!(" after {a}"))
                .unwrap_or_default(),
            self.longest_gap_bound_ms,
            self.forgers.join(", ")
        ));
        for v in &self.violations {
            s.push_str(&format!("chaos: VIOLATION {v}\n"));
        }
        s.push_str(&format!(
            "chaos: verdict {}",
            if self.passed() { "PASS" } else { "FAIL" }
        ));
        s
    }
}

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

/// The running worlds (one per region) and their links.
struct Soak {
    worlds: Vec<World>,
    links: RegionLinks,
    region_names: Vec<String>,
    started: Instant,
    rotations: u64,
    /// Node restarts that found no boot credentials within [`BOOT_WAIT`].
    late_boots: u64,
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
        "seed {}, {} region(s) of {PODS} pods under the node guard, reloads {}..{} ms, faults for {:?}",
        options.seed,
        options.regions,
        world_options.node.reload.min.as_millis(),
        world_options.node.reload.max.as_millis(),
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
    let mut report = ChaosReport {
        seed: options.seed,
        regions: options.regions,
        seconds,
        faults: BTreeMap::new(),
        overlap_ms: 0.0,
        max_forgers: 0,
        longest_gap_ms: 0.0,
        longest_gap_after: None,
        longest_gap_bound_ms: 0.0,
        forging_without_lease: 0,
        forgers: Vec::new(),
        timings,
        steps,
        violations,
    };
    for s in &report.steps {
        *report.faults.entry(s.plan.kind.name().to_owned()).or_default() += 1;
    }
    judge(&mut report, &events, &leases, end_of_faults, leases_taken);
    Ok(report)
}

/// The judge's part: overlap over the whole run, the gap after each fault, forging without a
/// lease. Fills `report`.
fn judge(
    report: &mut ChaosReport,
    events: &[TimelineEvent],
    leases: &[LeaseRecord],
    end_of_faults: u64,
    leases_until: u64,
) {
    let whole = match judge_window(events, Window::default()) {
        Ok(v) => v,
        Err(e) => {
            report.violations.push(format!("no verdict: {e}"));
            return;
        }
    };
    report.overlap_ms = whole.overlap_ms;
    report.max_forgers = whole.max_forgers;
    report.forgers = whole.forgers.clone();
    if whole.overlap_ms > 0.0 || whole.max_forgers > 1 {
        report.violations.push(format!(
            "S1: {:.3} ms of overlap, {} forgers at once",
            whole.overlap_ms, whole.max_forgers
        ));
        for o in overlaps_until(events, whole.until_unix_ns) {
            let during = match o.from_unix_ns > end_of_faults {
                true => ", in the shutdown",
                false => "",
            };
            let after = after_fault(&report.steps, o.from_unix_ns)
                .map(|a| format!("{a}{during}"))
                .unwrap_or_else(|| "before the first fault".to_owned());
            report.violations.push(format!(
                "S1: {:.3} ms of {} forging at once, {after}",
                (o.to_unix_ns - o.from_unix_ns) as f64 / 1e6,
                o.nodes.join(" and ")
            ));
        }
    }
    if whole.forgers.is_empty() {
        report.violations.push("L1: nobody ever forged".to_owned());
    }
    let mut without = forging_without_lease(events, leases);
    without.retain(|e| e.t_unix_ns <= leases_until);
    report.forging_without_lease = without.len();
    for e in without.iter().take(5) {
        let after =
            after_fault(&report.steps, e.t_unix_ns).unwrap_or_else(|| "before the first fault".to_owned());
        report.violations.push(format!(
            "S1: {} (pid {}) began forging while its pod held no Lease, {after}",
            e.node, e.pid
        ));
    }
    let ends: Vec<u64> = report
        .steps
        .iter()
        .skip(1)
        .map(|s| s.t_unix_ns)
        .chain(std::iter::once(end_of_faults))
        .collect();
    for (s, until) in report.steps.iter_mut().zip(ends) {
        let window = Window {
            from_unix_ns: Some(s.t_unix_ns),
            until_unix_ns: Some(until.max(s.t_unix_ns)),
        };
        match judge_window(events, window) {
            Ok(v) => {
                s.max_gap_ms = v.max_gap_ms;
                s.overlap_ms = v.overlap_ms;
            }
            Err(e) => {
                report
                    .violations
                    .push(format!("#{} {}: no verdict: {e}", s.n, s.plan.kind.name()));
                continue;
            }
        }
        if s.max_gap_ms > s.bound_ms {
            report.violations.push(format!(
                "L1: #{} {} on {}: {:.0} ms without a forger, bound {:.0} ms",
                s.n,
                s.plan.kind.name(),
                s.hit,
                s.max_gap_ms,
                s.bound_ms
            ));
        }
        if s.max_gap_ms >= report.longest_gap_ms {
            report.longest_gap_ms = s.max_gap_ms;
            report.longest_gap_after = Some(format!("#{} {} on {}", s.n, s.plan.kind.name(), s.hit));
            report.longest_gap_bound_ms = s.bound_ms;
        }
    }
}

/// "N ms after #n kind on pod": how long after the last fault injected at or before
/// `t_unix_ns` something happened (None: before the first fault).
fn after_fault(steps: &[Step], t_unix_ns: u64) -> Option<String> {
    steps.iter().rev().find(|s| s.t_unix_ns <= t_unix_ns).map(|s| {
        format!(
            "{:.0} ms after #{} {} on {}",
            (t_unix_ns - s.t_unix_ns) as f64 / 1e6,
            s.n,
            s.plan.kind.name(),
            s.hit
        )
    })
}

impl Soak {
    async fn start(options: &ChaosOptions, o: &WorldOptions) -> Result<Soak, ChaosError> {
        let (worlds, links, region_names) = if options.regions == 1 {
            (
                vec![World::start(o.clone()).await?],
                RegionLinks::new(),
                vec!["pod".to_owned()],
            )
        } else {
            let regions = [("east", 1u32), ("west", 2u32)];
            let (worlds, links) = start_regions(
                &regions,
                |r| {
                    let mut w = o.clone();
                    w.seed = o.seed.wrapping_add(if r == "east" { 0 } else { 1_000_000 });
                    w
                },
                |_| Vec::new(),
            )
            .await?;
            (
                worlds,
                links,
                regions.iter().map(|(r, _)| (*r).to_owned()).collect(),
            )
        };
        Ok(Soak {
            worlds,
            links,
            region_names,
            started: Instant::now(),
            rotations: 1,
            late_boots: 0,
        })
    }

    fn events(&self) -> Vec<TimelineEvent> {
        let mut all = Vec::new();
        for w in &self.worlds {
            match w.try_events() {
                Ok(e) => all.extend(e),
                Err(e) => say(&format!("a timeline cannot be read: {e}")),
            }
        }
        all
    }

    fn forging_now(&self) -> Vec<String> {
        forging_at_end(&self.events())
    }

    /// `(region, pod index)` of a pod name.
    fn locate(&self, name: &str) -> Option<(usize, usize)> {
        self.worlds
            .iter()
            .enumerate()
            .find_map(|(r, w)| w.index_of(name).map(|i| (r, i)))
    }

    async fn wait_single_forger(&self, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.forging_now().len() == 1 {
                return Some(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Resolves the target and injects the fault's first half (the kill, the stop, the
    /// partition). Returns who was hit, whether the fault was injected, whether the pod hit
    /// forged, and when.
    async fn inject(&mut self, f: &FaultPlan) -> (String, bool, bool, u64) {
        let forging = self.forging_now();
        let (r, i) = match f.target {
            Target::Pod { region, index } => (region.min(self.worlds.len() - 1), index),
            Target::Leader { fallback } => forging
                .first()
                .and_then(|n| self.locate(n))
                .unwrap_or((0, fallback)),
        };
        let name = self.worlds[r].pods[i].name.clone();
        let hit_forger = forging.contains(&name);
        let t0 = unix_now_ns();
        let w = &mut self.worlds[r];
        let result: Result<String, String> = match f.kind {
            FaultKind::SidecarKill => {
                w.signal_manager(i, Signal::SIGKILL);
                Ok(name.clone())
            }
            FaultKind::SidecarStop => {
                w.signal_manager(i, Signal::SIGSTOP);
                Ok(name.clone())
            }
            FaultKind::GuardKill => {
                w.kill_node(i);
                Ok(name.clone())
            }
            FaultKind::GuardStop => w
                .signal_guard(i, Signal::SIGSTOP)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::NodeKill => match w.node_process(i) {
                Some(p) if p.pid != 0 && is_alive(p.pid) => {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), Signal::SIGKILL);
                    // A killed node writes nothing: its death is recorded as soon as it is gone.
                    let t = Instant::now();
                    while is_alive(p.pid) && t.elapsed() < Duration::from_secs(5) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    match is_alive(p.pid) {
                        true => Err(format!("{name}: its node outlived SIGKILL for 5 s")),
                        false => {
                            record_exit(w, i, &p);
                            Ok(name.clone())
                        }
                    }
                }
                _ => Err(format!("{name}: no live node process")),
            },
            FaultKind::NodeStop => w
                .signal_node(i, Signal::SIGSTOP)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::NodeRestart | FaultKind::NodeSlowStart => w
                .signal_guard(i, Signal::SIGTERM)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::ApiBlackhole => {
                w.pods[i].proxy.handle().blackhole();
                Ok(name.clone())
            }
            FaultKind::ApiLatency => {
                w.pods[i].proxy.handle().latency(f.latency.0, f.latency.1);
                Ok(name.clone())
            }
            FaultKind::ApiRefuse => {
                let h = w.pods[i].proxy.handle();
                h.refuse();
                h.reset();
                Ok(name.clone())
            }
            FaultKind::WatchDrop => {
                w.pods[i].proxy.handle().reset();
                Ok(name.clone())
            }
            FaultKind::CredentialRotation => {
                self.rotations += 1;
                let counter = self.rotations;
                let mut failed = Vec::new();
                for w in &self.worlds {
                    for p in &w.pods {
                        if let Err(e) = rotate(&p.secrets(), counter) {
                            failed.push(format!("{}: {e}", p.name));
                        }
                    }
                }
                match failed.is_empty() {
                    true => Ok(format!("all pods (opcert counter {counter})")),
                    false => Err(failed.join("; ")),
                }
            }
            FaultKind::LinkCut => {
                let from = self.region_names[r].clone();
                let cut: Vec<String> = self
                    .links
                    .iter()
                    .filter(|((a, _), _)| *a == from)
                    .map(|((a, b), p)| {
                        p.handle().blackhole();
                        format!("{a}->{b}")
                    })
                    .collect();
                Ok(format!("link {}", cut.join(",")))
            }
        };
        match result {
            Ok(hit) => (hit, true, hit_forger, t0),
            Err(e) => {
                say(&format!("{} could not be injected: {e}", f.kind.name()));
                (format!("{name} (not injected: {e})"), false, hit_forger, t0)
            }
        }
    }

    /// Holds the fault for its duration, then undoes it (SIGCONT, pass) or starts again what
    /// it killed.
    async fn heal(&mut self, f: &FaultPlan, hit: &str) {
        tokio::time::sleep(f.hold).await;
        let Some((r, i)) = self.locate(hit) else {
            if f.kind == FaultKind::LinkCut {
                for p in self.links.values() {
                    p.handle().pass();
                }
            }
            return;
        };
        let w = &mut self.worlds[r];
        match f.kind {
            FaultKind::SidecarStop => w.signal_manager(i, Signal::SIGCONT),
            FaultKind::GuardStop => {
                if let Err(e) = w.signal_guard(i, Signal::SIGCONT) {
                    say(&format!("SIGCONT to {hit}'s guard: {e}"));
                }
            }
            FaultKind::NodeStop => {
                if let Err(e) = w.signal_node(i, Signal::SIGCONT) {
                    say(&format!("SIGCONT to {hit}'s node: {e}"));
                }
            }
            FaultKind::ApiBlackhole | FaultKind::ApiLatency | FaultKind::ApiRefuse => {
                w.pods[i].proxy.handle().pass();
            }
            FaultKind::NodeSlowStart => {
                let normal = w.node_behaviour(i).clone();
                let mut slow = normal.clone();
                slow.handler_delay = f.slow_start;
                reap_node(w, i, Duration::from_secs(10)).await;
                w.set_node_behaviour(i, slow);
                let late = restart_node(w, i).await;
                w.set_node_behaviour(i, normal);
                self.late_boots += u64::from(late);
            }
            _ => {}
        }
        // Whatever died comes back, as kubelet would restart it.
        self.supervise().await;
    }

    /// Restarts every manager and node that is not running (after reaping it and recording a
    /// dead node's exit in its timeline).
    async fn supervise(&mut self) {
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                let manager_down = match w.pods[i].manager.as_mut() {
                    None => true,
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                };
                if manager_down {
                    w.pods[i].manager = None;
                    say(&format!("{}: starting its sidecar again", w.pods[i].name));
                    if let Err(e) = w.start_manager(i).await {
                        say(&format!("{}: {e}", w.pods[i].name));
                    }
                }
                let node_down = match w.pods[i].node.as_mut() {
                    None => true,
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                };
                if node_down {
                    reap_node(w, i, Duration::from_secs(10)).await;
                    self.late_boots += u64::from(restart_node(w, i).await);
                }
            }
        }
    }

    /// Waits until exactly one node forges and every process runs (restarting what died);
    /// each node restart since `late_from` that waited in vain for boot credentials extends
    /// the wait by [`BOOT_WAIT`].
    async fn recover(&mut self, within: Duration, late_from: u64) -> Option<()> {
        let t = Instant::now();
        let late = |s: &Self| BOOT_WAIT * u32::try_from(s.late_boots - late_from).unwrap_or(u32::MAX);
        while t.elapsed() < within + late(self) {
            self.supervise().await;
            if self.forging_now().len() == 1 {
                return Some(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Stops every process as a pod deletion would, one pod after the other: SIGTERM to the
    /// sidecar (it hands over), then to the guard (forwarded to the node). The events are read
    /// after, so the shutdown is judged too; then the worlds are removed. Returns the events,
    /// the Lease states seen, and when the Lease log was taken (forging after that instant is
    /// not checked against it).
    async fn stop(mut self) -> (Vec<TimelineEvent>, Vec<LeaseRecord>, u64) {
        for p in self.links.values() {
            p.handle().pass();
        }
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                // A stopped process would not take its SIGTERM.
                w.signal_manager(i, Signal::SIGCONT);
                let _ = w.signal_guard(i, Signal::SIGCONT);
                let _ = w.signal_node(i, Signal::SIGCONT);
            }
        }
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                w.signal_manager(i, Signal::SIGTERM);
                if w.wait_manager_exit(i, Duration::from_secs(15)).await.is_none() {
                    say(&format!(
                        "{}: its sidecar did not exit within 15 s of SIGTERM",
                        w.pods[i].name
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Every region has a Lease of the same name in its own API server: keep them apart.
        let mut leases = Vec::new();
        for (w, region) in self.worlds.iter().zip(&self.region_names) {
            leases.extend(w.lease_history().into_iter().map(|mut l| {
                l.lease = format!("{region}/{}", l.lease);
                l
            }));
        }
        let leases_taken = unix_now_ns();
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                let _ = w.signal_guard(i, Signal::SIGTERM);
                reap_node(w, i, Duration::from_secs(10)).await;
            }
        }
        for w in &mut self.worlds {
            w.stop_processes();
        }
        let events = self.events();
        for w in &mut self.worlds {
            w.stop();
        }
        (events, leases, leases_taken)
    }
}

/// Waits (bounded) until pod `i`'s guard and node are gone, reaps the guard, and writes the
/// node's `exit` line if the node died without one (SIGKILL). A node that outlives the wait is
/// killed (the world's [`World::kill_node`]).
async fn reap_node(w: &mut World, i: usize, within: Duration) {
    let node = w.node_process(i);
    let t = Instant::now();
    loop {
        let guard_gone = match w.pods[i].node.as_mut() {
            None => true,
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
        };
        let node_gone = node.as_ref().is_none_or(|p| p.pid == 0 || !is_alive(p.pid));
        if guard_gone && node_gone {
            w.pods[i].node = None;
            break;
        }
        if t.elapsed() >= within {
            say(&format!(
                "{}: its node did not exit within {within:?}: SIGKILL",
                w.pods[i].name
            ));
            w.kill_node(i);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(p) = node {
        record_exit(w, i, &p);
    }
}

/// Appends node process `p`'s `exit` line to pod `i`'s timeline unless it wrote one itself
/// (a SIGKILLed node cannot). Only for a process known to be gone.
fn record_exit(w: &World, i: usize, p: &crate::timeline::ProcessId) {
    let exited = w
        .events()
        .iter()
        .any(|e| e.event == EventKind::Exit && e.process() == *p);
    if !exited {
        let event =
            TimelineEvent::now_for(p, EventKind::Exit, "killed (SIGKILL, recorded by the chaos soak)");
        if let Err(e) = TimelineWriter::open(&w.pods[i].timeline).and_then(|mut t| t.append(&event)) {
            say(&format!(
                "{}: cannot record its node's death: {e}",
                w.pods[i].name
            ));
        }
    }
}

/// Starts pod `i`'s node again once its sidecar has written the boot credentials (bounded:
/// without them it starts anyway, non-producing).
/// Returns true when the boot credentials were still missing after [`BOOT_WAIT`].
async fn restart_node(w: &mut World, i: usize) -> bool {
    let kes = w.pods[i].target().join("kes.skey");
    let late = crate::world::wait_for(BOOT_WAIT, || {
        let kes = kes.clone();
        async move { kes.exists() }
    })
    .await
    .is_err();
    if late {
        say(&format!(
            "{}: no boot credentials {} s after its node died; starting it anyway (a kubelet back-off)",
            w.pods[i].name,
            BOOT_WAIT.as_secs()
        ));
    }
    if let Err(e) = w.start_node(i).await {
        say(&format!("{}: restarting its node: {e}", w.pods[i].name));
    }
    late
}

/// Writes credential set `counter` into `dir` the way kubelet updates a Secret volume: the new
/// files in a fresh directory, then one atomic rename of the `..data` symlink the visible names
/// point through. The first call turns the plain files the world wrote into that layout.
pub fn rotate(dir: &std::path::Path, counter: u64) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    const FILES: [&str; 3] = ["kes.skey", "vrf.skey", "node.cert"];
    let version = dir.join(format!("..v{counter}"));
    std::fs::create_dir_all(&version)?;
    let creds = TestCredentials::new(counter, mainnet_kes_period_now());
    write_credentials(&version, &creds).map_err(std::io::Error::other)?;
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(format!("..v{counter}"), &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    for f in FILES {
        let visible = dir.join(f);
        let is_link = std::fs::symlink_metadata(&visible).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            let tmp = dir.join(format!(".{f}.link"));
            let _ = std::fs::remove_file(&tmp);
            symlink(format!("..data/{f}"), &tmp)?;
            std::fs::rename(&tmp, &visible)?;
        }
    }
    // The previous version is no longer referenced.
    if counter > 1 {
        let _ = std::fs::remove_dir_all(dir.join(format!("..v{}", counter - 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_a_function_of_the_seed() {
        assert_eq!(plan(7, 1, 50), plan(7, 1, 50));
        assert_ne!(plan(7, 1, 50), plan(8, 1, 50));
    }

    #[test]
    fn an_opening_sets_the_first_kinds_and_moves_nothing_else() {
        let opening = [FaultKind::LinkCut, FaultKind::WatchDrop, FaultKind::GuardKill];
        let free = plan(5, 2, 20);
        let opened = plan_opening(5, 2, &opening, 20);
        for (i, (a, b)) in free.iter().zip(&opened).enumerate() {
            match opening.get(i) {
                Some(kind) => assert_eq!(b.kind, *kind, "fault {i}"),
                None => assert_eq!(a, b, "fault {i} after the opening"),
            }
            assert_eq!(a.pause, b.pause, "fault {i}: the calm is drawn all the same");
        }
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_name(k.name()), Some(k));
        }
        assert_eq!(FaultKind::from_name("meteor"), None);
    }

    #[test]
    fn a_long_schedule_draws_every_kind() {
        let one: std::collections::BTreeSet<FaultKind> = plan(1, 1, 400).iter().map(|f| f.kind).collect();
        assert_eq!(one.len(), FaultKind::ALL.len() - 1, "{one:?}");
        assert!(!one.contains(&FaultKind::LinkCut), "no link to cut in one region");
        let two: std::collections::BTreeSet<FaultKind> = plan(1, 2, 400).iter().map(|f| f.kind).collect();
        assert_eq!(two.len(), FaultKind::ALL.len(), "{two:?}");
        for f in plan(3, 2, 400) {
            if let Target::Pod { region, index } = f.target {
                assert!(region < 2 && index < PODS, "{f:?}");
            }
        }
    }

    fn timings() -> Timings {
        Timings::of(&WorldOptions::realistic(PathBuf::from("x"), PODS), 1)
    }

    #[test]
    fn gap_bounds_grow_with_what_the_fault_holds_up() {
        let t = timings();
        let f = |kind, hold_ms, slow_ms| FaultPlan {
            kind,
            target: Target::Leader { fallback: 0 },
            hold: Duration::from_millis(hold_ms),
            slow_start: Duration::from_millis(slow_ms),
            latency: (Duration::ZERO, Duration::ZERO),
            pause: Duration::ZERO,
        };
        // 4 s lease + 2 x 0.5 s retry + 1.5 s reload + 4 s allowance.
        let base = Duration::from_millis(10_500);
        assert_eq!(gap_bound(&f(FaultKind::SidecarKill, 3000, 0), &t), base);
        assert_eq!(gap_bound(&f(FaultKind::ApiBlackhole, 9000, 0), &t), base);
        assert_eq!(
            gap_bound(&f(FaultKind::GuardStop, 2000, 0), &t),
            base + Duration::from_secs(2)
        );
        // Restart delay 1 s + handler 150 ms + replay 300 ms + one more reload 1.5 s.
        assert_eq!(
            gap_bound(&f(FaultKind::NodeKill, 1000, 0), &t),
            base + Duration::from_millis(2950)
        );
        assert_eq!(
            gap_bound(&f(FaultKind::NodeSlowStart, 1000, 4000), &t),
            base + Duration::from_millis(6800)
        );
        let two = Timings { regions: 2, ..t };
        assert_eq!(
            gap_bound(&f(FaultKind::SidecarKill, 0, 0), &two),
            base + Duration::from_millis(4500)
        );
    }

    #[test]
    fn rotation_swaps_the_whole_set_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::creds::write_test_credentials(dir.path(), 1, 0).expect("creds");
        let before = std::fs::read(dir.path().join("node.cert")).expect("cert");
        rotate(dir.path(), 2).expect("rotate");
        let after = std::fs::read(dir.path().join("node.cert")).expect("cert");
        assert_ne!(before, after, "a new certificate");
        assert!(
            std::fs::symlink_metadata(dir.path().join("kes.skey"))
                .expect("kes")
                .file_type()
                .is_symlink()
        );
        rotate(dir.path(), 3).expect("rotate again");
        assert!(!dir.path().join("..v2").exists(), "the old version is removed");
        for f in ["kes.skey", "vrf.skey", "node.cert"] {
            assert!(
                std::fs::read(dir.path().join(f)).is_ok(),
                "{f} readable through ..data"
            );
        }
    }

    fn ev(t_ms: u64, node: &str, kind: EventKind) -> TimelineEvent {
        TimelineEvent {
            t_unix_ns: t_ms * 1_000_000,
            pid: 1,
            proc_start_ns: 1,
            ..TimelineEvent::now(node, kind, "")
        }
    }

    fn report_with(steps: Vec<(u64, FaultKind, f64)>) -> ChaosReport {
        ChaosReport {
            seed: 1,
            regions: 1,
            seconds: 0.0,
            faults: BTreeMap::new(),
            overlap_ms: 0.0,
            max_forgers: 0,
            longest_gap_ms: 0.0,
            longest_gap_after: None,
            longest_gap_bound_ms: 0.0,
            forging_without_lease: 0,
            forgers: Vec::new(),
            timings: timings(),
            steps: steps
                .into_iter()
                .enumerate()
                .map(|(n, (t_ms, kind, bound_ms))| Step {
                    n: n + 1,
                    plan: FaultPlan {
                        kind,
                        target: Target::Leader { fallback: 0 },
                        hold: Duration::ZERO,
                        slow_start: Duration::ZERO,
                        latency: (Duration::ZERO, Duration::ZERO),
                        pause: Duration::ZERO,
                    },
                    hit: "a".into(),
                    injected: true,
                    hit_forger: true,
                    t_unix_ns: t_ms * 1_000_000,
                    bound_ms,
                    max_gap_ms: 0.0,
                    overlap_ms: 0.0,
                    recovered_ms: Some(0.0),
                    late_boots: 0,
                })
                .collect(),
            violations: Vec::new(),
        }
    }

    fn held(holder: &str, from_ms: u64) -> LeaseRecord {
        LeaseRecord {
            lease: "l".into(),
            holder: holder.into(),
            acquire_unix_ns: from_ms * 1_000_000,
            observed_unix_ns: from_ms * 1_000_000,
        }
    }

    #[test]
    fn the_judge_attributes_each_gap_to_the_fault_before_it() {
        let events = [
            ev(0, "a", EventKind::Start),
            ev(0, "b", EventKind::Start),
            ev(100, "a", EventKind::ForgingOn),
            ev(1000, "a", EventKind::ForgingOff), // fault 1 at 900: gap 1000..3000
            ev(3000, "b", EventKind::ForgingOn),
            ev(5000, "b", EventKind::ForgingOff), // fault 2 at 4000: gap 5000..5500
            ev(5500, "a", EventKind::ForgingOn),
            ev(9000, "a", EventKind::Exit),
            ev(9000, "b", EventKind::Exit),
        ];
        let leases = [held("a", 50), held("b", 2900), held("a", 5400)];
        let mut r = report_with(vec![
            (900, FaultKind::SidecarKill, 2500.0),
            (4000, FaultKind::NodeKill, 400.0),
        ]);
        judge(&mut r, &events, &leases, 8_000_000_000, u64::MAX);
        assert_eq!(r.steps[0].max_gap_ms, 2000.0);
        assert_eq!(r.steps[1].max_gap_ms, 500.0);
        assert_eq!(r.longest_gap_ms, 2000.0);
        assert_eq!(r.overlap_ms, 0.0);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("#2 node_kill"), "{:?}", r.violations);
        assert!(!r.passed());
    }

    #[test]
    fn overlap_and_forging_without_a_lease_fail_the_verdict() {
        let events = [
            ev(0, "a", EventKind::Start),
            ev(0, "b", EventKind::Start),
            ev(100, "a", EventKind::ForgingOn),
            ev(200, "b", EventKind::ForgingOn), // b never held the lease
            ev(300, "a", EventKind::ForgingOff),
        ];
        let mut r = report_with(vec![(150, FaultKind::WatchDrop, 10_000.0)]);
        judge(&mut r, &events, &[held("a", 50)], 400_000_000, u64::MAX);
        assert_eq!(r.overlap_ms, 100.0);
        assert_eq!(r.forging_without_lease, 1);
        assert!(
            r.violations.iter().any(|v| v.starts_with("S1: 100.000 ms")),
            "{:?}",
            r.violations
        );
        assert!(
            r.violations.iter().any(|v| v.contains("held no Lease")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn an_empty_timeline_fails_the_verdict() {
        let mut r = report_with(vec![]);
        judge(&mut r, &[], &[], 1, u64::MAX);
        assert!(!r.passed());
        assert!(r.violations[0].contains("no verdict"), "{:?}", r.violations);
    }
}
