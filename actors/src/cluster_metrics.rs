//! `cardano_cluster_forge_enabled` and `cardano_cluster_forge_priority` (labelled `cluster`,
//! `region`, `network` and `pool_id`, the reference's label set: `pool_id` is the first 10
//! characters of a `pool1…` id, `unknown` without one), exported by the region's local leader only: while this pod holds the local lease
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
    labels: [String; 4],
}

/// The metrics' label names, in the order of [`ClusterMetrics`]' values.
const LABELS: [&str; 4] = ["cluster", "region", "network", "pool_id"];

impl ClusterMetrics {
    /// Registers them for `cluster` in `region`; `network` and `pool_id` are the label values
    /// of the pod's other metrics (the first 10 characters of the pool id, or `unknown`).
    pub fn register(
        registry: &Registry,
        cluster: &str,
        region: &str,
        network: &str,
        pool_id: &str,
    ) -> prometheus::Result<Self> {
        let forge_enabled = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_forge_enabled",
                "1 when this region forges (exported by the region's lease holder only).",
            ),
            &LABELS,
        )?;
        let forge_priority = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_forge_priority",
                "This region's effective priority (exported by the region's lease holder only).",
            ),
            &LABELS,
        )?;
        registry.register(Box::new(forge_enabled.clone()))?;
        registry.register(Box::new(forge_priority.clone()))?;
        Ok(Self {
            forge_enabled,
            forge_priority,
            labels: [
                cluster.to_string(),
                region.to_string(),
                network.to_string(),
                pool_id.to_string(),
            ],
        })
    }

    /// Applies one Decider snapshot.
    pub fn update(&self, snapshot: &Snapshot) {
        let l = self.labels.each_ref().map(String::as_str);
        if let Some(s) = snapshot.status.as_ref().filter(|s| s.holds_lease) {
            let forging = s.forging.unwrap_or(false);
            self.forge_enabled.with_label_values(&l).set(i64::from(forging));
            self.forge_priority
                .with_label_values(&l)
                .set(i64::from(s.effective_priority));
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
        let m = ClusterMetrics::register(&registry, "pool-east", "east", "mainnet", "pool1abcde")
            .expect("register");
        let snap = |holds: bool, forging: bool| Snapshot {
            status: Some(forge_core::status::SidecarStatus {
                holds_lease: holds,
                forging: Some(forging),
                effective_priority: 1,
                ..Default::default()
            }),
            ..Snapshot::default()
        };
        m.update(&snap(true, true));
        let text = crate::metrics::encode(&registry);
        assert!(
            text.contains(
                "cardano_cluster_forge_enabled{cluster=\"pool-east\",network=\"mainnet\",pool_id=\"pool1abcde\",region=\"east\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "cardano_cluster_forge_priority{cluster=\"pool-east\",network=\"mainnet\",pool_id=\"pool1abcde\",region=\"east\"} 1"
            ),
            "{text}"
        );
        m.update(&snap(false, false));
        let text = crate::metrics::encode(&registry);
        assert!(!text.contains("cardano_cluster_forge_enabled{"), "{text}");
    }
}
