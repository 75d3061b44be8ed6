//! Lease timing: [`LeaseTiming`], its rules ([`check_timing`]) and the timing section of
//! `validate` (`LEASE_DURATION`, `RENEW_DEADLINE`, `RETRY_PERIOD`, `SLEEP_INTERVAL`,
//! `API_TIMEOUT`, `SHUTDOWN_TIMEOUT`).
use std::time::Duration;

use serde::Serialize;

use super::errors::{Check, ConfigError, default_secs};
use super::keys::{self, RawSettings};
use super::parse::{fmt_dur, ser_duration};

/// client-go's `JitterFactor`: a retry waits up to `retry_period * 1.2`.
pub const JITTER_FACTOR: f64 = 1.2;

/// The least margin between `RENEW_DEADLINE` and `LEASE_DURATION`: a leader stops at its renew
/// deadline, and its node must have stopped before any other pod can see the lease expire. Without
/// the node guard the margin must also exceed the node's slowest reload (docs/configuration.md).
pub const MIN_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// Lease timing, client-go semantics: `duration > renew_deadline > retry_period * 1.2` once
/// validated (docs/configuration.md, "Lease timing rules"). Quorum mode's forge ticket has a
/// timing of its own, [`TicketTiming`](super::quorum::TicketTiming), apart on purpose (it says
/// why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaseTiming {
    /// How long a lease is valid after its last renewal (`LEASE_DURATION`).
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// A leader that has not renewed for this long stops forging and gives up.
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    /// How often candidates retry and leaders renew.
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    /// The defaults of `LEASE_DURATION`, `RENEW_DEADLINE` and `RETRY_PERIOD` (15 s, 10 s, 2 s).
    fn default() -> Self {
        Self {
            duration: default_secs(&keys::LEASE_DURATION),
            renew_deadline: default_secs(&keys::RENEW_DEADLINE),
            retry_period: default_secs(&keys::RETRY_PERIOD),
        }
    }
}

/// The timing section of `validate`.
pub(crate) struct Timing {
    pub(crate) lease: LeaseTiming,
    pub(crate) api_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) sleep_interval: Option<Duration>,
}

/// Reads the timing keys and, when each is well-formed, checks the rules between them.
/// `SLEEP_INTERVAL` only ever shortens the retry period (docs/configuration.md).
pub(crate) fn timing(c: &mut Check) -> Timing {
    let duration = Duration::from_secs(c.int(&keys::LEASE_DURATION));
    let renew_deadline = c.secs(&keys::RENEW_DEADLINE);
    let sleep_interval = c
        .given(&keys::SLEEP_INTERVAL)
        .map(|_| c.secs(&keys::SLEEP_INTERVAL));
    let default_retry = default_secs(&keys::RETRY_PERIOD);
    let retry_period = match (c.given(&keys::RETRY_PERIOD), sleep_interval) {
        (Some(_), _) => c.secs(&keys::RETRY_PERIOD),
        (None, Some(sleep)) if !c.has(keys::SLEEP_INTERVAL.name) => sleep.min(default_retry),
        (None, _) => default_retry,
    };
    let api_timeout = c.secs(&keys::API_TIMEOUT);
    let shutdown_timeout = c.secs(&keys::SHUTDOWN_TIMEOUT);
    let lease = LeaseTiming {
        duration,
        renew_deadline,
        retry_period,
    };
    if !c.has_any(&[
        &keys::LEASE_DURATION,
        &keys::RENEW_DEADLINE,
        &keys::RETRY_PERIOD,
        &keys::SLEEP_INTERVAL,
        &keys::API_TIMEOUT,
    ]) {
        for err in check_timing(&lease, api_timeout) {
            c.push(err.key, err.problem);
        }
    }
    Timing {
        lease,
        api_timeout,
        shutdown_timeout,
        sleep_interval,
    }
}

/// The lease timing rules, one error per key: `RENEW_DEADLINE < LEASE_DURATION`
/// by at least [`MIN_DEADLINE_MARGIN`];
/// `RETRY_PERIOD x 1.2 < RENEW_DEADLINE`; `API_TIMEOUT < RENEW_DEADLINE`; and two full renew
/// attempts fit: `RETRY_PERIOD x 1.2 + 2 x API_TIMEOUT <= RENEW_DEADLINE`. Also usable by tests
/// and the simulator to check hand-made timings.
pub fn check_timing(t: &LeaseTiming, api_timeout: Duration) -> Vec<ConfigError> {
    let raw = RawSettings::default();
    let mut e = Check::new(&raw);
    let zero = [
        (keys::LEASE_DURATION.name, t.duration),
        (keys::RENEW_DEADLINE.name, t.renew_deadline),
    ];
    let more = [
        (keys::RETRY_PERIOD.name, t.retry_period),
        (keys::API_TIMEOUT.name, api_timeout),
    ];
    for (key, d) in zero.into_iter().chain(more) {
        if d.is_zero() {
            e.push(key, "must be greater than zero, got 0");
        }
    }
    if !e.errors.is_empty() {
        return e.errors;
    }
    if t.renew_deadline >= t.duration {
        e.push(
            keys::RENEW_DEADLINE.name,
            format!(
                "must be less than LEASE_DURATION ({}), got {}: a leader must give up before its lease can pass on",
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline)
            ),
        );
    } else if t.duration - t.renew_deadline < MIN_DEADLINE_MARGIN {
        e.push(
            keys::RENEW_DEADLINE.name,
            format!(
                "must be at least {} below LEASE_DURATION ({}), got {}: a leader stops at its renew deadline and its node needs that margin to stop before the lease can pass on",
                fmt_dur(MIN_DEADLINE_MARGIN),
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline)
            ),
        );
    }
    let jittered = t.retry_period.mul_f64(JITTER_FACTOR);
    if jittered >= t.renew_deadline {
        e.push(
            keys::RETRY_PERIOD.name,
            format!(
                "x {JITTER_FACTOR} jitter must be less than RENEW_DEADLINE ({}), got {} (x {JITTER_FACTOR} = {})",
                fmt_dur(t.renew_deadline),
                fmt_dur(t.retry_period),
                fmt_dur(jittered)
            ),
        );
    }
    if api_timeout >= t.renew_deadline {
        e.push(
            keys::API_TIMEOUT.name,
            format!(
                "must be less than RENEW_DEADLINE ({}), got {}",
                fmt_dur(t.renew_deadline),
                fmt_dur(api_timeout)
            ),
        );
    }
    let two_attempts = jittered + api_timeout * 2;
    if two_attempts > t.renew_deadline {
        e.push(
            keys::RENEW_DEADLINE.name,
            format!(
                "must leave room for two renew attempts (RETRY_PERIOD x {JITTER_FACTOR} + 2 x API_TIMEOUT = {}), got {}",
                fmt_dur(two_attempts),
                fmt_dur(t.renew_deadline)
            ),
        );
    }
    e.errors
}
