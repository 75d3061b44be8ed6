//! Effective state and priority of this cluster (docs/architecture.md, "Priority and health"): the
//! override, the health penalty, and what they make of `spec.forgeState` and `spec.priority`. No
//! I/O; wall time arrives as an argument (override `expiresAt` is wall time).
use jiff::Timestamp;

use crate::crd::{CardanoForgeClusterSpec, ForgeState, OverrideSpec};

/// Penalty after one consecutive failed health probe (intermittent trouble).
pub const MINOR_PENALTY: i32 = 10;
/// Penalty once `failureThreshold` consecutive probes failed: the seed's value, large enough to
/// demote a cluster below every healthy peer in practice (operators use small priorities).
pub const MAJOR_PENALTY: i32 = 100;
/// `spec.healthCheck.failureThreshold` when absent.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;

/// The health penalty for `consecutive_failures` failed probes in a row: 0 with none, +10 from
/// the first, +100 from `threshold` on (not cumulative). A success resets the count, and with
/// it the penalty. A threshold of 0 is treated as 1.
pub fn health_penalty(consecutive_failures: u32, threshold: u32) -> i32 {
    if consecutive_failures == 0 {
        0
    } else if consecutive_failures >= threshold.max(1) {
        MAJOR_PENALTY
    } else {
        MINOR_PENALTY
    }
}

/// The failure threshold of a spec (`healthCheck.failureThreshold`, default 3, at least 1).
pub fn failure_threshold(spec: &CardanoForgeClusterSpec) -> u32 {
    spec.health_check.as_ref().map_or(DEFAULT_FAILURE_THRESHOLD, |h| {
        u32::try_from(h.failure_threshold).unwrap_or(1).max(1)
    })
}

/// What the `override` block means at a given wall time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideStatus {
    /// Absent or `enabled: false`.
    Off,
    /// Enabled with an `expiresAt` that has passed (inactive at and after `expiresAt`).
    Expired,
    /// Enabled and in force.
    Active {
        /// Replaces `spec.forgeState`.
        force_state: Option<ForgeState>,
        /// Replaces the effective priority (no health penalty).
        force_priority: Option<i32>,
        /// When it stops applying; `None`: until disabled (the reference ignored such
        /// overrides, a bug).
        expires_at: Option<Timestamp>,
    },
    /// Enabled but not applicable (unparsable `expiresAt`): the decision fails closed.
    Invalid {
        /// What is wrong, naming the field.
        why: String,
    },
}

/// Evaluates the override at wall time `wall`.
pub fn evaluate_override(o: Option<&OverrideSpec>, wall: Timestamp) -> OverrideStatus {
    let Some(o) = o.filter(|o| o.enabled) else {
        return OverrideStatus::Off;
    };
    let expires_at = match o.expires_at.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match s.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(e) => {
                return OverrideStatus::Invalid {
                    why: format!("override.expiresAt: not an RFC 3339 time, got {s:?}: {e}"),
                };
            }
        },
    };
    if expires_at.is_some_and(|t| wall >= t) {
        return OverrideStatus::Expired;
    }
    OverrideStatus::Active {
        force_state: o.force_state,
        force_priority: o.force_priority,
        expires_at,
    }
}

/// The cluster's effective policy at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The state in force (`Disabled` when the override is invalid: fail closed).
    pub state: ForgeState,
    /// The priority in force, lower wins.
    pub priority: i32,
    /// How the override was evaluated.
    pub override_status: OverrideStatus,
}

impl Effective {
    /// True when the state comes from an active `forceState`.
    pub fn state_forced(&self) -> bool {
        matches!(
            self.override_status,
            OverrideStatus::Active {
                force_state: Some(_),
                ..
            }
        )
    }
}

/// Effective state and priority of `spec` with `consecutive_failures` failed probes, at `wall`.
pub fn effective(spec: &CardanoForgeClusterSpec, consecutive_failures: u32, wall: Timestamp) -> Effective {
    let base = spec
        .priority
        .saturating_add(health_penalty(consecutive_failures, failure_threshold(spec)));
    let o = evaluate_override(spec.override_.as_ref(), wall);
    let (state, priority) = match &o {
        OverrideStatus::Active {
            force_state,
            force_priority,
            ..
        } => (
            force_state.unwrap_or(spec.forge_state),
            force_priority.unwrap_or(base),
        ),
        OverrideStatus::Invalid { .. } => (ForgeState::Disabled, base),
        OverrideStatus::Off | OverrideStatus::Expired => (spec.forge_state, base),
    };
    Effective {
        state,
        priority,
        override_status: o,
    }
}

