//! `forge-manager run`: the sidecar. Loads and validates the configuration, installs the fail-safe
//! panic hook, wires the actors (docs/architecture.md, "Actors") and the HTTP endpoints, and turns
//! SIGTERM/SIGINT into a graceful shutdown under a deadline; a second signal, or the deadline
//! passing, runs the synchronous fail-safe and exits at once.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use actix::{AsyncContext, Context, Supervisor};
use anyhow::Context as _;
use forge_actors::{
    adapters::{
        fs_credentials::{self, CredentialPaths},
        guard::GuardClient,
        kube::client,
        kube_lease::{KubeLeasePort, KubeLeases},
        kube_object::NamedObject,
        process::ProcFs,
    },
    chain_watcher::{ChainMetrics, ChainReportCell, ChainSettings, ChainWatcher},
    clock::Clock,
    cluster_metrics::ClusterMetrics,
    cluster_watcher::{ClusterObject, ClusterWatcher},
    credential_keeper::{CredentialKeeper, KeeperEvents, kes_schedule},
    decider::{Decider, DeciderOutputs, DeciderSettings},
    health_prober::{HealthMetrics, HealthProber, Probing},
    http::{self, Endpoints, Snapshot},
    lease_elector::LeaseElector,
    mailbox::Counted,
    messages::{Fact, Shutdown},
    metrics::{Metrics, PodLabels},
    node_signaller::{LeaseTap, NodeSignaller, StopConfirmation},
    node_watcher::{NodeWatcher, NodeWatcherSettings},
    peer_watcher::{PeerMetrics, PeerSettings, PeerWatcher},
    status_writer::StatusWriter,
    ticket_keeper::{
        ParticipantEndpoint, QuorumReportCell, TICKET_SUFFIX, TicketIntent, TicketKeeper, TicketMetrics,
        TicketSettings,
    },
};
use forge_core::{
    config::{LogFormat, LogLevel, ValidConfig},
    decision::{DEFAULT_HEARTBEAT_FRESH_FOR, DEFAULT_SLOT_LENGTH, DeciderConfig, State},
};
use prometheus::Registry;
use rustix::process::Signal;
use tokio::sync::watch;

use crate::settings::{self, ConfigArgs};

/// Exit code after the fail-safe ran (a forced or failed shutdown, a panic).
const EXIT_FAIL_SAFE: u8 = 70;

/// Every request to the node guard is answered within this (it answers at once; a guard that
/// does not is treated as absent for that request).
const GUARD_TIMEOUT: Duration = Duration::from_millis(500);

/// Bound on how long the API server may hold one of our watches open.
const WATCH_IDLE: Duration = Duration::from_secs(290);

/// Runs the sidecar until it is stopped.
pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let cfg = match settings::load(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    init_tracing(&cfg);
    let fail_safe = FailSafe::of(&cfg);
    install_panic_hook(fail_safe.clone());
    tracing::info!(
        pod = %cfg.pod_name, identity = %cfg.lease_identity(), namespace = %cfg.namespace,
        lease = %cfg.names.lease, leader = %cfg.names.leader, version = env!("CARGO_PKG_VERSION"),
        "forge-manager starting"
    );
    if cfg.cluster.management_enabled {
        tracing::info!(
            cluster = %cfg.names.cluster, peers = cfg.peers.len(),
            "cluster management on: forging follows the CardanoForgeCluster and the peer regions"
        );
    }

    let exit = Arc::new(AtomicU8::new(0));
    let system = actix::System::new();
    system.block_on(start(cfg, fail_safe, exit.clone()))?;
    system.run().context("actor system")?;
    Ok(ExitCode::from(exit.load(Ordering::SeqCst)))
}

