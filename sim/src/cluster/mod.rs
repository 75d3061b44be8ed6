//! A real single-node Kubernetes 1.20.2 for the test world (`forge-manager sim cluster`): etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler, its own containerd, the kubelet,
//! kube-proxy and a bridge CNI, all built or installed by `scripts/kube-cluster.sh`.
//!
//! Topology. The node lives in a network namespace of its own (`forge-cluster`): containerd, the
//! kubelet and kube-proxy run in it (network namespace only, so they share the host's mounts),
//! together with the pods' bridge `fmc-cni0` (10.88.0.0/24) and every iptables rule the kubelet,
//! kube-proxy and the bridge plugin add. A veth pair joins it to the host: `fmc-host` 10.87.0.1
//! on the host, `fmc-node` 10.87.0.2 (the node's InternalIP) in the namespace, plus a host route
//! to the pod subnet through it. etcd stays on 127.0.0.1; kube-apiserver, the controller-manager
//! and the scheduler run on the host, the API server bound to 10.87.0.1 only, which the host and
//! pods reach (pods through the `kubernetes` Service, 10.0.0.1:443, that kube-proxy maps). No
//! route leads anywhere else: pods reach no outside address.
//!
//! Leaving nothing behind. Stopping kills the pods' containers through containerd, stops every
//! process in reverse order, unmounts whatever is mounted under the working directory (the pods'
//! volumes, network-namespace files and overlay roots), deletes the network namespace (which
//! takes the veth pair, the bridge, the host route and all the iptables rules with it), removes
//! the container cgroups and the pods' log directories under /var/log/pods. One cluster per
//! machine: a lock file says so, and a start after a crash first cleans what the crashed one
//! left. Needs root.
//!
//! Never used by the sidecar in production.
//!
//! The names, errors, options and checks are here; `running` starts, queries and stops a
//! [`Cluster`], `host` has what it does to the host (commands, mounts, cgroups, the network
//! namespace, the cleanup after a killed cluster), and `configs` the configuration files it
//! writes.

mod configs;
mod host;
mod running;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::apiserver::ApiServerError;

pub use running::Cluster;

use host::effective_uid;

/// Environment variable naming the directory holding the node binaries (kubelet,
/// kube-controller-manager, kube-scheduler, kube-proxy); default: the cache that
/// `scripts/kube-cluster.sh` fills.
pub const NODE_BIN_ENV: &str = "FORGE_KUBE_NODE_BIN";
/// Environment variable that lets a quick local loop skip the cluster tests (loudly). Never set
/// in CI: there a missing binary is a failure.
pub const SKIP_ENV: &str = "FORGE_SKIP_CLUSTER_TESTS";
/// The network namespace of the node.
pub const NETNS: &str = "forge-cluster";
/// The node's name.
pub const NODE_NAME: &str = "forge-node";
/// The host side of the veth pair and its address: the API server's address.
pub const HOST_VETH: &str = "fmc-host";
/// The API server's address (host side of the veth pair).
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 87, 0, 1);
/// The node side of the veth pair, inside [`NETNS`].
pub const NODE_VETH: &str = "fmc-node";
/// The node's InternalIP.
pub const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 87, 0, 2);
/// The pods' bridge, inside [`NETNS`].
pub const BRIDGE: &str = "fmc-cni0";
/// The pods' subnet.
pub const POD_CIDR: &str = "10.88.0.0/24";
/// The pause image every pod sandbox runs (built by `scripts/images.sh pause`).
pub const PAUSE_IMAGE: &str = "localhost/pause:3.2";
/// The cgroup under which containerd puts the kubelet's containers (the CRI namespace's name)
/// when the kubelet gives no parent (`cgroupsPerQOS: false`).
const CGROUP_PARENT: &str = "k8s.io";
/// Machine-wide lock: one cluster at a time.
const LOCK_FILE: &str = "/run/forge-sim-cluster.lock";
/// Where the kubelet writes pod logs (fixed in 1.20).
const POD_LOGS: &str = "/var/log/pods";
/// Where the kubelet links container logs (fixed in 1.20).
const CONTAINER_LOGS: &str = "/var/log/containers";
/// Grace between SIGTERM and SIGKILL for the cluster's processes.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Errors starting or stopping a [`Cluster`].
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A binary is missing.
    #[error(
        "{0} not found: run scripts/kube-cluster.sh (a few minutes once the API server is built) or set {NODE_BIN_ENV}"
    )]
    BinaryMissing(PathBuf),
    /// The pause image archive is missing.
    #[error("pause image archive {0} not found: run scripts/images.sh pause")]
    PauseMissing(PathBuf),
    /// Not root.
    #[error("the cluster needs root (network namespaces, mounts, iptables); running as uid {0}")]
    NotRoot(u32),
    /// Another cluster runs.
    #[error("another forge-sim cluster runs on this machine (lock {LOCK_FILE} is held)")]
    Busy,
    /// The API server failed.
    #[error("kube-apiserver: {0}")]
    ApiServer(#[from] ApiServerError),
    /// A setup command failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// The command.
        what: String,
        /// Its status and standard error.
        detail: String,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A process exited during start-up.
    #[error("{process} exited during start-up ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// Which process.
        process: String,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The cluster did not become ready in time.
    #[error("cluster not ready after {0:?}: {1}")]
    NotReady(Duration, String),
}

