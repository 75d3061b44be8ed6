//! [`MemoryObject`]: one named object in memory behind the [`ObjectApi`] port (our
//! CardanoForgeCluster, our CardanoLeader), with the API server's semantics the StatusWriter and
//! the ClusterWatcher depend on: a `resourceVersion` that moves on every change (and only on a
//! change), a status merge patch (RFC 7386) refused with 409 when the object is no longer at the
//! given version, 404 for a patch of an absent object, create-if-absent returning the object that
//! exists, and a watch that starts with the current object and then carries every change.
//!
//! Scripted faults: the next N calls fail with a 500 ([`MemoryObject::fail_next`]); a foreign
//! writer (another replica, an operator) replaces or deletes the object.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::broadcast;

use crate::ports::{ApiError, ObjectApi};

/// How many changes an open watch may fall behind before it fails (as a real watch would with
/// 410 Gone).
const WATCH_BUFFER: usize = 256;

struct Stored<K> {
    object: Option<K>,
    /// The last `resourceVersion` handed out.
    version: u64,
    /// Calls answered so far.
    calls: u64,
    /// The next this many calls fail with a 500.
    fail_next: u32,
}

/// One object of kind `K` in memory. Cheap to clone; clones share the object.
pub struct MemoryObject<K> {
    name: String,
    stored: Arc<Mutex<Stored<K>>>,
    changes: broadcast::Sender<Option<K>>,
}

impl<K> Clone for MemoryObject<K> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            stored: self.stored.clone(),
            changes: self.changes.clone(),
        }
    }
}

impl<K> MemoryObject<K> {
    fn lock(&self) -> MutexGuard<'_, Stored<K>> {
        self.stored.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K> std::fmt::Debug for MemoryObject<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryObject")
            .field("name", &self.name)
            .field("exists", &s.object.is_some())
            .field("version", &s.version)
            .finish()
    }
}

impl<K> MemoryObject<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The object `name`, absent until created.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            stored: Arc::new(Mutex::new(Stored {
                object: None,
                version: 0,
                calls: 0,
                fail_next: 0,
            })),
            changes: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    /// The object now.
    pub fn current(&self) -> Option<K> {
        self.lock().object.clone()
    }

    /// Calls answered so far (failed ones included).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// The next `n` calls fail with a 500.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// A foreign writer stores `object` (named ours) whatever is there; returns it as stored.
    pub fn write_foreign(&self, object: K) -> K {
        let mut s = self.lock();
        self.store(&mut s, object)
    }

    /// A foreign writer deletes the object.
    pub fn delete(&self) {
        let mut s = self.lock();
        if s.object.take().is_some() {
            let _ = self.changes.send(None);
        }
    }

    /// Stores `object` at a new version and tells the watches.
    fn store(&self, s: &mut Stored<K>, mut object: K) -> K {
        s.version += 1;
        let meta = object.meta_mut();
        meta.name = Some(self.name.clone());
        meta.resource_version = Some(s.version.to_string());
        s.object = Some(object.clone());
        let _ = self.changes.send(Some(object.clone()));
        object
    }

    /// One call: counts it, fails it if scripted, otherwise serves it.
    fn call<T: Send + 'static>(
        &self,
        serve: impl FnOnce(&Self, &mut Stored<K>) -> Result<T, ApiError>,
    ) -> BoxFuture<'static, Result<T, ApiError>> {
        let result = {
            let mut s = self.lock();
            s.calls += 1;
            if s.fail_next > 0 {
                s.fail_next -= 1;
                Err(ApiError::Server {
                    code: 500,
                    message: "scripted failure".into(),
                })
            } else {
                serve(self, &mut s)
            }
        };
        futures::future::ready(result).boxed()
    }
}

