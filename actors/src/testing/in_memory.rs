//! [`InMemory`]: one pod's whole outside world in memory, every port of
//! [`crate::system::Adapters`] with its double, so that a test (or a benchmark) builds the real
//! actor system with [`crate::system::spawn_all`] and drives and reads the world through the
//! doubles it keeps.

use std::sync::Arc;

use forge_core::{
    config::ValidConfig,
    crd::{CardanoForgeCluster, CardanoLeader},
};

use super::{
    MemoryChain, MemoryCredentials, MemoryGuard, MemoryLeaseClient, MemoryLeases, MemoryNode, MemoryObject,
    MemoryPeers, MemorySources, RecordedEvents, ScriptedProber,
};
use crate::{clock::Clock, system::Adapters};

/// The doubles of one pod; clones share them.
#[derive(Clone)]
pub struct InMemory {
    /// This pod's client of the shared Lease store (faults are scripted on it).
    pub lease: MemoryLeaseClient,
    /// This pod's CardanoLeader.
    pub leader: MemoryObject<CardanoLeader>,
    /// The CardanoForgeCluster (used with cluster management only).
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
    /// The node's tip and the leader schedule file (no tip, no file until set).
    pub chain: MemoryChain,
    /// The clock every actor reads (share one among pods for one virtual time).
    pub clock: Clock,
}

impl InMemory {
    /// The world of the pod `cfg` configures, on the Lease `store` shared with other pods.
    pub fn new(cfg: &ValidConfig, store: &MemoryLeases, clock: Clock) -> Self {
        Self {
            lease: store.client(&cfg.lease_identity()),
            leader: MemoryObject::new(&cfg.names.leader),
            cluster: MemoryObject::new(&cfg.names.cluster),
            prober: ScriptedProber::default(),
            sources: MemorySources::new(),
            credentials: MemoryCredentials::default(),
            events: RecordedEvents::default(),
            node: MemoryNode::new(),
            guard: MemoryGuard::new(&cfg.node.guard_socket),
            peers: MemoryPeers::default(),
            chain: MemoryChain::default(),
            clock,
        }
    }

    /// The adapters for `spawn_all`: each port served by its double (the CardanoForgeCluster
    /// only with cluster management, as in production; no forge ticket outside quorum mode).
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
            own_ticket: None,
            clock: self.clock,
        }
    }
}
