//! forge-guard: the node guard (docs/guard.md). It runs as the node container's
//! entrypoint and cardano-node's parent, and holds the forging permit the sidecar grants over a
//! Unix socket. When the permit lapses (the sidecar died, hangs or is paused) or is revoked, it
//! removes the target credential files and SIGHUPs the node itself, on its own monotonic clock,
//! before the lease can pass to another pod (S3). It also reloads the node on request (no shared
//! process namespace needed) and reports what the node actually does, from its log lines.
//!
//! It enforces "no permit, no forging" on its own: it never SIGHUPs the node before the node
//! can take it, nor without a permit while credential files exist, nor to enable forging with
//! less than its reload room left of the permit; it re-fences a node that
//! reports forging without a permit; it refuses to start a node that would forge from its start;
//! and a fence that cannot remove the files terminates the node (`supervise` module docs).
//!
//! Small on purpose: threads and blocking I/O, no async runtime, no Kubernetes client. It never
//! grants itself a permit: it starts without one and only ever holds what it was told.
#![forbid(unsafe_code)]

pub mod protocol;
pub mod scan;
mod supervise;

pub use supervise::{GuardError, GuardOptions, MAX_RELOAD_ROOM, check_start_flags, run};

/// How every line the guard writes to its stderr (the node container's log) begins; the time
/// stamp follows (`forge-guard: t_unix_ns=<ns since the epoch> <message>`).
pub const LOG_PREFIX: &str = "forge-guard: t_unix_ns=";

/// The time stamp (ns since the epoch) of the guard's last line in `log` that contains `what`;
/// other processes' lines in the same log are skipped.
pub fn logged_at(log: &str, what: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.strip_prefix(LOG_PREFIX)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

/// Now on CLOCK_MONOTONIC, in nanoseconds: the clock of a permit's `deadline_mono_ns`. Both the
/// guard and the sidecar read the kernel's clock directly (not `Instant` arithmetic), so an
/// absolute deadline means the same instant in both processes (same kernel, same time
/// namespace).
pub fn monotonic_now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}
