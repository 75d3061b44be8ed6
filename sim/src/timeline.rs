//! Node timelines (DESIGN.md section 13) and the judge that computes overlap (S1) and gaps (L1).
//!
//! A timeline is a file of JSON lines, one [`TimelineEvent`] per line, appended and flushed by the
//! node simulator at every event. Several node simulators may append to one file or to one file
//! each; [`read_files`] merges any number of them. [`judge`] is a pure function of the events.
//!
//! # The rules the judge applies
//!
//! - Events are ordered by `t_unix_ns` (a stable sort, so events with an equal time keep the order
//!   in which they were read); the input may be in any order.
//! - A node *forges* from a `forging_on` event until its next `forging_off`, `exit` or `start`
//!   event (a `start` means a new process, which begins not forging, so its predecessor must have
//!   stopped, for example through SIGKILL, which writes no `exit`). A node that is still forging at
//!   the last event of the timeline forges until that last event. A `forging_on` while already
//!   forging, or a `forging_off` while not forging, changes nothing.
//! - `overlap_ms` is the total time during which two or more nodes forge at once (S1 wants 0).
//! - `max_gap_ms` is the longest interval with no forger at all, counted from the first
//!   `forging_on` to the last event of the timeline (L1 bounds it). A timeline without any
//!   `forging_on` has `max_gap_ms` 0 and an empty `forgers` list: check `forgers` for that case.
//! - `transitions` counts the `forging_on` and `forging_off` events, as written.
//! - `forgers` lists, sorted, the names of the nodes that ever forged.
//!
//! Times are reported in milliseconds as floating point numbers, so an overlap shorter than a
//! millisecond is still visible (greater than 0).
//!
//! No I/O except in [`read_file`] and [`read_files`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
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
    /// Block forging became enabled.
    ForgingOn,
    /// Block forging became disabled.
    ForgingOff,
    /// The node received SIGHUP (the outcome follows as its own event).
    Sighup,
    /// A SIGHUP found invalid credential files; the previous forging state was kept.
    ReloadError,
    /// A SIGHUP arrived during the ledger replay and was lost.
    NotEffective,
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
}

impl TimelineEvent {
    /// An event stamped with the current wall-clock time.
    pub fn now(node: &str, event: EventKind, detail: impl Into<String>) -> Self {
        Self {
            t_unix_ns: unix_now_ns(),
            node: node.to_owned(),
            event,
            detail: detail.into(),
        }
    }
}

/// Nanoseconds since the Unix epoch now (0 if the clock is before 1970, which it is not).
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The judge's findings over a merged timeline. Serialises to the JSON printed by
/// `forge-manager sim timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Total time during which at least two nodes forged at once (S1 wants 0).
    pub overlap_ms: f64,
    /// Longest interval without any forger, between the first `forging_on` and the last event.
    pub max_gap_ms: f64,
    /// Number of `forging_on` plus `forging_off` events.
    pub transitions: u64,
    /// Names of the nodes that ever forged, sorted.
    pub forgers: Vec<String>,
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

