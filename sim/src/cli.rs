//! `forge-manager sim ...` (and the `forge-sim` test binary): the test world from a shell
//! (docs/architecture.md, "Test world"). Each subcommand runs until done or until SIGTERM/SIGINT,
//! then cleans up every process and file it made.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use tokio::signal::unix::{SignalKind, signal};

use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::cluster::{Cluster, ClusterOptions};
use crate::node::{Latency, NodeBehaviour, NodeOptions, NodeSim};
use crate::proxy::{FaultProxy, serve_control};
use crate::timeline;

/// The simulator subcommands.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Start etcd and a real kube-apiserver on loopback; print `kubeconfig: PATH` (admin) first,
    /// then `kubeconfig.NAME: PATH` per identity and `server: URL`; stop both on SIGTERM/SIGINT.
    Apiserver {
        /// A user to create (token and kubeconfig), e.g. a pod name; repeatable.
        #[arg(long = "identity", value_name = "NAME")]
        identities: Vec<String>,
        /// Keep files (kubeconfigs, logs, etcd data) in this directory instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// kube-apiserver's etcd compaction interval in seconds (its default is 300).
        #[arg(long, value_name = "SECONDS")]
        etcd_compaction_interval: Option<u64>,
        /// One more kube-apiserver flag, e.g. `--apiserver-arg=--watch-cache=false`; repeatable.
        #[arg(long = "apiserver-arg", value_name = "FLAG", allow_hyphen_values = true)]
        apiserver_args: Vec<String>,
    },
    /// A real single-node Kubernetes 1.20 (etcd, kube-apiserver, controller-manager, scheduler,
    /// its own containerd, kubelet, kube-proxy, bridge CNI; needs root and
    /// `scripts/kube-cluster.sh`); prints `kubeconfig: PATH` (admin), `server: URL`, then
    /// `ready: SECONDS` and `rss_kib: N`; on SIGTERM/SIGINT stops everything and removes what it
    /// made (processes, mounts, network namespace, iptables rules, cgroups).
    Cluster {
        /// An OCI image archive to import into the node's containerd (see scripts/images.sh);
        /// repeatable. The pause image is always imported.
        #[arg(long = "image", value_name = "FILE")]
        images: Vec<PathBuf>,
    },
    /// Inside a pod: build a kube client from the in-cluster configuration (service-account
    /// token, CA, KUBERNETES_SERVICE_HOST/PORT), read the server version and the pods of the
    /// pod's namespace; print one JSON line; exit 1 on failure.
    InclusterProbe,
    /// A TCP fault proxy in front of UPSTREAM; prints `listen: ADDR`; modes are switched through
    /// the control socket with one-line commands: pass | latency UP_MS DOWN_MS |
    /// blackhole [up|down] | reset | refuse | stats (answered `ok` or with the stats JSON).
    Proxy {
        /// The address to forward to, e.g. 127.0.0.1:6443.
        #[arg(long)]
        upstream: SocketAddr,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Path of the Unix control socket.
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// The cardano-node simulator (SIGHUP reloads credentials, SIGTERM/SIGINT exits).
    Node {
        /// Node name, used in the timeline and log lines.
        #[arg(long)]
        name: String,
        /// The node socket to listen on.
        #[arg(long)]
        socket: PathBuf,
        /// KES signing key file.
        #[arg(long)]
        kes: PathBuf,
        /// VRF signing key file.
        #[arg(long)]
        vrf: PathBuf,
        /// Operational certificate file.
        #[arg(long)]
        opcert: PathBuf,
        /// Timeline file to append events to.
        #[arg(long)]
        timeline: PathBuf,
        /// Start without forging, as cardano-node's flag of that name.
        #[arg(long)]
        start_as_non_producing_node: bool,
        /// Simulated ledger replay time in ms, during which SIGHUP is not effective.
        #[arg(long, default_value_t = 0)]
        replay_ms: u64,
        /// Serve `cardano_node_metrics_forging_enabled` on 127.0.0.1:PORT (0: a free port).
        #[arg(long)]
        metrics_port: Option<u16>,
        /// SIGHUP-to-effect latency of each reload in ms: N, or A..B drawn per reload (reloads
        /// run one at a time, in order; the reconfiguration line is logged just before the effect).
        #[arg(long, value_name = "MS|A..B", default_value = "0")]
        reload_ms: Latency,
        /// Seed for the reload latency draws (default: from the clock; the `start` line shows it).
        #[arg(long)]
        seed: Option<u64>,
        /// Install the SIGHUP handler only this many ms after start; a SIGHUP before kills the
        /// process (the default action, exit by signal). The replay begins after it.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        handler_delay_ms: u64,
        /// After SIGTERM/SIGINT, go on forging this many ms before stopping and exiting.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        stop_grace_ms: u64,
        /// Close the node socket at SIGTERM, before the stop grace, instead of at the exit.
        #[arg(long)]
        close_socket_early: bool,
        /// Listen backlog of the node socket (default 1024); with a small one a stalled node soon
        /// refuses connections.
        #[arg(long, value_name = "N")]
        socket_backlog: Option<u32>,
        /// A Unix control socket taking one-line commands: `stall MS` (hang: no signal handled, no
        /// connection accepted, forging unchanged), `lag MS`, `freeze`, `resume` (the chain tip
        /// on the metrics endpoint), answered `ok`.
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        /// Start with the chain tip this many ms behind the wall clock (`lag MS` later).
        #[arg(long, value_name = "MS", default_value_t = 0)]
        tip_lag_ms: u64,
        /// Listen on this TCP port (all addresses) once consensus has started, as cardano-node's
        /// node-to-node port (a readiness probe's target).
        #[arg(long, value_name = "PORT")]
        listen_port: Option<u16>,
    },
    /// The 3-replica demo: a real API server, three `forge-manager run` sidecars and three node
    /// simulators; shows who forges, hands over gracefully (SIGTERM to the leader's sidecar),
    /// then survives a pod crash, and prints the measured times and the timeline verdict.
    Demo {
        /// Number of replicas.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// Show the sidecars' and nodes' own output.
        #[arg(long)]
        verbose: bool,
        /// Nodes no kinder than cardano-node: reloads take 20..1500 ms, a SIGHUP in a node's
        /// first 150 ms kills it, 4 s lease with a 2 s renew deadline.
        #[arg(long)]
        realistic: bool,
        /// Run each node under the node guard (`forge-manager guard`).
        #[arg(long)]
        guard: bool,
    },
    /// The chaos soak (docs/chaos.md): three pods (or two regions of three) of realistic nodes
    /// under the node guard; faults drawn from SEED, one at a time, for MINUTES; then the
    /// timeline judge: 0 ms of overlap and each gap within its fault's bound. Prints a summary
    /// (seed, faults per kind, overlap, longest gap, verdict); exits 1 on a violation.
    Chaos {
        /// Seed of the fault schedule and the nodes' reload latencies (the same seed draws the
        /// same faults).
        #[arg(long)]
        seed: u64,
        /// How long faults are injected, in minutes (fractions allowed, e.g. 0.5).
        #[arg(long, default_value_t = 2.0)]
        minutes: f64,
        /// 1: three pods in one cluster; 2: two regions (cluster management on), three pods each.
        #[arg(long, default_value_t = 1)]
        regions: usize,
        /// Open with one fault of each of these kinds, in this order (comma-separated names as
        /// the summary prints them, e.g. `sidecar_kill,link_cut`); the soak goes on until all
        /// were injected, past MINUTES if need be.
        #[arg(long, value_delimiter = ',')]
        opening: Vec<String>,
        /// Also print the report as one JSON line (every fault, its bound and its gap).
        #[arg(long)]
        json: bool,
        /// Show the sidecars', guards' and nodes' own output.
        #[arg(long)]
        verbose: bool,
    },
    /// Merge node timelines and print the verdict as JSON
    /// (`{"overlap_ms":..,"max_forgers":..,"max_gap_ms":..,"transitions":..,"forgers":[..],..}`);
    /// fails when no node ever started in them (an empty or lost timeline proves nothing).
    Timeline {
        /// Timeline files (JSON lines).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Judge from this instant (nanoseconds since the Unix epoch; default: the first event,
        /// with gaps counted from the first `forging_on`).
        #[arg(long, value_name = "UNIX_NS")]
        from_ns: Option<u64>,
        /// Judge until this instant (default: the last event).
        #[arg(long, value_name = "UNIX_NS")]
        until_ns: Option<u64>,
    },
}

