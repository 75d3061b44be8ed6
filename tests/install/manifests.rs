//! The plain manifests of `deploy/`: rendered for Kubernetes 1.20 (native sidecars moved into
//! `containers`, the local images, a small node), applied (three pods Ready, one forger) and
//! deleted (no pod and no forger left).
use std::path::Path;
use std::time::Instant;

use forge_sim::timeline;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::{
    pods::{no_pods_left, settled_named},
    timelines::{no_overlap, removed_cleanly},
    tools::{Tools, root},
};

/// A manifest of `deploy/` as a user of Kubernetes 1.20 to 1.28 applies it (the manifests' header
/// says how): each native sidecar (an init container with `restartPolicy: Always`, Kubernetes
/// 1.29 and later) moved, without that field, to the top of `containers`. And what this test
/// world needs, as in [`values`]: the local images (the forge-manager one is `sidecar_image`),
/// never pulled, small node requests and the realistic simulator's settings.
fn render_for_1_20(path: &Path, sidecar_image: &str) -> String {
    use serde::Deserialize;
    use serde_yaml::Value;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if v["kind"].as_str() == Some("StatefulSet") {
            let spec = &mut v["spec"]["template"]["spec"];
            let inits = spec["initContainers"].as_sequence().cloned().unwrap_or_default();
            let (native, mut inits): (Vec<Value>, Vec<Value>) = inits
                .into_iter()
                .partition(|c| c["restartPolicy"].as_str() == Some("Always"));
            let mut containers = spec["containers"].as_sequence().cloned().unwrap_or_default();
            for mut c in native.into_iter().rev() {
                c.as_mapping_mut().expect("container").remove("restartPolicy");
                containers.insert(0, c);
            }
            let node_env: Value = serde_yaml::from_str(
                "[{name: NODE_REPLAY_MS, value: '3000'}, {name: NODE_RELOAD_MS, value: '20..1500'}, \
                 {name: NODE_HANDLER_DELAY_MS, value: '150'}]",
            )
            .expect("env");
            for c in inits.iter_mut().chain(containers.iter_mut()) {
                let image = c["image"].as_str().unwrap_or_default().to_string();
                c["image"] = Value::from(if image.contains("/forge-manager:") {
                    sidecar_image
                } else {
                    "localhost/cardano-node:sim"
                });
                c["imagePullPolicy"] = Value::from("Never");
                if c["name"].as_str() == Some("cardano-node") {
                    c["resources"] =
                        serde_yaml::from_str("{requests: {cpu: 10m, memory: 32Mi}}").expect("resources");
                    c["env"] = node_env.clone();
                }
            }
            // YAML 1.1 (kubectl) reads `defaultMode: 0400` as octal; serde_yaml (YAML 1.2) as
            // the string "0400": written back as the number kubectl means.
            for vol in spec["volumes"].as_sequence_mut().into_iter().flatten() {
                for kind in ["secret", "configMap"] {
                    let Some(mode) = vol.get_mut(kind).and_then(|v| v.get_mut("defaultMode")) else {
                        continue;
                    };
                    if let Some(octal) = mode.as_str().and_then(|m| u32::from_str_radix(m, 8).ok()) {
                        *mode = Value::from(octal);
                    }
                }
            }
            let spec = spec.as_mapping_mut().expect("pod spec");
            if inits.is_empty() {
                spec.remove("initContainers");
            } else {
                spec.insert("initContainers".into(), Value::Sequence(inits));
            }
            spec.insert("containers".into(), Value::Sequence(containers));
        }
        docs.push(serde_yaml::to_string(&v).expect("yaml"));
    }
    docs.join("---\n")
}

/// `deploy/{manifest}` rendered for 1.20 with `sidecar_image` ([`render_for_1_20`]) into `work`,
/// then `kubectl apply` of it (with deploy/'s namespace, CRDs and RBAC): three pods Running and
/// Ready, exactly one forger since the apply, by the node timelines; then `kubectl delete` of
/// the same file: no pod and no forger left. Returns the pod spec of the forger.
pub(crate) async fn apply_manifest(
    tools: &Tools,
    pods: &Api<Pod>,
    sts: &Api<StatefulSet>,
    pv_root: &Path,
    work: &Path,
    manifest: &str,
    sidecar_image: &str,
    what: &str,
) -> k8s_openapi::api::core::v1::PodSpec {
    let rendered = work.join(manifest.replace(".yaml", "-1.20.yaml"));
    std::fs::write(
        &rendered,
        render_for_1_20(&root().join("deploy").join(manifest), sidecar_image),
    )
    .expect("write manifest");
    let file = rendered.to_str().expect("path");
    let deploy = root().join("deploy");
    let at = Instant::now();
    let t = timeline::unix_now_ns();
    tools.kubectl(&[
        "apply",
        "-f",
        deploy.join("namespace.yaml").to_str().expect("path"),
        "-f",
        deploy.join("crds").to_str().expect("path"),
        "-f",
        deploy.join("rbac.yaml").to_str().expect("path"),
        "-f",
        file,
    ]);
    let forger = settled_named(pods, sts, "cardano-bp", pv_root, what).await;
    let v = no_overlap(pv_root, t, what);
    assert_eq!(
        v.forgers.len(),
        1,
        "{what}: one node forged since the apply: {v:?}"
    );
    eprintln!(
        "install: {what}: apply to three pods Ready and one forger ({forger}): {:.1} s",
        at.elapsed().as_secs_f64()
    );
    let spec = pods.get(&forger).await.expect("forger pod").spec.expect("spec");
    let t = timeline::unix_now_ns();
    let deleted = Instant::now();
    tools.kubectl(&["delete", "-f", file, "--wait=false"]);
    no_pods_left(pods, what).await;
    eprintln!(
        "install: {what}: delete to no pod: {:.1} s",
        deleted.elapsed().as_secs_f64()
    );
    removed_cleanly(pv_root, t, &format!("{what}: delete"));
    spec
}
