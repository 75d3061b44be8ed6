//! [`State`]: everything the Decider knows, as plain data. Changed only by
//! [`apply`](super::apply); read by [`decide`](fn@super::decide). No I/O.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::LeaseTiming;
use crate::crd::{CLAIM_PROTOCOL, CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState};
use crate::lease::{LeaseObservation, Mono};
use crate::quorum::Standing;

use super::WallTime;
use super::reason::is_contender_code;

/// Default bound on a peer heartbeat's age for it to count as evidence: a few retry periods.
pub const DEFAULT_HEARTBEAT_FRESH_FOR: Duration = Duration::from_secs(10);
/// Default quiet window before one of our leader slots (`HANDOVER_QUIET`).
pub const DEFAULT_HANDOVER_QUIET: Duration = Duration::from_secs(60);
/// Default slot length (mainnet, preprod, preview): a held handover goes ahead once the slot
/// it waited for has ended.
pub const DEFAULT_SLOT_LENGTH: Duration = Duration::from_secs(1);

/// Settings that do not change while the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeciderConfig {
    /// This cluster's name, as its peers know it (`CLUSTER_IDENTIFIER`); also the tie-breaker.
    pub cluster: String,
    /// `ENABLE_CLUSTER_MANAGEMENT`: off means the reference's single-cluster mode (only the
    /// local lease matters, peers are ignored).
    pub cluster_management: bool,
    /// The peer clusters configured (peer kubeconfigs). Each starts unobserved, which blocks
    /// a takeover until it is read (silence is never evidence).
    pub peers: Vec<String>,
    /// Whether the node must report synced before it may forge.
    pub require_sync: bool,
    /// A peer's "not forging" status counts as evidence only if read at most this long ago.
    pub heartbeat_fresh_for: Duration,
    /// Our lease timing; its duration is the fallback for peer Leases that omit theirs.
    pub lease: LeaseTiming,
    /// `HANDOVER_QUIET`: a planned handover is held while one of our leader slots starts
    /// within this (see [`State::leader_slots`]).
    pub handover_quiet: Duration,
    /// The network's slot length: a held handover waits until the slot has ended.
    pub slot_length: Duration,
    /// Quorum mode (`QUORUM_PARTICIPANTS`, docs/quorum.md): forging also needs a strict
    /// majority of the forge tickets, with its forge deadline ahead ([`State::tickets`]); the
    /// peers' evidence is not needed then (the majority is the proof that no other region forges).
    pub quorum: bool,
    /// `QUORUM_BREAK_GLASS`: with quorum mode on, an override forcing `Enabled` skips the
    /// majority and falls back to cluster management's own rule. Loud and documented: two
    /// regions forging are then the operator's responsibility.
    pub quorum_break_glass: bool,
}

impl DeciderConfig {
    /// A single-cluster configuration (cluster management off) with defaults.
    pub fn single_cluster(cluster: impl Into<String>) -> DeciderConfig {
        DeciderConfig {
            cluster: cluster.into(),
            cluster_management: false,
            peers: Vec::new(),
            require_sync: false,
            heartbeat_fresh_for: DEFAULT_HEARTBEAT_FRESH_FOR,
            lease: LeaseTiming::default(),
            handover_quiet: DEFAULT_HANDOVER_QUIET,
            slot_length: DEFAULT_SLOT_LENGTH,
            quorum: false,
            quorum_break_glass: false,
        }
    }

    /// A multi-cluster configuration (cluster management on) with defaults.
    pub fn multi_cluster(
        cluster: impl Into<String>,
        peers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        DeciderConfig {
            cluster_management: true,
            peers: peers.into_iter().map(Into::into).collect(),
            ..DeciderConfig::single_cluster(cluster)
        }
    }
}

