//! [`Lifecycle`]: the Decider's whole life as a pure state machine (docs/architecture.md,
//! "Decision engine"). It owns the [`State`] and the decision in force, and turns every
//! [`Input`] (a fact, a timer, a finished plan, a rotation, SIGTERM) into [`Effect`]s the actor
//! carries out: plans to run, decisions adopted, timers, publications. Every command that can
//! make a node forge leaves through here, so the property tests (`core/tests/lifecycle_props.rs`)
//! see all of them, including the boot credentials, the re-asserted reloads, rotations and the
//! shutdown, with plans that take long, fail, and overlap with new facts. No I/O, no clock
//! reads: time arrives with each input.
//!
//! The rules it sequences:
//! - One plan at a time ([`Lifecycle::in_flight`]); facts that arrive meanwhile are folded in and
//!   decided on when it finishes. A plan stops at its first failed command; the decision in
//!   force stays as it was (still "forging" in the stopping direction, so nothing is handed
//!   over), a start that failed has its credentials removed again, and no new plan starts
//!   before `retry_after`, except one that stops forging (S1 never waits).
//! - Start-up: the standby state first ([`startup_plan`]), retried until it succeeds.
//! - Boot credentials ([`LifecycleConfig::boot_credentials`]): present only while the node is
//!   down and we do not forge; removed, and the node told, before anything else once it is up.
//!   While they are present no other reload is sent: a SIGHUP would make a standby forge.
//! - Re-assert: while the decision in force forges, during `reassert_window` after a node
//!   process appears, its reload is re-sent every `reassert_every` (a SIGHUP during ledger replay
//!   is lost; the files always match the decision, so re-sending is safe).
//! - A restarted node process while we do not forge (no boot credentials; the first process
//!   gets the start-up reload): it is reloaded once it is up, the credential targets being absent, unless a plan reloads it anyway. A node started
//!   without `--start-as-non-producing-node` forges from its start with whatever files it read
//!   then (or a stop reload was lost in its replay); this reload makes it read that there are
//!   none (F12, the sidecar half of the guard's refusal).
//! - Hand-over gate: the commands of a plan that give something up to another pod or region
//!   ([`gives_up`]: our claim withdrawn, contention stopped, the lease released) are sent only
//!   while no new node process has been seen since the plan started ([`Run::hand_over`]). A
//!   process that came up meanwhile (a restart, which may forge with keys it read at its start:
//!   started without `--start-as-non-producing-node` before the removal, or a stop reload lost
//!   in its replay) may not have had the plan's reload: the plan stops there, and the stop is
//!   confirmed for the new process (the stop or shutdown plan again, or a standby's reload)
//!   before anything is given up (F12). No hold: this is not a failure of ours.
//! - A stop is adopted (the node counted as stopped, so quorum mode's forge tickets may go) only
//!   if no new node process came up while it ran; otherwise it runs again for that process,
//!   as the hand-over gate does for the claim and the lease.
//! - Rotation: a rotated set is installed and the node reloaded only while forging and only if
//!   the next decision still forges; a rotation during a plan waits for it.
//! - Shutdown: once nothing is in flight, [`shutdown_plan`]; then [`Effect::Exit`], confirmed or
//!   not (a failed stop keeps the claim and the lease: they expire on their own).
use std::time::Duration;

use jiff::Timestamp;

use super::{
    Command, Decision, Event, ReloadReason, State, apply, decide, plan, shutdown_hold, shutdown_plan,
    startup_plan,
};
use crate::lease::Mono;

/// Settings of the lifecycle that do not change while the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// The node starts non-producing and needs the credential files present to boot.
    pub boot_credentials: bool,
    /// How long after a node process appears forging reloads are re-sent (`SOCKET_WAIT_TIMEOUT`).
    pub reassert_window: Duration,
    /// The period of those re-sends.
    pub reassert_every: Duration,
    /// No new plan (other than one that stops forging) this soon after a failed one.
    pub retry_after: Duration,
    /// A status write must succeed before forging starts (cluster management's claim).
    pub status_write_required: bool,
    /// The longest a SIGTERM handover may wait for an imminent leader slot of ours to pass
    /// (within the pod's grace period, leaving room for the stop itself); zero: never held.
    pub shutdown_hold_max: Duration,
}

/// Where the lifecycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The standby state is not established yet (the start-up plan has not succeeded).
    StartingUp,
    /// Deciding and carrying out plans.
    Running,
    /// SIGTERM: the shutdown plan runs as soon as nothing else is in flight.
    ShuttingDown,
    /// The shutdown plan finished; nothing more is sent.
    Stopped,
}

