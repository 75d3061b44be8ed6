//! The Decider as an actor: feeds each input to the
//! [`Lifecycle`](forge_core::decision::Lifecycle) and carries out its effects (plans in order,
//! timers, log lines, metrics, `/status`).

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::decision::{Effect, Finished, Input, Note, Run};

use super::{Decider, Outcome, execute};
use crate::messages::CommandFailed;

/// Mailbox size: facts must never be dropped for lack of room (the senders await).
const MAILBOX: usize = 1024;

impl Actor for Decider {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        tracing::info!(pod = %self.settings.pod, "establishing the standby state before anything else");
        // A crashed predecessor may have left credentials behind and the node forging.
        self.input(Input::Started, ctx);
        ctx.run_interval(self.settings.heartbeat, |act, ctx| {
            act.input(Input::Heartbeat, ctx)
        });
    }
}

impl Decider {
    /// Hands `input` to the lifecycle and carries out what it says.
    pub(super) fn input(&mut self, input: Input, ctx: &mut Context<Self>) {
        let effects = self.life.handle(input, self.clock.now(), self.clock.wall());
        self.node_process
            .store(self.life.node_process(), std::sync::atomic::Ordering::Relaxed);
        for effect in effects {
            self.effect(effect, ctx);
        }
        self.send_intent();
    }

    fn effect(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::Run(run) => self.run(run, ctx),
            Effect::Adopted { decision, changed } => {
                if changed {
                    let (reason, message) = (decision.reason.as_str(), decision.reason.message());
                    if decision.forge {
                        tracing::info!(reason, message = %message, "forging");
                    } else {
                        tracing::info!(reason, message = %message, "not forging");
                    }
                }
                if let Some(m) = &self.metrics {
                    if changed {
                        let forge = if decision.forge { "true" } else { "false" };
                        m.decisions
                            .with_label_values(&[forge, decision.reason.as_str()])
                            .inc();
                    }
                    // `cardano_forging_enabled` is the NodeSignaller's: what the node was told
                    // (or, with the guard, what it does), not this intent.
                    m.leader_status.set(i64::from(decision.holds_lease));
                }
                if let Some(handle) = self.wake.take() {
                    ctx.cancel_future(handle);
                }
                if let Some(at) = decision.next_wake {
                    let delay = self.delay_until(at);
                    self.wake = Some(ctx.run_later(delay, |act, ctx| {
                        act.wake = None;
                        act.input(Input::Timer, ctx);
                    }));
                }
            }
            Effect::WakeAt(at) => {
                let delay = self.delay_until(at);
                ctx.run_later(delay, |act, ctx| act.input(Input::Timer, ctx));
            }
            Effect::PollPeers => {
                for peer in &self.out.poll_peers {
                    peer.do_send(crate::messages::PollNow);
                }
            }
            Effect::Publish => self.publish(),
            Effect::Note(note) => log_note(&note),
            Effect::Exit { confirmed } => {
                if confirmed {
                    tracing::info!("shutdown complete");
                } else {
                    tracing::error!(
                        "shutdown: the node's stop was not confirmed, so the claim and the lease are kept: \
                         the lease expires on its own and the node guard's permit lapses at the renew deadline"
                    );
                }
                if let Some(m) = &self.metrics {
                    m.leader_status.set(0);
                }
                actix::System::current().stop();
            }
        }
    }

    /// How long until monotonic `at` (a millisecond late rather than early: the timer's input
    /// must see `at` passed).
    fn delay_until(&self, at: forge_core::lease::Mono) -> std::time::Duration {
        self.clock
            .instant_of(at)
            .saturating_duration_since(tokio::time::Instant::now())
            + std::time::Duration::from_millis(1)
    }

    /// Carries out a plan's commands in order; then reports how it ended to the lifecycle.
    fn run(&mut self, run: Run, ctx: &mut Context<Self>) {
        if let (Some(m), Some(at)) = (&self.metrics, self.oldest_fact.take()) {
            m.decision_latency.observe(at.elapsed().as_secs_f64());
        }
        let Run {
            step,
            commands,
            start_by,
            status_write_required,
            hand_over,
        } = run;
        let fut = execute(
            commands,
            self.out.clone(),
            self.clock,
            status_write_required,
            start_by,
            hand_over.map(|gate| (gate, self.node_process.clone())),
        );
        ctx.spawn(fut.into_actor(self).map(move |outcome: Outcome, act, ctx| {
            let failed = outcome.failed.map(|(cmd, e): (_, CommandFailed)| {
                tracing::error!(
                    command = ?cmd, kind = e.kind.as_str(), error = %e.detail, step,
                    "plan stopped at a failed command"
                );
                cmd
            });
            let finished = Finished {
                failed,
                status_written: outcome.status_written,
                undoable_until: outcome.undoable_until,
            };
            act.input(Input::Finished(finished), ctx);
        }));
    }
}

