//! The fleet's taps on one pod's ports: each call passes to the pod's in-memory double
//! (`forge_actors::testing::Tapped`) and is reported to the fleet's log, failed or delayed when
//! the test scripted so; the node guard, which only the fleet taps, is tapped here.

use std::{path::Path, time::Duration};

use forge_actors::{
    ports::{ApiError, CredentialFileError, GuardError, GuardReport, LeaseSnapshot, NodeGuard},
    testing::{CredentialCall, ModelNode, Tap},
};
use forge_guard::protocol::{GuardState, Request};
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};

use super::{Did, Fleet};

/// The fleet's tap on the ports of pod `pod`: the Lease (every landed write, for the S2 check
/// at the instant the Lease changes hands), the CardanoLeader and CardanoForgeCluster status
/// writes (logged with their `forgingEnabled`) and the credential files.
pub(super) struct PodTap {
    pub(super) pod: &'static str,
    pub(super) fleet: Fleet,
}

/// A status write as the log shows it: the CardanoLeader's, or the CardanoForgeCluster's (the
/// claim).
fn status_did(kind: &str, status: &serde_json::Value) -> Did {
    let forging = status["forgingEnabled"].as_bool().unwrap_or(false);
    if kind == "CardanoForgeCluster" {
        Did::Claim(forging)
    } else {
        Did::Status(forging)
    }
}

/// A call by `pod` like `did` as the test scripted it: its delay (looked up now, at the call),
/// then whether it fails (then it is logged as failed).
fn scripted(fleet: &Fleet, pod: &'static str, did: Did) -> impl Future<Output = bool> + Send + 'static {
    let delay = fleet.delay_of(pod, &did);
    let fleet = fleet.clone();
    async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        fleet.fails(pod, &did)
    }
}

fn credential_did(call: CredentialCall) -> Did {
    match call {
        CredentialCall::Install => Did::Install,
        CredentialCall::Remove => Did::Remove,
    }
}

impl Tap for PodTap {
    fn lease_written(&self, snapshot: &LeaseSnapshot) {
        self.fleet.lease_written(self.pod, snapshot);
    }

    /// Scripted delay, then scripted failure; the write itself runs at the answer.
    fn status_called(
        &self,
        kind: &str,
        status: &serde_json::Value,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let failing = scripted(&self.fleet, self.pod, status_did(kind, status));
        async move {
            if failing.await {
                return Err(ApiError::Server {
                    code: 500,
                    message: "scripted failure".into(),
                });
            }
            Ok(())
        }
        .boxed()
    }

    fn status_written(&self, kind: &str, status: &serde_json::Value, ok: bool) {
        self.fleet.called(self.pod, status_did(kind, status), ok);
    }

    fn credentials_called(&self, call: CredentialCall) -> Result<(), CredentialFileError> {
        if self.fleet.fails(self.pod, &credential_did(call)) {
            return Err(CredentialFileError::Write {
                path: "memory/kes.skey".into(),
                source: std::io::Error::other("scripted failure"),
            });
        }
        Ok(())
    }

    fn credentials_done(&self, call: CredentialCall, ok: bool) {
        self.fleet.called(self.pod, credential_did(call), ok);
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
        let failing = scripted(&self.fleet, self.pod, did.clone());
        let (fleet, pod, inner) = (self.fleet.clone(), self.pod, self.inner.clone());
        async move {
            if failing.await {
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
