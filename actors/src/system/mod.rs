//! The whole actor system, built in one place: [`spawn_all`] takes the validated configuration
//! and one set of [`Adapters`], starts every actor (each under a `Supervisor`) and returns the
//! [`Handles`] the binary needs (the Decider for `Shutdown`, the published snapshot for the HTTP
//! endpoints). The binary (`src/run.rs`) passes [`Adapters::real`]; the tests of the whole
//! system (`actors/tests/system.rs`) pass the doubles of `testing::InMemory`.
//!
//! `spawn_all` destructures [`ValidConfig`] without `..`: a configuration key that no actor
//! reads is a compile error here until it is wired or said to have no effect.
//!
//! Beside it: `adapters.rs` (what `spawn_all` is given and what it returns) and `parts.rs` (the
//! actors it starts only under some configuration, the ChainWatcher, the PeerWatchers and the
//! TicketKeeper, and the values it derives from the configuration).
//!
//! # The actor graph
//!
//! Every message edge and channel `spawn_all` creates (`─M─►`: message `M` by actix mailbox;
//! `═►`: a channel, the LeaseElector's unbounded one or a tokio `watch` read at will):
//!
//! ```text
//! facts: every Fact to the Decider passes the Counted inbox (forge_manager_mailbox_depth{actor="decider"})
//!
//! LeaseElector ═► its forwarding task ─Fact(LeaseAcquired|LeaseRenewed|LeaseLost)─► LeaseTap
//!              (an unbounded channel, drained in order with send().await)
//! LeaseTap ─Fact(lease facts, TicketsChanged)─► NodeSignaller (the permit's bound), enqueued first
//!          └─Fact(every fact, then)─► Counted ─► Decider
//! NodeWatcher ─Fact(NodeUp|NodeDown)─► Counted ─► Decider
//! NodeWatcher ─NodeProcess─► NodeSignaller
//! NodeSignaller ─Fact(NodeFenced)─► Counted ─► Decider
//! CredentialKeeper ─Fact(CredentialsValid|CredentialsInvalid)─► Counted ─► Decider
//! CredentialKeeper ─SourcesRotated─► Decider
//! ChainWatcher ─Fact(NodeSync|LeaderScheduleChanged)─► Counted ─► Decider    (NODE_METRICS_URL or LEADER_SCHEDULE)
//! ClusterWatcher ─Fact(ClusterSpecChanged|ClusterSpecUnavailable)─► Counted ─► Decider   (cluster management)
//! ClusterWatcher ─CfcSeen─► StatusWriter                                                  (cluster management)
//! ClusterWatcher ─ProbeSpecChanged─► HealthProber                                         (cluster management)
//! HealthProber ─Fact(HealthResult|HealthReset)─► Counted ─► Decider                       (cluster management)
//! HealthProber ─HealthObserved─► StatusWriter                                             (cluster management)
//! PeerWatcher ×peers ─Fact(PeerObserved|PeerLeaseObserved|PeerUnreachable)─► Counted ─► Decider
//! TicketKeeper ─Fact(TicketsChanged)─► LeaseTap ─► NodeSignaller, Counted ─► Decider      (quorum mode)
//!
//! figures for `/status` (sent when they change; the Decider keeps the last of each)
//!
//! CredentialKeeper ─StatusFigures::Kes─► Decider (/status "kes")
//! ChainWatcher ─StatusFigures::Chain─► Decider (/status "chain")    (NODE_METRICS_URL or LEADER_SCHEDULE)
//! TicketKeeper ─StatusFigures::Quorum─► Decider (/status "quorum")                        (quorum mode)
//!
//! commands (from the Decider's plans, in plan order, each awaited before the next; all but
//! Contend answered with a CommandResult)
//!
//! Decider ─Contend, Release─► LeaseElector
//! Decider ─Install, Remove─► CredentialKeeper
//! Decider ─Reload─► NodeSignaller
//! Decider ─WriteStatus─► StatusWriter
//!
//! requests outside the plans (sent as they arise, not awaited)
//!
//! Decider ─PollNow─► PeerWatcher ×peers   (a claim confirmed, or this pod became its region's leader)
//! Decider ─Leading(bool)─► PeerWatcher ×peers (this pod started or stopped holding its region's
//!          Lease; a standby's reads only when its watches go silent)          (cluster management)
//! Decider ─TicketIntent─► TicketKeeper (when the lifecycle's ticket intent changes)  (quorum mode)
//!
//! channels, and the binary
//!
//! Decider ═Snapshot═► Handles::snapshot (the binary's /status /health /readyz), ClusterMetrics gauges
//! signal handler (the binary) ─Shutdown─► Decider
//! ```
//!
//! Between actors everything is a message: no actor reads another's state (the Snapshot goes to
//! the HTTP endpoints and the gauges, not to an actor). The tasks an actor spawns act for it
//! and send only the edges drawn above: the LeaseElector's forwarder, the ClusterWatcher's
//! follow loop, and the NodeSignaller's subscription to the node guard, whose reports come back
//! to the signaller as `GuardPush` messages.
//!
//! Outside the process, each through its port in [`Adapters`]: the NodeSignaller talks to the
//! node guard (permit, reload, revoke; its `GuardReport` stream back) and, without one, signals
//! the node by PID; the node guard signals and fences cardano-node; the NodeWatcher checks the
//! node's socket and process (asking the guard for the PID when the process is not visible); the
//! CredentialKeeper reads and watches the sources, writes the targets and publishes an Event per
//! refusal; the LeaseElector, the StatusWriter and the ClusterWatcher read and write the Lease,
//! the CardanoLeader and the CardanoForgeCluster; the PeerWatchers read and watch each peer
//! region's CardanoForgeCluster and Lease (`Adapters::peers`, which holds the peers' kubeconfigs);
//! the TicketKeeper reads, writes and watches each quorum participant's forge ticket
//! (`Adapters::tickets`, which holds the participants' kubeconfigs); the HealthProber probes
//! over HTTP; the ChainWatcher reads the node's tip from its metrics endpoint and the leader
//! schedule file.

