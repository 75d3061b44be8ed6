//! What goes in and out of the [`Lifecycle`]: the [`Input`]s it is fed (with how a plan
//! [`Finished`]), the [`Effect`]s it asks for (a plan to [`Run`] behind its [`HandOver`] gate, a
//! [`Note`] to log), and the [`Step`] a plan in flight is for.

use std::time::Duration;

use jiff::Timestamp;

#[cfg(doc)]
use super::{Lifecycle, LifecycleConfig, aborts, gives_up};
use crate::decision::{Command, Decision, Event};
use crate::lease::Mono;

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
    /// One more reload after a start that an earlier stopping reload may undo (F24).
    FollowUp,
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
            Step::FollowUp => "follow_up",
            Step::Shutdown => "shutdown",
        }
    }

    /// True when the plan makes (or keeps) the node forge: it carries the renew deadline. A
    /// re-assert does too: its reload turns forging on in a node that lost the earlier one, so a
    /// slow one must not reach the node past the deadline.
    pub fn forges(&self) -> bool {
        match self {
            Step::Decision(next) => next.forge,
            Step::Rotation | Step::Reassert | Step::FollowUp => true,
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
    /// A reload of the plan that may turn forging on was sent while an earlier stopping reload
    /// to the same node process may still take effect, up to this instant: that one could take
    /// effect last and leave the node not forging (cardano-node handles SIGHUPs concurrently,
    /// F24). The NodeSignaller says so in the reload's answer; the latest such instant.
    pub undoable_until: Option<Mono>,
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
    /// A reload that does not stop forging was not planned: too little is left before the
    /// forging deadline for the stop there to wait for it (F21). It is planned after the next
    /// renewal.
    ReloadDeferred {
        /// The plan's step (`decision` for a start, `rotation`, `reassert`).
        step: &'static str,
        /// How much was left before the deadline.
        left: Duration,
        /// How much is needed ([`LifecycleConfig::reload_room`]).
        room: Duration,
    },
    /// A rotation is being installed while forging.
    RotationInstalling,
    /// A start (or rotation) may be undone by an earlier stopping reload still under way in the
    /// node for `wait` more: one more reload ([`Step::FollowUp`]) is planned then, if the node
    /// is still meant to forge (F24).
    FollowUpPlanned {
        /// How long until then.
        wait: Duration,
    },
    /// The follow-up reload is being sent: every earlier stopping reload has had its
    /// `STOP_GRACE`, so this one takes effect last.
    FollowUpSending,
    /// The follow-up reload is dropped: the node is no longer meant to forge, or another node
    /// process runs.
    FollowUpDropped,
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