/// The boot credentials of a node that starts non-producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boot {
    /// Not installed (or removed).
    #[default]
    Absent,
    /// The install was sent and is not confirmed yet.
    Installing,
    /// Installed and verified: the node may start.
    Ready,
}

/// What a plan in flight is for, so its completion is handled right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The start-up plan: establish the standby state.
    Startup,
    /// A decision's plan; adopted when it completes.
    Decision(Box<Decision>),
    /// Boot credentials for a node that is down.
    BootInstall,
    /// Removing boot credentials once the node is up.
    BootRemove,
    /// Undoing a failed start or boot install: credentials removed and the node told.
    Undo,
    /// A re-asserted reload during the node's start-up.
    Reassert,
    /// A reload telling a new node process, while we do not forge, that there are no credentials.
    StandbyReload,
    /// A rotated credential set installed while forging.
    Rotation,
    /// The shutdown plan.
    Shutdown,
}

impl Step {
    /// Stable snake_case label (logs).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Startup => "startup",
            Step::Decision(_) => "decision",
            Step::BootInstall => "boot_install",
            Step::BootRemove => "boot_remove",
            Step::Undo => "undo",
            Step::Reassert => "reassert",
            Step::StandbyReload => "standby_reload",
            Step::Rotation => "rotation",
            Step::Shutdown => "shutdown",
        }
    }

    /// True when the plan makes (or keeps) the node forge: it carries the renew deadline. A
    /// re-assert does too: its reload turns forging on in a node that lost the earlier one, so a
    /// slow one must not reach the node past the deadline.
    pub fn forges(&self) -> bool {
        match self {
            Step::Decision(next) => next.forge,
            Step::Rotation | Step::Reassert => true,
            _ => false,
        }
    }
}

/// A plan for the actor to carry out: the commands in order, each answered before the next,
/// stopping at the first failure that [`aborts`]; then [`Input::Finished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// What it is for (logs).
    pub step: &'static str,
    /// The commands, in order.
    pub commands: Vec<Command>,
    /// A forging plan's renew deadline: none of its commands is sent past it, and the wait for
    /// an answer is abandoned there (the plan fails and the stop follows).
    pub start_by: Option<Mono>,
    /// Whether a failed status write stops the plan.
    pub status_write_required: bool,
    /// The hand-over gate (module docs): from the command at `from` on, the plan's commands
    /// are sent only while [`Lifecycle::node_process`] is still `process`; otherwise the plan
    /// stops before that command, reported as failed there ([`Finished::failed`]).
    pub hand_over: Option<HandOver>,
}

/// Where a plan starts giving something up, and the node process it was planned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOver {
    /// The index of the first command that gives something up ([`gives_up`]).
    pub from: usize,
    /// [`Lifecycle::node_process`] when the plan was emitted.
    pub process: u64,
}

impl HandOver {
    /// Whether the command at `index` may be sent while the node process count is `process`.
    pub fn allows(&self, index: usize, process: u64) -> bool {
        index < self.from || process == self.process
    }
}

/// Something that happened to the Decider.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The actor started.
    Started,
    /// A fact from another actor.
    Fact(Event),
    /// The heartbeat: re-evaluate, re-assert, publish.
    Heartbeat,
    /// A timer from [`Effect::WakeAt`] or a decision's `next_wake` fired.
    Timer,
    /// The source credentials were rotated.
    Rotated,
    /// SIGTERM.
    ShutdownRequested,
    /// The plan in flight finished.
    Finished(Finished),
}

/// How a plan ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finished {
    /// The command that failed and stopped the plan (the rest were not sent).
    pub failed: Option<Command>,
    /// Status writes confirmed: the `forgingEnabled` each carried and when its answer arrived.
    pub status_written: Vec<(bool, Mono)>,
}

/// Something the actor must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Carry out a plan and report [`Input::Finished`].
    Run(Run),
    /// A decision is now in force: log it once when `changed`, count it, and arm the decision
    /// timer for its `next_wake` (replacing the previous one).
    Adopted {
        /// The decision.
        decision: Decision,
        /// Whether `forge` or the reason changed.
        changed: bool,
    },
    /// Feed [`Input::Timer`] at this instant (a retry).
    WakeAt(Mono),
    /// Our claim was confirmed: every PeerWatcher reads now (L1-c).
    PollPeers,
    /// Publish `/status` and readiness.
    Publish,
    /// A lifecycle transition worth a log line.
    Note(Note),
    /// The shutdown plan finished: stop the process. `confirmed` is false when a stop failed
    /// (the claim and the lease were kept and expire on their own).
    Exit {
        /// Whether the whole shutdown plan succeeded.
        confirmed: bool,
    },
}

