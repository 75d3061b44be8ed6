//! The whole message vocabulary of the actor system, grouped by receiver (docs/architecture.md,
//! "Actors" and "Conventions"). Facts go *to* the Decider (past tense); commands come *from* it
//! (imperative). Every message names its sender and receiver in its first doc line.

use actix::Message;
use forge_core::{
    decision::{Event, ReloadReason, StatusReport},
    status::{ChainReport, KesReport, QuorumReport},
};
use tokio::time::Instant;

use crate::ports::{ApiErrorKind, FileErrorKind, GuardErrorKind, ProcessIdentity};

/// A command that could not be carried out. The Decider logs it with its reason, counts it,
/// and keeps the fail-safe direction (it never releases a lease while removal failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct CommandFailed {
    /// Why, as a type (its `Display` is the bounded label of logs and status reasons).
    pub kind: CommandError,
    /// Human-readable cause; never secret material.
    pub detail: String,
}

impl CommandFailed {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: impl Into<CommandError>, detail: impl std::fmt::Display) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

/// Why a command failed. `Display` gives the label value (`no_node`, `conflict`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandError {
    /// NodeSignaller: no node process is known to signal.
    NoNode,
    /// NodeSignaller: the node process exited before the signal reached it.
    NodeGone,
    /// NodeSignaller: the signal could not be sent.
    SignalFailed,
    /// NodeSignaller: a starting reload without a current lease deadline to bound the permit.
    NoPermit,
    /// NodeSignaller: a stopping reload whose effect was not confirmed in time.
    StopUnconfirmed,
    /// NodeSignaller: the node guard's request failed.
    Guard(GuardErrorKind),
    /// Decider: a starting command not sent (or not answered) by the renew deadline.
    DeadlinePassed,
    /// Decider: a command that gives something up not sent, because a new node process came
    /// up while the plan ran (the hand-over gate, [`forge_core::decision::Run::hand_over`]).
    NodeRestarted,
    /// Decider: the recipient's mailbox is gone.
    Mailbox,
    /// CredentialKeeper: the source set is invalid.
    InvalidCredentials,
    /// CredentialKeeper: the installed files do not verify.
    VerifyFailed,
    /// CredentialKeeper: reading, writing or removing a credential file failed.
    Files(FileErrorKind),
    /// LeaseElector, StatusWriter: the Kubernetes API call failed.
    Api(ApiErrorKind),
    /// LeaseElector: it restarted before the release was written.
    ElectorRestarted,
    /// LeaseElector: it stopped before the release was written.
    ElectorStopped,
}

impl CommandError {
    /// The label value of logs and status reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandError::NoNode => "no_node",
            CommandError::NodeGone => "node_gone",
            CommandError::SignalFailed => "signal_failed",
            CommandError::NoPermit => "no_permit",
            CommandError::StopUnconfirmed => "stop_unconfirmed",
            CommandError::Guard(k) => k.as_str(),
            CommandError::DeadlinePassed => "deadline_passed",
            CommandError::Mailbox => "mailbox",
            CommandError::InvalidCredentials => "invalid_credentials",
            CommandError::VerifyFailed => "verify_failed",
            CommandError::Files(k) => k.as_str(),
            CommandError::Api(k) => k.as_str(),
            CommandError::ElectorRestarted => "restarted",
            CommandError::ElectorStopped => "stopped",
            CommandError::NodeRestarted => "node_restarted",
        }
    }

    /// A reload that found no node process to signal (none known, or it died): nothing forges
    /// there, so a reload that stops forging has nothing left to do.
    pub fn is_node_absent(self) -> bool {
        matches!(self, CommandError::NoNode | CommandError::NodeGone)
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<GuardErrorKind> for CommandError {
    fn from(k: GuardErrorKind) -> Self {
        CommandError::Guard(k)
    }
}

impl From<FileErrorKind> for CommandError {
    fn from(k: FileErrorKind) -> Self {
        CommandError::Files(k)
    }
}

impl From<ApiErrorKind> for CommandError {
    fn from(k: ApiErrorKind) -> Self {
        CommandError::Api(k)
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

/// CredentialKeeper, ChainWatcher, TicketKeeper → Decider: the sender's latest figures for
/// `/status`, sent when they change. The Decider keeps the last of each kind and shows it as
/// sent; nothing is decided on them.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub enum StatusFigures {
    /// CredentialKeeper: the source certificate's KES figures (`kes`).
    Kes(KesReport),
    /// ChainWatcher: the node's sync and our leader schedule (`chain`).
    Chain(ChainReport),
    /// TicketKeeper: the forge tickets' standing (`quorum`).
    Quorum(QuorumReport),
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
#[rtype(result = "ReloadResult")]
pub struct Reload {
    /// Why (metric label `reason` of `cardano_sighup_signals_total`).
    pub reason: ReloadReason,
}

/// The NodeSignaller's answer to a [`Reload`] that reached the node (or needed not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reloaded {
    /// The reload may turn forging on, and a stopping reload sent earlier to the same node
    /// process (ours, or the node guard's fence) may still take effect until this instant: it
    /// could take effect last and leave the node not forging (cardano-node handles SIGHUPs
    /// concurrently, docs/safety-findings.md F24). The Decider's lifecycle plans one more
    /// reload then.
    pub undoable_until: Option<Instant>,
}

/// The outcome of a [`Reload`].
pub type ReloadResult = Result<Reloaded, CommandFailed>;

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

/// ClusterWatcher → HealthProber: the valid CardanoForgeCluster's `spec.healthCheck` (`None`:
/// it names none, so the environment's settings apply). Sent with every valid read; the prober
/// acts only on a change.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct ProbeSpecChanged(pub Option<forge_core::crd::HealthCheckSpec>);

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

/// Decider → PeerWatcher (cluster management): whether this pod now holds its region's local
/// lease, sent when that changes (the PeerWatchers start as not leading). A standby's
/// PeerWatcher follows its peer by watch alone and reads it only when the watches go silent
/// (docs/quorum.md, "API load"); becoming leader also sends `PollNow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Leading(pub bool);
