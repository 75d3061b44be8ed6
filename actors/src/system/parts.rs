//! The parts [`super::spawn_all`] builds only under some configuration (the ChainWatcher, the
//! PeerWatchers, the TicketKeeper, the cluster gauges) and the values it derives from the
//! configuration (the pod's metric labels, the environment's health probe).

use std::sync::Arc;

use actix::{Addr, Recipient, Supervisor};
use forge_core::config::{
    ChainSettings as ChainConfig, ClusterSettings, HealthCheckSettings, PoolIdentity, QuorumSettings,
    ValidConfig,
};
use prometheus::Registry;
use tokio::sync::watch;

use super::{SpawnError, metrics};
use crate::{
    chain_watcher::{ChainMetrics, ChainSettings, ChainWatcher},
    cluster_metrics::ClusterMetrics,
    health_prober::Probing,
    http::Snapshot,
    messages::{Fact, StatusFigures},
    metrics::PodLabels,
    peer_watcher::{PeerMetrics, PeerSettings, PeerWatcher},
    ports::{ChainSource, PeerApi, TicketApi},
    ticket_keeper::{Participant, TICKET_SUFFIX, TicketIntent, TicketKeeper, TicketMetrics, TicketSettings},
};

/// The labels every pod metric carries.
pub(super) fn pod_labels(
    pod: &str,
    namespace: &str,
    network: &str,
    pool: Option<&PoolIdentity>,
    application: &str,
) -> PodLabels {
    PodLabels {
        pod: pod.to_string(),
        namespace: namespace.to_string(),
        network: network.to_string(),
        pool_id: pool.map_or_else(|| "unknown".into(), |p| p.id.chars().take(10).collect()),
        pool_ticker: pool
            .and_then(|p| p.ticker.clone())
            .unwrap_or_else(|| "unknown".into()),
        application: application.to_string(),
    }
}

/// With cluster management: the cluster gauges (fed from the snapshot) and the peer count;
/// returns the configuration warnings for `/status`.
pub(super) fn cluster_gauges(
    cluster: &ClusterSettings,
    cluster_name: &str,
    peers: usize,
    labels: &PodLabels,
    snapshot: &watch::Receiver<Arc<Snapshot>>,
    registry: &Registry,
) -> Result<Vec<String>, SpawnError> {
    let mut warnings = Vec::new();
    if !cluster.management_enabled {
        return Ok(warnings);
    }
    let m = metrics(
        "cluster",
        ClusterMetrics::register(
            registry,
            cluster_name,
            &cluster.region,
            &labels.network,
            &labels.pool_id,
        ),
    )?;
    actix::spawn(m.follow(snapshot.clone()));
    let gauge = metrics(
        "peers",
        prometheus::IntGauge::new(
            "cardano_forge_manager_cluster_peers_configured",
            "Peer regions in PEER_CLUSTERS (with cluster management on); 0: this region decides alone.",
        ),
    )?;
    gauge.set(i64::try_from(peers).unwrap_or(i64::MAX));
    metrics("peers", registry.register(Box::new(gauge)))?;
    if peers == 0 {
        let w = "cluster management is on with no peer regions (PEER_CLUSTERS empty): this region \
                 decides alone, so every region set up like this forges at once; list the other \
                 regions in PEER_CLUSTERS";
        tracing::warn!(cluster = %cluster_name, "{w}");
        warnings.push(w.to_string());
    }
    Ok(warnings)
}

/// The environment's health probe, used until the CardanoForgeCluster names one.
pub(super) fn probing_fallback(health: &HealthCheckSettings) -> Option<Probing> {
    let HealthCheckSettings {
        endpoint,
        interval,
        timeout,
        failure_threshold,
    } = health;
    endpoint.as_ref().map(|endpoint| Probing {
        endpoint: endpoint.clone(),
        interval: *interval,
        timeout: *timeout,
        failure_threshold: *failure_threshold,
        headers: Default::default(),
    })
}