/// Builds every actor and the endpoints inside the running system.
async fn start(cfg: ValidConfig, fail_safe: FailSafe, exit: Arc<AtomicU8>) -> anyhow::Result<()> {
    let kube = client(None, cfg.api_timeout).await.context("Kubernetes client")?;
    // Objects the reference chart created are followed when the hashed names have none.
    let cfg = crate::reference_names::follow(&kube, cfg).await;
    let registry = Registry::new();
    // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... (as the
    // reference's client library exported them).
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .context("process metrics")?;
    let labels = PodLabels {
        pod: cfg.pod_name.clone(),
        namespace: cfg.namespace.clone(),
        network: cfg.network.name.clone(),
        pool_id: cfg
            .pool
            .as_ref()
            .map(|p| p.id.chars().take(10).collect())
            .unwrap_or_else(|| "unknown".into()),
        pool_ticker: cfg
            .pool
            .as_ref()
            .and_then(|p| p.ticker.clone())
            .unwrap_or_else(|| "unknown".into()),
        application: cfg.application_type.as_str().to_string(),
    };
    let metrics = Metrics::register(&registry, &labels, env!("CARGO_PKG_VERSION")).context("metrics")?;
    // 1 once the NodeSignaller's subscription to the node guard is up.
    metrics.fencing_covered.set(0);
    tracing::warn!(
        guard_socket = %cfg.node.guard_socket.display(),
        "no node guard connected (yet): until one is, fencing is by SIGHUP to the node's PID only and \
         S3 (no orphaned forger) is not covered"
    );

    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let mut warnings = Vec::new();
    if cfg.cluster.management_enabled {
        let m = ClusterMetrics::register(
            &registry,
            &cfg.names.cluster,
            &cfg.cluster.region,
            &labels.network,
            &labels.pool_id,
        )
        .context("cluster metrics")?;
        actix::spawn(m.follow(snapshot_rx.clone()));
        let peers = prometheus::IntGauge::new(
            "cardano_forge_manager_cluster_peers_configured",
            "Peer regions in PEER_CLUSTERS (with cluster management on); 0: this region decides alone.",
        )
        .context("peers gauge")?;
        peers.set(i64::try_from(cfg.peers.len()).unwrap_or(i64::MAX));
        registry.register(Box::new(peers)).context("peers gauge")?;
        if cfg.peers.is_empty() {
            let w = "cluster management is on with no peer regions (PEER_CLUSTERS empty): this region \
                     decides alone, so every region set up like this forges at once; list the other \
                     regions in PEER_CLUSTERS";
            tracing::warn!(cluster = %cfg.names.cluster, "{w}");
            warnings.push(w.to_string());
        }
    }
    let liveness = (cfg.lease.retry_period * 5).max(Duration::from_secs(10));
    let endpoints = Endpoints::new(registry.clone(), snapshot_rx, liveness).with_warnings(warnings);
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.metrics_port));
    let (listener, bound) = http::bind(addr)
        .await
        .with_context(|| format!("binding METRICS_PORT {addr}"))?;
    tracing::info!(%bound, "serving /metrics /health /readyz /startup-status /status");
    actix::spawn(http::serve(listener, endpoints, std::future::pending()));

    let clock = Clock::new();
    let procfs = ProcFs::default();

    // The Decider's address exists before the Decider, so the others can report to it.
    let decider_ctx = Context::<Decider>::new();
    let decider = decider_ctx.address();
    // Facts reach the Decider through a counting inbox: `forge_manager_mailbox_depth{actor}`.
    let facts: actix::Recipient<Fact> = actix::Actor::start(Counted::new(
        decider.clone().recipient(),
        metrics.mailbox_depth.with_label_values(&["decider"]),
    ))
    .recipient();

    let leases = KubeLeases::new(kube.clone(), &cfg.namespace, &cfg.names.lease, cfg.api_timeout);
    let lease_port = Arc::new(KubeLeasePort::new(leases, cfg.lease.duration * 4));
    // Reloads go through the node guard whenever its socket exists (SIGHUP by PID otherwise);
    // the signaller holds the guard's forging permit within the lease's renew deadline.
    let guard = GuardClient::new(&cfg.node.guard_socket, GUARD_TIMEOUT);
    let signaller = Supervisor::start({
        let (procfs, m, decider_facts) = (procfs.clone(), metrics.clone(), facts.clone());
        let stop = StopConfirmation {
            grace: cfg.node.stop_grace,
            timeout: cfg.node.stop_confirm_timeout,
        };
        let boot_credentials = cfg.node.starts_non_producing;
        let quorum_glass = cfg.quorum.as_ref().map(|q| q.break_glass);
        move |_| {
            let signaller = NodeSignaller::new(procfs, &m)
                .with_guard(guard, clock)
                .with_quorum_if(quorum_glass)
                .with_stop_confirmation(stop)
                .with_decider(decider_facts);
            if boot_credentials {
                signaller
            } else {
                signaller.without_boot_credentials()
            }
        }
    });
    // The lease facts reach the signaller before the Decider (the permit's bound).
    let tap = actix::Actor::start(LeaseTap::new(signaller.clone().recipient(), facts.clone()));
    let tickets = start_ticket_keeper(&cfg, &kube, clock, tap.clone().recipient(), &registry)?;
    let (identity, timing, m) = (cfg.lease_identity(), cfg.lease, metrics.clone());
    let fact = tap.recipient();
    let elector = Supervisor::start(move |_| {
        LeaseElector::new(lease_port, identity.clone(), timing, clock, fact, Some(m))
    });
    let watcher_settings = NodeWatcherSettings::from_config(&cfg.node);
    let _node_watcher = Supervisor::start({
        let (procfs, m, fact, sig) = (
            procfs.clone(),
            metrics.clone(),
            facts.clone(),
            signaller.clone().recipient(),
        );
        move |_| NodeWatcher::new(watcher_settings, procfs, fact, sig, &m)
    });
    // The source certificate's KES figures, for `/status`.
    let kes_report = forge_actors::credential_keeper::KesReportCell::default();
    let network_slots = kes_schedule(&cfg.network).map_err(anyhow::Error::msg)?;
    if cfg.chain.require_sync && network_slots.is_none() {
        anyhow::bail!(
            "REQUIRE_SYNC: the wall-clock slot of network {:?} is unknown; set SHELLEY_GENESIS",
            cfg.network.name
        );
    }
    // The node's tip and our leader schedule (docs/cardano.md), when configured.
    let mut chain_report = None;
    if cfg.chain.node_metrics_url.is_some() || cfg.chain.leader_schedule.is_some() {
        let chain_metrics = ChainMetrics::register(&registry).context("chain metrics")?;
        let settings = ChainSettings {
            metrics_url: cfg.chain.node_metrics_url.clone(),
            tolerance: cfg.chain.sync_tolerance,
            interval: cfg.chain.sync_check_interval,
            schedule: network_slots.clone(),
            leader_schedule: cfg.chain.leader_schedule.clone(),
        };
        let report = ChainReportCell::default();
        chain_report = Some(report.clone());
        let fact = facts.clone();
        let _chain_watcher = Supervisor::start(move |_| {
            ChainWatcher::new(
                settings.clone(),
                fact.clone(),
                Some(chain_metrics.clone()),
                report.clone(),
            )
        });
    }
    let keeper = Supervisor::start({
        let kes_report = kes_report.clone();
        let sources = cfg.credentials.source.clone();
        let targets = cfg.credentials.target.clone();
        let (m, fact, rotated) = (metrics.clone(), facts.clone(), decider.clone().recipient());
        let (kes, events) = (
            network_slots.clone(),
            KeeperEvents::new(kube.clone(), &cfg.namespace, &cfg.pod_name),
        );
        move |_| {
            CredentialKeeper::new(sources, targets, fact, rotated, &m)
                .with_kes_schedule(kes.clone())
                .with_events(events.clone())
                .with_kes_report(kes_report.clone())
        }
    });
    let leader_object = NamedObject::new(kube.clone(), &cfg.namespace, &cfg.names.leader, cfg.api_timeout);
    let cluster_object = cfg
        .cluster
        .management_enabled
        .then(|| NamedObject::new(kube.clone(), &cfg.namespace, &cfg.names.cluster, cfg.api_timeout));
    let status_writer = Supervisor::start({
        let (pod, m, cluster) = (cfg.pod_name.clone(), metrics.clone(), cluster_object.clone());
        move |_| {
            let writer = StatusWriter::new(leader_object, pod, Some(m));
            match cluster {
                Some(c) => writer.with_cluster(c),
                None => writer,
            }
        }
    });
    // Health probing (cluster management only): the CFC's healthCheck, the environment's as
    // fallback; the leader's result goes into the CFC status.
    let (health_spec, health_spec_rx) = tokio::sync::watch::channel(None);
    if cfg.cluster.management_enabled {
        let fallback = cfg.health.endpoint.as_ref().map(|endpoint| Probing {
            endpoint: endpoint.clone(),
            interval: cfg.health.interval,
            timeout: cfg.health.timeout,
            failure_threshold: cfg.health.failure_threshold,
            headers: Default::default(),
        });
        let health_metrics = HealthMetrics::register(&registry).context("health metrics")?;
        let (cluster, fact, status) = (
            cfg.names.cluster.clone(),
            facts.clone(),
            Some(status_writer.clone().recipient()),
        );
        Supervisor::start(move |_| {
            HealthProber::new(
                cluster,
                fallback,
                health_spec_rx,
                fact,
                Some(health_metrics),
                status,
            )
        });
    }
    if let Some(object) = cluster_object {
        let (m, default_spec) = (metrics.clone(), forge_core::status::default_cluster_spec(&cfg));
        let (fact, seen) = (facts.clone(), status_writer.clone().recipient());
        let (retry_after, network) = (
            cfg.lease.retry_period,
            (cfg.network.name.clone(), i64::from(cfg.network.magic)),
        );
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

    // Peer regions (cluster management only): a consistent read of each one's CFC and Lease
    // every retry period, through its own kubeconfig.
    let mut poll_peers = Vec::new();
    // Quorum mode: standbys read their peers once per lease duration only (the leader every
    // retry period); the Decider keeps the flag.
    let leader_flag = cfg
        .quorum
        .is_some()
        .then(|| Arc::new(std::sync::atomic::AtomicBool::new(false)));
    if cfg.cluster.management_enabled && !cfg.peers.is_empty() {
        let peer_metrics = PeerMetrics::register(&registry).context("peer metrics")?;
        for peer in &cfg.peers {
            let settings = PeerSettings {
                name: peer.name.clone(),
                kubeconfig: peer.kubeconfig.clone(),
                namespace: cfg.namespace.clone(),
                lease: cfg.names.lease.clone(),
                every: cfg.lease.retry_period,
                timeout: cfg.api_timeout,
            };
            let (fact, m) = (facts.clone(), peer_metrics.clone());
            let (gate, resync) = (leader_flag.clone(), cfg.lease.duration);
            let watcher = Supervisor::start(move |_| {
                let w = PeerWatcher::new(settings, clock, fact, Some(m));
                match gate {
                    Some(flag) => w.with_leader_gate(flag, resync),
                    None => w,
                }
            });
            poll_peers.push(watcher.recipient());
        }
    }

    let config = DeciderConfig {
        cluster: cfg.names.cluster.clone(),
        cluster_management: cfg.cluster.management_enabled,
        peers: cfg.peers.iter().map(|p| p.name.clone()).collect(),
        require_sync: cfg.chain.require_sync,
        heartbeat_fresh_for: DEFAULT_HEARTBEAT_FRESH_FOR,
        lease: cfg.lease,
        handover_quiet: cfg.chain.handover_quiet,
        slot_length: network_slots
            .as_ref()
            .map_or(DEFAULT_SLOT_LENGTH, |n| Duration::from_millis(n.slot_millis)),
        quorum: cfg.quorum.is_some(),
        quorum_break_glass: cfg.quorum.as_ref().is_some_and(|q| q.break_glass),
    };
    let settings = DeciderSettings {
        pod: cfg.pod_name.clone(),
        heartbeat: cfg.lease.retry_period.min(Duration::from_secs(1)),
        retry_after: cfg.lease.retry_period,
        status_write_required: cfg.cluster.management_enabled,
        boot_credentials: cfg.node.starts_non_producing,
        reassert_window: cfg.node.socket_wait_timeout,
        reassert_every: (cfg.lease.retry_period * 2).max(Duration::from_secs(1)),
        // A SIGTERM handover may wait for an imminent leader slot within the shutdown deadline,
        // leaving the stop its confirmation time and a second more.
        shutdown_hold_max: cfg
            .shutdown_timeout
            .saturating_sub(cfg.node.stop_confirm_timeout + Duration::from_secs(1)),
    };
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
        Some(metrics),
    )
    .with_kes_report(kes_report);
    let decider_actor = match tickets {
        Some((keeper, report)) => decider_actor.with_tickets(keeper, report),
        None => decider_actor,
    };
    let decider_actor = match leader_flag {
        Some(flag) => decider_actor.with_leader_flag(flag),
        None => decider_actor,
    };
    // `/status` shows `chain` only where the ChainWatcher runs.
    decider_ctx.run(match chain_report {
        Some(cell) => decider_actor.with_chain_report(cell),
        None => decider_actor,
    });

    actix::spawn(handle_signals(decider, cfg.shutdown_timeout, fail_safe, exit));
    Ok(())
}

