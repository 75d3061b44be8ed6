//! The taps on one pod's ports: each passes the call to the pod's in-memory double and reports
//! it to the fleet's log, failing or delaying it when the test scripted so.

use std::{path::Path, time::Duration};

use forge_actors::{
    ports::{
        ApiError, CredentialContents, CredentialFileError, CredentialStore, GuardError, GuardReport,
        LeaseApi, LeaseSnapshot, NodeGuard, ObjectApi,
    },
    testing::{MemoryCredentials, MemoryLeaseClient, MemoryObject, ModelNode},
};
use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    credentials::CredentialKind,
    lease::LeaseRecord,
};
use forge_guard::protocol::{GuardState, Request};
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};

use super::{Did, Fleet};

/// The pod's Lease client, reporting every landed write to the fleet (for the S2 check at the
/// instant the Lease changes hands).
pub(super) struct TappedLeases {
    pub(super) pod: &'static str,
    pub(super) inner: MemoryLeaseClient,
    pub(super) fleet: Fleet,
}

impl TappedLeases {
    fn tap(
        &self,
        call: BoxFuture<'static, Result<LeaseSnapshot, ApiError>>,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let (fleet, pod) = (self.fleet.clone(), self.pod);
        call.map(move |r| {
            if let Ok(s) = &r {
                fleet.lease_written(pod, s);
            }
            r
        })
        .boxed()
    }
}

impl LeaseApi for TappedLeases {
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.get()
    }

    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.tap(self.inner.create(record))
    }

    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.tap(self.inner.replace(resource_version, record))
    }

    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.watch()
    }
}

/// The node's credential files as the CredentialKeeper reaches them.
pub(super) struct TappedCredentials {
    pub(super) pod: &'static str,
    pub(super) inner: MemoryCredentials,
    pub(super) fleet: Fleet,
}

fn scripted_write_failure() -> CredentialFileError {
    CredentialFileError::Write {
        path: "memory/kes.skey".into(),
        source: std::io::Error::other("scripted failure"),
    }
}

impl CredentialStore for TappedCredentials {
    fn install(&self, set: &CredentialContents) -> Result<(), CredentialFileError> {
        if self.fleet.fails(self.pod, &Did::Install) {
            return Err(scripted_write_failure());
        }
        let r = self.inner.install(set);
        self.fleet.called(self.pod, Did::Install, r.is_ok());
        r
    }

    fn is_installed(&self, set: &CredentialContents) -> bool {
        self.inner.is_installed(set)
    }

    fn present(&self) -> Vec<CredentialKind> {
        self.inner.present()
    }

    fn remove(&self) -> Result<Vec<CredentialKind>, CredentialFileError> {
        if self.fleet.fails(self.pod, &Did::Remove) {
            return Err(scripted_write_failure());
        }
        let r = self.inner.remove();
        self.fleet.called(self.pod, Did::Remove, r.is_ok());
        r
    }
}

/// The node guard as the NodeSignaller (and the NodeWatcher) reach it.
pub(super) struct TappedGuard {
    pub(super) pod: &'static str,
    pub(super) inner: ModelNode,
    pub(super) fleet: Fleet,
}

impl NodeGuard for TappedGuard {
    fn socket(&self) -> &Path {
        self.inner.socket()
    }

    fn present(&self) -> bool {
        self.inner.present()
    }

    fn request(&self, req: Request) -> BoxFuture<'static, Result<GuardState, GuardError>> {
        let did = match req {
            Request::Reload => Did::Reload,
            Request::Permit { .. } => Did::Permit,
            Request::Revoke => Did::Revoke,
            Request::State | Request::Subscribe => return self.inner.request(req),
        };
        if !self.inner.present() {
            return self.inner.request(req);
        }
        let (fleet, pod, inner) = (self.fleet.clone(), self.pod, self.inner.clone());
        let delay = fleet.delay_of(pod, &did);
        async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if fleet.fails(pod, &did) {
                return Err(GuardError::Timeout {
                    op: "scripted",
                    timeout: Duration::from_millis(500),
                });
            }
            let r = inner.request(req).await;
            fleet.called(pod, did, r.is_ok());
            r
        }
        .boxed()
    }

    fn subscribe(&self) -> BoxFuture<'static, Result<BoxStream<'static, GuardReport>, GuardError>> {
        self.inner.subscribe()
    }
}

/// The pod's CardanoLeader as the StatusWriter reaches it: each status write is logged with its
/// `forgingEnabled`.
pub(super) struct TappedLeader {
    pub(super) pod: &'static str,
    pub(super) inner: MemoryObject<CardanoLeader>,
    pub(super) fleet: Fleet,
}

/// Taps a status write of `pod` as `did`: scripted delay, scripted failure, then the write.
fn tapped_status<K: Send + 'static>(
    fleet: Fleet,
    pod: &'static str,
    did: Did,
    write: BoxFuture<'static, Result<K, ApiError>>,
) -> BoxFuture<'static, Result<K, ApiError>> {
    let delay = fleet.delay_of(pod, &did);
    async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if fleet.fails(pod, &did) {
            return Err(ApiError::Server {
                code: 500,
                message: "scripted failure".into(),
            });
        }
        let r = write.await;
        fleet.called(pod, did, r.is_ok());
        r
    }
    .boxed()
}

impl ObjectApi<CardanoLeader> for TappedLeader {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn get(&self) -> BoxFuture<'static, Result<Option<CardanoLeader>, ApiError>> {
        self.inner.get()
    }

    fn create_if_absent(&self, object: CardanoLeader) -> BoxFuture<'static, Result<CardanoLeader, ApiError>> {
        self.inner.create_if_absent(object)
    }

    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<CardanoLeader, ApiError>> {
        let did = Did::Status(status["forgingEnabled"].as_bool().unwrap_or(false));
        // The write itself runs at the answer (after any scripted delay).
        let inner = self.inner.clone();
        let write = async move { inner.patch_status(status, resource_version).await }.boxed();
        tapped_status(self.fleet.clone(), self.pod, did, write)
    }

    fn watch(&self, idle: Duration) -> BoxStream<'static, Result<Option<CardanoLeader>, ApiError>> {
        self.inner.watch(idle)
    }
}

/// The CardanoForgeCluster as the StatusWriter and ClusterWatcher reach it: each status write
/// (the claim) is logged with its `forgingEnabled`.
pub(super) struct TappedCluster {
    pub(super) pod: &'static str,
    pub(super) inner: MemoryObject<CardanoForgeCluster>,
    pub(super) fleet: Fleet,
}

impl ObjectApi<CardanoForgeCluster> for TappedCluster {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn get(&self) -> BoxFuture<'static, Result<Option<CardanoForgeCluster>, ApiError>> {
        self.inner.get()
    }

    fn create_if_absent(
        &self,
        object: CardanoForgeCluster,
    ) -> BoxFuture<'static, Result<CardanoForgeCluster, ApiError>> {
        self.inner.create_if_absent(object)
    }

    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<CardanoForgeCluster, ApiError>> {
        let did = Did::Claim(status["forgingEnabled"].as_bool().unwrap_or(false));
        let inner = self.inner.clone();
        let write = async move { inner.patch_status(status, resource_version).await }.boxed();
        tapped_status(self.fleet.clone(), self.pod, did, write)
    }

    fn watch(&self, idle: Duration) -> BoxStream<'static, Result<Option<CardanoForgeCluster>, ApiError>> {
        self.inner.watch(idle)
    }
}
