//! [`MemoryLeases`]: one Lease in memory behind the [`LeaseApi`] port, shared by several
//! clients (electors), with the API server's semantics that leader election depends on:
//! version-checked replace (409 on a stale `resourceVersion`), 409 on creating an existing
//! Lease, an update that changes nothing leaves the `resourceVersion` as it was, times are kept
//! at microsecond precision (`MicroTime`), and every change is broadcast to the open watches.
//!
//! Each client ([`MemoryLeaseClient`]) carries its own scripted faults: a 409 storm (the next
//! N writes conflict), an outage (every call fails with 500, fails with a timeout after a
//! virtual delay, or hangs forever), and broken or ended watches. A "foreign writer" (another
//! tool, or an elector we do not run) writes through [`MemoryLeases::write_foreign`]. Every
//! accepted write lands in a history with its (virtual) time, so tests can check who held the
//! Lease when.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_core::lease::LeaseRecord;
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use tokio::{sync::broadcast, time::Instant};

use crate::ports::{ApiError, LeaseApi, LeaseSnapshot};

/// How many changes an open watch may fall behind before it fails (as a real watch would with
/// 410 Gone).
const WATCH_BUFFER: usize = 1024;

/// Which write an entry of the history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// The Lease was created.
    Create,
    /// The Lease was replaced (version-checked, or forced by a foreign writer).
    Replace,
    /// The Lease was deleted.
    Delete,
}

/// One accepted change of the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseWrite {
    /// When it was accepted (tokio time: virtual under `tokio::time::pause`).
    pub at: Instant,
    /// The client that wrote it (its name), or `foreign`.
    pub writer: String,
    /// What was done.
    pub op: WriteOp,
    /// The Lease after the change (`None` after a delete).
    pub after: Option<LeaseSnapshot>,
}

impl LeaseWrite {
    /// The holder after this change, if any.
    pub fn holder(&self) -> Option<&str> {
        self.after.as_ref().and_then(|s| s.record.holder())
    }
}

/// What every call of one client does while an outage is scripted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outage {
    /// Calls are served.
    #[default]
    None,
    /// Calls fail at once with a 500.
    ServerError,
    /// Calls fail with [`ApiError::Timeout`] after this (virtual) delay, having done
    /// nothing: what the real adapter does when the API server is blackholed.
    TimeoutAfter(Duration),
    /// Calls never answer: only the caller's own deadline helps.
    Hang,
}

/// A change sent to the open watches.
#[derive(Debug, Clone)]
enum Change {
    /// The Lease as it is now (`None`: deleted).
    Lease(Option<LeaseSnapshot>),
    /// The watches of client `client` (all clients when `None`) fail (`end: false`) or end.
    Break { client: Option<u64>, end: bool },
}

#[derive(Debug)]
struct Stored {
    record: LeaseRecord,
    resource_version: u64,
}

impl Stored {
    fn snapshot(&self) -> LeaseSnapshot {
        LeaseSnapshot {
            record: self.record.clone(),
            resource_version: Some(self.resource_version.to_string()),
        }
    }
}

#[derive(Debug, Default)]
struct Store {
    lease: Option<Stored>,
    last_resource_version: u64,
    history: Vec<LeaseWrite>,
    next_client: u64,
}

struct Shared {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
}

/// The shared in-memory Lease. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct MemoryLeases {
    shared: Arc<Shared>,
}

impl Default for MemoryLeases {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLeases")
            .field("current", &self.current())
            .finish()
    }
}

/// The API server keeps `MicroTime`s at microsecond precision: so do we, so that "an update
/// that changes nothing" is judged as the real server judges it.
fn stored_form(mut record: LeaseRecord) -> LeaseRecord {
    let micros = |t: jiff::Timestamp| jiff::Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t);
    record.acquire_time = record.acquire_time.map(micros);
    record.renew_time = record.renew_time.map(micros);
    record
}

