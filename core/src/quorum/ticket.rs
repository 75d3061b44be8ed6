//! One ticket: the rule for taking it, what we know of it, and the next request it calls for.
//! No I/O: the ticket keeper sends the requests and reports their outcomes back here.
use std::time::Duration;

use jiff::Timestamp;

use super::TicketTiming;
use crate::lease::{self, HeldLease, LeaseObservation, LeaseRecord, Mono, Verdict};

/// May `me` write a ticket whose holder is `holder`, first seen unchanged at `observed_at` (our
/// monotonic clock), with the holder's announced `duration`, at `now`? The client-go rule:
/// free or released ([`Verdict::Vacant`]), ours ([`Verdict::Ours`]), or unchanged for its whole
/// duration on our clock ([`Verdict::Expired`]); otherwise [`Verdict::HeldBy`] with the
/// earliest instant it may expire. No cross-machine clock is compared.
pub fn ticket_verdict(
    holder: Option<&str>,
    me: &str,
    observed_at: Mono,
    duration: Duration,
    now: Mono,
) -> Verdict {
    match holder.filter(|h| !h.is_empty()) {
        None => Verdict::Vacant,
        Some(h) if h == me => Verdict::Ours,
        Some(h) if now >= observed_at + duration => Verdict::Expired {
            holder: h.to_string(),
        },
        Some(h) => Verdict::HeldBy {
            holder: h.to_string(),
            until: observed_at + duration,
        },
    }
}

/// What the keeper should do with the tickets, from the Decider's [`Intent`] (see [`want`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Want {
    /// Take every ticket we may, and renew those we hold: we should forge.
    Take,
    /// Renew what we hold, take nothing new: we should not forge, but our node's stop is not
    /// confirmed yet, so our tickets must not pass on (S2).
    Keep,
    /// Release what we hold: we should not forge and our node is confirmed stopped.
    Release,
    /// Touch nothing: we are not the region's local leader.
    Leave,
}

/// What the Decider tells the ticket keeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Intent {
    /// We hold the region's local lease (only a local leader touches tickets).
    pub local_leader: bool,
    /// The decision engine says this region should forge if it held a majority.
    pub contend: bool,
    /// Our node is confirmed not forging (the stop plan completed, or it never started).
    pub stopped: bool,
}

/// Yield then release: a holder that should yield keeps its tickets until its node's stop is
/// confirmed, and only then releases them, so the better region takes them in a round trip
/// instead of waiting for their expiry, and never while our node may still forge (S1, S2).
pub fn want(intent: Intent) -> Want {
    match intent {
        Intent {
            local_leader: false, ..
        } => Want::Leave,
        Intent { contend: true, .. } => Want::Take,
        Intent { stopped: false, .. } => Want::Keep,
        Intent { stopped: true, .. } => Want::Release,
    }
}

/// What we last saw of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nothing yet, or our last write failed: read before writing.
    Unread,
    /// The Lease does not exist (create it).
    Absent,
    /// Its record, when we first saw it unchanged, and its `resourceVersion`.
    Record(LeaseObservation),
}

/// The next request for one ticket ([`TicketState::step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketStep {
    /// Read it (nothing known, or a write failed).
    Read,
    /// Create it (it did not exist), holding it.
    Create {
        /// The record to write.
        record: LeaseRecord,
    },
    /// Acquire or renew it: replace it under `resource_version` (409: someone else wrote).
    Write {
        /// The record to write.
        record: LeaseRecord,
        /// The precondition.
        resource_version: Option<String>,
        /// True when this takes it from nobody or from an expired holder (a transition).
        acquire: bool,
    },
    /// Release it (empty holder) under `resource_version`. Call
    /// [`TicketState::releasing`] before sending.
    Release {
        /// The record to write.
        record: LeaseRecord,
        /// The precondition.
        resource_version: Option<String>,
    },
    /// Nothing to write before `until` (a renewal, or the earliest expiry of another holder):
    /// read again by then, or when the watch shows a change.
    WaitUntil(Mono),
    /// Nothing to do.
    Idle,
}

/// Our state of one ticket: what we saw, and our tenure if we hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    /// What we last saw.
    pub seen: Seen,
    /// Our tenure: set by a successful write, ended by seeing another holder or releasing.
    pub held: Option<HeldLease>,
}

impl Default for TicketState {
    fn default() -> Self {
        TicketState {
            seen: Seen::Unread,
            held: None,
        }
    }
}

