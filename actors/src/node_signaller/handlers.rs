//! One handler per message the NodeSignaller receives, but the guard subscription's
//! (`subscription.rs`); how a reload reaches the node and a stop is confirmed is `delivery.rs`.

use actix::{ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, WrapFuture, fut};
use forge_core::decision::{Event, ReloadReason};
use forge_guard::protocol::Request;
use tokio::time::Instant;

use super::{
    NodeSignaller,
    delivery::{Confirm, guard_gone, reload_via_guard, stops, wait_earlier_reloads, wait_stopped_by_pid},
};
use crate::{
    messages::{CommandError, CommandResult, Fact, NodeProcess, Reload, ReloadResult},
    ports::GuardErrorKind,
};

/// A reload in flight, as the actor future that answers it.
type ReloadFuture = std::pin::Pin<Box<dyn actix::ActorFuture<NodeSignaller, Output = CommandResult>>>;

impl Handler<Reload> for NodeSignaller {
    type Result = AtomicResponse<Self, ReloadResult>;

    fn handle(&mut self, msg: Reload, _ctx: &mut Context<Self>) -> Self::Result {
        let reason = msg.reason;
        let reload = self.reload_future(reason);
        AtomicResponse::new(Box::pin(
            reload.map(move |r, act, _| r.map(|()| act.answer(reason))),
        ))
    }
}

impl NodeSignaller {
    /// The reload asked for, as the future that answers it (module docs).
    fn reload_future(&mut self, reason: ReloadReason) -> ReloadFuture {
        if reason == ReloadReason::Reassert && self.guard.as_ref().is_some_and(|g| g.connected) {
            // The guard sees the node's reconfiguration lines and re-sends a reload the replay
            // lost; a blind re-assert would only add SIGHUPs.
            return Box::pin(fut::ready(Ok(())));
        }
        let pending = self.reloads_pending_for();
        if reason == ReloadReason::Reassert && !pending.is_zero() {
            // A reload may still be under way (and it reads the same files): this one would
            // add nothing, and every stop sent next would have to wait for both (F16, F20). The
            // next re-assert goes once it has had its STOP_GRACE.
            tracing::debug!(
                actor = "node_signaller",
                pending_ms = pending.as_millis() as u64,
                "re-assert not sent: an earlier reload may still be under way in the node"
            );
            return Box::pin(fut::ready(Ok(())));
        }
        if stops(reason) && !pending.is_zero() {
            // F20: the node handles every SIGHUP in a thread of its own, and each reload takes
            // effect whenever its handler is done: an earlier start still under way could take
            // effect after this stop and undo it (and through the guard, the stop's own
            // "Disabling" line would confirm it first). So a stop is sent only once every
            // earlier reload has had its STOP_GRACE. Only stops wait: the actor answers nothing
            // meanwhile (lease facts wait in its mailbox; the LeaseTap gave them to the Decider
            // already), and a start an earlier stop may undo is answered as such, so the
            // Decider reloads once more when that stop has taken effect (F24).
            tracing::info!(
                actor = "node_signaller",
                reason = reason.as_str(),
                held_ms = pending.as_millis() as u64,
                "stop held back until the earlier reload has had its STOP_GRACE (the node handles SIGHUPs \
                 concurrently: sent now, the earlier reload could take effect after it and undo it)"
            );
            let until = Instant::now() + pending;
            if let Some(g) = self.guard.as_ref().filter(|g| g.client.present()) {
                let mut pushed = g.pushed.subscribe();
                let hold = async move {
                    // Cut short when the guard reports its node's exit. The read guard is
                    // dropped at once (never held across an await).
                    let _ =
                        tokio::time::timeout(pending, async { pushed.wait_for(|p| p.exited).await.is_ok() })
                            .await;
                };
                return Box::pin(
                    hold.into_actor(self)
                        .then(move |(), act, _| act.reload_now(reason)),
                );
            }
            if let Some(node) = self.node {
                return Box::pin(
                    wait_earlier_reloads(self.host.clone(), node, until)
                        .into_actor(self)
                        .then(move |gone, act, _| -> ReloadFuture {
                            if gone {
                                act.forging.set(0);
                                act.told(reason);
                                return Box::pin(fut::ready(Ok(())));
                            }
                            act.reload_now(reason)
                        }),
                );
            }
        }
        self.reload_now(reason)
    }
}

