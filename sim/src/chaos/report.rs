//! What the soak found: each fault as it happened ([`Step`]), the [`ChaosReport`] and its
//! summary, and the judge that fills them in from the timelines.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BOOT_WAIT, FaultPlan, PODS, Timings};
use crate::timeline::{TimelineEvent, Window, judge_window, overlaps_until};
use crate::world::{LeaseRecord, forging_without_lease};

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Its number, from 1.
    pub n: usize,
    /// What was drawn.
    pub plan: FaultPlan,
    /// The pod it hit (`region/name`), or `all` / a link.
    pub hit: String,
    /// Whether it was injected (else `hit` says why not).
    pub injected: bool,
    /// Whether that pod forged when the fault landed.
    pub hit_forger: bool,
    /// When it was injected (Unix ns).
    pub t_unix_ns: u64,
    /// The gap bound for it.
    pub bound_ms: f64,
    /// The longest interval without a forger from the fault until the next one.
    pub max_gap_ms: f64,
    /// Overlap in that interval.
    pub overlap_ms: f64,
    /// Time from the injection until exactly one node forged again (None: not within the bound).
    pub recovered_ms: Option<f64>,
    /// Node restarts after it that found no boot credentials within [`BOOT_WAIT`] (each adds
    /// [`BOOT_WAIT`] to the bound).
    pub late_boots: u64,
}

/// What the soak found.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// Regions.
    pub regions: usize,
    /// How long faults were injected, in seconds.
    pub seconds: f64,
    /// Faults injected per kind.
    pub faults: BTreeMap<String, u64>,
    /// Total overlap over the whole run, shutdown included (S1 wants 0).
    pub overlap_ms: f64,
    /// The most nodes forging at one instant.
    pub max_forgers: usize,
    /// The longest interval without a forger after any fault.
    pub longest_gap_ms: f64,
    /// The fault it followed (its number and kind).
    pub longest_gap_after: Option<String>,
    /// Its bound.
    pub longest_gap_bound_ms: f64,
    /// `forging_on` lines of nodes whose pod held no Lease at that instant.
    pub forging_without_lease: usize,
    /// Every node that forged at some point.
    pub forgers: Vec<String>,
    /// The timing figures the bounds were derived from.
    pub timings: Timings,
    /// Each fault.
    pub steps: Vec<Step>,
    /// What broke the contract; empty on a pass.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// The report of a run before [`judge`] has read its timelines: the faults as they happened
    /// and the violations found while injecting them, every verdict figure still zero.
    pub(super) fn unjudged(
        seed: u64,
        regions: usize,
        seconds: f64,
        timings: Timings,
        steps: Vec<Step>,
        violations: Vec<String>,
    ) -> Self {
        Self {
            seed,
            regions,
            seconds,
            faults: BTreeMap::new(),
            overlap_ms: 0.0,
            max_forgers: 0,
            longest_gap_ms: 0.0,
            longest_gap_after: None,
            longest_gap_bound_ms: 0.0,
            forging_without_lease: 0,
            forgers: Vec::new(),
            timings,
            steps,
            violations,
        }
    }

    /// Whether the run kept the contract.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The human summary (one line each: seed, faults per kind, overlap, longest gap, verdict).
    pub fn summary(&self) -> String {
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let total: u64 = self.faults.values().sum();
        let mut s = String::new();
        s.push_str(&format!(
            "chaos: seed {}, {} region(s) of {PODS} pods, {:.0} s of faults\n",
            self.seed, self.regions, self.seconds
        ));
        s.push_str(&format!(
            "chaos: faults injected ({total}): {}\n",
            faults.join(", ")
        ));
        s.push_str(&format!(
            "chaos: overlap {:.3} ms (most forgers at once: {}); forging without a lease: {}\n",
            self.overlap_ms, self.max_forgers, self.forging_without_lease
        ));
        let late: u64 = self.steps.iter().map(|s| s.late_boots).sum();
        if late > 0 {
            s.push_str(&format!(
                "chaos: node restarts that found no boot credentials within {} s: {late}\n",
                BOOT_WAIT.as_secs()
            ));
        }
        s.push_str(&format!(
            "chaos: longest gap {:.0} ms{} (its bound {:.0} ms); forgers: {}\n",
            self.longest_gap_ms,
            self.longest_gap_after
                .as_ref()
                .map(|a| format!(" after {a}"))
                .unwrap_or_default(),
            self.longest_gap_bound_ms,
            self.forgers.join(", ")
        ));
        for v in &self.violations {
            s.push_str(&format!("chaos: VIOLATION {v}\n"));
        }
        s.push_str(&format!(
            "chaos: verdict {}",
            if self.passed() { "PASS" } else { "FAIL" }
        ));
        s
    }
}

