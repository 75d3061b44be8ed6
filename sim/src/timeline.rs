//! Node timelines (docs/architecture.md, "Test world") and the judge that computes overlap (S1) and gaps (L1).
//!
//! A timeline is a file of JSON lines, one [`TimelineEvent`] per line, appended and flushed by the
//! node simulator at every event. Several node simulators may append to one file or to one file
//! each; [`read_files`] merges any number of them. [`judge_window`] is a pure function of the
//! events and a [`Window`]; [`judge`] judges live timelines up to the current time.
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
//! - The judge looks at a window `[from, until]`. `until` defaults to the last event; [`judge`]
//!   uses the current time, so a process still forging when the verdict is taken forges until
//!   then, and an overlap still open at the last event is counted up to the judge's end.
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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

/// The part of a timeline the judge looks at (both ends included; see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start, nanoseconds since the Unix epoch (None: the first event; gaps then count from the
    /// first `forging_on`).
    pub from_unix_ns: Option<u64>,
    /// End, nanoseconds since the Unix epoch (None: the last event).
    pub until_unix_ns: Option<u64>,
}

impl Window {
    /// From `from_unix_ns` until now.
    pub fn since(from_unix_ns: u64) -> Self {
        Self {
            from_unix_ns: Some(from_unix_ns),
            until_unix_ns: Some(unix_now_ns()),
        }
    }

    /// The whole timeline, until now.
    pub fn until_now() -> Self {
        Self {
            from_unix_ns: None,
            until_unix_ns: Some(unix_now_ns()),
        }
    }
}

/// The judge's findings over a merged timeline. Serialises to the JSON printed by
/// `forge-manager sim timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Total time during which at least two processes forged at once (S1 wants 0).
    pub overlap_ms: f64,
    /// The most processes forging at one instant, even a zero-length one (S1 wants at most 1).
    pub max_forgers: usize,
    /// Longest interval without any forger (see the module docs for where it starts counting).
    pub max_gap_ms: f64,
    /// Number of `forging_on` plus `forging_off` events in the window.
    pub transitions: u64,
    /// Names of the nodes that forged in the window, sorted.
    pub forgers: Vec<String>,
    /// Per node name, the time during which at least one of its processes forged.
    pub forging_ms: BTreeMap<String, f64>,
    /// Names of the nodes forging at the end of the window, one entry per forging process.
    pub forging_at_end: Vec<String>,
    /// Every process seen, with its own forging time in the window.
    pub processes: Vec<ProcessVerdict>,
    /// The window judged: start (nanoseconds since the Unix epoch).
    pub from_unix_ns: u64,
    /// The window judged: end.
    pub until_unix_ns: u64,
}

impl Verdict {
    /// For a scenario test, over a run whose shutdown is included: panics unless it had no
    /// overlap, never two forgers at one instant, and nobody forging at the end.
    pub fn assert_clean_shutdown(&self) {
        assert_eq!(
            self.overlap_ms, 0.0,
            "two nodes forged at once (shutdown included): {self:?}"
        );
        assert!(
            self.max_forgers <= 1,
            "two forgers at one instant (shutdown included): {self:?}"
        );
        assert!(
            self.forging_at_end.is_empty(),
            "a node forges after the shutdown: {self:?}"
        );
    }
}

/// One process in a [`Verdict`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessVerdict {
    /// Which process.
    #[serde(flatten)]
    pub process: ProcessId,
    /// Its forging time in the window.
    pub forging_ms: f64,
    /// Whether a `start` line of it was seen.
    pub started: bool,
    /// Whether an `exit` line of it was seen (by the end of the window).
    pub exited: bool,
}

/// Why a timeline cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// No `start` event at all: an empty, missing or lost timeline is no evidence of anything.
    #[error(
        "no node ever started in this timeline ({events} events): an empty or lost timeline proves nothing"
    )]
    NoNodeStarted {
        /// How many events there were.
        events: usize,
    },
    /// The window ends before it starts.
    #[error("the judged window ends ({until_unix_ns}) before it starts ({from_unix_ns})")]
    EmptyWindow {
        /// Its start.
        from_unix_ns: u64,
        /// Its end.
        until_unix_ns: u64,
    },
}

