//! NodeSignaller: reloads the node (SIGHUP) in the reference layout, by PID in a shared process
//! namespace (DESIGN.md section 4; the node guard's socket replaces this later, section 12).
//!
//! It owns only the current node identity (from the NodeWatcher's [`NodeProcess`]). Every signal
//! goes through [`ProcFs::signal`] (a pidfd opened before the start time is checked again), so a
//! reused PID is never signalled (S1). It decides nothing and never signals on its own: a reload
//! that cannot be delivered is reported as a [`CommandFailed`] and forgotten. Re-sending is the
//! Decider's call (it re-asserts during a node's start-up, when a SIGHUP may be lost in the
//! ledger replay), because only the Decider knows whether the files on disk match its decision:
//! a node that boots non-producing has credentials present at start, and a SIGHUP sent then on
//! the signaller's own initiative would make a standby forge.
//!
//! [`NodeProcess`]: crate::messages::NodeProcess

mod actor;
mod handlers;

use forge_core::decision::ReloadReason;
use prometheus::IntCounterVec;
use rustix::process::Signal;

use crate::{
    adapters::process::{ProcFs, ProcessIdentity, SignalError},
    messages::{CommandFailed, CommandResult},
    metrics::Metrics,
    supervisor::Restarts,
};

/// Commands arrive only from the Decider, one at a time (it awaits each): a small mailbox.
pub const MAILBOX_CAPACITY: usize = 16;

/// `CommandFailed::kind` when no node process is known (the reload is kept as pending).
pub const NO_NODE: &str = "no_node";

/// Sends SIGHUP to the identified node process; see the module documentation.
pub struct NodeSignaller {
    procfs: ProcFs,
    /// `cardano_sighup_signals_total{reason}`.
    sighups: IntCounterVec,
    restarts: Restarts,
    /// The node process now running, as last reported by the NodeWatcher.
    node: Option<ProcessIdentity>,
}

impl NodeSignaller {
    /// A signaller that finds processes through `procfs` and counts into `metrics`.
    pub fn new(procfs: ProcFs, metrics: &Metrics) -> Self {
        Self {
            procfs,
            sighups: metrics.sighup_signals.clone(),
            restarts: Restarts::new("node_signaller", Some(metrics.actor_restarts.clone())),
            node: None,
        }
    }

    /// A reload request from the Decider: sent if a node is known, else refused.
    fn reload(&mut self, reason: ReloadReason) -> CommandResult {
        let Some(node) = self.node else {
            tracing::debug!(
                actor = "node_signaller",
                reason = reason.as_str(),
                "no node process known"
            );
            return Err(CommandFailed::new(
                NO_NODE,
                format!("no node process known for the {} reload", reason.as_str()),
            ));
        };
        self.sighup(node, reason)
    }

    /// The NodeWatcher's view of the node process.
    fn node_process(&mut self, node: Option<ProcessIdentity>) {
        self.node = node;
    }

    fn sighup(&mut self, node: ProcessIdentity, reason: ReloadReason) -> CommandResult {
        match self.procfs.signal(node, Signal::HUP) {
            Ok(()) => {
                self.sighups.with_label_values(&[reason.as_str()]).inc();
                self.restarts.healthy();
                tracing::info!(
                    actor = "node_signaller",
                    reason = reason.as_str(),
                    pid = node.pid,
                    "SIGHUP sent to the node"
                );
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
                    SignalError::Gone { .. } => "node_gone",
                    SignalError::Failed { .. } => "signal_failed",
                };
                Err(CommandFailed::new(kind, e))
            }
        }
    }
}
