//! Acquiring and renewing: a standby's decision to acquire, the `renewTime` that always moves,
//! the guard of one renew deadline around every call, and the version-checked read and write
//! with what follows their answers (a 409 re-reads and decides again).

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::lease::{LeaseRecord, Mono, Verdict, acquisition_record};
use futures::future::BoxFuture;
use jiff::Timestamp;

use super::{ACTOR, AfterRead, LeaseElector, MAX_IMMEDIATE_CONFLICTS, OP_CREATE, OP_GET, OP_REPLACE, Seen};
use crate::{
    messages::CommandFailed,
    ports::{ApiError, LeaseSnapshot},
};

impl LeaseElector {
    /// A standby acquires now if the verdict allows (vacant, expired, or ours after a restart);
    /// else waits for the takeover timer. Renewals happen only on ticks.
    pub(super) fn consider(&mut self, ctx: &mut Context<Self>) {
        if !self.conn.connected
            || !self.contending
            || self.conn.in_flight
            || !self.releases.is_empty()
            || self.held.is_some()
            || self.conn.conflicts >= MAX_IMMEDIATE_CONFLICTS
        {
            return;
        }
        let now = self.clock.now();
        let verdict = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Consider, ctx),
            Seen::Absent => Verdict::Vacant,
            Seen::Present(o) => o.verdict(&self.identity, now, &self.timing),
        };
        match verdict {
            Verdict::HeldBy { .. } => self.arm_takeover(ctx),
            Verdict::Expired { holder } => {
                tracing::info!(actor = ACTOR, identity = %self.identity, %holder,
                    "the holder's lease expired on our clock; taking over");
                self.write(ctx);
            }
            Verdict::Vacant | Verdict::Ours => self.write(ctx),
        }
    }

    /// The `renewTime` to write: now, but past the one we wrote last (to the microsecond the
    /// API server keeps), so a renewal always changes the record.
    fn write_time(&self, prev: Option<&LeaseRecord>) -> Timestamp {
        let now = self.clock.wall();
        let now_us = now.as_microsecond();
        match prev
            .filter(|r| r.is_held_by(&self.identity))
            .and_then(|r| r.renew_time)
        {
            Some(last) if now_us <= last.as_microsecond() => {
                Timestamp::from_microsecond(last.as_microsecond().saturating_add(1)).unwrap_or(now)
            }
            _ => now,
        }
    }

    /// Runs `call` under our guard (one renew deadline), timing it.
    pub(super) fn guarded<T: Send + 'static>(
        &self,
        op: &'static str,
        call: BoxFuture<'static, Result<T, ApiError>>,
    ) -> impl std::future::Future<Output = (Result<T, ApiError>, Duration)> + 'static {
        let after = self.timing.renew_deadline;
        async move {
            let started = tokio::time::Instant::now();
            let result = match tokio::time::timeout(after, call).await {
                Ok(r) => r,
                Err(_) => Err(ApiError::Timeout { op, after }),
            };
            (result, started.elapsed())
        }
    }

    /// Reads the Lease (one call in flight); [`Self::on_read`] continues.
    pub(super) fn read(&mut self, then: AfterRead, ctx: &mut Context<Self>) {
        self.conn.in_flight = true;
        let call = self.guarded(OP_GET, self.api.get());
        ctx.spawn(
            call.into_actor(self)
                .map(move |(result, took), act, ctx| act.on_read(result, took, then, ctx)),
        );
    }

    fn on_read(
        &mut self,
        result: Result<Option<LeaseSnapshot>, ApiError>,
        took: Duration,
        then: AfterRead,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(OP_GET, took);
        let failed = match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(snapshot);
                self.reconcile(ctx);
                None
            }
            Err(e) => {
                self.count_error(OP_GET, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, error = %e, "reading the lease failed");
                Some(e)
            }
        };
        if !self.releases.is_empty() {
            match failed {
                Some(e) if then == AfterRead::Release => self.answer_releases(Err(CommandFailed::new(
                    e.kind(),
                    format!("reading the lease to release it: {e}"),
                ))),
                _ => self.release_step(ctx),
            }
            return;
        }
        if failed.is_none()
            && then == AfterRead::RetryAfterConflict
            && self.contending
            && self.held.is_some()
            && self.record_is_ours()
            && self.conn.conflicts < MAX_IMMEDIATE_CONFLICTS
        {
            return self.write(ctx);
        }
        if failed.is_none() {
            self.consider(ctx);
        }
        self.schedule_tick(ctx);
    }

    /// Writes our claim (acquire, or renew when the record is ours), version-checked.
    pub(super) fn write(&mut self, ctx: &mut Context<Self>) {
        let prev = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Consider, ctx),
            Seen::Absent => None,
            Seen::Present(o) => Some(o),
        };
        let record = acquisition_record(
            prev.map(|o| &o.record),
            &self.identity,
            self.write_time(prev.map(|o| &o.record)),
            &self.timing,
        );
        let (op, call) = match prev {
            None => (OP_CREATE, self.api.create(record)),
            Some(o) => match &o.resource_version {
                Some(rv) => (OP_REPLACE, self.api.replace(rv.clone(), record)),
                None => return self.read(AfterRead::Consider, ctx),
            },
        };
        let sent_at = self.clock.now();
        self.conn.in_flight = true;
        self.conn.last_write_sent = Some(sent_at);
        let call = self.guarded(op, call);
        ctx.spawn(
            call.into_actor(self)
                .map(move |(result, took), act, ctx| act.on_write(op, sent_at, result, took, ctx)),
        );
    }

    fn on_write(
        &mut self,
        op: &'static str,
        sent_at: Mono,
        result: Result<LeaseSnapshot, ApiError>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(op, took);
        match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(Some(snapshot));
                // A write that lands while a Release waits is not a tenure: it is released next.
                if self.releases.is_empty() {
                    self.won(sent_at, took, ctx);
                }
                self.reconcile(ctx);
            }
            Err(e @ ApiError::Conflict(_)) => {
                self.count_error(op, &e);
                self.conn.conflicts += 1;
                tracing::info!(actor = ACTOR, identity = %self.identity, op, error = %e,
                    "lease write lost a race (409); re-reading");
                return self.read(AfterRead::RetryAfterConflict, ctx);
            }
            Err(e @ ApiError::NotFound(_)) => {
                self.count_error(op, &e);
                self.conn.seen = Seen::Absent;
                self.reconcile(ctx);
                self.consider(ctx);
            }
            Err(e) => {
                self.count_error(op, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, op, error = %e,
                    holding = self.held.is_some(), "lease write failed; retrying next period, deadline unchanged");
            }
        }
        if !self.releases.is_empty() {
            return self.release_step(ctx);
        }
        self.schedule_tick(ctx);
    }
}