/// Quorum mode (docs/quorum.md), when `QUORUM_PARTICIPANTS` is set: the TicketKeeper, keeping
/// the forge ticket (`LEASE_NAME` + `-ticket`) in every participant's API server, reporting its
/// standing through `fact` (the LeaseTap: the signaller bounds the guard's permit by the forge
/// deadline too). Returns where the Decider sends its ticket intent, and the `/status` report.
fn start_ticket_keeper(
    cfg: &ValidConfig,
    kube: &kube::Client,
    clock: Clock,
    fact: actix::Recipient<Fact>,
    registry: &Registry,
) -> anyhow::Result<Option<(actix::Recipient<TicketIntent>, QuorumReportCell)>> {
    let Some(q) = &cfg.quorum else { return Ok(None) };
    let lease = format!("{}{TICKET_SUFFIX}", cfg.names.lease);
    let call_timeout = TicketSettings::call_timeout(cfg.api_timeout, &q.ticket);
    let own: Arc<dyn forge_actors::ports::LeaseApi> = Arc::new(KubeLeasePort::new(
        KubeLeases::new(kube.clone(), &cfg.namespace, &lease, call_timeout),
        q.ticket.duration * 4,
    ));
    let settings = TicketSettings {
        me: cfg.names.cluster.clone(),
        participants: q
            .participants
            .iter()
            .map(|p| ParticipantEndpoint::of(p, own.clone()))
            .collect(),
        namespace: cfg.namespace.clone(),
        lease,
        timing: q.ticket,
        call_timeout,
        break_glass: q.break_glass,
    };
    let metrics = TicketMetrics::register(registry).context("ticket metrics")?;
    let report = QuorumReportCell::default();
    tracing::info!(
        participants = q.participants.len(),
        witnesses = q.participants.iter().filter(|p| p.witness).count(),
        ticket_duration_ms = q.ticket.duration.as_millis() as u64,
        ticket_renew_deadline_ms = q.ticket.renew_deadline.as_millis() as u64,
        "quorum mode on: forging needs a majority of the forge tickets"
    );
    let cell = report.clone();
    let keeper = Supervisor::start(move |_| {
        TicketKeeper::new(
            settings.clone(),
            clock,
            fact.clone(),
            Some(metrics.clone()),
            cell.clone(),
        )
    });
    Ok(Some((keeper.recipient(), report)))
}