/// The log line of a lifecycle transition.
fn log_note(note: &Note) {
    match note {
        Note::StandbyEstablished => tracing::info!("standby state established"),
        Note::BootInstalling => {
            tracing::info!("node is down: providing credentials so it can boot (non-producing)")
        }
        Note::BootReady => tracing::info!("boot credentials in place: the node may start (non-producing)"),
        Note::BootRemoving => {
            tracing::info!("node is up: removing its boot credentials (it started non-producing)")
        }
        Note::PlanFailed { step, starting } => tracing::error!(
            step,
            starting,
            "keeping the decision in force and retrying after the failed plan{}",
            if *starting {
                "; removing the credentials it installed"
            } else {
                ""
            }
        ),
        Note::FencedWhileForging => tracing::warn!(
            "the node guard fenced the node while this pod means to forge: starting it again if still the leader"
        ),
        Note::StandbyReload => tracing::info!(
            "a new node process is up while this pod does not forge: reloading it with no credentials in place"
        ),
        Note::NodeRestartedBeforeHandOver { step } => tracing::warn!(
            step,
            "a new node process came up before this plan gave anything up: confirming the stop for it first"
        ),
        Note::NodeRestartedBeforeStopAdopted => tracing::warn!(
            "a new node process came up while the stop ran: stopping it too before the stop counts \
             (quorum mode keeps the forge tickets until then)"
        ),
        Note::RotationSkipped => {
            tracing::info!("credentials rotated, but forging is about to stop: not installing them")
        }
        Note::ReloadDeferred { step, left, room } => tracing::warn!(
            step,
            left_ms = left.as_millis() as u64,
            room_ms = room.as_millis() as u64,
            "not reloading the node yet: too little time is left before the lease's renew deadline for \
             the stop there to wait for this reload (STOP_GRACE); it goes after the next renewal"
        ),
        Note::FollowUpPlanned { wait } => tracing::info!(
            in_ms = wait.as_millis() as u64,
            "the node's start may be undone by an earlier stopping reload still under way in it (it handles \
             SIGHUPs concurrently): reloading it once more when that one has had its STOP_GRACE, if still \
             forging then"
        ),
        Note::FollowUpSending => tracing::info!(
            "reloading the node once more: every earlier stopping reload has had its STOP_GRACE, so this one \
             takes effect last"
        ),
        Note::FollowUpDropped => tracing::info!(
            "follow-up reload not sent: the node is no longer meant to forge, or another node process runs"
        ),
        Note::RotationInstalling => {
            tracing::info!("credentials rotated while forging: installing the new set and reloading the node")
        }
        Note::ShutdownHeld { slot_at, wait } => tracing::info!(
            slot_at = %slot_at,
            wait_ms = wait.as_millis() as u64,
            "shutdown held: one of our leader slots is imminent; stopping once it has passed"
        ),
        Note::ShuttingDown { forging } => tracing::info!(
            forging,
            "shutting down: removing credentials, reloading the node, releasing the lease"
        ),
    }
}