impl ClusterError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BinaryMissing(_) => "binary_missing",
            Self::PauseMissing(_) => "pause_missing",
            Self::NotRoot(_) => "not_root",
            Self::Busy => "busy",
            Self::ApiServer(_) => "apiserver",
            Self::Command { .. } => "command",
            Self::Io { .. } => "io",
            Self::Exited { .. } => "exited",
            Self::NotReady(..) => "not_ready",
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// OCI image archives to import into the node's containerd (the pause image always is).
    pub images: Vec<PathBuf>,
    /// Start-up deadline: node Ready, default ServiceAccount and its token present.
    pub ready_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            images: Vec::new(),
            ready_timeout: Duration::from_secs(90),
        }
    }
}

/// The cache directory of scripts/kube-cluster.sh and scripts/images.sh.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FORGE_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
                })
                .join("forge-manager")
        })
}

/// The directory with the node binaries, checked.
pub fn node_bin_dir() -> Result<PathBuf, ClusterError> {
    let dir = std::env::var_os(NODE_BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("kube-node-1.20.2"));
    for b in [
        "kubelet",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ] {
        if !dir.join(b).is_file() {
            return Err(ClusterError::BinaryMissing(dir.join(b)));
        }
    }
    Ok(dir)
}

/// The pause image archive, checked.
pub fn pause_archive() -> Result<PathBuf, ClusterError> {
    let p = cache_dir().join("images").join("pause-3.2.tar");
    if p.is_file() {
        Ok(p)
    } else {
        Err(ClusterError::PauseMissing(p))
    }
}

/// Environment variable set by CI: the cluster tests must run, so anything that would make them
/// skip (other than [`SKIP_ENV`]) is a failure instead.
pub const REQUIRE_ENV: &str = "FORGE_REQUIRE_CLUSTER_TESTS";

/// True (and says so loudly on stderr) when the cluster tests must be skipped: asked to by
/// `FORGE_SKIP_CLUSTER_TESTS=1`, or impossible here (not root, binaries or pause image not
/// built). The reason is printed. Under `FORGE_REQUIRE_CLUSTER_TESTS=1` (CI) only the first
/// skips; the others panic with the reason.
pub fn skipped(test: &str) -> bool {
    use std::io::Write;
    let reason = if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        Some(format!("{SKIP_ENV}=1"))
    } else if effective_uid() != 0 {
        Some("not root".to_owned())
    } else if let Err(e) = node_bin_dir() {
        Some(e.to_string())
    } else if let Err(e) = pause_archive() {
        Some(e.to_string())
    } else {
        None
    };
    let required =
        std::env::var(REQUIRE_ENV).as_deref() == Ok("1") && std::env::var(SKIP_ENV).as_deref() != Ok("1");
    match reason {
        Some(r) if required => panic!("{test}: {r} ({REQUIRE_ENV}=1: the cluster tests must run)"),
        Some(r) => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test}: {r}; the real cluster tests do not run !!!\n"
            );
            true
        }
        None => false,
    }
}
