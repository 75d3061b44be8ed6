//! In-memory stand-ins for actor tests (the actor tier of docs/architecture.md, "Test world"):
//! ports with scripted failures and a probe that records the facts an actor sends. Compiled into
//! the library (not `cfg(test)`) so that integration tests and other actors' tests can use them;
//! never wired into the sidecar.

mod memory_leases;
mod probe;
mod record;

pub use memory_leases::{LeaseWrite, MemoryLeaseClient, MemoryLeases, Outage, WriteOp};
pub use probe::{Probe, Recorded};
pub use record::{Logs, Recorder, eventually, recorder};