impl MemoryLeases {
    /// An empty store: the Lease does not exist yet.
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::default()),
                changes,
            }),
        }
    }

    /// A store whose Lease already exists with `record` (for example held under our own
    /// identity by a previous incarnation). Not recorded in the history.
    pub fn with_record(record: LeaseRecord) -> Self {
        let leases = Self::new();
        {
            let mut store = leases.lock();
            store.last_resource_version = 1;
            store.lease = Some(Stored {
                record: stored_form(record),
                resource_version: 1,
            });
        }
        leases
    }

    /// A new client of this store, named `name` in the history.
    pub fn client(&self, name: &str) -> MemoryLeaseClient {
        let id = {
            let mut store = self.lock();
            store.next_client += 1;
            store.next_client
        };
        MemoryLeaseClient {
            leases: self.clone(),
            id,
            name: name.to_string(),
            faults: Arc::new(Mutex::new(Faults::default())),
        }
    }

    /// The Lease now, if it exists.
    pub fn current(&self) -> Option<LeaseSnapshot> {
        self.lock().lease.as_ref().map(Stored::snapshot)
    }

    /// The current holder, if any.
    pub fn holder(&self) -> Option<String> {
        self.current().and_then(|s| s.record.holder().map(str::to_string))
    }

    /// Every accepted change so far, oldest first.
    pub fn history(&self) -> Vec<LeaseWrite> {
        self.lock().history.clone()
    }

    /// The holder after each accepted change that changed the holder, with its time: the
    /// sequence of tenures as the API server saw them.
    pub fn holder_changes(&self) -> Vec<(Instant, Option<String>)> {
        let mut out: Vec<(Instant, Option<String>)> = Vec::new();
        let mut last: Option<Option<String>> = None;
        for w in self.history() {
            let h = w.holder().map(str::to_string);
            if last.as_ref() != Some(&h) {
                out.push((w.at, h.clone()));
                last = Some(h);
            }
        }
        out
    }

    /// Someone other than our clients writes `record` unconditionally (no version check), as
    /// another tool or an elector we do not run would. Creates the Lease if absent.
    pub fn write_foreign(&self, record: LeaseRecord) -> LeaseSnapshot {
        let mut store = self.lock();
        let op = if store.lease.is_some() {
            WriteOp::Replace
        } else {
            WriteOp::Create
        };
        self.commit(&mut store, "foreign", op, record)
    }

    /// Deletes the Lease (a foreign delete).
    pub fn delete(&self) {
        let mut store = self.lock();
        if store.lease.take().is_some() {
            store.history.push(LeaseWrite {
                at: Instant::now(),
                writer: "foreign".into(),
                op: WriteOp::Delete,
                after: None,
            });
            let _ = self.shared.changes.send(Change::Lease(None));
        }
    }

    /// Every open watch (of every client) fails with an error item.
    pub fn break_watches(&self) {
        let _ = self.shared.changes.send(Change::Break {
            client: None,
            end: false,
        });
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A test that panicked while holding the lock has failed already; keep serving.
        self.shared.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `record` under a new resourceVersion, records it and tells the watches. An update
    /// that changes nothing is skipped, as the API server skips it (the version stays).
    fn commit(&self, store: &mut Store, writer: &str, op: WriteOp, record: LeaseRecord) -> LeaseSnapshot {
        let record = stored_form(record);
        if let Some(current) = &store.lease
            && op == WriteOp::Replace
            && current.record == record
        {
            return current.snapshot();
        }
        store.last_resource_version += 1;
        let stored = Stored {
            record,
            resource_version: store.last_resource_version,
        };
        let snapshot = stored.snapshot();
        store.lease = Some(stored);
        store.history.push(LeaseWrite {
            at: Instant::now(),
            writer: writer.to_string(),
            op,
            after: Some(snapshot.clone()),
        });
        // Sent under the lock, so watches see the changes in the order they were made.
        let _ = self.shared.changes.send(Change::Lease(Some(snapshot.clone())));
        snapshot
    }
}

#[derive(Debug, Default)]
struct Faults {
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
    leases: MemoryLeases,
    id: u64,
    name: String,
    faults: Arc<Mutex<Faults>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(h: &str, renew_second: i64) -> LeaseRecord {
        LeaseRecord {
            holder_identity: Some(h.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(jiff::Timestamp::from_second(1_700_000_000 + renew_second).expect("ts")),
            ..LeaseRecord::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_version_checked_and_watched_in_order() {
        let store = MemoryLeases::new();
        let a = store.client("a");
        let b = store.client("b");
        let mut watch = b.watch();
        assert_eq!(a.get().await.expect("get"), None);
        let created = a.create(held_by("a", 0)).await.expect("create");
        assert!(matches!(
            b.create(held_by("b", 0)).await,
            Err(ApiError::Conflict(_))
        ));
        let rv = created.resource_version.clone().expect("rv");
        let renewed = a.replace(rv.clone(), held_by("a", 1)).await.expect("renew");
        assert!(matches!(
            b.replace(rv, held_by("b", 1)).await,
            Err(ApiError::Conflict(_))
        ));
        // Unchanged: the version stays.
        let same = a
            .replace(renewed.resource_version.clone().expect("rv"), held_by("a", 1))
            .await
            .expect("no-op");
        assert_eq!(same.resource_version, renewed.resource_version);
        assert_eq!(watch.next().await.expect("item").expect("ok"), Some(created));
        assert_eq!(watch.next().await.expect("item").expect("ok"), Some(renewed));
        assert_eq!(store.history().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_faults_apply_to_one_client() {
        let store = MemoryLeases::new();
        let a = store.client("a");
        let b = store.client("b");
        a.conflict_next_writes(2);
        assert!(matches!(
            a.create(held_by("a", 0)).await,
            Err(ApiError::Conflict(_))
        ));
        assert!(matches!(
            a.create(held_by("a", 0)).await,
            Err(ApiError::Conflict(_))
        ));
        assert!(store.current().is_none(), "a conflicting write changes nothing");
        a.create(held_by("a", 0)).await.expect("storm over");

        a.set_outage(Outage::TimeoutAfter(Duration::from_secs(3)));
        let started = Instant::now();
        assert!(matches!(a.get().await, Err(ApiError::Timeout { .. })));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(b.get().await.expect("b unaffected").is_some());

        a.set_outage(Outage::Hang);
        let hung = tokio::time::timeout(Duration::from_secs(60), a.get()).await;
        assert!(hung.is_err(), "never answers");
        a.set_outage(Outage::ServerError);
        assert!(matches!(a.get().await, Err(ApiError::Server { code: 500, .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn watches_start_with_the_current_lease_and_can_be_broken() {
        let store = MemoryLeases::with_record(held_by("x", 0));
        let a = store.client("a");
        let b = store.client("b");
        let mut wa = a.watch();
        let mut wb = b.watch();
        assert!(wa.next().await.expect("initial").expect("ok").is_some());
        assert!(wb.next().await.expect("initial").expect("ok").is_some());
        a.break_watches();
        assert!(wa.next().await.expect("error item").is_err());
        assert!(wa.next().await.is_none(), "ends after the error");
        store.write_foreign(held_by("y", 5));
        let seen = wb
            .next()
            .await
            .expect("b still watching")
            .expect("ok")
            .expect("lease");
        assert_eq!(seen.record.holder(), Some("y"));
        b.end_watches();
        assert!(wb.next().await.is_none());
        assert_eq!(
            store
                .holder_changes()
                .into_iter()
                .map(|(_, h)| h)
                .collect::<Vec<_>>(),
            vec![Some("y".to_string())]
        );
    }
}
