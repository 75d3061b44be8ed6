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

mod client;
#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_core::lease::LeaseRecord;
use tokio::{sync::broadcast, time::Instant};

use crate::ports::LeaseSnapshot;

use client::Faults;
pub use client::MemoryLeaseClient;

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
