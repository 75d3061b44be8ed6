//! Quorum mode's settings: [`TicketTiming`], the participants ([`QuorumParticipant`]), and the
//! rules between the ticket timing and the lease timing ([`check_ticket_timing`]).
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::parse::ser_duration;
use super::timing::{JITTER_FACTOR, LeaseTiming, MIN_DEADLINE_MARGIN};

/// The largest clock-rate difference between two machines that the ticket timing must absorb:
/// 1 %, a hundred times what an unsynchronised quartz clock drifts (docs/quorum.md).
pub const MAX_CLOCK_RATE_DIFFERENCE: f64 = 0.01;

/// The forge ticket's timing (docs/quorum.md): a holder counts a ticket as held until
/// `renew_deadline` after its last successful write was sent; others may take it once it has
/// gone unrenewed for `duration` on their clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TicketTiming {
    /// `TICKET_DURATION`: how long a ticket stays valid after its last renewal.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// `TICKET_RENEW_DEADLINE`: a holder counts a ticket as held for this long after its last
    /// successful write was sent, and stops forging before it loses its majority.
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    /// How often the keeper renews and retries: the lease's `RETRY_PERIOD`.
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

impl Default for TicketTiming {
    /// 20 s, 12 s, 2 s: the defaults of `TICKET_DURATION`, `TICKET_RENEW_DEADLINE` and
    /// `RETRY_PERIOD`.
    fn default() -> Self {
        TicketTiming {
            duration: Duration::from_secs(20),
            renew_deadline: Duration::from_secs(12),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl TicketTiming {
    /// The same numbers as a [`LeaseTiming`], for the lease rules a ticket reuses.
    pub fn as_lease_timing(&self) -> LeaseTiming {
        LeaseTiming {
            duration: self.duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }

    /// The least `duration - renew_deadline` this timing needs: the node's stop
    /// ([`MIN_DEADLINE_MARGIN`]) plus what a clock-rate difference of
    /// [`MAX_CLOCK_RATE_DIFFERENCE`] can eat on both sides of the duration.
    pub fn required_margin(&self) -> Duration {
        MIN_DEADLINE_MARGIN + self.duration.mul_f64(2.0 * MAX_CLOCK_RATE_DIFFERENCE)
    }
}

/// One participant of quorum mode: a region or a witness, reached through its kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumParticipant {
    /// Its name (DNS-1123 subdomain, unique): a region's CardanoForgeCluster name, or a
    /// witness's free name.
    pub name: String,
    /// Its kubeconfig; `None` for our own region (our own API server, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// A witness holds a ticket but runs no pods.
    pub witness: bool,
}

/// Quorum mode's validated settings (`QUORUM_PARTICIPANTS`, `TICKET_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumSettings {
    /// Every participant, our own region included (first), in the order configured.
    pub participants: Vec<QuorumParticipant>,
    /// The ticket timing.
    pub ticket: TicketTiming,
}

/// The ticket timing rules, as `(key, problem)`: the renew deadline leaves the required margin
/// below the duration ([`TicketTiming::required_margin`]); a ticket outlives the local lease
/// (`TICKET_DURATION >= LEASE_DURATION`, so a region's local failover keeps its tickets); two
/// renew attempts fit in the ticket renew deadline (`RETRY_PERIOD x 1.2 + 2 x API_TIMEOUT`).
pub fn check_ticket_timing(
    t: &TicketTiming,
    lease: &LeaseTiming,
    api_timeout: Duration,
) -> Vec<(&'static str, String)> {
    use super::parse::fmt_dur;
    let mut errors = Vec::new();
    if t.duration.is_zero() {
        errors.push(("TICKET_DURATION", "must be greater than zero, got 0".to_string()));
        return errors;
    }
    if t.renew_deadline >= t.duration || t.duration - t.renew_deadline < t.required_margin() {
        errors.push((
            "TICKET_RENEW_DEADLINE",
            format!(
                "must be at least {} below TICKET_DURATION ({}), got {}: a holder stops at its ticket renew deadline, and its node's stop and a {}% clock-rate difference must fit before its tickets can expire for others",
                fmt_dur(t.required_margin()),
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline),
                MAX_CLOCK_RATE_DIFFERENCE * 100.0
            ),
        ));
    }
    if t.duration < lease.duration {
        errors.push((
            "TICKET_DURATION",
            format!(
                "must be at least LEASE_DURATION ({}), got {}: a region's new local leader must be able to renew its tickets before they expire",
                fmt_dur(lease.duration),
                fmt_dur(t.duration)
            ),
        ));
    }
    let two_attempts = t.retry_period.mul_f64(JITTER_FACTOR) + api_timeout * 2;
    if two_attempts > t.renew_deadline {
        errors.push((
            "TICKET_RENEW_DEADLINE",
            format!(
                "must leave room for two renew attempts (RETRY_PERIOD x {JITTER_FACTOR} + 2 x API_TIMEOUT = {}), got {}",
                fmt_dur(two_attempts),
                fmt_dur(t.renew_deadline)
            ),
        ));
    }
    errors
}
