//! The local `coordination.k8s.io/v1` Lease: read, create, version-checked replace, and a watch
//! of the one object, each call under its own deadline.
//!
//! No election logic lives here: when to acquire, renew or give up is decided by forge-core's
//! lease model; this adapter only talks to the API server. Updates are full replaces carrying
//! the `resourceVersion` we read, so a concurrent writer makes ours fail with 409 instead of
//! silently overwriting it (the Rust election crates that patch without a version check can
//! elect two leaders).

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::watcher::{self, Event},
};

use super::kube::{KubeApiError, with_timeout};

/// One named Lease in one namespace.
#[derive(Clone)]
pub struct KubeLeases {
    api: Api<Lease>,
    name: String,
    timeout: Duration,
}

impl KubeLeases {
    /// The Lease `name` in `namespace`; every call gives up after `timeout`.
    pub fn new(client: Client, namespace: &str, name: &str, timeout: Duration) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            timeout,
        }
    }

    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current object, or `None` if it does not exist.
    pub async fn get(&self) -> Result<Option<Lease>, KubeApiError> {
        with_timeout("lease get", self.timeout, self.api.get_opt(&self.name)).await
    }

    /// Creates the Lease with `spec`; a 409 (it exists already) is a [`KubeApiError::Conflict`].
    pub async fn create(&self, spec: LeaseSpec) -> Result<Lease, KubeApiError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        };
        with_timeout(
            "lease create",
            self.timeout,
            self.api.create(&PostParams::default(), &lease),
        )
        .await
    }

    /// Replaces the Lease's spec if it is still at `resource_version`; otherwise 409.
    pub async fn replace(&self, resource_version: &str, spec: LeaseSpec) -> Result<Lease, KubeApiError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: Some(resource_version.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        };
        with_timeout(
            "lease replace",
            self.timeout,
            self.api.replace(&self.name, &PostParams::default(), &lease),
        )
        .await
    }

    /// Every change of the Lease as it happens: `Some(lease)` when it is created or modified,
    /// `None` when it is deleted. The stream ends with an error when the watch fails (the
    /// actor then restarts and lists again); `idle` bounds how long the server may keep a
    /// watch open without sending anything, so a silently dead connection is noticed.
    pub fn watch(
        &self,
        idle: Duration,
    ) -> impl Stream<Item = Result<Option<Lease>, KubeApiError>> + Send + use<> {
        let config = watcher::Config::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(idle.as_secs().max(1) as u32);
        watcher::watcher(self.api.clone(), config).filter_map(|event| async move {
            match event {
                Ok(Event::Apply(lease) | Event::InitApply(lease)) => Some(Ok(Some(lease))),
                Ok(Event::Delete(_)) => Some(Ok(None)),
                Ok(Event::Init | Event::InitDone) => None,
                Err(e) => Some(Err(KubeApiError::Transport(format!("lease watch: {e}")))),
            }
        })
    }
}
