//! NodeSignaller: reloads the node (SIGHUP) in the reference layout, by PID in a shared process
//! namespace (DESIGN.md section 4; the node guard's socket replaces this later, section 12).
//!
//! It owns only the current node identity (from the NodeWatcher's [`NodeProcess`]) and the last
//! reload the Decider asked for. Every signal goes through [`ProcFs::signal`] (a pidfd opened
//! before the start time is checked again), so a reused PID is never signalled (S1). It decides
//! nothing: a reload that cannot be delivered is reported as a [`CommandFailed`] and kept as
//! pending, then delivered once when a node process appears, because a SIGHUP sent while the
//! node starts (or to a process that then died) is lost, and only a reload makes the node's
//! forging follow its credential files.
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
    /// The last reload the Decider asked for (re-sent to a new node process).
    requested: Option<ReloadReason>,
    /// The process the last requested reload reached, if any.
    delivered_to: Option<ProcessIdentity>,
}

impl NodeSignaller {
    /// A signaller that finds processes through `procfs` and counts into `metrics`.
    pub fn new(procfs: ProcFs, metrics: &Metrics) -> Self {
        Self {
            procfs,
            sighups: metrics.sighup_signals.clone(),
            restarts: Restarts::new("node_signaller", Some(metrics.actor_restarts.clone())),
            node: None,
            requested: None,
            delivered_to: None,
        }
    }

    /// A reload request from the Decider: remembered as the latest, then sent if a node is known.
    fn reload(&mut self, reason: ReloadReason) -> CommandResult {
        self.requested = Some(reason);
        self.delivered_to = None;
        let Some(node) = self.node else {
            tracing::warn!(
                actor = "node_signaller",
                reason = reason.as_str(),
                "no node process known: the reload is pending until the node appears"
            );
            return Err(CommandFailed::new(
                NO_NODE,
                format!(
                    "no node process known; the {} reload is sent when the node appears",
                    reason.as_str()
                ),
            ));
        };
        self.sighup(node, reason, false)
    }

    /// The NodeWatcher's view of the node process. A process that the last requested reload has
    /// not reached (a new one, or one started after the reload went to a process that died)
    /// gets that reload once.
    fn node_process(&mut self, node: Option<ProcessIdentity>) {
        if node == self.node {
            return;
        }
        self.node = node;
        let (Some(node), Some(reason)) = (node, self.requested) else {
            return;
        };
        if self.delivered_to != Some(node) {
            // The Decider already has its answer for this reload; a failure is logged here.
            let _ = self.sighup(node, reason, true);
        }
    }

    fn sighup(&mut self, node: ProcessIdentity, reason: ReloadReason, resent: bool) -> CommandResult {
        match self.procfs.signal(node, Signal::HUP) {
            Ok(()) => {
                self.sighups.with_label_values(&[reason.as_str()]).inc();
                self.delivered_to = Some(node);
                self.restarts.healthy();
                tracing::info!(
                    actor = "node_signaller",
                    reason = reason.as_str(),
                    pid = node.pid,
                    resent,
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
                    "SIGHUP not delivered: the reload is pending until a node process appears"
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
