//! The status we write and the spec checks we apply, as pure functions (no I/O): the
//! CardanoForgeCluster spec created from configuration ([`default_cluster_spec`]), why a spec
//! cannot be used ([`invalid_spec`], fail closed), and the CardanoForgeCluster and CardanoLeader
//! status content for a [`StatusReport`] ([`cluster_status`], [`leader_status`]) with the tests
//! that decide whether a write can be skipped ([`same_cluster_content`], [`same_content`]). The
//! ClusterWatcher and the StatusWriter (`actors/src/cluster_watcher`, `actors/src/status_writer`)
//! carry them out. The sidecar's own `/status` document is [`SidecarStatus`] (`status/sidecar.rs`).
use std::time::Duration;

mod sidecar;

pub use sidecar::{
    ChainReport, CredentialsReport, KesReport, NodeReport, PeerReport, QuorumReport, SidecarStatus,
    TicketReport,
};

use crate::config::ValidConfig;
use crate::crd::{
    ApplicationSpec, CardanoForgeClusterSpec, CardanoForgeClusterStatus, CardanoLeaderStatus, Condition,
    ForgeState, HealthCheckSpec, HealthStatus, NetworkSpec, PoolSpec,
};
use crate::decision::StatusReport;

/// The CardanoForgeCluster spec created from configuration when ours is absent.
pub fn default_cluster_spec(cfg: &ValidConfig) -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec {
        forge_state: ForgeState::PriorityBased,
        priority: i32::from(cfg.cluster.priority),
        region: cfg.cluster.region.clone(),
        network: NetworkSpec {
            name: cfg.network.name.clone(),
            magic: i64::from(cfg.network.magic),
            era: "conway".into(),
        },
        pool: cfg.pool.as_ref().map(|p| PoolSpec {
            id: Some(p.id.clone()),
            id_hex: p.id_hex.clone(),
            name: p.name.clone(),
            ticker: p.ticker.clone(),
            description: None,
        }),
        application: Some(ApplicationSpec {
            type_: cfg.application_type.as_str().to_string(),
            version: None,
            environment: serde_json::to_value(cfg.cluster.environment)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "production".into()),
        }),
        health_check: cfg.health.endpoint.as_ref().map(|endpoint| HealthCheckSpec {
            enabled: true,
            endpoint: Some(endpoint.clone()),
            interval: format!("{}s", cfg.health.interval.as_secs().max(1)),
            timeout: format!("{}s", cfg.health.timeout.as_secs().max(1)),
            failure_threshold: i32::try_from(cfg.health.failure_threshold).unwrap_or(3),
            headers: Default::default(),
        }),
        override_: None,
    }
}

/// Why a CardanoForgeCluster spec cannot be used, if it cannot (fail closed). The schema
/// already refuses most of this; an object written before a CRD upgrade, or with the schema
/// bypassed, is caught here. Override expiry is judged by the decision engine.
pub fn invalid_spec(spec: &CardanoForgeClusterSpec, network: (&str, i64)) -> Option<String> {
    if !(1..=999).contains(&spec.priority) {
        return Some(format!("spec.priority {} is outside 1..999", spec.priority));
    }
    if spec.region.is_empty() {
        return Some("spec.region is empty".into());
    }
    if spec.network.name != network.0 || spec.network.magic != network.1 {
        return Some(format!(
            "spec.network {}/{} is not this node's network {}/{}",
            spec.network.name, spec.network.magic, network.0, network.1
        ));
    }
    if let Some(o) = &spec.override_
        && let Some(p) = o.force_priority
        && o.enabled
        && !(1..=999).contains(&p)
    {
        return Some(format!("spec.override.forcePriority {p} is outside 1..999"));
    }
    if let Some(h) = &spec.health_check {
        if !(1..=10).contains(&h.failure_threshold) {
            return Some(format!(
                "spec.healthCheck.failureThreshold {} is outside 1..10",
                h.failure_threshold
            ));
        }
        for (field, value) in [("interval", &h.interval), ("timeout", &h.timeout)] {
            if parse_period(value).is_none() {
                return Some(format!(
                    "spec.healthCheck.{field} {value:?} is not like 30s, 1m, 1h"
                ));
            }
        }
    }
    None
}

