//! A whole single-cluster world on one machine: a real kube-apiserver, and per simulated pod a
//! fault proxy, a `forge-manager run` process and a cardano-node simulator process, each pod
//! with its own credential directories, socket and timeline. Used by the scenario tests and by
//! `forge-manager sim demo`; the merged timelines judge who forged when.
//!
//! Processes are started tied to the caller (they die with it) and stopped by [`World::stop`]
//! or `Drop`. Everything listens on 127.0.0.1 with free ports.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use forge_core::crd::definitions;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, api::PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    apiserver::{ApiServer, ApiServerOptions, free_ports},
    creds::write_test_credentials,
    node::{Latency, NodeBehaviour},
    process::{is_alive, spawn_tied, terminate, tied_command},
    proxy::FaultProxy,
    timeline::{
        EventKind, JudgeError, ProcessId, TimelineError, TimelineEvent, TimelineWriter, Verdict, Window,
        forging_at_end, judge_window, read_files_live, unix_now_ns,
    },
};

/// What to build.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// The `forge-manager` executable (it is also the node simulator: `sim node`).
    pub exe: PathBuf,
    /// Number of pods.
    pub replicas: usize,
    /// `LEASE_DURATION` (whole seconds).
    pub lease_duration_s: u64,
    /// `RENEW_DEADLINE`.
    pub renew_deadline: Duration,
    /// `RETRY_PERIOD`.
    pub retry_period: Duration,
    /// `API_TIMEOUT`.
    pub api_timeout: Duration,
    /// The node simulator's ledger replay.
    pub replay: Duration,
    /// More environment for every manager.
    pub extra_env: Vec<(String, String)>,
    /// Where manager and node output goes (inherit for a demo, files for tests).
    pub show_output: bool,
    /// Run each node under the node guard (`forge-manager guard -- forge-manager sim node ...`,
    /// docs/guard.md); the manager then finds the guard at [`Pod::guard_socket`].
    pub guard: bool,
    /// The sidecar sees no processes, as in the shipped guard layout (sidecar and node in
    /// their own containers, no shared process namespace): each manager runs in its own mount
    /// namespace with an empty `/proc`, so it knows its node only through the guard. Needs
    /// root (`unshare --mount`).
    pub sidecar_sees_no_processes: bool,
    /// Pod names are `{pod_prefix}-{i}` (distinct prefixes keep merged timelines of several
    /// worlds, one per region, apart).
    pub pod_prefix: String,
    /// Give each node simulator a metrics port (`--metrics-port`, a free port, serving
    /// `cardano_node_metrics_forging_enabled`), at [`Pod::node_metrics`].
    pub node_metrics: bool,
    /// How every node behaves (reload latency, handler delay, stop grace, early socket close,
    /// listen backlog; see [`NodeBehaviour`]); the default is the simple, instant node.
    /// `control` and `external_handler` are set by the world itself.
    pub node: NodeBehaviour,
    /// Per pod index, a behaviour that replaces [`WorldOptions::node`] for that pod's node.
    pub node_overrides: BTreeMap<usize, NodeBehaviour>,
    /// Seed of the nodes' latency draws: pod `i`'s `n`-th node start gets `seed + 1000 i + n`
    /// (unless its behaviour sets a non-zero seed). Default: `FORGE_SIM_SEED`, else the clock;
    /// printed at start so a run can be replayed.
    pub seed: u64,
}

/// The reload latency range of [`WorldOptions::realistic`] nodes, in milliseconds: tens of
/// milliseconds on an idle cardano-node, seconds on a loaded one.
pub const REALISTIC_RELOAD_MS: (u64, u64) = (20, 1500);

