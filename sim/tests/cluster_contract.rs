//! Contract tests on a real single-node Kubernetes 1.20.2 (`forge_sim::cluster`): what the chart
//! and the manifests rely on, observed on a real kubelet, containerd and controllers.
//!
//! One cluster, one test function, the scenarios in sequence (a cluster is a machine-wide thing:
//! one network namespace, one lock), then a stop that must leave nothing behind. Needs root, the
//! binaries of `scripts/kube-cluster.sh` and the pause image of `scripts/images.sh`; without
//! them (or under `FORGE_SKIP_CLUSTER_TESTS=1`) it says SKIPPED loudly, except under
//! `FORGE_REQUIRE_CLUSTER_TESTS=1` (CI), where a missing piece fails.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_sim::cluster::{Cluster, ClusterOptions, NETNS};
use forge_sim::process::is_alive;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

const NS: &str = "default";
const IMAGE: &str = "localhost/cardano-node:sim";

/// Builds the stand-in image around this crate's `forge-sim` binary (scripts/images.sh node).
fn node_image() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/images.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("node")
        .arg(env!("CARGO_BIN_EXE_forge-sim"))
        .output()
        .expect("run scripts/images.sh");
    assert!(
        out.status.success(),
        "images.sh node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("archive path").trim())
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("pod JSON")
}

