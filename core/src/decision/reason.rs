//! Why the decision is what it is: one [`Reason`] variant per cause.
//!
//! [`Reason::as_str`] is stable snake_case and of bounded cardinality (no names inside): it is the
//! CRD status `reason`, the log field and the metric label, and peers read it back
//! ([`is_contender_code`]). [`Reason::message`] is for humans and may name peers. No I/O.
use std::fmt;

/// The cause of a decision. Forging variants first, then standby causes in the order `decide`
/// checks them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Forging: cluster management is off and we hold the local lease (the reference's mode).
    SingleClusterLeader,
    /// Forging: `forgeState: Enabled` and we hold the local lease.
    ClusterEnabled,
    /// Forging: an active override forces `Enabled`.
    OverrideEnabled,
    /// Forging: `Priority-based` and this cluster is the global winner with proof that no peer
    /// forges (docs/architecture.md, "Regions").
    GlobalWinner,
    /// Forging: a planned handover (the cause in `planned`: the cluster or an override set
    /// `Disabled`, or a better peer to yield to while we are healthy) is held because one of our
    /// leader slots starts within `HANDOVER_QUIET`; it goes ahead once that slot has ended.
    HandoverHeld {
        /// The standby reason the handover would have had.
        planned: Box<Reason>,
        /// When the leader slot we wait for starts.
        slot_at: jiff::Timestamp,
    },

    /// Standby: the process just started and has established the standby state only.
    Starting,
    /// Standby: shutting down (SIGTERM).
    ShuttingDown,
    /// Standby: the node is not running.
    NodeDown,
    /// Standby: sync checking is configured and the node is not (known to be) synced.
    NodeNotSynced,
    /// Standby: the credentials have not been validated yet.
    CredentialsUnknown,
    /// Standby: the credential files are missing or invalid.
    CredentialsInvalid {
        /// What is wrong (no secret material).
        why: String,
    },
    /// Standby: we do not hold the local lease.
    NoLease,
    /// Standby: we hold the lease but our renew deadline has passed (S1, S2).
    RenewDeadlinePassed,
    /// Standby: cluster management is on but our CardanoForgeCluster is not read yet, missing
    /// or invalid (fail closed).
    ClusterSpecUnavailable {
        /// What is wrong.
        why: String,
    },
    /// Standby: `forgeState: Disabled`.
    ClusterDisabled,
    /// Standby: an active override forces `Disabled`.
    OverrideDisabled,
    /// Standby: the override is enabled but cannot be applied (e.g. unparsable `expiresAt`);
    /// fail closed (what the operator meant cannot be known).
    OverrideInvalid {
        /// What is wrong.
        why: String,
    },
    /// Standby: a peer with better priority is eligible; it forges, not us.
    YieldingToPeer {
        /// The winning peer cluster.
        peer: String,
    },
    /// Standby: we would forge, but our own `forgingEnabled: true` claim is not yet confirmed
    /// written, so peers could not yet see it (break before make: docs/architecture.md,
    /// "Regions").
    AwaitingClaim,
    /// Standby: we would forge, but a peer's API server is unreachable or was never read, so
    /// it may be forging (silence is never evidence).
    PeerUnreachable {
        /// The silent peer cluster.
        peer: String,
    },
    /// Standby: we would forge, but a peer reports `forgingEnabled: true`; wait until it
    /// confirms it stopped.
    AwaitingPeerStop {
        /// The peer that reports forging.
        peer: String,
    },
    /// Standby: we would forge, but a peer's "not forging" is not proven yet: its status
    /// predates its latest spec, its heartbeat is stale, or it was read before our claim.
    AwaitingPeerConfirmation {
        /// The unconfirmed peer.
        peer: String,
    },
    /// Standby (quorum mode): we should forge, but do not hold a strict majority of the forge
    /// tickets with its forge deadline ahead (docs/quorum.md).
    AwaitingMajority {
        /// Tickets we hold.
        held: usize,
        /// Tickets a majority needs.
        needed: usize,
    },
    /// Standby (quorum mode): we should forge, but too few participants are in reach to make a
    /// majority (the others' ticket calls, or a peer region's reads, have all failed for longer
    /// than a Lease duration). Not contending: peers that still read our status take over
    /// instead of yielding to a region that cannot forge (docs/quorum.md); we contend again as
    /// soon as enough of them answer again.
    MajorityOutOfReach {
        /// Participants we may still reach, ourselves included.
        in_reach: usize,
        /// Tickets a majority needs.
        needed: usize,
        /// The participants out of reach, by name.
        out: Vec<String>,
    },
}

/// Every code [`Reason::as_str`] can return, for tests and dashboards.
pub const ALL_CODES: &[&str] = &[
    "single_cluster_leader",
    "cluster_enabled",
    "override_enabled",
    "global_winner",
    "handover_held",
    "starting",
    "shutting_down",
    "node_down",
    "node_not_synced",
    "credentials_unknown",
    "credentials_invalid",
    "no_lease",
    "renew_deadline_passed",
    "cluster_spec_unavailable",
    "cluster_disabled",
    "override_disabled",
    "override_invalid",
    "yielding_to_peer",
    "awaiting_claim",
    "peer_unreachable",
    "awaiting_peer_stop",
    "awaiting_peer_confirmation",
    "awaiting_majority",
    "majority_out_of_reach",
];