impl WorldOptions {
    /// Short timings (3 s / 2 s / 0.5 s) suitable for tests.
    pub fn fast(exe: PathBuf, replicas: usize) -> Self {
        Self {
            exe,
            replicas,
            lease_duration_s: 3,
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
            api_timeout: Duration::from_millis(500),
            replay: Duration::from_millis(300),
            extra_env: Vec::new(),
            show_output: false,
            guard: false,
            sidecar_sees_no_processes: false,
            pod_prefix: "pod".into(),
            node_metrics: false,
            node: NodeBehaviour::default(),
            node_overrides: BTreeMap::new(),
            seed: std::env::var("FORGE_SIM_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| unix_now_ns() % 1_000_000_007),
        }
    }

    /// [`WorldOptions::fast`] with nodes no kinder than cardano-node: every reload takes
    /// 20..1500 ms (drawn per reload, applied in order), a SIGHUP in the node's first 150 ms
    /// kills it, and the lease leaves the margin such a node needs without the guard (4 s
    /// lease, 2 s renew deadline: a leader that stops at its deadline has stopped, even after
    /// its slowest reload, before any other pod can see its lease expire).
    pub fn realistic(exe: PathBuf, replicas: usize) -> Self {
        Self {
            lease_duration_s: 4,
            node: NodeBehaviour {
                reload: Latency::range_ms(REALISTIC_RELOAD_MS.0, REALISTIC_RELOAD_MS.1),
                handler_delay: Duration::from_millis(150),
                ..NodeBehaviour::default()
            },
            ..Self::fast(exe, replicas)
        }
    }

    /// The nodes of a scenario: [`WorldOptions::realistic`], or [`WorldOptions::fast`] (instant
    /// reloads) when `FORGE_SCENARIO_NODES=instant`, to measure what realistic reloads cost
    /// against instant ones on the same scenario.
    pub fn scenario(exe: PathBuf, replicas: usize) -> Self {
        match std::env::var("FORGE_SCENARIO_NODES").as_deref() {
            Ok("instant") => Self::fast(exe, replicas),
            _ => Self::realistic(exe, replicas),
        }
    }

    /// Sets pod `i`'s node behaviour (before the world starts).
    pub fn with_node(mut self, i: usize, behaviour: NodeBehaviour) -> Self {
        self.node_overrides.insert(i, behaviour);
        self
    }
}

/// One simulated pod.
pub struct Pod {
    /// Its name (POD_NAME, the Lease identity).
    pub name: String,
    /// Its own fault proxy in front of the API server.
    pub proxy: FaultProxy,
    /// The manager process (None after it was killed).
    pub manager: Option<Child>,
    /// The node simulator process (None after it was killed).
    pub node: Option<Child>,
    /// The manager's HTTP address.
    pub http: SocketAddr,
    /// Working directory (secrets, targets, socket, logs).
    pub dir: PathBuf,
    /// The node's timeline.
    pub timeline: PathBuf,
    /// The node simulator's metrics address (with [`WorldOptions::node_metrics`]; the same
    /// port across node restarts).
    pub node_metrics: Option<SocketAddr>,
    /// How many times its node was started.
    pub node_starts: u64,
    /// Whether [`World::set_target_read_only`] made its target directory read-only.
    pub target_read_only: bool,
}

impl Pod {
    /// The node socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("node.socket")
    }
    /// The source credential directory (the Secret mount).
    pub fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }
    /// The target credential directory (what the node reads).
    pub fn target(&self) -> PathBuf {
        self.dir.join("target")
    }
    /// The node guard's socket (`GUARD_SOCKET`; it exists only with [`WorldOptions::guard`]).
    pub fn guard_socket(&self) -> PathBuf {
        self.dir.join("guard.sock")
    }
    /// The node simulator's control socket (`stall MS`).
    pub fn node_control(&self) -> PathBuf {
        self.dir.join("node.control")
    }
    /// The node's output (and, with the guard, the guard's log lines).
    pub fn node_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

/// Errors building or driving the world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Starting the API server failed.
    #[error("API server: {0}")]
    ApiServer(#[from] crate::apiserver::ApiServerError),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> WorldError {
    WorldError::Other(e.to_string())
}

/// One observed state of a Lease (from the world's watch): from `acquire_unix_ns` (the
/// writer's own `acquireTime`) on, `holder` holds it ("" when released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The Lease's name.
    pub lease: String,
    /// Its holder ("" when vacant).
    pub holder: String,
    /// Its `acquireTime`, nanoseconds since the Unix epoch.
    pub acquire_unix_ns: u64,
    /// When the world saw it.
    pub observed_unix_ns: u64,
}

type LeaseLog = std::sync::Arc<std::sync::Mutex<Vec<LeaseRecord>>>;

/// The running world.
pub struct World {
    /// The real API server.
    pub apiserver: ApiServer,
    /// The pods, in order `pod-0`, `pod-1`, ...
    pub pods: Vec<Pod>,
    options: WorldOptions,
    /// Removed on drop unless `FORGE_KEEP_WORLD=1` (then its path is printed, for debugging).
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    started: Instant,
    leases: LeaseLog,
    lease_watch: Option<tokio::task::JoinHandle<()>>,
}

impl World {
    /// Starts the API server, installs the CRDs, then each pod's proxy, manager and node.
    pub async fn start(options: WorldOptions) -> Result<World, WorldError> {
        let mut world = World::prepare(options).await?;
        world.populate().await?;
        Ok(world)
    }

    /// The options (change them between [`World::prepare`] and [`World::populate`], e.g. to
    /// point `PEER_CLUSTERS` at other worlds' API servers).
    pub fn options_mut(&mut self) -> &mut WorldOptions {
        &mut self.options
    }

    fn pod_names(options: &WorldOptions) -> Vec<String> {
        (0..options.replicas)
            .map(|i| format!("{}-{i}", options.pod_prefix))
            .collect()
    }

    /// Starts the API server and installs the CRDs, with no pods yet (see [`World::populate`]).
    pub async fn prepare(options: WorldOptions) -> Result<World, WorldError> {
        let names = World::pod_names(&options);
        let apiserver = ApiServer::start(ApiServerOptions::with_identities(names.clone())).await?;
        install_crds(&apiserver).await?;
        let leases = LeaseLog::default();
        let lease_watch = tokio::spawn(watch_leases(apiserver.client("admin").await?, leases.clone()));
        let dir = tempfile::Builder::new()
            .prefix("forge-world-")
            .tempdir()
            .map_err(other)?;
        let dir_path = dir.path().to_path_buf();
        if options.node != NodeBehaviour::default() || !options.node_overrides.is_empty() {
            eprintln!(
                "forge-sim world: node latency seed {} (FORGE_SIM_SEED={} replays the draws)",
                options.seed, options.seed
            );
        }
        let dir = if std::env::var("FORGE_KEEP_WORLD").as_deref() == Ok("1") {
            eprintln!("forge-sim world kept at {}", dir.keep().display());
            None
        } else {
            Some(dir)
        };
        Ok(World {
            apiserver,
            pods: Vec::new(),
            options,
            dir,
            dir_path,
            started: Instant::now(),
            leases,
            lease_watch: Some(lease_watch),
        })
    }

