//! `forge-manager sim ...` (and the `forge-sim` test binary): the test world from a shell
//! (DESIGN.md section 13). Each subcommand runs until done or until SIGTERM/SIGINT, then cleans up
//! every process and file it made.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use tokio::signal::unix::{SignalKind, signal};

use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::node::{NodeOptions, NodeSim};
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
    /// A TCP fault proxy in front of UPSTREAM; prints `listen: ADDR`; modes are switched through
    /// the control socket with one-line commands: pass | latency UP_MS DOWN_MS | blackhole |
    /// reset | refuse | stats (answered `ok` or with the stats JSON).
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
    },
    /// Merge node timelines and print `{"overlap_ms":..,"max_gap_ms":..,"transitions":..,"forgers":[..]}`.
    Timeline {
        /// Timeline files (JSON lines).
        #[arg(required = true)]
        files: Vec<PathBuf>,
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
        SimCommand::Timeline { files } => {
            let events = timeline::read_files(&files).map_err(flat)?;
            println!("{}", serde_json::to_string(&timeline::judge(&events))?);
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
        } => {
            let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
            let stop = terminated().await?;
            let node = NodeSim::start(NodeOptions {
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
            })
            .await
            .map_err(flat)?;
            let h = node.handle();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = hup.recv() => h.sighup(),
                    () = &mut stop => break,
                }
            }
            node.stop().await.map_err(flat)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