/// Codes of reasons under which a cluster cannot forge whatever its peers do: a peer whose
/// status carries one of them is not a candidate in the global-winner contest (so a region with
/// a dead node or bad keys does not block failover). Every other code, an unknown code or none
/// counts as a contender (yielding to it is the safe side). `shutting_down` is not among them:
/// it is one pod leaving, and its replica takes the region's lease within moments, so another
/// region must not start a handover in between (a rolling restart of the primary would flap to
/// the secondary and back); a whole region shut down is taken over once its Lease has stayed
/// vacant for its duration.
const NOT_CONTENDING: &[&str] = &[
    "starting",
    "node_down",
    "node_not_synced",
    "credentials_unknown",
    "credentials_invalid",
    "no_lease",
    "renew_deadline_passed",
    "cluster_spec_unavailable",
    "cluster_disabled",
    "override_disabled",
    "override_invalid",
    "majority_out_of_reach",
];

/// True when a peer whose status `reason` is `code` is still contending for the global win.
pub fn is_contender_code(code: Option<&str>) -> bool {
    code.is_none_or(|c| !NOT_CONTENDING.contains(&c))
}

impl Reason {
    /// Stable snake_case code: the status `reason`, the log field and the metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::SingleClusterLeader => "single_cluster_leader",
            Reason::ClusterEnabled => "cluster_enabled",
            Reason::OverrideEnabled => "override_enabled",
            Reason::GlobalWinner => "global_winner",
            Reason::HandoverHeld { .. } => "handover_held",
            Reason::Starting => "starting",
            Reason::ShuttingDown => "shutting_down",
            Reason::NodeDown => "node_down",
            Reason::NodeNotSynced => "node_not_synced",
            Reason::CredentialsUnknown => "credentials_unknown",
            Reason::CredentialsInvalid { .. } => "credentials_invalid",
            Reason::NoLease => "no_lease",
            Reason::RenewDeadlinePassed => "renew_deadline_passed",
            Reason::ClusterSpecUnavailable { .. } => "cluster_spec_unavailable",
            Reason::ClusterDisabled => "cluster_disabled",
            Reason::OverrideDisabled => "override_disabled",
            Reason::OverrideInvalid { .. } => "override_invalid",
            Reason::YieldingToPeer { .. } => "yielding_to_peer",
            Reason::AwaitingClaim => "awaiting_claim",
            Reason::PeerUnreachable { .. } => "peer_unreachable",
            Reason::AwaitingPeerStop { .. } => "awaiting_peer_stop",
            Reason::AwaitingPeerConfirmation { .. } => "awaiting_peer_confirmation",
            Reason::AwaitingMajority { .. } => "awaiting_majority",
            Reason::MajorityOutOfReach { .. } => "majority_out_of_reach",
        }
    }

    /// True for the reasons that come with forging.
    pub fn is_forging(&self) -> bool {
        matches!(
            self,
            Reason::SingleClusterLeader
                | Reason::ClusterEnabled
                | Reason::OverrideEnabled
                | Reason::GlobalWinner
                | Reason::HandoverHeld { .. }
        )
    }

    /// True for the reasons an active or invalid override caused (the `override_*` codes); a
    /// handover held under an override's `Disabled` is `handover_held`, not one of them.
    pub fn is_override(&self) -> bool {
        matches!(
            self,
            Reason::OverrideEnabled | Reason::OverrideDisabled | Reason::OverrideInvalid { .. }
        )
    }

    /// A human explanation (status `message`, log text); may name peers and causes.
    pub fn message(&self) -> String {
        match self {
            Reason::SingleClusterLeader => "forging: local lease holder (cluster management off)".into(),
            Reason::ClusterEnabled => "forging: cluster Enabled and local lease held".into(),
            Reason::OverrideEnabled => "forging: override forces Enabled and local lease held".into(),
            Reason::GlobalWinner => "forging: global winner, no peer forges".into(),
            Reason::HandoverHeld { planned, slot_at } => format!(
                "forging: planned handover held until our leader slot at {slot_at} has passed ({})",
                planned.message()
            ),
            Reason::Starting => "standby: starting up".into(),
            Reason::ShuttingDown => "standby: shutting down".into(),
            Reason::NodeDown => "standby: cardano-node is not running".into(),
            Reason::NodeNotSynced => "standby: cardano-node is not synced".into(),
            Reason::CredentialsUnknown => "standby: credentials not validated yet".into(),
            Reason::CredentialsInvalid { why } => format!("standby: credentials invalid: {why}"),
            Reason::NoLease => "standby: local lease held by another pod or not yet acquired".into(),
            Reason::RenewDeadlinePassed => "standby: lease renew deadline passed".into(),
            Reason::ClusterSpecUnavailable { why } => {
                format!("standby: CardanoForgeCluster unavailable: {why}")
            }
            Reason::ClusterDisabled => "standby: cluster forgeState is Disabled".into(),
            Reason::OverrideDisabled => "standby: override forces Disabled".into(),
            Reason::OverrideInvalid { why } => format!("standby: override invalid, failing closed: {why}"),
            Reason::YieldingToPeer { peer } => format!("standby: peer cluster {peer} has better priority"),
            Reason::AwaitingClaim => "standby: waiting for our forgingEnabled claim to be written".into(),
            Reason::PeerUnreachable { peer } => {
                format!("standby: peer cluster {peer} unreachable, it may be forging")
            }
            Reason::AwaitingPeerStop { peer } => {
                format!("standby: waiting for peer cluster {peer} to stop forging")
            }
            Reason::AwaitingPeerConfirmation { peer } => {
                format!("standby: waiting for peer cluster {peer} to confirm it does not forge")
            }
            Reason::AwaitingMajority { held, needed } => format!(
                "standby: holding {held} forge tickets of the {needed} a majority needs (quorum mode)"
            ),
            Reason::MajorityOutOfReach {
                in_reach,
                needed,
                out,
            } => format!(
                "standby: only {in_reach} participants in reach, a majority needs {needed}; out of \
                 reach (every call failed for longer than a lease duration): {} (quorum mode; not \
                 contending until enough of them answer)",
                out.join(", ")
            ),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Reason> {
        let s = || "x".to_string();
        vec![
            Reason::SingleClusterLeader,
            Reason::ClusterEnabled,
            Reason::OverrideEnabled,
            Reason::GlobalWinner,
            Reason::HandoverHeld {
                planned: Box::new(Reason::ClusterDisabled),
                slot_at: jiff::Timestamp::UNIX_EPOCH,
            },
            Reason::Starting,
            Reason::ShuttingDown,
            Reason::NodeDown,
            Reason::NodeNotSynced,
            Reason::CredentialsUnknown,
            Reason::CredentialsInvalid { why: s() },
            Reason::NoLease,
            Reason::RenewDeadlinePassed,
            Reason::ClusterSpecUnavailable { why: s() },
            Reason::ClusterDisabled,
            Reason::OverrideDisabled,
            Reason::OverrideInvalid { why: s() },
            Reason::YieldingToPeer { peer: s() },
            Reason::AwaitingClaim,
            Reason::PeerUnreachable { peer: s() },
            Reason::AwaitingPeerStop { peer: s() },
            Reason::AwaitingPeerConfirmation { peer: s() },
            Reason::AwaitingMajority { held: 1, needed: 2 },
            Reason::MajorityOutOfReach {
                in_reach: 2,
                needed: 3,
                out: vec![s(), s()],
            },
        ]
    }

    #[test]
    fn every_reason_has_a_distinct_listed_snake_case_code() {
        let codes: Vec<_> = all().iter().map(Reason::as_str).collect();
        assert_eq!(codes, ALL_CODES);
        for c in &codes {
            assert!(c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'), "{c}");
        }
        let mut dedup = codes.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), codes.len());
    }

    #[test]
    fn exactly_the_three_override_reasons_are_overrides_and_only_they_have_override_codes() {
        let overrides: Vec<_> = all().into_iter().filter(Reason::is_override).collect();
        assert_eq!(
            overrides,
            vec![
                Reason::OverrideEnabled,
                Reason::OverrideDisabled,
                Reason::OverrideInvalid { why: "x".into() }
            ]
        );
        for r in all() {
            assert_eq!(r.is_override(), r.as_str().starts_with("override_"), "{r}");
        }
        let held = Reason::HandoverHeld {
            planned: Box::new(Reason::OverrideDisabled),
            slot_at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert!(!held.is_override());
    }

    #[test]
    fn codes_never_contain_peer_names_but_messages_do() {
        let r = Reason::YieldingToPeer {
            peer: "eu-west-1".into(),
        };
        assert_eq!(r.as_str(), "yielding_to_peer");
        assert!(r.message().contains("eu-west-1"));
    }

    #[test]
    fn only_standby_causes_that_block_forging_locally_are_not_contending() {
        for r in all() {
            // `ShuttingDown` is one pod leaving, not the region: it still contends.
            let local_block = matches!(
                r,
                Reason::YieldingToPeer { .. }
                    | Reason::AwaitingClaim
                    | Reason::PeerUnreachable { .. }
                    | Reason::AwaitingPeerStop { .. }
                    | Reason::AwaitingPeerConfirmation { .. }
                    | Reason::AwaitingMajority { .. }
                    | Reason::ShuttingDown
            ) || r.is_forging();
            assert_eq!(is_contender_code(Some(r.as_str())), local_block, "{r}");
        }
        assert!(is_contender_code(None));
        assert!(is_contender_code(Some("something_newer")));
    }
}