impl NodeSignaller {
    /// The guard reported the exit of the node process this signaller knows now (F22): an
    /// `exited` report about another PID (the process before a container restart) confirms
    /// nothing about the current one.
    fn current_node_exited(&self) -> bool {
        let Some(g) = self.guard.as_ref() else {
            return false;
        };
        let p = g.pushed.borrow();
        p.exited
            && self.node.or(self.last_node).is_none_or(|n| {
                u32::try_from(n.pid).ok() == Some(p.state.child_pid) || p.state.child_pid == 0
            })
    }

    /// A reload sent now: through the guard when one runs, else by PID.
    fn reload_now(&mut self, reason: ReloadReason) -> ReloadFuture {
        if stops(reason) && self.current_node_exited() {
            // The kubelet stopped the node and this sidecar at once (a pod deletion, a rollout,
            // an eviction): the guard reported its node's exit, so nothing forges here any more
            // and the lease can go at once.
            tracing::info!(
                actor = "node_signaller",
                reason = reason.as_str(),
                "stop confirmed: the node guard reported that the node exited"
            );
            self.told(reason);
            if let Some(g) = self.guard.as_mut() {
                g.permitted = false;
            }
            return Box::pin(fut::ready(Ok(())));
        }
        let Some(client) = self.live_guard() else {
            return self.pid_reload(reason);
        };
        let deadline = self.permit_deadline();
        // What the guard reported before this reload: a confirmation must come after it.
        let confirm = stops(reason).then(|| {
            let g = self.guard.as_ref().expect("live_guard implies guard mode");
            let before = g.pushed.borrow().clone();
            Confirm {
                pushed: g.pushed.subscribe(),
                // Nothing to wait for when the node was never told to forge and the guard does
                // not see it forging (a standby's shutdown).
                needed: self.told_to_forge || before.state.forging == Some(true) || !before.connected,
                before,
                timeout: self.stop.timeout,
                grace: self.stop.grace,
            }
        });
        let call = async move { reload_via_guard(&*client, reason, deadline, confirm).await };
        Box::pin(
            call.into_actor(self)
                .then(move |result, act, _| act.guard_reloaded(reason, result)),
        )
    }

