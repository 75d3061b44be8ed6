//! Starting a pod of the fleet (its whole actor system by `spawn_all`, on its in-memory world
//! with the taps), and what a test does to its world and reads from it.

use std::sync::Arc;

use forge_actors::{
    messages::Shutdown,
    system::{Handles, spawn_all},
    testing::{InMemory, MemoryLeaseClient, ModelNode, Tapped, config},
};
use forge_core::{config::ValidConfig, decision::ReloadReason, status::SidecarStatus};

use super::{
    CLUSTER, Fleet, PodOptions, TIMING_KEYS,
    taps::{PodTap, TappedGuard},
    timing,
};

/// The node's PID (each pod has its own process table).
const PID: i32 = 4242;

/// Every reason a reload is sent for.
const REASONS: [ReloadReason; 7] = [
    ReloadReason::StartForging,
    ReloadReason::StopForging,
    ReloadReason::Startup,
    ReloadReason::Shutdown,
    ReloadReason::Rotation,
    ReloadReason::Reassert,
    ReloadReason::FollowUp,
];

impl Fleet {
    /// Starts pod `name`: its whole actor system on its world. Its node is down and its source
    /// credentials absent until the test says otherwise.
    pub fn start_pod(&self, name: &'static str, options: PodOptions) -> Pod {
        let mut pairs = vec![("POD_NAME", name), ("CLUSTER_IDENTIFIER", CLUSTER)];
        pairs.extend(TIMING_KEYS);
        pairs.extend([
            // The Decider re-asserts a start during the node's first 2 s.
            ("SOCKET_WAIT_TIMEOUT", "2"),
            (
                "NODE_STARTS_NON_PRODUCING",
                if options.boot_credentials { "true" } else { "false" },
            ),
            (
                "ENABLE_CLUSTER_MANAGEMENT",
                if options.cluster_management {
                    "true"
                } else {
                    "false"
                },
            ),
        ]);
        let cfg = config(&pairs);
        assert_eq!(cfg.lease, timing(), "the fleet's timings");
        self.add_node(name, options.boot_credentials);
        let world = InMemory::new(&cfg, &self.shared, self.clock);
        let node = ModelNode::of(&world);
        let fleet = self.clone();
        node.observe(Arc::new(move |forging| fleet.forging_changed(name, forging)));

        let mut adapters = node.adapters(&world, &cfg);
        let tap = Arc::new(PodTap {
            pod: name,
            fleet: self.clone(),
        });
        adapters.leases = Arc::new(Tapped::new(world.lease.clone(), tap.clone()));
        adapters.credentials = Arc::new(Tapped::new(world.credentials.clone(), tap.clone()));
        adapters.guard = Arc::new(TappedGuard {
            pod: name,
            inner: node.clone(),
            fleet: self.clone(),
        });
        adapters.leader = Arc::new(Tapped::new(world.leader.clone(), tap.clone()));
        if adapters.cluster.is_some() {
            adapters.cluster = Some(Arc::new(Tapped::new(world.cluster.clone(), tap)));
        }
        let registry = prometheus::Registry::new();
        let handles = spawn_all(&cfg, adapters, &registry).expect("the pod's system starts");
        Pod {
            name,
            fleet: self.clone(),
            client: world.lease.clone(),
            options,
            cfg,
            world,
            node,
            handles,
            credentials: std::sync::atomic::AtomicU64::new(1),
        }
    }
}

/// One pod: its world and the handles of its system.
pub struct Pod {
    /// Its name (the Lease identity).
    pub name: &'static str,
    fleet: Fleet,
    /// Its elector's Lease client, to script faults.
    pub client: MemoryLeaseClient,
    /// What it was started with.
    pub options: PodOptions,
    /// Its configuration.
    pub cfg: ValidConfig,
    /// Its outside world in memory.
    pub world: InMemory,
    /// Its node under its guard.
    pub node: ModelNode,
    /// What `spawn_all` returned: the Decider, its published view, the pod's metrics.
    pub handles: Handles,
    /// The operational certificate counter of the valid set published last.
    credentials: std::sync::atomic::AtomicU64,
}