    /// Starts each pod's proxy, manager and node.
    pub async fn populate(&mut self) -> Result<(), WorldError> {
        let names = World::pod_names(&self.options);
        let ports = free_ports(names.len())?;
        for (name, port) in names.into_iter().zip(ports) {
            let pod = self.start_pod(&name, port).await?;
            self.pods.push(pod);
        }
        for i in 0..self.pods.len() {
            self.start_node(i).await?;
        }
        Ok(())
    }

    async fn start_pod(&self, name: &str, port: u16) -> Result<Pod, WorldError> {
        let dir = self.dir_path.join(name);
        for sub in ["secrets", "target"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(other)?;
        }
        write_test_credentials(&dir.join("secrets"), 1, 0).map_err(other)?;
        let proxy = FaultProxy::start_local(self.apiserver.addr())
            .await
            .map_err(other)?;
        let kubeconfig = self.apiserver.kubeconfig_via(name, proxy.local_addr())?;
        let mut pod = Pod {
            name: name.to_string(),
            proxy,
            manager: None,
            node: None,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            timeline: dir.join("timeline.jsonl"),
            dir,
            node_metrics: match self.options.node_metrics {
                true => Some(SocketAddr::from(([127, 0, 0, 1], free_ports(1)?[0]))),
                false => None,
            },
            node_starts: 0,
            target_read_only: false,
        };
        pod.manager = Some(self.spawn_manager(&pod, &kubeconfig)?);
        // The native sidecar's startupProbe: the node starts once the manager has provided
        // the boot credentials.
        wait_for(Duration::from_secs(20), || async {
            http_get(pod.http, "/startup-status")
                .await
                .map(|(code, _)| code == 200)
                .unwrap_or(false)
        })
        .await
        .map_err(|_| {
            other(format!(
                "{name}: manager not started up within 20 s (see {})",
                pod.dir.display()
            ))
        })?;
        Ok(pod)
    }