/// Runs one simulator subcommand to completion.
pub fn run(cmd: SimCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run_async(cmd))
}

/// Prints one line on stdout and flushes it; a reader that went away (EPIPE) is not our failure:
/// the launcher must still run until told to stop, and then clean up.
fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Our error messages already include their cause; `main` prints the whole chain (`{:#}`),
/// so hand it one flat message instead of the message and then its cause again.
fn flat(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Resolves at the first SIGTERM or SIGINT.
async fn terminated() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn run_async(cmd: SimCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SimCommand::Timeline {
            files,
            from_ns,
            until_ns,
        } => {
            let events = timeline::read_files(&files).map_err(flat)?;
            let window = timeline::Window {
                from_unix_ns: from_ns,
                until_unix_ns: until_ns,
            };
            let verdict = timeline::judge_window(&events, window).map_err(flat)?;
            println!("{}", serde_json::to_string(&verdict)?);
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::Apiserver {
            identities,
            dir,
            etcd_compaction_interval,
            apiserver_args,
        } => {
            let stop = terminated().await?;
            let opts = ApiServerOptions {
                identities,
                dir,
                etcd_compaction_interval: etcd_compaction_interval.map(Duration::from_secs),
                extra_args: apiserver_args,
                ..ApiServerOptions::default()
            };
            let mut server = ApiServer::start(opts).await.map_err(flat)?;
            out(&format!("kubeconfig: {}", server.admin_kubeconfig().display()));
            for (id, path) in server.kubeconfigs() {
                if id != crate::apiserver::ADMIN {
                    out(&format!("kubeconfig.{id}: {}", path.display()));
                }
            }
            out(&format!("server: {}", server.url()));
            eprintln!(
                "kube-apiserver ready after {:?}; SIGTERM or Ctrl-C stops it",
                server.startup_time()
            );
            stop.await;
            server.stop();
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::Cluster { images } => {
            let stop = terminated().await?;
            let mut cluster = Cluster::start(ClusterOptions {
                images,
                ..ClusterOptions::default()
            })
            .await
            .map_err(flat)?;
            out(&format!("kubeconfig: {}", cluster.kubeconfig().display()));
            out(&format!("server: {}", cluster.url()));
            out(&format!("ready: {:.1}", cluster.startup_time().as_secs_f64()));
            out(&format!("rss_kib: {}", cluster.rss_kib().1));
            let phases: Vec<String> = cluster
                .phases()
                .iter()
                .map(|(p, t)| format!("{p} {:.1} s", t.as_secs_f64()))
                .collect();
            eprintln!(
                "cluster ready after {:?} ({}; logs in {}); SIGTERM or Ctrl-C stops it",
                cluster.startup_time(),
                phases.join(", "),
                cluster.dir().display()
            );
            stop.await;
            cluster.stop();
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::InclusterProbe => incluster_probe().await,
        SimCommand::Proxy {
            upstream,
            listen,
            control,
        } => {
            let stop = terminated().await?;
            let proxy = FaultProxy::start(upstream, listen).await.map_err(flat)?;
            out(&format!("listen: {}", proxy.local_addr()));
            match control {
                Some(path) => serve_control(&path, proxy.handle(), stop).await.map_err(flat)?,
                None => stop.await,
            }
            proxy.stop().await;
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::Demo {
            replicas,
            verbose,
            realistic,
            guard,
        } => demo(replicas, verbose, realistic, guard).await,
        SimCommand::Chaos {
            seed,
            minutes,
            regions,
            opening,
            json,
            verbose,
        } => {
            if !(minutes.is_finite() && minutes > 0.0) {
                anyhow::bail!("--minutes: {minutes} is not a positive number of minutes");
            }
            let opening = opening
                .iter()
                .map(|name| {
                    crate::chaos::FaultKind::from_name(name.trim()).ok_or_else(|| {
                        anyhow::anyhow!("--opening: {name:?} is not a fault kind (docs/chaos.md lists them)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let report = crate::chaos::run(crate::chaos::ChaosOptions {
                exe: std::env::current_exe().context("locating the forge-manager executable")?,
                seed,
                duration: Duration::from_secs_f64(minutes * 60.0),
                regions,
                opening,
                show_output: verbose,
            })
            .await
            .map_err(flat)?;
            out(&report.summary());
            if json {
                out(&serde_json::to_string(&report)?);
            }
            Ok(match report.passed() {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            })
        }
        SimCommand::Node {
            name,
            socket,
            kes,
            vrf,
            opcert,
            timeline,
            start_as_non_producing_node,
            replay_ms,
            metrics_port,
            reload_ms,
            seed,
            handler_delay_ms,
            stop_grace_ms,
            close_socket_early,
            socket_backlog,
            control,
            tip_lag_ms,
            listen_port,
        } => {
            let handler_delay = Duration::from_millis(handler_delay_ms);
            if !handler_delay.is_zero() && sighup_ignored() {
                anyhow::bail!(
                    "--handler-delay-ms: SIGHUP is ignored in this process (inherited from its parent), \
                     so an early SIGHUP could not kill it; start it with SIGHUP at its default action"
                );
            }
            let seed = seed.unwrap_or_else(|| timeline::unix_now_ns() ^ u64::from(std::process::id()));
            // With no delay the handler is in place before the node exists, as it always was.
            let mut hup = match handler_delay.is_zero() {
                true => Some(signal(SignalKind::hangup()).context("SIGHUP handler")?),
                false => None,
            };
            let stop = terminated().await?;
            let install_at = tokio::time::Instant::now() + handler_delay;
            let node = NodeSim::start_with(
                NodeOptions {
                    name,
                    socket,
                    kes,
                    vrf,
                    opcert,
                    timeline,
                    start_as_non_producing: start_as_non_producing_node,
                    replay: Duration::from_millis(replay_ms),
                    metrics_port,
                    echo_stdout: true,
                },
                NodeBehaviour {
                    reload: reload_ms,
                    seed,
                    handler_delay,
                    stop_grace: Duration::from_millis(stop_grace_ms),
                    close_socket_early,
                    socket_backlog,
                    control,
                    external_handler: true,
                    tip_lag: Duration::from_millis(tip_lag_ms),
                    listen_port,
                },
            )
            .await
            .map_err(flat)?;
            let h = node.handle();
            if hup.is_some() {
                h.handler_installed();
            }
            tokio::pin!(stop);
            loop {
                let installed = hup.is_some();
                let next_hup = async {
                    match hup.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep_until(install_at), if !installed => {}
                    _ = next_hup => {
                        h.sighup();
                        continue;
                    }
                    () = &mut stop => break,
                }
                // Until now the default action of SIGHUP applied: it killed the process.
                hup = Some(signal(SignalKind::hangup()).context("SIGHUP handler")?);
                h.handler_installed();
            }
            node.stop().await.map_err(flat)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether SIGHUP is ignored in this process (`SigIgn` of `/proc/self/status`, bit 0).
fn sighup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|mask| mask & 1 != 0)
}

/// `forge-sim incluster-probe`: what a sidecar in a pod does first, with kube-rs's in-cluster
/// configuration.
async fn incluster_probe() -> anyhow::Result<ExitCode> {
    use k8s_openapi::api::core::v1::Pod;
    let config = kube::Config::incluster().context("in-cluster configuration")?;
    let server = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("kube client")?;
    let version = client.apiserver_version().await.context("GET /version")?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, &namespace);
    let list = pods
        .list(&kube::api::ListParams::default())
        .await
        .with_context(|| format!("listing pods in {namespace}"))?;
    out(&serde_json::json!({
        "server": server,
        "namespace": namespace,
        "version": format!("{}.{}", version.major, version.minor),
        "pods": list.items.len(),
    })
    .to_string());
    Ok(ExitCode::SUCCESS)
}

/// `forge-manager sim demo`: the main job a newcomer runs (README).
async fn demo(replicas: usize, verbose: bool, realistic: bool, guard: bool) -> anyhow::Result<ExitCode> {
    use crate::world::{World, WorldOptions};
    let exe = std::env::current_exe().context("locating the forge-manager executable")?;
    let mut options = if realistic {
        WorldOptions::realistic(exe, replicas.max(2))
    } else {
        WorldOptions::fast(exe, replicas.max(2))
    };
    options.show_output = verbose;
    options.guard = guard;
    out("starting a real kube-apiserver, then per pod a fault proxy, forge-manager and a node simulator...");
    let mut world = World::start(options).await.map_err(flat)?;
    out(&format!(
        "{} pods up after {:.1} s; waiting for the first forger",
        world.pods.len(),
        world.age().as_secs_f64()
    ));
    let (first, took) = world
        .wait_for_single_forger(Duration::from_secs(15), None)
        .await
        .context("nobody forged within 15 s")?;
    out(&format!(
        "  {first} forges ({:.0} ms after the nodes were up); the others stand by",
        took.as_secs_f64() * 1e3
    ));
    let leader = world.index_of(&first).context("leader pod")?;
    out(&format!("graceful handover: SIGTERM to {first}'s sidecar"));
    world.signal_manager(leader, nix::sys::signal::Signal::SIGTERM);
    let (second, took) = world
        .wait_for_single_forger(Duration::from_secs(10), Some(&first))
        .await
        .context("no handover within 10 s")?;
    out(&format!(
        "  {second} forges {:.0} ms later",
        took.as_secs_f64() * 1e3
    ));
    let second_ix = world.index_of(&second).context("pod")?;
    out(&format!("pod crash: SIGKILL to {second}'s sidecar and node"));
    world.signal_manager(second_ix, nix::sys::signal::Signal::SIGKILL);
    world.kill_node(second_ix);
    match world
        .wait_for_single_forger(Duration::from_secs(15), Some(&second))
        .await
    {
        Some((third, took)) => out(&format!(
            "  {third} forges {:.0} ms later (after the lease expired)",
            took.as_secs_f64() * 1e3
        )),
        None if replicas < 3 => out("  no pod left to take over (use 3 or more replicas)"),
        None => out("  nobody took over within 15 s"),
    }
    let verdict = world.verdict();
    out(&format!("timeline verdict: {}", serde_json::to_string(&verdict)?));
    world.stop();
    Ok(if verdict.overlap_ms == 0.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
