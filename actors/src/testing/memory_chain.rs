//! [`MemoryChain`]: the ChainWatcher's reads behind the [`ChainSource`] port, in memory: the
//! test sets the node's tip (or why it cannot be read) and writes or removes the leader schedule
//! file, and counts the reads.

use std::{
    io,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use futures::{FutureExt, future::BoxFuture};

use crate::ports::{ChainSource, FileVersion, ScheduleFileError, TipError};

/// What a tip read answers.
#[derive(Clone)]
enum Tip {
    Slot(u64),
    Status(String),
    Unreachable,
}

struct Chain {
    tip: Tip,
    /// The schedule file's contents and how many times it was written (`None`: absent).
    schedule: Option<(Vec<u8>, u64)>,
    writes: u64,
    tip_reads: usize,
    schedule_reads: usize,
}

/// The node's metrics endpoint (unreachable until a tip is set) and one leader schedule file
/// (absent until written; every path names it). Cheap to clone; clones share the chain.
#[derive(Clone)]
pub struct MemoryChain(Arc<Mutex<Chain>>);

impl Default for MemoryChain {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Chain {
            tip: Tip::Unreachable,
            schedule: None,
            writes: 0,
            tip_reads: 0,
            schedule_reads: 0,
        })))
    }
}

impl MemoryChain {
    fn lock(&self) -> MutexGuard<'_, Chain> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on the endpoint reports `slot` as the tip.
    pub fn set_tip(&self, slot: u64) {
        self.lock().tip = Tip::Slot(slot);
    }

    /// From now on the endpoint answers with the status line `status` (e.g. `HTTP/1.1 503
    /// Service Unavailable`).
    pub fn tip_answers(&self, status: &str) {
        self.lock().tip = Tip::Status(status.to_string());
    }

    /// The file now holds `contents` (a new version, even with the same contents).
    pub fn write_schedule(&self, contents: &[u8]) {
        let mut c = self.lock();
        c.writes += 1;
        c.schedule = Some((contents.to_vec(), c.writes));
    }

    /// The file is gone.
    pub fn remove_schedule(&self) {
        self.lock().schedule = None;
    }

    /// How many times the tip was read.
    pub fn tip_reads(&self) -> usize {
        self.lock().tip_reads
    }

    /// How many times the schedule file's contents were read.
    pub fn schedule_reads(&self) -> usize {
        self.lock().schedule_reads
    }
}

impl ChainSource for MemoryChain {
    fn tip(&self, url: &str, _timeout: Duration) -> BoxFuture<'static, Result<u64, TipError>> {
        let mut c = self.lock();
        c.tip_reads += 1;
        let url = url.to_string();
        let answer = match c.tip.clone() {
            Tip::Slot(slot) => Ok(slot),
            Tip::Status(status) => Err(TipError::Status { url, status }),
            Tip::Unreachable => Err(TipError::Unreachable {
                url,
                detail: "connect: no node (memory)".into(),
            }),
        };
        futures::future::ready(answer).boxed()
    }

    fn schedule_version(&self, _path: &Path) -> Option<FileVersion> {
        self.lock().schedule.as_ref().map(|(bytes, version)| FileVersion {
            len: bytes.len() as u64,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(*version),
        })
    }

    fn read_schedule(&self, path: &Path) -> Result<Vec<u8>, ScheduleFileError> {
        let mut c = self.lock();
        c.schedule_reads += 1;
        c.schedule
            .as_ref()
            .map(|(bytes, _)| bytes.clone())
            .ok_or_else(|| ScheduleFileError {
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotFound, "not written"),
            })
    }
}
