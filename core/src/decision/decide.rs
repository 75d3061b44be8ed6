//! [`decide`]: from what the Decider knows and the time, whether to forge and why
//! (docs/architecture.md, "Decision engine" and "Regions"). Total and deterministic; fail-safe is
//! the fall-through: every missing input yields standby with its own [`Reason`]. No I/O.
//!
//! # The cross-cluster rule (docs/architecture.md, "Regions")
//!
//! Among *eligible* clusters (ours, and every peer that is reachable, whose status says it is
//! not `Disabled` and whose status reason says it still contends) the winner has the lowest
//! `(rank, effective priority, name)`, where `Enabled` ranks before `Priority-based`. A
//! `Priority-based` cluster that is not the winner yields. The winner does not simply start:
//! it first publishes its claim (`status.forgingEnabled: true`, [`Decision::claim`]) and starts
//! only when that write is confirmed and *every* peer, read after the confirmation and
//! recently, shows positive evidence that it does not forge: its status says
//! `forgingEnabled: false` and was written after its latest spec (`observedGeneration ==
//! metadata.generation`), or its local Lease is vacant or has gone unrenewed for its duration on
//! our clock. A status counts only when it carries the claim protocol marker
//! (`status.claimProtocol`, [`CLAIM_PROTOCOL`](crate::crd::CLAIM_PROTOCOL)): a peer still running
//! the reference sidecar does not claim before it forges, so its `forgingEnabled: false` proves
//! nothing and only its Lease can (it waits as "awaiting peer confirmation", never starts on it;
//! `Enabled` skips it once it has said so for longer than its Lease duration, as it skips a
//! peer unreachable that long).
//! Silence (an unreachable or never-read peer) is never evidence. This holds in both
//! directions: a better cluster coming back waits for the worse one that took over to confirm
//! it stopped (failback without overlap).
//!
//! Writing the claim before reading the peers is what makes the evidence sound (S1): of two
//! clusters that both write their claim and then read the other's, at least one reads `true`.
//! A cluster already forging ([`State::forging`]) keeps forging while it remains the winner
//! without re-proving its peers: none of them can have started while its claim stood, so a peer
//! region going silent does not stop the forging one.
//!
//! `Enabled` (or an override forcing it) forges regardless of priorities, but still waits for
//! each peer to confirm it does not forge (a peer not yet tried at start-up counts: it may be
//! forging). A peer that has stayed unreachable, with no successful read, for longer than its
//! Lease duration is skipped, because that is what an operator's override during a region
//! outage is for (and then two forgers are the operator's responsibility, as the CRD
//! documents); one failed read is never enough.
use std::time::Duration;

use jiff::Timestamp;

use crate::crd::{DEFAULT_PRIORITY, ForgeState};
use crate::lease::Mono;

use super::priority::{DEFAULT_FAILURE_THRESHOLD, Effective, OverrideStatus, effective, health_penalty};
use super::quorum_gate::quorum_gate;
use super::reason::Reason;
use super::state::{ClusterPolicy, Credentials, LocalLease, PeerView, Reach, State};

/// What the Decider should make true now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The node forges (credentials installed, node signalled).
    pub forge: bool,
    /// Our status publishes `forgingEnabled: true`: set from the moment we mean to forge until
    /// we have stopped, so peers never start while we might forge. Implies `holds_lease`.
    pub claim: bool,
    /// The LeaseElector contends for (acquires and renews) the local lease: the node is up
    /// (and synced where configured) and the credentials are valid. Also while the cluster is
    /// `Disabled`: only the lease holder writes the cluster status, and peers need that status
    /// (`forgingEnabled: false` at the current generation) as evidence before they take over;
    /// holding the lease without forging also keeps the CardanoLeader status meaningful.
    pub contend: bool,
    /// We hold the local lease and its renew deadline has not passed. Only then may we write
    /// the cluster status (a stale writer must never publish `forgingEnabled: false` over a
    /// new leader's claim).
    pub holds_lease: bool,
    /// The state in force (status `effectiveState`).
    pub effective_state: ForgeState,
    /// The priority in force (status `effectivePriority`), lower wins.
    pub effective_priority: i32,
    /// Why.
    pub reason: Reason,
    /// `metadata.generation` of the spec this decision was computed from (status
    /// `observedGeneration`): a new generation must be confirmed in status even when nothing
    /// else changed, since peers wait for exactly that confirmation.
    pub observed_generation: Option<i64>,
    /// When this decision could change with no new event (renew deadline, override expiry):
    /// the Decider sets a timer and feeds [`Event::Tick`](super::Event::Tick).
    pub next_wake: Option<Mono>,
    /// Quorum mode: the preference (priority, health, `forgeState`, overrides) says this region
    /// should forge, so its local leader takes the forge tickets it may (docs/quorum.md).
    /// False: it takes nothing new, and releases what it holds once its node's stop is confirmed.
    pub tickets: bool,
    /// Quorum mode: the forge tickets we hold and the participants, as the TicketKeeper last
    /// reported them (status `tickets`); `None` without quorum mode or before its first report.
    pub ticket_count: Option<(usize, usize)>,
}

