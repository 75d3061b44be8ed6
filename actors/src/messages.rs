//! The whole message vocabulary of the actor system, grouped by receiver (docs/architecture.md,
//! "Actors" and "Conventions"). Facts go *to* the Decider (past tense); commands come *from* it
//! (imperative). Every message names its sender and receiver in its first doc line.

use actix::Message;
use forge_core::decision::{Event, ReloadReason, StatusReport};
use tokio::time::Instant;

use crate::adapters::process::ProcessIdentity;

/// A command that could not be carried out. The Decider logs it with its reason, counts it,
/// and keeps the fail-safe direction (it never releases a lease while removal failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct CommandFailed {
    /// Bounded label (metrics, status reasons).
    pub kind: &'static str,
    /// Human-readable cause; never secret material.
    pub detail: String,
}

impl CommandFailed {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
        }
    }
}

/// The outcome of a command.
pub type CommandResult = Result<(), CommandFailed>;

// === to the Decider ===

/// Any actor → Decider: a fact, stamped when it was observed (decision latency is measured
/// from there to the commands being sent).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Fact {
    /// What happened.
    pub event: Event,
    /// When the sender observed it.
    pub observed: Instant,
}

impl Fact {
    /// A fact observed now.
    pub fn now(event: Event) -> Self {
        Self {
            event,
            observed: Instant::now(),
        }
    }
}

/// CredentialKeeper → Decider: the source credentials changed on disk and the new set is
/// valid (a rotation). The Decider re-installs and reloads only while it forges.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct SourcesRotated;

/// Signal handler → Decider: shut down gracefully (SIGTERM/SIGINT): stop forging, withdraw the
/// claim, release the lease, then stop the system.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

// === to the LeaseElector ===

/// Decider → LeaseElector: contend for the local lease (acquire and renew), or stop contending
/// (stop renewing; the lease then lapses unless released).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Contend(pub bool);

/// Decider → LeaseElector: release the lease now if we hold it (empty holder, so a standby
/// takes over at once). Answers when the write is done or has failed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CommandResult")]
pub struct Release;

// === to the CredentialKeeper ===

/// Decider → CredentialKeeper: validate the source credentials and install them into the
/// target paths (atomic, 0600, verified). Refuses an invalid set.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CommandResult")]
pub struct Install;

/// Decider → CredentialKeeper: remove the target credential files.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CommandResult")]
pub struct Remove;

// === to the NodeSignaller ===

/// Decider → NodeSignaller: make the node re-read its credentials (SIGHUP).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CommandResult")]
pub struct Reload {
    /// Why (metric label `reason` of `cardano_sighup_signals_total`).
    pub reason: ReloadReason,
}

/// NodeWatcher → NodeSignaller: the node process now running (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct NodeProcess(pub Option<ProcessIdentity>);

// === to the StatusWriter ===

/// ClusterWatcher → StatusWriter: our CardanoForgeCluster as last seen on the server (its status
/// for write skipping, its `resourceVersion` as the precondition of our writes; `None`: deleted).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct CfcSeen(pub Option<Box<forge_core::crd::CardanoForgeCluster>>);

/// HealthProber → StatusWriter: this pod's latest health result, for `status.healthStatus`
/// (`None`: probing is off).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct HealthObserved(pub Option<forge_core::crd::HealthStatus>);

/// Decider → StatusWriter: write our status (only ever sent while we hold the lease). The
/// writer adds the leader, the times and the conditions, and writes only when it changed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "CommandResult")]
pub struct WriteStatus(pub StatusReport);

/// Decider → PeerWatcher: read the peer now (our claim was just confirmed: a peer's status
/// counts as evidence only when read after it, so waiting for the next poll costs up to a
/// retry period of handover time, L1).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct PollNow;
