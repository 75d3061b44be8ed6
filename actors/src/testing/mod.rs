//! In-memory stand-ins for actor tests (the actor tier of docs/architecture.md, "Test world"):
//! ports with scripted failures and a probe that records the facts an actor sends. Compiled into
//! the library behind the `testing` feature (and in this crate's own unit tests), so that the
//! integration tests of this crate and of the binary can use them; the sidecar is built without
//! it.

mod config;
mod in_memory;
mod memory_chain;
mod memory_credentials;
mod memory_guard;
mod memory_leases;
mod memory_node;
mod memory_object;
mod memory_peers;
mod memory_sources;
mod memory_tickets;
mod model_node;
mod probe;
mod record;
mod recorded_events;
mod scripted_prober;
mod tapped;
mod virtual_time;

pub use config::config;
pub use in_memory::{InMemory, MemoryCluster};
pub use memory_chain::MemoryChain;
pub use memory_credentials::MemoryCredentials;
pub use memory_guard::MemoryGuard;
pub use memory_leases::{LeaseWrite, MemoryLeaseClient, MemoryLeases, Outage, WriteOp};
pub use memory_node::MemoryNode;
pub use memory_object::MemoryObject;
pub use memory_peers::MemoryPeers;
pub use memory_sources::MemorySources;
pub use memory_tickets::MemoryTickets;
pub use model_node::{ForgingObserver, ModelNode};
pub use probe::{Probe, Recorded};
pub use record::{Logs, Recorder, eventually, recorder};
pub use recorded_events::{RecordedEvent, RecordedEvents};
pub use scripted_prober::ScriptedProber;
pub use tapped::{CredentialCall, Tap, Tapped};
pub use virtual_time::on_virtual_time;
