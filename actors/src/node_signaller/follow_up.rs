//! A start that an earlier stopping reload may undo is followed by one more reload (module docs
//! of the NodeSignaller, "A start is not undone by an earlier stop"; docs/safety-findings.md
//! F24), and, like the Decider's own non-stopping reloads, only while the stop at the forging
//! deadline would not have to wait for it (F21).

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::decision::ReloadReason;
use forge_guard::protocol::Request;
use tokio::time::Instant;

use super::NodeSignaller;
use crate::ports::ProcessIdentity;

impl NodeSignaller {
    /// A stopping reload reached the node now (ours, or the guard's own fence): it takes effect
    /// within `STOP_GRACE`, and a start sent before then may take effect first.
    pub(super) fn stopping_reload_sent(&mut self) {
        let done = Instant::now() + self.stop.grace;
        self.stops_done_by = Some(self.stops_done_by.map_or(done, |t| t.max(done)));
    }

    /// After a start or rotation went out: if an earlier stopping reload may still be under way
    /// in the node, one more reload follows once it has had its `STOP_GRACE`.
    pub(super) fn follow_up_if_undoable(&mut self, reason: ReloadReason, ctx: &mut Context<Self>) {
        if !matches!(reason, ReloadReason::StartForging | ReloadReason::Rotation) {
            return;
        }
        // This start takes effect after every stop sent so far, or is followed up itself.
        self.follow_up_deferred = None;
        let now = Instant::now();
        let Some(at) = self.stops_done_by.filter(|t| *t > now) else {
            return;
        };
        self.cancel_follow_up(ctx);
        let wait = at - now;
        tracing::info!(
            actor = "node_signaller",
            reason = reason.as_str(),
            in_ms = wait.as_millis() as u64,
            "reload sent while an earlier stopping reload may still be under way in the node (it handles \
             SIGHUPs concurrently: that one could take effect last and leave it not forging); reloading once \
             more when it has had its STOP_GRACE"
        );
        let node = self.node;
        self.follow_up = Some(ctx.run_later(wait, move |act, ctx| act.follow_up(node, ctx)));
    }

    /// A stop is on its way: the start it ends needs no follow-up.
    pub(super) fn cancel_follow_up(&mut self, ctx: &mut Context<Self>) {
        self.follow_up_deferred = None;
        if let Some(handle) = self.follow_up.take() {
            ctx.cancel_future(handle);
        }
    }

    /// F21: how little is left before the forging deadline, when that is less than the reload
    /// room (no deadline known: nothing is left); `None` when a follow-up may go now.
    fn too_close_to_deadline(&self) -> Option<Duration> {
        if self.reload_room.is_zero() {
            return None;
        }
        let left = self
            .deadlines
            .forging()
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
        (left < self.reload_room).then_some(left)
    }

    /// After a lease fact: a follow-up deferred for want of room goes now if the fact left it.
    pub(super) fn resume_follow_up(&mut self, ctx: &mut Context<Self>) {
        if self.too_close_to_deadline().is_some() {
            return;
        }
        let Some(node) = self.follow_up_deferred.take() else {
            return;
        };
        tracing::info!(
            actor = "node_signaller",
            room_ms = self.reload_room.as_millis() as u64,
            "the deferred follow-up reload goes now: the lease's deadline moved and leaves room for it"
        );
        self.follow_up(node, ctx);
    }

    /// The follow-up reload, when the node is still meant to forge: no stop since the start
    /// (and no fence), the same node process (through the guard it may be known only to the
    /// guard), and through the guard the permit still held. With less than the reload room left
    /// before the forging deadline it is deferred to the next lease fact that leaves room.
    fn follow_up(&mut self, node: Option<ProcessIdentity>, ctx: &mut Context<Self>) {
        self.follow_up = None;
        let permitted = self.guard.as_ref().is_none_or(|g| g.permitted);
        if !self.told_to_forge || !permitted || self.node != node {
            tracing::debug!(
                actor = "node_signaller",
                "follow-up reload not sent: the node is no longer meant to forge, or another process runs"
            );
            return;
        }
        if let Some(left) = self.too_close_to_deadline() {
            // F21: a stop at the deadline would wait for this reload's STOP_GRACE first.
            tracing::info!(
                actor = "node_signaller",
                left_ms = left.as_millis() as u64,
                room_ms = self.reload_room.as_millis() as u64,
                "follow-up reload deferred: too little time is left before the forging deadline (the stop there \
                 would wait for it); it goes after the next lease renewal that leaves room, if the node is still \
                 meant to forge then"
            );
            self.follow_up_deferred = Some(node);
            return;
        }
        tracing::info!(
            actor = "node_signaller",
            "reloading the node once more: every earlier stopping reload has had its STOP_GRACE, so this one \
             takes effect last"
        );
        let Some(client) = self.live_guard() else {
            if let Some(node) = self.node {
                let _ = self.sighup(node, ReloadReason::Reassert);
            }
            return;
        };
        // In line with the other reloads (the actor answers nothing meanwhile); the guard refuses
        // it if the permit ended in between.
        ctx.wait(
            async move { client.request(Request::Reload).await }
                .into_actor(self)
                .map(|r, act, _| match r {
                    Ok(_) => act.reloaded(ReloadReason::Reassert, "guard"),
                    Err(e) => tracing::warn!(
                        actor = "node_signaller",
                        kind = e.kind().as_str(),
                        error = %e,
                        "follow-up reload through the node guard failed"
                    ),
                }),
        );
    }
}
