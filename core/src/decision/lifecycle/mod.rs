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
//! - Our claim is withdrawn only by a status write, which only the lease holder sends: past the
//!   renew deadline of a lease not lost, a decision that drops the claim keeps it (and
//!   contention) in force; the stop runs at once, the withdrawal and the hand-over follow the
//!   lease's next fact (F25).
//! - A stop is adopted (the node counted as stopped, so quorum mode's forge tickets may go) only
//!   if no new node process came up while it ran; otherwise it runs again for that process,
//!   as the hand-over gate does for the claim and the lease.
//! - Room before the deadline (F21): a reload that does not stop forging (a start, a rotation,
//!   a re-assert) is planned only while at least [`LifecycleConfig::reload_room`]
//!   (`STOP_GRACE`) is left before the forging deadline (the renew deadline, and in quorum mode
//!   the forge deadline): the stop at the deadline waits for every earlier reload's
//!   `STOP_GRACE`, so a later one would hold it past the deadline, into the margin before
//!   another pod may forge. The skipped command is kept, not lost: a deferred start is planned
//!   again on the next fact (a renewal moves the deadline), a rotation stays pending and a
//!   re-assert due, both sent after the next fact that leaves room; a wake-up at the deadline
//!   re-decides if no renewal comes.
//! - Follow-up (F24): cardano-node handles every SIGHUP in a thread of its own, so a stopping
//!   reload still under way when a start's (or rotation's) SIGHUP arrives can take effect after
//!   it and leave the node not forging. The NodeSignaller knows when every stopping reload it
//!   (or the node guard) sent to the node process has had its `STOP_GRACE`, and says so in the
//!   answer to such a start ([`Finished::undoable_until`]). At that instant one more reload
//!   ([`Step::FollowUp`]) is planned, if the node is still meant to forge: the decision in force
//!   and the current one forge, the same node process runs, and no stopping reload was planned
//!   since (a stop cancels it). It is a non-stopping reload like the others: planned only with
//!   the reload room left (F21), deferred like a re-assert until a fact or heartbeat that leaves
//!   room, and dropped when the stop at the deadline comes first (the node stops anyway then).
//! - Rotation: a rotated set is installed and the node reloaded only while forging and only if
//!   the next decision still forges; a rotation during a plan waits for it.
//! - Shutdown: once nothing is in flight, [`shutdown_plan`]; then [`Effect::Exit`], confirmed or
//!   not (a failed stop keeps the claim and the lease: they expire on their own).

mod follow_up;
mod messages;
mod room;
mod sequence;

use std::time::Duration;

use jiff::Timestamp;

#[cfg(doc)]
use super::shutdown_plan;
use super::{Command, Decision, Event, State, decide, shutdown_hold, startup_plan};
use crate::lease::Mono;
pub use messages::{Effect, Finished, HandOver, Input, Note, Run, Step};

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
    /// A reload that does not stop forging (a start, a rotation, a re-assert) is planned only
    /// while at least this much is left before the forging deadline (the renew deadline; in
    /// quorum mode the forge deadline too): the stop at the deadline is sent only once every
    /// earlier reload has had its `STOP_GRACE` (F20), so a later one would hold it past the
    /// deadline (F21). `STOP_GRACE`, or less when the lease timing leaves no room for it.
    pub reload_room: Duration,
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
    /// A re-assert was due but left too little time before the deadline
    /// ([`LifecycleConfig::reload_room`]): it is sent after the next fact (a renewal moves the
    /// deadline) or heartbeat that leaves room for it.
    reassert_deferred: bool,
    /// A start is deferred for the same reason: the deadline it was deferred before (logged,
    /// and a wake-up set, once per deadline).
    start_deferred: Option<Mono>,
    /// Counts the node processes seen (each `NodeUp` after the node was down): the hand-over
    /// gate compares it with the count when the plan started.
    node_process: u64,
    /// [`Lifecycle::node_process`] when the plan in flight started.
    run_process: u64,
    /// One more reload is due after a start an earlier stopping reload may undo (F24).
    follow_up: Option<follow_up::FollowUp>,
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
            reassert_deferred: false,
            start_deferred: None,
            follow_up: None,
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
                // A reload deferred for lack of room before the deadline goes once a fact (a
                // renewal) leaves room for it; the stop a fact calls for went first.
                self.resume_deferred(now, wall, &mut fx);
                self.shutdown_if_idle(now, wall, &mut fx);
            }
            Input::Heartbeat => {
                self.fold(Event::Tick);
                self.reassert(now, &mut fx);
                self.redecide(now, wall, &mut fx);
                self.follow_up_due(now, wall, &mut fx);
                self.shutdown_if_idle(now, wall, &mut fx);
                fx.push(Effect::Publish);
            }
            Input::Timer => {
                self.fold(Event::Tick);
                if self.phase == Phase::StartingUp && self.in_flight.is_none() && !self.held(now) {
                    self.run(startup_plan(), Step::Startup, &mut fx);
                } else {
                    self.redecide(now, wall, &mut fx);
                    self.follow_up_due(now, wall, &mut fx);
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