/// Judges a timeline; the events may come in any order (see the module docs for the rules).
pub fn judge(events: &[TimelineEvent]) -> Verdict {
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.t_unix_ns);

    let transitions = sorted
        .iter()
        .filter(|e| matches!(e.event, EventKind::ForgingOn | EventKind::ForgingOff))
        .count() as u64;
    let Some(last_t) = sorted.last().map(|e| e.t_unix_ns) else {
        return Verdict {
            overlap_ms: 0.0,
            max_gap_ms: 0.0,
            transitions,
            forgers: Vec::new(),
        };
    };

    let mut forging: BTreeSet<&str> = BTreeSet::new();
    let mut forgers: BTreeSet<&str> = BTreeSet::new();
    let mut overlap_ns: u128 = 0;
    let mut max_gap_ns: u64 = 0;
    // Start of the current no-forger interval, once the first forging_on has been seen.
    let mut gap_start: Option<u64> = None;
    let mut seen_first_on = false;
    let mut prev_t = sorted[0].t_unix_ns;

    for e in &sorted {
        // The state between prev_t and e.t holds; account for it before applying e.
        if forging.len() >= 2 {
            overlap_ns += u128::from(e.t_unix_ns - prev_t);
        }
        prev_t = e.t_unix_ns;
        let was_empty = forging.is_empty();
        match e.event {
            EventKind::ForgingOn => {
                forging.insert(e.node.as_str());
                forgers.insert(e.node.as_str());
                seen_first_on = true;
            }
            EventKind::ForgingOff | EventKind::Exit | EventKind::Start => {
                forging.remove(e.node.as_str());
            }
            EventKind::Sighup | EventKind::ReloadError | EventKind::NotEffective => {}
        }
        if !seen_first_on {
            continue;
        }
        match (was_empty, forging.is_empty()) {
            (true, false) => {
                if let Some(start) = gap_start.take() {
                    max_gap_ns = max_gap_ns.max(e.t_unix_ns - start);
                }
            }
            (false, true) => gap_start = Some(e.t_unix_ns),
            _ => {}
        }
    }
    if let Some(start) = gap_start {
        max_gap_ns = max_gap_ns.max(last_t - start);
    }

    Verdict {
        overlap_ms: overlap_ns as f64 / 1e6,
        max_gap_ms: max_gap_ns as f64 / 1e6,
        transitions,
        forgers: forgers.into_iter().map(str::to_owned).collect(),
    }
}