/// The local lease as the LeaseElector reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalLease {
    /// Not held by us; `holder` is who holds it, if known.
    NotHeld {
        /// The current holder, if any.
        holder: Option<String>,
    },
    /// Held by us until `deadline` (last successful renew *sent* + renew deadline).
    Held {
        /// Forging must have stopped by then (S1, S2).
        deadline: Mono,
    },
}

impl LocalLease {
    /// Our renew deadline, when we hold the lease.
    pub fn deadline(&self) -> Option<Mono> {
        match self {
            LocalLease::Held { deadline } => Some(*deadline),
            LocalLease::NotHeld { .. } => None,
        }
    }

    /// True when we hold it and `now` is before the deadline.
    pub fn is_current(&self, now: Mono) -> bool {
        self.deadline().is_some_and(|d| now < d)
    }
}

/// What the NodeWatcher reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeState {
    /// The node process runs (socket present, PID found).
    pub up: bool,
    /// Synced, when known (only consulted with `require_sync`).
    pub synced: Option<bool>,
}

/// What the CredentialKeeper reported about the source credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// Not validated yet.
    #[default]
    Unknown,
    /// Present and valid.
    Valid,
    /// Missing or invalid.
    Invalid {
        /// What is wrong (no secret material).
        why: String,
    },
}

/// This cluster's policy (its CardanoForgeCluster).
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterPolicy {
    /// Cluster management is off: the cluster condition is simply true.
    Unmanaged,
    /// Management is on, but the object has not been read yet (fail closed).
    Pending,
    /// Management is on, and the object is unreadable, missing or invalid (fail closed).
    Unavailable {
        /// What is wrong.
        why: String,
    },
    /// The spec as last read.
    Spec {
        /// `spec`.
        spec: Box<CardanoForgeClusterSpec>,
        /// `metadata.generation` of that spec.
        generation: Option<i64>,
    },
}

/// Health probing: the count that drives the penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Failed probes in a row; a success resets it.
    pub consecutive_failures: u32,
}

/// Our own published `status.forgingEnabled` (the *claim*: docs/architecture.md, "Regions"): peers
/// must not start while it is true; we start only after it is confirmed written and every peer was
/// read afterwards (a flag protocol: two clusters that each write their flag, then read the
/// other's, cannot both read "false").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnStatus {
    /// The `forgingEnabled` our last confirmed status write carried (`None`: none yet).
    pub published: Option<bool>,
    /// When the write that turned the claim on was confirmed (its response arrived); `None`
    /// while the claim is off or unconfirmed. Evidence about peers counts only if read after.
    pub claim_at: Option<Mono>,
}

/// The last status of a peer cluster we read, reduced to what the decision uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// `status.effectiveState` (`None`: never written).
    pub effective_state: Option<ForgeState>,
    /// `status.effectivePriority`.
    pub effective_priority: Option<i32>,
    /// `status.forgingEnabled`: its claim; `None` counts as "may be forging".
    pub forging_enabled: Option<bool>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// Its `metadata.generation` at the same read.
    pub generation: Option<i64>,
    /// Whether its `status.reason` says it still contends ([`is_contender_code`]).
    pub contender: bool,
    /// `status.claimProtocol` is at least [`CLAIM_PROTOCOL`]: its writer claims before it forges,
    /// so its `forgingEnabled: false` is evidence (the reference sidecar's is not).
    pub claims_first: bool,
    /// When the (consistent) read that returned this was *sent*: the heartbeat.
    pub read_at: Mono,
}

impl PeerStatus {
    /// Reduces a peer's CRD status read by a request sent at `read_at`.
    pub fn from_crd(
        status: Option<&CardanoForgeClusterStatus>,
        generation: Option<i64>,
        read_at: Mono,
    ) -> Self {
        PeerStatus {
            effective_state: status.and_then(|s| s.effective_state),
            effective_priority: status.and_then(|s| s.effective_priority),
            forging_enabled: status.and_then(|s| s.forging_enabled),
            observed_generation: status.and_then(|s| s.observed_generation),
            generation,
            contender: is_contender_code(status.and_then(|s| s.reason.as_deref())),
            claims_first: status
                .and_then(|s| s.claim_protocol)
                .is_some_and(|p| p >= CLAIM_PROTOCOL),
            read_at,
        }
    }

