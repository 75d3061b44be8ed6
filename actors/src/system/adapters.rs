//! What [`super::spawn_all`] is given (the adapters: one implementation per outside thing the
//! actors touch) and what it hands back (the handles the binary and the tests need).

use std::{sync::Arc, time::Duration};

use forge_core::config::ValidConfig;
use tokio::sync::watch;

use crate::{
    adapters::{
        fs_credentials::{FsCredentials, FsSources},
        guard::GuardClient,
        http_probe::HttpProbe,
        kube_events::KubeEvents,
        kube_lease::{KubeLeasePort, KubeLeases},
        kube_object::NamedObject,
        kube_peer::KubePeers,
        kube_ticket::KubeTickets,
        node_chain::NodeChain,
        process::ProcFs,
    },
    clock::Clock,
    decider::Decider,
    http::Snapshot,
    metrics::Metrics,
    ports::{
        ChainSource, CredentialSource, CredentialStore, ForgeClusterApi, LeaderApi, LeaseApi, NodeGuard,
        NodeHost, PeerApi, PodEvents, Prober, TicketApi,
    },
    ticket_keeper::{TICKET_SUFFIX, TicketSettings},
};

/// Every request to the node guard is answered within this (it answers at once; a guard that
/// does not is treated as absent for that request).
pub const GUARD_TIMEOUT: Duration = Duration::from_millis(500);

/// Bound on how long the API server may hold one of our watches open.
pub const WATCH_IDLE: Duration = Duration::from_secs(290);

/// The outside world as the actors reach it: one value per outside thing.
pub struct Adapters {
    /// The local Lease (LeaseElector).
    pub leases: Arc<dyn LeaseApi>,
    /// This pod's CardanoLeader (StatusWriter).
    pub leader: Arc<LeaderApi>,
    /// This cluster's CardanoForgeCluster (ClusterWatcher, StatusWriter); `None` without
    /// cluster management.
    pub cluster: Option<Arc<ForgeClusterApi>>,
    /// The health endpoint's HTTP client (HealthProber).
    pub prober: Arc<dyn Prober>,
    /// The source credential files and their watch (CredentialKeeper).
    pub sources: Arc<dyn CredentialSource>,
    /// The credential files the node reads (CredentialKeeper).
    pub credentials: Arc<dyn CredentialStore>,
    /// Kubernetes Events about this pod (CredentialKeeper).
    pub events: Arc<dyn PodEvents>,
    /// The node's socket, its process in `/proc` and pidfd signals to it (NodeWatcher,
    /// NodeSignaller).
    pub node: Arc<dyn NodeHost>,
    /// The node guard's socket (NodeSignaller; the NodeWatcher, when the node's process is not
    /// visible here).
    pub guard: Arc<dyn NodeGuard>,
    /// The peer regions' API servers (PeerWatchers, with cluster management).
    pub peers: Arc<dyn PeerApi>,
    /// The node's metrics endpoint and the leader schedule file (ChainWatcher, with
    /// `NODE_METRICS_URL` or `LEADER_SCHEDULE`).
    pub chain: Arc<dyn ChainSource>,
    /// The quorum participants' API servers, each holding its forge ticket (TicketKeeper): ours
    /// through our own client, the others through their kubeconfigs; `None` outside quorum
    /// mode.
    pub tickets: Option<Arc<dyn TicketApi>>,
    /// The one monotonic clock every actor reads.
    pub clock: Clock,
}

impl Adapters {
    /// The production adapters: Kubernetes through `kube`, the credential files on disk, the
    /// node through its socket, `/proc`, pidfds and the guard socket.
    pub fn real(cfg: &ValidConfig, kube: &kube::Client) -> Self {
        let leases = KubeLeases::new(kube.clone(), &cfg.namespace, &cfg.names.lease, cfg.api_timeout);
        Self {
            // A watch may stay open for up to four lease durations before it is renewed.
            leases: Arc::new(KubeLeasePort::new(leases, cfg.lease.duration * 4)),
            leader: Arc::new(NamedObject::new(
                kube.clone(),
                &cfg.namespace,
                &cfg.names.leader,
                cfg.api_timeout,
            )),
            cluster: cfg.cluster.management_enabled.then(|| {
                let cluster: Arc<ForgeClusterApi> = Arc::new(NamedObject::new(
                    kube.clone(),
                    &cfg.namespace,
                    &cfg.names.cluster,
                    cfg.api_timeout,
                ));
                cluster
            }),
            prober: Arc::new(HttpProbe),
            sources: Arc::new(FsSources::new(cfg.credentials.source.clone())),
            credentials: Arc::new(FsCredentials::new(cfg.credentials.target.clone())),
            events: Arc::new(KubeEvents::new(kube.clone(), &cfg.namespace, &cfg.pod_name)),
            node: Arc::new(ProcFs::default()),
            guard: Arc::new(GuardClient::new(&cfg.node.guard_socket, GUARD_TIMEOUT)),
            peers: Arc::new(KubePeers::new(
                cfg.peers.iter().map(|p| (p.name.clone(), p.kubeconfig.clone())),
                &cfg.namespace,
                &cfg.names.lease,
                cfg.api_timeout,
            )),
            chain: Arc::new(NodeChain),
            tickets: cfg.quorum.as_ref().map(|q| {
                // A ticket's watch may stay open for up to four ticket durations before it is
                // renewed.
                let tickets: Arc<dyn TicketApi> = Arc::new(KubeTickets::new(
                    kube,
                    q.participants
                        .iter()
                        .map(|p| (p.name.clone(), p.kubeconfig.clone())),
                    &cfg.namespace,
                    &format!("{}{TICKET_SUFFIX}", cfg.names.lease),
                    TicketSettings::call_timeout(cfg.api_timeout, &q.ticket),
                    q.ticket.duration * 4,
                ));
                tickets
            }),
            clock: Clock::new(),
        }
    }
}

/// What the running system exposes.
pub struct Handles {
    /// The Decider (the signal handler sends it `Shutdown`).
    pub decider: actix::Addr<Decider>,
    /// The Decider's published view (`/status`, `/health`, `/readyz`).
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Configuration warnings to show on `/status`.
    pub warnings: Vec<String>,
    /// The pod's metrics.
    pub metrics: Metrics,
}
