//! What a world is built from ([`WorldOptions`]) and one simulated pod ([`Pod`]).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, process::Child, time::Duration};

use crate::{
    node::{Latency, NodeBehaviour, ReloadOrder},
    proxy::FaultProxy,
    timeline::unix_now_ns,
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
    /// 20..1500 ms (drawn per reload; each SIGHUP handled on its own, so a later one can take
    /// effect first, as cardano-node does), a SIGHUP in the node's first 150 ms
    /// kills it, and the lease leaves the margin such a node needs without the guard (4 s
    /// lease, 2 s renew deadline: a leader that stops at its deadline has stopped, even after
    /// its slowest reload, before any other pod can see its lease expire).
    pub fn realistic(exe: PathBuf, replicas: usize) -> Self {
        Self {
            lease_duration_s: 4,
            node: NodeBehaviour {
                reload: Latency::range_ms(REALISTIC_RELOAD_MS.0, REALISTIC_RELOAD_MS.1),
                reload_order: ReloadOrder::Concurrent,
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
    /// Whether [`World::set_target_read_only`](super::World::set_target_read_only) made its target directory read-only.
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
