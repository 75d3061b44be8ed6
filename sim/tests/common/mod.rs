//! Helpers shared by the integration tests of forge-sim.
#![allow(dead_code)]

use forge_sim::apiserver::{ApiServer, ApiServerOptions};

/// Starts a real API server, or returns None (loudly) when `FORGE_SKIP_APISERVER_TESTS=1`.
pub async fn start_apiserver(test: &str, opts: ApiServerOptions) -> Option<ApiServer> {
    forge_sim::apiserver::start_for_test(test, opts).await
}

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchEvent, WatchParams,
};
use serde::de::DeserializeOwned;

/// The CRD YAML files: the generated `deploy/crds/*.yaml` when they exist, else the fallback
/// fixture of this crate.
pub fn crd_files() -> Vec<PathBuf> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&deploy)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        files.push(fixture("crds.yaml"));
    }
    files
}

/// A file under `sim/tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every CRD in the CRD files (multi-document YAML allowed).
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut out = Vec::new();
    for f in crd_files() {
        let text = std::fs::read_to_string(&f).expect("read CRD file");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).expect("yaml");
            if value.is_null() {
                continue;
            }
            out.push(serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        }
    }
    out
}

use serde::Deserialize;

/// Creates the CRDs and waits until each is Established.
pub async fn install_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        api.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("create CRD {name}: {e}"));
        wait_established(&api, &name).await;
    }
}

/// Polls a CRD until its Established condition is True (10 s at most).
pub async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let crd = api.get(name).await.expect("get CRD");
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        assert!(Instant::now() < deadline, "CRD {name} not Established in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dynamic resource of CardanoForgeCluster.
pub fn cfc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cardano.io", "v1", "CardanoForgeCluster"),
        "cardanoforgeclusters",
    )
}

/// The namespaced dynamic API of CardanoForgeCluster.
pub fn cfc_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &cfc_resource())
}

/// Runs the real kubectl with its own kubeconfig and cache dir; returns (success, stdout, stderr).
pub fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl (apt-get install kubectl?)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lists `api` for its current resourceVersion and watches from there, as a client that must not
/// miss a change does; the server ends the watch after `timeout_secs`.
pub async fn watch_from_now<K>(
    api: &Api<K>,
    timeout_secs: u32,
) -> BoxStream<'static, kube::Result<WatchEvent<K>>>
where
    K: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    api.watch(&WatchParams::default().timeout(timeout_secs), &rv)
        .await
        .expect("watch")
        .boxed()
}
