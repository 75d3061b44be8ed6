//! The lease timing model (docs/architecture.md, "Lease timing"), with client-go's semantics.
//!
//! Owns: the monotonic instant type [`Mono`], the pure image of a `coordination.k8s.io/v1`
//! Lease ([`LeaseRecord`]), how we judge someone else's lease ([`LeaseObservation`],
//! [`LeaseObservation::verdict`]), what we write when we acquire, renew or release it
//! ([`acquisition_record`], [`renewal_record`], [`release_record`]), and our own renew deadline
//! ([`HeldLease`]). No I/O, no clock reads: every instant arrives as an argument.
//!
//! # Two clocks, one rule
//!
//! Expiry of *another* holder's lease is judged only on our monotonic clock: from the instant we
//! first observed the current record ([`LeaseObservation::observed_at`]), never by comparing the
//! holder's `renewTime` with our wall clock. A holder whose wall clock is skewed (`renewTime`
//! far in the future or the past) therefore changes nothing. Wall time ([`jiff::Timestamp`]) is
//! only *written* (`acquireTime`, `renewTime`), for humans and for other tools.
//!
//! Our *own* tenure ends at `last_renew_sent_at + renew_deadline` ([`HeldLease::deadline`]):
//! the instant the renew request was *sent*, not when its answer arrived, because the API server
//! may have recorded the renewal at any point in between, and others start counting from when
//! they see it. Since `renew_deadline < duration`, we stop forging (S1, S2) at least
//! `duration - renew_deadline` before anyone else may judge the lease expired; that margin also
//! absorbs request latency and clock-rate differences, so every API request of the elector must
//! time out well within it.
//!
//! # A lease held under our own name after a restart
//!
//! A StatefulSet pod restarted with the same name (or just the manager container restarted) may
//! find the Lease still held under its identity. Like client-go we treat it as ours
//! ([`Verdict::Ours`]): renewing keeps `acquireTime` and `leaseTransitions`. This is safe
//! because a StatefulSet never runs two pods with one identity at once, and because the manager
//! establishes the standby state first at start-up (credentials removed, node signalled:
//! [`crate::decision::startup_plan`]) and only forges after its *own* renewal gives it a deadline
//! ([`HeldLease::acquired`]); nothing the previous process did extends our deadline.

#[cfg(test)]
mod tests;

use std::ops::{Add, Sub};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use crate::config::LeaseTiming;

/// A monotonic instant: the time since an arbitrary origin fixed per process (the actors map
/// `std::time::Instant` onto it). Never compared across processes or with wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(Duration);

impl Mono {
    /// The origin.
    pub const ZERO: Mono = Mono(Duration::ZERO);

    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Mono {
        Mono(Duration::from_nanos(nanos))
    }

    /// The instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Mono {
        Mono(Duration::from_millis(millis))
    }

    /// The instant `d` after the origin.
    pub const fn from_duration(d: Duration) -> Mono {
        Mono(d)
    }

    /// The time since the origin.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self + d`, saturating at the largest representable instant (never panics).
    pub fn saturating_add(self, d: Duration) -> Mono {
        Mono(self.0.saturating_add(d))
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    pub fn saturating_since(self, earlier: Mono) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    /// Saturating, like [`Mono::saturating_add`].
    fn add(self, d: Duration) -> Mono {
        self.saturating_add(d)
    }
}

impl Sub<Mono> for Mono {
    type Output = Duration;
    /// Saturating, like [`Mono::saturating_since`].
    fn sub(self, earlier: Mono) -> Duration {
        self.saturating_since(earlier)
    }
}

/// The fields of a Lease's spec that leader election reads and writes (`preferredHolder` and
/// `strategy` are not used). Times are parsed wall times, informational only (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    /// `holderIdentity`; `None` or `""` means vacant.
    pub holder_identity: Option<String>,
    /// `leaseDurationSeconds`; other tools may omit it (we then use our configured duration).
    pub lease_duration_seconds: Option<i32>,
    /// `acquireTime`: when the current holder acquired it.
    pub acquire_time: Option<Timestamp>,
    /// `renewTime`: the holder's wall clock at its last renewal (never trusted for expiry).
    pub renew_time: Option<Timestamp>,
    /// `leaseTransitions`: how often the holder changed; missing counts as 0.
    pub lease_transitions: Option<i32>,
}

impl LeaseRecord {
    /// The holder, if any (an empty identity is no holder).
    pub fn holder(&self) -> Option<&str> {
        self.holder_identity.as_deref().filter(|h| !h.is_empty())
    }

    /// True when nobody holds the lease (never acquired, or released).
    pub fn is_vacant(&self) -> bool {
        self.holder().is_none()
    }

    /// True when `identity` is the holder.
    pub fn is_held_by(&self, identity: &str) -> bool {
        self.holder() == Some(identity)
    }

    /// The duration the holder announced, or `fallback` when it is missing or not positive.
    pub fn duration_or(&self, fallback: Duration) -> Duration {
        match self.lease_duration_seconds {
            Some(s) if s > 0 => Duration::from_secs(u64::from(s.unsigned_abs())),
            _ => fallback,
        }
    }

