//! [`Event`]: the facts actors report to the Decider, and [`apply`], the pure and total function
//! that folds one into the [`State`]. No I/O.
use crate::crd::{CardanoForgeClusterSpec, CardanoForgeClusterStatus};
use crate::lease::{LeaseObservation, LeaseRecord, Mono};
use crate::quorum::Standing;

use super::WallTime;
use super::state::{ClusterPolicy, Credentials, LocalLease, PeerLease, PeerStatus, PeerView, Reach, State};

/// A fact reported to the Decider (past tense or state nouns: docs/architecture.md, "Conventions").
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// LeaseElector → Decider: we acquired the local lease; forging must stop by `deadline`.
    LeaseAcquired {
        /// Acquire request sent + renew deadline ([`crate::lease::HeldLease`]).
        deadline: Mono,
    },
    /// LeaseElector → Decider: a renewal succeeded; the deadline moves to `deadline`. Ignored
    /// unless we hold the lease (a late answer after `LeaseLost` must not revive it).
    LeaseRenewed {
        /// Renew request sent + renew deadline.
        deadline: Mono,
    },
    /// LeaseElector → Decider: we do not hold the lease (lost, released, or someone else's).
    LeaseLost {
        /// The holder now, if known.
        holder: Option<String>,
    },
    /// ClusterWatcher → Decider: our CardanoForgeCluster, as read.
    ClusterSpecChanged {
        /// Its spec.
        spec: Box<CardanoForgeClusterSpec>,
        /// Its `metadata.generation`.
        generation: Option<i64>,
    },
    /// ClusterWatcher → Decider: our CardanoForgeCluster is missing, unreadable or invalid.
    ClusterSpecUnavailable {
        /// What is wrong.
        why: String,
    },
    /// Decider → itself: the ClusterWatcher answered our `WriteStatus` with success, so the
    /// status write is confirmed. Ignored while we do not hold the lease.
    StatusWritten {
        /// The `forgingEnabled` it carried.
        forging_enabled: bool,
        /// When its response arrived.
        at: Mono,
    },
    /// HealthProber → Decider: one probe's outcome.
    HealthResult {
        /// Whether it succeeded.
        ok: bool,
    },
    /// HealthProber → Decider: probing was turned off; the count (and penalty) is cleared.
    HealthReset,
    /// NodeWatcher → Decider: the node runs.
    NodeUp,
    /// NodeWatcher → Decider: the node is gone.
    NodeDown,
    /// NodeWatcher → Decider: the node's sync state.
    NodeSync {
        /// Whether it is synced (tip recent enough).
        synced: bool,
    },
    /// CredentialKeeper → Decider: the source credentials are present and valid.
    CredentialsValid,
    /// CredentialKeeper → Decider: the source credentials are missing or invalid.
    CredentialsInvalid {
        /// What is wrong (no secret material).
        why: String,
    },
    /// PeerWatcher → Decider: a peer's CardanoForgeCluster was read.
    PeerObserved {
        /// The peer cluster.
        cluster: String,
        /// Its status (`None`: never written).
        status: Option<Box<CardanoForgeClusterStatus>>,
        /// Its `metadata.generation`.
        generation: Option<i64>,
        /// When the *consistent read* (GET/list) that returned it was *sent*; never the arrival
        /// of a watch event (a watch may deliver old news). It is the heartbeat, and it must be
        /// after our claim for the status to count as evidence.
        read_at: Mono,
    },
    /// PeerWatcher → Decider: a peer's API server does not answer (its last status is kept).
    PeerUnreachable {
        /// The peer cluster.
        cluster: String,
        /// When the failed read was sent: the first of a run starts the peer's silence.
        at: Mono,
    },
    /// PeerWatcher → Decider: a peer's local Lease was read.
    PeerLeaseObserved {
        /// The peer cluster.
        cluster: String,
        /// The Lease record.
        record: LeaseRecord,
        /// When the read request was sent.
        sent_at: Mono,
        /// When its response arrived (starts the observation clock of a changed record).
        received_at: Mono,
    },
    /// Decider → itself: the decision with this `forge` was adopted and its plan sent.
    Committed {
        /// Whether it forges.
        forge: bool,
    },
    /// NodeSignaller → Decider: the node guard fenced the node (its permit lapsed, or it saw
    /// forging without a permit): whatever the decision in force says, the node does not forge
    /// now, and a forging decision must install and reload again (L1).
    NodeFenced,
    /// ChainWatcher → Decider: our leader schedule was (re)read; `slots` are the start times
    /// of our leader slots (any order). An unreadable schedule is reported as empty: a
    /// schedule only ever holds a planned handover back, so not knowing it holds nothing.
    LeaderScheduleChanged {
        /// When each of our leader slots starts.
        slots: Vec<WallTime>,
    },
    /// TicketKeeper → Decider (quorum mode): our standing on the forge tickets changed (a
    /// ticket taken, renewed, lost or released). Its `until` is the forge deadline.
    TicketsChanged {
        /// The standing, computed by the keeper at the instant it sends this.
        standing: Standing,
    },
    /// Nothing happened, time passed (a timer set from `next_wake`).
    Tick,
}