/// A lifecycle transition worth a log line (the actor words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The start-up plan succeeded.
    StandbyEstablished,
    /// The node is down: boot credentials are being installed.
    BootInstalling,
    /// Boot credentials are installed: the node may start.
    BootReady,
    /// The node is up: its boot credentials are being removed.
    BootRemoving,
    /// A plan stopped at a failed command.
    PlanFailed {
        /// The plan's step.
        step: &'static str,
        /// It was starting to forge (its credentials are removed again).
        starting: bool,
    },
    /// The node guard fenced the node while the decision in force forges: it starts again.
    FencedWhileForging,
    /// A new node process came up while we do not forge: it is reloaded (no credentials).
    StandbyReload,
    /// A new node process came up while a plan was about to give something up: nothing was
    /// given up, and the stop is confirmed for the new process first (F12).
    NodeRestartedBeforeHandOver {
        /// The plan's step.
        step: &'static str,
    },
    /// A new node process came up while a stop ran, after its last command was sent: the
    /// stop is carried out again for it before it counts (and before quorum mode releases the
    /// forge tickets).
    NodeRestartedBeforeStopAdopted,
    /// A rotation arrived while forging is about to stop: nothing is installed.
    RotationSkipped,
    /// A rotation is being installed while forging.
    RotationInstalling,
    /// SIGTERM: the shutdown plan runs next.
    ShuttingDown {
        /// Whether the decision in force forges.
        forging: bool,
    },
    /// SIGTERM during the quiet window before one of our leader slots: the shutdown waits until
    /// that slot has ended.
    ShutdownHeld {
        /// The slot's start (wall time).
        slot_at: Timestamp,
        /// How long the shutdown waits.
        wait: Duration,
    },
}

/// The Decider's lifecycle (module docs).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    config: LifecycleConfig,
    state: State,
    phase: Phase,
    /// The decision in force (its plan completed).
    current: Decision,
    in_flight: Option<Step>,
    boot: Boot,
    /// After a failed plan, no new plan (except a stop) before this instant.
    hold_until: Option<Mono>,
    /// When the current node process came up (re-assert window).
    node_up_since: Option<Mono>,
    last_reassert: Option<Mono>,
    /// A rotation arrived while a plan was in flight.
    rotation_pending: bool,
    /// Credentials may be installed although the decision in force does not forge (a start or
    /// a boot install failed and its undo has not succeeded yet).
    residue: bool,
    /// The node may not be forging although the decision in force does: the node guard fenced
    /// it, or a stop failed half-way (credentials removed, reload failed). The next forging plan
    /// installs and reloads again instead of taking the node's forging for granted.
    restart: bool,
    /// Counts lease tenures (each acquisition and each loss starts a new one).
    tenure: u64,
    /// SIGTERM arrived during the quiet window before a leader slot: the shutdown plan waits
    /// until this instant (or until a stop is due anyway).
    shutdown_after: Option<Mono>,
    /// A node process came up and no reload has been sent since (F12): while we do not forge,
    /// it gets one with the credential targets absent.
    standby_reload_due: bool,
    /// A node process has been up before (the next one is a restart).
    node_seen: bool,
    /// The tenure in which the plan in flight started: its status writes confirm a claim only
    /// in that tenure (a write from before a loss must not confirm the next tenure's claim).
    run_tenure: u64,
    /// Counts the node processes seen (each `NodeUp` after the node was down): the hand-over
    /// gate compares it with the count when the plan started.
    node_process: u64,
    /// [`Lifecycle::node_process`] when the plan in flight started.
    run_process: u64,
}

impl Lifecycle {
    /// A lifecycle starting from `state`, before [`Input::Started`].
    pub fn new(config: LifecycleConfig, state: State) -> Lifecycle {
        Lifecycle {
            config,
            state,
            phase: Phase::StartingUp,
            current: Decision::initial(),
            in_flight: None,
            boot: Boot::Absent,
            hold_until: None,
            node_up_since: None,
            last_reassert: None,
            rotation_pending: false,
            residue: false,
            restart: false,
            tenure: 0,
            run_tenure: 0,
            shutdown_after: None,
            standby_reload_due: false,
            node_seen: false,
            node_process: 0,
            run_process: 0,
        }
    }

