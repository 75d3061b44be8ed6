//! The pods as the API server shows them: Running and Ready, a summary and the last log lines
//! for a failure message, hostPath PersistentVolumes for the nodes' data, and the waits until a
//! StatefulSet settled with exactly one forger or until no pod is left (finishing the objects of
//! pods whose containers all exited, which Kubernetes 1.20 leaves for up to a minute).
use std::path::Path;
use std::time::{Duration, Instant};

use forge_sim::timeline;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::{REPLICAS, SETTLE, STS, timelines::events};

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && p.metadata.deletion_timestamp.is_none()
}

/// One hostPath PersistentVolume per replica under `pv_root/{prefix}-{i}` (what a storage
/// provisioner would make), owned by the pods' user.
pub(crate) async fn make_pvs(pvs: &Api<PersistentVolume>, pv_root: &Path, prefix: &str) {
    for i in 0..REPLICAS {
        let dir = pv_root.join(format!("{prefix}-{i}"));
        std::fs::create_dir_all(&dir).expect("pv dir");
        std::os::unix::fs::chown(&dir, Some(10001), Some(10001)).expect("chown pv dir");
        pvs.create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("{prefix}-{i}")},
                "spec": {
                    "capacity": {"storage": "400Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": dir.to_string_lossy(), "type": "Directory"}
                }
            }))
            .expect("pv"),
        )
        .await
        .expect("create pv");
    }
}

fn pod_summary(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            let cs: Vec<String> = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| {
                    cs.iter()
                        .map(|c| format!("{}:ready={} restarts={}", c.name, c.ready, c.restart_count))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{} {} ready={} [{}]",
                p.metadata.name.as_deref().unwrap_or("?"),
                p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("?"),
                ready(p),
                cs.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Deletes, with no grace period left, the object of every terminating pod in `list` whose
/// containers (init containers included) have all exited, as the kubelet reports them: each
/// `terminated`, or, once the kubelet removed it, `waiting` with a last state the kubelet marks
/// `ContainerStatusUnknown` ("could not be located when the pod was deleted").
///
/// Kubernetes 1.20's kubelet removes a terminating pod's object only once the pod's sandbox is
/// gone (kubernetes/kubernetes#88543), and the sandbox of a pod whose containers exited is left
/// to the kubelet's container garbage collection, which runs once a minute: such a pod stays
/// `Terminating` for up to a minute after its last process exited, and a StatefulSet makes its
/// successor only then. Nothing of the pod runs any more (its node's exit is in its timeline),
/// so the wait shows nothing; it cost this test about two and a half minutes. The UID
/// precondition keeps a successor of the same name out of reach.
async fn finish_terminated(pods: &Api<Pod>, list: &[Pod]) {
    for p in list {
        let (Some(name), Some(uid)) = (p.metadata.name.as_deref(), p.metadata.uid.as_deref()) else {
            continue;
        };
        if p.metadata.deletion_timestamp.is_none() {
            continue;
        }
        let Some(status) = p.status.as_ref() else { continue };
        let containers = status.container_statuses.as_deref().unwrap_or_default();
        let inits = status.init_container_statuses.as_deref().unwrap_or_default();
        let exited = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
            let removed = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("ContainerStatusUnknown"));
            c.state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some() || (s.waiting.is_some() && removed))
        };
        if containers.is_empty() || !containers.iter().chain(inits).all(exited) {
            continue;
        }
        let dp = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match pods.delete(name, &dp).await {
            Ok(_) => eprintln!(
                "install: {name}: every container exited; its object deleted (no wait for the kubelet's sandbox collection)"
            ),
            // Gone already, or a successor (another UID).
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => panic!("deleting the terminated pod {name}: {e}"),
        }
    }
}

/// Waits until all replicas run the StatefulSet's current revision, Running and Ready (node
/// included: its readiness is the node port, bound after the replay), and exactly one node
/// forges. Returns the forger's name. Panics with the state seen after `SETTLE`.
pub(crate) async fn settled(pods: &Api<Pod>, sts: &Api<StatefulSet>, pv_root: &Path, what: &str) -> String {
    settled_named(pods, sts, STS, pv_root, what).await
}

/// [`settled`] for the StatefulSet `name`.
pub(crate) async fn settled_named(
    pods: &Api<Pod>,
    sts: &Api<StatefulSet>,
    name: &str,
    pv_root: &Path,
    what: &str,
) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = sts.get(name).await.expect("get statefulset");
        let st = s.status.clone().unwrap_or_default();
        let rolled = st.update_revision.is_some()
            && st.current_revision == st.update_revision
            && st.updated_replicas == Some(REPLICAS as i32)
            && st.ready_replicas == Some(REPLICAS as i32);
        let list = pods.list(&ListParams::default()).await.expect("list pods").items;
        let all_ready = list.len() == REPLICAS && list.iter().all(|p| running(p) && ready(p));
        let forging = timeline::forging_at_end(&events(pv_root));
        if rolled && all_ready && forging.len() == 1 {
            return forging[0].clone();
        }
        finish_terminated(pods, &list).await;
        if Instant::now() > deadline {
            panic!(
                "{what}: not settled after {SETTLE:?}: statefulset {st:?}; pods {}; forging {forging:?}\n{}",
                pod_summary(&list),
                logs_of(pods, &list).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn logs_of(pods: &Api<Pod>, list: &[Pod]) -> String {
    let mut out = String::new();
    for p in list {
        let name = p.metadata.name.clone().unwrap_or_default();
        for c in ["forge-manager", "cardano-node"] {
            let lp = kube::api::LogParams {
                container: Some(c.into()),
                tail_lines: Some(15),
                ..Default::default()
            };
            let text = pods
                .logs(&name, &lp)
                .await
                .unwrap_or_else(|e| format!("(no log: {e})"));
            out.push_str(&format!("--- {name}/{c}\n{text}\n"));
        }
    }
    out
}

/// Waits until no pod is left in the namespace.
pub(crate) async fn no_pods_left(pods: &Api<Pod>, what: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = pods.list(&ListParams::default()).await.expect("pods").items;
        if left.is_empty() {
            return;
        }
        finish_terminated(pods, &left).await;
        assert!(
            Instant::now() < deadline,
            "{what}: pods left: {}",
            pod_summary(&left)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
