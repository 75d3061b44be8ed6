//! [`plan`]: turns a change of [`Decision`] into ordered [`Command`]s. Break-before-make is
//! encoded here as data, so property tests can check it. No I/O.
//!
//! The Decider carries the commands out *in order*, each completing (or failing) before the
//! next starts: when forging stops, `Remove` then `Reload` come before the status write that
//! withdraws our claim and before `Contend(false)`/`Release` (S2); when forging starts, the claim
//! is published first, then `Install`, then `Reload`.
use crate::crd::ForgeState;

use super::decide::Decision;
use super::reason::Reason;

/// Why the node is signalled (log field and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadReason {
    /// Credentials were installed: forging starts.
    StartForging,
    /// Credentials were removed: forging stops.
    StopForging,
    /// Start-up: establish the standby state a crashed predecessor may have left behind.
    Startup,
    /// SIGTERM: stop forging before releasing the lease.
    Shutdown,
    /// A rotated credential set was installed while forging.
    Rotation,
    /// Re-sent during the node's start-up, when an earlier SIGHUP may have been lost in its
    /// ledger replay (the files already match the decision; the signal only re-applies them).
    Reassert,
    /// Re-sent once every stopping reload sent to the node process before a start (or
    /// rotation) has taken effect: cardano-node handles SIGHUPs concurrently, so one of those
    /// could take effect after the start and leave the node not forging (F24). The lifecycle
    /// plans it when the NodeSignaller reports the start may be undone until then.
    FollowUp,
}

impl ReloadReason {
    /// True when the reload must reach a running node to take effect (it turns forging on).
    /// A reload that stops forging, or re-asserts, has nothing to do when no node runs: a node
    /// that does not run does not forge.
    pub fn needs_node(self) -> bool {
        matches!(self, ReloadReason::StartForging | ReloadReason::Rotation)
    }

    /// True when the reload may turn forging on in the node (it re-reads credentials that are
    /// installed to forge): it must not be sent past the lease's renew deadline.
    pub fn turns_forging_on(self) -> bool {
        matches!(
            self,
            ReloadReason::StartForging
                | ReloadReason::Rotation
                | ReloadReason::Reassert
                | ReloadReason::FollowUp
        )
    }

    /// Stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadReason::StartForging => "start_forging",
            ReloadReason::StopForging => "stop_forging",
            ReloadReason::Startup => "startup",
            ReloadReason::Shutdown => "shutdown",
            ReloadReason::Rotation => "rotation",
            ReloadReason::Reassert => "reassert",
            ReloadReason::FollowUp => "follow_up",
        }
    }
}

/// The decision-derived part of our CardanoForgeCluster status; the ClusterWatcher adds the
/// rest (leader, health, generation, times) and writes only when it changed, with the last
/// `resourceVersion` as precondition so a delayed write never lands over a newer leader's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// `forgingEnabled`: our claim ([`Decision::claim`]).
    pub forging_enabled: bool,
    /// `effectiveState`.
    pub effective_state: ForgeState,
    /// `effectivePriority`.
    pub effective_priority: i32,
    /// `reason` (its [`Reason::as_str`]) and `message`.
    pub reason: Reason,
    /// `observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `tickets` (quorum mode): forge tickets held and participants.
    pub tickets: Option<(usize, usize)>,
}

impl StatusReport {
    /// The report of a decision.
    pub fn of(d: &Decision) -> StatusReport {
        StatusReport {
            forging_enabled: d.claim,
            effective_state: d.effective_state,
            effective_priority: d.effective_priority,
            reason: d.reason.clone(),
            observed_generation: d.observed_generation,
            tickets: d.ticket_count,
        }
    }
}

/// An order from the Decider (imperative: docs/architecture.md, "Conventions").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Decider → LeaseElector: contend for the local lease (or stop contending).
    Contend(bool),
    /// Decider → LeaseElector: release the lease now (empty holder), so a standby takes over.
    Release,
    /// Decider → CredentialKeeper: install the credentials (atomic, 0600, verified).
    Install,
    /// Decider → CredentialKeeper: remove the credentials.
    Remove,
    /// Decider → NodeSignaller: make the node re-read its credentials (SIGHUP).
    Reload {
        /// Why.
        reason: ReloadReason,
    },
    /// Decider → ClusterWatcher: write our cluster status (only ever as the lease holder).
    WriteStatus(StatusReport),
}

/// The commands that take the world from `prev` to `next`, in execution order.
pub fn plan(prev: &Decision, next: &Decision) -> Vec<Command> {
    let mut cmds = Vec::new();
    let starting = next.forge && !prev.forge;
    let stopping = prev.forge && !next.forge;
    let status_changed = prev.claim != next.claim
        || prev.effective_state != next.effective_state
        || prev.effective_priority != next.effective_priority
        || prev.reason != next.reason
        || prev.observed_generation != next.observed_generation
        || prev.ticket_count != next.ticket_count;
    // Only the current lease holder writes status (see `Decision::holds_lease`).
    let mut write_status = status_changed && next.holds_lease;

    if next.contend && !prev.contend {
        cmds.push(Command::Contend(true));
    }
    if stopping {
        // S2: credentials gone and node told before anything else.
        cmds.push(Command::Remove);
        cmds.push(Command::Reload {
            reason: ReloadReason::StopForging,
        });
    }
    if next.claim && !prev.claim && write_status {
        // The claim is published before we forge (docs/architecture.md, "Regions").
        cmds.push(Command::WriteStatus(StatusReport::of(next)));
        write_status = false;
    }
    if starting {
        cmds.push(Command::Install);
        cmds.push(Command::Reload {
            reason: ReloadReason::StartForging,
        });
    }
    if write_status {
        cmds.push(Command::WriteStatus(StatusReport::of(next)));
    }
    if prev.contend && !next.contend {
        cmds.push(Command::Contend(false));
        // Hand the lease to another pod of this cluster at once (L1) instead of letting it
        // expire; the LeaseElector ignores it when it does not hold the lease.
        cmds.push(Command::Release);
    }
    cmds
}

/// The commands on SIGTERM, from the decision in force: stop forging (`Remove`, `Reload`),
/// withdraw the claim while still the lease holder, then stop contending and release the lease
/// so a standby takes over at once (S2, L1 graceful handover). `Remove` and `Reload` are issued
/// even when `prev` does not forge: they are idempotent and cover a plan still in flight.
pub fn shutdown_plan(prev: &Decision) -> Vec<Command> {
    let mut cmds = vec![
        Command::Remove,
        Command::Reload {
            reason: ReloadReason::Shutdown,
        },
    ];
    if prev.holds_lease {
        let mut last = prev.clone();
        last.forge = false;
        last.claim = false;
        last.reason = Reason::ShuttingDown;
        cmds.push(Command::WriteStatus(StatusReport::of(&last)));
    }
    cmds.push(Command::Contend(false));
    cmds.push(Command::Release);
    cmds
}

/// The commands at start-up, before the first decision: establish the standby state (a crashed
/// predecessor may have left credentials behind and the node forging). Then
/// `plan(&Decision::initial(), &first)`.
pub fn startup_plan() -> Vec<Command> {
    vec![
        Command::Remove,
        Command::Reload {
            reason: ReloadReason::Startup,
        },
    ]
}