impl<K> ObjectApi<K> for MemoryObject<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self) -> BoxFuture<'static, Result<Option<K>, ApiError>> {
        self.call(|_, s| Ok(s.object.clone()))
    }

    fn create_if_absent(&self, object: K) -> BoxFuture<'static, Result<K, ApiError>> {
        self.call(move |me, s| match &s.object {
            Some(existing) => Ok(existing.clone()),
            None => Ok(me.store(s, object)),
        })
    }

    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<K, ApiError>> {
        self.call(move |me, s| {
            let Some(current) = &s.object else {
                return Err(ApiError::NotFound(me.name.clone()));
            };
            let at = current.meta().resource_version.clone();
            if resource_version.is_some() && resource_version != at {
                return Err(ApiError::Conflict(format!(
                    "{} is at resourceVersion {at:?}, not {resource_version:?}",
                    me.name
                )));
            }
            let mut json = serde_json::to_value(current).map_err(|e| ApiError::Invalid(e.to_string()))?;
            merge_patch(&mut json["status"], &status);
            let patched: K = serde_json::from_value(json).map_err(|e| ApiError::Invalid(e.to_string()))?;
            // An update that changes nothing leaves the resourceVersion as it was.
            let unchanged = serde_json::to_value(&patched).ok() == serde_json::to_value(current).ok();
            if unchanged {
                return Ok(patched);
            }
            Ok(me.store(s, patched))
        })
    }

    fn watch(&self, _idle: Duration) -> BoxStream<'static, Result<Option<K>, ApiError>> {
        // Subscribe before reading, so no change falls between the two.
        let changes = self.changes.subscribe();
        let first = self.lock().object.clone();
        let initial = futures::stream::iter(first.map(|o| Ok(Some(o))));
        let rest = futures::stream::unfold(changes, |mut changes| async move {
            match changes.recv().await {
                Ok(change) => Some((Ok(change), changes)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(ApiError::Transport(format!("watch fell {n} changes behind"))),
                    changes,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        initial.chain(rest).boxed()
    }
}

/// JSON merge patch (RFC 7386): objects merge key by key, `null` removes a key, anything else
/// replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(
                    target.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use forge_core::crd::{CardanoLeader, CardanoLeaderSpec};
    use kube::api::ObjectMeta;

    use super::*;

    fn leader() -> CardanoLeader {
        CardanoLeader {
            metadata: ObjectMeta::default(),
            spec: CardanoLeaderSpec::default(),
            status: None,
        }
    }

    #[tokio::test]
    async fn a_status_patch_at_a_stale_version_conflicts_and_changes_nothing() {
        let object = MemoryObject::<CardanoLeader>::new("pool-leader");
        let created = object.create_if_absent(leader()).await.expect("created");
        let rv = created.metadata.resource_version.clone();
        let written = object
            .patch_status(serde_json::json!({"leaderPod": "pod-a"}), rv.clone())
            .await
            .expect("written at the version read");
        assert_ne!(written.metadata.resource_version, rv);
        let stale = object
            .patch_status(serde_json::json!({"leaderPod": "pod-b"}), rv)
            .await;
        assert!(matches!(stale, Err(ApiError::Conflict(_))), "{stale:?}");
        let status = object.current().and_then(|o| o.status).expect("status");
        assert_eq!(status.leader_pod.as_deref(), Some("pod-a"));
    }

    #[tokio::test]
    async fn a_patch_that_changes_nothing_keeps_the_version_and_a_missing_object_is_not_found() {
        let object = MemoryObject::<CardanoLeader>::new("pool-leader");
        let missing = object.patch_status(serde_json::json!({}), None).await;
        assert!(matches!(missing, Err(ApiError::NotFound(_))), "{missing:?}");
        object.create_if_absent(leader()).await.expect("created");
        let a = object
            .patch_status(serde_json::json!({"leaderPod": "pod-a"}), None)
            .await
            .expect("written");
        let b = object
            .patch_status(serde_json::json!({"leaderPod": "pod-a"}), None)
            .await
            .expect("written");
        assert_eq!(a.metadata.resource_version, b.metadata.resource_version);
    }

    #[tokio::test]
    async fn a_watch_starts_with_the_object_and_carries_every_change() {
        let object = MemoryObject::<CardanoLeader>::new("pool-leader");
        object.create_if_absent(leader()).await.expect("created");
        let mut watch = object.watch(Duration::from_secs(1));
        let first = watch.next().await.expect("item").expect("ok");
        assert_eq!(first.and_then(|o| o.metadata.resource_version), Some("1".into()));
        object.delete();
        assert!(matches!(watch.next().await, Some(Ok(None))));
    }
}
