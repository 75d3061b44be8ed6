//! A running [`Cluster`]: its start (every process, in order, until the node is Ready), what
//! it tells about itself, and its stop.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::configs::{cni_config, containerd_config, kubelet_config};
use super::host::{
    cgroup_roots, cgroups_named, clean_stale, dir_entries, effective_uid, log_tail, mounts_under, run,
    run_in_ns, setup_network, teardown_network,
};
use super::{
    CGROUP_PARENT, CONTAINER_LOGS, ClusterError, ClusterOptions, HOST_ADDR, LOCK_FILE, NETNS, NODE_ADDR,
    NODE_NAME, POD_CIDR, POD_LOGS, STOP_GRACE, io, node_bin_dir, pause_archive,
};
use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::process::{rss_kib, spawn_tied, terminate, tied_command};

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

    /// Stops everything and removes everything it made (see the [module docs](super)). Idempotent.
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