impl TicketState {
    /// Our deadline on this ticket at `now`, if we hold it: `None` once it has passed.
    pub fn held_until(&self, now: Mono) -> Option<Mono> {
        self.held.map(|h| h.deadline).filter(|d| *d > now)
    }

    /// A read answered: `None` if the Lease does not exist. Another holder ends our tenure at
    /// once (fail-safe: we never count a ticket someone else holds).
    pub fn observed(
        &mut self,
        record: Option<LeaseRecord>,
        resource_version: Option<String>,
        received_at: Mono,
        me: &str,
    ) {
        match record {
            None => {
                self.held = None;
                self.seen = Seen::Absent;
            }
            Some(record) => {
                if !record.is_held_by(me) {
                    self.held = None;
                }
                let prev = match &self.seen {
                    Seen::Record(o) => Some(o),
                    _ => None,
                };
                self.seen = Seen::Record(LeaseObservation::observe(
                    prev,
                    record,
                    resource_version,
                    received_at,
                ));
            }
        }
    }

    /// Our write (create, acquire or renew) sent at `sent_at` succeeded: we hold the ticket until
    /// `sent_at + renew_deadline` (a late answer to an older write never moves it back).
    pub fn wrote(
        &mut self,
        record: LeaseRecord,
        resource_version: Option<String>,
        sent_at: Mono,
        received_at: Mono,
        timing: &TicketTiming,
    ) {
        let lt = timing.as_lease_timing();
        self.held = Some(match self.held {
            Some(h) => h.renewed(sent_at, &lt),
            None => HeldLease::acquired(sent_at, &lt),
        });
        self.seen = Seen::Record(LeaseObservation {
            record,
            resource_version,
            observed_at: received_at,
        });
    }

    /// Our write failed (409, timeout, error): read again before the next write. Our tenure
    /// keeps its deadline: it is neither extended nor cut short (the write may have landed).
    pub fn write_failed(&mut self) {
        self.seen = Seen::Unread;
    }

    /// We are about to send a release: our tenure ends now, before the write, so the forge
    /// deadline never counts a ticket we are giving away.
    pub fn releasing(&mut self) {
        self.held = None;
    }

    /// The next request for this ticket, for `me`, given what we [`Want`], at `now` (`wall` is
    /// only written into the record, for humans).
    pub fn step(
        &self,
        me: &str,
        want: Want,
        now: Mono,
        wall: Timestamp,
        timing: &TicketTiming,
    ) -> TicketStep {
        let lt = timing.as_lease_timing();
        if want == Want::Leave {
            return TicketStep::Idle;
        }
        let obs = match &self.seen {
            Seen::Unread => return TicketStep::Read,
            Seen::Absent => {
                return match want {
                    Want::Take => TicketStep::Create {
                        record: lease::acquisition_record(None, me, wall, &lt),
                    },
                    _ => TicketStep::Idle,
                };
            }
            Seen::Record(o) => o,
        };
        let verdict = ticket_verdict(
            obs.record.holder(),
            me,
            obs.observed_at,
            obs.record.duration_or(timing.duration),
            now,
        );
        match (want, verdict) {
            (Want::Release, Verdict::Ours) => TicketStep::Release {
                record: lease::release_record(&obs.record, wall),
                resource_version: obs.resource_version.clone(),
            },
            (Want::Release, _) => TicketStep::Idle,
            (Want::Take | Want::Keep, Verdict::Ours) => match self.held {
                // Renew on the retry period; a ticket held under our name that we have not
                // written since we started (a restart) is renewed at once.
                Some(h) if now < h.next_renew_at(&lt) => TicketStep::WaitUntil(h.next_renew_at(&lt)),
                _ => TicketStep::Write {
                    record: lease::renewal_record(&obs.record, me, wall, &lt),
                    resource_version: obs.resource_version.clone(),
                    acquire: false,
                },
            },
            (Want::Take, Verdict::Vacant | Verdict::Expired { .. }) => TicketStep::Write {
                record: lease::acquisition_record(Some(&obs.record), me, wall, &lt),
                resource_version: obs.resource_version.clone(),
                acquire: true,
            },
            (Want::Take, Verdict::HeldBy { until, .. }) => TicketStep::WaitUntil(until),
            (Want::Keep, _) => TicketStep::Idle,
            (Want::Leave, _) => TicketStep::Idle,
        }
    }
}
