//! How the [`Lifecycle`] sequences plans (the rules of the `lifecycle` module docs): facts folded
//! into the state, decisions turned into plans one at a time, boot credentials, standby reloads,
//! failed plans undone and held, the hand-over gate's restarts, and the shutdown once nothing is
//! in flight. Re-asserts and rotations, under the room before the deadline, are in `room.rs`.

use jiff::Timestamp;

use super::{Boot, Effect, Finished, HandOver, Lifecycle, Note, Phase, Run, Step, gives_up};
use crate::decision::{
    Command, Decision, Event, LocalLease, ReloadReason, State, apply, decide, plan, shutdown_plan,
};
use crate::lease::Mono;

impl Lifecycle {
    pub(super) fn fold(&mut self, event: Event) {
        // `apply` takes the state by value; the placeholder is never observed.
        let placeholder = State::new(self.state.config.clone());
        let state = std::mem::replace(&mut self.state, placeholder);
        self.state = apply(state, event);
    }

    pub(super) fn held(&self, now: Mono) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }

    /// Lifecycle bookkeeping a fact implies, before it is folded into the state.
    pub(super) fn observe(&mut self, event: &Event, now: Mono, fx: &mut Vec<Effect>) {
        match event {
            Event::NodeUp if !self.state.node.up => {
                self.node_up_since = Some(now);
                self.last_reassert = None;
                // A restart: the first process gets the start-up reload. With boot credentials
                // the boot removal reloads the node instead.
                self.standby_reload_due = self.node_seen && !self.config.boot_credentials;
                self.node_seen = true;
                self.node_process += 1;
            }
            Event::NodeDown => self.node_up_since = None,
            Event::LeaseAcquired { .. } if self.state.lease.deadline().is_none() => self.tenure += 1,
            Event::LeaseLost { .. } => self.tenure += 1,
            Event::NodeFenced if self.current.forge || self.in_flight.as_ref().is_some_and(Step::forges) => {
                // L1-a: the decision in force forges, the node does not: the next plan starts
                // again (claim kept, credentials installed, a fresh permit, a reload), or stops
                // as usual when we should no longer forge.
                fx.push(Effect::Note(Note::FencedWhileForging));
                self.restart = true;
            }
            _ => {}
        }
    }

    pub(super) fn run(&mut self, commands: Vec<Command>, step: Step, fx: &mut Vec<Effect>) {
        if matches!(&step, Step::Decision(next) if next.forge) && commands.contains(&Command::Install) {
            // This plan is the restart; a fence while it runs calls for another.
            self.restart = false;
        }
        let start_by = if step.forges() {
            self.forge_deadline()
        } else {
            None
        };
        if commands.iter().any(|c| matches!(c, Command::Reload { .. })) {
            // Any reload tells the node the files as they are now.
            self.standby_reload_due = false;
        }
        if commands
            .iter()
            .any(|c| matches!(c, Command::Reload { reason } if !reason.turns_forging_on()))
        {
            // A stop ends whatever a follow-up reload would have restored (F24).
            self.follow_up = None;
        }
        self.run_tenure = self.tenure;
        self.run_process = self.node_process;
        let hand_over = commands.iter().position(gives_up).map(|from| HandOver {
            from,
            process: self.node_process,
        });
        fx.push(Effect::Run(Run {
            step: step.name(),
            commands,
            start_by,
            status_write_required: self.config.status_write_required && step != Step::Shutdown,
            hand_over,
        }));
        self.in_flight = Some(step);
    }

    /// Decides and starts the resulting plan, unless a plan runs (it decides when done).
    pub(super) fn redecide(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if self.phase != Phase::Running || self.in_flight.is_some() {
            return;
        }
        let mut next = decide(&self.state, now, wall);
        self.keep_unwithdrawn_claim(&mut next);
        // After a failure, wait for the retry timer, except to stop forging: that never waits.
        let stopping = self.current.forge && !next.forge;
        if !stopping && self.held(now) {
            return;
        }
        if !stopping && self.residue && !next.forge {
            self.undo(fx);
            return;
        }
        if !stopping && self.boot_due(fx) {
            return;
        }
        if self.standby_reload_due && !self.current.forge && !next.forge && self.state.node.up {
            // Not forging and no residue: the credential targets are absent.
            fx.push(Effect::Note(Note::StandbyReload));
            let cmds = vec![Command::Reload {
                reason: ReloadReason::Startup,
            }];
            self.run(cmds, Step::StandbyReload, fx);
            return;
        }
        let cmds = if self.restart && next.forge {
            // Restart the node: plan as from a decision that does not forge.
            let mut from = self.current.clone();
            from.forge = false;
            plan(&from, &next)
        } else {
            plan(&self.current, &next)
        };
        if cmds.is_empty() {
            self.adopt(next, fx);
            return;
        }
        let reloads_on = cmds
            .iter()
            .any(|c| matches!(c, Command::Reload { reason } if reason.turns_forging_on()));
        if reloads_on && let Some(left) = self.too_close_to_deadline(now) {
            // F21: the stop at the deadline would wait for this start's STOP_GRACE. Planned
            // again on the next fact (a renewal moves the deadline); the wake-up at the deadline
            // re-decides if none comes.
            let deadline = self.forge_deadline();
            if self.start_deferred != deadline || deadline.is_none() {
                fx.push(Effect::Note(Note::ReloadDeferred {
                    step: "start",
                    left,
                    room: self.config.reload_room,
                }));
                if let Some(at) = deadline {
                    fx.push(Effect::WakeAt(at));
                }
                self.start_deferred = deadline;
            }
            return;
        }
        self.start_deferred = None;
        self.run(cmds, Step::Decision(Box::new(next)), fx);
    }

    /// F25: our claim (`forgingEnabled: true`) is withdrawn only by a status write, and only the
    /// lease holder writes. Past the renew deadline of a lease we have not lost (the renewal's
    /// fact is late: a retried stop planned after the NodeSignaller held the previous one back,
    /// a paused sidecar), `next` cannot write it; adopting `next` as it is would count the
    /// claim as withdrawn and hand the lease over with the status still saying we forge, and
    /// no later plan would write it (the decision in force would already say "no claim"). So
    /// the claim, and contention with it, stay in force: the stop itself goes ahead at once
    /// (S1 never waits), and the withdrawal, then the hand-over, follow when the lease's next
    /// fact arrives (a renewal: written as the holder; a loss: nothing left to write).
    fn keep_unwithdrawn_claim(&self, next: &mut Decision) {
        let deadline_passed = matches!(self.state.lease, LocalLease::Held { .. }) && !next.holds_lease;
        if self.current.claim && !next.claim && deadline_passed {
            next.claim = true;
            next.contend = self.current.contend;
        }
    }

    /// Starts a boot-credential plan when one is due; true when it did.
    fn boot_due(&mut self, fx: &mut Vec<Effect>) -> bool {
        if !self.config.boot_credentials || self.current.forge {
            return false;
        }
        match (self.state.node.up, self.boot) {
            (true, Boot::Installing | Boot::Ready) => {
                fx.push(Effect::Note(Note::BootRemoving));
                self.boot = Boot::Absent;
                let cmds = vec![
                    Command::Remove,
                    Command::Reload {
                        reason: ReloadReason::Startup,
                    },
                ];
                self.run(cmds, Step::BootRemove, fx);
                true
            }
            (false, Boot::Absent) => {
                fx.push(Effect::Note(Note::BootInstalling));
                self.boot = Boot::Installing;
                self.run(vec![Command::Install], Step::BootInstall, fx);
                true
            }
            _ => false,
        }
    }

    /// Removes credentials a failed start or boot install may have left, and tells the node (its
    /// start may have reached it although the answer failed).
    fn undo(&mut self, fx: &mut Vec<Effect>) {
        self.boot = Boot::Absent;
        self.residue = true;
        let cmds = vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging,
            },
        ];
        self.run(cmds, Step::Undo, fx);
    }

    pub(super) fn finish(&mut self, finished: Finished, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        let Some(step) = self.in_flight.take() else {
            return; // nothing was in flight: a stray report changes nothing
        };
        // First: a stop this finish plans next cancels it.
        self.follow_up_reported(&step, finished.undoable_until, now, fx);
        let status_written = if self.run_tenure == self.tenure {
            finished.status_written
        } else {
            Vec::new() // written in an earlier tenure: confirms nothing now
        };
        let claimed = status_written.iter().any(|(enabled, _)| *enabled);
        for (forging_enabled, at) in status_written {
            self.fold(Event::StatusWritten { forging_enabled, at });
        }
        if claimed {
            // L1-c: evidence about the peers counts only when read after our claim.
            fx.push(Effect::PollPeers);
        }
        let gated = finished.failed.as_ref().is_some_and(gives_up) && self.node_process != self.run_process;
        if gated {
            self.node_restarted(step, now, wall, fx);
            return;
        }
        match (finished.failed, step) {
            (None, Step::Shutdown) if self.node_process != self.run_process => {
                // A node process came up after the hand-over: it is told too (the credentials are
                // gone) before this process exits; the lease and the claim are already given up.
                fx.push(Effect::Note(Note::NodeRestartedBeforeHandOver {
                    step: Step::Shutdown.name(),
                }));
                let cmds = vec![
                    Command::Remove,
                    Command::Reload {
                        reason: ReloadReason::Shutdown,
                    },
                ];
                self.run(cmds, Step::Shutdown, fx);
            }
            (failed, Step::Shutdown) => {
                self.phase = Phase::Stopped;
                fx.push(Effect::Exit {
                    confirmed: failed.is_none(),
                });
                return;
            }
            (None, Step::Decision(next))
                if self.current.forge && !next.forge && self.node_process != self.run_process =>
            {
                // A node process came up while the stop ran, after the gate let the plan's last
                // command go (or in a plan that gives nothing up): it may forge with keys it
                // read at its start, and this plan's reload did not reach it. Adopting the stop
                // would count the node as stopped, and quorum mode releases the forge tickets
                // then (`ticket_intent`): the stop is confirmed for that process first.
                fx.push(Effect::Note(Note::NodeRestartedBeforeStopAdopted));
                self.restart = true;
                match self.phase {
                    Phase::ShuttingDown => self.shutdown_if_idle(now, wall, fx),
                    _ => self.redecide(now, wall, fx),
                }
                return;
            }
            (None, Step::Decision(next)) => self.adopt(*next, fx),
            (None, Step::Startup) => {
                if self.phase == Phase::StartingUp {
                    self.phase = Phase::Running;
                }
                fx.push(Effect::Note(Note::StandbyEstablished));
                fx.push(Effect::Publish);
            }
            (None, Step::BootInstall) => {
                if self.boot == Boot::Installing {
                    self.boot = Boot::Ready;
                    fx.push(Effect::Note(Note::BootReady));
                    fx.push(Effect::Publish);
                }
            }
            (None, Step::Undo) => self.residue = false,
            (
                None,
                Step::BootRemove | Step::Reassert | Step::Rotation | Step::StandbyReload | Step::FollowUp,
            ) => {}
            (Some(_), step) => {
                let starting = matches!(&step, Step::Decision(next) if next.forge && !self.current.forge);
                if matches!(&step, Step::Decision(_)) && (self.current.forge || step.forges()) {
                    // A stop failed half-way, or a start did: forging (again) must not take the
                    // node for granted.
                    self.restart = true;
                }
                fx.push(Effect::Note(Note::PlanFailed {
                    step: step.name(),
                    starting,
                }));
                if matches!(&step, Step::Decision(next) if next.claim) && !self.current.claim {
                    // Our claim was (or may have been) published: the decision in force says
                    // so, so the next plan withdraws it if we do not forge after all.
                    self.current.claim = true;
                }
                if step == Step::StandbyReload {
                    self.standby_reload_due = true; // retried after the hold
                }
                let until = now + self.config.retry_after;
                self.hold_until = Some(until);
                fx.push(Effect::WakeAt(until));
                if starting || matches!(step, Step::BootInstall | Step::BootRemove | Step::Undo) {
                    // A standby never keeps credentials: undo a partial install at once (a
                    // failed undo is retried after the hold).
                    self.residue = true;
                    if step == Step::BootInstall || starting {
                        self.undo(fx);
                        return;
                    }
                }
            }
        }
        match self.phase {
            Phase::ShuttingDown => self.shutdown_if_idle(now, wall, fx),
            Phase::Running => {
                self.redecide(now, wall, fx);
                if self.rotation_pending && self.in_flight.is_none() {
                    self.rotation_pending = false;
                    self.rotate(now, wall, fx);
                }
                self.follow_up_due(now, wall, fx);
            }
            Phase::StartingUp | Phase::Stopped => {}
        }
    }

    /// The hand-over gate stopped `step` (module docs): a new node process came up while it ran,
    /// so nothing was given up. The stop is confirmed for that process before the hand-over is
    /// tried again: the shutdown plan again, the stop plan again (the decision in force still
    /// forges, so the next plan removes, reloads, then hands over), or a standby's reload.
    fn node_restarted(&mut self, step: Step, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        fx.push(Effect::Note(Note::NodeRestartedBeforeHandOver {
            step: step.name(),
        }));
        match step {
            Step::Shutdown => {
                self.run(shutdown_plan(&self.current), Step::Shutdown, fx);
                return;
            }
            Step::Decision(_) if self.current.forge => {
                // Its stop may have been half done: forging again must install and reload.
                self.restart = true;
            }
            _ => self.standby_reload_due = true,
        }
        match self.phase {
            Phase::ShuttingDown => self.shutdown_if_idle(now, wall, fx),
            Phase::Running => self.redecide(now, wall, fx),
            Phase::StartingUp | Phase::Stopped => {}
        }
    }

    /// Makes `next` the decision in force.
    fn adopt(&mut self, next: Decision, fx: &mut Vec<Effect>) {
        let changed = next.forge != self.current.forge || next.reason != self.current.reason;
        if next.forge {
            // The plan that got here installed and reloaded.
            self.residue = false;
        }
        self.fold(Event::Committed { forge: next.forge });
        self.current = next.clone();
        fx.push(Effect::Adopted {
            decision: next,
            changed,
        });
        fx.push(Effect::Publish);
    }

    /// Runs the shutdown plan once nothing is in flight and no hold for a leader slot applies
    /// (a hold ends early when the decision itself stops forging: a lost lease is never held).
    pub(super) fn shutdown_if_idle(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if self.phase != Phase::ShuttingDown || self.in_flight.is_some() {
            return;
        }
        if let Some(until) = self.shutdown_after {
            if now < until && decide(&self.state, now, wall).forge {
                return;
            }
            self.shutdown_after = None;
        }
        self.run(shutdown_plan(&self.current), Step::Shutdown, fx);
    }
}
