//! [`InMemory`]: one pod's whole outside world in memory, every port of
//! [`crate::system::Adapters`] with its double, so that a test (or a benchmark) builds the real
//! actor system with [`crate::system::spawn_all`] and drives and reads the world through the
//! doubles it keeps. What the pods of one cluster share, as in production, is a
//! [`MemoryCluster`]: the Lease, the pool's one CardanoLeader and the cluster's one
//! CardanoForgeCluster.

use std::sync::Arc;

use forge_core::{
    config::ValidConfig,
    crd::{CardanoForgeCluster, CardanoLeader},
};

use super::{
    MemoryChain, MemoryCredentials, MemoryGuard, MemoryLeaseClient, MemoryLeases, MemoryNode, MemoryObject,
    MemoryPeers, MemorySources, MemoryTickets, RecordedEvents, ScriptedProber,
};
use crate::{clock::Clock, ports::ObjectApi, system::Adapters};

/// The objects every pod of one cluster shares (in production: one Lease and one CardanoLeader
/// per pool, one CardanoForgeCluster per cluster, whatever the number of pods). Cheap to clone;
/// clones share them.
#[derive(Clone)]
pub struct MemoryCluster {
    /// The Lease store (each pod writes through its own client).
    pub leases: MemoryLeases,
    /// The pool's CardanoLeader.
    pub leader: MemoryObject<CardanoLeader>,
    /// The cluster's CardanoForgeCluster (read and written with cluster management only).
    pub cluster: MemoryObject<CardanoForgeCluster>,
}

impl MemoryCluster {
    /// The objects `cfg` names, all absent (every pod of a cluster names the same).
    pub fn new(cfg: &ValidConfig) -> Self {
        Self {
            leases: MemoryLeases::new(),
            leader: MemoryObject::new(&cfg.names.leader),
            cluster: MemoryObject::new(&cfg.names.cluster),
        }
    }
}

/// The doubles of one pod; clones share them.
#[derive(Clone)]
pub struct InMemory {
    /// This pod's client of the shared Lease store (faults are scripted on it).
    pub lease: MemoryLeaseClient,
    /// The CardanoLeader, shared with the other pods of the cluster.
    pub leader: MemoryObject<CardanoLeader>,
    /// The CardanoForgeCluster, shared with the other pods of the cluster (used with cluster
    /// management only).
    pub cluster: MemoryObject<CardanoForgeCluster>,
    /// The health endpoint.
    pub prober: ScriptedProber,
    /// The source credential files (absent until published).
    pub sources: MemorySources,
    /// The credential files the node reads.
    pub credentials: MemoryCredentials,
    /// The Kubernetes Events published about the pod.
    pub events: RecordedEvents,
    /// The node's socket and process (no node until started).
    pub node: MemoryNode,
    /// The node guard (present from the start).
    pub guard: MemoryGuard,
    /// The peer regions (none until added).
    pub peers: MemoryPeers,
    /// The quorum participants' API servers and their forge tickets (none until added; used in
    /// quorum mode only).
    pub tickets: MemoryTickets,
    /// The node's tip and the leader schedule file (no tip, no file until set).
    pub chain: MemoryChain,
    /// The clock every actor reads (share one among pods for one virtual time).
    pub clock: Clock,
}

impl InMemory {
    /// The world of the pod `cfg` configures, in the cluster `shared` (its Lease, CardanoLeader
    /// and CardanoForgeCluster are those of every pod there); panics when `cfg` names another
    /// CardanoLeader than `shared` holds, or with cluster management another
    /// CardanoForgeCluster (a test's own mistake: without `CLUSTER_IDENTIFIER` or a pool, a
    /// pod's CardanoForgeCluster is named after its host).
    pub fn new(cfg: &ValidConfig, shared: &MemoryCluster, clock: Clock) -> Self {
        let pod = &cfg.pod_name;
        assert_eq!(
            cfg.names.leader,
            shared.leader.name(),
            "pod {pod} names another CardanoLeader than its cluster's"
        );
        if cfg.cluster.management_enabled {
            assert_eq!(
                cfg.names.cluster,
                shared.cluster.name(),
                "pod {pod} names another CardanoForgeCluster than its cluster's (CLUSTER_IDENTIFIER)"
            );
        }
        Self {
            lease: shared.leases.client(&cfg.lease_identity()),
            leader: shared.leader.clone(),
            cluster: shared.cluster.clone(),
            prober: ScriptedProber::default(),
            sources: MemorySources::new(),
            credentials: MemoryCredentials::default(),
            events: RecordedEvents::default(),
            node: MemoryNode::new(),
            guard: MemoryGuard::new(&cfg.node.guard_socket),
            peers: MemoryPeers::default(),
            tickets: MemoryTickets::default(),
            chain: MemoryChain::default(),
            clock,
        }
    }

    /// The adapters for `spawn_all`: each port served by its double (the CardanoForgeCluster
    /// only with cluster management, as in production; the forge tickets only in quorum mode).
    pub fn adapters(&self, cfg: &ValidConfig) -> Adapters {
        Adapters {
            leases: Arc::new(self.lease.clone()),
            leader: Arc::new(self.leader.clone()),
            cluster: cfg
                .cluster
                .management_enabled
                .then(|| Arc::new(self.cluster.clone()) as Arc<crate::ports::ForgeClusterApi>),
            prober: Arc::new(self.prober.clone()),
            sources: Arc::new(self.sources.clone()),
            credentials: Arc::new(self.credentials.clone()),
            events: Arc::new(self.events.clone()),
            node: Arc::new(self.node.clone()),
            guard: Arc::new(self.guard.clone()),
            peers: Arc::new(self.peers.clone()),
            chain: Arc::new(self.chain.clone()),
            tickets: cfg
                .quorum
                .is_some()
                .then(|| Arc::new(self.tickets.clone()) as Arc<dyn crate::ports::TicketApi>),
            clock: self.clock,
        }
    }
}