/// The node's tip and our leader schedule, when configured; their figures go to `report` (the
/// Decider, for `/status`, which shows `chain` only where the ChainWatcher runs).
pub(super) fn spawn_chain_watcher(
    chain: &ChainConfig,
    source: Arc<dyn ChainSource>,
    schedule: Option<forge_core::cardano::KesSchedule>,
    facts: &Recipient<Fact>,
    report: Recipient<StatusFigures>,
    registry: &Registry,
) -> Result<(), SpawnError> {
    let ChainConfig {
        require_sync: _,   // the Decider's
        handover_quiet: _, // the Decider's
        sync_tolerance,
        node_metrics_url,
        sync_check_interval,
        leader_schedule,
    } = chain;
    if node_metrics_url.is_none() && leader_schedule.is_none() {
        return Ok(());
    }
    let chain_metrics = metrics("chain", ChainMetrics::register(registry))?;
    let settings = ChainSettings {
        metrics_url: node_metrics_url.clone(),
        tolerance: *sync_tolerance,
        interval: *sync_check_interval,
        schedule,
        leader_schedule: leader_schedule.clone(),
    };
    let fact = facts.clone();
    Supervisor::start(move |_| {
        ChainWatcher::new(
            settings.clone(),
            source.clone(),
            fact.clone(),
            Some(chain_metrics.clone()),
            report.clone(),
        )
    });
    Ok(())
}

/// Peer regions (cluster management only): each one's CFC and Lease followed by watches through
/// its own kubeconfig (`api`), with consistent reads when a decision needs them (`PollNow`) and a resync
/// (docs/quorum.md, "API load"). Returns them, for the Decider's `PollNow` and `Leading`.
///
/// Each starts as a standby's, reading only when its watches go silent, until the Decider says
/// this pod leads its region (`Leading`).
pub(super) fn spawn_peer_watchers(
    cfg: &ValidConfig,
    api: Arc<dyn PeerApi>,
    clock: crate::clock::Clock,
    facts: &Recipient<Fact>,
    registry: &Registry,
) -> Result<Vec<Addr<PeerWatcher>>, SpawnError> {
    if !cfg.cluster.management_enabled || cfg.peers.is_empty() {
        return Ok(Vec::new());
    }
    let peer_metrics = metrics("peer", PeerMetrics::register(registry))?;
    Ok(cfg
        .peers
        .iter()
        .map(|peer| {
            // The peer's kubeconfig, namespace and call timeout are in `api` (`Adapters::peers`).
            let settings = PeerSettings {
                name: peer.name.clone(),
                lease: cfg.names.lease.clone(),
                every: cfg.lease.retry_period,
                resync: cfg.lease.duration,
            };
            let (fact, m) = (facts.clone(), peer_metrics.clone());
            let (resync, api) = (cfg.lease.duration, api.clone());
            Supervisor::start(move |_| {
                PeerWatcher::new(settings, api, clock, fact, Some(m)).with_leader_gate(resync)
            })
        })
        .collect())
}

/// Quorum mode (docs/quorum.md): the TicketKeeper, keeping the forge ticket (`LEASE_NAME` +
/// `-ticket`) in every participant's API server (each reached through `api`, which holds the
/// participants' kubeconfigs) and reporting its standing through `fact` (the LeaseTap: the
/// signaller bounds the guard's permit by the forge deadline too). Returns where the Decider
/// sends its ticket intent; the keeper's `/status` report goes to `report` (the Decider).
pub(super) fn spawn_ticket_keeper(
    cfg: &ValidConfig,
    q: &QuorumSettings,
    api: Arc<dyn TicketApi>,
    clock: crate::clock::Clock,
    fact: Recipient<Fact>,
    report: Recipient<StatusFigures>,
    registry: &Registry,
) -> Result<Recipient<TicketIntent>, SpawnError> {
    let settings = TicketSettings {
        me: cfg.names.cluster.clone(),
        participants: q
            .participants
            .iter()
            .map(|p| Participant {
                name: p.name.clone(),
                witness: p.witness,
            })
            .collect(),
        lease: format!("{}{TICKET_SUFFIX}", cfg.names.lease),
        timing: q.ticket,
        call_timeout: TicketSettings::call_timeout(cfg.api_timeout, &q.ticket),
        break_glass: q.break_glass,
    };
    let metrics = metrics("ticket", TicketMetrics::register(registry))?;
    tracing::info!(
        participants = q.participants.len(),
        witnesses = q.participants.iter().filter(|p| p.witness).count(),
        ticket_duration_ms = q.ticket.duration.as_millis() as u64,
        ticket_renew_deadline_ms = q.ticket.renew_deadline.as_millis() as u64,
        "quorum mode on: forging needs a majority of the forge tickets"
    );
    let keeper = Supervisor::start(move |_| {
        TicketKeeper::new(
            settings.clone(),
            api.clone(),
            clock,
            fact.clone(),
            Some(metrics.clone()),
            report.clone(),
        )
    });
    Ok(keeper.recipient())
}
