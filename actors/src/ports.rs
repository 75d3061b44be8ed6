//! Ports: the traits between actors and adapters (docs/architecture.md, "Conventions"). Actors
//! depend on these, never on an adapter, so actor tests run on in-memory implementations without
//! HTTP, sockets or files; [`crate::system::Adapters`] carries one implementation of each.
//!
//! | port | outside thing | used by | adapter | in-memory double (`testing`) |
//! |---|---|---|---|---|
//! | [`LeaseApi`] | a Lease (ours, a forge ticket) | LeaseElector, TicketKeeper | `kube_lease` | `MemoryLeases` |
//! | [`ForgeClusterApi`] | our CardanoForgeCluster | ClusterWatcher, StatusWriter | `kube_object` | `MemoryObject` |
//! | [`LeaderApi`] | our CardanoLeader | StatusWriter | `kube_object` | `MemoryObject` |
//! | [`Prober`] | the health endpoint (HTTP) | HealthProber | `http_probe` | `ScriptedProber` |
//! | [`CredentialStore`] | the credential files the node reads | CredentialKeeper | `fs_credentials` | `MemoryCredentials` |
//! | [`CredentialSource`] | the source credential files and their watch | CredentialKeeper | `fs_credentials` | `MemorySources` |
//! | [`PodEvents`] | Kubernetes Events about this pod | CredentialKeeper | `kube_events` | `RecordedEvents` |
//! | [`NodeGuard`] | the node guard's socket | NodeSignaller, NodeWatcher | `guard` | `MemoryGuard` |
//! | [`NodeHost`] | the node's socket, `/proc` and pidfd signals | NodeWatcher, NodeSignaller | `process` | `MemoryNode` |
//! | [`PeerApi`] | the peer regions' API servers (through their kubeconfigs) | PeerWatcher | `kube_peer` | `MemoryPeers` |
//!
//! Each port owns its error type ([`ApiError`], [`ProbeFailed`], [`CredentialFileError`],
//! [`SourceWatchError`], [`GuardError`], [`DiscoveryError`], [`SignalError`]): an adapter maps
//! its library's errors into it. Not behind a port: the quorum participants' API servers (the
//! TicketKeeper builds their clients from kubeconfigs; our own ticket is a [`LeaseApi`]), the
//! ChainWatcher's HTTP reads of the node's metrics, and the files the configuration names
//! (`SHELLEY_GENESIS`, read once while the system is built).

use std::{
    collections::BTreeMap,
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    credentials::{CredentialKind, CredentialSet},
    lease::LeaseRecord,
};
use forge_guard::protocol::{GuardState, Request};
use futures::{future::BoxFuture, stream::BoxStream};

/// A fieldless enum whose variants are bounded labels: `as_str` (and `Display`) give the label
/// value logs and metrics carry.
macro_rules! labels {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels! {
    /// What kind of Kubernetes API failure (`forge_manager_kube_api_errors_total{kind}`).
    pub enum ApiErrorKind {
        /// 409: the object changed (or exists already).
        Conflict => "conflict",
        /// 404.
        NotFound => "not_found",
        /// 422 and other validation refusals.
        Invalid => "invalid",
        /// 401/403.
        Unauthorized => "unauthorized",
        /// 5xx and other server answers.
        Server => "server",
        /// No answer within the request timeout.
        Timeout => "timeout",
        /// Connection, TLS or decoding failure.
        Transport => "transport",
    }
}

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

labels! {
    /// What kind of credential-file failure.
    pub enum FileErrorKind {
        /// A source could not be read.
        Read => "read",
        /// A source is larger than any credential file.
        TooLarge => "too_large",
        /// A target could not be written.
        Write => "write",
        /// A target could not be removed.
        Remove => "remove",
    }
}

/// A failed call to an API server (our own or a peer region's), classified for retry
/// decisions, metrics and status reasons. The port's error: the Kubernetes adapters map their
/// client's errors into it, and the in-memory doubles produce it directly.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 409: someone else wrote first (stale resourceVersion) or the object already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 422 or 400: the server refused the object (schema, validation).
    #[error("rejected by the API server: {0}")]
    Invalid(String),
    /// 401 or 403: credentials or RBAC.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// Any other status from the server (5xx, 429, ...).
    #[error("API server answered {code}: {message}")]
    Server {
        /// HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// No answer within our own deadline.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// What was attempted.
        op: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// Connection, TLS or decoding failure.
    #[error("transport: {0}")]
    Transport(String),
}

impl ApiError {
    /// Bounded label for `forge_manager_kube_api_errors_total{kind}` and status reasons.
    pub fn kind(&self) -> ApiErrorKind {
        match self {
            ApiError::Conflict(_) => ApiErrorKind::Conflict,
            ApiError::NotFound(_) => ApiErrorKind::NotFound,
            ApiError::Invalid(_) => ApiErrorKind::Invalid,
            ApiError::Unauthorized(_) => ApiErrorKind::Unauthorized,
            ApiError::Server { .. } => ApiErrorKind::Server,
            ApiError::Timeout { .. } => ApiErrorKind::Timeout,
            ApiError::Transport(_) => ApiErrorKind::Transport,
        }
    }

    /// Whether trying again (after re-reading, for a conflict) can succeed. Authorization and
    /// validation failures are configuration problems and are not retried blindly.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ApiError::Invalid(_) | ApiError::Unauthorized(_))
    }
}