/// Errors reading or writing timeline files.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// A file could not be opened, read or written.
    #[error("timeline {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a timeline event.
    #[error("timeline {path}:{line}: not a timeline event: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
}

impl TimelineError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Parse { .. } => "parse",
        }
    }
}

/// Judges a live timeline up to now (the wall clock, or the last event if that is later).
///
/// # Panics
///
/// When the timeline cannot be judged ([`JudgeError`]): in a test, no evidence must fail the
/// test, never read as "0 ms of overlap". Use [`judge_window`] to handle the error.
pub fn judge(events: &[TimelineEvent]) -> Verdict {
    let last = events.iter().map(|e| e.t_unix_ns).max().unwrap_or(0);
    let window = Window {
        from_unix_ns: None,
        until_unix_ns: Some(unix_now_ns().max(last)),
    };
    judge_window(events, window).unwrap_or_else(|e| panic!("the timeline cannot be judged: {e}"))
}

/// Time accumulated over the judged window.
#[derive(Default)]
struct Sweep<'a> {
    overlap_ns: u128,
    per_name: BTreeMap<&'a str, u128>,
    gap_ns: u64,
    max_gap_ns: u64,
}

impl<'a> Sweep<'a> {
    /// The state `forging` held over `[a, b)` (already clipped to the window).
    fn account(
        &mut self,
        forging: &BTreeSet<Key<'a>>,
        procs: &mut BTreeMap<Key<'a>, ProcAcc>,
        gaps_counted: bool,
        a: u64,
        b: u64,
    ) {
        let dt = b - a;
        if dt == 0 {
            return;
        }
        if forging.len() >= 2 {
            self.overlap_ns += u128::from(dt);
        }
        let names: BTreeSet<&'a str> = forging.iter().map(|k| k.0).collect();
        for n in names {
            *self.per_name.entry(n).or_default() += u128::from(dt);
        }
        for k in forging {
            procs.entry(*k).or_default().forging_ns += u128::from(dt);
        }
        if forging.is_empty() {
            if gaps_counted {
                self.gap_ns += dt;
                self.max_gap_ns = self.max_gap_ns.max(self.gap_ns);
            }
        } else {
            self.gap_ns = 0;
        }
    }
}

#[derive(Default)]
struct ProcAcc {
    forging_ns: u128,
    started: bool,
    exited: bool,
}