    fn spawn_manager(&self, pod: &Pod, kubeconfig: &Path) -> Result<Child, WorldError> {
        let o = &self.options;
        let s = pod.secrets();
        let t = pod.target();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut cmd = if o.sidecar_sees_no_processes {
            // setpriv, unshare and sh all exec: the child's PID is the manager's.
            let mut c = tied_command(Path::new("unshare"));
            c.args([
                "--mount",
                "--",
                "sh",
                "-c",
                r#"mount -t tmpfs none /proc && exec "$0" "$@""#,
            ])
            .arg(&o.exe);
            c
        } else {
            tied_command(&o.exe)
        };
        cmd.arg("run").env_clear().envs([
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("NAMESPACE", "default".into()),
            ("POD_NAME", pod.name.clone()),
            ("LEASE_DURATION", o.lease_duration_s.to_string()),
            ("RENEW_DEADLINE", ms(o.renew_deadline)),
            ("RETRY_PERIOD", ms(o.retry_period)),
            ("API_TIMEOUT", ms(o.api_timeout)),
            ("SHUTDOWN_TIMEOUT", "5".into()),
            ("METRICS_PORT", pod.http.port().to_string()),
            ("NODE_SOCKET", pod.socket().display().to_string()),
            ("GUARD_SOCKET", pod.guard_socket().display().to_string()),
            ("NODE_STARTS_NON_PRODUCING", "true".into()),
            ("SOCKET_WAIT_TIMEOUT", "60".into()),
            ("SOURCE_KES_KEY", s.join("kes.skey").display().to_string()),
            ("SOURCE_VRF_KEY", s.join("vrf.skey").display().to_string()),
            ("SOURCE_OP_CERT", s.join("node.cert").display().to_string()),
            ("TARGET_KES_KEY", t.join("kes.skey").display().to_string()),
            ("TARGET_VRF_KEY", t.join("vrf.skey").display().to_string()),
            ("TARGET_OP_CERT", t.join("node.cert").display().to_string()),
            ("LOG_LEVEL", "INFO".into()),
            ("RUST_BACKTRACE", "1".into()),
        ]);
        // The manager reads its own node's tip when the node serves metrics.
        if let Some(m) = pod.node_metrics {
            cmd.env("NODE_METRICS_URL", format!("http://{m}/metrics"));
        }
        cmd.envs(o.extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.output(&mut cmd, &pod.dir.join("manager.log"))?;
        spawn_tied(cmd).map_err(|e| other(format!("spawning {}: {e}", o.exe.display())))
    }

    fn output(&self, cmd: &mut std::process::Command, log: &Path) -> Result<(), WorldError> {
        if !self.options.show_output {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(other)?;
            cmd.stdout(file.try_clone().map_err(other)?).stderr(file);
        }
        cmd.stdin(Stdio::null());
        Ok(())
    }

    /// The behaviour pod `i`'s node is started with.
    pub fn node_behaviour(&self, i: usize) -> &NodeBehaviour {
        self.options.node_overrides.get(&i).unwrap_or(&self.options.node)
    }

    /// Changes pod `i`'s node behaviour for its next start ([`World::start_node`]).
    pub fn set_node_behaviour(&mut self, i: usize, behaviour: NodeBehaviour) {
        self.options.node_overrides.insert(i, behaviour);
    }

    /// Starts (or restarts) pod `i`'s node simulator, non-producing, and waits for its socket.
    /// Refuses while its previous node (or guard) still runs: two nodes of one pod would hide
    /// each other.
    pub async fn start_node(&mut self, i: usize) -> Result<(), WorldError> {
        if let Some(child) = self.pods[i].node.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(other(format!(
                "{}: its node is still running (kill_node first)",
                self.pods[i].name
            )));
        }
        let b = self.node_behaviour(i).clone();
        let seed = match b.seed {
            0 => self.options.seed + 1000 * i as u64 + self.pods[i].node_starts,
            s => s,
        };
        self.pods[i].node_starts += 1;
        let pod = &self.pods[i];
        let t = pod.target();
        let mut cmd = tied_command(&self.options.exe);
        if self.options.guard {
            cmd.arg("guard")
                .arg("--socket")
                .arg(pod.guard_socket())
                .arg("--targets")
                .arg(format!(
                    "{},{},{}",
                    t.join("kes.skey").display(),
                    t.join("vrf.skey").display(),
                    t.join("node.cert").display()
                ))
                .arg("--")
                .arg(&self.options.exe);
        }
        cmd.args([
            "sim",
            "node",
            "--name",
            &pod.name,
            "--start-as-non-producing-node",
        ])
        .arg("--socket")
        .arg(pod.socket())
        .arg("--kes")
        .arg(t.join("kes.skey"))
        .arg("--vrf")
        .arg(t.join("vrf.skey"))
        .arg("--opcert")
        .arg(t.join("node.cert"))
        .arg("--timeline")
        .arg(&pod.timeline)
        .arg("--replay-ms")
        .arg(self.options.replay.as_millis().to_string())
        .arg("--control")
        .arg(pod.node_control())
        .arg("--seed")
        .arg(seed.to_string());
        if !b.reload.is_zero() {
            cmd.arg("--reload-ms").arg(b.reload.to_string());
        }
        if !b.handler_delay.is_zero() {
            cmd.arg("--handler-delay-ms")
                .arg(b.handler_delay.as_millis().to_string());
        }
        if !b.stop_grace.is_zero() {
            cmd.arg("--stop-grace-ms")
                .arg(b.stop_grace.as_millis().to_string());
        }
        if b.close_socket_early {
            cmd.arg("--close-socket-early");
        }
        if let Some(n) = b.socket_backlog {
            cmd.arg("--socket-backlog").arg(n.to_string());
        }
        if !b.tip_lag.is_zero() {
            cmd.arg("--tip-lag-ms").arg(b.tip_lag.as_millis().to_string());
        }
        if let Some(m) = pod.node_metrics {
            cmd.arg("--metrics-port").arg(m.port().to_string());
        }
        self.output(&mut cmd, &pod.dir.join("node.log"))?;
        let child = spawn_tied(cmd).map_err(other)?;
        let socket = pod.socket();
        let guard = self.options.guard.then(|| pod.guard_socket());
        self.pods[i].node = Some(child);
        wait_for(Duration::from_secs(10), || {
            let (socket, guard) = (socket.clone(), guard.clone());
            async move {
                tokio::net::UnixStream::connect(&socket).await.is_ok()
                    && match guard {
                        Some(g) => tokio::net::UnixStream::connect(&g).await.is_ok(),
                        None => true,
                    }
            }
        })
        .await
        .map(|_| ())
        .map_err(|_| {
            other(format!(
                "{}: node socket not accepting within 10 s",
                self.pods[i].name
            ))
        })
    }