/// A Lease record with the `resourceVersion` it was read or written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSnapshot {
    /// The leader-election fields.
    pub record: LeaseRecord,
    /// The precondition for the next write.
    pub resource_version: Option<String>,
}

/// The local Lease as the LeaseElector needs it. Every call must time out on its own, well
/// within the renew deadline.
pub trait LeaseApi: Send + Sync + 'static {
    /// The Lease, or `None` when it does not exist.
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>>;
    /// Creates it; [`ApiError::Conflict`] when it exists already.
    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>>;
    /// Replaces it if still at `resource_version`; [`ApiError::Conflict`] otherwise.
    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>>;
    /// Every change: `Some` on create/modify, `None` on delete; an `Err` item means the watch
    /// failed and the caller should restart it.
    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>>;
}

/// One named object of ours in our namespace, as the ClusterWatcher and the StatusWriter need
/// it: read, create when absent, status merge patch, watch. Every call must time out on its own.
pub trait ObjectApi<K>: Send + Sync + 'static {
    /// The object's name (for logs and messages).
    fn name(&self) -> &str;
    /// The object, or `None` when it does not exist.
    fn get(&self) -> BoxFuture<'static, Result<Option<K>, ApiError>>;
    /// Creates `object` (which carries our name); when another replica created it first
    /// (replicas start together), returns theirs instead.
    fn create_if_absent(&self, object: K) -> BoxFuture<'static, Result<K, ApiError>>;
    /// Merge-patches the status subresource with `status` (JSON of the `status` object), only
    /// if the object is still at `resource_version` ([`ApiError::Conflict`] otherwise; no
    /// precondition when `None`).
    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<K, ApiError>>;
    /// Every change as it happens: `Some` on create or modify, `None` on delete. An `Err` item
    /// means the watch failed (the caller reads again); `idle` bounds how long one watch may
    /// stay silent before it is replaced.
    fn watch(&self, idle: Duration) -> BoxStream<'static, Result<Option<K>, ApiError>>;
}

/// Our CardanoForgeCluster (cluster management): the ClusterWatcher follows it and creates it
/// from configuration, the StatusWriter writes our claim into its status.
pub type ForgeClusterApi = dyn ObjectApi<CardanoForgeCluster>;

/// This pod's CardanoLeader: the StatusWriter writes its status.
pub type LeaderApi = dyn ObjectApi<CardanoLeader>;

/// Why a health probe failed, in the words an operator reads in the log and in the CFC's
/// `healthStatus.message` (`HTTP 503`, `timeout after 2s`, the TLS or connection error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeFailed(pub String);

/// The HealthProber's client: one probe of a health endpoint. The call must end within
/// `timeout` on its own.
pub trait Prober: Send + Sync + 'static {
    /// Healthy iff `url` answers 200 within `timeout` (after redirects), sent with `headers`.
    fn probe(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), ProbeFailed>>;
}

/// Larger than any Cardano credential text envelope (a KES key envelope is about 1.3 KiB), small
/// enough that a wrong mount (a directory of logs, a device) is refused instead of read.
pub const MAX_CREDENTIAL_FILE_BYTES: u64 = 64 * 1024;

/// Bytes of key material. `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps key material.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The material itself, for validation and writing only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

/// The contents of the three credential files.
pub type CredentialContents = CredentialSet<SecretBytes>;

