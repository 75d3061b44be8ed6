//! One handler per message the NodeSignaller receives, and the guard subscription's stream.

use actix::{ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, StreamHandler, WrapFuture, fut};
use forge_core::decision::{Event, ReloadReason};
use forge_guard::protocol::{Observation, Request};
use tokio::time::Instant;

use super::{GUARD_RESEND_EVERY, NO_PERMIT, NodeSignaller};
use crate::{
    adapters::guard::{GUARD_REFUSED, GuardClient, GuardError, GuardReport},
    messages::{CommandFailed, CommandResult, Fact, NodeProcess, Reload},
};

impl Handler<Reload> for NodeSignaller {
    type Result = AtomicResponse<Self, CommandResult>;

    fn handle(&mut self, msg: Reload, _ctx: &mut Context<Self>) -> Self::Result {
        let reason = msg.reason;
        if reason == ReloadReason::Reassert && self.guard.as_ref().is_some_and(|g| g.connected) {
            // The guard sees the node's reconfiguration lines and re-sends a reload the replay
            // lost; a blind re-assert would only add SIGHUPs.
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let Some(client) = self.live_guard() else {
            return AtomicResponse::new(Box::pin(fut::ready(self.reload(reason))));
        };
        let deadline = self.permit_deadline();
        let call = async move { reload_via_guard(&client, reason, deadline).await };
        AtomicResponse::new(Box::pin(
            call.into_actor(self)
                .map(move |result, act, _| act.guard_reloaded(reason, result)),
        ))
    }
}

/// The guard's part of a reload: a permit before a starting reload, a revoke after a stopping
/// one.
async fn reload_via_guard(
    client: &GuardClient,
    reason: ReloadReason,
    deadline_mono_ns: Option<u64>,
) -> Result<(), CommandFailed> {
    let failed = |e: GuardError| CommandFailed::new(e.kind(), e);
    match reason {
        ReloadReason::StartForging => {
            let Some(deadline_mono_ns) = deadline_mono_ns else {
                return Err(CommandFailed::new(
                    NO_PERMIT,
                    "no current lease deadline to bound the guard's permit: not starting",
                ));
            };
            client
                .request(Request::Permit { deadline_mono_ns })
                .await
                .map_err(failed)?;
            client.request(Request::Reload).await.map_err(failed)?;
        }
        ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup => {
            let reloaded = client.request(Request::Reload).await;
            // Also after a failed reload: the revoke fences on its own (files, SIGHUP).
            if let Err(e) = client.request(Request::Revoke).await {
                tracing::warn!(actor = "node_signaller", kind = e.kind(), error = %e, "permit not revoked");
            }
            reloaded.map_err(failed)?;
        }
        ReloadReason::Rotation | ReloadReason::Reassert => {
            client.request(Request::Reload).await.map_err(failed)?;
        }
    }
    Ok(())
}

impl NodeSignaller {
    fn guard_reloaded(&mut self, reason: ReloadReason, result: CommandResult) -> CommandResult {
        match result {
            Ok(()) => {
                if let Some(g) = self.guard.as_mut() {
                    match reason {
                        ReloadReason::StartForging => g.permitted = true,
                        ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup => {
                            g.permitted = false;
                        }
                        ReloadReason::Rotation | ReloadReason::Reassert => {}
                    }
                }
                self.reloaded(reason, "guard");
                Ok(())
            }
            // The guard answered and refused (e.g. no permit while credentials are present):
            // a SIGHUP by PID would do what it refused.
            Err(e) if e.kind == NO_PERMIT || e.kind == GUARD_REFUSED => Err(e),
            Err(e) => {
                if matches!(reason, ReloadReason::StartForging) {
                    return Err(e); // never start forging without the guard's permit
                }
                tracing::warn!(
                    actor = "node_signaller", reason = reason.as_str(), kind = e.kind, error = %e.detail,
                    "reload through the guard failed: SIGHUP by PID instead"
                );
                self.reload(reason)
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
        ctx.wait(
            async move { client.request(req).await }
                .into_actor(self)
                .map(move |r, act, _| {
                    if let Err(e) = r {
                        tracing::warn!(actor = "node_signaller", op = req.op(), kind = e.kind(), error = %e, "permit not renewed");
                    } else if req == Request::Revoke
                        && let Some(g) = act.guard.as_mut()
                    {
                        g.permitted = false;
                    }
                }),
        );
    }

    /// (Re)subscribes to the guard when it is down and the socket exists.
    pub(super) fn connect_guard(&mut self, ctx: &mut Context<Self>) {
        let Some(g) = self.guard.as_mut() else { return };
        if g.reload_lost && g.last_resend.is_none_or(|t| t.elapsed() >= GUARD_RESEND_EVERY) {
            self.resend_lost_reload(ctx);
            return;
        }
        if g.connected || g.connecting || !g.client.present() {
            return;
        }
        g.connecting = true;
        let client = g.client.clone();
        ctx.spawn(
            async move { client.subscribe().await }
                .into_actor(self)
                .map(|r, act, ctx| {
                    let Some(g) = act.guard.as_mut() else { return };
                    g.connecting = false;
                    match r {
                        Ok(stream) => {
                            g.connected = true;
                            act.fencing.set(1);
                            tracing::info!(
                                actor = "node_signaller",
                                socket = %g.client.socket().display(),
                                "node guard connected: reloads and the forging permit go through it; S3 (no orphaned forger) is covered"
                            );
                            ctx.add_stream(stream);
                        }
                        Err(e) => tracing::debug!(actor = "node_signaller", error = %e, "node guard not reachable yet"),
                    }
                }),
        );
    }

    /// Re-sends the reload the node lost in its replay (module docs: why this is safe).
    fn resend_lost_reload(&mut self, ctx: &mut Context<Self>) {
        let Some(g) = self.guard.as_mut() else { return };
        g.last_resend = Some(Instant::now());
        let client = g.client.clone();
        tracing::info!(
            actor = "node_signaller",
            "the node lost a reload in its replay: re-sending it through the guard"
        );
        ctx.wait(
            async move { client.request(Request::Reload).await }
                .into_actor(self)
                .map(|r, act, _| match r {
                    Ok(_) => act
                        .sighups
                        .with_label_values(&[ReloadReason::Reassert.as_str()])
                        .inc(),
                    Err(e) => tracing::warn!(actor = "node_signaller", error = %e, "re-sent reload failed"),
                }),
        );
    }
}

impl StreamHandler<GuardReport> for NodeSignaller {
    fn handle(&mut self, report: GuardReport, ctx: &mut Context<Self>) {
        let s = &report.state;
        self.forging.set(i64::from(s.forging == Some(true)));
        tracing::debug!(actor = "node_signaller", event = ?report.event, state = ?s, "node guard report");
        if matches!(report.event.as_deref(), Some("lapsed")) {
            tracing::error!(
                actor = "node_signaller",
                "the node guard's permit lapsed: it fenced the node (this sidecar did not renew in time)"
            );
        }
        let Some(g) = self.guard.as_mut() else { return };
        let was_lost = g.reload_lost;
        g.reload_lost = s.reload_lost;
        if !s.reload_lost {
            g.last_resend = None;
            return;
        }
        if !was_lost {
            // Lost in the replay: wait for the node to say consensus runs (or the fallback).
            g.last_resend = Some(Instant::now());
        }
        if s.last == Some(Observation::ChainExtended) {
            self.resend_lost_reload(ctx);
        }
    }

    fn started(&mut self, _ctx: &mut Context<Self>) {}

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The guard went away (the node container restarts): back to SIGHUP by PID until it
        // returns. The actor keeps running.
        if let Some(g) = self.guard.as_mut() {
            g.connected = false;
            g.reload_lost = false;
            g.last_resend = None;
            g.permitted = false;
        }
        self.fencing.set(0);
        tracing::warn!(
            actor = "node_signaller",
            "node guard connection lost: S3 (no orphaned forger) is not covered until it is back"
        );
    }
}

impl Handler<Fact> for NodeSignaller {
    type Result = ();

    fn handle(&mut self, fact: Fact, ctx: &mut Context<Self>) {
        let Some(g) = self.guard.as_mut() else { return };
        match fact.event {
            Event::LeaseAcquired { deadline } | Event::LeaseRenewed { deadline } => {
                g.deadline = Some(g.clock.instant_of(deadline));
                if g.permitted {
                    self.renew_permit(ctx);
                }
            }
            Event::LeaseLost { .. } => {
                g.deadline = None;
                if g.permitted {
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
