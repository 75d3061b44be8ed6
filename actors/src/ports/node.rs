//! The node's ports: the node guard's socket, and the node's own socket, process and signals.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use forge_guard::protocol::{GuardState, Request};
use futures::{future::BoxFuture, stream::BoxStream};

labels! {
    /// What kind of node-guard request failure.
    pub enum GuardErrorKind {
        /// Its socket file is absent: no guard runs (its node exited, or none was started).
        Gone => "guard_gone",
        /// Nothing listens on its socket.
        Unreachable => "guard_unreachable",
        /// It did not answer in time.
        Timeout => "guard_timeout",
        /// It answered with a refusal.
        Refused => "guard_refused",
    }
}

/// Why a guard request failed. Only `Refused` is an answer (the guard is alive and said no).
/// `Unreachable` and `Timeout` say nothing about the node: the guard may be stalled, or its
/// backlog full, with its node running and forging. `Gone` (the socket file is absent) is the
/// one sign that the node has exited: a guard removes its socket only after its child exited
/// (or when it never started one); a guard that was killed leaves the file behind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The socket file does not exist: no guard runs (its node exited, or none was started).
    #[error("node guard socket {path} does not exist")]
    Gone {
        /// The socket.
        path: String,
    },
    /// No guard listens (its socket is absent or refuses).
    #[error("node guard at {path}: {detail}")]
    Unreachable {
        /// The socket.
        path: String,
        /// The cause.
        detail: String,
    },
    /// The guard did not answer in time.
    #[error("node guard did not answer {op} within {timeout:?}")]
    Timeout {
        /// The request.
        op: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// The guard answered with an error.
    #[error("node guard refused {op}: {kind}: {error}")]
    Refused {
        /// The request.
        op: &'static str,
        /// Its bounded label.
        kind: String,
        /// What it said.
        error: String,
    },
}

impl GuardError {
    /// Its kind (a bounded label for logs and [`crate::messages::CommandError`]).
    pub fn kind(&self) -> GuardErrorKind {
        match self {
            GuardError::Gone { .. } => GuardErrorKind::Gone,
            GuardError::Unreachable { .. } => GuardErrorKind::Unreachable,
            GuardError::Timeout { .. } => GuardErrorKind::Timeout,
            GuardError::Refused { .. } => GuardErrorKind::Refused,
        }
    }
}

/// What the guard pushes on a subscription (the first item is the subscription's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardReport {
    /// `observed`, `permit`, `lapsed`, `revoked`, or `None` for the initial state.
    pub event: Option<String>,
    /// The guard's state after it.
    pub state: GuardState,
}

/// The node guard: the process that runs cardano-node in this pod and holds its forging permit
/// (the NodeSignaller's reloads, permits and revokes go through it, and it reports what the node
/// does). Every request is answered within its own timeout.
pub trait NodeGuard: Send + Sync + 'static {
    /// Its socket (for logs).
    fn socket(&self) -> &Path;
    /// Whether its socket exists (a guard runs, or ran, in this pod); a guard removes it only
    /// when it exits with its node.
    fn present(&self) -> bool;
    /// Sends one request and returns the guard's state after it.
    fn request(&self, req: Request) -> BoxFuture<'static, Result<GuardState, GuardError>>;
    /// Subscribes: the stream yields the current state, then every change, and ends when the
    /// guard goes away.
    fn subscribe(&self) -> BoxFuture<'static, Result<BoxStream<'static, GuardReport>, GuardError>>;
}

/// A process as a PID plus its start time (clock ticks since boot, `/proc/<pid>/stat` field
/// 22), which together never name two different processes. A start time of 0 means unknown (a
/// node seen through its guard, in another PID namespace): such an identity is never signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: i32,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

/// Why the node process could not be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// No process listens on the socket and none has the configured name.
    #[error("no process listens on {socket} and none is named {name:?} (is the process namespace shared?)")]
    NotFound {
        /// The node socket path.
        socket: PathBuf,
        /// The configured process name.
        name: String,
    },
    /// Several processes match the name and none is identified by the socket: refuse to guess.
    #[error("{count} processes are named {name:?} and none listens on {socket}: refusing to guess")]
    Ambiguous {
        /// The node socket path.
        socket: PathBuf,
        /// The configured process name.
        name: String,
        /// How many matched.
        count: usize,
    },
}

/// Why a signal was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The process is gone, or its PID now belongs to another process.
    #[error("process {pid} is gone (or its PID was reused)")]
    Gone {
        /// The PID that was targeted.
        pid: i32,
    },
    /// The kernel refused (permissions, no pidfd support).
    #[error("cannot signal process {pid}: {source}")]
    Failed {
        /// The PID that was targeted.
        pid: i32,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SignalError {
    /// Bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SignalError::Gone { .. } => "gone",
            SignalError::Failed { .. } => "failed",
        }
    }
}

/// What one check of the node socket found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketState {
    /// It accepted a connection (closed again at once).
    Accepting,
    /// There is no socket file.
    Absent,
    /// The file exists but did not accept a connection in time (the reason).
    NotAccepting(String),
}

/// The local cardano-node as this pod sees it: its socket, its process in `/proc` (with a
/// shared process namespace) and signals to it. The NodeWatcher observes it, the NodeSignaller
/// signals it when no node guard runs. The process calls are blocking (small `/proc` reads):
/// callers run them off the actor's thread, except single-process lookups.
pub trait NodeHost: Send + Sync + 'static {
    /// Whether `socket` accepts a connection within `timeout`.
    fn check_socket(&self, socket: &Path, timeout: Duration) -> BoxFuture<'static, SocketState>;
    /// Inodes of the listening Unix sockets bound to `socket`.
    fn listening_socket_inodes(&self, socket: &Path) -> io::Result<Vec<u64>>;
    /// The identity of a live process (an exited one is `NotFound`).
    fn identity(&self, pid: i32) -> io::Result<ProcessIdentity>;
    /// The node: the process listening on `socket` if any, else the only process named `name`;
    /// never a guess between several.
    fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError>;
    /// The command line of a process, split into arguments.
    fn cmdline(&self, pid: i32) -> io::Result<Vec<String>>;
    /// Sends `signal` to `target` only if its PID still names that process.
    fn signal(&self, target: ProcessIdentity, signal: rustix::process::Signal) -> Result<(), SignalError>;
}

/// An `Arc` of a host is that host (so constructors take either).
impl<T: NodeHost + ?Sized> NodeHost for Arc<T> {
    fn check_socket(&self, socket: &Path, timeout: Duration) -> BoxFuture<'static, SocketState> {
        (**self).check_socket(socket, timeout)
    }
    fn listening_socket_inodes(&self, socket: &Path) -> io::Result<Vec<u64>> {
        (**self).listening_socket_inodes(socket)
    }
    fn identity(&self, pid: i32) -> io::Result<ProcessIdentity> {
        (**self).identity(pid)
    }
    fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        (**self).discover_node(socket, name)
    }
    fn cmdline(&self, pid: i32) -> io::Result<Vec<String>> {
        (**self).cmdline(pid)
    }
    fn signal(&self, target: ProcessIdentity, signal: rustix::process::Signal) -> Result<(), SignalError> {
        (**self).signal(target, signal)
    }
}