/// Folds `event` into `state`. Pure and total: every event is accepted in every state.
pub fn apply(mut state: State, event: Event) -> State {
    match event {
        Event::LeaseAcquired { deadline } => {
            if matches!(state.lease, LocalLease::NotHeld { .. }) {
                // A new tenure claims afresh: in between, another pod may have written our
                // cluster's status.
                state.own.claim_at = None;
            }
            state.lease = LocalLease::Held { deadline };
        }
        Event::LeaseRenewed { deadline } => {
            if let LocalLease::Held { deadline: d } = &mut state.lease {
                *d = (*d).max(deadline);
            }
        }
        Event::LeaseLost { holder } => {
            state.lease = LocalLease::NotHeld { holder };
            // Our process's claim is gone with the lease: a new holder claims afresh.
            state.own.claim_at = None;
        }
        Event::ClusterSpecChanged { spec, generation } => {
            if state.config.cluster_management {
                state.cluster = ClusterPolicy::Spec { spec, generation };
            }
        }
        Event::ClusterSpecUnavailable { why } => {
            if state.config.cluster_management {
                state.cluster = ClusterPolicy::Unavailable { why };
            }
        }
        // A confirmation arriving after we lost the lease says nothing about the status now.
        Event::StatusWritten { .. } if matches!(state.lease, LocalLease::NotHeld { .. }) => {}
        Event::StatusWritten { forging_enabled, at } => {
            if forging_enabled {
                if state.own.claim_at.is_none() {
                    state.own.claim_at = Some(at);
                }
            } else {
                state.own.claim_at = None;
            }
            state.own.published = Some(forging_enabled);
        }
        Event::HealthResult { ok } => {
            state.health.consecutive_failures = if ok {
                0
            } else {
                state.health.consecutive_failures.saturating_add(1)
            };
        }
        Event::HealthReset => state.health.consecutive_failures = 0,
        Event::NodeUp => state.node.up = true,
        Event::NodeDown => {
            state.node.up = false;
            state.node.synced = None;
        }
        Event::NodeSync { synced } => state.node.synced = Some(synced),
        Event::CredentialsValid => state.credentials = Credentials::Valid,
        Event::CredentialsInvalid { why } => state.credentials = Credentials::Invalid { why },
        Event::PeerObserved {
            cluster,
            status,
            generation,
            read_at,
        } => {
            if let Some(view) = peer_mut(&mut state, cluster) {
                view.reach = Reach::Reachable;
                view.unreachable_since = None;
                let st = PeerStatus::from_crd(status.as_deref(), generation, read_at);
                if st.forging_enabled == Some(false) && !st.claims_first {
                    view.unmarked_since.get_or_insert(read_at);
                } else {
                    view.unmarked_since = None;
                }
                view.status = Some(st);
            }
        }
        Event::PeerUnreachable { cluster, at } => {
            if let Some(view) = peer_mut(&mut state, cluster) {
                view.reach = Reach::Unreachable;
                view.unreachable_since.get_or_insert(at);
            }
        }
        Event::PeerLeaseObserved {
            cluster,
            record,
            sent_at,
            received_at,
        } => {
            if let Some(view) = peer_mut(&mut state, cluster) {
                let observation = LeaseObservation::observe(
                    view.lease.as_ref().map(|l| &l.observation),
                    record,
                    None,
                    received_at,
                );
                view.lease = Some(PeerLease {
                    observation,
                    read_at: sent_at,
                });
            }
        }
        Event::Committed { forge } => state.forging = forge,
        // Not forging now: a restart re-proves its peers like any start.
        Event::NodeFenced => state.forging = false,
        Event::LeaderScheduleChanged { mut slots } => {
            slots.sort_unstable();
            slots.dedup();
            state.leader_slots = slots;
        }
        Event::TicketsChanged { standing } => state.tickets = Some(standing),
        Event::Tick => {}
    }
    state
}

/// The view of `cluster`, created on first sight (an unconfigured peer only adds caution);
/// `None` for ourselves or with cluster management off.
fn peer_mut(state: &mut State, cluster: String) -> Option<&mut PeerView> {
    if !state.config.cluster_management || cluster == state.config.cluster {
        return None;
    }
    Some(state.peers.entry(cluster).or_default())
}