    /// A reload by PID; a stopping one is answered once confirmed (module docs).
    fn pid_reload(&mut self, reason: ReloadReason) -> ReloadFuture {
        let node = self.node;
        let sent = self.reload(reason);
        // Sent: `reloads_done_by` now includes this reload, behind every earlier one.
        let done_by = self
            .reloads_done_by
            .unwrap_or_else(|| Instant::now() + self.stop.grace);
        let wait = match (&sent, node) {
            (Ok(()), Some(node)) if stops(reason) => Some((self.host.clone(), node, self.stop.grace)),
            _ => None,
        };
        Box::pin(
            async move {
                sent?;
                if let Some((host, node, grace)) = wait {
                    wait_stopped_by_pid(host, node, grace, done_by).await;
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |r: CommandResult, act, _| {
                if r.is_ok() {
                    act.told(reason);
                }
                r
            }),
        )
    }

    /// Tracks whether the node was told to forge since its last confirmed stop.
    fn told(&mut self, reason: ReloadReason) {
        match reason {
            ReloadReason::StartForging | ReloadReason::Rotation => self.told_to_forge = true,
            ReloadReason::StopForging | ReloadReason::Shutdown => self.told_to_forge = false,
            ReloadReason::Startup | ReloadReason::Reassert | ReloadReason::FollowUp => {}
        }
    }

    fn guard_reloaded(&mut self, reason: ReloadReason, result: CommandResult) -> ReloadFuture {
        match result {
            Ok(()) => {
                if let Some(g) = self.guard.as_mut() {
                    match reason {
                        ReloadReason::StartForging => g.permitted = true,
                        ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup => {
                            g.permitted = false;
                        }
                        ReloadReason::Rotation | ReloadReason::Reassert | ReloadReason::FollowUp => {}
                    }
                }
                self.told(reason);
                self.reloaded(reason, "guard");
                Box::pin(fut::ready(Ok(())))
            }
            // The guard answered and refused (e.g. no permit while credentials are present): a
            // SIGHUP by PID would do what it refused. An unconfirmed stop is no missing node.
            Err(e)
                if matches!(
                    e.kind,
                    CommandError::NoPermit
                        | CommandError::Guard(GuardErrorKind::Refused)
                        | CommandError::StopUnconfirmed
                ) =>
            {
                Box::pin(fut::ready(Err(e)))
            }
            Err(e) => {
                if matches!(reason, ReloadReason::StartForging) {
                    return Box::pin(fut::ready(Err(e))); // never start forging without the guard's permit
                }
                let gone = self.guard.as_ref().is_some_and(|g| guard_gone(&*g.client));
                if stops(reason)
                    && !gone
                    && let Some(dead) = self.last_node_gone()
                {
                    // A SIGKILLed guard leaves its socket file behind and takes its node along
                    // (PR_SET_PDEATHSIG): the guard cannot answer, but the node process it ran
                    // is gone, so nothing forges here. Without this the stop would fail until
                    // a new node answers, keeping the lease (and, the decision still forging,
                    // no boot credentials for that new node): nobody forges meanwhile.
                    tracing::warn!(
                        actor = "node_signaller", reason = reason.as_str(), kind = e.kind.as_str(), error = %e.detail, pid = dead.pid,
                        "stop confirmed: the node guard did not answer, but the node process is gone"
                    );
                    if let Some(g) = self.guard.as_mut() {
                        g.permitted = false;
                    }
                    self.told(reason);
                    self.forging.set(0);
                    return Box::pin(fut::ready(Ok(())));
                }
                let verified_pid = self.node.is_some_and(|n| n.start_time != 0);
                if stops(reason) && !gone && !verified_pid {
                    // F3: a guard that does not answer is not a node that is gone; the node may
                    // still forge and we cannot reach it: the stop fails, the lease and the claim
                    // stay, and the renew deadline (and the guard's permit) fence.
                    tracing::error!(
                        actor = "node_signaller", reason = reason.as_str(), kind = e.kind.as_str(), error = %e.detail,
                        "the node guard did not carry out the stopping reload and the node is not visible by PID: the stop is not confirmed"
                    );
                    return Box::pin(fut::ready(Err(e)));
                }
                tracing::warn!(
                    actor = "node_signaller", reason = reason.as_str(), kind = e.kind.as_str(), error = %e.detail, guard_gone = gone,
                    "reload through the guard failed: SIGHUP by PID instead"
                );
                self.pid_reload(reason)
            }
        }
    }

    /// Grants the permit again for the time left until the renew deadline (or revokes it when
    /// none is left), in line with the other guard requests.
    fn renew_permit(&mut self, ctx: &mut Context<Self>) {
        let Some(client) = self.live_guard() else { return };
        let req = match self.permit_deadline() {
            Some(deadline_mono_ns) => Request::Permit { deadline_mono_ns },
            None => Request::Revoke,
        };
        if req == Request::Revoke {
            // The guard fences: it removes the files and reloads the node (F24).
            self.stopping_reload_sent();
        }
        ctx.wait(
            async move { client.request(req).await }
                .into_actor(self)
                .map(move |r, act, _| {
                    if let Err(e) = r {
                        tracing::warn!(actor = "node_signaller", op = req.op(), kind = e.kind().as_str(), error = %e, "permit not renewed");
                    } else if req == Request::Revoke
                        && let Some(g) = act.guard.as_mut()
                    {
                        g.permitted = false;
                    }
                }),
        );
    }
}

impl Handler<Fact> for NodeSignaller {
    type Result = ();

    fn handle(&mut self, fact: Fact, ctx: &mut Context<Self>) {
        let Some(clock) = self.deadlines.clock else { return };
        let permitted = self.guard.as_ref().is_some_and(|g| g.permitted);
        match fact.event {
            Event::LeaseAcquired { deadline } | Event::LeaseRenewed { deadline } => {
                self.deadlines.renew = Some(clock.instant_of(deadline));
                if permitted {
                    self.renew_permit(ctx);
                }
            }
            Event::TicketsChanged { standing } if self.deadlines.forge.is_some() => {
                self.deadlines.forge = Some(standing.until.map(|u| clock.instant_of(u)));
                if permitted {
                    // A renewed majority extends the permit; a lost one ends it now.
                    self.renew_permit(ctx);
                }
            }
            Event::LeaseLost { .. } => {
                self.deadlines.renew = None;
                if permitted {
                    // We must not forge: fence now rather than at the permit's end.
                    self.renew_permit(ctx);
                }
            }
            _ => {}
        }
    }
}

impl Handler<NodeProcess> for NodeSignaller {
    type Result = ();

    fn handle(&mut self, msg: NodeProcess, _ctx: &mut Context<Self>) {
        self.node_process(msg.0);
    }
}
