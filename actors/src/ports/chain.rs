//! The chain's port: what the ChainWatcher reads from outside the process, the node's tip (its
//! metrics endpoint) and our leader schedule (a cncli leaderlog file).

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use futures::future::BoxFuture;

/// Why the node's tip could not be read, naming the endpoint (the ChainWatcher logs it and shows
/// it on `/status` as `chain.sync_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TipError {
    /// No answer within the read's bound.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// The endpoint could not be reached, or its answer could not be read.
    #[error("{url}: {detail}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The cause (`connect: ...`, `not an HTTP answer`, ...).
        detail: String,
    },
    /// It answered, with another status than 200.
    #[error("{url}: {status}")]
    Status {
        /// The endpoint.
        url: String,
        /// Its status line.
        status: String,
    },
    /// It answered without the tip's gauge (or with one that is not a slot).
    #[error("{url}: no {metric} sample")]
    NoSample {
        /// The endpoint.
        url: String,
        /// The gauge looked for.
        metric: &'static str,
    },
}

/// Why the leader schedule file could not be read (naming the file; what it holds is parsed,
/// and refused, by the ChainWatcher).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ScheduleFileError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// What tells one version of the leader schedule file from the next: its size and modification
/// time (a rewrite changes one of them; the file is read again only then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    /// Size in bytes.
    pub len: u64,
    /// Last modification.
    pub modified: SystemTime,
}

/// The ChainWatcher's reads: the node's tip from its metrics endpoint, and the leader schedule
/// file. The tip read must end within its `timeout` on its own; the file calls are small
/// blocking reads.
pub trait ChainSource: Send + Sync + 'static {
    /// The slot of the node's tip as its metrics endpoint `url` reports it.
    fn tip(&self, url: &str, timeout: Duration) -> BoxFuture<'static, Result<u64, TipError>>;
    /// The version of the file at `path` (`None`: it cannot be looked at, e.g. absent).
    fn schedule_version(&self, path: &Path) -> Option<FileVersion>;
    /// The contents of the file at `path`.
    fn read_schedule(&self, path: &Path) -> Result<Vec<u8>, ScheduleFileError>;
}
