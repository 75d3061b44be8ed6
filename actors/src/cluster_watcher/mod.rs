//! ClusterWatcher (cluster management, `ENABLE_CLUSTER_MANAGEMENT=true`): follows this
//! cluster's CardanoForgeCluster (a consistent GET, then a watch), creating it from
//! configuration when absent (409-safe: replicas start together), and reports
//! `ClusterSpecChanged` for every valid spec read, or `ClusterSpecUnavailable` (fail closed) when
//! it is unreadable, invalid or deleted (a deleted object is then re-created from configuration,
//! so the decision falls back to it). Every object it reads also goes to the StatusWriter
//! (`CfcSeen`: its status for write skipping, its `resourceVersion` as the precondition of our
//! writes), and the valid spec's `healthCheck` to the HealthProber. It writes nothing but the
//! object's creation: our status is the StatusWriter's (`actors/src/status_writer`).
//!
//! The spec checks it applies and the status content the StatusWriter writes are pure, in
//! forge-core (`core/src/status.rs`).

mod actor;
mod follow;

use std::{sync::Arc, time::Duration};

use actix::Recipient;
use forge_core::crd::CardanoForgeClusterSpec;

use crate::{
    messages::{CfcSeen, Fact, ProbeSpecChanged},
    metrics::Metrics,
    ports::ForgeClusterApi,
    supervisor::Restarts,
};

/// The actor.
pub struct ClusterWatcher {
    cluster: ClusterObject,
    restarts: Restarts,
}

/// What the ClusterWatcher needs for this cluster's CardanoForgeCluster; the follow loop runs
/// on a copy of it (`follow.rs`).
#[derive(Clone)]
pub struct ClusterObject {
    /// The object (`cfg.names.cluster` in our namespace).
    pub object: Arc<ForgeClusterApi>,
    /// The spec it is created with when absent (from configuration).
    pub default_spec: CardanoForgeClusterSpec,
    /// Where `ClusterSpecChanged`/`ClusterSpecUnavailable` go (the Decider).
    pub fact: Recipient<Fact>,
    /// Bound on how long the server may hold one watch open.
    pub idle: Duration,
    /// Pause after a failed read or watch before trying again.
    pub retry_after: Duration,
    /// The network this node runs on (`name`, `magic`): a CFC for another network is invalid.
    pub network: (String, i64),
    /// Where the valid spec's `healthCheck` goes (the HealthProber), if anywhere.
    pub health_spec: Option<Recipient<ProbeSpecChanged>>,
    /// Where every object read goes (the StatusWriter), if anywhere.
    pub seen: Option<Recipient<CfcSeen>>,
}

impl ClusterWatcher {
    /// A follower of `cluster`.
    pub fn new(cluster: ClusterObject, metrics: Option<&Metrics>) -> Self {
        let restarts = Restarts::new("cluster_watcher", metrics.map(|m| m.actor_restarts.clone()));
        Self { cluster, restarts }
    }
}
