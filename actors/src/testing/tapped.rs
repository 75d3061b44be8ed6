//! [`Tapped`]: a port with a [`Tap`] on it, for tests and benchmarks that watch what the actors
//! do at their ports (the test fleet logs every call and scripts failures and delays; the
//! actors bench stamps the instant of each). Every call passes to the port it wraps; the tap is
//! shown the calls that change the world: a Lease write that landed, a status write (it may
//! hold the write back or fail it), a credential install or removal (it may refuse it).

use std::{sync::Arc, time::Duration};

use forge_core::{credentials::CredentialKind, lease::LeaseRecord};
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};
use kube::Resource;

use crate::ports::{
    ApiError, CredentialContents, CredentialFileError, CredentialStore, LeaseApi, LeaseSnapshot, ObjectApi,
};

/// A call at the credential store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialCall {
    /// `install`.
    Install,
    /// `remove`.
    Remove,
}

/// What a test is shown of the calls at a [`Tapped`] port; each hook does nothing unless the
/// test says otherwise.
pub trait Tap: Send + Sync + 'static {
    /// A write (create or replace) of the Lease landed: its answer.
    fn lease_written(&self, _snapshot: &LeaseSnapshot) {}

    /// A status write of the object of kind `kind` (`CardanoLeader`, `CardanoForgeCluster`)
    /// was called with `status`: the write is made once the returned future is done, and not
    /// at all when it fails (the write's answer is then its error).
    fn status_called(
        &self,
        _kind: &str,
        _status: &serde_json::Value,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// The status write of `kind` with `status` was made, and went so (`ok`).
    fn status_written(&self, _kind: &str, _status: &serde_json::Value, _ok: bool) {}

    /// `call` is about to reach the credential store: an error refuses it (the store is not
    /// touched).
    fn credentials_called(&self, _call: CredentialCall) -> Result<(), CredentialFileError> {
        Ok(())
    }

    /// `call` reached the credential store and went so (`ok`).
    fn credentials_done(&self, _call: CredentialCall, _ok: bool) {}
}

/// The port `inner` with the tap `tap` on it. Implements the port `inner` implements (the
/// Lease, an object's status, the credential store).
pub struct Tapped<P, T> {
    /// The port.
    pub inner: P,
    /// The tap.
    pub tap: Arc<T>,
}

impl<P, T> Tapped<P, T> {
    /// `inner` with `tap` on it.
    pub fn new(inner: P, tap: Arc<T>) -> Self {
        Self { inner, tap }
    }
}

impl<L: LeaseApi, T: Tap> Tapped<L, T> {
    fn lease_write(
        &self,
        call: BoxFuture<'static, Result<LeaseSnapshot, ApiError>>,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let tap = self.tap.clone();
        call.map(move |r| {
            if let Ok(s) = &r {
                tap.lease_written(s);
            }
            r
        })
        .boxed()
    }
}

impl<L: LeaseApi, T: Tap> LeaseApi for Tapped<L, T> {
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.get()
    }

    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.lease_write(self.inner.create(record))
    }

    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.lease_write(self.inner.replace(resource_version, record))
    }

    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.watch()
    }
}

impl<K, O, T> ObjectApi<K> for Tapped<O, T>
where
    K: Resource<DynamicType = ()> + Send + 'static,
    O: ObjectApi<K> + Clone,
    T: Tap,
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn get(&self) -> BoxFuture<'static, Result<Option<K>, ApiError>> {
        self.inner.get()
    }

    fn create_if_absent(&self, object: K) -> BoxFuture<'static, Result<K, ApiError>> {
        self.inner.create_if_absent(object)
    }

    fn patch_status(
        &self,
        status: serde_json::Value,
        resource_version: Option<String>,
    ) -> BoxFuture<'static, Result<K, ApiError>> {
        let kind = K::kind(&()).into_owned();
        let called = self.tap.status_called(&kind, &status);
        let (inner, tap) = (self.inner.clone(), self.tap.clone());
        async move {
            called.await?;
            let r = inner.patch_status(status.clone(), resource_version).await;
            tap.status_written(&kind, &status, r.is_ok());
            r
        }
        .boxed()
    }

    fn watch(&self, idle: Duration) -> BoxStream<'static, Result<Option<K>, ApiError>> {
        self.inner.watch(idle)
    }
}

impl<C: CredentialStore, T: Tap> CredentialStore for Tapped<C, T> {
    fn install(&self, set: &CredentialContents) -> Result<(), CredentialFileError> {
        self.tap.credentials_called(CredentialCall::Install)?;
        let r = self.inner.install(set);
        self.tap.credentials_done(CredentialCall::Install, r.is_ok());
        r
    }

    fn is_installed(&self, set: &CredentialContents) -> bool {
        self.inner.is_installed(set)
    }

    fn present(&self) -> Vec<CredentialKind> {
        self.inner.present()
    }

    fn remove(&self) -> Result<Vec<CredentialKind>, CredentialFileError> {
        self.tap.credentials_called(CredentialCall::Remove)?;
        let r = self.inner.remove();
        self.tap.credentials_done(CredentialCall::Remove, r.is_ok());
        r
    }
}
