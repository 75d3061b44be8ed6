//! In-memory stand-ins for actor tests (the actor tier of docs/architecture.md, "Test world"):
//! ports with scripted failures and a probe that records the facts an actor sends. Compiled into
//! the library behind the `testing` feature (and in this crate's own unit tests), so that the
//! integration tests of this crate and of the binary can use them; the sidecar is built without
//! it.

mod memory_credentials;
mod memory_leases;
mod memory_object;
mod probe;
mod record;
mod scripted_prober;

pub use memory_credentials::MemoryCredentials;
pub use memory_leases::{LeaseWrite, MemoryLeaseClient, MemoryLeases, Outage, WriteOp};
pub use memory_object::MemoryObject;
pub use probe::{Probe, Recorded};
pub use record::{Logs, Recorder, eventually, recorder};
pub use scripted_prober::ScriptedProber;
