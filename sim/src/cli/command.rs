//! The simulator subcommands and their flags ([`SimCommand`], parsed by clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Subcommand;

use crate::node::{Latency, ReloadOrder};

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
        /// How overlapping reloads are applied: `in-order` (one at a time, each reading the files
        /// when its turn comes) or `concurrent` (as cardano-node: each SIGHUP reads the files at
        /// once and takes effect after its own latency, so a later one can win over an earlier).
        #[arg(long, value_name = "in-order|concurrent", default_value = "in-order")]
        reload_order: ReloadOrder,
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
