//! [`MemoryLeaseClient`]: one client of a [`MemoryLeases`] store, with its own scripted faults
//! (the `memory_leases` module docs).

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_core::lease::LeaseRecord;
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use tokio::sync::broadcast;

use super::{Change, MemoryLeases, Outage, Stored, WriteOp};
use crate::ports::{ApiError, LeaseApi, LeaseSnapshot};

#[derive(Debug, Default)]
pub(super) struct Faults {
    conflicts: u32,
    outage: Outage,
    /// Calls made (get, create, replace), for tests that count API requests.
    calls: u64,
}

/// One client of a [`MemoryLeases`] store, implementing [`LeaseApi`], with its own scripted
/// faults. Clones share the faults, so a test keeps one to script what the elector's copy does.
/// Outages and conflict storms apply to `get`, `create` and `replace` only; open watches keep
/// delivering until broken or ended on purpose ([`Self::break_watches`], [`Self::end_watches`]).
#[derive(Clone)]
pub struct MemoryLeaseClient {
    pub(super) leases: MemoryLeases,
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) faults: Arc<Mutex<Faults>>,
}

impl std::fmt::Debug for MemoryLeaseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLeaseClient")
            .field("name", &self.name)
            .finish()
    }
}

/// What a call does, decided when it is made.
enum Script {
    Serve,
    Fail(ApiError),
    FailAfter(Duration, ApiError),
    Hang,
}

impl MemoryLeaseClient {
    /// The store this client talks to.
    pub fn store(&self) -> &MemoryLeases {
        &self.leases
    }

    /// How many calls (get, create, replace) this client (and its clones) made so far.
    pub fn calls(&self) -> u64 {
        self.faults().calls
    }

    /// The next `n` writes (create or replace) of this client fail with 409 and change nothing:
    /// a 409 storm.
    pub fn conflict_next_writes(&self, n: u32) {
        self.faults().conflicts = n;
    }

    /// From now on every call of this client behaves as `outage` says ([`Outage::None`] heals).
    pub fn set_outage(&self, outage: Outage) {
        self.faults().outage = outage;
    }

    /// This client's open watches fail with an error item.
    pub fn break_watches(&self) {
        let _ = self.leases.shared.changes.send(Change::Break {
            client: Some(self.id),
            end: false,
        });
    }

    /// This client's open watches end (the stream finishes without an error).
    pub fn end_watches(&self) {
        let _ = self.leases.shared.changes.send(Change::Break {
            client: Some(self.id),
            end: true,
        });
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn script(&self, op: &'static str, write: bool) -> Script {
        let mut faults = self.faults();
        match faults.outage {
            Outage::None => {}
            Outage::ServerError => {
                return Script::Fail(ApiError::Server {
                    code: 500,
                    message: format!("{op}: scripted server error"),
                });
            }
            Outage::TimeoutAfter(after) => {
                return Script::FailAfter(after, ApiError::Timeout { op, after });
            }
            Outage::Hang => return Script::Hang,
        }
        if write && faults.conflicts > 0 {
            faults.conflicts -= 1;
            return Script::Fail(ApiError::Conflict(format!("{op}: scripted conflict")));
        }
        Script::Serve
    }

    /// Runs `serve` unless the script says otherwise.
    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        write: bool,
        serve: impl FnOnce(&MemoryLeases) -> Result<T, ApiError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, ApiError>> {
        self.faults().calls += 1;
        let script = self.script(op, write);
        let leases = self.leases.clone();
        async move {
            match script {
                Script::Serve => serve(&leases),
                Script::Fail(e) => Err(e),
                Script::FailAfter(after, e) => {
                    tokio::time::sleep(after).await;
                    Err(e)
                }
                Script::Hang => futures::future::pending().await,
            }
        }
        .boxed()
    }
}

impl LeaseApi for MemoryLeaseClient {
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.call("lease get", false, |leases| Ok(leases.current()))
    }

    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let writer = self.name.clone();
        self.call("lease create", true, move |leases| {
            let mut store = leases.lock();
            if store.lease.is_some() {
                return Err(ApiError::Conflict("lease create: already exists".into()));
            }
            Ok(leases.commit(&mut store, &writer, WriteOp::Create, record))
        })
    }

    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let writer = self.name.clone();
        self.call("lease replace", true, move |leases| {
            let mut store = leases.lock();
            let Some(current) = &store.lease else {
                return Err(ApiError::NotFound("lease replace: no such lease".into()));
            };
            if current.resource_version.to_string() != resource_version {
                return Err(ApiError::Conflict(format!(
                    "lease replace: resourceVersion {resource_version} is stale (now {})",
                    current.resource_version
                )));
            }
            Ok(leases.commit(&mut store, &writer, WriteOp::Replace, record))
        })
    }

    /// The current Lease first (if it exists, as a list-then-watch does), then every change.
    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        let (rx, initial) = {
            let store = self.leases.lock();
            (
                self.leases.shared.changes.subscribe(),
                store.lease.as_ref().map(Stored::snapshot),
            )
        };
        let me = self.id;
        let initial = futures::stream::iter(initial.map(|s| Ok(Some(s))));
        let changes = futures::stream::unfold(Some(rx), move |rx| async move {
            let mut rx = rx?;
            loop {
                match rx.recv().await {
                    Ok(Change::Lease(s)) => return Some((Ok(s), Some(rx))),
                    Ok(Change::Break { client, end }) if client.is_none_or(|c| c == me) => {
                        if end {
                            return None;
                        }
                        let e = ApiError::Transport("watch: scripted failure".into());
                        return Some((Err(e), None));
                    }
                    Ok(Change::Break { .. }) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let e = ApiError::Transport(format!("watch: fell {n} changes behind"));
                        return Some((Err(e), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        initial.chain(changes).boxed()
    }
}