impl Decision {
    /// The decision in force before the first one: standby, nothing held, `Starting`.
    pub fn initial() -> Decision {
        Decision {
            forge: false,
            claim: false,
            contend: false,
            holds_lease: false,
            effective_state: ForgeState::Disabled,
            effective_priority: DEFAULT_PRIORITY,
            reason: Reason::Starting,
            observed_generation: None,
            next_wake: None,
            tickets: false,
            ticket_count: None,
        }
    }

    pub(super) fn standby(mut self, reason: Reason) -> Decision {
        self.forge = false;
        self.claim = false;
        self.reason = reason;
        self
    }

    pub(super) fn forging(mut self, reason: Reason) -> Decision {
        self.forge = true;
        self.claim = true;
        self.reason = reason;
        self
    }

    fn waiting(mut self, reason: Reason) -> Decision {
        self.forge = false;
        self.claim = true;
        self.reason = reason;
        self
    }
}

/// Decides, at monotonic `now` and wall time `wall` (used only for override `expiresAt`).
/// Forges only when every precondition is proven (S1): node up (and synced where configured),
/// credentials valid, local lease held with `now < deadline` (S1, S2), and the cluster rule
/// (module docs) satisfied.
pub fn decide(s: &State, now: Mono, wall: Timestamp) -> Decision {
    let holds_lease = s.lease.is_current(now);
    let node_ready = s.node.up && (!s.config.require_sync || s.node.synced == Some(true));
    let contend = node_ready && s.credentials == Credentials::Valid;
    let failures = s.health.consecutive_failures;

    let policy: Result<Effective, Reason> = match &s.cluster {
        ClusterPolicy::Unmanaged => Ok(Effective {
            state: ForgeState::Enabled,
            priority: DEFAULT_PRIORITY.saturating_add(health_penalty(failures, DEFAULT_FAILURE_THRESHOLD)),
            override_status: OverrideStatus::Off,
        }),
        ClusterPolicy::Pending => Err(Reason::ClusterSpecUnavailable {
            why: "not read yet".into(),
        }),
        ClusterPolicy::Unavailable { why } => Err(Reason::ClusterSpecUnavailable { why: why.clone() }),
        ClusterPolicy::Spec { spec, .. } => Ok(effective(spec, failures, wall)),
    };
    let (effective_state, effective_priority) = match &policy {
        Ok(e) => (e.state, e.priority),
        Err(_) => (ForgeState::Disabled, DEFAULT_PRIORITY),
    };

    let mut next_wake = if holds_lease { s.lease.deadline() } else { None };
    if let Ok(Effective {
        override_status: OverrideStatus::Active {
            expires_at: Some(t), ..
        },
        ..
    }) = &policy
    {
        let left = Duration::try_from(t.duration_since(wall)).unwrap_or(Duration::ZERO);
        next_wake = earliest(next_wake, Some(now + left));
    }

    let d = Decision {
        forge: false,
        claim: false,
        contend,
        holds_lease,
        effective_state,
        effective_priority,
        reason: Reason::Starting,
        observed_generation: match &s.cluster {
            ClusterPolicy::Spec { generation, .. } => *generation,
            _ => None,
        },
        next_wake,
        tickets: false,
        ticket_count: s
            .tickets
            .as_ref()
            .filter(|_| s.config.quorum)
            .map(|t| (t.held, t.participants)),
    };

    // Local preconditions, most fundamental first.
    if !s.node.up {
        return d.standby(Reason::NodeDown);
    }
    if !node_ready {
        return d.standby(Reason::NodeNotSynced);
    }
    match &s.credentials {
        Credentials::Valid => {}
        Credentials::Unknown => return d.standby(Reason::CredentialsUnknown),
        Credentials::Invalid { why } => return d.standby(Reason::CredentialsInvalid { why: why.clone() }),
    }
    match s.lease {
        LocalLease::NotHeld { .. } => return d.standby(Reason::NoLease),
        // S1/S2: past the renew deadline someone else may get the lease soon.
        LocalLease::Held { .. } if !holds_lease => return d.standby(Reason::RenewDeadlinePassed),
        LocalLease::Held { .. } => {}
    }

    // The cluster condition.
    let eff = match policy {
        Err(reason) => return d.standby(reason),
        Ok(eff) => eff,
    };
    if matches!(s.cluster, ClusterPolicy::Unmanaged) {
        return d.forging(Reason::SingleClusterLeader);
    }
    if let OverrideStatus::Invalid { why } = eff.override_status {
        return d.standby(Reason::OverrideInvalid { why });
    }
    let forced = eff.state_forced();
    // Break glass: quorum mode's majority is skipped for an override forcing `Enabled`.
    let glass = s.config.quorum && s.config.quorum_break_glass && forced && eff.state == ForgeState::Enabled;
    let d = match eff.state {
        ForgeState::Disabled if forced => d.standby(Reason::OverrideDisabled),
        ForgeState::Disabled => d.standby(Reason::ClusterDisabled),
        ForgeState::Enabled => {
            let reason = if forced {
                Reason::OverrideEnabled
            } else {
                Reason::ClusterEnabled
            };
            start_or_wait(s, now, d, reason, true, glass)
        }
        ForgeState::PriorityBased => match better_peer(s, effective_priority, now) {
            Some(peer) => d.standby(Reason::YieldingToPeer {
                peer: peer.to_string(),
            }),
            None => start_or_wait(s, now, d, Reason::GlobalWinner, false, glass),
        },
    };
    let d = hold_planned_handover(s, now, wall, d);
    quorum_gate(s, now, d, glass)
}