/// First SIGTERM/SIGINT: graceful shutdown under `deadline`. A second signal, or the deadline
/// passing: the synchronous fail-safe, then exit at once.
async fn handle_signals(
    decider: actix::Addr<Decider>,
    deadline: Duration,
    fail_safe: FailSafe,
    exit: Arc<AtomicU8>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!(
        deadline_ms = deadline.as_millis() as u64,
        "signal received: graceful shutdown"
    );
    decider.do_send(Shutdown);
    tokio::select! {
        _ = term.recv() => tracing::warn!("second signal: fail-safe now"),
        _ = int.recv() => tracing::warn!("second signal: fail-safe now"),
        _ = tokio::time::sleep(deadline) => tracing::error!("shutdown deadline passed: fail-safe now"),
    }
    fail_safe.run();
    exit.store(EXIT_FAIL_SAFE, Ordering::SeqCst);
    std::process::exit(i32::from(EXIT_FAIL_SAFE));
}

/// The synchronous fail-safe: remove the target credential files and SIGHUP the node, with
/// nothing but the standard library and the kernel (it runs from a panic hook).
#[derive(Clone)]
struct FailSafe {
    targets: CredentialPaths,
    socket: PathBuf,
    process_name: String,
    guard_socket: PathBuf,
}

impl FailSafe {
    fn of(cfg: &ValidConfig) -> Self {
        Self {
            targets: cfg.credentials.target.clone(),
            socket: cfg.node.socket.clone(),
            process_name: cfg.node.process_name.clone(),
            guard_socket: cfg.node.guard_socket.clone(),
        }
    }

