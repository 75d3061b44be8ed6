//! NodeSignaller: reloads the node (docs/architecture.md, "Actors"; docs/guard.md), through the node guard's
//! socket when a guard runs in the pod (preferred), else by SIGHUP to the node's PID in a shared
//! process namespace (the reference layout).
//!
//! It owns the current node identity (from the NodeWatcher's [`NodeProcess`]) and, in guard
//! mode, the forging permit and the guard connection. Every PID signal goes through
//! [`NodeHost::signal`] (with `/proc`: a pidfd opened before the start time is checked again),
//! so a reused PID is never signalled (S1). It decides nothing: a reload that cannot be delivered is reported as
//! a [`CommandFailed`]. Re-sending is the Decider's call (it re-asserts during a node's
//! start-up, and follows up a start an earlier stop may undo), with one exception in guard mode: a reload the guard reports as lost in the
//! ledger replay is re-sent when the node reports that consensus runs, and only while a permit
//! is held (a lost *start*): a standby's lost reload only stopped forging on a node that started
//! non-producing, so there is nothing to re-send, and a re-sent reload must never make a
//! standby read boot credentials.
//!
//! **The permit (S3).** The LeaseElector's facts reach this actor before the Decider (a
//! [`LeaseTap`] in front of the Decider), so the renew deadline of the lease is known before
//! any command that acts on it. A `StartForging` reload first grants the guard a permit for
//! the time left until that deadline (never beyond it) and is refused without one; every
//! renewal while forging renews the permit; a stopping reload (`StopForging`, `Shutdown`,
//! `Startup`) and a lost lease revoke it. If this process dies, hangs or is paused, the permit
//! lapses at the renew deadline, before the lease can expire, and the guard fences the node.
//!
//! **A stop is confirmed before it counts (S2).** cardano-node re-reads its configuration and
//! credential files on SIGHUP and only then stops its forging thread: tens of milliseconds on
//! an idle node, seconds on a loaded one. So a stopping reload (`StopForging`, `Shutdown`) is
//! answered only once the node is seen not forging after it: through the guard, the node's
//! "Disabling block forging" (or "not effective") line observed after the reload was sent, plus
//! [`STOP_SETTLE`] for its forging thread; by PID, when the process is gone, else once
//! `STOP_GRACE` passed for this reload *and every reload sent before it* (nothing the sidecar can
//! see confirms it). cardano-node handles every SIGHUP in a thread of its own (each reads the
//! credential files when it begins and applies what it read when it ends, with no lock), so a
//! start still under way when a stop's SIGHUP arrives could take effect after the stop and turn
//! forging back on (docs/safety-findings.md F20). So a stopping reload, by PID or through the
//! guard, is sent only once every earlier reload has had its `STOP_GRACE` (or the process is
//! gone, or the guard reports its node's exit), and by PID counts as done `STOP_GRACE` after its
//! SIGHUP. Each reload is taken to take effect within `STOP_GRACE` of its own SIGHUP (the
//! handlers do not queue). A re-assert is skipped while an earlier reload may still be under way
//! (it would add nothing, and hold back a stop that follows). Not confirmed within
//! `STOP_CONFIRM_TIMEOUT`, the reload fails with
//! [`StopUnconfirmed`](crate::messages::CommandError::StopUnconfirmed), and the Decider keeps
//! the claim and the lease: the renew deadline and the guard's permit do the fencing. "The guard
//! did not answer" is never taken for "the node is gone": only a guard whose socket file is
//! gone (it removes it when it exits with its child, the node) is, or, when the guard cannot be
//! reached, the node process last identified by PID and start time being gone (a SIGKILLed
//! guard leaves its socket file behind and takes its node along).
//!
//! **A start is not undone by an earlier stop (L1).** The other way round, an earlier stopping
//! reload (ours, the start-up reload, or the guard's own fence when a permit lapsed or was
//! revoked) still under way when a start's SIGHUP arrives can take effect after the start and
//! leave the node not forging while this pod holds the lease and means to forge
//! (docs/safety-findings.md F24). Starts are not held back like stops (the actor answers nothing
//! while it holds a reload). Instead the signaller keeps when every stopping reload sent to the
//! current node process has had its `STOP_GRACE` (`stops_done_by`), and the answer to a reload
//! that may turn forging on (a start, rotation, re-assert or follow-up) sent before then says
//! until when it may be undone ([`Reloaded::undoable_until`]). The Decider's lifecycle
//! (forge-core) plans one more reload then, a `FollowUp`, if the node is still meant to forge,
//! under the same room before the forging deadline as its other non-stopping reloads (F21). A
//! `FollowUp` is sent like a rotation, through the guard or by PID, and never skipped as a
//! re-assert is (the guard sees nothing to re-send: the node did apply the stop).
//!
//! **Metrics.** `forge_manager_fencing_covered` is 1 while the guard's subscription is up.
//! `cardano_forging_enabled` is what the guard reports the node does; without a guard, what
//! the node was last told (a successful starting or stopping reload). A follow-up reload after a
//! start counts in `cardano_sighup_signals_total{reason="follow_up"}` when it is sent.
//!
//! [`NodeProcess`]: crate::messages::NodeProcess
//! [`Reloaded::undoable_until`]: crate::messages::Reloaded::undoable_until