impl Pod {
    /// The node process starts (the NodeWatcher sees it at its next poll). A node that starts
    /// with its files present forges at once, unless it starts non-producing.
    pub async fn node_up(&self) {
        self.fleet.node_changed(self.name, true);
        self.node.start(PID, self.options.boot_credentials);
    }

    /// A node process that forges from its start comes up (F12).
    pub async fn node_up_forging(&self) {
        self.fleet.node_changed(self.name, true);
        self.node.start_forging(PID);
    }

    /// The node process exits, with its guard.
    pub async fn node_down(&self) {
        self.fleet.node_changed(self.name, false);
        self.node.exit();
    }

    /// The node process exits and starts again at once, faster than the NodeWatcher polls:
    /// it sees only another process (then reports `NodeDown` and `NodeUp` back to back).
    pub async fn node_restarted_before_reported(&self) {
        self.fleet.node_changed(self.name, false);
        self.node.exit();
        self.fleet.node_changed(self.name, true);
        self.node.start_forging(PID);
    }

    /// A valid source set is published (the one published last, or the first).
    pub async fn credentials_valid(&self) {
        let counter = self.credentials.load(std::sync::atomic::Ordering::Relaxed);
        self.world.sources.publish_valid(counter);
    }

    /// A corrupt set is published (a bad rotation).
    pub async fn credentials_invalid(&self, why: &str) {
        self.world
            .sources
            .publish(why.as_bytes(), b"not a key", b"not a certificate");
    }

    /// A new valid set is published (a rotation: a new operational certificate).
    pub async fn rotated(&self) {
        let counter = self
            .credentials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.world.sources.publish_valid(counter);
    }

    /// The node guard fences the node on its own (its permit lapsed): files removed, forging
    /// off, `lapsed` reported.
    pub async fn fenced(&self) {
        self.node.lapse();
    }

    /// SIGTERM (the binary's signal handler sends the Decider `Shutdown`).
    pub async fn shutdown(&self) {
        self.handles
            .decider
            .send(Shutdown)
            .await
            .expect("the Decider takes Shutdown");
    }

    /// Node up and valid credentials published: a ready candidate.
    pub async fn ready(&self) {
        self.node_up().await;
        self.credentials_valid().await;
    }

    /// What the Decider publishes for `/status` now.
    pub fn status(&self) -> Option<SidecarStatus> {
        self.handles.snapshot.borrow().status.clone()
    }

    /// Whether the Decider's published decision forges.
    pub fn decides_to_forge(&self) -> bool {
        self.status().and_then(|s| s.forging) == Some(true)
    }

    /// Restarts of its elector counted so far (`forge_manager_actor_restarts_total`).
    pub fn elector_restarts(&self) -> u64 {
        self.handles
            .metrics
            .actor_restarts
            .with_label_values(&[forge_actors::lease_elector::ACTOR])
            .get()
    }

    /// Reloads that reached the node for `reason` (`cardano_sighup_signals_total{reason}`).
    pub fn reloads(&self, reason: ReloadReason) -> u64 {
        self.handles
            .metrics
            .sighup_signals
            .with_label_values(&[reason.as_str()])
            .get()
    }

    /// Every reload reason with its count now (to compare before and after).
    pub fn reload_counts(&self) -> Vec<(ReloadReason, u64)> {
        REASONS.iter().map(|r| (*r, self.reloads(*r))).collect()
    }

    /// The reloads that reached the node since `before` (from [`Pod::reload_counts`]), by
    /// reason (only the reasons that moved).
    pub fn reloads_since(&self, before: &[(ReloadReason, u64)]) -> Vec<(ReloadReason, u64)> {
        before
            .iter()
            .map(|(r, n)| (*r, self.reloads(*r) - n))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}
