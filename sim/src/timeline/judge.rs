//! The judge: a pure function of the events and a [`Window`] giving the [`Verdict`] (overlap,
//! gaps, forgers) by the rules of the `timeline` module docs, and the overlaps themselves.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{EventKind, Key, ProcessId, TimelineEvent, order, unix_now_ns};

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
    /// For a scenario test, over the run judged: panics, naming `scenario`, unless it had no
    /// overlap (S1), never two forgers at one instant, and someone forged (a run in which
    /// nobody forged proves nothing).
    pub fn assert_no_overlap(&self, scenario: &str) {
        assert_eq!(
            self.overlap_ms, 0.0,
            "{scenario}: two nodes forged at once: {self:?}"
        );
        assert!(
            self.max_forgers <= 1,
            "{scenario}: two forgers at one instant: {self:?}"
        );
        assert!(!self.forgers.is_empty(), "{scenario}: nobody forged: {self:?}");
    }

    /// L1 for a scenario test: panics, naming `scenario`, when the longest interval without a
    /// forger is longer than `bound`.
    pub fn assert_gap_within(&self, scenario: &str, bound: Duration) {
        assert!(
            self.max_gap_ms <= bound.as_secs_f64() * 1e3,
            "{scenario}: nobody forged for {:.0} ms, bound {} ms: {self:?}",
            self.max_gap_ms,
            bound.as_millis()
        );
    }

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