mod actor;
mod deadlines;
mod delivery;
mod follow_up;
mod handlers;
mod subscription;
mod tap;

pub use tap::LeaseTap;

use deadlines::Deadlines;

use std::{sync::Arc, time::Duration};

use forge_core::decision::ReloadReason;
use prometheus::{IntCounterVec, IntGauge};
use rustix::process::Signal;
use tokio::time::Instant;

use crate::{
    clock::Clock,
    messages::{CommandError, CommandFailed, CommandResult},
    metrics::Metrics,
    ports::{GuardReport, NodeGuard, NodeHost, ProcessIdentity, SignalError},
    supervisor::Restarts,
};

/// Commands arrive only from the Decider, one at a time (it awaits each): a small mailbox.
pub const MAILBOX_CAPACITY: usize = 16;

/// After the guard reports the node's "Disabling block forging", the node's forging thread is
/// cancelled asynchronously (the line comes just before the effect): this much more is waited.
pub const STOP_SETTLE: Duration = Duration::from_millis(100);

/// How a stopping reload is confirmed (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopConfirmation {
    /// By PID: how long after the SIGHUP the stop counts as done (`STOP_GRACE`).
    pub grace: Duration,
    /// Through the guard: how long to wait for the node's confirmation (`STOP_CONFIRM_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for StopConfirmation {
    /// The configuration's defaults.
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        }
    }
}

/// What the guard's subscription last delivered, shared with reloads waiting for a confirmation
/// (they run while the actor waits, so they cannot rely on its stream handler).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pushed {
    /// Reports of the node's reconfiguration lines so far (`observed` events).
    pub(crate) observations: u64,
    /// The guard's state after the last report.
    pub(crate) state: forge_guard::protocol::GuardState,
    /// The subscription is up.
    pub(crate) connected: bool,
    /// The guard reported its node's exit (`exited`) on this subscription: the node forges no
    /// more, so a stop is done (the guard exits next).
    pub(crate) exited: bool,
}

/// How often the guard's subscription is (re)tried while it is down.
pub const GUARD_RECONNECT: Duration = Duration::from_millis(250);

/// How often a reload the guard reported lost is re-sent until the node answers one (the
/// node's "consensus started" report re-sends at once; this is the fallback).
pub const GUARD_RESEND_EVERY: Duration = Duration::from_secs(1);

/// The guard side of the signaller (guard mode).
struct GuardLink {
    client: Arc<dyn NodeGuard>,
    /// The subscription is up (S3 covered).
    connected: bool,
    /// A subscription attempt is in flight.
    connecting: bool,
    /// A permit was granted and not revoked (we forge, or are starting to).
    permitted: bool,
    /// The guard reported a reload lost in the replay, and no reconfiguration since.
    reload_lost: bool,
    /// When the lost reload was last re-sent.
    last_resend: Option<Instant>,
    /// The subscription's reports, for reloads that wait for the node's confirmation.
    pushed: tokio::sync::watch::Sender<Pushed>,
    /// The task reading the subscription (aborted when the actor restarts).
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// Sends SIGHUP to the identified node process; see the module documentation.
pub struct NodeSignaller {
    host: Arc<dyn NodeHost>,
    /// `cardano_sighup_signals_total{reason}`.
    sighups: IntCounterVec,
    restarts: Restarts,
    /// The node process now running, as last reported by the NodeWatcher.
    node: Option<ProcessIdentity>,
    /// The last node process the NodeWatcher identified, kept after it is reported gone: when
    /// the guard cannot be reached (SIGKILLed, its socket file left behind), the death of this
    /// process is what confirms a stop ([`NodeSignaller::last_node_gone`]).
    last_node: Option<ProcessIdentity>,
    /// `cardano_forging_enabled`.
    forging: IntGauge,
    /// `forge_manager_fencing_covered`.
    fencing: IntGauge,
    /// Guard mode.
    guard: Option<GuardLink>,
    /// How stops are confirmed.
    stop: StopConfirmation,
    /// A starting (or rotation) reload was sent since the last confirmed stop: a stop must then
    /// wait for the node's confirmation even if the guard has not seen it forge yet.
    told_to_forge: bool,
    /// The Decider, told when the guard fenced the node (`NodeFenced`).
    decider: Option<actix::Recipient<crate::messages::Fact>>,
    /// The start-up reload found no node, and credentials are never present while the node is
    /// down (no boot credentials): the first node process that appears gets it then (F7: the
    /// orphan a crashed sidecar left forging stops when the sidecar comes back).
    startup_pending: bool,
    /// Boot credentials are installed while the node is down (`NODE_STARTS_NON_PRODUCING`): a
    /// SIGHUP not asked for by the Decider could make a standby forge, so none is ever sent.
    boot_credentials: bool,
    /// The latest instant by which the node process has applied every reload sent to it so
    /// far: cardano-node begins handling each SIGHUP at once, and each takes effect within
    /// `STOP_GRACE` of it (module docs).
    reloads_done_by: Option<Instant>,
    /// The latest instant by which every stopping reload sent to the node process so far (ours,
    /// and the guard's fences) has taken effect: a start sent before then may be undone by one
    /// of them, and its answer says so (module docs, F24).
    stops_done_by: Option<Instant>,
    /// The lease's forging deadlines, from the lease facts (the permit's bound).
    deadlines: Deadlines,
}

/// The guard subscription's reader → the actor.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) enum GuardPush {
    /// A report.
    Report(GuardReport),
    /// The subscription ended.
    Ended,
}