mod adapters;
mod parts;

use std::{sync::Arc, time::Duration};

use actix::{Actor, AsyncContext, Context, Recipient, Supervisor};
use forge_core::{
    config::{
        ClusterSettings, CredentialSettings, EffectiveNames, NetworkSettings, NodeSettings, ValidConfig,
    },
    decision::{DEFAULT_HEARTBEAT_FRESH_FOR, DEFAULT_SLOT_LENGTH, DeciderConfig, State},
};
use prometheus::Registry;
use tokio::sync::watch;

pub use self::adapters::{Adapters, GUARD_TIMEOUT, Handles, WATCH_IDLE};
use self::parts::{
    cluster_gauges, pod_labels, probing_fallback, spawn_chain_watcher, spawn_peer_watchers,
    spawn_ticket_keeper,
};
use crate::{
    cluster_watcher::{ClusterObject, ClusterWatcher},
    credential_keeper::{CredentialKeeper, kes_schedule},
    decider::{Decider, DeciderOutputs, DeciderSettings},
    health_prober::{HealthMetrics, HealthProber},
    http::Snapshot,
    lease_elector::LeaseElector,
    mailbox::Counted,
    messages::Fact,
    metrics::Metrics,
    node_signaller::{LeaseTap, NodeSignaller, StopConfirmation},
    node_watcher::{NodeWatcher, NodeWatcherSettings},
    status_writer::StatusWriter,
};

/// Why the system could not be built (nothing was left running that matters: the binary exits).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A metric could not be registered (a name registered twice).
    #[error("registering {what} metrics: {source}")]
    Metrics {
        /// Which group.
        what: &'static str,
        /// The registry's error.
        source: prometheus::Error,
    },
    /// The network's slot schedule is unusable (`SHELLEY_GENESIS`, `CARDANO_NETWORK`).
    #[error("{0}")]
    Network(String),
}