    fn run(&self) {
        let removed = fs_credentials::remove_set(&self.targets);
        let procfs = ProcFs::default();
        let signalled = procfs
            .discover_node(Path::new(&self.socket), &self.process_name)
            .map_err(|e| e.to_string())
            .and_then(|node| procfs.signal(node, Signal::HUP).map_err(|e| e.to_string()));
        let revoked = self.guard_socket.exists().then(|| self.revoke());
        eprintln!(
            "forge-manager fail-safe: credentials removed: {removed:?}; node reloaded: {signalled:?}; \
             guard permit revoked: {revoked:?}"
        );
    }
}

impl FailSafe {
    /// Revokes the node guard's permit (it removes the files and reloads the node itself).
    fn revoke(&self) -> Result<(), String> {
        use std::io::{BufRead, Write};
        let conn = std::os::unix::net::UnixStream::connect(&self.guard_socket).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(GUARD_TIMEOUT))
            .map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(GUARD_TIMEOUT))
            .map_err(|e| e.to_string())?;
        (&conn)
            .write_all(forge_guard::protocol::Request::Revoke.to_line().as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        std::io::BufReader::new(&conn)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        match forge_guard::protocol::Answer::parse(&answer) {
            Ok(a) if a.ok => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }
}

fn install_panic_hook(fail_safe: FailSafe) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        fail_safe.run();
        std::process::exit(i32::from(EXIT_FAIL_SAFE));
    }));
}

fn init_tracing(cfg: &ValidConfig) {
    let level = match cfg.log.level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // Our crates at the configured level; dependencies one step quieter.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,forge_manager={level},forge_actors={level},forge_core={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
