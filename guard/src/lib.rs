//! forge-guard: the node guard (DESIGN.md section 12). It runs as the node container's
//! entrypoint and cardano-node's parent, and holds the forging permit the sidecar grants over a
//! Unix socket. When the permit lapses (the sidecar died, hangs or is paused) or is revoked, it
//! removes the target credential files and SIGHUPs the node itself, on its own monotonic clock,
//! before the lease can pass to another pod (S3). It also reloads the node on request (no shared
//! process namespace needed) and reports what the node actually does, from its log lines.
//!
//! Small on purpose: threads and blocking I/O, no async runtime, no Kubernetes client. It never
//! grants itself a permit: it starts without one and only ever holds what it was told.
#![forbid(unsafe_code)]

pub mod protocol;
pub mod scan;
mod supervise;

pub use supervise::{GuardError, GuardOptions, run};