/// `30s`, `1m`, `1h` (the CRD's pattern), not zero.
pub fn parse_period(s: &str) -> Option<Duration> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let n: u64 = s[..s.len() - 1].parse().ok()?;
    if n == 0 {
        return None;
    }
    n.checked_mul(unit).map(Duration::from_secs)
}

/// The CardanoForgeCluster status our pod publishes for `report` and its `health` probing, given
/// the last one seen (for the transition time, which moves only when `forgingEnabled` or
/// `effectiveState` changes).
pub fn cluster_status(
    pod: &str,
    report: &StatusReport,
    health: Option<&HealthStatus>,
    last: Option<&CardanoForgeClusterStatus>,
    now: jiff::Timestamp,
) -> CardanoForgeClusterStatus {
    let forging = Some(report.forging_enabled);
    let state = Some(report.effective_state);
    let transitioned = last.is_none_or(|l| l.forging_enabled != forging || l.effective_state != state);
    let last_transition = if transitioned {
        Some(now.to_string())
    } else {
        last.and_then(|l| l.last_transition.clone())
    };
    let condition = |type_: &str, on: bool, reason: &str| {
        let status = if on { "True" } else { "False" }.to_string();
        // A condition's time moves only when its status does.
        let since = last
            .and_then(|l| l.conditions.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.to_string());
        Condition {
            type_: type_.to_string(),
            status,
            last_transition_time: Some(since),
            reason: Some(reason.to_string()),
            message: None,
            observed_generation: report.observed_generation,
        }
    };
    CardanoForgeClusterStatus {
        effective_state: state,
        effective_priority: Some(report.effective_priority),
        active_leader: Some(pod.to_string()),
        forging_enabled: forging,
        reason: Some(report.reason.as_str().to_string()),
        message: Some(report.reason.message()),
        last_transition,
        observed_generation: report.observed_generation,
        health_status: health.cloned(),
        conditions: {
            let mut c = vec![
                condition("LeaderElected", true, "LeaseHeld"),
                condition("Ready", report.forging_enabled, report.reason.as_str()),
            ];
            if let Some(h) = health {
                let healthy = h.healthy.unwrap_or(false);
                let reason = if healthy {
                    "ProbeSucceeding"
                } else {
                    "ProbeFailing"
                };
                c.push(condition("HealthCheckPassing", healthy, reason));
            }
            c
        },
        claim_protocol: Some(crate::crd::CLAIM_PROTOCOL),
        tickets: report.tickets.map(|(held, of)| format!("{held}/{of}")),
    }
}

/// Equal for the purpose of skipping a CFC status write: everything but times.
pub fn same_cluster_content(a: &CardanoForgeClusterStatus, b: &CardanoForgeClusterStatus) -> bool {
    let conditions = |s: &CardanoForgeClusterStatus| {
        s.conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.observed_generation,
                )
            })
            .collect::<Vec<_>>()
    };
    a.effective_state == b.effective_state
        && a.effective_priority == b.effective_priority
        && a.active_leader == b.active_leader
        && a.forging_enabled == b.forging_enabled
        && a.reason == b.reason
        && a.message == b.message
        && a.observed_generation == b.observed_generation
        && a.health_status.as_ref().map(|h| h.healthy) == b.health_status.as_ref().map(|h| h.healthy)
        && conditions(a) == conditions(b)
        && a.claim_protocol == b.claim_protocol
        && a.tickets == b.tickets
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
    use crate::{crd::ForgeState, decision::Reason};

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
            tickets: None,
        }
    }

    #[test]
    fn quorum_mode_publishes_the_tickets_held_and_a_change_is_written() {
        let now: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().expect("now");
        let plain = cluster_status("bp-0", &report(true), None, None, now);
        assert_eq!(plain.tickets, None, "absent without quorum mode");
        let mut quorum = report(true);
        quorum.tickets = Some((3, 4));
        let held = cluster_status("bp-0", &quorum, None, Some(&plain), now);
        assert_eq!(held.tickets.as_deref(), Some("3/4"));
        assert!(!same_cluster_content(&plain, &held), "a new count is written");
        quorum.tickets = Some((2, 4));
        let lost = cluster_status("bp-0", &quorum, None, Some(&held), now);
        assert!(!same_cluster_content(&held, &lost), "a new count is written");
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