    /// How many node processes have been seen (each `NodeUp` after the node was down); the
    /// executor's hand-over gate ([`Run::hand_over`]) compares it before each command that
    /// gives something up.
    pub fn node_process(&self) -> u64 {
        self.node_process
    }

    /// Everything known.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The decision in force.
    pub fn current(&self) -> &Decision {
        &self.current
    }

    /// Where the lifecycle is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The boot credentials.
    pub fn boot(&self) -> Boot {
        self.boot
    }

    /// The plan in flight, if any.
    pub fn in_flight(&self) -> Option<&Step> {
        self.in_flight.as_ref()
    }

    /// The next decision at `now`, without acting on it.
    pub fn next_decision(&self, now: Mono, wall: Timestamp) -> Decision {
        decide(&self.state, now, wall)
    }

    /// What the TicketKeeper should do with the forge tickets at `now` (quorum mode,
    /// docs/quorum.md): only the local leader touches them; it contends while the decision
    /// engine says this region should forge; and our node counts as stopped only when the
    /// standby state is established, the decision in force does not forge, no plan that forges
    /// is in flight and no credentials may be left from a failed start. So tickets are released
    /// only after a confirmed stop (S2), and a failed stop keeps them until they expire.
    pub fn ticket_intent(&self, now: Mono, wall: Timestamp) -> crate::quorum::Intent {
        let stopped = matches!(self.phase, Phase::Running | Phase::ShuttingDown)
            && !self.current.forge
            && !self.in_flight.as_ref().is_some_and(Step::forges)
            && !self.residue;
        crate::quorum::Intent {
            local_leader: self.state.lease.is_current(now),
            contend: self.phase == Phase::Running && decide(&self.state, now, wall).tickets,
            stopped,
        }
    }

    /// Ready (`/readyz`): the standby state is established and no shutdown is under way.
    pub fn ready(&self) -> bool {
        self.phase == Phase::Running
    }

    /// The node may start (`/startup-status`): the standby state is established and, when it
    /// boots with credentials, they are in place (or it already runs).
    pub fn node_may_start(&self) -> bool {
        self.phase == Phase::Running
            && (!self.config.boot_credentials || self.boot == Boot::Ready || self.state.node.up)
    }

