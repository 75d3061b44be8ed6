//! The Kubernetes ports: our Lease, our CardanoForgeCluster and CardanoLeader, the peer
//! regions' API servers, the quorum participants' forge tickets, and Events about this pod,
//! with the error every API call speaks and the order of the `resourceVersion`s it carries.

use std::{sync::Arc, time::Duration};

use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    lease::LeaseRecord,
};
use futures::{future::BoxFuture, stream::BoxStream};

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

/// Kubernetes Events about this pod (`regarding` the pod, reported by forge-manager).
pub trait PodEvents: Send + Sync + 'static {
    /// Publishes a `Warning` in the background; a failure is logged, never retried (a log line
    /// and a metric carry the same fact). `note` names files and problems, never contents.
    fn warning(&self, reason: &'static str, action: &'static str, note: &str);
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

/// The quorum participants' API servers (quorum mode): the TicketKeeper reaches each
/// participant's forge ticket through it, our own in our API server, every other one through the
/// participant's own kubeconfig.
pub trait TicketApi: Send + Sync + 'static {
    /// Participant `participant`'s ticket, ready for calls (building a client from its
    /// kubeconfig if it has one); a participant that cannot be reached is an [`ApiError`]. The
    /// keeper connects on a ticket's first call and again until a call through the ticket
    /// answers, then keeps it.
    fn connect(&self, participant: &str) -> BoxFuture<'static, Result<Arc<dyn LeaseApi>, ApiError>>;
}

/// Whether `candidate` is a later `resourceVersion` of the same object than `known`: false only
/// when both are decimal numbers (as the API server's etcd revisions are) and `candidate` is
/// not greater. Used to drop a watch event that repeats or predates what a read or a write
/// already showed (a watch restarted from the server's cache may deliver old news); a version
/// that is not a number is taken as new (the caller's other checks still hold).
pub fn newer_resource_version(candidate: Option<&str>, known: Option<&str>) -> bool {
    match (
        candidate.and_then(|c| c.parse::<u64>().ok()),
        known.and_then(|k| k.parse::<u64>().ok()),
    ) {
        (Some(c), Some(k)) => c > k,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::newer_resource_version;

    #[test]
    fn only_a_greater_numeric_version_is_older_news_proof() {
        assert!(newer_resource_version(Some("12"), Some("11")));
        assert!(!newer_resource_version(Some("11"), Some("11")));
        assert!(!newer_resource_version(Some("9"), Some("11")));
        assert!(newer_resource_version(Some("9"), None));
        assert!(newer_resource_version(None, Some("11")));
        assert!(newer_resource_version(Some("abc"), Some("11")));
    }
}
