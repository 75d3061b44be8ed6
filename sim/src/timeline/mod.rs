//! Node timelines (docs/architecture.md, "Test world") and the judge that computes overlap (S1) and gaps (L1).
//!
//! A timeline is a file of JSON lines, one [`TimelineEvent`] per line, appended and flushed by the
//! node simulator at every event. Several node simulators may append to one file or to one file
//! each; [`read_files`] merges any number of them. [`judge_window`] is a pure function of the
//! events and a [`Window`]; [`judge`](fn@judge) judges live timelines up to the current time.
//!
//! # The rules the judge applies
//!
//! - A *process* is a node name together with the `pid` and `proc_start_ns` written on each of its
//!   events: two processes with one name (a restart, or a duplicate pod) are told apart. Lines
//!   written without them (older files) have both 0, and then the name alone is the process.
//! - Events are ordered by `t_unix_ns` (a stable sort: among events with an equal time, `start`
//!   events come first, the others keep the order in which they were read); the input may be in
//!   any order.
//! - A process *forges* from a `forging_on` event until its next `forging_off` or `exit`, or a
//!   `start` of the *same* process (only possible for old lines without a pid). A `start` of
//!   another process never ends a predecessor's forging: a process that died without an `exit`
//!   line (SIGKILL) forges, as far as the judge knows, until the end of the window, unless
//!   whoever killed it wrote its `exit` (the scenario world does, once it has reaped it).
//!   A `forging_on` while already forging, or a `forging_off` while not forging, changes nothing.
//! - The judge looks at a window `[from, until]`. `until` defaults to the last event;
//!   [`judge`](fn@judge) uses the current time, so a process still forging when the verdict is
//!   taken forges until then, and an overlap still open at the last event is counted up to the
//!   judge's end.
//!   Events before `from` only set the state at `from`; events after `until` are ignored.
//! - `overlap_ms` is the total time during which two or more processes forge at once (S1 wants 0).
//!   `max_forgers` is the largest number forging at any instant, even a zero-length one (S1 wants
//!   at most 1): an overlap that opens at the very end of the window still shows there.
//! - `max_gap_ms` is the longest interval with no forger. Without a `from`, it is counted from the
//!   first `forging_on` (so a cold start is not a gap); with a `from`, from `from` itself, so a
//!   window that begins with nobody forging begins with a gap (L1 bounds it). A forger that forged
//!   for zero time does not end a gap.
//! - `transitions` counts the `forging_on` and `forging_off` events in the window, as written.
//! - `forgers` lists, sorted, the names of the nodes that forged at some instant of the window;
//!   `forging_ms` gives, per name, the time during which at least one of its processes forged;
//!   `forging_at_end` the names forging at `until` (one entry per process).
//! - A timeline in which no node ever started (no `start` event at all: an empty or lost file)
//!   is no evidence: [`judge_window`] refuses it ([`JudgeError::NoNodeStarted`]).
//!
//! Times are reported in milliseconds as floating point numbers, so an overlap shorter than a
//! millisecond is still visible (greater than 0).
//!
//! No I/O except in [`read_file`], [`read_files`] and [`read_files_live`].

mod file;
mod judge;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use file::{TimelineError, TimelineWriter, read_file, read_files, read_files_live};
pub use judge::{
    JudgeError, Overlap, ProcessVerdict, Verdict, Window, forging_at_end, judge, judge_window, overlaps,
    overlaps_until,
};

/// What happened to a node, as written in a timeline line's `event` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The node process started (not forging yet).
    Start,
    /// The node process exits (written last, after a `forging_off` if it was forging).
    Exit,
    /// Block forging became enabled (written no later than the effect).
    ForgingOn,
    /// Block forging became disabled (written no earlier than the effect).
    ForgingOff,
    /// The node received SIGHUP (the outcome follows as its own event, possibly much later).
    Sighup,
    /// A SIGHUP found invalid credential files; the previous forging state was kept.
    ReloadError,
    /// A SIGHUP arrived during the ledger replay and was lost.
    NotEffective,
    /// The node installed its SIGHUP handler: before this, SIGHUP kills it.
    HandlerInstalled,
    /// The node received SIGTERM/SIGINT: its shutdown begins (it may forge on for a while).
    Sigterm,
    /// The node closed its socket (no more connections; the file is removed).
    SocketClosed,
    /// The node hangs: it stops processing signals and accepting connections (still forging).
    Stall,
    /// The node is responsive again after a stall.
    StallEnd,
}

/// One line of a timeline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Wall-clock time of the event, nanoseconds since the Unix epoch.
    pub t_unix_ns: u64,
    /// The node's name (`--name`).
    pub node: String,
    /// What happened.
    pub event: EventKind,
    /// Free text for humans; never key material.
    pub detail: String,
    /// The writing process's PID (0 in lines of older files).
    #[serde(default)]
    pub pid: u32,
    /// When that node process started (`t_unix_ns` of its `start` line; 0 in older files).
    /// With `pid` it tells apart processes, even several simulated nodes in one test process.
    #[serde(default)]
    pub proc_start_ns: u64,
}

impl TimelineEvent {
    /// An event stamped with the current wall-clock time, without a process identity (pid 0).
    pub fn now(node: &str, event: EventKind, detail: impl Into<String>) -> Self {
        Self {
            t_unix_ns: unix_now_ns(),
            node: node.to_owned(),
            event,
            detail: detail.into(),
            pid: 0,
            proc_start_ns: 0,
        }
    }

    /// An event of process `proc` stamped with the current wall-clock time.
    pub fn now_for(proc: &ProcessId, event: EventKind, detail: impl Into<String>) -> Self {
        Self {
            t_unix_ns: unix_now_ns(),
            node: proc.node.clone(),
            event,
            detail: detail.into(),
            pid: proc.pid,
            proc_start_ns: proc.proc_start_ns,
        }
    }

    /// The process that wrote this event.
    pub fn process(&self) -> ProcessId {
        ProcessId {
            node: self.node.clone(),
            pid: self.pid,
            proc_start_ns: self.proc_start_ns,
        }
    }

    fn key(&self) -> Key<'_> {
        (self.node.as_str(), self.pid, self.proc_start_ns)
    }
}

/// One node process: its name, PID and start time (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    /// The node's name.
    pub node: String,
    /// Its PID (0: unknown, an older line).
    pub pid: u32,
    /// Its start, nanoseconds since the Unix epoch (0: unknown).
    pub proc_start_ns: u64,
}

type Key<'a> = (&'a str, u32, u64);

/// The judge's order: by time, a `start` first among events of one instant (a process starts
/// before anything else happens to it), otherwise as read.
fn order(e: &TimelineEvent) -> (u64, bool) {
    (e.t_unix_ns, e.event != EventKind::Start)
}

/// Nanoseconds since the Unix epoch now (0 if the clock is before 1970, which it is not).
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