    /// Reads the leader-election fields of a Lease spec.
    pub fn from_spec(spec: &LeaseSpec) -> LeaseRecord {
        LeaseRecord {
            holder_identity: spec.holder_identity.clone(),
            lease_duration_seconds: spec.lease_duration_seconds,
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            lease_transitions: spec.lease_transitions,
        }
    }

    /// The Lease spec to write (the adapter adds `resourceVersion` as the precondition).
    pub fn to_spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: self.holder_identity.clone(),
            lease_duration_seconds: self.lease_duration_seconds,
            acquire_time: self.acquire_time.map(MicroTime),
            renew_time: self.renew_time.map(MicroTime),
            lease_transitions: self.lease_transitions,
            ..LeaseSpec::default()
        }
    }
}

/// A Lease record as we last observed it, and *when* we first saw this exact record on our
/// monotonic clock (client-go's `observedTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseObservation {
    /// The record last read.
    pub record: LeaseRecord,
    /// Its `metadata.resourceVersion`: the precondition of our next write (409 = someone won).
    pub resource_version: Option<String>,
    /// When we first saw `record` unchanged since: the arrival of the first response that
    /// carried it (arrival, not sending, so that expiry is judged late rather than early).
    pub observed_at: Mono,
}

/// What a candidate may do with a lease it observed ([`LeaseObservation::verdict`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody holds it (absent, never held or released): acquire now.
    Vacant,
    /// Someone else holds it, but it has gone unrenewed for its whole duration on our clock.
    Expired {
        /// The holder whose lease expired.
        holder: String,
    },
    /// It is held under our identity: renew it (module docs: restart with the same name).
    Ours,
    /// Someone else holds it: wait; the earliest takeover is `until` unless it is renewed.
    HeldBy {
        /// The current holder.
        holder: String,
        /// Our monotonic instant from which it counts as expired if still unchanged.
        until: Mono,
    },
}

impl Verdict {
    /// True when a write with our identity may be attempted now.
    pub fn may_acquire(&self) -> bool {
        !matches!(self, Verdict::HeldBy { .. })
    }
}

impl LeaseObservation {
    /// Folds a fresh read into the previous observation: `observed_at` moves to `received_at`
    /// only when the record itself changed (holder, duration, times or transitions), exactly as
    /// client-go compares the raw record. A changed `resourceVersion` alone (a label edit) does
    /// not restart the clock, but is kept as the next write precondition.
    pub fn observe(
        prev: Option<&LeaseObservation>,
        record: LeaseRecord,
        resource_version: Option<String>,
        received_at: Mono,
    ) -> LeaseObservation {
        let observed_at = match prev {
            Some(p) if p.record == record => p.observed_at,
            _ => received_at,
        };
        LeaseObservation {
            record,
            resource_version,
            observed_at,
        }
    }

    /// The duration that applies to this record: its own, else ours.
    pub fn duration(&self, timing: &LeaseTiming) -> Duration {
        self.record.duration_or(timing.duration)
    }

    /// The earliest instant (our clock) at which a standby may take over if the record stays
    /// unchanged: now for a vacant lease, else `observed_at + duration`.
    pub fn earliest_takeover(&self, timing: &LeaseTiming) -> Mono {
        if self.record.is_vacant() {
            self.observed_at
        } else {
            self.observed_at + self.duration(timing)
        }
    }

    /// True when the holder has gone unrenewed for its whole duration as of `now` (our clock).
    /// A vacant lease is not "expired", it is [`Verdict::Vacant`].
    pub fn is_expired(&self, now: Mono, timing: &LeaseTiming) -> bool {
        !self.record.is_vacant() && now >= self.observed_at + self.duration(timing)
    }

    /// May `me` acquire or renew now? Judged on our monotonic clock only: the holder's
    /// `renewTime` plays no part, so its clock skew cannot matter.
    pub fn verdict(&self, me: &str, now: Mono, timing: &LeaseTiming) -> Verdict {
        match self.record.holder() {
            None => Verdict::Vacant,
            Some(h) if h == me => Verdict::Ours,
            Some(h) if self.is_expired(now, timing) => Verdict::Expired {
                holder: h.to_string(),
            },
            Some(h) => Verdict::HeldBy {
                holder: h.to_string(),
                until: self.earliest_takeover(timing),
            },
        }
    }
}

/// The Lease holder identity of a pod: its name, or `NAME_UID` when its UID is known. A pod
/// that replaces a force-deleted one of the same name has a new UID, so it finds the Lease held
/// by *another* identity and waits out that tenure ([`Verdict::HeldBy`]) instead of renewing it
/// as its own ([`Verdict::Ours`]) while the old incarnation may still forge. A restarted
/// container of the same pod keeps the UID, and renews at once as before.
pub fn holder_identity(pod: &str, uid: Option<&str>) -> String {
    match uid.filter(|u| !u.is_empty()) {
        Some(u) => format!("{pod}_{u}"),
        None => pod.to_owned(),
    }
}

