//! The guard subscription: (re)subscribing, the reader of its reports, what the reports mean to
//! the NodeSignaller (a fence, a reload lost in the replay), and its end.

use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
use forge_core::decision::{Event, ReloadReason};
use forge_guard::protocol::{Observation, Request};
use tokio::time::Instant;

use super::{GUARD_RESEND_EVERY, GuardPush, NodeSignaller};
use crate::{messages::Fact, ports::GuardReport};

impl NodeSignaller {
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
                            // Read by a task of its own, so a reload waiting for the node's
                            // confirmation (while this actor waits) sees every report.
                            let addr = ctx.address();
                            let pushed = g.pushed.clone();
                            pushed.send_modify(|p| {
                                p.connected = true;
                                p.exited = false;
                            });
                            if let Some(old) = g.reader.take() {
                                old.abort();
                            }
                            g.reader = Some(actix::spawn(async move {
                                let mut stream = std::pin::pin!(stream);
                                while let Some(report) = futures::StreamExt::next(&mut stream).await {
                                    pushed.send_modify(|p| {
                                        // `exited`: the node process is gone, so it
                                        // forges no more (a stop is confirmed by it).
                                        if matches!(report.event.as_deref(), Some("observed" | "exited")) {
                                            p.observations += 1;
                                        }
                                        if report.event.as_deref() == Some("exited") {
                                            p.exited = true;
                                        }
                                        p.state = report.state.clone();
                                    });
                                    addr.do_send(GuardPush::Report(report));
                                }
                                pushed.send_modify(|p| p.connected = false);
                                addr.do_send(GuardPush::Ended);
                            }));
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
        if !g.permitted {
            // F4: only a lost start is re-sent (module docs).
            g.reload_lost = false;
            tracing::debug!(
                actor = "node_signaller",
                "a reload lost in the replay without a permit is not re-sent"
            );
            return;
        }
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

impl Handler<GuardPush> for NodeSignaller {
    type Result = ();

    fn handle(&mut self, push: GuardPush, ctx: &mut Context<Self>) {
        match push {
            GuardPush::Report(report) => self.guard_report(report, ctx),
            GuardPush::Ended => self.guard_ended(),
        }
    }
}

impl NodeSignaller {
    fn guard_report(&mut self, report: GuardReport, ctx: &mut Context<Self>) {
        let s = &report.state;
        self.forging.set(i64::from(s.forging == Some(true)));
        tracing::debug!(actor = "node_signaller", event = ?report.event, state = ?s, "node guard report");
        if matches!(report.event.as_deref(), Some("lapsed" | "refenced")) {
            tracing::error!(
                actor = "node_signaller",
                event = report.event.as_deref().unwrap_or_default(),
                "the node guard fenced the node (its permit lapsed, or it saw forging without one)"
            );
            if let Some(g) = self.guard.as_mut() {
                g.permitted = false;
            }
            self.told_to_forge = false;
            // The fence's SIGHUP: a start sent while it may be under way is followed up (F24).
            self.stopping_reload_sent();
            if let Some(d) = &self.decider {
                d.do_send(Fact::now(Event::NodeFenced));
            }
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

    fn guard_ended(&mut self) {
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