/// The intervals during which two or more nodes forged, with the nodes involved: for test
/// failure messages (which nodes, when).
pub fn overlaps(events: &[TimelineEvent]) -> Vec<Overlap> {
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.t_unix_ns);
    let mut forging: BTreeMap<&str, u64> = BTreeMap::new();
    let mut out = Vec::new();
    let mut open: Option<Overlap> = None;
    for e in &sorted {
        match e.event {
            EventKind::ForgingOn => {
                forging.entry(e.node.as_str()).or_insert(e.t_unix_ns);
            }
            EventKind::ForgingOff | EventKind::Exit | EventKind::Start => {
                forging.remove(e.node.as_str());
            }
            _ => continue,
        }
        let many = forging.len() >= 2;
        match (&mut open, many) {
            (None, true) => {
                open = Some(Overlap {
                    from_unix_ns: e.t_unix_ns,
                    to_unix_ns: e.t_unix_ns,
                    nodes: forging.keys().map(|n| (*n).to_owned()).collect(),
                });
            }
            (Some(o), true) => {
                for n in forging.keys() {
                    if !o.nodes.iter().any(|m| m == n) {
                        o.nodes.push((*n).to_owned());
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
    if let (Some(mut o), Some(last)) = (open, sorted.last()) {
        o.to_unix_ns = last.t_unix_ns;
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
    /// Every node that forged during the interval.
    pub nodes: Vec<String>,
}

/// Reads one timeline file. Blank lines are skipped; any other line must be an event.
pub fn read_file(path: &Path) -> Result<Vec<TimelineEvent>, TimelineError> {
    let io = |source| TimelineError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut events = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|source| TimelineError::Parse {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Reads and merges several timeline files (the order of the result is by file, then by line;
/// [`judge`] sorts by time itself).
pub fn read_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TimelineEvent>, TimelineError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_file(p.as_ref())?);
    }
    Ok(all)
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
        }
    }

    use EventKind::*;

    #[test]
    fn an_empty_timeline_has_no_overlap_no_gap_and_no_forgers() {
        let v = judge(&[]);
        assert_eq!(
            v,
            Verdict {
                overlap_ms: 0.0,
                max_gap_ms: 0.0,
                transitions: 0,
                forgers: vec![]
            }
        );
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
        let v = judge(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_gap_ms, 30.0);
        assert_eq!(v.transitions, 3);
        assert_eq!(v.forgers, vec!["a", "b"]);
    }

    #[test]
    fn a_deliberate_overlap_is_measured() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(50, "b", ForgingOn),
            ev(80, "a", ForgingOff),
            ev(100, "b", ForgingOff),
        ];
        let v = judge(&events);
        assert_eq!(v.overlap_ms, 30.0);
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
        assert_eq!(judge(&events).overlap_ms, 30.0);
    }

    #[test]
    fn a_sub_millisecond_overlap_is_still_greater_than_zero() {
        let events = [
            TimelineEvent {
                t_unix_ns: 1_000,
                node: "a".into(),
                event: ForgingOn,
                detail: String::new(),
            },
            TimelineEvent {
                t_unix_ns: 2_000,
                node: "b".into(),
                event: ForgingOn,
                detail: String::new(),
            },
            TimelineEvent {
                t_unix_ns: 2_500,
                node: "a".into(),
                event: ForgingOff,
                detail: String::new(),
            },
        ];
        let v = judge(&events);
        assert!(v.overlap_ms > 0.0 && v.overlap_ms < 0.001, "{v:?}");
    }

    #[test]
    fn unordered_input_gives_the_same_verdict_as_ordered_input() {
        let ordered = [
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
        assert_eq!(judge(&shuffled), judge(&ordered));
        let v = judge(&ordered);
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
        let v = judge(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_gap_ms, 10.0);
        assert_eq!(v.transitions, 3);
    }

    #[test]
    fn a_restart_without_exit_ends_the_killed_process_forging() {
        // a was SIGKILLed while forging (no exit line), then restarted.
        let events = [
            ev(0, "a", ForgingOn),
            ev(40, "a", Start),
            ev(50, "b", ForgingOn),
            ev(60, "b", Exit),
        ];
        let v = judge(&events);
        assert_eq!(v.overlap_ms, 0.0);
        assert_eq!(v.max_gap_ms, 10.0);
    }

    #[test]
    fn a_node_still_forging_at_the_end_forges_until_the_last_event() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(100, "b", ForgingOn),
            ev(250, "c", Sighup),
        ];
        let v = judge(&events);
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
        assert_eq!(judge(&events).max_gap_ms, 490.0);
    }

    #[test]
    fn events_before_the_first_forging_on_do_not_count_as_a_gap() {
        let events = [
            ev(0, "a", Start),
            ev(1000, "b", Start),
            ev(2000, "a", ForgingOn),
            ev(2010, "a", Exit),
        ];
        let v = judge(&events);
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(v.forgers, vec!["a"]);
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
        assert_eq!(judge(&events).max_gap_ms, 60.0);
    }

    #[test]
    fn a_repeated_forging_on_changes_nothing_but_counts_as_a_transition() {
        let events = [
            ev(0, "a", ForgingOn),
            ev(10, "a", ForgingOn),
            ev(20, "a", ForgingOff),
        ];
        let v = judge(&events);
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
        let v = judge(&events);
        assert!(v.forgers.is_empty());
        assert_eq!(v.max_gap_ms, 0.0);
        assert_eq!(v.transitions, 0);
    }

    #[test]
    fn the_verdict_serialises_to_the_documented_json_keys() {
        let v = judge(&[ev(0, "a", ForgingOn), ev(5, "a", ForgingOff)]);
        let json = serde_json::to_value(&v).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"overlap_ms": 0.0, "max_gap_ms": 0.0, "transitions": 2, "forgers": ["a"]})
        );
    }

    #[test]
    fn files_written_by_two_writers_are_read_back_and_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pa, pb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let mut wa = TimelineWriter::open(&pa).expect("open a");
        let mut wb = TimelineWriter::open(&pb).expect("open b");
        wa.append(&ev(0, "a", ForgingOn)).expect("write");
        wb.append(&ev(5, "b", ForgingOn)).expect("write");
        wa.append(&ev(7, "a", ForgingOff)).expect("write");
        let events = read_files(&[&pa, &pb]).expect("read");
        assert_eq!(events.len(), 3);
        assert_eq!(judge(&events).overlap_ms, 2.0);
        let line = std::fs::read_to_string(&pa).expect("read a");
        assert!(
            line.starts_with(r#"{"t_unix_ns":0,"node":"a","event":"forging_on","detail":""}"#),
            "{line}"
        );
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
    }

    #[test]
    fn an_unknown_event_kind_is_rejected() {
        let r: Result<TimelineEvent, _> =
            serde_json::from_str(r#"{"t_unix_ns":1,"node":"a","event":"forging_maybe","detail":""}"#);
        assert!(r.is_err());
    }
}
