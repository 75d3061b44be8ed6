//! Contending and releasing, on the Decider's commands: `Contend(on)`, and `Release`, which ends
//! our tenure before it writes the release record (S2: the Decider never believes it holds a
//! lease a standby may already have) and answers once that record is written.

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::lease::release_record;
use tokio::sync::oneshot;

use super::{ACTOR, AfterRead, LeaseElector, MAX_RELEASE_CONFLICTS, OP_RELEASE, Seen};
use crate::{
    messages::{CommandFailed, CommandResult},
    ports::{ApiError, ApiErrorKind, LeaseSnapshot},
};

impl LeaseElector {
    /// `Contend(on)` from the Decider.
    pub(super) fn set_contending(&mut self, on: bool, ctx: &mut Context<Self>) {
        if on == self.contending {
            return;
        }
        self.contending = on;
        tracing::info!(actor = ACTOR, identity = %self.identity, contending = on, "contend changed");
        if on {
            self.conn.conflicts = 0;
            self.consider(ctx);
            self.schedule_tick(ctx);
        } else {
            Self::cancel(ctx, &mut self.conn.tick);
            Self::cancel(ctx, &mut self.conn.takeover);
        }
    }

    /// True when we might hold the Lease (by tenure, by record, or not known yet).
    fn may_hold(&self) -> bool {
        self.held.is_some() || self.record_is_ours() || matches!(self.conn.seen, Seen::Unknown)
    }

    /// `Release` from the Decider: stop contending; answer at once when the Lease is not ours,
    /// else queue the answer until the release record is written.
    pub(super) fn release(&mut self, ctx: &mut Context<Self>) -> Option<oneshot::Receiver<CommandResult>> {
        self.set_contending(false, ctx);
        if !self.conn.in_flight && self.releases.is_empty() && !self.may_hold() {
            tracing::info!(actor = ACTOR, identity = %self.identity, "release: we do not hold the lease");
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if self.releases.is_empty() {
            self.conn.conflicts = 0;
        }
        self.releases.push(tx);
        self.release_step(ctx);
        Some(rx)
    }

    /// One step of releasing, when no call is in flight: end our tenure (reported before the
    /// write, so the Decider never believes it holds a lease a standby may already have), then
    /// write the release record with the current resourceVersion.
    pub(super) fn release_step(&mut self, ctx: &mut Context<Self>) {
        if self.releases.is_empty() || self.conn.in_flight || !self.conn.connected {
            return;
        }
        Self::cancel(ctx, &mut self.conn.tick);
        Self::cancel(ctx, &mut self.conn.takeover);
        if self.held.is_some() {
            self.lose(None, "released", ctx);
        }
        let o = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Release, ctx),
            Seen::Present(o) if o.record.is_held_by(&self.identity) => o,
            _ => {
                tracing::info!(actor = ACTOR, identity = %self.identity, "release: the lease is not ours; nothing to write");
                return self.answer_releases(Ok(()));
            }
        };
        if self.conn.conflicts >= MAX_RELEASE_CONFLICTS {
            return self.answer_releases(Err(CommandFailed::new(
                ApiErrorKind::Conflict,
                "releasing the lease: it kept changing under us (409)",
            )));
        }
        let Some(rv) = o.resource_version.clone() else {
            return self.read(AfterRead::Release, ctx);
        };
        let record = release_record(&o.record, self.clock.wall());
        self.conn.in_flight = true;
        let call = self.guarded(OP_RELEASE, self.api.replace(rv, record));
        ctx.spawn(
            call.into_actor(self)
                .map(|(result, took), act, ctx| act.on_release_write(result, took, ctx)),
        );
    }

    fn on_release_write(
        &mut self,
        result: Result<LeaseSnapshot, ApiError>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(OP_RELEASE, took);
        match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(Some(snapshot));
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = "", "lease released");
                self.answer_releases(Ok(()));
                self.reconcile(ctx);
            }
            Err(e @ ApiError::Conflict(_)) => {
                self.count_error(OP_RELEASE, &e);
                self.conn.conflicts += 1;
                self.read(AfterRead::Release, ctx);
            }
            Err(e) => {
                self.count_error(OP_RELEASE, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, error = %e, "releasing the lease failed");
                self.answer_releases(Err(CommandFailed::new(
                    e.kind(),
                    format!("releasing the lease: {e}"),
                )));
            }
        }
    }

    pub(super) fn answer_releases(&mut self, result: CommandResult) {
        for tx in self.releases.drain(..) {
            let _ = tx.send(result.clone());
        }
    }
}
