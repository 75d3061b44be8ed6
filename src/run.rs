//! `forge-manager run`: the sidecar. Loads and validates the configuration, sets up tracing,
//! installs the fail-safe panic hook (`fail_safe.rs`), starts the actors
//! (`forge_actors::system::spawn_all`, which carries the actor graph) and the HTTP endpoints, and turns
//! SIGTERM/SIGINT into a graceful shutdown under a deadline; a second signal, or the deadline
//! passing, runs the synchronous fail-safe and exits at once.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use forge_actors::{
    adapters::kube::client,
    decider::Decider,
    http::{self, Endpoints},
    messages::Shutdown,
    system::{self, Adapters},
};
use forge_core::config::{LogFormat, LogLevel, ValidConfig};
use prometheus::Registry;

use crate::{
    fail_safe::FailSafe,
    settings::{self, ConfigArgs},
};

/// Exit code after the fail-safe ran (a forced or failed shutdown, a panic).
const EXIT_FAIL_SAFE: u8 = 70;

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

/// Builds every actor (`forge_actors::system`) and serves the endpoints, inside the running system.
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
    let handles = system::spawn_all(&cfg, Adapters::real(&cfg, &kube), &registry)?;

    let liveness = (cfg.lease.retry_period * 5).max(Duration::from_secs(10));
    let endpoints = Endpoints::new(registry, handles.snapshot, liveness).with_warnings(handles.warnings);
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.metrics_port));
    let (listener, bound) = http::bind(addr)
        .await
        .with_context(|| format!("binding METRICS_PORT {addr}"))?;
    tracing::info!(%bound, "serving /metrics /health /readyz /startup-status /status");
    actix::spawn(http::serve(listener, endpoints, std::future::pending()));

    actix::spawn(handle_signals(
        handles.decider,
        cfg.shutdown_timeout,
        fail_safe,
        exit,
    ));
    Ok(())
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
