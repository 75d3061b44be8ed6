//! Ports: the traits between actors and adapters (docs/architecture.md, "Conventions"). Actors
//! depend on these, never on an adapter, so actor tests run on in-memory implementations without
//! HTTP; `src/` wires the real adapters in.

use forge_core::lease::LeaseRecord;
use futures::{future::BoxFuture, stream::BoxStream};

use crate::adapters::kube::KubeApiError;

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
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, KubeApiError>>;
    /// Creates it; [`KubeApiError::Conflict`] when it exists already.
    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, KubeApiError>>;
    /// Replaces it if still at `resource_version`; [`KubeApiError::Conflict`] otherwise.
    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, KubeApiError>>;
    /// Every change: `Some` on create/modify, `None` on delete; an `Err` item means the watch
    /// failed and the caller should restart it.
    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, KubeApiError>>;
}
