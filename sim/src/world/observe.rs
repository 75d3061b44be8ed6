//! Reading a running world: `/status` and `/metrics`, timelines and their verdicts, the Lease
//! history, logs.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::timeline::{
    EventKind, JudgeError, TimelineError, TimelineEvent, Verdict, Window, forging_at_end, judge_window,
    read_files_live,
};

use super::*;

impl World {
    /// Pod `i`'s `/status` document (none when it cannot be read, or before the manager's
    /// first decision).
    pub async fn status(&self, i: usize) -> Option<forge_core::status::SidecarStatus> {
        let (code, body) = http_get(self.pods[i].http, "/status").await.ok()?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
            .flatten()
    }

    /// Pod `i`'s `/metrics` text.
    pub async fn metrics(&self, i: usize) -> Option<String> {
        http_get(self.pods[i].http, "/metrics").await.ok().map(|(_, b)| b)
    }

    /// The API server's own `/metrics` text (as admin).
    pub async fn apiserver_metrics(&self) -> Result<String, WorldError> {
        let client = self.apiserver.client("admin").await?;
        let request = http::Request::get("/metrics").body(Vec::new()).map_err(other)?;
        client.request_text(request).await.map_err(other)
    }

    /// Resident memory of pod `i`'s manager, in KiB.
    pub fn manager_rss_kib(&self, i: usize) -> Option<u64> {
        self.pods[i]
            .manager
            .as_ref()
            .and_then(|m| crate::process::rss_kib(m.id()))
    }

    /// All timeline events so far, merged, or why they cannot be read. A pod whose node was
    /// started must have a timeline.
    pub fn try_events(&self) -> Result<Vec<TimelineEvent>, TimelineError> {
        let files: Vec<&PathBuf> = self
            .pods
            .iter()
            .filter(|p| p.node_starts > 0 || p.timeline.exists())
            .map(|p| &p.timeline)
            .collect();
        read_files_live(&files)
    }

    /// All timeline events so far, merged.
    ///
    /// # Panics
    ///
    /// When a timeline cannot be read: lost evidence must fail the test, not read as "nothing
    /// happened".
    pub fn events(&self) -> Vec<TimelineEvent> {
        self.try_events()
            .unwrap_or_else(|e| panic!("the node timelines cannot be read: {e}"))
    }

    /// The judge's verdict on all timelines, up to now (see [`crate::timeline`]).
    ///
    /// # Panics
    ///
    /// When the timelines cannot be read or no node ever started in them.
    pub fn verdict(&self) -> Verdict {
        self.try_verdict(Window::until_now())
            .unwrap_or_else(|e| panic!("no verdict: {e}"))
    }

    /// The verdict on `[from_unix_ns, now]`: e.g. `max_gap_ms` (L1) and `forging_ms` (who
    /// forged) from a fault on.
    ///
    /// # Panics
    ///
    /// As [`World::verdict`].
    pub fn verdict_since(&self, from_unix_ns: u64) -> Verdict {
        self.try_verdict(Window::since(from_unix_ns))
            .unwrap_or_else(|e| panic!("no verdict: {e}"))
    }

    /// The verdict on `window`, or why there is none.
    pub fn try_verdict(&self, window: Window) -> Result<Verdict, WorldError> {
        let events = self.try_events().map_err(other)?;
        judge_window(&events, window).map_err(|e: JudgeError| other(e))
    }

    /// Every Lease state the world saw so far, in the order seen.
    pub fn lease_history(&self) -> Vec<LeaseRecord> {
        self.leases.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The `forging_on` lines of nodes whose pod did not hold a Lease at that instant (per the
    /// Leases' own `acquireTime`s as the world saw them): a node forging without a lease, even
    /// when no overlap happened to follow. Empty when all is well.
    pub fn forging_without_lease(&self) -> Vec<TimelineEvent> {
        forging_without_lease(&self.events(), &self.lease_history())
    }

    /// Which nodes forge now, per their timelines: one entry per forging process (a name can
    /// appear twice).
    pub fn forging_now(&self) -> Vec<String> {
        forging_at_end(&self.events())
    }

    /// Waits (bounded) until exactly one node forges and, if `not` is given, it is not that one.
    /// Returns the forger and the time waited.
    pub async fn wait_for_single_forger(
        &self,
        within: Duration,
        not: Option<&str>,
    ) -> Option<(String, Duration)> {
        let started = Instant::now();
        while started.elapsed() < within {
            let now = self.forging_now();
            if now.len() == 1 && Some(now[0].as_str()) != not {
                return Some((now[0].clone(), started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Index of a pod by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// How long the world has run.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// A pod's manager log (for failure messages).
    pub fn manager_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.pods[i].dir.join("manager.log")).unwrap_or_default()
    }
}

/// The `forging_on` events whose node was not the holder of any Lease at that instant: each
/// Lease's holder holds it from its `acquireTime` until the next holder's (or a release's). A
/// holder identity `POD_UID`-suffixed (`pod-0_UID`) is its pod's.
pub fn forging_without_lease(events: &[TimelineEvent], leases: &[LeaseRecord]) -> Vec<TimelineEvent> {
    let mut by_lease: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for r in leases {
        by_lease
            .entry(r.lease.as_str())
            .or_default()
            .push((r.acquire_unix_ns, r.holder.as_str()));
    }
    for tenures in by_lease.values_mut() {
        tenures.sort();
        tenures.dedup();
    }
    let held_by = |node: &str, t: u64| {
        by_lease.values().any(|tenures| {
            tenures
                .iter()
                .rev()
                .find(|(from, _)| *from <= t)
                .is_some_and(|(_, h)| forge_core::lease::holder_pod(h) == node)
        })
    };
    events
        .iter()
        .filter(|e| e.event == EventKind::ForgingOn && !held_by(&e.node, e.t_unix_ns))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn on(t_ms: u64, node: &str) -> TimelineEvent {
        TimelineEvent {
            t_unix_ns: t_ms * MS,
            ..TimelineEvent::now(node, EventKind::ForgingOn, "")
        }
    }

    fn held(lease: &str, holder: &str, from_ms: u64) -> LeaseRecord {
        LeaseRecord {
            lease: lease.into(),
            holder: holder.into(),
            acquire_unix_ns: from_ms * MS,
            observed_unix_ns: from_ms * MS + 5 * MS,
        }
    }

    #[test]
    fn forging_is_flagged_only_outside_the_nodes_own_tenure() {
        let leases = [
            held("l", "a", 100),
            held("l", "a", 100), // a renewal seen again
            held("l", "", 300),  // released
            held("l", "b", 350),
        ];
        let events = [
            on(50, "a"),  // before anyone held it
            on(120, "a"), // a's tenure
            on(320, "b"), // vacant
            on(360, "b"), // b's tenure
            on(400, "a"), // b's tenure, not a's
        ];
        let flagged: Vec<(u64, String)> = forging_without_lease(&events, &leases)
            .into_iter()
            .map(|e| (e.t_unix_ns / MS, e.node))
            .collect();
        assert_eq!(
            flagged,
            vec![(50, "a".to_owned()), (320, "b".to_owned()), (400, "a".to_owned())]
        );
    }

    #[test]
    fn a_holder_of_any_lease_may_forge() {
        // Several worlds' (regions') Leases: each holder forges under its own.
        let leases = [held("east", "east-0", 0), held("west", "west-1", 0)];
        let events = [on(10, "east-0"), on(10, "west-1"), on(10, "west-0")];
        let flagged = forging_without_lease(&events, &leases);
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].node, "west-0");
    }
}
