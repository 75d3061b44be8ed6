//! The three regions of the test (one real API server, sidecar and node simulator each), the
//! operator's kubeconfig with a context per region and the `kubectl-forge` plugin link, and
//! what the tests read of them: who forges, who sees whom unreachable, the sidecars' logs.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use forge_sim::world::WorldOptions;
use kube::{
    Api,
    api::{Patch, PatchParams},
};

use crate::{REGIONS, exe};

/// The three regions, and the operator's kubeconfig and plugin directory.
pub(crate) struct Regions {
    regions: forge_sim::regions::Regions,
    dir: tempfile::TempDir,
}

forge_sim::deref_to_regions!(Regions);

impl Regions {
    pub(crate) async fn start(test: &str) -> Option<Regions> {
        if !forge_sim::apiserver::runs_for_test(test) {
            return None;
        }
        // East has two pods (one holds the Lease, one stands by), west and south one each.
        let replicas = |r: &str| if r == "east" { 2 } else { 1 };
        let regions = forge_sim::regions::Regions::start(
            REGIONS,
            |r| WorldOptions::realistic(exe(), replicas(r)),
            |_| Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("forge-opcli-")
            .tempdir()
            .expect("tempdir");
        let r = Regions { regions, dir };
        r.write_kubeconfig();
        r.link_plugin();
        r.register_pods().await;
        Some(r)
    }

    /// The simulated pods are processes, not Pod objects: each region's API server gets one Pod
    /// object per pod, labelled as the chart labels them, its `forge-metrics` container port the
    /// sidecar's real port and its IP loopback, so `status` finds the pods and reads each one's
    /// `/status` as it would in a cluster (no kubelet runs: the objects only describe).
    async fn register_pods(&self) {
        use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
        use kube::api::PostParams;
        for w in &self.worlds {
            let client = forge_sim::apiserver::client_from_kubeconfig(
                w.apiserver.admin_kubeconfig(),
                Some(Duration::from_secs(5)),
            )
            .await
            .expect("admin client");
            // The ServiceAccount admission wants the namespace's default account (no
            // controller-manager here to make it).
            let sa: ServiceAccount =
                serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}})).expect("sa");
            let _ = Api::<ServiceAccount>::namespaced(client.clone(), "default")
                .create(&PostParams::default(), &sa)
                .await;
            let pods: Api<Pod> = Api::namespaced(client, "default");
            for p in &w.pods {
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": p.name, "labels": {
                        "app.kubernetes.io/name": "forge-manager",
                        "app.kubernetes.io/component": "block-producer"}},
                    "spec": {"automountServiceAccountToken": false, "containers": [{
                        "name": "forge-manager", "image": "forge-manager:test",
                        "ports": [{"name": "forge-metrics", "containerPort": p.http.port()}]}]},
                }))
                .expect("pod");
                pods.create(&PostParams::default(), &pod)
                    .await
                    .unwrap_or_else(|e| panic!("creating Pod {}: {e}", p.name));
                pods.patch_status(
                    &p.name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"status": {"phase": "Running",
                        "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}})),
                )
                .await
                .unwrap_or_else(|e| panic!("Pod {} status: {e}", p.name));
            }
        }
    }

    /// The pod of `region` that forges now (by the node timelines).
    pub(crate) fn forger_in(&self, region: &str) -> Option<String> {
        self.worlds[self.index(region)].forging_now().into_iter().next()
    }

    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// One kubeconfig, one context per region (named after it), admin users, namespace default.
    fn write_kubeconfig(&self) {
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        for (i, (region, _)) in REGIONS.iter().enumerate() {
            let s = &self.worlds[i].apiserver;
            // A copy of the CA: a stopped server removes its directory, and the test wants
            // "connection refused" from it then, as an operator would see.
            let ca = self.dir.path().join(format!("{region}-ca.crt"));
            std::fs::copy(s.ca_file(), &ca).expect("copy CA");
            clusters.push(serde_json::json!({"name": region, "cluster": {
                "server": s.url(), "certificate-authority": ca}}));
            users.push(serde_json::json!({"name": format!("admin-{region}"), "user": {
                "token": s.token("admin").expect("admin token")}}));
            contexts.push(serde_json::json!({"name": region, "context": {
                "cluster": region, "user": format!("admin-{region}"), "namespace": "default"}}));
        }
        let kc = serde_json::json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters,
            "users": users, "contexts": contexts, "current-context": "east"});
        let path = self.kubeconfig();
        std::fs::write(&path, kc.to_string()).expect("kubeconfig");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    /// `forge-manager install bin --kubectl-plugin`, the documented install step:
    /// `bin/forge-manager` and `bin/kubectl-forge -> forge-manager`.
    fn link_plugin(&self) {
        let bin = self.dir.path().join("bin");
        let out = Command::new(exe())
            .arg("install")
            .arg(&bin)
            .arg("--kubectl-plugin")
            .output()
            .expect("install runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let link = std::fs::read_link(bin.join("kubectl-forge")).expect("a symlink");
        assert_eq!(link, PathBuf::from("forge-manager"));
        let listed = Command::new("kubectl")
            .args(["plugin", "list"])
            .env("PATH", self.path_with_plugin())
            .output()
            .expect("kubectl runs");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("kubectl-forge"), "kubectl plugin list: {listed}");
    }

    pub(crate) fn path_with_plugin(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Waits until one pod of `region` forges and nobody else; returns it.
    pub(crate) async fn wait_forger(&self, region: &str, within: Duration) -> Option<String> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let [one] = self.forging_now().as_slice()
                && one.starts_with(&format!("{region}-"))
            {
                return Some(one.clone());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits until `observer`'s sidecar reports `peer` unreachable (its metric).
    pub(crate) async fn sees_unreachable(&self, observer: &str, peer: &str, within: Duration) -> bool {
        let w = &self.worlds[self.index(observer)];
        let started = Instant::now();
        while started.elapsed() < within {
            let text = w.metrics(0).await.unwrap_or_default();
            if text.lines().any(|l| {
                l.starts_with("cardano_cluster_peer_reachable{")
                    && l.contains(&format!("pool-{peer}"))
                    && l.ends_with(" 0")
            }) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The last 12 log lines of every sidecar, for a failure message.
    pub(crate) fn logs(&self) -> String {
        self.log_tails(12)
    }

    pub(crate) fn stop(&mut self) {
        for w in &mut self.worlds {
            w.stop();
        }
    }
}