impl NodeSignaller {
    /// A signaller that signals the node on `host` and counts into `metrics`.
    pub fn new(host: impl NodeHost, metrics: &Metrics) -> Self {
        Self {
            host: Arc::new(host),
            sighups: metrics.sighup_signals.clone(),
            restarts: Restarts::new("node_signaller", Some(metrics.actor_restarts.clone())),
            node: None,
            last_node: None,
            forging: metrics.forging_enabled.clone(),
            fencing: metrics.fencing_covered.clone(),
            guard: None,
            stop: StopConfirmation::default(),
            told_to_forge: false,
            decider: None,
            startup_pending: false,
            boot_credentials: true,
            reloads_done_by: None,
            stops_done_by: None,
            deadlines: Deadlines::default(),
        }
    }

    /// Credentials are never present while the node is down (`NODE_STARTS_NON_PRODUCING` off):
    /// a start-up reload that found no node is sent to the first node process that appears.
    pub fn without_boot_credentials(mut self) -> Self {
        self.boot_credentials = false;
        self
    }

    /// Where to report that the guard fenced the node (the Decider then starts it again, L1).
    pub fn with_decider(mut self, decider: actix::Recipient<crate::messages::Fact>) -> Self {
        self.decider = Some(decider);
        self
    }

    /// How stopping reloads are confirmed (module docs).
    pub fn with_stop_confirmation(mut self, stop: StopConfirmation) -> Self {
        self.stop = stop;
        self
    }

    /// Guard mode: reloads go through the guard at `client`'s socket whenever it exists
    /// (SIGHUP by PID otherwise), and the permit is held (module docs). `clock` must be the
    /// LeaseElector's, so its deadlines mean the same instants here.
    pub fn with_guard(mut self, client: Arc<dyn NodeGuard>, clock: Clock) -> Self {
        self.deadlines.clock = Some(clock);
        self.guard = Some(GuardLink {
            client,
            connected: false,
            connecting: false,
            permitted: false,
            reload_lost: false,
            last_resend: None,
            pushed: tokio::sync::watch::Sender::new(Pushed::default()),
            reader: None,
        });
        self
    }

    /// Quorum mode (docs/quorum.md): the guard's permit never outlives the forge deadline of
    /// the ticket majority either (`TicketsChanged` facts reach us through the [`LeaseTap`]),
    /// except under `QUORUM_BREAK_GLASS` (`break_glass`), where the lease alone bounds it.
    pub fn with_quorum_if(self, quorum: Option<bool>) -> Self {
        match quorum {
            Some(break_glass) => self.with_quorum(break_glass),
            None => self,
        }
    }

    /// Quorum mode, as [`NodeSignaller::with_quorum_if`].
    pub fn with_quorum(mut self, break_glass: bool) -> Self {
        if !break_glass {
            self.deadlines.forge = Some(None);
        }
        self
    }

    /// The guard client, when a guard socket exists now.
    fn live_guard(&self) -> Option<Arc<dyn NodeGuard>> {
        self.guard
            .as_ref()
            .filter(|g| g.client.present())
            .map(|g| g.client.clone())
    }

    /// The permit to grant: the lease's renew deadline as an absolute CLOCK_MONOTONIC instant
    /// (nanoseconds), if a deadline is known and still ahead. Fixed here, from the deadline, so
    /// however late the request reaches the guard it never outlives the lease (a late one is
    /// refused there).
    fn permit_deadline(&self) -> Option<u64> {
        self.guard.as_ref()?;
        let deadline = self.deadlines.forging()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let left = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
        Some(forge_guard::monotonic_now_ns().saturating_add(left))
    }

