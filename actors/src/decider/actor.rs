//! The Decider's lifecycle and its plan machinery: start-up (standby first), deciding,
//! carrying out plans in order, timers, and the boot-credential and re-assert policies.

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::decision::{Command, Decision, Event, ReloadReason, plan, shutdown_plan, startup_plan};

use super::{Decider, Outcome, Step, execute};

/// Mailbox size: facts must never be dropped for lack of room (the senders await).
const MAILBOX: usize = 1024;

impl Actor for Decider {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        tracing::info!(pod = %self.settings.pod, "establishing the standby state before anything else");
        self.publish();
        // A crashed predecessor may have left credentials behind and the node forging.
        self.run(startup_plan(), Step::Startup, ctx);
        ctx.run_interval(self.settings.heartbeat, |act, ctx| {
            act.fold(Event::Tick);
            act.reassert(ctx);
            act.redecide(ctx);
            act.publish();
        });
    }
}

impl Decider {
    /// Decides again and carries out the resulting plan, unless a plan is running (then once
    /// it is done).
    pub(super) fn redecide(&mut self, ctx: &mut Context<Self>) {
        if self.busy || !self.started_up {
            self.redecide_pending = true;
            return;
        }
        if self.shutting_down {
            return;
        }
        let next = self.next_decision();
        // After a failure, wait for the retry timer, except to stop forging: that never waits.
        let stopping = self.current.forge && !next.forge;
        if !stopping && self.hold_until.is_some_and(|t| tokio::time::Instant::now() < t) {
            return;
        }
        if !stopping && self.boot_credentials_due(ctx) {
            return;
        }
        let cmds = plan(&self.current, &next);
        if cmds.is_empty() {
            self.adopt(next, ctx);
        } else {
            self.run(cmds, Step::Decision(Box::new(next)), ctx);
        }
    }

    /// Boot credentials (a node that starts non-producing needs its files to boot): present
    /// only while the node is down and we do not forge; removed, and the node told, before
    /// anything else once it is up. Returns true when it started a plan.
    fn boot_credentials_due(&mut self, ctx: &mut Context<Self>) -> bool {
        if !self.settings.boot_credentials || self.current.forge {
            return false;
        }
        let up = self.state.node.up;
        if up && self.boot_installed {
            tracing::info!("node is up: removing its boot credentials (it started non-producing)");
            self.boot_installed = false;
            self.boot_ready = false;
            self.run(
                vec![
                    Command::Remove,
                    Command::Reload {
                        reason: ReloadReason::Startup,
                    },
                ],
                Step::BootRemove,
                ctx,
            );
            return true;
        }
        if !up && !self.boot_installed {
            tracing::info!("node is down: providing credentials so it can boot (non-producing)");
            self.boot_installed = true;
            self.run(vec![Command::Install], Step::BootInstall, ctx);
            return true;
        }
        false
    }

    /// Re-sends the reload that matches the decision in force during the node's start-up
    /// window (module docs of `DeciderSettings::reassert_window`).
    fn reassert(&mut self, ctx: &mut Context<Self>) {
        let Some(since) = self.node_up_since else { return };
        // Only a forging decision can be lost in a replay: a standby's files are absent, and a
        // node that booted non-producing does not forge whatever SIGHUP it missed.
        if !self.current.forge || self.busy || self.boot_installed || !self.started_up || self.shutting_down {
            return;
        }
        if since.elapsed() > self.settings.reassert_window {
            self.node_up_since = None;
            return;
        }
        let due = self
            .last_reassert
            .is_none_or(|at| at.elapsed() >= self.settings.reassert_every);
        if due {
            self.last_reassert = Some(tokio::time::Instant::now());
            self.run(
                vec![Command::Reload {
                    reason: ReloadReason::Reassert,
                }],
                Step::Reassert,
                ctx,
            );
        }
    }

    /// Carries out `cmds` in order; then completes `step` or handles the failure.
    pub(super) fn run(&mut self, cmds: Vec<Command>, step: Step, ctx: &mut Context<Self>) {
        self.busy = true;
        if let (Some(m), Some(at)) = (&self.metrics, self.oldest_fact.take()) {
            m.decision_latency.observe(at.elapsed().as_secs_f64());
        }
        let required = self.settings.status_write_required;
        let forging_step = match &step {
            Step::Decision(next) => next.forge,
            Step::Rotation => true,
            _ => false,
        };
        let start_by = if forging_step {
            self.state.lease.deadline()
        } else {
            None
        };
        let fut = execute(cmds, self.out.clone(), self.clock, required, start_by);
        ctx.spawn(
            fut.into_actor(self)
                .map(move |outcome, act, ctx| act.finish(outcome, step, ctx)),
        );
    }