/// True for the standby reasons of a *planned* handover: the operator (spec or override) set
/// us `Disabled`, or a better peer is there while we are healthy (a failback, a priority
/// change, a peer forced `Enabled`). A health demotion is an outage, not a plan.
fn is_planned(s: &State, reason: &Reason) -> bool {
    match reason {
        Reason::ClusterDisabled | Reason::OverrideDisabled => true,
        Reason::YieldingToPeer { .. } => s.health.consecutive_failures == 0,
        _ => false,
    }
}

/// The leader slot that holds a planned handover at `wall`: the first of our slots that has
/// not ended yet and starts within `handover_quiet`.
fn holding_slot(s: &State, wall: Timestamp) -> Option<Timestamp> {
    let quiet = jiff::SignedDuration::try_from(s.config.handover_quiet).ok()?;
    let slot = jiff::SignedDuration::try_from(s.config.slot_length).ok()?;
    // `at - wall` compared, never `at + slot` computed: no overflow whatever the schedule says.
    s.leader_slots
        .iter()
        .copied()
        .find(|at| at.duration_since(wall) > -slot)
        .filter(|at| at.duration_since(wall) <= quiet)
}

/// How long until the slot at `slot_at` has ended: `slot_at - wall` (at least minus one slot)
/// plus one slot; never zero.
fn until_slot_ended(s: &State, wall: Timestamp, slot_at: Timestamp) -> Duration {
    Duration::try_from(slot_at.duration_since(wall))
        .map_or_else(
            |_| {
                s.config
                    .slot_length
                    .saturating_sub(Duration::try_from(wall.duration_since(slot_at)).unwrap_or_default())
            },
            |ahead| ahead + s.config.slot_length,
        )
        .max(Duration::from_millis(1))
}

