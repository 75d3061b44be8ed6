//! Supervision policy: actix's `Supervisor` restarts an actor that *stops* (never one that
//! panics: docs/architecture.md, "Actors"), calling `restarting()` on the same value. The actors
//! that stop when their I/O fails (the LeaseElector, NodeWatcher and CredentialKeeper) keep a
//! [`Restarts`] and, in `restarting()`, count the restart and wait the delay it gives before
//! doing I/O again, so a failing API server is not hammered. The others retry inside, after a
//! wait of their own (a retry period, a probe interval), and do not stop on a failed call.

use std::time::Duration;

use prometheus::IntCounterVec;

/// First restart delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest restart delay: short enough to come back well within a lease duration.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Restart bookkeeping of one actor: capped exponential backoff, reset after a healthy spell.
#[derive(Debug, Clone)]
pub struct Restarts {
    actor: &'static str,
    consecutive: u32,
    metric: Option<IntCounterVec>,
}

impl Restarts {
    /// Bookkeeping for `actor`, counted in `forge_manager_actor_restarts_total{actor}` when a
    /// metric is given.
    pub fn new(actor: &'static str, metric: Option<IntCounterVec>) -> Self {
        Self {
            actor,
            consecutive: 0,
            metric,
        }
    }

    /// Records a restart and returns how long to wait before working again.
    pub fn record(&mut self) -> Duration {
        if let Some(m) = &self.metric {
            m.with_label_values(&[self.actor]).inc();
        }
        let delay = backoff(self.consecutive);
        self.consecutive = self.consecutive.saturating_add(1);
        tracing::warn!(
            actor = self.actor,
            restarts = self.consecutive,
            delay_ms = delay.as_millis() as u64,
            "actor restarting"
        );
        delay
    }

    /// Marks the actor healthy again (a successful call): the next restart starts from the base.
    pub fn healthy(&mut self) {
        self.consecutive = 0;
    }

    /// Restarts since the last healthy mark.
    pub fn consecutive(&self) -> u32 {
        self.consecutive
    }
}

/// The delay before restart number `attempt` (0-based): base * 2^attempt, capped.
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), BACKOFF_BASE);
        assert_eq!(backoff(1), BACKOFF_BASE * 2);
        assert_eq!(backoff(3), BACKOFF_BASE * 8);
        assert_eq!(backoff(40), BACKOFF_CAP);
    }

    #[test]
    fn restarts_are_counted_and_reset_by_health() {
        let registry = prometheus::Registry::new();
        let metric = IntCounterVec::new(prometheus::Opts::new("r", "r"), &["actor"]).expect("metric");
        registry.register(Box::new(metric.clone())).expect("register");
        let mut r = Restarts::new("lease_elector", Some(metric.clone()));
        assert_eq!(r.record(), backoff(0));
        assert_eq!(r.record(), backoff(1));
        r.healthy();
        assert_eq!(r.record(), backoff(0));
        assert_eq!(metric.with_label_values(&["lease_elector"]).get(), 3);
    }
}