    /// Records a reload that reached the node: without a guard's report, the metric follows
    /// what the node was told.
    fn reloaded(&mut self, reason: ReloadReason, via: &str) {
        self.sighups.with_label_values(&[reason.as_str()]).inc();
        // Each SIGHUP's handler begins at once (F20): this reload takes effect within
        // STOP_GRACE of now, whatever else is under way.
        let done = Instant::now() + self.stop.grace;
        self.reloads_done_by = Some(self.reloads_done_by.map_or(done, |t| t.max(done)));
        if matches!(
            reason,
            ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup
        ) {
            self.stopping_reload_sent();
        }
        self.restarts.healthy();
        let connected = self.guard.as_ref().is_some_and(|g| g.connected);
        if !connected {
            match reason {
                ReloadReason::StartForging => self.forging.set(1),
                ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup => {
                    self.forging.set(0)
                }
                ReloadReason::Rotation | ReloadReason::Reassert | ReloadReason::FollowUp => {}
            }
        }
        tracing::info!(
            actor = "node_signaller",
            reason = reason.as_str(),
            via,
            "node reloaded"
        );
    }

    /// A reload request from the Decider, by PID: sent if a node is known, else refused.
    fn reload(&mut self, reason: ReloadReason) -> CommandResult {
        let Some(node) = self.node else {
            if reason == ReloadReason::Startup && !self.boot_credentials {
                self.startup_pending = true;
            }
            tracing::debug!(
                actor = "node_signaller",
                reason = reason.as_str(),
                "no node process known"
            );
            return Err(CommandFailed::new(
                CommandError::NoNode,
                format!("no node process known for the {} reload", reason.as_str()),
            ));
        };
        self.sighup(node, reason)
    }

    /// The NodeWatcher's view of the node process.
    fn node_process(&mut self, node: Option<ProcessIdentity>) {
        if node.is_some() && node != self.last_node {
            if self.last_node.is_some() {
                // Another process: nothing is queued in it yet. The first one identified is
                // not: a reload sent before (through the guard, as a fresh sidecar's start-up
                // reload is) reached the process running then, most likely this one, and may
                // still be under way in it (F20, F24).
                self.reloads_done_by = None;
                self.stops_done_by = None;
            }
            // F22: an `exited` report from the old guard was about the old process; until the
            // signaller subscribes to the new guard it must not confirm a stop to this one.
            if let Some(g) = self.guard.as_ref() {
                g.pushed.send_if_modified(|p| std::mem::take(&mut p.exited));
            }
        }
        self.node = node;
        if node.is_some() {
            self.last_node = node;
        }
        if let Some(node) = node
            && std::mem::take(&mut self.startup_pending)
        {
            // Safe: without boot credentials the files are absent while no node runs, so this
            // SIGHUP can only stop a node forging from memory.
            tracing::info!(
                actor = "node_signaller",
                pid = node.pid,
                "the start-up reload found no node earlier: sending it to the node process that appeared"
            );
            let _ = self.sighup(node, ReloadReason::Startup);
        }
    }

    /// By PID, how long until every reload sent so far has had its `STOP_GRACE` (zero: none
    /// may still be under way).
    fn reloads_pending_for(&self) -> Duration {
        self.reloads_done_by
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(Instant::now()))
    }

    /// The node process is known to be gone: no node process is known now, and the last one
    /// identified had a verifiable identity (PID and start time, a shared process namespace)
    /// that no live process has any more. A node seen only through its guard (start time
    /// unknown) is never taken for gone this way.
    fn last_node_gone(&self) -> Option<ProcessIdentity> {
        if self.node.is_some() {
            return None;
        }
        self.last_node
            .filter(|n| n.start_time != 0 && self.host.identity(n.pid).ok() != Some(*n))
    }

    fn sighup(&mut self, node: ProcessIdentity, reason: ReloadReason) -> CommandResult {
        match self.host.signal(node, Signal::HUP) {
            Ok(()) => {
                tracing::debug!(
                    actor = "node_signaller",
                    pid = node.pid,
                    "SIGHUP sent to the node"
                );
                self.reloaded(reason, "pid");
                Ok(())
            }
            Err(e) => {
                if matches!(e, SignalError::Gone { .. }) {
                    // Never signal this identity again; the NodeWatcher reports its successor.
                    self.node = None;
                }
                tracing::warn!(
                    actor = "node_signaller",
                    reason = reason.as_str(),
                    pid = node.pid,
                    kind = e.kind(),
                    error = %e,
                    "SIGHUP not delivered"
                );
                let kind = match e {
                    SignalError::Gone { .. } => CommandError::NodeGone,
                    SignalError::Failed { .. } => CommandError::SignalFailed,
                };
                Err(CommandFailed::new(kind, e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