fn metrics<T>(what: &'static str, r: prometheus::Result<T>) -> Result<T, SpawnError> {
    r.map_err(|source| SpawnError::Metrics { what, source })
}

/// Builds every actor inside the running actix System, from `cfg` and `io`, registering their
/// metrics in `registry` (see the module documentation for the graph).
pub fn spawn_all(cfg: &ValidConfig, io: Adapters, registry: &Registry) -> Result<Handles, SpawnError> {
    let ValidConfig {
        namespace,
        pod_name,
        pod_uid: _, // in `cfg.lease_identity()`
        lease,
        api_timeout,
        shutdown_timeout,
        legacy_sleep_interval: _, // validation folded it into `lease.retry_period`
        names,
        crd: _, // validation accepts only the CardanoLeader resource the adapters address
        node,
        credentials,
        network,
        pool,
        application_type,
        chain,
        cluster,
        health,
        peers,
        quorum,
        metrics_port: _, // the binary's HTTP server
        log: _,          // the binary's tracing
    } = cfg;
    let EffectiveNames {
        scheme: _, // in `names.{lease,leader,cluster}`
        lease: _,  // in `io.leases`
        lease_source: _,
        leader: _, // in `io.leader`
        leader_source: _,
        cluster: cluster_name,
        cluster_source: _,
    } = names;
    let NetworkSettings {
        name: network_name,
        magic,
        shelley_genesis: _, // in `kes_schedule(network)`
    } = network;
    let NodeSettings {
        socket: _,               // in `NodeWatcherSettings::from_config(node)`
        process_name: _,         // in `NodeWatcherSettings::from_config(node)`
        guard_socket,            // in `io.guard`
        disable_socket_check: _, // validation refuses `true`: readiness is the socket check
        socket_wait_timeout,
        starts_non_producing,
        stop_grace,
        stop_confirm_timeout,
    } = node;
    let Adapters {
        leases,
        leader,
        cluster: cluster_object,
        prober: http,
        sources,
        credentials: store,
        events,
        node: host,
        guard,
        peers: peer_api,
        chain: chain_source,
        tickets: ticket_api,
        clock,
    } = io;

    let labels = pod_labels(
        pod_name,
        namespace,
        network_name,
        pool.as_ref(),
        application_type.as_str(),
    );
    let metrics = self::metrics(
        "pod",
        Metrics::register(registry, &labels, env!("CARGO_PKG_VERSION")),
    )?;
    // 1 once the NodeSignaller's subscription to the node guard is up.
    metrics.fencing_covered.set(0);
    tracing::warn!(
        guard_socket = %guard_socket.display(),
        "no node guard connected (yet): until one is, fencing is by SIGHUP to the node's PID only and \
         S3 (no orphaned forger) is not covered"
    );
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let warnings = cluster_gauges(cluster, cluster_name, peers.len(), &labels, &snapshot, registry)?;

    // The Decider's address exists before the Decider, so the others can report to it.
    let decider_ctx = Context::<Decider>::new();
    let decider = decider_ctx.address();
    // Facts reach the Decider through a counting inbox: `forge_manager_mailbox_depth{actor}`.
    let facts: Recipient<Fact> = Counted::new(
        decider.clone().recipient(),
        metrics.mailbox_depth.with_label_values(&["decider"]),
    )
    .start()
    .recipient();

    // The room a non-stopping reload leaves before the forging deadline, the follow-up after a
    // start included (docs/safety-findings.md F21, F24).
    let ticket_timing = quorum.as_ref().map(|q| q.ticket.as_lease_timing());
    let (reload_room, capped) = crate::decider::reload_room(*stop_grace, lease, ticket_timing.as_ref());
    // Reloads go through the node guard whenever its socket exists (SIGHUP by PID otherwise);
    // the signaller holds the guard's forging permit within the lease's renew deadline.
    let signaller = Supervisor::start({
        let (host, guard, m, fact) = (host.clone(), guard.clone(), metrics.clone(), facts.clone());
        let stop = StopConfirmation {
            grace: *stop_grace,
            timeout: *stop_confirm_timeout,
        };
        let boot_credentials = *starts_non_producing;
        let quorum_glass = quorum.as_ref().map(|q| q.break_glass);
        move |_| {
            let signaller = NodeSignaller::new(host, &m)
                .with_guard(guard, clock)
                .with_quorum_if(quorum_glass)
                .with_stop_confirmation(stop)
                .with_decider(fact);
            if boot_credentials {
                signaller
            } else {
                signaller.without_boot_credentials()
            }
        }
    });
    // The lease facts reach the signaller before the Decider (the permit's bound).
    let tap = LeaseTap::new(signaller.clone().recipient(), facts.clone()).start();
    let tickets = match (quorum, ticket_api) {
        (Some(q), Some(api)) => Some(spawn_ticket_keeper(
            cfg,
            q,
            api,
            clock,
            tap.clone().recipient(),
            decider.clone().recipient(),
            registry,
        )?),
        _ => None,
    };
    let elector = Supervisor::start({
        let (identity, timing, m, fact) = (cfg.lease_identity(), *lease, metrics.clone(), tap.recipient());
        move |_| LeaseElector::new(leases, identity.clone(), timing, clock, fact, Some(m))
    });
    Supervisor::start({
        let settings = NodeWatcherSettings::from_config(node);
        let (m, fact, sig) = (metrics.clone(), facts.clone(), signaller.clone().recipient());
        move |_| NodeWatcher::new(settings, host.clone(), fact, sig, &m).with_guard(guard.clone())
    });

    let network_slots = kes_schedule(network).map_err(SpawnError::Network)?;
    if chain.require_sync && network_slots.is_none() {
        return Err(SpawnError::Network(format!(
            "REQUIRE_SYNC: the wall-clock slot of network {network_name:?} is unknown; set SHELLEY_GENESIS"
        )));
    }
    spawn_chain_watcher(
        chain,
        chain_source,
        network_slots.clone(),
        &facts,
        decider.clone().recipient(),
        registry,
    )?;
    let keeper = Supervisor::start({
        let CredentialSettings {
            source: _, // in `io.sources`
            target: _, // in `io.credentials`
        } = credentials;
        let (kes_report, kes) = (decider.clone().recipient(), network_slots.clone());
        let (m, fact, rotated) = (metrics.clone(), facts.clone(), decider.clone().recipient());
        move |_| {
            CredentialKeeper::new(sources.clone(), store.clone(), fact.clone(), rotated.clone(), &m)
                .with_kes_schedule(kes.clone())
                .with_events(events.clone())
                .with_kes_report(kes_report.clone())
        }
    });

    let status_writer = Supervisor::start({
        let (pod, m, cluster) = (pod_name.clone(), metrics.clone(), cluster_object.clone());
        move |_| {
            let writer = StatusWriter::new(leader, pod, Some(m));
            match cluster {
                Some(c) => writer.with_cluster(c),
                None => writer,
            }
        }
    });
    if let Some(object) = cluster_object {
        // The CFC's healthCheck (the environment's as fallback) decides what the HealthProber
        // probes; its results go to the Decider and, for the CFC status, the StatusWriter.
        let fallback = probing_fallback(health);
        let health_metrics = self::metrics("health", HealthMetrics::register(registry))?;
        let prober = Supervisor::start({
            let (cluster, fact) = (cluster_name.clone(), facts.clone());
            let status = Some(status_writer.clone().recipient());
            move |_| HealthProber::new(http, cluster, fallback, fact, Some(health_metrics), status)
        });
        let default_spec = forge_core::status::default_cluster_spec(cfg);
        let (m, fact, seen) = (metrics.clone(), facts.clone(), status_writer.clone().recipient());
        let health_spec = prober.recipient();
        let (retry_after, network) = (lease.retry_period, (network_name.clone(), i64::from(*magic)));
        Supervisor::start(move |_| {
            let cluster = ClusterObject {
                object: object.clone(),
                default_spec: default_spec.clone(),
                fact: fact.clone(),
                idle: WATCH_IDLE,
                retry_after,
                network: network.clone(),
                health_spec: Some(health_spec.clone()),
                seen: Some(seen.clone()),
            };
            ClusterWatcher::new(cluster, Some(&m))
        });
    }
    // Standbys follow their peers by watch alone and read them only when the watches go
    // silent (the API budget, docs/quorum.md "API load"); the Decider tells the PeerWatchers
    // whether this pod leads its region (`Leading`). None without cluster management.
    let peer_watchers = spawn_peer_watchers(cfg, peer_api, clock, &facts, registry)?;
    let poll_peers = peer_watchers.iter().map(|w| w.clone().recipient()).collect();
    let leading = peer_watchers.into_iter().map(|w| w.recipient()).collect();

    let ClusterSettings {
        management_enabled,
        region: _,      // in `default_cluster_spec(cfg)` and the cluster gauges
        environment: _, // in `default_cluster_spec(cfg)`
        priority: _,    // in `default_cluster_spec(cfg)`
    } = cluster;
    let config = DeciderConfig {
        cluster: cluster_name.clone(),
        cluster_management: *management_enabled,
        peers: peers.iter().map(|p| p.name.clone()).collect(),
        require_sync: chain.require_sync,
        heartbeat_fresh_for: DEFAULT_HEARTBEAT_FRESH_FOR,
        lease: *lease,
        handover_quiet: chain.handover_quiet,
        slot_length: network_slots
            .as_ref()
            .map_or(DEFAULT_SLOT_LENGTH, |n| Duration::from_millis(n.slot_millis)),
        quorum: quorum.is_some(),
        quorum_break_glass: quorum.as_ref().is_some_and(|q| q.break_glass),
    };
    if capped {
        tracing::warn!(
            stop_grace_ms = stop_grace.as_millis() as u64,
            room_ms = reload_room.as_millis() as u64,
            "STOP_GRACE is longer than RENEW_DEADLINE (or TICKET_RENEW_DEADLINE) - RETRY_PERIOD: a start, rotation or re-assert \
             is kept only this far from the renew deadline, so the stop there may wait for it past the \
             deadline (docs/safety-findings.md F21); a longer RENEW_DEADLINE or a shorter RETRY_PERIOD \
             gives the stop its room"
        );
    }
    let settings = DeciderSettings {
        pod: pod_name.clone(),
        heartbeat: lease.retry_period.min(Duration::from_secs(1)),
        retry_after: lease.retry_period,
        status_write_required: *management_enabled,
        boot_credentials: *starts_non_producing,
        reassert_window: *socket_wait_timeout,
        reassert_every: (lease.retry_period * 2).max(Duration::from_secs(1)),
        // A SIGTERM handover may wait for an imminent leader slot within the shutdown deadline,
        // leaving the stop its confirmation time and a second more.
        shutdown_hold_max: shutdown_timeout.saturating_sub(*stop_confirm_timeout + Duration::from_secs(1)),
        reload_room,
    };
    let _ = api_timeout; // in every Kubernetes adapter (`Adapters::real`)
    let out = DeciderOutputs {
        contend: elector.clone().recipient(),
        release: elector.recipient(),
        install: keeper.clone().recipient(),
        remove: keeper.recipient(),
        reload: signaller.recipient(),
        write_status: status_writer.recipient(),
        poll_peers,
    };
    // `cardano_forging_enabled` belongs to the NodeSignaller: it knows what the node was told
    // and, with the guard, what the node does.
    let decider_actor = Decider::new(
        settings,
        State::new(config),
        clock,
        out,
        snapshot_tx,
        Some(metrics.clone()),
    );
    let decider_actor = match tickets {
        Some(keeper) => decider_actor.with_tickets(keeper),
        None => decider_actor,
    };
    let decider_actor = decider_actor.with_leading(leading);
    decider_ctx.run(decider_actor);
    Ok(Handles {
        decider,
        snapshot,
        warnings,
        metrics,
    })
}

#[cfg(test)]
mod tests;