/// A failed credential file operation, naming the file and never its contents.
#[derive(Debug, thiserror::Error)]
pub enum CredentialFileError {
    /// A source file could not be read.
    #[error("cannot read credential file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A source file is larger than any credential envelope.
    #[error(
        "credential file {path} is {size} bytes, more than the {MAX_CREDENTIAL_FILE_BYTES} a credential can be"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A target file could not be written or renamed into place.
    #[error("cannot install credential file {path}: {source}")]
    Write {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A target file could not be removed.
    #[error("cannot remove credential file {path}: {source}")]
    Remove {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl CredentialFileError {
    /// Bounded label for metrics and status reasons.
    pub fn kind(&self) -> FileErrorKind {
        match self {
            CredentialFileError::Read { .. } => FileErrorKind::Read,
            CredentialFileError::TooLarge { .. } => FileErrorKind::TooLarge,
            CredentialFileError::Write { .. } => FileErrorKind::Write,
            CredentialFileError::Remove { .. } => FileErrorKind::Remove,
        }
    }
}

/// Where the node reads its credentials (the target files). The CredentialKeeper installs a
/// valid set there only on the Decider's `Install` (S2) and removes it on every step down.
/// Synchronous, like the files behind it: the panic fail-safe must remove them without a
/// runtime.
pub trait CredentialStore: Send + Sync + 'static {
    /// Installs all three (each atomically); stops at the first failure, after which the
    /// caller removes the set, so a partial set never stays behind.
    fn install(&self, set: &CredentialContents) -> Result<(), CredentialFileError>;
    /// Whether exactly `set` is installed, readable by the node's user only.
    fn is_installed(&self, set: &CredentialContents) -> bool;
    /// Which of the three are there now.
    fn present(&self) -> Vec<CredentialKind>;
    /// Removes all three (missing ones are fine) and returns those that were there; tries
    /// every one even when one fails.
    fn remove(&self) -> Result<Vec<CredentialKind>, CredentialFileError>;
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

/// A change seen where the source credential files live (a Secret update is a burst of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChange {
    /// Something changed.
    Changed,
    /// The watch reported an error (e.g. its queue overflowed): re-validate to be sure.
    Error(String),
}

/// The watch of the source credential files could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot watch the source credential directories {dirs}: {detail}")]
pub struct SourceWatchError {
    /// The directories, for the operator.
    pub dirs: String,
    /// The cause.
    pub detail: String,
}

/// The source credential files (a read-only Secret mount) and their changes: the CredentialKeeper
/// reads and validates them, and again after every change.
pub trait CredentialSource: Send + Sync + 'static {
    /// The three files (validation reasons and metrics name them).
    fn files(&self) -> &CredentialSet<PathBuf>;
    /// Reads all three (each at most [`MAX_CREDENTIAL_FILE_BYTES`]).
    fn read(&self) -> Result<CredentialContents, CredentialFileError>;
    /// Every change from now on, until the stream is dropped; it ends when the watch does. Set
    /// up before the caller reads, so that no change between the two is missed.
    fn watch(&self) -> Result<BoxStream<'static, SourceChange>, SourceWatchError>;
}

/// Kubernetes Events about this pod (`regarding` the pod, reported by forge-manager).
pub trait PodEvents: Send + Sync + 'static {
    /// Publishes a `Warning` in the background; a failure is logged, never retried (a log line
    /// and a metric carry the same fact). `note` names files and problems, never contents.
    fn warning(&self, reason: &'static str, action: &'static str, note: &str);
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

/// A peer region's CardanoForgeCluster and Lease, addressed through its own API server.
#[derive(Clone)]
pub struct PeerObjects {
    /// Its CardanoForgeCluster (named after the peer).
    pub cfc: Arc<ForgeClusterApi>,
    /// Its local Lease (under our lease name).
    pub lease: Arc<dyn ObjectApi<k8s_openapi::api::coordination::v1::Lease>>,
}

/// The peer regions' API servers (cluster management), each reached through its own
/// kubeconfig: the PeerWatchers read and watch their CardanoForgeCluster and Lease.
pub trait PeerApi: Send + Sync + 'static {
    /// Connects to peer `peer` afresh (a kubeconfig may have been rotated since the last
    /// time) and addresses its objects; a peer that cannot be reached is an [`ApiError`].
    fn connect(&self, peer: &str) -> BoxFuture<'static, Result<PeerObjects, ApiError>>;
}