    /// Sends `signal` to pod `i`'s manager (SIGTERM for a graceful stop, SIGKILL for a crash).
    pub fn signal_manager(&mut self, i: usize, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.pods[i].manager {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// Waits (bounded) for pod `i`'s manager to exit; returns its exit code.
    pub async fn wait_manager_exit(&mut self, i: usize, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.pods[i].manager.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.pods[i].manager = None;
                return status.code().or(Some(-1));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Kills pod `i`'s node simulator (SIGKILL: no clean exit; with the guard, the guard is
    /// killed and takes its node along). A killed node writes nothing, so its death is appended
    /// to its timeline here, with its process identity, once it is gone: it forges no more.
    /// If the node outlives its killed guard (no PDEATHSIG), nothing is written and the judge
    /// counts it as forging on.
    pub fn kill_node(&mut self, i: usize) {
        let node = self.node_process(i);
        if let Some(mut child) = self.pods[i].node.take() {
            let _ = child.kill();
            let _ = child.wait();
            let pod = &self.pods[i];
            let gone = match &node {
                Some(p) if p.pid != 0 => {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while is_alive(p.pid) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    !is_alive(p.pid)
                }
                _ => true,
            };
            if !gone {
                eprintln!(
                    "{}: its node outlived the kill; its death is not recorded",
                    pod.name
                );
                return;
            }
            let event = match &node {
                Some(p) => TimelineEvent::now_for(p, EventKind::Exit, "killed (SIGKILL)"),
                None => TimelineEvent::now(&pod.name, EventKind::Exit, "killed (SIGKILL)"),
            };
            if let Err(e) = TimelineWriter::open(&pod.timeline).and_then(|mut w| w.append(&event)) {
                eprintln!("{}: cannot record the kill in the timeline: {e}", pod.name);
            }
        }
    }

    /// Pod `i`'s latest node process, from its timeline (the last `start` line).
    pub fn node_process(&self, i: usize) -> Option<ProcessId> {
        let events = read_files_live(&[&self.pods[i].timeline]).ok()?;
        events
            .iter()
            .filter(|e| e.event == EventKind::Start && e.node == self.pods[i].name)
            .max_by_key(|e| e.t_unix_ns)
            .map(TimelineEvent::process)
    }

    /// Sends `signal` to pod `i`'s node process itself (found through its timeline, so it works
    /// under the guard too).
    pub fn signal_node(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<(), WorldError> {
        let p = self
            .node_process(i)
            .filter(|p| p.pid != 0)
            .ok_or_else(|| other(format!("{}: no node process in its timeline", self.pods[i].name)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), signal).map_err(|e| {
            other(format!(
                "{}: signalling node PID {}: {e}",
                self.pods[i].name, p.pid
            ))
        })
    }

    /// Sends `signal` to pod `i`'s node guard (SIGSTOP/SIGCONT to stall it while its node runs
    /// on). Only in a world with [`WorldOptions::guard`].
    pub fn signal_guard(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<(), WorldError> {
        if !self.options.guard {
            return Err(other(
                "signal_guard: this world runs no guards (WorldOptions::guard)",
            ));
        }
        let child = self.pods[i]
            .node
            .as_ref()
            .ok_or_else(|| other(format!("{}: its guard is not running", self.pods[i].name)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .map_err(|e| other(format!("{}: signalling its guard: {e}", self.pods[i].name)))
    }

    /// Hangs pod `i`'s node for `d` (its control socket: no signal handled, no connection
    /// accepted, forging unchanged; see [`NodeBehaviour::socket_backlog`] to make connections
    /// fail soon).
    pub async fn stall_node(&self, i: usize, d: Duration) -> Result<(), WorldError> {
        self.node_command(i, &format!("stall {}", d.as_millis())).await
    }

    /// Moves pod `i`'s node's chain tip (served on its metrics endpoint,
    /// [`WorldOptions::node_metrics`]): `lag MS` (runs that far behind), `freeze` (stops, so it
    /// falls further behind), `resume` (in sync again).
    pub async fn node_tip(&self, i: usize, command: &str) -> Result<(), WorldError> {
        self.node_command(i, command).await
    }

    /// Sends one line to pod `i`'s node control socket and expects `ok`.
    async fn node_command(&self, i: usize, line: &str) -> Result<(), WorldError> {
        let path = self.pods[i].node_control();
        let fut = async {
            let mut s = tokio::net::UnixStream::connect(&path).await?;
            s.write_all(format!("{line}\n").as_bytes()).await?;
            let mut answer = Vec::new();
            let mut buf = [0u8; 64];
            while !answer.contains(&b'\n') {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).trim().to_owned())
        };
        match tokio::time::timeout(Duration::from_secs(2), fut).await {
            Ok(Ok(a)) if a == "ok" => Ok(()),
            Ok(Ok(a)) => Err(other(format!("{}: {line:?} refused: {a}", self.pods[i].name))),
            Ok(Err(e)) => Err(other(format!("{}: {}: {e}", self.pods[i].name, path.display()))),
            Err(_) => Err(other(format!(
                "{}: no answer on {}",
                self.pods[i].name,
                path.display()
            ))),
        }
    }

    /// Makes pod `i`'s target credential directory read-only (or writable again): no file can
    /// be created, renamed or removed in it. Modes do not stop root, so as root the directory
    /// is also made immutable (`chattr +i`). Checked: fails if the directory stays writable.
    pub fn set_target_read_only(&mut self, i: usize, read_only: bool) -> Result<(), WorldError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.pods[i].target();
        let root = rustix::process::geteuid().is_root();
        let chattr = |flag: &str| -> Result<(), WorldError> {
            let out = std::process::Command::new("chattr")
                .arg(flag)
                .arg(&dir)
                .output()
                .map_err(|e| other(format!("chattr {flag} {}: {e}", dir.display())))?;
            if !out.status.success() {
                return Err(other(format!(
                    "chattr {flag} {}: {} (the file system must support the immutable flag)",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(())
        };
        if read_only {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).map_err(other)?;
            self.pods[i].target_read_only = true;
            if root {
                chattr("+i")?;
            }
            let probe = dir.join(".forge-sim-write-probe");
            if std::fs::write(&probe, b"").is_ok() {
                let _ = std::fs::remove_file(&probe);
                return Err(other(format!("{} is still writable", dir.display())));
            }
        } else {
            if root {
                chattr("-i")?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(other)?;
            self.pods[i].target_read_only = false;
        }
        Ok(())
    }

    /// Starts pod `i`'s manager again (after it exited or was killed; see
    /// [`World::restart_manager`]) and waits until it answers HTTP.
    pub async fn start_manager(&mut self, i: usize) -> Result<(), WorldError> {
        if let Some(child) = self.pods[i].manager.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(other(format!(
                "{}: its manager is still running",
                self.pods[i].name
            )));
        }
        let pod = &self.pods[i];
        let kubeconfig = self.apiserver.kubeconfig_via(&pod.name, pod.proxy.local_addr())?;
        let child = self.spawn_manager(pod, &kubeconfig)?;
        self.pods[i].manager = Some(child);
        let http = self.pods[i].http;
        wait_for(Duration::from_secs(20), || async {
            http_get(http, "/status").await.is_ok()
        })
        .await
        .map(|_| ())
        .map_err(|_| {
            other(format!(
                "{}: manager not answering within 20 s",
                self.pods[i].name
            ))
        })
    }

    /// Restarts only pod `i`'s manager: `signal` (SIGTERM for a graceful stop, SIGKILL for a
    /// crash), waits up to 10 s for it to exit (then SIGKILL), and starts a new one.
    pub async fn restart_manager(
        &mut self,
        i: usize,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), WorldError> {
        self.signal_manager(i, signal);
        if self.pods[i].manager.is_some()
            && self.wait_manager_exit(i, Duration::from_secs(10)).await.is_none()
            && let Some(mut m) = self.pods[i].manager.take()
        {
            let _ = m.kill();
            let _ = m.wait();
        }
        self.start_manager(i).await
    }

    /// Pod `i`'s `/status` document.
    pub async fn status(&self, i: usize) -> Option<serde_json::Value> {
        let (code, body) = http_get(self.pods[i].http, "/status").await.ok()?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// Pod `i`'s `/metrics` text.
    pub async fn metrics(&self, i: usize) -> Option<String> {
        http_get(self.pods[i].http, "/metrics").await.ok().map(|(_, b)| b)
    }

    /// The API server's own `/metrics` text (as admin).
    pub async fn apiserver_metrics(&self) -> Result<String, WorldError> {
        let client = self.apiserver.client("admin").await?;
        let request = http::Request::get("/metrics").body(Vec::new()).map_err(other)?;
        client.request_text(request).await.map_err(other)
    }

    /// Resident memory of pod `i`'s manager, in KiB.
    pub fn manager_rss_kib(&self, i: usize) -> Option<u64> {
        self.pods[i]
            .manager
            .as_ref()
            .and_then(|m| crate::process::rss_kib(m.id()))
    }

    /// All timeline events so far, merged, or why they cannot be read. A pod whose node was
    /// started must have a timeline.
    pub fn try_events(&self) -> Result<Vec<TimelineEvent>, TimelineError> {
        let files: Vec<&PathBuf> = self
            .pods
            .iter()
            .filter(|p| p.node_starts > 0 || p.timeline.exists())
            .map(|p| &p.timeline)
            .collect();
        read_files_live(&files)
    }

    /// All timeline events so far, merged.
    ///
    /// # Panics
    ///
    /// When a timeline cannot be read: lost evidence must fail the test, not read as "nothing
    /// happened".
    pub fn events(&self) -> Vec<TimelineEvent> {
        self.try_events()
            .unwrap_or_else(|e| panic!("the node timelines cannot be read: {e}"))
    }

    /// The judge's verdict on all timelines, up to now (see [`crate::timeline`]).
    ///
    /// # Panics
    ///
    /// When the timelines cannot be read or no node ever started in them.
    pub fn verdict(&self) -> Verdict {
        self.try_verdict(Window::until_now())
            .unwrap_or_else(|e| panic!("no verdict: {e}"))
    }

    /// The verdict on `[from_unix_ns, now]`: e.g. `max_gap_ms` (L1) and `forging_ms` (who
    /// forged) from a fault on.
    ///
    /// # Panics
    ///
    /// As [`World::verdict`].
    pub fn verdict_since(&self, from_unix_ns: u64) -> Verdict {
        self.try_verdict(Window::since(from_unix_ns))
            .unwrap_or_else(|e| panic!("no verdict: {e}"))
    }

    /// The verdict on `window`, or why there is none.
    pub fn try_verdict(&self, window: Window) -> Result<Verdict, WorldError> {
        let events = self.try_events().map_err(other)?;
        judge_window(&events, window).map_err(|e: JudgeError| other(e))
    }

    /// Every Lease state the world saw so far, in the order seen.
    pub fn lease_history(&self) -> Vec<LeaseRecord> {
        self.leases.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The `forging_on` lines of nodes whose pod did not hold a Lease at that instant (per the
    /// Leases' own `acquireTime`s as the world saw them): a node forging without a lease, even
    /// when no overlap happened to follow. Empty when all is well.
    pub fn forging_without_lease(&self) -> Vec<TimelineEvent> {
        forging_without_lease(&self.events(), &self.lease_history())
    }

    /// Which nodes forge now, per their timelines: one entry per forging process (a name can
    /// appear twice).
    pub fn forging_now(&self) -> Vec<String> {
        forging_at_end(&self.events())
    }

    /// Waits (bounded) until exactly one node forges and, if `not` is given, it is not that one.
    /// Returns the forger and the time waited.
    pub async fn wait_for_single_forger(
        &self,
        within: Duration,
        not: Option<&str>,
    ) -> Option<(String, Duration)> {
        let started = Instant::now();
        while started.elapsed() < within {
            let now = self.forging_now();
            if now.len() == 1 && Some(now[0].as_str()) != not {
                return Some((now[0].clone(), started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Index of a pod by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// How long the world has run.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// A pod's manager log (for failure messages).
    pub fn manager_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.pods[i].dir.join("manager.log")).unwrap_or_default()
    }

    /// Stops every manager (SIGTERM, then SIGKILL after a grace), node and the API server, and
    /// removes the world's files.
    pub fn stop(&mut self) {
        self.stop_processes();
        drop(self.dir.take());
    }

    /// [`World::stop_judged`] for a scenario test: panics unless the whole run, the shutdown
    /// included, had no overlap, never two forgers at one instant, and nobody forging at the
    /// end (as Kubernetes deletes pods: SIGTERM to each sidecar in turn, each handing over).
    pub fn assert_clean_shutdown(&mut self) {
        let v = self
            .stop_judged()
            .unwrap_or_else(|e| panic!("no verdict after the shutdown: {e}"));
        eprintln!("shutdown: verdict {v:?}");
        assert_eq!(
            v.overlap_ms, 0.0,
            "two nodes forged at once (shutdown included): {v:?}"
        );
        assert!(
            v.max_forgers <= 1,
            "two forgers at one instant (shutdown included): {v:?}"
        );
        assert!(
            v.forging_at_end.is_empty(),
            "a node forges after the shutdown: {v:?}"
        );
    }

    /// Stops everything as [`World::stop`] does and judges the whole run, the shutdown
    /// included (every sidecar gets SIGTERM in turn and hands over, then the nodes stop): the
    /// verdict over all timelines until now, or why there is none.
    pub fn stop_judged(&mut self) -> Result<Verdict, WorldError> {
        self.stop_processes();
        let verdict = self.try_verdict(Window::until_now());
        self.stop();
        verdict
    }

    /// As [`World::stop`], but keeps the files: the timelines can still be read, so the
    /// shutdown itself can be judged.
    pub fn stop_processes(&mut self) {
        if let Some(t) = self.lease_watch.take() {
            t.abort();
        }
        for i in 0..self.pods.len() {
            if self.pods[i].target_read_only
                && let Err(e) = self.set_target_read_only(i, false)
            {
                eprintln!("{}: {e}", self.pods[i].name);
            }
        }
        for pod in &mut self.pods {
            if let Some(mut m) = pod.manager.take() {
                terminate(&mut m, Duration::from_secs(6));
            }
            if let Some(mut n) = pod.node.take() {
                terminate(&mut n, Duration::from_secs(2));
            }
        }
        self.apiserver.stop();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Records every Lease state in the namespace `default` until aborted.
async fn watch_leases(client: kube::Client, log: LeaseLog) {
    use futures::StreamExt;
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::watcher::{Config, Event, watcher};
    let api: Api<Lease> = Api::namespaced(client, "default");
    let mut stream = std::pin::pin!(watcher(api, Config::default()).default_backoff());
    while let Some(event) = stream.next().await {
        let lease = match event {
            Ok(Event::Apply(l) | Event::InitApply(l)) => l,
            _ => continue,
        };
        let spec = lease.spec.unwrap_or_default();
        let Some(acquired) = spec.acquire_time else {
            continue;
        };
        let record = LeaseRecord {
            lease: lease.metadata.name.unwrap_or_default(),
            holder: spec.holder_identity.unwrap_or_default(),
            acquire_unix_ns: u64::try_from(acquired.0.as_nanosecond()).unwrap_or(0),
            observed_unix_ns: unix_now_ns(),
        };
        if let Ok(mut l) = log.lock()
            && l.last() != Some(&record)
        {
            l.push(record);
        }
    }
}

/// The `forging_on` events whose node was not the holder of any Lease at that instant: each
/// Lease's holder holds it from its `acquireTime` until the next holder's (or a release's). A
/// holder identity `POD_UID`-suffixed (`pod-0_UID`) is its pod's.
pub fn forging_without_lease(events: &[TimelineEvent], leases: &[LeaseRecord]) -> Vec<TimelineEvent> {
    let mut by_lease: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for r in leases {
        by_lease
            .entry(r.lease.as_str())
            .or_default()
            .push((r.acquire_unix_ns, r.holder.as_str()));
    }
    for tenures in by_lease.values_mut() {
        tenures.sort();
        tenures.dedup();
    }
    let held_by = |node: &str, t: u64| {
        by_lease.values().any(|tenures| {
            tenures
                .iter()
                .rev()
                .find(|(from, _)| *from <= t)
                .is_some_and(|(_, h)| forge_core::lease::holder_pod(h) == node)
        })
    };
    events
        .iter()
        .filter(|e| e.event == EventKind::ForgingOn && !held_by(&e.node, e.t_unix_ns))
        .cloned()
        .collect()
}

async fn install_crds(apiserver: &ApiServer) -> Result<(), WorldError> {
    let admin = apiserver.client("admin").await?;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in definitions() {
        crds.create(&PostParams::default(), &crd).await.map_err(other)?;
    }
    let leaders: Api<forge_core::crd::CardanoLeader> = Api::namespaced(admin, "default");
    wait_for(Duration::from_secs(10), || async {
        leaders.list(&Default::default()).await.is_ok()
    })
    .await
    .map(|_| ())
    .map_err(|_| other("CRDs not served within 10 s"))
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn wait_for<F, Fut>(within: Duration, mut check: F) -> Result<Duration, Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            return Err(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.0 GET on loopback: `(status code, body)`.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await?;
        let code = raw
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "http get timed out",
            ))
        })
}

/// Fault proxies between regions: `(from, to)` → the proxy `from`'s pods read `to` through.
pub type RegionLinks = BTreeMap<(String, String), FaultProxy>;

/// Several regions, one [`World`] (own API server) each, with cluster management on: region
/// `r` of priority `p` is the CardanoForgeCluster `pool-{r}`, and every region reads every other
/// one through a fault proxy of its own (returned, to cut links). `options(region)` gives each
/// world's options (its `pod_prefix` is set to the region); `extra(region)` adds environment.
pub async fn start_regions<P: std::fmt::Display>(
    regions: &[(&str, P)],
    options: impl Fn(&str) -> WorldOptions,
    extra: impl Fn(&str) -> Vec<(String, String)>,
) -> Result<(Vec<World>, RegionLinks), WorldError> {
    let mut worlds = Vec::new();
    for (region, _) in regions {
        let mut o = options(region);
        o.pod_prefix = (*region).to_string();
        worlds.push(World::prepare(o).await?);
    }
    let mut links = BTreeMap::new();
    for (i, (region, priority)) in regions.iter().enumerate() {
        let mut peers = Vec::new();
        for (j, (peer, _)) in regions.iter().enumerate().filter(|(j, _)| *j != i) {
            let proxy = FaultProxy::start_local(worlds[j].apiserver.addr())
                .await
                .map_err(|e| other(format!("proxy: {e}")))?;
            let kubeconfig = worlds[j]
                .apiserver
                .kubeconfig_via(&format!("{peer}-0"), proxy.local_addr())
                .map_err(|e| other(format!("kubeconfig: {e}")))?;
            peers.push(format!("pool-{peer}={}", kubeconfig.display()));
            links.insert(((*region).to_string(), (*peer).to_string()), proxy);
        }
        let env = &mut worlds[i].options_mut().extra_env;
        *env = vec![
            ("ENABLE_CLUSTER_MANAGEMENT".into(), "true".into()),
            ("CLUSTER_IDENTIFIER".into(), format!("pool-{region}")),
            ("CLUSTER_REGION".into(), (*region).to_string()),
            ("CLUSTER_PRIORITY".into(), priority.to_string()),
            ("PEER_CLUSTERS".into(), peers.join(",")),
        ];
        env.extend(extra(region));
    }
    for w in &mut worlds {
        w.populate().await?;
    }
    Ok((worlds, links))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn on(t_ms: u64, node: &str) -> TimelineEvent {
        TimelineEvent {
            t_unix_ns: t_ms * MS,
            ..TimelineEvent::now(node, EventKind::ForgingOn, "")
        }
    }

    fn held(lease: &str, holder: &str, from_ms: u64) -> LeaseRecord {
        LeaseRecord {
            lease: lease.into(),
            holder: holder.into(),
            acquire_unix_ns: from_ms * MS,
            observed_unix_ns: from_ms * MS + 5 * MS,
        }
    }

    #[test]
    fn forging_is_flagged_only_outside_the_nodes_own_tenure() {
        let leases = [
            held("l", "a", 100),
            held("l", "a", 100), // a renewal seen again
            held("l", "", 300),  // released
            held("l", "b", 350),
        ];
        let events = [
            on(50, "a"),  // before anyone held it
            on(120, "a"), // a's tenure
            on(320, "b"), // vacant
            on(360, "b"), // b's tenure
            on(400, "a"), // b's tenure, not a's
        ];
        let flagged: Vec<(u64, String)> = forging_without_lease(&events, &leases)
            .into_iter()
            .map(|e| (e.t_unix_ns / MS, e.node))
            .collect();
        assert_eq!(
            flagged,
            vec![(50, "a".to_owned()), (320, "b".to_owned()), (400, "a".to_owned())]
        );
    }

    #[test]
    fn a_holder_of_any_lease_may_forge() {
        // Several worlds' (regions') Leases: each holder forges under its own.
        let leases = [held("east", "east-0", 0), held("west", "west-1", 0)];
        let events = [on(10, "east-0"), on(10, "west-1"), on(10, "west-0")];
        let flagged = forging_without_lease(&events, &leases);
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].node, "west-0");
    }
}