    fn finish(&mut self, outcome: Outcome, step: Step, ctx: &mut Context<Self>) {
        self.busy = false;
        let claimed = outcome
            .status_written
            .iter()
            .any(|(forging_enabled, _)| *forging_enabled);
        for (forging_enabled, at) in outcome.status_written {
            self.fold(Event::StatusWritten { forging_enabled, at });
        }
        if claimed {
            // L1-c: evidence about the peers counts only when read after our claim.
            for peer in &self.out.poll_peers {
                peer.do_send(crate::messages::PollNow);
            }
        }
        match (outcome.failed, step) {
            (None, Step::Decision(next)) => self.adopt(*next, ctx),
            (None, Step::Startup) => {
                self.started_up = true;
                tracing::info!("standby state established");
                self.publish();
            }
            (None, Step::BootInstall) => {
                self.boot_ready = true;
                tracing::info!("boot credentials in place: the node may start (non-producing)");
                self.publish();
            }
            (None, Step::BootRemove | Step::Reassert | Step::Rotation) => {}
            (Some((cmd, e)), step) => {
                let starting = matches!(&step, Step::Decision(next) if next.forge && !self.current.forge);
                tracing::error!(
                    command = ?cmd, kind = e.kind, error = %e.detail, starting, step = step.name(),
                    "plan stopped at a failed command; keeping the decision in force and retrying"
                );
                if starting || matches!(step, Step::BootInstall) {
                    // A standby never keeps credentials: undo a partial install.
                    self.boot_installed = false;
                    self.boot_ready = false;
                    self.run(vec![Command::Remove], Step::BootRemove, ctx);
                }
                if matches!(step, Step::Startup) {
                    // Not yet in the standby state: try the whole start-up plan again.
                    ctx.run_later(self.settings.retry_after, |act, ctx| {
                        act.run(startup_plan(), Step::Startup, ctx)
                    });
                    return;
                }
                self.retry_after_failure(ctx);
                if self.busy {
                    return; // the undo runs; `finish` continues from there
                }
            }
        }
        if self.shutting_down {
            self.shutdown_now(ctx);
        } else if std::mem::take(&mut self.redecide_pending) {
            self.redecide(ctx);
        }
    }

    /// After a failed plan: start the next plan only after `retry_after` (no hot loop), except a
    /// plan that stops forging, which never waits (S1).
    fn retry_after_failure(&mut self, ctx: &mut Context<Self>) {
        self.hold_until = Some(tokio::time::Instant::now() + self.settings.retry_after);
        ctx.run_later(self.settings.retry_after, |act, ctx| {
            act.hold_until = None;
            act.fold(Event::Tick);
            act.redecide(ctx);
        });
    }

    /// Makes `next` the decision in force: logs a transition once with its reason, counts it,
    /// updates the gauges, arms the wake-up timer and publishes.
    pub(super) fn adopt(&mut self, next: Decision, ctx: &mut Context<Self>) {
        let changed = next.forge != self.current.forge || next.reason != self.current.reason;
        if changed {
            if next.forge {
                tracing::info!(reason = next.reason.as_str(), message = %next.reason.message(), "forging");
            } else {
                tracing::info!(reason = next.reason.as_str(), message = %next.reason.message(), "not forging");
            }
        }
        if let Some(m) = &self.metrics {
            if changed {
                m.decisions
                    .with_label_values(&[if next.forge { "true" } else { "false" }, next.reason.as_str()])
                    .inc();
            }
            // `cardano_forging_enabled` is the NodeSignaller's: what the node was told (or, with
            // the guard, what it does), not this intent.
            m.leader_status.set(i64::from(next.holds_lease));
        }
        self.fold(Event::Committed { forge: next.forge });
        if let Some(handle) = self.wake.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next.next_wake {
            let delay = self
                .clock
                .instant_of(at)
                .saturating_duration_since(tokio::time::Instant::now());
            self.wake = Some(ctx.run_later(delay, |act, ctx| {
                act.wake = None;
                act.fold(Event::Tick);
                act.redecide(ctx);
            }));
        }
        self.current = next;
        self.publish();
    }

    /// SIGTERM: stop forging, withdraw the claim, release the lease, stop the system. Waits for
    /// a plan in flight first (its commands are already on their way).
    pub(super) fn shutdown_now(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return; // `finish` calls us again
        }
        tracing::info!(
            forging = self.current.forge,
            "shutting down: removing credentials, reloading the node, releasing the lease"
        );
        let cmds = shutdown_plan(&self.current);
        self.busy = true;
        // In order, stopping at a failed stop (S2): the claim is withdrawn and the lease released
        // only once the node is confirmed not forging. A failed status write does not stop it.
        let fut = execute(cmds, self.out.clone(), self.clock, false, None);
        ctx.spawn(fut.into_actor(self).map(|outcome, act, _| {
            act.busy = false;
            match outcome.failed {
                None => tracing::info!("shutdown complete"),
                Some((cmd, e)) => tracing::error!(
                    command = ?cmd, kind = e.kind, error = %e.detail,
                    "shutdown: the node's stop was not confirmed, so the claim and the lease are kept: \
                     the lease expires on its own and the node guard's permit lapses at the renew deadline"
                ),
            }
            if let Some(m) = &act.metrics {
                m.leader_status.set(0);
            }
            actix::System::current().stop();
        }));
    }
}