/// Judges the events in `window` (the events may come in any order; see the module docs).
pub fn judge_window(events: &[TimelineEvent], window: Window) -> Result<Verdict, JudgeError> {
    if !events.iter().any(|e| e.event == EventKind::Start) {
        return Err(JudgeError::NoNodeStarted { events: events.len() });
    }
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| order(e));
    let first_t = sorted.first().map_or(0, |e| e.t_unix_ns);
    let last_t = sorted.last().map_or(0, |e| e.t_unix_ns);
    let from = window.from_unix_ns.unwrap_or(first_t);
    let until = window.until_unix_ns.unwrap_or(last_t);
    if until < from {
        return Err(JudgeError::EmptyWindow {
            from_unix_ns: from,
            until_unix_ns: until,
        });
    }

    let mut forging: BTreeSet<Key> = BTreeSet::new();
    let mut procs: BTreeMap<Key, ProcAcc> = BTreeMap::new();
    let mut forgers: BTreeSet<&str> = BTreeSet::new();
    let mut acc = Sweep::default();
    let mut max_forgers = 0usize;
    let mut transitions = 0u64;
    // Gaps count from `from` with an explicit window, else from the first forging_on.
    let mut gaps_counted = window.from_unix_ns.is_some();
    let mut prev_t = from;
    let mut at_from_seen = false;

    for e in &sorted {
        if e.t_unix_ns > until {
            break;
        }
        if e.t_unix_ns >= from && !at_from_seen {
            // The state at `from`, before the first event inside the window.
            at_from_seen = true;
            max_forgers = max_forgers.max(forging.len());
            forgers.extend(forging.iter().map(|k| k.0));
        }
        if e.t_unix_ns > prev_t {
            acc.account(&forging, &mut procs, gaps_counted, prev_t, e.t_unix_ns);
            prev_t = e.t_unix_ns;
        }
        let key = e.key();
        let pacc = procs.entry(key).or_default();
        let in_window = e.t_unix_ns >= from;
        match e.event {
            EventKind::ForgingOn => {
                forging.insert(key);
                if window.from_unix_ns.is_none() {
                    gaps_counted = true;
                }
                if in_window {
                    transitions += 1;
                    forgers.insert(key.0);
                }
            }
            EventKind::ForgingOff => {
                forging.remove(&key);
                if in_window {
                    transitions += 1;
                }
            }
            EventKind::Exit => {
                pacc.exited = true;
                forging.remove(&key);
            }
            EventKind::Start => {
                pacc.started = true;
                forging.remove(&key);
            }
            EventKind::Sighup
            | EventKind::ReloadError
            | EventKind::NotEffective
            | EventKind::HandlerInstalled
            | EventKind::Sigterm
            | EventKind::SocketClosed
            | EventKind::Stall
            | EventKind::StallEnd => {}
        }
        if in_window {
            max_forgers = max_forgers.max(forging.len());
        }
    }
    if !at_from_seen {
        max_forgers = max_forgers.max(forging.len());
        forgers.extend(forging.iter().map(|k| k.0));
    }
    acc.account(&forging, &mut procs, gaps_counted, prev_t, until);

    let ms = |ns: u128| ns as f64 / 1e6;
    Ok(Verdict {
        overlap_ms: ms(acc.overlap_ns),
        max_forgers,
        max_gap_ms: ms(u128::from(acc.max_gap_ns)),
        transitions,
        forgers: forgers.into_iter().map(str::to_owned).collect(),
        forging_ms: acc
            .per_name
            .into_iter()
            .map(|(n, ns)| (n.to_owned(), ms(ns)))
            .collect(),
        forging_at_end: forging.iter().map(|k| k.0.to_owned()).collect(),
        processes: procs
            .into_iter()
            .map(|((node, pid, proc_start_ns), a)| ProcessVerdict {
                process: ProcessId {
                    node: node.to_owned(),
                    pid,
                    proc_start_ns,
                },
                forging_ms: ms(a.forging_ns),
                started: a.started,
                exited: a.exited,
            })
            .collect(),
        from_unix_ns: from,
        until_unix_ns: until,
    })
}

/// Which node processes forge at the end of `events` (one entry per forging process, so a name
/// forging in two processes appears twice), by the rules of the module docs.
pub fn forging_at_end(events: &[TimelineEvent]) -> Vec<String> {
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| order(e));
    let mut forging: BTreeSet<Key> = BTreeSet::new();
    for e in sorted {
        match e.event {
            EventKind::ForgingOn => {
                forging.insert(e.key());
            }
            EventKind::ForgingOff | EventKind::Exit | EventKind::Start => {
                forging.remove(&e.key());
            }
            _ => {}
        }
    }
    forging.iter().map(|k| k.0.to_owned()).collect()
}

fn label(k: &Key) -> String {
    if k.1 == 0 {
        k.0.to_owned()
    } else {
        format!("{} (pid {})", k.0, k.1)
    }
}

/// The intervals during which two or more processes forged, with the processes involved, up to
/// the last event: for test failure messages (which nodes, when). See [`overlaps_until`].
pub fn overlaps(events: &[TimelineEvent]) -> Vec<Overlap> {
    let last = events.iter().map(|e| e.t_unix_ns).max().unwrap_or(0);
    overlaps_until(events, last)
}