/// A SIGTERM handover held past an imminent leader slot (docs/cardano.md): while we forge and
/// one of our slots starts within `handover_quiet`, the instant its slot has ended and the
/// shutdown may stop forging; `None` when nothing holds it. The caller bounds the hold by the
/// pod's grace period, and any stop that [`decide`] itself calls for is never held.
pub fn shutdown_hold(s: &State, now: Mono, wall: Timestamp) -> Option<(Mono, Timestamp)> {
    if !s.forging {
        return None;
    }
    let slot_at = holding_slot(s, wall)?;
    Some((now + until_slot_ended(s, wall, slot_at), slot_at))
}

/// Leader-schedule-aware handover (docs/cardano.md): a forging cluster that would stop for a
/// *planned* reason ([`is_planned`]) keeps forging while one of our leader slots starts within
/// `handover_quiet`, and stops once that slot has ended (the wake-up is set for it). Applied
/// only after every local precondition held (node, sync, credentials, a current lease, a
/// readable spec and a valid override), so an unplanned stop or a safety stop is never held;
/// and only when we already forge, so it never starts anything: peers cannot have started
/// while our claim stood.
fn hold_planned_handover(s: &State, now: Mono, wall: Timestamp, d: Decision) -> Decision {
    if d.forge || !s.forging || !is_planned(s, &d.reason) {
        return d;
    }
    let Some(slot_at) = holding_slot(s, wall) else {
        return d;
    };
    let left = until_slot_ended(s, wall, slot_at);
    let mut d = d;
    d.next_wake = earliest(d.next_wake, Some(now + left));
    let planned = Box::new(d.reason.clone());
    d.forging(Reason::HandoverHeld { planned, slot_at })
}

/// Rank of a state in the winner contest: `Enabled` clusters forge regardless of priority, so
/// they come first.
fn rank(state: ForgeState) -> u8 {
    match state {
        ForgeState::Enabled => 0,
        ForgeState::PriorityBased => 1,
        ForgeState::Disabled => 2,
    }
}

/// True when the peer's Lease, read recently, has gone unrenewed for its whole duration: by S2
/// (and S3 with the node guard) none of its pods forges, and none can start without renewing it
/// first, so its last status (say, priority 1) no longer makes it a contender. A vacant Lease
/// counts only once it stayed vacant that long (a release within the region is followed by a
/// new holder in milliseconds).
fn lease_lapsed(s: &State, v: &PeerView, now: Mono) -> bool {
    v.lease.as_ref().is_some_and(|l| {
        let o = &l.observation;
        l.read_at >= o.observed_at + peer_lease_duration(s, v)
            && now.saturating_since(l.read_at) <= s.config.heartbeat_fresh_for
    })
}

/// How long a peer's Lease must stay unrenewed (or a peer stay silent) before it counts as gone:
/// the larger of its record's duration and ours. A released Lease carries 1 s (client-go's
/// choice), and a region whose one replica restarts must not look like a region outage.
pub(super) fn peer_lease_duration(s: &State, v: &PeerView) -> Duration {
    let configured = s.config.lease.duration;
    v.lease.as_ref().map_or(configured, |l| {
        l.observation.duration(&s.config.lease).max(configured)
    })
}

/// When an unreachable peer may be skipped by an `Enabled` cluster: once it has been
/// unreachable, with no successful read since, for longer than its Lease duration. One failed
/// read proves nothing (a blip, an asymmetric partition), and the peer may be forging. The same
/// for a peer whose every read for that long said `forgingEnabled: false` without the claim
/// protocol marker (the reference sidecar, which writes `true` only after it started forging):
/// its status proves nothing, but an override must not wait for it forever.
fn skippable_from(s: &State, v: &PeerView) -> Option<Mono> {
    let since = match v.reach {
        Reach::Unreachable => v.unreachable_since,
        Reach::Reachable => v.unmarked_since,
        Reach::Unknown => None,
    };
    since.map(|t| t + peer_lease_duration(s, v))
}

/// The best eligible peer that beats us (`PriorityBased` at `priority`), if any. A peer whose
/// Lease has lapsed ([`lease_lapsed`]) is not eligible.
fn better_peer(s: &State, priority: i32, now: Mono) -> Option<&str> {
    let me = (
        rank(ForgeState::PriorityBased),
        priority,
        s.config.cluster.as_str(),
    );
    s.peers
        .iter()
        .filter_map(|(name, v)| {
            let st = v
                .status
                .as_ref()
                .filter(|st| v.reach == Reach::Reachable && st.contender && !lease_lapsed(s, v, now))?;
            let state = st.effective_state.filter(|es| *es != ForgeState::Disabled)?;
            // A status without a priority is treated as the best one: yielding is the safe side.
            Some((
                rank(state),
                st.effective_priority.unwrap_or(i32::MIN),
                name.as_str(),
            ))
        })
        .filter(|key| *key < me)
        .min()
        .map(|(_, _, name)| name)
}

