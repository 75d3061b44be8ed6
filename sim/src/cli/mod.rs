//! `forge-manager sim ...` (and the `forge-sim` test binary): the test world from a shell
//! (docs/architecture.md, "Test world"). Each subcommand runs until done or until SIGTERM/SIGINT,
//! then cleans up every process and file it made.
//!
//! The subcommands and their flags are in `command`; here each one runs.

mod command;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::cluster::{Cluster, ClusterOptions};
use crate::node::{NodeBehaviour, NodeOptions, NodeSim};
use crate::proxy::{FaultProxy, serve_control};
use crate::timeline;

pub use command::SimCommand;

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
            reload_order,
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
                    reload_order,
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
