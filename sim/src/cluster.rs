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

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apiserver::{ApiServer, ApiServerError, ApiServerOptions};
use crate::process::{rss_kib, spawn_tied, terminate, tied_command};

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

/// This process's effective user id (from /proc; `u32::MAX` if unreadable).
fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2)?.parse().ok()
        })
        .unwrap_or(u32::MAX)
}

/// Runs a setup command to completion; a failure names it with its standard error.
fn run(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {program}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            what: format!("{program} {}", args.join(" ")),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        })
    }
}

/// Runs `program args` inside the node's network namespace.
fn run_in_ns(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let ns = format!("--net=/run/netns/{NETNS}");
    let mut full = vec![ns.as_str(), "--", program];
    full.extend_from_slice(args);
    run("nsenter", &full)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Mount points at or under `dir`, deepest (latest) first, from this process's mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes spaces and the like as octal; our paths have none.
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    out.reverse();
    out
}

fn dir_entries(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup v1 hierarchies mounted under /sys/fs/cgroup (or the v2 root).
fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(base)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    if roots.is_empty() || base.join("cgroup.controllers").exists() {
        roots = vec![base.to_owned()];
    }
    roots
}

/// Cgroup directories (in any hierarchy) whose name is one of `ids`, deepest first.
fn cgroups_named(ids: &BTreeSet<String>) -> Vec<PathBuf> {
    fn walk(dir: &Path, ids: &BTreeSet<String>, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            walk(&p, ids, depth + 1, out);
            if ids.contains(e.file_name().to_string_lossy().as_ref()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if ids.is_empty() {
        return out;
    }
    for root in cgroup_roots() {
        walk(&root, ids, 0, &mut out);
    }
    out
}

/// One process of the cluster.
#[derive(Debug)]
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// A running single-node cluster. Stopped by [`Cluster::stop`] or `Drop`.
#[derive(Debug)]
pub struct Cluster {
    api: Option<ApiServer>,
    procs: Vec<Proc>,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    kubeconfig: PathBuf,
    containerd_sock: PathBuf,
    startup: Duration,
    phases: Vec<(&'static str, Duration)>,
    pod_logs_before: BTreeSet<String>,
    container_logs_before: BTreeSet<String>,
    container_ids: BTreeSet<String>,
    /// containerd's parent cgroup (`k8s.io`) in each hierarchy where it did not exist at start.
    new_cgroup_parents: Vec<PathBuf>,
    _lock: Option<nix::fcntl::Flock<File>>,
    network_up: bool,
}

impl Cluster {
    /// Starts everything and waits until the node is Ready and pods can be created (the
    /// `default` ServiceAccount has its token).
    pub async fn start(opts: ClusterOptions) -> Result<Cluster, ClusterError> {
        let started = Instant::now();
        let uid = effective_uid();
        if uid != 0 {
            return Err(ClusterError::NotRoot(uid));
        }
        let bins = node_bin_dir()?;
        let pause = pause_archive()?;
        let lock_file = File::create(LOCK_FILE).map_err(io(format!("creating {LOCK_FILE}")))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| ClusterError::Busy)?;
        // The lock was free: whatever a cluster left behind is stale (it was killed).
        clean_stale();

        let dir = tempfile::Builder::new()
            .prefix("forge-sim-cluster-")
            .tempdir()
            .map_err(io("creating a temp dir"))?;
        let root = dir.path().to_owned();
        let mut cluster = Cluster {
            api: None,
            procs: Vec::new(),
            dir: Some(dir),
            kubeconfig: PathBuf::new(),
            containerd_sock: root.join("containerd/containerd.sock"),
            root: root.clone(),
            startup: Duration::ZERO,
            phases: Vec::new(),
            pod_logs_before: dir_entries(POD_LOGS),
            container_logs_before: dir_entries(CONTAINER_LOGS),
            container_ids: BTreeSet::new(),
            new_cgroup_parents: cgroup_roots()
                .into_iter()
                .map(|r| r.join(CGROUP_PARENT))
                .filter(|p| !p.exists())
                .collect(),
            _lock: Some(lock),
            network_up: false,
        };
        cluster.network_up = true;
        setup_network()?;

        let api = ApiServer::start(ApiServerOptions {
            address: IpAddr::V4(HOST_ADDR),
            // Under the cluster's directory: removed with it, also after a crash.
            dir: Some(root.join("apiserver")),
            extra_args: vec![
                "--kubelet-preferred-address-types=InternalIP".into(),
                "--allow-privileged=true".into(),
            ],
            ..ApiServerOptions::default()
        })
        .await?;
        cluster.phases.push(("kube-apiserver ready", started.elapsed()));
        let api_dir = api.dir().map(Path::to_owned).unwrap_or_default();
        cluster.kubeconfig = api.admin_kubeconfig().to_owned();
        cluster.api = Some(api);
        let kc = cluster.kubeconfig.to_string_lossy().into_owned();
        let p = |d: &Path, f: &str| d.join(f).to_string_lossy().into_owned();

        cluster.spawn(
            "kube-controller-manager",
            &bins.join("kube-controller-manager"),
            false,
            &[
                format!("--kubeconfig={kc}"),
                format!("--service-account-private-key-file={}", p(&api_dir, "sa.key")),
                format!("--root-ca-file={}", p(&api_dir, "ca.crt")),
                "--leader-elect=false".into(),
                "--port=0".into(),
                "--secure-port=0".into(),
                "--use-service-account-credentials=false".into(),
                "--controllers=*,-csrsigning,-csrapproving,-csrcleaner,-nodeipam,-cloud-node-lifecycle"
                    .into(),
                "--profiling=false".into(),
                "--v=0".into(),
            ],
        )?;
        cluster.spawn(
            "kube-scheduler",
            &bins.join("kube-scheduler"),
            false,
            &[
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--leader-elect=false".into(),
                "--port=0".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
                "--profiling=false".into(),
                "--v=0".into(),
            ],
        )?;

        // containerd, its own everything.
        let ctd = root.join("containerd");
        let cni = root.join("cni");
        std::fs::create_dir_all(cni.join("net.d")).map_err(io("creating the CNI directory"))?;
        std::fs::create_dir_all(&ctd).map_err(io("creating the containerd directory"))?;
        std::fs::write(cni.join("net.d/10-forge.conflist"), cni_config(&cni))
            .map_err(io("writing the CNI configuration"))?;
        std::fs::write(ctd.join("config.toml"), containerd_config(&ctd, &cni))
            .map_err(io("writing containerd's configuration"))?;
        cluster.spawn(
            "containerd",
            Path::new("/usr/bin/containerd"),
            true,
            &[format!("--config={}", p(&ctd, "config.toml"))],
        )?;
        cluster
            .wait_for_socket("containerd", Duration::from_secs(20))
            .await?;
        cluster.phases.push(("containerd serving", started.elapsed()));
        for image in std::iter::once(&pause).chain(opts.images.iter()) {
            cluster.ctr(&["images", "import", &image.to_string_lossy()])?;
        }
        cluster.phases.push(("images imported", started.elapsed()));

        // kubelet
        let kubelet = root.join("kubelet");
        std::fs::create_dir_all(&kubelet).map_err(io("creating the kubelet directory"))?;
        std::fs::write(kubelet.join("config.yaml"), kubelet_config(&kubelet))
            .map_err(io("writing the kubelet configuration"))?;
        cluster.spawn(
            "kubelet",
            &bins.join("kubelet"),
            true,
            &[
                format!("--config={}", p(&kubelet, "config.yaml")),
                format!("--kubeconfig={kc}"),
                format!("--root-dir={}", p(&kubelet, "root")),
                format!("--cert-dir={}", p(&kubelet, "pki")),
                "--container-runtime=remote".into(),
                format!(
                    "--container-runtime-endpoint=unix://{}",
                    cluster.containerd_sock.display()
                ),
                format!("--node-ip={NODE_ADDR}"),
                format!("--hostname-override={NODE_NAME}"),
                "--v=0".into(),
            ],
        )?;
        cluster.spawn(
            "kube-proxy",
            &bins.join("kube-proxy"),
            true,
            &[
                format!("--kubeconfig={kc}"),
                format!("--hostname-override={NODE_NAME}"),
                "--proxy-mode=iptables".into(),
                // The node's address given, kube-proxy need not wait for the Node object.
                format!("--bind-address={NODE_ADDR}"),
                format!("--cluster-cidr={POD_CIDR}"),
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
                "--metrics-bind-address=127.0.0.1:10249".into(),
                "--healthz-bind-address=127.0.0.1:10256".into(),
                "--profiling=false".into(),
                "--v=0".into(),
            ],
        )?;

        cluster.wait_ready(opts.ready_timeout, started).await?;
        cluster.startup = started.elapsed();
        Ok(cluster)
    }

    fn spawn(
        &mut self,
        name: &'static str,
        binary: &Path,
        in_ns: bool,
        args: &[String],
    ) -> Result<(), ClusterError> {
        if !binary.is_file() {
            return Err(ClusterError::BinaryMissing(binary.to_owned()));
        }
        let mut cmd = if in_ns {
            let mut c = tied_command(Path::new("/usr/bin/nsenter"));
            c.arg(format!("--net=/run/netns/{NETNS}")).arg("--").arg(binary);
            c
        } else {
            tied_command(binary)
        };
        cmd.args(args);
        let log = self.root.join(format!("{name}.log"));
        let f = File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let f2 = f.try_clone().map_err(io("log file"))?;
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = spawn_tied(cmd).map_err(io(format!("starting {}", binary.display())))?;
        self.procs.push(Proc { name, child, log });
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), ClusterError> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(ClusterError::Exited {
                    process: p.name.to_owned(),
                    status: status.to_string(),
                    log_tail: log_tail(&p.log),
                });
            }
        }
        Ok(())
    }

    async fn wait_for_socket(&mut self, what: &str, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        while !self.containerd_sock.exists() || self.ctr(&["version"]).is_err() {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(ClusterError::NotReady(
                    timeout,
                    format!("{what} socket never answered"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Runs `ctr` against the node's containerd in the `k8s.io` namespace (the kubelet's).
    pub fn ctr(&self, args: &[&str]) -> Result<String, ClusterError> {
        let sock = self.containerd_sock.to_string_lossy().into_owned();
        let mut full = vec!["-a", sock.as_str(), "-n", "k8s.io"];
        full.extend_from_slice(args);
        run("ctr", &full)
    }

    /// Imports an OCI image archive into the node's containerd.
    pub fn import_image(&self, archive: &Path) -> Result<(), ClusterError> {
        self.ctr(&["images", "import", &archive.to_string_lossy()])
            .map(|_| ())
    }

    async fn wait_ready(&mut self, timeout: Duration, started: Instant) -> Result<(), ClusterError> {
        use k8s_openapi::api::core::v1::{Node, ServiceAccount};
        let deadline = started + timeout;
        let client = match &self.api {
            Some(api) => {
                api.client_with(crate::apiserver::ADMIN, Some(Duration::from_secs(5)))
                    .await?
            }
            None => return Err(ClusterError::NotReady(timeout, "no API server".into())),
        };
        let nodes: kube::Api<Node> = kube::Api::all(client.clone());
        let sas: kube::Api<ServiceAccount> = kube::Api::namespaced(client, "default");
        let mut waiting_for;
        loop {
            self.check_alive()?;
            let node_ready = nodes.get_opt(NODE_NAME).await.ok().flatten().is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            let sa_token = sas
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .is_some_and(|sa| !sa.secrets.unwrap_or_default().is_empty());
            let proxy_synced = run_in_ns("iptables", &["-t", "nat", "-S", "KUBE-SERVICES"])
                .is_ok_and(|rules| rules.contains("default/kubernetes"));
            for (done, phase) in [
                (node_ready, "node Ready"),
                (sa_token, "default ServiceAccount token"),
                (proxy_synced, "kube-proxy synced"),
            ] {
                if done && !self.phases.iter().any(|(p, _)| *p == phase) {
                    self.phases.push((phase, started.elapsed()));
                }
            }
            waiting_for = match (node_ready, sa_token, proxy_synced) {
                (true, true, true) => return Ok(()),
                (false, _, _) => "node Ready",
                (_, false, _) => "the default ServiceAccount's token",
                (_, _, false) => "kube-proxy's rules for the kubernetes Service",
            };
            if Instant::now() > deadline {
                return Err(ClusterError::NotReady(
                    timeout,
                    format!("waiting for {waiting_for}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL (on the host-side veth address).
    pub fn url(&self) -> String {
        self.api.as_ref().map(ApiServer::url).unwrap_or_default()
    }

    /// An admin kube client.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        match &self.api {
            Some(api) => Ok(api.client(crate::apiserver::ADMIN).await?),
            None => Err(ClusterError::NotReady(Duration::ZERO, "stopped".into())),
        }
    }

    /// Time from `start` to ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// When each start-up milestone was reached, from the start.
    pub fn phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// The working directory (logs of every process).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// PIDs of the cluster's processes by name (etcd and kube-apiserver included).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        let mut out = Vec::new();
        if let Some(api) = &self.api {
            let (etcd, kas) = api.pids();
            out.extend(etcd.map(|p| ("etcd", p)));
            out.extend(kas.map(|p| ("kube-apiserver", p)));
        }
        out.extend(self.procs.iter().map(|p| (p.name, p.child.id())));
        out
    }

    /// The resident memory of the cluster's processes (containerd's shims and the pods'
    /// containers excluded), in KiB, by process and in total.
    pub fn rss_kib(&self) -> (Vec<(&'static str, u64)>, u64) {
        let per: Vec<(&'static str, u64)> = self
            .pids()
            .into_iter()
            .map(|(n, pid)| (n, rss_kib(pid).unwrap_or(0)))
            .collect();
        let total = per.iter().map(|(_, k)| k).sum();
        (per, total)
    }

    /// Stops everything and removes everything it made (see the module docs). Idempotent.
    pub fn stop(&mut self) {
        // The kubelet first, so that it restarts nothing while the containers go.
        if let Some(i) = self.procs.iter().position(|p| p.name == "kubelet") {
            let mut p = self.procs.remove(i);
            terminate(&mut p.child, STOP_GRACE);
        }
        if self.procs.iter().any(|p| p.name == "containerd") {
            self.remove_containers();
        }
        while let Some(mut p) = self.procs.pop() {
            terminate(&mut p.child, STOP_GRACE);
        }
        if let Some(mut api) = self.api.take() {
            api.stop();
        }
        for m in mounts_under(&self.root) {
            if run("umount", &[&m.to_string_lossy()]).is_err() {
                let _ = run("umount", &["-l", &m.to_string_lossy()]);
            }
        }
        if self.network_up {
            teardown_network();
            self.network_up = false;
        }
        for cg in cgroups_named(&self.container_ids) {
            let _ = std::fs::remove_dir(&cg);
        }
        for parent in self.new_cgroup_parents.drain(..) {
            // Empty by now; a non-empty one (someone else's containers) stays.
            let _ = std::fs::remove_dir(&parent);
        }
        for (dir, before) in [
            (POD_LOGS, &self.pod_logs_before),
            (CONTAINER_LOGS, &self.container_logs_before),
        ] {
            for e in dir_entries(dir).difference(before) {
                let p = Path::new(dir).join(e);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
        self._lock = None;
    }

    /// Kills every container's task and deletes tasks and containers (their shims exit, runc
    /// removes their cgroups).
    fn remove_containers(&mut self) {
        let ids: BTreeSet<String> = self
            .ctr(&["containers", "ls", "-q"])
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        for id in &ids {
            let _ = self.ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
        }
        for id in &ids {
            // A killed task takes a moment to be reaped by its shim.
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.ctr(&["tasks", "rm", "-f", id]).is_err()
                && self
                    .ctr(&["tasks", "ls", "-q"])
                    .is_ok_and(|l| l.lines().any(|x| x.trim() == id))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.ctr(&["containers", "rm", id]);
        }
        self.container_ids.extend(ids);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn setup_network() -> Result<(), ClusterError> {
    run("ip", &["netns", "add", NETNS])?;
    run(
        "ip",
        &[
            "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH, "netns", NETNS,
        ],
    )?;
    run(
        "ip",
        &["addr", "add", &format!("{HOST_ADDR}/30"), "dev", HOST_VETH],
    )?;
    run("ip", &["link", "set", HOST_VETH, "up"])?;
    run(
        "ip",
        &[
            "route",
            "add",
            POD_CIDR,
            "via",
            &NODE_ADDR.to_string(),
            "dev",
            HOST_VETH,
        ],
    )?;
    run_in_ns("ip", &["link", "set", "lo", "up"])?;
    run_in_ns(
        "ip",
        &["addr", "add", &format!("{NODE_ADDR}/30"), "dev", NODE_VETH],
    )?;
    run_in_ns("ip", &["link", "set", NODE_VETH, "up"])?;
    run_in_ns("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
    Ok(())
}

fn teardown_network() {
    // Deleting the namespace deletes its devices (the bridge, the pods' veths, the node's end
    // of our pair and with it the host's end and its route) and every iptables rule in it.
    let _ = run("ip", &["netns", "delete", NETNS]);
    let _ = run("ip", &["link", "delete", HOST_VETH]);
}

/// What a cluster that was killed (SIGKILL) left: its containers' shims and processes, its
/// mounts, its network namespace. Called only while holding the lock.
fn clean_stale() {
    for d in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.starts_with("forge-sim-cluster-") {
            eprintln!(
                "forge-sim cluster: cleaning up {} left by a cluster that was killed",
                d.path().display()
            );
            // The containers: their ids are the task directories containerd kept; their
            // processes are the members of the cgroups of those names.
            let ids = dir_entries(
                &d.path()
                    .join("containerd/state/io.containerd.runtime.v2.task/k8s.io")
                    .to_string_lossy(),
            );
            let cgroups = cgroups_named(&ids);
            for cg in &cgroups {
                for pid in std::fs::read_to_string(cg.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            // containerd's shims outlive it; their command lines name this directory.
            kill_processes_mentioning(&d.path());
            std::thread::sleep(Duration::from_millis(200));
            for cg in &cgroups {
                let _ = std::fs::remove_dir(cg);
            }
            for root in cgroup_roots() {
                // Only if empty: another containerd's containers would keep it.
                let _ = std::fs::remove_dir(root.join(CGROUP_PARENT));
            }
            // The pods' log directories are named NAMESPACE_NAME_UID; the UIDs are the
            // kubelet's pod directories.
            let uids = dir_entries(&d.path().join("kubelet/root/pods").to_string_lossy());
            for e in dir_entries(POD_LOGS) {
                if uids.iter().any(|u| e.ends_with(&format!("_{u}"))) {
                    let _ = std::fs::remove_dir_all(Path::new(POD_LOGS).join(&e));
                }
            }
            for e in dir_entries(CONTAINER_LOGS) {
                let link = Path::new(CONTAINER_LOGS).join(&e);
                if std::fs::read_link(&link)
                    .is_ok_and(|t| uids.iter().any(|u| t.to_string_lossy().contains(u.as_str())))
                {
                    let _ = std::fs::remove_file(&link);
                }
            }
            for m in mounts_under(&d.path()) {
                let _ = run("umount", &["-l", &m.to_string_lossy()]);
            }
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
    teardown_network();
}

/// SIGKILLs every process whose command line mentions `dir` (a stale cluster's containerd shims
/// and the containers they run are found by their children).
fn kill_processes_mentioning(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut shims = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            shims.push(pid);
        }
    }
    for pid in shims {
        if let Ok(p) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn cni_config(cni: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "forge-cluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": cni.join("ipam").to_string_lossy(),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

fn containerd_config(ctd: &Path, cni: &Path) -> String {
    let p = |f: &str| ctd.join(f).to_string_lossy().into_owned();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # The sandbox may lack CAP_SYS_RESOURCE: a negative oom_score_adj would be refused and runc
  # would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf}"
"#,
        root = p("root"),
        state = p("state"),
        sock = p("containerd.sock"),
        opt = p("opt"),
        conf = cni.join("net.d").display(),
    )
}

fn kubelet_config(kubelet: &Path) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_ADDR}
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
evictionHard: {{}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: {plugins}
staticPodPath: ""
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 2s
makeIPTablesUtilChains: true
resolvConf: /etc/resolv.conf
"#,
        plugins = kubelet.join("volume-plugins").display(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_keeps_to_its_own_files_and_never_lowers_oom_score_adj() {
        let text = containerd_config(Path::new("/w/containerd"), Path::new("/w/cni"));
        for line in [
            r#"root = "/w/containerd/root""#,
            r#"state = "/w/containerd/state""#,
            r#"address = "/w/containerd/containerd.sock""#,
            r#"path = "/w/containerd/opt""#,
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            r#"conf_dir = "/w/cni/net.d""#,
            r#"sandbox_image = "localhost/pause:3.2""#,
        ] {
            assert!(
                text.lines().any(|l| l.trim() == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_cni_network_is_a_bridge_on_the_pod_subnet_with_its_own_ipam_directory() {
        let v: serde_json::Value = serde_json::from_str(&cni_config(Path::new("/w/cni"))).expect("JSON");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], BRIDGE);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_CIDR);
        assert_eq!(bridge["ipam"]["dataDir"], "/w/cni/ipam");
    }

    #[test]
    fn the_kubelet_config_needs_no_qos_cgroups_eviction_or_image_gc() {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&kubelet_config(Path::new("/w/kubelet"))).expect("YAML");
        assert_eq!(v["cgroupsPerQOS"], serde_yaml::Value::Bool(false));
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["imageGCHighThresholdPercent"], 100);
        assert_eq!(v["address"], NODE_ADDR.to_string().as_str());
        assert_eq!(v["volumePluginDir"], "/w/kubelet/volume-plugins");
    }

    #[test]
    fn mounts_under_a_directory_come_deepest_first_and_exclude_neighbours() {
        // This process's own mounts: none under a fresh temporary directory.
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(mounts_under(dir.path()).is_empty());
        // /proc is mounted; a path that is only a string prefix of it is not its parent.
        assert!(mounts_under(Path::new("/pro")).is_empty());
        assert!(!mounts_under(Path::new("/proc")).is_empty());
    }
}
