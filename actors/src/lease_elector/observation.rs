//! What the LeaseElector knows of the Lease and what it reported: the holder as last read or
//! watched, folding a snapshot into the observation, reconciling the facts reported with it,
//! and starting, extending or ending our tenure (`LeaseAcquired`, `LeaseRenewed`, `LeaseLost`).

use std::time::Duration;

use actix::{AsyncContext, Context};
use forge_core::{
    decision::Event,
    lease::{HeldLease, LeaseObservation, Mono},
};

use super::{ACTOR, LeaseElector, Seen};
use crate::ports::LeaseSnapshot;

impl LeaseElector {
    /// The holder as we know it (`None`: vacant or absent); `None` too when unknown.
    fn known_holder(&self) -> Option<Option<String>> {
        match &self.conn.seen {
            Seen::Unknown => None,
            Seen::Absent => Some(None),
            Seen::Present(o) => Some(o.record.holder().map(str::to_string)),
        }
    }

    /// The holder to name in `LeaseLost`: never ourselves.
    pub(super) fn other_holder(&self) -> Option<String> {
        self.known_holder().flatten().filter(|h| *h != self.identity)
    }

    pub(super) fn record_is_ours(&self) -> bool {
        matches!(&self.conn.seen, Seen::Present(o) if o.record.is_held_by(&self.identity))
    }

    /// Folds a read or watched Lease into the observation. A snapshot older than the one we
    /// have (a watch event overtaken by our own write's answer) is ignored: resourceVersions
    /// are opaque by contract but etcd revisions in practice, so they are compared only when
    /// both parse as numbers.
    pub(super) fn observe(&mut self, snapshot: Option<LeaseSnapshot>) -> bool {
        let now = self.clock.now();
        match snapshot {
            None => self.conn.seen = Seen::Absent,
            Some(s) => {
                let prev = match &self.conn.seen {
                    Seen::Present(o) => Some(o),
                    _ => None,
                };
                let version = |v: Option<&String>| v.and_then(|v| v.parse::<u64>().ok());
                if let (Some(old), Some(new)) = (
                    version(prev.and_then(|p| p.resource_version.as_ref())),
                    version(s.resource_version.as_ref()),
                ) && new < old
                {
                    return false;
                }
                self.conn.seen =
                    Seen::Present(LeaseObservation::observe(prev, s.record, s.resource_version, now));
            }
        }
        true
    }

    /// Brings what we reported in line with what we know: a tenure ends when the record names
    /// someone else (or no one); a standby reports a changed holder. Re-arms the takeover timer.
    pub(super) fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let Some(holder) = self.known_holder() else {
            return;
        };
        if self.held.is_some() {
            if holder.as_deref() != Some(self.identity.as_str()) {
                let reason = if holder.is_some() {
                    "another holder took the lease"
                } else {
                    "the lease was emptied or deleted by someone else"
                };
                self.lose(holder, reason, ctx);
            }
        } else {
            let shown = holder.filter(|h| *h != self.identity);
            if shown != self.reported_holder {
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = ?shown, "lease holder changed");
                self.reported_holder = shown.clone();
                self.report(Event::LeaseLost { holder: shown });
            }
        }
        self.arm_takeover(ctx);
    }

    /// Ends our tenure: report `LeaseLost{holder}` once, stop the deadline timer.
    pub(super) fn lose(&mut self, holder: Option<String>, reason: &'static str, ctx: &mut Context<Self>) {
        if self.held.take().is_none() {
            return;
        }
        if let Some(h) = self.deadline_timer.take() {
            ctx.cancel_future(h);
        }
        self.leadership_changed(false);
        tracing::info!(actor = ACTOR, identity = %self.identity, holder = ?holder, reason, "lease lost");
        self.reported_holder = holder.clone();
        self.report(Event::LeaseLost { holder });
    }

    /// A write of ours succeeded: start or extend our tenure from when it was sent.
    pub(super) fn won(&mut self, sent_at: Mono, took: Duration, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let next = match self.held {
            Some(h) => h.renewed(sent_at, &self.timing),
            None => HeldLease::acquired(sent_at, &self.timing),
        };
        if next.must_stop_forging(now) {
            tracing::warn!(actor = ACTOR, identity = %self.identity, took_ms = took.as_millis() as u64,
                "a lease write succeeded only after its renew deadline; not counted");
            return;
        }
        let deadline = next.deadline;
        match self.held.replace(next) {
            Some(_) => {
                if let Some(m) = &self.metrics {
                    m.lease_renew_latency.observe(took.as_secs_f64());
                }
                tracing::debug!(actor = ACTOR, identity = %self.identity, ?deadline, "lease renewed");
                self.report(Event::LeaseRenewed { deadline });
            }
            None => {
                self.reported_holder = None;
                self.leadership_changed(true);
                let transitions = match &self.conn.seen {
                    Seen::Present(o) => o.record.lease_transitions,
                    _ => None,
                };
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = %self.identity,
                    ?deadline, ?transitions, "lease acquired");
                self.report(Event::LeaseAcquired { deadline });
            }
        }
        self.arm_deadline(ctx);
    }
}
