//! ClusterWatcher, single-cluster part: the `CardanoLeader` status writer. Only the lease
//! holder writes (the Decider sends `WriteStatus` only then); a write happens only when the
//! status changed; `lastTransitionTime` moves only when the leader or its forging state changes
//! (the reference rewrote it on every loop, G-25). The object is created if absent. A pod that
//! is not the leader never overwrites it, except to clear a stale entry naming itself at start.
//!
//! Multi-cluster coordination (watching the CardanoForgeCluster, its status) is added on top of
//! this by the cluster-management work.

mod actor;
mod handlers;

use forge_core::{
    crd::{CardanoLeader, CardanoLeaderStatus, Condition},
    decision::StatusReport,
};

use crate::{adapters::kube_object::NamedObject, metrics::Metrics, supervisor::Restarts};

/// The actor.
pub struct ClusterWatcher {
    leader: NamedObject<CardanoLeader>,
    pod: String,
    /// The status we last wrote or read (writes are skipped when nothing changed).
    last: Option<CardanoLeaderStatus>,
    metrics: Option<Metrics>,
    restarts: Restarts,
}

impl ClusterWatcher {
    /// A writer of the CardanoLeader `leader` for pod `pod`.
    pub fn new(leader: NamedObject<CardanoLeader>, pod: impl Into<String>, metrics: Option<Metrics>) -> Self {
        let restarts = Restarts::new(
            "cluster_watcher",
            metrics.as_ref().map(|m| m.actor_restarts.clone()),
        );
        Self {
            leader,
            pod: pod.into(),
            last: None,
            metrics,
            restarts,
        }
    }
}

/// The status our pod publishes for `report`, given the last one (for the transition time).
pub fn leader_status(
    pod: &str,
    report: &StatusReport,
    last: Option<&CardanoLeaderStatus>,
    now: jiff::Timestamp,
) -> CardanoLeaderStatus {
    let leader_pod = Some(pod.to_string());
    let forging = Some(report.forging_enabled);
    let transitioned = last.is_none_or(|l| l.leader_pod != leader_pod || l.forging_enabled != forging);
    let last_transition_time = if transitioned {
        Some(now.to_string())
    } else {
        last.and_then(|l| l.last_transition_time.clone())
    };
    let condition = |type_: &str, on: bool, reason: &str| Condition {
        type_: type_.to_string(),
        status: if on { "True" } else { "False" }.to_string(),
        last_transition_time: last_transition_time.clone(),
        reason: Some(reason.to_string()),
        message: None,
        observed_generation: None,
    };
    CardanoLeaderStatus {
        leader_pod,
        forging_enabled: forging,
        last_transition_time: last_transition_time.clone(),
        reason: Some(report.reason.as_str().to_string()),
        message: Some(report.reason.message()),
        conditions: vec![
            condition("LeaderElected", true, "LeaseHeld"),
            condition("Ready", report.forging_enabled, report.reason.as_str()),
        ],
        observed_generation: None,
    }
}

/// Equal for the purpose of skipping a write: everything but times.
pub fn same_content(a: &CardanoLeaderStatus, b: &CardanoLeaderStatus) -> bool {
    a.leader_pod == b.leader_pod
        && a.forging_enabled == b.forging_enabled
        && a.reason == b.reason
        && a.message == b.message
}

#[cfg(test)]
mod tests {
    use forge_core::{crd::ForgeState, decision::Reason};

    use super::*;

    fn report(forging: bool) -> StatusReport {
        StatusReport {
            forging_enabled: forging,
            effective_state: ForgeState::Enabled,
            effective_priority: 100,
            reason: if forging {
                Reason::SingleClusterLeader
            } else {
                Reason::NodeDown
            },
            observed_generation: None,
        }
    }

    #[test]
    fn the_transition_time_moves_only_on_a_transition() {
        let t1: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().expect("t1");
        let t2: jiff::Timestamp = "2026-11-25T10:05:00Z".parse().expect("t2");
        let first = leader_status("bp-0", &report(true), None, t1);
        assert_eq!(
            first.last_transition_time.as_deref(),
            Some("2026-11-25T10:00:00Z")
        );
        let same = leader_status("bp-0", &report(true), Some(&first), t2);
        assert_eq!(same.last_transition_time, first.last_transition_time);
        assert!(same_content(&same, &first));
        let stopped = leader_status("bp-0", &report(false), Some(&first), t2);
        assert_eq!(
            stopped.last_transition_time.as_deref(),
            Some("2026-11-25T10:05:00Z")
        );
        assert!(!same_content(&stopped, &first));
        let other = leader_status("bp-1", &report(true), Some(&first), t2);
        assert_eq!(
            other.last_transition_time.as_deref(),
            Some("2026-11-25T10:05:00Z")
        );
    }
}