/// The intervals during which two or more processes forged, an interval still open at the end
/// running until `until_unix_ns`. Processes are named `NAME` (older lines) or `NAME (pid N)`.
pub fn overlaps_until(events: &[TimelineEvent], until_unix_ns: u64) -> Vec<Overlap> {
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| order(e));
    let mut forging: BTreeSet<Key> = BTreeSet::new();
    let mut out = Vec::new();
    let mut open: Option<Overlap> = None;
    for e in &sorted {
        if e.t_unix_ns > until_unix_ns {
            break;
        }
        match e.event {
            EventKind::ForgingOn => {
                forging.insert(e.key());
            }
            EventKind::ForgingOff | EventKind::Exit | EventKind::Start => {
                forging.remove(&e.key());
            }
            _ => continue,
        }
        let many = forging.len() >= 2;
        match (&mut open, many) {
            (None, true) => {
                open = Some(Overlap {
                    from_unix_ns: e.t_unix_ns,
                    to_unix_ns: e.t_unix_ns,
                    nodes: forging.iter().map(label).collect(),
                });
            }
            (Some(o), true) => {
                for k in &forging {
                    let n = label(k);
                    if !o.nodes.contains(&n) {
                        o.nodes.push(n);
                    }
                }
            }
            (Some(_), false) => {
                if let Some(mut o) = open.take() {
                    o.to_unix_ns = e.t_unix_ns;
                    out.push(o);
                }
            }
            (None, false) => {}
        }
    }
    if let Some(mut o) = open {
        o.to_unix_ns = until_unix_ns.max(o.from_unix_ns);
        out.push(o);
    }
    out
}

/// One interval during which several nodes forged at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// Start, nanoseconds since the Unix epoch.
    pub from_unix_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub to_unix_ns: u64,
    /// Every node process that forged during the interval.
    pub nodes: Vec<String>,
}

/// Reads one timeline file. Blank lines are skipped; any other line must be an event.
pub fn read_file(path: &Path) -> Result<Vec<TimelineEvent>, TimelineError> {
    parse_file(path, false)
}

/// Reads and merges several timeline files (the order of the result is by file, then by line;
/// the judge sorts by time itself).
pub fn read_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TimelineEvent>, TimelineError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_file(p.as_ref())?);
    }
    Ok(all)
}

/// As [`read_files`], for files that are still being written: a last line without its newline
/// that does not parse is a write still in progress and is left out. Any other bad line fails.
pub fn read_files_live<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TimelineEvent>, TimelineError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(parse_file(p.as_ref(), true)?);
    }
    Ok(all)
}