/// Polls `get` until `done` says the pod reached the wanted state, or panics after `timeout`
/// with the last status seen.
async fn wait_pod(api: &Api<Pod>, name: &str, timeout: Duration, done: impl Fn(&Pod) -> bool) -> Pod {
    let deadline = Instant::now() + timeout;
    loop {
        let p = api.get_opt(name).await.expect("get pod");
        if let Some(p) = &p
            && done(p)
        {
            return p.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "pod {name} not in the wanted state after {timeout:?}: {}",
                serde_json::to_string_pretty(&p.and_then(|p| p.status)).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn logs(api: &Api<Pod>, name: &str) -> String {
    api.logs(name, &Default::default()).await.expect("pod logs")
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let d = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&d))
        .map(str::to_owned)
        .collect()
}

fn host_iptables() -> String {
    std::process::Command::new("iptables-save")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_single_node_cluster_runs_what_the_chart_needs() {
    if forge_sim::cluster::skipped("cluster contract") {
        return;
    }
    let image = node_image();
    let iptables_before = host_iptables();
    let mut cluster = Cluster::start(ClusterOptions {
        images: vec![image],
        ..ClusterOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let (per, total) = cluster.rss_kib();
    eprintln!(
        "cluster ready after {:?}; RSS {total} KiB: {per:?}",
        cluster.startup_time()
    );
    let client = cluster.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pp = PostParams::default();

    // 1. A pod runs to completion, and its log is served through the kubelet.
    pods.create(
        &pp,
        &pod(serde_json::json!({
            "metadata": {"name": "once"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                "command": ["/bin/sh", "-c", "echo completed-$((6*7))"]}]
            }
        })),
    )
    .await
    .expect("create once");
    let p = wait_pod(&pods, "once", Duration::from_secs(60), |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    assert_eq!(phase(&p), "Succeeded");
    assert!(
        p.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .is_some_and(|ip| ip.starts_with("10.88.0.")),
        "pod IP from the bridge CNI: {:?}",
        p.status.and_then(|s| s.pod_ip)
    );
    assert_eq!(logs(&pods, "once").await.trim(), "completed-42");

    // 2. The service-account token reaches the container and kube-rs's in-cluster
    //    configuration works from inside a pod (KUBERNETES_SERVICE_HOST through kube-proxy).
    pods.create(
        &pp,
        &pod(serde_json::json!({
            "metadata": {"name": "incluster"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "probe", "image": IMAGE, "imagePullPolicy": "Never",
                                "command": ["/usr/local/bin/forge-sim", "incluster-probe"]}]
            }
        })),
    )
    .await
    .expect("create incluster");
    let p = wait_pod(&pods, "incluster", Duration::from_secs(60), |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    let out = logs(&pods, "incluster").await;
    assert_eq!(phase(&p), "Succeeded", "probe output: {out}");
    let line: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("probe output {out:?}: {e}"));
    assert_eq!(line["version"], "1.20", "{line}");
    assert_eq!(line["namespace"], NS, "{line}");
    assert!(
        line["server"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://10.0.0.1")),
        "the kubernetes Service's address: {line}"
    );
    assert!(line["pods"].as_u64().is_some_and(|n| n >= 2), "{line}");

    // 3. A container's exit and its restart are reported in the pod status.
    pods.create(
        &pp,
        &pod(serde_json::json!({
            "metadata": {"name": "crashy"},
            "spec": {
                "restartPolicy": "Always",
                "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                "command": ["/bin/sh", "-c", "sleep 1; exit 3"]}]
            }
        })),
    )
    .await
    .expect("create crashy");
    let p = wait_pod(&pods, "crashy", Duration::from_secs(60), |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| {
                c.restart_count >= 1
                    && c.last_state
                        .as_ref()
                        .and_then(|l| l.terminated.as_ref())
                        .is_some()
            })
    })
    .await;
    let cs = &p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()[0];
    let last = cs
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .expect("terminated");
    assert_eq!(last.exit_code, 3, "{cs:?}");
    assert_eq!(last.reason.as_deref(), Some("Error"), "{cs:?}");
    pods.delete("crashy", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");

    // 4. A native sidecar (an init container with restartPolicy Always) on 1.20: the field is
    //    unknown and dropped, so the "sidecar" is an ordinary init container that never ends,
    //    and the main container never starts.
    pods.create(
        &pp,
        &pod(serde_json::json!({
            "metadata": {"name": "sidecar"},
            "spec": {
                "restartPolicy": "Always",
                "initContainers": [{"name": "sidecar", "image": IMAGE, "imagePullPolicy": "Never",
                                    "restartPolicy": "Always",
                                    "command": ["/bin/sh", "-c", "sleep 3600"]}],
                "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                "command": ["/bin/sh", "-c", "sleep 3600"]}]
            }
        })),
    )
    .await
    .expect("create sidecar");
    let p = wait_pod(&pods, "sidecar", Duration::from_secs(60), |p| {
        p.status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
    })
    .await;
    let init = &p
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.clone())
        .unwrap_or_default()[0];
    assert_eq!(
        init.restart_policy, None,
        "1.20 keeps no restartPolicy on a container"
    );
    // Five sync periods later the main container still waits behind the init container.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = pods.get("sidecar").await.expect("get sidecar");
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(phase(&p), "Pending", "{status:?}");
    let main = &status.container_statuses.clone().unwrap_or_default()[0];
    assert_eq!(
        main.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("PodInitializing"),
        "{main:?}"
    );
    pods.delete("sidecar", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");

    // 5. A StatefulSet of three cardano-node stand-ins (cardano-node's own flags, credentials
    //    from a Secret at mode 0400) comes up in order, each Ready before the next is created.
    let creds = tempfile::tempdir().expect("tempdir");
    let secret = forge_sim::creds::credentials_secret(creds.path(), "pool-keys").expect("credentials");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets.create(&pp, &secret).await.expect("create secret");
    let sts: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bp"},
        "spec": {
            "serviceName": "bp",
            "replicas": 3,
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "bp"}},
            "template": {
                "metadata": {"labels": {"app": "bp"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "cardano-node", "image": IMAGE, "imagePullPolicy": "Never",
                        "args": ["run", "--config", "/config/config.json", "--topology", "/config/topology.json",
                                 "--database-path", "/data/db", "--socket-path", "/ipc/node.socket",
                                 "--shelley-kes-key", "/keys/kes.skey", "--shelley-vrf-key", "/keys/vrf.skey",
                                 "--shelley-operational-certificate", "/keys/node.cert",
                                 "--start-as-non-producing-node", "--host-addr", "0.0.0.0", "--port", "3001"],
                        "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -S /ipc/node.socket"]},
                                           "periodSeconds": 1},
                        "volumeMounts": [{"name": "keys", "mountPath": "/keys", "readOnly": true},
                                         {"name": "ipc", "mountPath": "/ipc"},
                                         {"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "keys", "secret": {"secretName": "pool-keys", "defaultMode": 256}},
                                {"name": "ipc", "emptyDir": {}},
                                {"name": "data", "emptyDir": {}}]
                }
            }
        }
    }))
    .expect("statefulset JSON");
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let t = Instant::now();
    sts_api.create(&pp, &sts).await.expect("create statefulset");
    let mut members = Vec::new();
    for i in 0..3 {
        let name = format!("bp-{i}");
        let p = wait_pod(&pods, &name, Duration::from_secs(90), ready).await;
        members.push(p);
    }
    eprintln!("StatefulSet of 3 Ready after {:?}", t.elapsed());
    for w in members.windows(2) {
        let ready_at = w[0]
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time.clone())
            .expect("Ready time");
        let created = w[1].metadata.creation_timestamp.clone().expect("created");
        assert!(
            created.0 >= ready_at.0,
            "{} created at {:?} before {} was Ready at {:?}",
            w[1].metadata.name.as_deref().unwrap_or(""),
            created.0,
            w[0].metadata.name.as_deref().unwrap_or(""),
            ready_at.0
        );
    }
    let log0 = logs(&pods, "bp-0").await;
    assert!(
        log0.contains("--port") || log0.contains("port=3001"),
        "stand-in names the unused flags: {log0}"
    );

    // Stop: nothing of the cluster is left.
    let pids = cluster.pids();
    let dir = cluster.dir().to_owned();
    let t = Instant::now();
    cluster.stop();
    eprintln!("stopped in {:?}", t.elapsed());
    for (name, pid) in pids {
        assert!(!is_alive(pid), "{name} ({pid}) still runs");
    }
    assert!(
        mounts_under(&dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(&dir)
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(NETNS),
        "network namespace left"
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("fmc-"),
        "veth left"
    );
    assert_eq!(
        host_iptables(),
        iptables_before,
        "the host's iptables rules changed"
    );
    let shims = std::process::Command::new("pgrep")
        .args(["-f", &dir.to_string_lossy()])
        .output()
        .expect("pgrep");
    assert!(
        shims.stdout.is_empty(),
        "processes naming {} left: {}",
        dir.display(),
        String::from_utf8_lossy(&shims.stdout)
    );
}