    /// True when the status was written after the peer's latest spec.
    pub fn is_current(&self) -> bool {
        self.generation.is_some() && self.observed_generation == self.generation
    }
}

/// A peer's local Lease as read from its API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLease {
    /// The record and when we first saw it (arrival of that response).
    pub observation: LeaseObservation,
    /// When the latest read that returned the same record was *sent*.
    pub read_at: Mono,
}

/// Whether a peer's API server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// No read attempt reported yet (just started): it may be forging.
    #[default]
    Unknown,
    /// The last read succeeded.
    Reachable,
    /// The PeerWatcher reported it unreachable (its last status is kept).
    Unreachable,
}

/// Everything we know about one peer cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerView {
    /// Whether its API server answers.
    pub reach: Reach,
    /// Its last status read (kept while unreachable: its last word still counts).
    pub status: Option<PeerStatus>,
    /// Its local Lease, when read.
    pub lease: Option<PeerLease>,
    /// Since when it has been unreachable without a successful read in between.
    pub unreachable_since: Option<Mono>,
    /// Since when every read of its status said `forgingEnabled: false` without the claim
    /// protocol marker (a peer still running the reference sidecar).
    pub unmarked_since: Option<Mono>,
}

/// Everything the Decider knows. Built by [`State::new`], changed by [`apply`](super::apply).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Fixed settings.
    pub config: DeciderConfig,
    /// Our local lease.
    pub lease: LocalLease,
    /// The node.
    pub node: NodeState,
    /// The credentials.
    pub credentials: Credentials,
    /// Our CardanoForgeCluster.
    pub cluster: ClusterPolicy,
    /// Health probing.
    pub health: Health,
    /// Peers by cluster name (sorted: iteration order is deterministic).
    pub peers: BTreeMap<String, PeerView>,
    /// Our published claim.
    pub own: OwnStatus,
    /// Whether the last committed decision forges: a cluster already forging keeps forging
    /// while it stays the winner without re-proving its peers (they cannot have started while
    /// our claim stood); see [`Event::Committed`](super::Event::Committed).
    pub forging: bool,
    /// The start times of our leader slots (`LEADER_SCHEDULE`), sorted; empty when no schedule
    /// is configured or it could not be read (then nothing is ever held). Wall time, like the
    /// schedule itself.
    pub leader_slots: Vec<WallTime>,
    /// Quorum mode: our standing on the forge tickets as the TicketKeeper last reported it
    /// (`None`: nothing reported yet, so no majority).
    pub tickets: Option<Standing>,
}

impl State {
    /// Quorum mode: the forge deadline of the majority we hold, if it is still ahead at `now`.
    pub fn majority_until(&self, now: Mono) -> Option<Mono> {
        self.tickets
            .as_ref()
            .and_then(|t| t.until)
            .filter(|until| now < *until)
    }

    /// The state at start-up: nothing known, so [`decide`](fn@super::decide) says standby.
    pub fn new(config: DeciderConfig) -> State {
        let (cluster, peers) = if config.cluster_management {
            let peers = config
                .peers
                .iter()
                .filter(|p| **p != config.cluster)
                .map(|p| (p.clone(), PeerView::default()))
                .collect();
            (ClusterPolicy::Pending, peers)
        } else {
            (ClusterPolicy::Unmanaged, BTreeMap::new())
        };
        State {
            config,
            lease: LocalLease::NotHeld { holder: None },
            node: NodeState::default(),
            credentials: Credentials::Unknown,
            cluster,
            health: Health::default(),
            peers,
            own: OwnStatus::default(),
            forging: false,
            leader_slots: Vec::new(),
            tickets: None,
        }
    }
}
