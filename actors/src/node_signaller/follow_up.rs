//! A start that an earlier stopping reload may undo is followed by one more reload (module docs
//! of the NodeSignaller, "A start is not undone by an earlier stop"; docs/safety-findings.md
//! F24).

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
        if let Some(handle) = self.follow_up.take() {
            ctx.cancel_future(handle);
        }
    }

    /// The follow-up reload, when the node is still meant to forge: no stop since the start
    /// (and no fence), the same node process (through the guard it may be known only to the
    /// guard), and through the guard the permit still held.
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