    /// Handles one input at `now` (`wall` only for override expiry) and says what to do.
    pub fn handle(&mut self, input: Input, now: Mono, wall: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Started => {
                fx.push(Effect::Publish);
                self.run(startup_plan(), Step::Startup, &mut fx);
            }
            Input::Fact(event) => {
                self.observe(&event, now, &mut fx);
                self.fold(event);
                self.redecide(now, wall, &mut fx);
                self.shutdown_if_idle(now, wall, &mut fx);
            }
            Input::Heartbeat => {
                self.fold(Event::Tick);
                self.reassert(now, &mut fx);
                self.redecide(now, wall, &mut fx);
                self.shutdown_if_idle(now, wall, &mut fx);
                fx.push(Effect::Publish);
            }
            Input::Timer => {
                self.fold(Event::Tick);
                if self.phase == Phase::StartingUp && self.in_flight.is_none() && !self.held(now) {
                    self.run(startup_plan(), Step::Startup, &mut fx);
                } else {
                    self.redecide(now, wall, &mut fx);
                    self.shutdown_if_idle(now, wall, &mut fx);
                }
            }
            Input::Rotated => self.rotate(now, wall, &mut fx),
            Input::ShutdownRequested => {
                if matches!(self.phase, Phase::ShuttingDown | Phase::Stopped) {
                    return fx;
                }
                self.phase = Phase::ShuttingDown;
                fx.push(Effect::Note(Note::ShuttingDown {
                    forging: self.current.forge,
                }));
                if self.current.forge
                    && let Some((until, slot_at)) = shutdown_hold(&self.state, now, wall)
                    && until.saturating_since(now) <= self.config.shutdown_hold_max
                {
                    fx.push(Effect::Note(Note::ShutdownHeld {
                        slot_at,
                        wait: until.saturating_since(now),
                    }));
                    self.shutdown_after = Some(until);
                    fx.push(Effect::WakeAt(until));
                }
                fx.push(Effect::Publish);
                self.shutdown_if_idle(now, wall, &mut fx);
            }
            Input::Finished(finished) => self.finish(finished, now, wall, &mut fx),
        }
        fx
    }

    fn fold(&mut self, event: Event) {
        // `apply` takes the state by value; the placeholder is never observed.
        let placeholder = State::new(self.state.config.clone());
        let state = std::mem::replace(&mut self.state, placeholder);
        self.state = apply(state, event);
    }

    fn held(&self, now: Mono) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }

    /// Lifecycle bookkeeping a fact implies, before it is folded into the state.
    fn observe(&mut self, event: &Event, now: Mono, fx: &mut Vec<Effect>) {
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

    fn run(&mut self, commands: Vec<Command>, step: Step, fx: &mut Vec<Effect>) {
        if matches!(&step, Step::Decision(next) if next.forge) && commands.contains(&Command::Install) {
            // This plan is the restart; a fence while it runs calls for another.
            self.restart = false;
        }
        let start_by = if step.forges() {
            // Quorum mode: the forge deadline bounds it too (docs/quorum.md).
            let tickets = self.state.tickets.and_then(|t| t.until);
            match (self.state.lease.deadline(), tickets) {
                (Some(lease), Some(tickets)) if self.state.config.quorum => Some(lease.min(tickets)),
                (lease, _) => lease,
            }
        } else {
            None
        };
        if commands.iter().any(|c| matches!(c, Command::Reload { .. })) {
            // Any reload tells the node the files as they are now.
            self.standby_reload_due = false;
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
    fn redecide(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if self.phase != Phase::Running || self.in_flight.is_some() {
            return;
        }
        let next = decide(&self.state, now, wall);
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
        } else {
            self.run(cmds, Step::Decision(Box::new(next)), fx);
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

    /// Re-sends the forging reload during the node's start-up window.
    fn reassert(&mut self, now: Mono, fx: &mut Vec<Effect>) {
        let Some(since) = self.node_up_since else { return };
        // Only a forging decision can be lost in a replay: a standby's files are absent, and a
        // node that booted non-producing does not forge whatever SIGHUP it missed.
        if !self.current.forge
            || self.in_flight.is_some()
            || self.boot != Boot::Absent
            || self.phase != Phase::Running
        {
            return;
        }
        if now.saturating_since(since) > self.config.reassert_window {
            self.node_up_since = None;
            return;
        }
        let due = self
            .last_reassert
            .is_none_or(|at| now.saturating_since(at) >= self.config.reassert_every);
        if due {
            self.last_reassert = Some(now);
            let cmds = vec![Command::Reload {
                reason: ReloadReason::Reassert,
            }];
            self.run(cmds, Step::Reassert, fx);
        }
    }

    fn rotate(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if !self.current.forge || self.phase != Phase::Running {
            return; // a standby installs the current set when it starts forging
        }
        if !decide(&self.state, now, wall).forge {
            // The renew deadline may have passed (a paused sidecar): the stop plan comes next,
            // and nothing may be installed before it.
            fx.push(Effect::Note(Note::RotationSkipped));
            self.redecide(now, wall, fx);
            return;
        }
        if self.in_flight.is_some() {
            self.rotation_pending = true;
            return;
        }
        fx.push(Effect::Note(Note::RotationInstalling));
        let cmds = vec![
            Command::Install,
            Command::Reload {
                reason: ReloadReason::Rotation,
            },
        ];
        self.run(cmds, Step::Rotation, fx);
    }

    fn finish(&mut self, finished: Finished, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        let Some(step) = self.in_flight.take() else {
            return; // nothing was in flight: a stray report changes nothing
        };
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
            (None, Step::BootRemove | Step::Reassert | Step::Rotation | Step::StandbyReload) => {}
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
    fn shutdown_if_idle(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
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

/// Whether `cmd` gives something up to another pod or region: our claim withdrawn (a status
/// write with `forgingEnabled: false`), contention stopped, the lease released. Sent only
/// behind the hand-over gate ([`Run::hand_over`]).
pub fn gives_up(cmd: &Command) -> bool {
    match cmd {
        Command::WriteStatus(report) => !report.forging_enabled,
        Command::Contend(on) => !on,
        Command::Release => true,
        Command::Install | Command::Remove | Command::Reload { .. } => false,
    }
}

/// Whether the failure of `cmd` stops its plan. A reload that only stops forging cannot fail
/// for lack of a node (`node_absent`): a node that does not run does not forge. A failed status
/// write stops a plan only when the write is required before forging.
pub fn aborts(cmd: &Command, node_absent: bool, status_write_required: bool) -> bool {
    match cmd {
        Command::Reload { reason } => reason.needs_node() || !node_absent,
        Command::Install | Command::Remove => true,
        Command::WriteStatus(_) => status_write_required,
        Command::Contend(_) | Command::Release => false,
    }
}