/// The judge's part: overlap over the whole run, the gap after each fault, forging without a
/// lease. Fills `report`.
pub(super) fn judge(
    report: &mut ChaosReport,
    events: &[TimelineEvent],
    leases: &[LeaseRecord],
    end_of_faults: u64,
    leases_until: u64,
) {
    let whole = match judge_window(events, Window::default()) {
        Ok(v) => v,
        Err(e) => {
            report.violations.push(format!("no verdict: {e}"));
            return;
        }
    };
    report.overlap_ms = whole.overlap_ms;
    report.max_forgers = whole.max_forgers;
    report.forgers = whole.forgers.clone();
    if whole.overlap_ms > 0.0 || whole.max_forgers > 1 {
        report.violations.push(format!(
            "S1: {:.3} ms of overlap, {} forgers at once",
            whole.overlap_ms, whole.max_forgers
        ));
        for o in overlaps_until(events, whole.until_unix_ns) {
            let during = match o.from_unix_ns > end_of_faults {
                true => ", in the shutdown",
                false => "",
            };
            let after = after_fault(&report.steps, o.from_unix_ns)
                .map(|a| format!("{a}{during}"))
                .unwrap_or_else(|| "before the first fault".to_owned());
            report.violations.push(format!(
                "S1: {:.3} ms of {} forging at once, {after}",
                (o.to_unix_ns - o.from_unix_ns) as f64 / 1e6,
                o.nodes.join(" and ")
            ));
        }
    }
    if whole.forgers.is_empty() {
        report.violations.push("L1: nobody ever forged".to_owned());
    }
    let mut without = forging_without_lease(events, leases);
    without.retain(|e| e.t_unix_ns <= leases_until);
    report.forging_without_lease = without.len();
    for e in without.iter().take(5) {
        let after =
            after_fault(&report.steps, e.t_unix_ns).unwrap_or_else(|| "before the first fault".to_owned());
        report.violations.push(format!(
            "S1: {} (pid {}) began forging while its pod held no Lease, {after}",
            e.node, e.pid
        ));
    }
    let ends: Vec<u64> = report
        .steps
        .iter()
        .skip(1)
        .map(|s| s.t_unix_ns)
        .chain(std::iter::once(end_of_faults))
        .collect();
    for (s, until) in report.steps.iter_mut().zip(ends) {
        let window = Window {
            from_unix_ns: Some(s.t_unix_ns),
            until_unix_ns: Some(until.max(s.t_unix_ns)),
        };
        match judge_window(events, window) {
            Ok(v) => {
                s.max_gap_ms = v.max_gap_ms;
                s.overlap_ms = v.overlap_ms;
            }
            Err(e) => {
                report
                    .violations
                    .push(format!("#{} {}: no verdict: {e}", s.n, s.plan.kind.name()));
                continue;
            }
        }
        if s.max_gap_ms > s.bound_ms {
            report.violations.push(format!(
                "L1: #{} {} on {}: {:.0} ms without a forger, bound {:.0} ms",
                s.n,
                s.plan.kind.name(),
                s.hit,
                s.max_gap_ms,
                s.bound_ms
            ));
        }
        if s.max_gap_ms >= report.longest_gap_ms {
            report.longest_gap_ms = s.max_gap_ms;
            report.longest_gap_after = Some(format!("#{} {} on {}", s.n, s.plan.kind.name(), s.hit));
            report.longest_gap_bound_ms = s.bound_ms;
        }
    }
}

/// "N ms after #n kind on pod": how long after the last fault injected at or before
/// `t_unix_ns` something happened (None: before the first fault).
fn after_fault(steps: &[Step], t_unix_ns: u64) -> Option<String> {
    steps.iter().rev().find(|s| s.t_unix_ns <= t_unix_ns).map(|s| {
        format!(
            "{:.0} ms after #{} {} on {}",
            (t_unix_ns - s.t_unix_ns) as f64 / 1e6,
            s.n,
            s.plan.kind.name(),
            s.hit
        )
    })
}
