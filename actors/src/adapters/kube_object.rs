//! One named, namespaced Kubernetes object of any kind (a Lease, our CardanoForgeCluster, our
//! CardanoLeader): get, create-if-absent, status merge patch, and a watch, each call under a
//! deadline. The kind-specific adapters build on it.

use std::{fmt::Debug, time::Duration};

use futures::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream};
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams, PostParams},
    runtime::watcher::{self, Event},
};
use serde::{Serialize, de::DeserializeOwned};

use super::kube::with_timeout;
use crate::ports::{ApiError, ObjectApi};

/// The field manager named in our writes (visible in `managedFields`).
pub const FIELD_MANAGER: &str = "forge-manager";

/// A handle on the object `name` of kind `K` in one namespace.
pub struct NamedObject<K> {
    api: Api<K>,
    name: String,
    timeout: Duration,
}

impl<K> Clone for NamedObject<K>
where
    Api<K>: Clone,
{
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            name: self.name.clone(),
            timeout: self.timeout,
        }
    }
}

impl<K> NamedObject<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    /// The object `name` in `namespace`; every call gives up after `timeout`.
    pub fn new(client: Client, namespace: &str, name: &str, timeout: Duration) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            timeout,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The typed API, for kind-specific calls.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }

    /// The call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The current object, or `None` if it does not exist.
    pub async fn get(&self) -> Result<Option<K>, ApiError> {
        with_timeout("get", self.timeout, self.api.get_opt(&self.name)).await
    }

    /// Creates `object` (which must carry our name); if another replica created it first (409
    /// AlreadyExists, replicas start together), reads and returns theirs instead.
    pub async fn create_if_absent(&self, object: &K) -> Result<K, ApiError> {
        match with_timeout(
            "create",
            self.timeout,
            self.api.create(&PostParams::default(), object),
        )
        .await
        {
            Err(ApiError::Conflict(_)) => self
                .get()
                .await?
                .ok_or_else(|| ApiError::Conflict(format!("{} exists and vanished again", self.name))),
            other => other,
        }
    }

    /// Merge-patches the status subresource with `status` (JSON of the `status` object).
    pub async fn patch_status(&self, status: &serde_json::Value) -> Result<K, ApiError> {
        let patch = Patch::Merge(serde_json::json!({ "status": status }));
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        with_timeout(
            "patch status",
            self.timeout,
            self.api.patch_status(&self.name, &params, &patch),
        )
        .await
    }

    /// Like [`NamedObject::patch_status`], but only if the object's `resourceVersion` is still
    /// `resource_version` (409 Conflict otherwise; no precondition when `None`).
    pub async fn patch_status_at(
        &self,
        status: &serde_json::Value,
        resource_version: Option<&str>,
    ) -> Result<K, ApiError> {
        let mut body = serde_json::json!({ "status": status });
        if let Some(rv) = resource_version {
            body["metadata"] = serde_json::json!({ "resourceVersion": rv });
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        with_timeout(
            "patch status",
            self.timeout,
            self.api.patch_status(&self.name, &params, &Patch::Merge(body)),
        )
        .await
    }

    /// Every change of the object as it happens: `Some(object)` when it is created or
    /// modified, `None` when it is deleted. Yields an error and goes on retrying when the
    /// watch fails; `idle` bounds how long the server may hold a watch open, so a silently
    /// dead connection is replaced.
    pub fn watch(&self, idle: Duration) -> impl Stream<Item = Result<Option<K>, ApiError>> + Send + use<K> {
        let config = watcher::Config::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(idle.as_secs().max(1) as u32);
        watcher::watcher(self.api.clone(), config).filter_map(|event| async move {
            match event {
                Ok(Event::Apply(object) | Event::InitApply(object)) => Some(Ok(Some(object))),
                Ok(Event::Delete(_)) => Some(Ok(None)),
                Ok(Event::Init | Event::InitDone) => None,
                Err(e) => Some(Err(ApiError::Transport(format!("watch: {e}")))),
            }
        })
    }
}

/// The object behind the [`ObjectApi`] port (our CardanoForgeCluster and CardanoLeader).
impl<K> ObjectApi<K> for NamedObject<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    fn name(&self) -> &str {
        NamedObject::name(self)
    }

    fn get(&self) -> BoxFuture<'static, Result<Option<K>, ApiError>> {
        let object = self.clone();
        async move { NamedObject::get(&object).await }.boxed()
    }

    fn create_if_absent(&self, new: K) -> BoxFuture<'static, Result<K, ApiError>> {
        let object = self.clone();
        async move { NamedObject::create_if_absent(&object, &new).await }.boxed()
    }

    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<K, ApiError>> {
        let object = self.clone();
        async move { object.patch_status_at(&status, resource_version.as_deref()).await }.boxed()
    }

    fn watch(&self, idle: Duration) -> BoxStream<'static, Result<Option<K>, ApiError>> {
        NamedObject::watch(self, idle).boxed()
    }
}
