//! Starting a world (the API server, the CRDs, each pod's proxy, manager and node) and several
//! regions of them.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use forge_core::crd::definitions;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, api::PostParams};

use crate::{
    apiserver::{ApiServer, ApiServerOptions, free_ports},
    creds::write_test_credentials,
    node::NodeBehaviour,
    process::{spawn_tied, tied_command},
    proxy::FaultProxy,
    timeline::unix_now_ns,
};

use super::*;

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

    pub(super) fn spawn_manager(&self, pod: &Pod, kubeconfig: &Path) -> Result<Child, WorldError> {
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

    pub(super) fn output(&self, cmd: &mut std::process::Command, log: &Path) -> Result<(), WorldError> {
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
    let mut prepared = prepare_regions(regions, options).await?;
    for (w, (region, _)) in prepared.worlds.iter_mut().zip(regions) {
        w.options_mut().extra_env.extend(extra(region));
    }
    for w in &mut prepared.worlds {
        w.populate().await?;
    }
    Ok((prepared.worlds, prepared.links))
}

/// The regions of [`prepare_regions`], their pods not started yet.
pub struct PreparedRegions {
    /// One prepared world a region, in the order given.
    pub worlds: Vec<World>,
    /// The fault proxies between the regions.
    pub links: RegionLinks,
    /// Each region's `PEER_CLUSTERS` value (`pool-{peer}={kubeconfig},...`), in the same order.
    pub peer_clusters: Vec<String>,
}

/// The first half of [`start_regions`]: the worlds prepared (API server and CRDs, no pods), the
/// proxies between them and each world's environment for cluster management, so that a caller
/// can add more (a quorum's witness, say) before it starts the pods with [`World::populate`].
pub async fn prepare_regions<P: std::fmt::Display>(
    regions: &[(&str, P)],
    options: impl Fn(&str) -> WorldOptions,
) -> Result<PreparedRegions, WorldError> {
    let mut worlds = Vec::new();
    for (region, _) in regions {
        let mut o = options(region);
        o.pod_prefix = (*region).to_string();
        worlds.push(World::prepare(o).await?);
    }
    let mut links = BTreeMap::new();
    let mut peer_clusters = Vec::new();
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
        let peers = peers.join(",");
        worlds[i].options_mut().extra_env = vec![
            ("ENABLE_CLUSTER_MANAGEMENT".into(), "true".into()),
            ("CLUSTER_IDENTIFIER".into(), format!("pool-{region}")),
            ("CLUSTER_REGION".into(), (*region).to_string()),
            ("CLUSTER_PRIORITY".into(), priority.to_string()),
            ("PEER_CLUSTERS".into(), peers.clone()),
        ];
        peer_clusters.push(peers);
    }
    Ok(PreparedRegions {
        worlds,
        links,
        peer_clusters,
    })
}