/// The pod name in a holder identity ([`holder_identity`]): everything before the first `_`
/// (a pod name, a DNS subdomain, never contains one).
pub fn holder_pod(identity: &str) -> &str {
    identity.split_once('_').map_or(identity, |(pod, _)| pod)
}

/// Whether a peer region's Lease record speaks for that region: when its CardanoForgeCluster
/// names an `activeLeader`, only a Lease held by that pod does. A Lease held by another pod, or
/// vacant, may be a stale object of an old deployment (another lease name) or an election in
/// progress, and is no evidence that the region does not forge. Without an `activeLeader` the
/// Lease is taken as it is.
pub fn speaks_for_peer(record: &LeaseRecord, active_leader: Option<&str>) -> bool {
    match active_leader.filter(|l| !l.is_empty()) {
        None => true,
        Some(leader) => record.holder().is_some_and(|h| holder_pod(h) == leader),
    }
}

/// The verdict when the Lease may also not exist yet (`None`: create it, i.e. vacant).
pub fn verdict(obs: Option<&LeaseObservation>, me: &str, now: Mono, timing: &LeaseTiming) -> Verdict {
    obs.map_or(Verdict::Vacant, |o| o.verdict(me, now, timing))
}

/// Our configured duration in whole seconds, as `leaseDurationSeconds` (at least 1).
fn duration_seconds(timing: &LeaseTiming) -> i32 {
    i32::try_from(timing.duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// The record to write when `me` acquires the lease (or renews one already held under its
/// name, see [`Verdict::Ours`]): holder = us, `renewTime` = `wall`, our duration;
/// `acquireTime` = `wall` and `leaseTransitions` + 1 (missing counts as 0) only when the
/// holder changes, else both are kept.
pub fn acquisition_record(
    prev: Option<&LeaseRecord>,
    me: &str,
    wall: Timestamp,
    timing: &LeaseTiming,
) -> LeaseRecord {
    match prev {
        Some(p) if p.is_held_by(me) => renewal_record(p, me, wall, timing),
        _ => {
            let transitions = prev.and_then(|p| p.lease_transitions).unwrap_or(0);
            LeaseRecord {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(duration_seconds(timing)),
                acquire_time: Some(wall),
                renew_time: Some(wall),
                lease_transitions: Some(transitions.saturating_add(1)),
            }
        }
    }
}

/// The record to write when `me`, the holder, renews: only `renewTime` (and our duration)
/// change; `acquireTime` and `leaseTransitions` are kept (missing transitions become 0).
pub fn renewal_record(prev: &LeaseRecord, me: &str, wall: Timestamp, timing: &LeaseTiming) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration_seconds(timing)),
        acquire_time: prev.acquire_time.or(Some(wall)),
        renew_time: Some(wall),
        lease_transitions: Some(prev.lease_transitions.unwrap_or(0)),
    }
}

/// The record to write when releasing (graceful shutdown, S2 after `Remove` + `Reload`): an
/// empty holder, so standbys watching the Lease see it vacant at once; as client-go does, a
/// 1 s duration and unchanged transitions.
pub fn release_record(prev: &LeaseRecord, wall: Timestamp) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some(String::new()),
        lease_duration_seconds: Some(1),
        acquire_time: Some(wall),
        renew_time: Some(wall),
        lease_transitions: Some(prev.lease_transitions.unwrap_or(0)),
    }
}

/// Our own tenure: when the last *successful* acquire or renew request was sent, and the
/// resulting deadline. Built by the LeaseElector, reported to the Decider as a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// When the last successful acquire/renew request was sent (not when it was answered).
    pub last_renew_sent_at: Mono,
    /// `last_renew_sent_at + renew_deadline`: forging must have stopped by then (S1, S2).
    pub deadline: Mono,
}

impl HeldLease {
    /// The tenure after a successful acquisition whose request was sent at `sent_at`.
    pub fn acquired(sent_at: Mono, timing: &LeaseTiming) -> HeldLease {
        HeldLease {
            last_renew_sent_at: sent_at,
            deadline: renew_deadline(sent_at, timing),
        }
    }

    /// The tenure after a successful renewal sent at `sent_at`. A late answer to an older
    /// request never moves the deadline backwards, nor does it move it forward past what the
    /// newest success allows.
    pub fn renewed(self, sent_at: Mono, timing: &LeaseTiming) -> HeldLease {
        if sent_at <= self.last_renew_sent_at {
            return self;
        }
        HeldLease::acquired(sent_at, timing)
    }

    /// True once `now` has reached the deadline: remove credentials and signal the node now.
    pub fn must_stop_forging(&self, now: Mono) -> bool {
        now >= self.deadline
    }

    /// When the next renewal is due (`retry_period` after the last one was sent).
    pub fn next_renew_at(&self, timing: &LeaseTiming) -> Mono {
        self.last_renew_sent_at + timing.retry_period
    }
}

/// Our renew deadline for a successful request sent at `sent_at`.
pub fn renew_deadline(sent_at: Mono, timing: &LeaseTiming) -> Mono {
    sent_at + timing.renew_deadline
}
