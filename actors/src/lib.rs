//! forge-actors: the actors of forge-manager (docs/architecture.md, "Actors"), their messages,
//! their supervision, and the adapters that do their I/O. Decisions are made in forge-core; this
//! crate only reports facts and carries out commands.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod chain_watcher;
pub mod clock;
pub mod cluster_metrics;
pub mod cluster_watcher;
pub mod credential_keeper;
pub mod decider;
pub mod health_prober;
pub mod http;
pub mod lease_elector;
pub mod mailbox;
pub mod messages;
pub mod metrics;
pub mod node_signaller;
pub mod node_watcher;
pub mod peer_watcher;
pub mod ports;
pub mod status_writer;
pub mod supervisor;
pub mod system;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ticket_keeper;