/// What we know about whether a peer forges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    /// Proven not forging, read after our claim and recently.
    NotForging,
    /// Reads exist but prove nothing yet (stale generation, stale heartbeat, before our claim,
    /// or a status without the claim protocol marker).
    Unconfirmed,
    /// Its last status says (or may say) it forges.
    ReportsForging,
    /// Unreachable, or never read.
    Silent,
}

/// The evidence about one peer, given our confirmed claim time.
fn evidence(s: &State, v: &PeerView, claim_at: Option<Mono>, now: Mono) -> Evidence {
    let fresh = |read_at: Mono| {
        claim_at.is_some_and(|c| read_at >= c) && now - read_at <= s.config.heartbeat_fresh_for
    };
    if let Some(l) = &v.lease {
        let o = &l.observation;
        // By S2 (and S3 with the node guard) no pod of a cluster whose Lease is vacant or
        // unrenewed for its whole duration forges.
        let lapsed = o.record.is_vacant() || l.read_at >= o.observed_at + peer_lease_duration(s, v);
        if lapsed && fresh(l.read_at) {
            return Evidence::NotForging;
        }
    }
    if v.reach != Reach::Reachable {
        return Evidence::Silent;
    }
    let Some(st) = &v.status else {
        return Evidence::Silent;
    };
    if st.forging_enabled != Some(false) {
        return Evidence::ReportsForging;
    }
    // A writer that does not claim before it forges (the reference sidecar) may forge while its
    // status says false: only its Lease can prove it does not.
    if st.claims_first && st.is_current() && fresh(st.read_at) {
        Evidence::NotForging
    } else {
        Evidence::Unconfirmed
    }
}

/// The winner's (or an `Enabled` cluster's) last step: keep forging if we already do, else
/// start only on positive evidence about every peer (only reachable ones when `enabled`).
///
/// In quorum mode (unless `glass`) the preference alone decides here: the majority of the
/// forge tickets, checked by [`quorum_gate`], is the proof that no other region forges.
fn start_or_wait(
    s: &State,
    now: Mono,
    d: Decision,
    forging_reason: Reason,
    enabled: bool,
    glass: bool,
) -> Decision {
    if s.forging || (s.config.quorum && !glass) {
        return d.forging(forging_reason);
    }
    let claim_at = s.own.claim_at;
    let mut worst: Option<(Evidence, &str)> = None;
    let mut considered = 0usize;
    let mut d = d;
    for (name, v) in &s.peers {
        if enabled && let Some(at) = skippable_from(s, v) {
            // Skipped from the first millisecond after `at`, and woken exactly then: no
            // instant between now and the wake-up decides differently.
            let from = at + Duration::from_millis(1);
            if now >= from {
                continue;
            }
            d.next_wake = earliest(d.next_wake, Some(from));
        }
        considered += 1;
        let e = evidence(s, v, claim_at, now);
        if e != Evidence::NotForging && worst.is_none_or(|(w, _)| e > w) {
            worst = Some((e, name));
        }
    }
    match worst {
        None if considered > 0 && claim_at.is_none() => d.waiting(Reason::AwaitingClaim),
        None => d.forging(forging_reason),
        Some((Evidence::Silent, peer)) => d.waiting(Reason::PeerUnreachable {
            peer: peer.to_string(),
        }),
        Some((Evidence::ReportsForging, peer)) => d.waiting(Reason::AwaitingPeerStop {
            peer: peer.to_string(),
        }),
        Some(_) if claim_at.is_none() => d.waiting(Reason::AwaitingClaim),
        Some((_, peer)) => d.waiting(Reason::AwaitingPeerConfirmation {
            peer: peer.to_string(),
        }),
    }
}

pub(super) fn earliest(a: Option<Mono>, b: Option<Mono>) -> Option<Mono> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
