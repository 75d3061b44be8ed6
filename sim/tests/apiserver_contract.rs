//! Contract tests against the real kube-apiserver 1.20.2: what forge-manager relies on (CRDs and
//! custom resources with a status subresource, Leases and resourceVersion conflicts, watches and
//! the in-stream 410), through kube 5 and through the real kubectl 1.32.
//!
//! Each test starts its own server and stops it at its end (also on panic, through `Drop`).
mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use forge_sim::apiserver::ApiServerOptions;

const T: Duration = Duration::from_secs(10);

fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    }
}

fn cfc(name: &str) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &common::cfc_resource()).within("default");
    obj.data = json!({"spec": {
        "forgeState": "Priority-based",
        "priority": 10,
        "region": "eu-west-1",
        "network": {"name": "preprod", "magic": 1}
    }});
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_apiserver_honours_the_kube_contract() {
    let Some(server) =
        common::start_apiserver("kube contract", ApiServerOptions::with_identities(["pod-0"])).await
    else {
        return;
    };
    let client = server.client("admin").await.expect("admin client");

    // --- CRDs and a CardanoForgeCluster with its status subresource -------------------------
    common::install_crds(&client).await;
    let api = common::cfc_api(&client, "default");
    let created = api
        .create(&PostParams::default(), &cfc("pool1-eu"))
        .await
        .expect("create cfc");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );
    let got = api.get("pool1-eu").await.expect("get cfc");
    assert_eq!(got.data["spec"]["region"], "eu-west-1");
    let list = api.list(&ListParams::default()).await.expect("list cfc");
    assert_eq!(list.items.len(), 1);
    assert!(
        list.metadata.resource_version.is_some_and(|rv| !rv.is_empty()),
        "a list has a resourceVersion"
    );

    // Invalid spec is rejected with 422 naming the field.
    let mut bad = cfc("bad");
    bad.data["spec"]["forgeState"] = json!("Sometimes");
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("forgeState"), "{}", s.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }

    // Status through the status subresource, empty strings included (the Go 1.19 fix).
    let status = json!({"status": {
        "effectiveState": "Enabled",
        "effectivePriority": 10,
        "activeLeader": "",
        "forgingEnabled": false,
        "reason": "",
        "message": "",
        "observedGeneration": 1
    }});
    let patched = api
        .patch_status("pool1-eu", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status with empty strings");
    assert_eq!(patched.data["status"]["effectiveState"], "Enabled");
    assert_eq!(patched.data["status"]["activeLeader"], "");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "a status write does not bump the generation"
    );
    // The main resource ignores status; the status subresource ignores spec.
    let p = api
        .patch(
            "pool1-eu",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"priority": 20}, "status": {"effectiveState": "Disabled"}})),
        )
        .await
        .expect("patch spec");
    assert_eq!(p.metadata.generation, Some(2));
    assert_eq!(p.data["status"]["effectiveState"], "Enabled");
    let p = api
        .patch_status(
            "pool1-eu",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"priority": 30}, "status": {"forgingEnabled": true}})),
        )
        .await
        .expect("patch status");
    assert_eq!(p.data["spec"]["priority"], 20);
    assert_eq!(p.data["status"]["forgingEnabled"], true);

    // --- Leases: create, replace, 409 on a stale resourceVersion (as another identity) -------
    let pod = server.client("pod-0").await.expect("pod-0 client");
    let leases: Api<Lease> = Api::namespaced(pod.clone(), "default");
    let first = leases
        .create(&PostParams::default(), &lease("pool1", "pod-0"))
        .await
        .expect("create lease");
    let mut renewed = first.clone();
    renewed.spec.as_mut().expect("spec").lease_transitions = Some(1);
    let renewed = leases
        .replace("pool1", &PostParams::default(), &renewed)
        .await
        .expect("replace with current rv");
    assert_ne!(renewed.metadata.resource_version, first.metadata.resource_version);
    let mut stale = first.clone();
    stale.spec.as_mut().expect("spec").holder_identity = Some("pod-1".into());
    match leases.replace("pool1", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}"),
        other => panic!("expected 409, got {other:?}"),
    }
    match leases
        .create(&PostParams::default(), &lease("pool1", "pod-1"))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "AlreadyExists is a 409 too: {s:?}"),
        other => panic!("expected 409, got {other:?}"),
    }

    // --- A watch delivers events -------------------------------------------------------------
    let mut stream = common::watch_from_now(&leases, 30).await;
    leases
        .create(&PostParams::default(), &lease("watched", "pod-0"))
        .await
        .expect("create");
    leases
        .delete("watched", &Default::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(T, stream.next())
            .await
            .expect("event in time")
        {
            Some(Ok(WatchEvent::Added(l))) => seen.push(("ADDED", l.metadata.name.unwrap_or_default())),
            Some(Ok(WatchEvent::Deleted(l))) => seen.push(("DELETED", l.metadata.name.unwrap_or_default())),
            Some(Ok(WatchEvent::Bookmark(_) | WatchEvent::Modified(_))) => {}
            other => panic!("unexpected watch item {other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![("ADDED", "watched".into()), ("DELETED", "watched".into())]
    );
    drop(stream);

    // --- A watch from a too old resourceVersion gets the in-stream 410 -----------------------
    // Measured on 1.20.2 (watch_cache.go): a watch is served from the watch cache, whose oldest
    // deliverable RV is that of its first list until its ring buffer wraps. The cache of a custom
    // resource starts when its CRD is created (RV ~60 here), so a watch from "1" is too old:
    // HTTP 200, then one ERROR event with code 410 ("too old resource version: 1 (N)"), then the
    // end of the stream. The leases cache starts with the server (list RV 1) and grows while its
    // events are younger than 75 s, so a leases watch from "1" replays everything as ADDED
    // instead; neither --watch-cache-sizes nor --etcd-compaction-interval changes that quickly.
    let mut old = api
        .watch(&WatchParams::default().timeout(30), "1")
        .await
        .expect("watch from rv 1 opens")
        .boxed();
    match tokio::time::timeout(T, old.next()).await.expect("event in time") {
        Some(Ok(WatchEvent::Error(s))) => {
            assert_eq!(s.code, 410, "{s:?}");
            assert_eq!(s.reason, "Expired");
            assert!(s.message.contains("too old resource version"), "{}", s.message);
        }
        other => panic!("expected an in-stream 410, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(T, old.next())
            .await
            .expect("closed in time")
            .is_none(),
        "stream ends after 410"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_real_apiserver() {
    let Some(server) = common::start_apiserver("kubectl", ApiServerOptions::default()).await else {
        return;
    };
    let cache = tempfile::tempdir().expect("cache dir");
    let kc = server.admin_kubeconfig();
    let run = |args: &[&str]| {
        let (ok, out, err) = common::kubectl(kc, cache.path(), args);
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    };

    for f in common::crd_files() {
        run(&["apply", "-f", &f.to_string_lossy()]);
    }
    run(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/cardanoforgeclusters.cardano.io",
    ]);
    run(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/cardanoleaders.cardano.io",
    ]);
    run(&[
        "apply",
        "--validate=false",
        "-f",
        &common::fixture("cfc-pool1.yaml").to_string_lossy(),
    ]);

    run(&[
        "patch",
        "cfc",
        "pool1-eu",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"priority":5,"forgeState":"Enabled"}}"#,
    ]);
    run(&[
        "patch",
        "cfc",
        "pool1-eu",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"effectiveState":"Enabled","activeLeader":"pod-0","forgingEnabled":true,"reason":""}}"#,
    ]);
    let wide = run(&["get", "cfc", "-o", "wide"]);
    let header = wide.lines().next().unwrap_or_default();
    for col in ["NAME", "STATE", "LEADER", "REGION"] {
        assert!(header.contains(col), "printer column {col} missing:\n{wide}");
    }
    let row = wide.lines().nth(1).unwrap_or_default();
    for cell in ["pool1-eu", "Enabled", "pod-0", "eu-west-1"] {
        assert!(row.contains(cell), "{cell} missing:\n{wide}");
    }
    let narrow = run(&["get", "cfc"]);
    assert!(
        !narrow.contains("REGION"),
        "priority-1 columns only with -o wide:\n{narrow}"
    );

    let spec = run(&[
        "get",
        "cfc",
        "pool1-eu",
        "-o",
        "jsonpath={.spec.priority} {.metadata.generation}",
    ]);
    assert_eq!(spec.trim(), "5 2");

    // A Lease made with the kube client shows up in `kubectl get leases -A`.
    let client = server.client("admin").await.expect("client");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    leases
        .create(&PostParams::default(), &lease("pool1", "pod-0"))
        .await
        .expect("create lease");
    let all = run(&["get", "leases", "-A"]);
    assert!(
        all.lines()
            .any(|l| l.contains("default") && l.contains("pool1") && l.contains("pod-0")),
        "{all}"
    );
}
