//! The nodes' own timelines (one per data volume), judged: S1 over a window (no overlap, at most
//! one forger), the window's events as a story for the log, and the time each phase took.
use std::path::{Path, PathBuf};
use std::time::Instant;

use forge_sim::timeline::{self, TimelineEvent, Verdict, Window};

/// The node timelines written so far (one file per data volume, every volume under `pv_root`).
pub(crate) fn events(pv_root: &Path) -> Vec<TimelineEvent> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pv_root)
        .expect("volumes dir")
        .filter_map(|e| e.ok().map(|e| e.path().join("db/timeline.jsonl")))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    timeline::read_files_live(&files).expect("timelines parse")
}

fn judge(pv_root: &Path, since_ns: u64) -> Verdict {
    timeline::judge_window(&events(pv_root), Window::since(since_ns)).expect("timelines judged")
}

/// The window's events, one line each, times relative to its start (printed with each phase,
/// so a long gap can be read off: who stopped when, who started when).
pub(crate) fn story(pv_root: &Path, since_ns: u64) -> String {
    let mut ev: Vec<TimelineEvent> = events(pv_root)
        .into_iter()
        .filter(|e| e.t_unix_ns >= since_ns)
        .collect();
    ev.sort_by_key(|e| e.t_unix_ns);
    ev.iter()
        .map(|e| {
            format!(
                "  {:>9.3} s {} {:?} {}",
                (e.t_unix_ns - since_ns) as f64 / 1e9,
                e.node,
                e.event,
                e.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the test's minutes go: each phase's time, printed as it ends.
pub(crate) struct Laps {
    started: Instant,
    last: Instant,
}

impl Laps {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
        }
    }

    pub(crate) fn lap(&mut self, what: &str) {
        let now = Instant::now();
        eprintln!(
            "install: time: {what}: {:.1} s (at {:.1} s)",
            (now - self.last).as_secs_f64(),
            (now - self.started).as_secs_f64()
        );
        self.last = now;
    }
}

/// Asserts S1 over the window and returns the verdict (for the gap).
pub(crate) fn no_overlap(pv_root: &Path, since_ns: u64, what: &str) -> Verdict {
    let v = judge(pv_root, since_ns);
    assert!(
        v.overlap_ms == 0.0 && v.max_forgers <= 1,
        "{what}: two forgers at once: {v:?}; overlaps {:?}",
        timeline::overlaps(&events(pv_root))
    );
    eprintln!(
        "install: {what}: overlap {} ms, max forgers {}, longest gap {:.0} ms, forgers {:?}\n{}",
        v.overlap_ms,
        v.max_forgers,
        v.max_gap_ms,
        v.forgers,
        story(pv_root, since_ns)
    );
    v
}

/// Judges a removal (an uninstall or a delete) that began at `since_ns`, once no pod is left:
/// no node forges at the end and none overlapped in the window. Prints the window's story and
/// returns the verdict.
pub(crate) fn removed_cleanly(pv_root: &Path, since_ns: u64, what: &str) -> Verdict {
    let ev = events(pv_root);
    assert!(
        timeline::forging_at_end(&ev).is_empty(),
        "{what}: a forger after the removal"
    );
    let v = timeline::judge_window(&ev, Window::since(since_ns)).expect("judged");
    assert!(v.overlap_ms == 0.0, "{what}: {v:?}");
    eprintln!(
        "install: {what}: the nodes' timelines\n{}",
        story(pv_root, since_ns)
    );
    v
}
