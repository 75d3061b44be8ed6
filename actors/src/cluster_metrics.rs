//! `cardano_cluster_forge_enabled` and `cardano_cluster_forge_priority` (labelled `cluster`,
//! `region`), exported by the region's local leader only: while this pod holds the local lease
//! they follow the Decider's decision (forging, effective priority), otherwise they are removed
//! from the scrape, so the documented alert `sum(cardano_cluster_forge_enabled) > 1` counts
//! regions, not replicas (the reference exported them from every replica).

use std::sync::Arc;

use prometheus::{IntGaugeVec, Opts, Registry};
use tokio::sync::watch;

use crate::http::Snapshot;

/// The two gauges.
#[derive(Clone)]
pub struct ClusterMetrics {
    forge_enabled: IntGaugeVec,
    forge_priority: IntGaugeVec,
    labels: [String; 2],
}

impl ClusterMetrics {
    /// Registers them for `cluster` in `region`.
    pub fn register(registry: &Registry, cluster: &str, region: &str) -> prometheus::Result<Self> {
        let forge_enabled = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_forge_enabled",
                "1 when this region forges (exported by the region's lease holder only).",
            ),
            &["cluster", "region"],
        )?;
        let forge_priority = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_forge_priority",
                "This region's effective priority (exported by the region's lease holder only).",
            ),
            &["cluster", "region"],
        )?;
        registry.register(Box::new(forge_enabled.clone()))?;
        registry.register(Box::new(forge_priority.clone()))?;
        Ok(Self {
            forge_enabled,
            forge_priority,
            labels: [cluster.to_string(), region.to_string()],
        })
    }

    /// Applies one Decider snapshot.
    pub fn update(&self, snapshot: &Snapshot) {
        let s = &snapshot.status;
        let l = [self.labels[0].as_str(), self.labels[1].as_str()];
        if s.get("holdsLease").and_then(|v| v.as_bool()) == Some(true) {
            let forging = s.get("forging").and_then(|v| v.as_bool()).unwrap_or(false);
            self.forge_enabled.with_label_values(&l).set(i64::from(forging));
            if let Some(p) = s.get("effectivePriority").and_then(|v| v.as_i64()) {
                self.forge_priority.with_label_values(&l).set(p);
            }
        } else {
            let _ = self.forge_enabled.remove_label_values(&l);
            let _ = self.forge_priority.remove_label_values(&l);
        }
    }

    /// Follows the Decider's snapshots until the sender is gone.
    pub async fn follow(self, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        loop {
            let snap = snapshots.borrow_and_update().clone();
            self.update(&snap);
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lease_holder_exports_the_cluster_gauges() {
        let registry = Registry::new();
        let m = ClusterMetrics::register(&registry, "pool-east", "east").expect("register");
        let snap = |holds: bool, forging: bool| Snapshot {
            status: serde_json::json!({"holdsLease": holds, "forging": forging, "effectivePriority": 1}),
            ..Snapshot::default()
        };
        m.update(&snap(true, true));
        let text = crate::metrics::encode(&registry);
        assert!(
            text.contains("cardano_cluster_forge_enabled{cluster=\"pool-east\",region=\"east\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cardano_cluster_forge_priority{cluster=\"pool-east\",region=\"east\"} 1"),
            "{text}"
        );
        m.update(&snap(false, false));
        let text = crate::metrics::encode(&registry);
        assert!(!text.contains("cardano_cluster_forge_enabled{"), "{text}");
    }
}
