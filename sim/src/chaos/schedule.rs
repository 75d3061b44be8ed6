//! The fault schedule: the kinds of fault, whom they hit ([`Target`]), the draw from the seed
//! ([`plan`]), and the longest interval without a forger each may cause ([`gap_bound`]).

use std::time::Duration;

use serde::Serialize;

use super::PODS;
use crate::node::SplitMix64;
use crate::world::WorldOptions;

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
    /// Every kind, in a fixed order (the draw indexes it): the process faults first.
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

    /// The process faults (a sidecar, guard or node killed, stopped, restarted or slow to
    /// start): the kinds one cluster on its own is soaked with.
    pub const PROCESS: &[FaultKind] = Self::ALL.split_at(8).0;

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
/// ([`ChaosOptions::opening`](super::ChaosOptions::opening)).
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
    pub(super) fn of(o: &WorldOptions, regions: usize) -> Self {
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
