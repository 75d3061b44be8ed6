//! The local `coordination.k8s.io/v1` Lease: read, create, version-checked replace, and a watch
//! of the one object, each call under its own deadline.
//!
//! No election logic lives here: when to acquire, renew or give up is decided by forge-core's
//! lease model; this adapter only talks to the API server. Updates are full replaces carrying
//! the `resourceVersion` we read, so a concurrent writer makes ours fail with 409 instead of
//! silently overwriting it (the Rust election crates that patch without a version check can
//! elect two leaders). A renewal must change `renewTime`: the API server skips an update that
//! changes nothing, and then the `resourceVersion` does not move.

use std::time::Duration;

use forge_core::lease::LeaseRecord;
use futures::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Client, api::PostParams};

use super::{kube::with_timeout, kube_object::NamedObject};
use crate::ports::{ApiError, LeaseApi, LeaseSnapshot};

/// One named Lease in one namespace.
#[derive(Clone)]
pub struct KubeLeases {
    object: NamedObject<Lease>,
}

impl KubeLeases {
    /// The Lease `name` in `namespace`; every call gives up after `timeout`.
    pub fn new(client: Client, namespace: &str, name: &str, timeout: Duration) -> Self {
        Self {
            object: NamedObject::new(client, namespace, name, timeout),
        }
    }

    /// The Lease's name.
    pub fn name(&self) -> &str {
        self.object.name()
    }

    /// The current object, or `None` if it does not exist.
    pub async fn get(&self) -> Result<Option<Lease>, ApiError> {
        self.object.get().await
    }

    /// Creates the Lease with `spec`; a 409 (it exists already) is a [`ApiError::Conflict`].
    pub async fn create(&self, spec: LeaseSpec) -> Result<Lease, ApiError> {
        let lease = self.lease(None, spec);
        with_timeout(
            "lease create",
            self.object.timeout(),
            self.object.api().create(&PostParams::default(), &lease),
        )
        .await
    }

    /// Replaces the Lease's spec if it is still at `resource_version`; otherwise 409.
    pub async fn replace(&self, resource_version: &str, spec: LeaseSpec) -> Result<Lease, ApiError> {
        let lease = self.lease(Some(resource_version), spec);
        let params = PostParams::default();
        let call = self.object.api().replace(self.name(), &params, &lease);
        with_timeout("lease replace", self.object.timeout(), call).await
    }

    /// Every change of the Lease: `Some(lease)` on create or modify, `None` on delete.
    pub fn watch(
        &self,
        idle: Duration,
    ) -> impl Stream<Item = Result<Option<Lease>, ApiError>> + Send + use<> {
        self.object.watch(idle)
    }

    fn lease(&self, resource_version: Option<&str>, spec: LeaseSpec) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name().to_string()),
                resource_version: resource_version.map(str::to_string),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        }
    }
}

fn snapshot(lease: &Lease) -> crate::ports::LeaseSnapshot {
    crate::ports::LeaseSnapshot {
        record: lease
            .spec
            .as_ref()
            .map(LeaseRecord::from_spec)
            .unwrap_or_default(),
        resource_version: lease.metadata.resource_version.clone(),
    }
}

/// [`KubeLeases`] behind the [`LeaseApi`] port. The watch's idle bound is the lease duration's
/// order of magnitude: a silent connection is replaced before it could hide a release for long.
pub struct KubeLeasePort {
    leases: KubeLeases,
    watch_idle: Duration,
}

impl KubeLeasePort {
    /// The port over `leases`, re-opening an idle watch after `watch_idle`.
    pub fn new(leases: KubeLeases, watch_idle: Duration) -> Self {
        Self { leases, watch_idle }
    }
}

impl LeaseApi for KubeLeasePort {
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        let leases = self.leases.clone();
        async move { Ok(leases.get().await?.as_ref().map(snapshot)) }.boxed()
    }

    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let leases = self.leases.clone();
        async move { Ok(snapshot(&leases.create(record.to_spec()).await?)) }.boxed()
    }

    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let leases = self.leases.clone();
        async move {
            Ok(snapshot(
                &leases.replace(&resource_version, record.to_spec()).await?,
            ))
        }
        .boxed()
    }

    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.leases
            .watch(self.watch_idle)
            .map(|item| item.map(|lease| lease.as_ref().map(snapshot)))
            .boxed()
    }
}