fn parse_file(path: &Path, live: bool) -> Result<Vec<TimelineEvent>, TimelineError> {
    let io = |source| TimelineError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io)?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let mut events = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if live && !complete && i + 1 == lines.len() => {}
            Err(source) => {
                return Err(TimelineError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(events)
}

/// Appends events to a timeline file, one line per event, written with a single `write` on a file
/// opened with `O_APPEND`, so several processes may share one file without tearing lines.
#[derive(Debug)]
pub struct TimelineWriter {
    path: PathBuf,
    file: File,
}

impl TimelineWriter {
    /// Opens (creating if needed) the file for appending.
    pub fn open(path: &Path) -> Result<Self, TimelineError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| TimelineError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one event and flushes it.
    pub fn append(&mut self, event: &TimelineEvent) -> Result<(), TimelineError> {
        let io = |source| TimelineError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(event).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn ev(t_ms: u64, node: &str, event: EventKind) -> TimelineEvent {
        TimelineEvent {
            t_unix_ns: t_ms * MS,
            node: node.into(),
            event,
            detail: String::new(),
            pid: 0,
            proc_start_ns: 0,
        }
    }

    fn pev(t_ms: u64, node: &str, pid: u32, event: EventKind) -> TimelineEvent {
        TimelineEvent {
            pid,
            proc_start_ns: u64::from(pid) * 7,
            ..ev(t_ms, node, event)
        }
    }

    /// Judges `events` up to their last event, with a `start` of an unrelated node at 0 so the
    /// timeline counts as evidence.
    fn judged(events: &[TimelineEvent]) -> Verdict {
        let mut all = vec![ev(0, "boot", Start)];
        all.extend_from_slice(events);
        judge_window(&all, Window::default()).expect("judged")
    }

    fn until(events: &[TimelineEvent], from_ms: Option<u64>, until_ms: u64) -> Verdict {
        let w = Window {
            from_unix_ns: from_ms.map(|t| t * MS),
            until_unix_ns: Some(until_ms * MS),
        };
        judge_window(events, w).expect("judged")
    }

    use EventKind::*;

    #[test]
    fn an_empty_timeline_is_no_evidence_and_cannot_be_judged() {
        assert_eq!(
            judge_window(&[], Window::default()),
            Err(JudgeError::NoNodeStarted { events: 0 })
        );
        // Events without any start (e.g. the start lines were lost) are refused too.
        let e = judge_window(&[ev(0, "a", ForgingOn), ev(5, "a", Sighup)], Window::default());
        assert_eq!(e, Err(JudgeError::NoNodeStarted { events: 2 }));
    }

    #[test]
    #[should_panic(expected = "no node ever started")]
    fn judging_an_empty_live_timeline_panics() {
        judge(&[]);
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_refused() {
        let e = judge_window(
            &[ev(0, "a", Start)],
            Window {
                from_unix_ns: Some(10),
                until_unix_ns: Some(5),
            },
        );
        assert!(matches!(e, Err(JudgeError::EmptyWindow { .. })), "{e:?}");
    }

    #[test]
    fn a_clean_handover_has_no_overlap_and_measures_the_gap() {
        let events = [
            ev(0, "a", Start),
            ev(10, "a", ForgingOn),
            ev(100, "a", ForgingOff),
            ev(130, "b", ForgingOn),
            ev(200, "b", Exit),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_forgers, 1);
        assert_eq!(v.max_gap_ms, 30.0);
        assert_eq!(v.transitions, 3);
        assert_eq!(v.forgers, vec!["a", "b"]);
        assert_eq!(v.forging_ms["a"], 90.0);
        assert_eq!(v.forging_ms["b"], 70.0);
        assert!(v.forging_at_end.is_empty());
    }

    #[test]
    fn a_deliberate_overlap_is_measured() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(50, "b", ForgingOn),
            ev(80, "a", ForgingOff),
            ev(100, "b", ForgingOff),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 30.0);
        assert_eq!(v.max_forgers, 2);
        // Gap from b's forging_off (100) to the last event (100) is 0.
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(overlaps(&events).len(), 1);
        assert_eq!(overlaps(&events)[0].nodes, vec!["a", "b"]);
        assert_eq!(overlaps(&events)[0].from_unix_ns, 50 * MS);
        assert_eq!(overlaps(&events)[0].to_unix_ns, 80 * MS);
    }

    #[test]
    fn three_forgers_at_once_count_the_overlap_once() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "b", ForgingOn),
            ev(20, "c", ForgingOn),
            ev(30, "a", ForgingOff),
            ev(40, "b", ForgingOff),
            ev(50, "c", ForgingOff),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 30.0);
        assert_eq!(v.max_forgers, 3);
    }

    #[test]
    fn a_sub_millisecond_overlap_is_still_greater_than_zero() {
        let at = |t, node: &str, event| TimelineEvent {
            t_unix_ns: t,
            ..ev(0, node, event)
        };
        let events = [
            at(0, "a", Start),
            at(1_000, "a", ForgingOn),
            at(2_000, "b", ForgingOn),
            at(2_500, "a", ForgingOff),
        ];
        let v = judge_window(&events, Window::default()).expect("judged");
        assert!(v.overlap_ms > 0.0 && v.overlap_ms < 0.001, "{v:?}");
    }

    #[test]
    fn unordered_input_gives_the_same_verdict_as_ordered_input() {
        let ordered = [
            ev(0, "a", Start),
            ev(0, "a", ForgingOn),
            ev(50, "b", ForgingOn),
            ev(80, "a", ForgingOff),
            ev(120, "b", ForgingOff),
            ev(300, "a", ForgingOn),
            ev(310, "a", Exit),
        ];
        let mut shuffled = ordered.to_vec();
        shuffled.reverse();
        shuffled.swap(0, 3);
        let w = Window::default();
        assert_eq!(judge_window(&shuffled, w), judge_window(&ordered, w));
        let v = judge_window(&ordered, w).expect("judged");
        assert_eq!(v.overlap_ms, 30.0);
        assert_eq!(v.max_gap_ms, 180.0);
        assert_eq!(v.transitions, 5);
    }

    #[test]
    fn exit_without_forging_off_ends_forging() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "a", Exit),
            ev(20, "b", ForgingOn),
            ev(30, "b", ForgingOff),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_gap_ms, 10.0);
        assert_eq!(v.transitions, 3);
    }

    #[test]
    fn an_old_line_restart_without_exit_ends_the_killed_process_forging() {
        // Lines without a pid: the name is the process, and its new start ends its forging.
        let events = [
            ev(0, "a", ForgingOn),
            ev(40, "a", Start),
            ev(50, "b", ForgingOn),
            ev(60, "b", Exit),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_gap_ms, 10.0);
    }

    #[test]
    fn a_new_process_of_the_same_name_does_not_end_its_predecessors_forging() {
        // a (pid 1) was SIGKILLed while forging and nobody wrote its exit; a (pid 2) started:
        // as far as the evidence goes, pid 1 still forges.
        let events = [
            pev(0, "a", 1, Start),
            pev(5, "a", 1, ForgingOn),
            pev(40, "a", 2, Start),
            ev(50, "b", Start),
            ev(50, "b", ForgingOn),
        ];
        let v = until(&events, None, 60);
        assert_eq!(v.overlap_ms, 10.0, "{v:?}");
        assert_eq!(v.forging_at_end, vec!["a", "b"]);
        assert_eq!(v.processes.len(), 3);
    }

    #[test]
    fn two_processes_of_one_name_forging_at_once_are_an_overlap() {
        let events = [
            pev(0, "a", 1, Start),
            pev(0, "a", 1, ForgingOn),
            pev(50, "a", 2, Start),
            pev(60, "a", 2, ForgingOn),
            pev(100, "a", 1, ForgingOff),
            pev(120, "a", 2, Exit),
        ];
        let v = judge_window(&events, Window::default()).expect("judged");
        assert_eq!(v.overlap_ms, 40.0);
        assert_eq!(v.max_forgers, 2);
        assert_eq!(v.forgers, vec!["a"]);
        // The name forged from 0 to 120 (the union of its processes).
        assert_eq!(v.forging_ms["a"], 120.0);
        let own: Vec<f64> = v.processes.iter().map(|p| p.forging_ms).collect();
        assert_eq!(own, vec![100.0, 60.0]);
        let o = overlaps(&events);
        assert_eq!(o[0].nodes, vec!["a (pid 1)", "a (pid 2)"]);
        assert!(forging_at_end(&events).is_empty());
    }

    #[test]
    fn an_overlap_still_open_at_the_last_event_counts_until_the_end_of_the_window() {
        let events = [ev(0, "a", Start), ev(0, "a", ForgingOn), ev(100, "b", ForgingOn)];
        // Up to the last event the overlap has no length yet, but two forge at once.
        let v = judge_window(&events, Window::default()).expect("judged");
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_forgers, 2);
        assert_eq!(v.forging_at_end, vec!["a", "b"]);
        // Up to the judge's end, it counts.
        let v = until(&events, None, 250);
        assert_eq!(v.overlap_ms, 150.0);
        assert_eq!(overlaps_until(&events, 250 * MS)[0].to_unix_ns, 250 * MS);
    }

    #[test]
    fn a_live_verdict_counts_an_open_overlap_until_now() {
        let now = unix_now_ns();
        let at = |t, node: &str, event| TimelineEvent {
            t_unix_ns: t,
            ..ev(0, node, event)
        };
        let events = [
            at(now - 50 * MS, "a", Start),
            at(now - 50 * MS, "a", ForgingOn),
            at(now - 20 * MS, "b", ForgingOn),
        ];
        let v = judge(&events);
        assert!(v.overlap_ms >= 20.0, "{v:?}");
    }

    #[test]
    fn a_node_still_forging_at_the_end_forges_until_the_last_event() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(100, "b", ForgingOn),
            ev(250, "c", Sighup),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 150.0);
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(overlaps(&events)[0].to_unix_ns, 250 * MS);
    }

    #[test]
    fn the_gap_runs_to_the_last_event_when_nobody_forges_at_the_end() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "a", ForgingOff),
            ev(500, "b", Sighup),
        ];
        assert_eq!(judged(&events).max_gap_ms, 490.0);
    }

    #[test]
    fn events_before_the_first_forging_on_do_not_count_as_a_gap() {
        let events = [
            ev(0, "a", Start),
            ev(1000, "b", Start),
            ev(2000, "a", ForgingOn),
            ev(2010, "a", Exit),
        ];
        let v = judged(&events);
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(v.forgers, vec!["a"]);
    }

    #[test]
    fn a_window_counts_its_gaps_from_its_start_and_its_forging_inside_it() {
        let events = [
            ev(0, "a", Start),
            ev(0, "a", ForgingOn),
            ev(100, "a", ForgingOff),
            ev(400, "b", ForgingOn),
            ev(450, "b", ForgingOff),
            ev(460, "a", ForgingOn),
        ];
        // [50, 500]: a forges 50..100, nobody 100..400 (300), b 400..450, gap 10, a 460..500.
        let v = until(&events, Some(50), 500);
        assert_eq!(v.max_gap_ms, 300.0);
        assert_eq!(v.forging_ms["a"], 90.0);
        assert_eq!(v.forging_ms["b"], 50.0);
        assert_eq!(v.transitions, 4);
        assert_eq!(v.forgers, vec!["a", "b"]);
        // [150, 420]: the window begins with nobody forging, so it begins with a gap.
        let v = until(&events, Some(150), 420);
        assert_eq!(v.max_gap_ms, 250.0);
        assert_eq!(v.forgers, vec!["b"]);
        assert_eq!(v.forging_at_end, vec!["b"]);
        // [0, 40]: a forges across the window's start and end.
        let v = until(&events, Some(10), 40);
        assert_eq!(v.forgers, vec!["a"]);
        assert_eq!(v.forging_ms["a"], 30.0);
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(v.transitions, 0);
        // A window with nobody forging at all is one gap.
        let v = until(&events, Some(200), 300);
        assert_eq!(v.max_gap_ms, 100.0);
        assert!(v.forgers.is_empty());
    }

    #[test]
    fn a_zero_length_forger_does_not_end_a_gap() {
        let events = [
            ev(0, "a", Start),
            ev(0, "a", ForgingOn),
            ev(10, "a", ForgingOff),
            ev(60, "b", ForgingOn),
            ev(60, "b", ForgingOff),
            ev(110, "c", ForgingOn),
        ];
        let v = judge_window(&events, Window::default()).expect("judged");
        assert_eq!(v.max_gap_ms, 100.0);
    }

    #[test]
    fn the_longest_of_several_gaps_is_reported() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "a", ForgingOff),
            ev(30, "b", ForgingOn),
            ev(40, "b", ForgingOff),
            ev(100, "a", ForgingOn),
            ev(110, "a", ForgingOff),
            ev(115, "b", ForgingOn),
        ];
        assert_eq!(judged(&events).max_gap_ms, 60.0);
    }

    #[test]
    fn a_repeated_forging_on_changes_nothing_but_counts_as_a_transition() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "a", ForgingOn),
            ev(20, "a", ForgingOff),
        ];
        let v = judged(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.transitions, 3);
    }

    #[test]
    fn a_timeline_without_forging_has_no_forgers() {
        let events = [
            ev(0, "a", Start),
            ev(10, "a", Sighup),
            ev(11, "a", NotEffective),
            ev(20, "a", Exit),
        ];
        let v = judged(&events);
        assert!(v.forgers.is_empty());
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(v.transitions, 0);
        assert_eq!(v.max_forgers, 0);
    }

    #[test]
    fn the_verdict_serialises_to_the_documented_json_keys() {
        let v = judge_window(
            &[
                pev(0, "a", 3, Start),
                pev(0, "a", 3, ForgingOn),
                pev(5, "a", 3, ForgingOff),
            ],
            Window::default(),
        )
        .expect("judged");
        let json = serde_json::to_value(&v).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "overlap_ms": 0.0, "max_forgers": 1, "max_gap_ms": 0.0, "transitions": 2,
                "forgers": ["a"], "forging_ms": {"a": 5.0}, "forging_at_end": [],
                "processes": [{"node": "a", "pid": 3, "proc_start_ns": 21, "forging_ms": 5.0,
                               "started": true, "exited": false}],
                "from_unix_ns": 0, "until_unix_ns": 5 * MS
            })
        );
    }

    #[test]
    fn files_written_by_two_writers_are_read_back_and_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pa, pb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let mut wa = TimelineWriter::open(&pa).expect("open a");
        let mut wb = TimelineWriter::open(&pb).expect("open b");
        wa.append(&pev(0, "a", 9, Start)).expect("write");
        wa.append(&pev(0, "a", 9, ForgingOn)).expect("write");
        wb.append(&ev(5, "b", ForgingOn)).expect("write");
        wa.append(&pev(7, "a", 9, ForgingOff)).expect("write");
        let events = read_files(&[&pa, &pb]).expect("read");
        assert_eq!(events.len(), 4);
        assert_eq!(
            judge_window(&events, Window::default())
                .expect("judged")
                .overlap_ms,
            2.0
        );
        let line = std::fs::read_to_string(&pa).expect("read a");
        assert!(
            line.starts_with(
                r#"{"t_unix_ns":0,"node":"a","event":"start","detail":"","pid":9,"proc_start_ns":63}"#
            ),
            "{line}"
        );
    }

    #[test]
    fn a_line_without_pid_fields_still_parses() {
        let e: TimelineEvent =
            serde_json::from_str(r#"{"t_unix_ns":1,"node":"a","event":"forging_on","detail":""}"#)
                .expect("parses");
        assert_eq!((e.pid, e.proc_start_ns), (0, 0));
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_file_and_line_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"t_unix_ns\":1,\"node\":\"a\",\"event\":\"start\",\"detail\":\"\"}\n\nnot json\n",
        )
        .expect("write");
        let err = read_file(&p).expect_err("must fail");
        assert!(err.to_string().contains("t.jsonl:3"), "{err}");
        assert_eq!(err.kind(), "parse");
        // Live reading forgives only an unfinished last line, not a bad complete one.
        assert!(read_files_live(&[&p]).is_err());
    }

    #[test]
    fn a_last_line_still_being_written_is_left_out_of_a_live_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"t_unix_ns\":1,\"node\":\"a\",\"event\":\"start\",\"detail\":\"\"}\n{\"t_unix_ns\":2,\"no",
        )
        .expect("write");
        assert_eq!(read_files_live(&[&p]).expect("live read").len(), 1);
        let err = read_file(&p).expect_err("a finished file must be whole");
        assert!(err.to_string().contains("t.jsonl:2"), "{err}");
    }

    #[test]
    fn an_unknown_event_kind_is_rejected() {
        let r: Result<TimelineEvent, _> =
            serde_json::from_str(r#"{"t_unix_ns":1,"node":"a","event":"forging_maybe","detail":""}"#);
        assert!(r.is_err());
    }
}
