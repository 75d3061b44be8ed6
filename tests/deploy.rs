//! The plain manifests in `deploy/` against the real kube-apiserver (Kubernetes 1.20 built from
//! Debian's source package) with RBAC authorisation on, and against `forge-manager config`:
//!
//! - the CRDs are applied for real, then every other manifest is `kubectl apply
//!   --dry-run=server`, so the API server validates each object against its real schema (the
//!   CardanoForgeCluster and CardanoLeader examples against our CRDs);
//! - Kubernetes 1.20 has no native sidecars (`restartPolicy: Always` on an init container, 1.28+):
//!   kubectl's validation rejects that one field and, with `--validate=false`, the server prunes
//!   it. So a StatefulSet is checked twice: with that field removed, under full validation (every
//!   other field is valid for 1.20), and as written with `--validate=false` (asserting that the
//!   only thing 1.20 drops is that field). The manifests stay correct for modern clusters;
//!   they need Kubernetes >= 1.29 (native sidecars on by default);
//! - the RBAC is applied for real and checked with `kubectl auth can-i` as the ServiceAccounts:
//!   exactly the verbs granted, no lease delete, nothing outside the namespace;
//! - each StatefulSet's sidecar environment is accepted by `forge-manager config`, and the names
//!   it derives are the names of the example CardanoLeader and CardanoForgeCluster objects.
//!
//! Needs `kubectl` (Debian's `kubernetes-client`, installed by `.ci/run`) and the API server
//! binary; `FORGE_SKIP_APISERVER_TESTS=1` skips the API server part loudly.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use forge_sim::apiserver::{ApiServer, ApiServerOptions, start_for_test};
use forge_sim::process::output_with_stdin;
use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

/// Every manifest under `deploy/` except the generated CRDs, the namespace (applied for real
/// first) and the Prometheus/Grafana files, which are not Kubernetes objects.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if p.is_dir() {
                if !matches!(name.as_str(), "crds" | "prometheus" | "grafana") {
                    walk(&p, out);
                }
            } else if (name.ends_with(".yaml") || name.ends_with(".yml")) && name != "namespace.yaml" {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&deploy(), &mut out);
    out
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn s<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn str_at(v: &Value, path: &str) -> String {
    s(v, path).as_str().unwrap_or_default().to_string()
}

struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn new(server: &ApiServer) -> Self {
        Self {
            kubeconfig: server.admin_kubeconfig().to_path_buf(),
            cache: tempfile::tempdir().expect("cache dir"),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        output_with_stdin(&mut cmd, stdin).expect("kubectl runs (apt-get install kubernetes-client)")
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr_without_skew(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// kubectl 1.32 against a 1.20 server warns about the version skew: expected noise.
fn stderr_without_skew(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("exceeds the supported minor version skew"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The manifest text without the native-sidecar field (the one field Kubernetes 1.20 lacks).
fn without_native_sidecar_field(text: &str) -> String {
    text.lines()
        .filter(|l| l.trim() != "restartPolicy: Always")
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_is_accepted_by_the_real_api_server_and_rbac_is_least_privilege() {
    let test = "every_manifest_is_accepted_by_the_real_api_server_and_rbac_is_least_privilege";
    let opts = ApiServerOptions {
        authorization_mode: "RBAC".into(),
        ..ApiServerOptions::default()
    };
    let Some(server) = start_for_test(test, opts).await else {
        return;
    };
    let k = Kubectl::new(&server);

    // The CRDs and the namespace for real, as the README's Install section does.
    let crds = deploy().join("crds");
    k.ok(&["apply", "-f", crds.to_str().expect("utf-8")], None);
    k.ok(
        &[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            "crd/cardanoforgeclusters.cardano.io",
            "crd/cardanoleaders.cardano.io",
        ],
        None,
    );
    let ns = deploy().join("namespace.yaml");
    k.ok(&["apply", "-f", ns.to_str().expect("utf-8")], None);

    let files = manifests();
    assert!(files.len() >= 8, "manifests found: {files:?}");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
        let text = std::fs::read_to_string(file).expect("read");
        for doc in documents(file) {
            *kinds.entry(str_at(&doc, "kind")).or_default() += 1;
        }
        if text.contains("restartPolicy: Always") {
            // Full validation of everything Kubernetes 1.20 knows.
            let stripped = without_native_sidecar_field(&text);
            let out = k.ok(&["apply", "--dry-run=server", "-f", "-"], Some(&stripped));
            eprintln!("{shown} (without restartPolicy, validated):\n{out}");
            // As written: kubectl's 1.20 schema rejects exactly the native-sidecar field...
            let out = k.run(
                &["apply", "--dry-run=server", "-f", file.to_str().expect("utf-8")],
                None,
            );
            let err = stderr_without_skew(&out);
            assert!(
                !out.status.success(),
                "{shown}: 1.20 validation accepted restartPolicy?"
            );
            assert!(
                err.contains("unknown field \"restartPolicy\""),
                "{shown}: unexpected validation error: {err}"
            );
            // ...and without client validation the server accepts the rest and prunes it.
            let json = k.ok(
                &[
                    "apply",
                    "--dry-run=server",
                    "--validate=false",
                    "-o",
                    "json",
                    "-f",
                    file.to_str().expect("utf-8"),
                ],
                None,
            );
            let list: serde_json::Value = serde_json::from_str(&json).expect("kubectl -o json");
            let items = list["items"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![list.clone()]);
            let sts = items
                .iter()
                .find(|i| i["kind"] == "StatefulSet")
                .expect("a StatefulSet");
            let inits = sts["spec"]["template"]["spec"]["initContainers"]
                .as_array()
                .expect("initContainers");
            assert!(
                inits.iter().all(|c| c.get("restartPolicy").is_none()),
                "{shown}: 1.20 kept restartPolicy on an init container?"
            );
            eprintln!("{shown}: accepted by 1.20 with --validate=false, native-sidecar field pruned");
        } else {
            let out = k.ok(
                &["apply", "--dry-run=server", "-f", file.to_str().expect("utf-8")],
                None,
            );
            eprintln!("{shown}:\n{out}");
        }
    }
    for kind in [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "StatefulSet",
        "CardanoForgeCluster",
        "CardanoLeader",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} in deploy/: {kinds:?}");
    }
    assert_eq!(kinds["CardanoForgeCluster"], 3, "one per region");
    assert!(
        !kinds.contains_key("ClusterRole") && !kinds.contains_key("ClusterRoleBinding"),
        "nothing cluster-wide: {kinds:?}"
    );

    // RBAC for real, then ask the API server what each ServiceAccount may do.
    for f in ["rbac.yaml", "rbac-peer-readonly.yaml"] {
        k.ok(&["apply", "-f", deploy().join(f).to_str().expect("utf-8")], None);
    }
    let can = |who: &str, verb: &str, resource: &str, ns: &str| -> bool {
        let as_ = format!("--as=system:serviceaccount:cardano:{who}");
        let out = k.run(&["auth", "can-i", verb, resource, "-n", ns, &as_], None);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            answer == "yes" || answer == "no",
            "can-i {verb} {resource}: {answer:?} {}",
            stderr_without_skew(&out)
        );
        answer == "yes"
    };
    let read = ["get", "list", "watch"];
    let write = ["create", "update", "patch"];
    let mut table = Vec::new();
    for verb in read.iter().chain(&write) {
        for res in [
            "leases.coordination.k8s.io",
            "cardanoleaders.cardano.io",
            "cardanoforgeclusters.cardano.io",
        ] {
            table.push(("forge-manager", *verb, res.to_string(), "cardano", true));
            let peer_may = read.contains(verb);
            table.push((
                "forge-manager-peer-reader",
                *verb,
                res.to_string(),
                "cardano",
                peer_may,
            ));
            // Nothing outside the namespace.
            table.push(("forge-manager", *verb, res.to_string(), "default", false));
        }
    }
    for res in [
        "cardanoleaders.cardano.io/status",
        "cardanoforgeclusters.cardano.io/status",
    ] {
        for verb in ["get", "update", "patch"] {
            table.push(("forge-manager", verb, res.to_string(), "cardano", true));
            table.push((
                "forge-manager-peer-reader",
                verb,
                res.to_string(),
                "cardano",
                verb == "get",
            ));
        }
    }
    for (who, verb, res, ns, want) in [
        (
            "forge-manager",
            "delete",
            "leases.coordination.k8s.io",
            "cardano",
            false,
        ),
        (
            "forge-manager",
            "delete",
            "cardanoforgeclusters.cardano.io",
            "cardano",
            false,
        ),
        (
            "forge-manager",
            "delete",
            "cardanoleaders.cardano.io",
            "cardano",
            false,
        ),
        // CredentialsRefused events: written, never read back or deleted.
        ("forge-manager", "create", "events.events.k8s.io", "cardano", true),
        ("forge-manager", "patch", "events.events.k8s.io", "cardano", true),
        ("forge-manager", "list", "events.events.k8s.io", "cardano", false),
        (
            "forge-manager",
            "delete",
            "events.events.k8s.io",
            "cardano",
            false,
        ),
        (
            "forge-manager",
            "create",
            "events.events.k8s.io",
            "default",
            false,
        ),
        ("forge-manager", "get", "secrets", "cardano", false),
        ("forge-manager", "list", "pods", "cardano", false),
        ("forge-manager", "list", "namespaces", "cardano", false),
        (
            "forge-manager",
            "create",
            "customresourcedefinitions.apiextensions.k8s.io",
            "cardano",
            false,
        ),
        ("forge-manager-peer-reader", "get", "secrets", "cardano", false),
        (
            "forge-manager-peer-reader",
            "delete",
            "leases.coordination.k8s.io",
            "cardano",
            false,
        ),
    ] {
        table.push((who, verb, res.to_string(), ns, want));
    }
    let wrong: Vec<String> = table
        .iter()
        .filter(|(who, verb, res, ns, want)| can(who, verb, res, ns) != *want)
        .map(|(who, verb, res, ns, want)| format!("{who} {verb} {res} -n {ns}: expected {want}"))
        .collect();
    eprintln!("RBAC: {} can-i checks", table.len());
    assert!(
        wrong.is_empty(),
        "RBAC differs from least privilege:\n{}",
        wrong.join("\n")
    );
}

/// The env of the `forge-manager` container of each StatefulSet in `deploy/`, with the downward
/// API values filled in as the kubelet would.
fn sidecar_envs() -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for file in manifests() {
        for doc in documents(&file) {
            if str_at(&doc, "kind") != "StatefulSet" {
                continue;
            }
            let ns = str_at(&doc, "metadata.namespace");
            let pod = format!("{}-0", str_at(&doc, "metadata.name"));
            let spec = s(&doc, "spec.template.spec");
            let containers = spec["initContainers"]
                .as_sequence()
                .into_iter()
                .chain(spec["containers"].as_sequence())
                .flatten();
            let sidecar = containers
                .into_iter()
                .find(|c| c["name"] == "forge-manager")
                .unwrap_or_else(|| panic!("{}: no forge-manager container", file.display()));
            let env = sidecar["env"]
                .as_sequence()
                .expect("env")
                .iter()
                .map(|e| {
                    let name = str_at(e, "name");
                    let value = match s(e, "valueFrom.fieldRef.fieldPath").as_str() {
                        Some("metadata.namespace") => ns.clone(),
                        Some("metadata.name") => pod.clone(),
                        // What the downward API gives: the pod's UID.
                        Some("metadata.uid") => "3f1c2b9e-5a7d-4c8e-9b0a-1d2e3f4a5b6c".into(),
                        Some(other) => panic!("unexpected fieldRef {other}"),
                        None => str_at(e, "value"),
                    };
                    (name, value)
                })
                .collect();
            out.push((file.display().to_string(), env));
        }
    }
    out
}

fn config(env: &[(String, String)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_forge-manager"))
        .arg("config")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run forge-manager config");
    assert!(
        out.status.success(),
        "forge-manager config refused {env:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::from_slice(&out.stdout).expect("config prints YAML")
}

#[test]
fn each_statefulsets_sidecar_env_is_valid_and_names_the_example_objects() {
    let envs = sidecar_envs();
    assert!(
        envs.len() >= 2,
        "guard and reference-layout StatefulSets: {envs:?}"
    );
    let leader = documents(&deploy().join("cardanoleader.yaml"));
    let leader_name = str_at(&leader[0], "metadata.name");
    for (file, env) in &envs {
        let cfg = config(env);
        assert_eq!(str_at(&cfg, "names.leader"), leader_name, "{file}");
        assert_eq!(
            s(&cfg, "node.starts_non_producing").as_bool(),
            Some(true),
            "{file}"
        );
        assert_eq!(str_at(&cfg, "namespace"), "cardano", "{file}");
    }
    // Each region's CardanoForgeCluster carries the name the sidecar derives in that region.
    let (_, guard_env) = envs
        .iter()
        .find(|(f, _)| f.ends_with("statefulset-guard.yaml"))
        .expect("statefulset-guard.yaml");
    let dir = deploy().join("multi-region");
    let mut regions = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/multi-region") {
        let path = entry.expect("entry").path();
        for cfc in documents(&path) {
            if str_at(&cfc, "kind") != "CardanoForgeCluster" {
                continue;
            }
            regions += 1;
            let region = str_at(&cfc, "spec.region");
            let mut env = guard_env.clone();
            env.extend([
                ("ENABLE_CLUSTER_MANAGEMENT".into(), "true".into()),
                ("CLUSTER_REGION".into(), region.clone()),
                (
                    "CLUSTER_PRIORITY".into(),
                    s(&cfc, "spec.priority").as_u64().expect("priority").to_string(),
                ),
            ]);
            let cfg = config(&env);
            assert_eq!(
                str_at(&cfg, "names.cluster"),
                str_at(&cfc, "metadata.name"),
                "{}",
                path.display()
            );
            assert_eq!(str_at(&cfg, "cluster.region"), region);
        }
    }
    assert_eq!(regions, 3);
}