/// The effective priority alone (see [`effective`]).
pub fn effective_priority(spec: &CardanoForgeClusterSpec, consecutive_failures: u32, wall: Timestamp) -> i32 {
    effective(spec, consecutive_failures, wall).priority
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{HealthCheckSpec, NetworkSpec};

    fn spec(priority: i32, state: ForgeState) -> CardanoForgeClusterSpec {
        CardanoForgeClusterSpec::new(state, priority, "eu", NetworkSpec::new("preview", 2))
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("valid time")
    }

    #[test]
    fn the_penalty_is_ten_after_one_failure_and_a_hundred_at_the_threshold() {
        assert_eq!(health_penalty(0, 3), 0);
        assert_eq!(health_penalty(1, 3), 10);
        assert_eq!(health_penalty(2, 3), 10);
        assert_eq!(health_penalty(3, 3), 100);
        assert_eq!(health_penalty(50, 3), 100);
        assert_eq!(health_penalty(1, 1), 100);
        assert_eq!(health_penalty(1, 0), 100);
    }

    #[test]
    fn the_threshold_comes_from_the_health_check_spec() {
        let mut s = spec(1, ForgeState::PriorityBased);
        assert_eq!(failure_threshold(&s), 3);
        s.health_check = Some(HealthCheckSpec {
            enabled: true,
            endpoint: None,
            interval: "1s".into(),
            timeout: "1s".into(),
            failure_threshold: 5,
            headers: Default::default(),
        });
        assert_eq!(failure_threshold(&s), 5);
        assert_eq!(effective_priority(&s, 4, at("2025-01-01T00:00:00Z")), 11);
        assert_eq!(effective_priority(&s, 5, at("2025-01-01T00:00:00Z")), 101);
    }

    #[test]
    fn an_override_without_expiry_stays_active_until_disabled() {
        let mut s = spec(5, ForgeState::PriorityBased);
        s.override_ = Some(OverrideSpec {
            enabled: true,
            force_state: Some(ForgeState::Disabled),
            ..Default::default()
        });
        let e = effective(&s, 0, at("2999-01-01T00:00:00Z"));
        assert_eq!(e.state, ForgeState::Disabled);
        assert!(e.state_forced());
        if let Some(o) = s.override_.as_mut() {
            o.enabled = false;
        }
        assert_eq!(
            effective(&s, 0, at("2999-01-01T00:00:00Z")).state,
            ForgeState::PriorityBased
        );
    }

    #[test]
    fn an_override_applies_before_expires_at_and_not_at_or_after_it() {
        let mut s = spec(5, ForgeState::PriorityBased);
        s.override_ = Some(OverrideSpec {
            enabled: true,
            expires_at: Some("2025-06-01T12:00:00Z".into()),
            force_priority: Some(1),
            ..Default::default()
        });
        assert_eq!(
            effective_priority(&s, 3, at("2025-06-01T11:59:59Z")),
            1,
            "no penalty on forced"
        );
        assert_eq!(effective_priority(&s, 3, at("2025-06-01T12:00:00Z")), 105);
        assert_eq!(
            evaluate_override(s.override_.as_ref(), at("2025-06-01T12:00:01Z")),
            OverrideStatus::Expired
        );
    }

    #[test]
    fn an_unparsable_expiry_makes_the_override_invalid_and_the_state_disabled() {
        let mut s = spec(5, ForgeState::Enabled);
        s.override_ = Some(OverrideSpec {
            enabled: true,
            expires_at: Some("tomorrow".into()),
            force_state: Some(ForgeState::Disabled),
            ..Default::default()
        });
        let e = effective(&s, 0, at("2025-01-01T00:00:00Z"));
        assert!(
            matches!(e.override_status, OverrideStatus::Invalid { ref why } if why.contains("expiresAt"))
        );
        assert_eq!(e.state, ForgeState::Disabled);
    }

    #[test]
    fn a_disabled_override_is_ignored_even_when_invalid() {
        let o = OverrideSpec {
            enabled: false,
            expires_at: Some("garbage".into()),
            ..Default::default()
        };
        assert_eq!(
            evaluate_override(Some(&o), at("2025-01-01T00:00:00Z")),
            OverrideStatus::Off
        );
    }
}
