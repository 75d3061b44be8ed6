//! Contract of the ClusterWatcher and the StatusWriter with cluster management on, against the
//! real kube-apiserver:
//! replicas starting together create our CardanoForgeCluster once (409-safe) and both report
//! its spec; spec changes are reported with their generation; an invalid spec and a deletion
//! are reported as unavailable (fail closed), and a deleted object is re-created from
//! configuration; the status is merge-patched, and an unchanged one that is not a claim is not
//! written again; a first write with no status seen is conditioned on a fresh read, so a write
//! delayed past another pod's claim is refused.
mod kube_support;

use std::{sync::Arc, time::Duration};

use actix::{Actor, Addr};
use forge_actors::{
    adapters::{kube::client, kube_object::NamedObject},
    cluster_watcher::{ClusterObject, ClusterWatcher},
    messages::{CfcSeen, WriteStatus},
    ports::ForgeClusterApi,
    status_writer::StatusWriter,
    testing::Probe,
};
use forge_core::{
    crd::{CardanoForgeCluster, ForgeState},
    decision::Event,
};
use forge_sim::{apiserver::ApiServer, proxy::FaultProxy};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube_support::{eventually, report, server_with_crds, spec, until};

const TIMEOUT: Duration = Duration::from_secs(5);
const NAME: &str = "pool-us-east-1";

/// Requests on CardanoForgeClusters the API server has answered (its metrics), by verbs,
/// subresource ("" for the object) and, when given, response code. (kube-apiserver 1.20 counts
/// a GET of one custom object under the verb LIST.)
async fn cfc_requests(server: &ApiServer, verbs: &[&str], subresource: &str, code: Option<&str>) -> f64 {
    let admin = client(Some(server.admin_kubeconfig()), TIMEOUT)
        .await
        .expect("admin");
    let request = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = admin.request_text(request).await.expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"cardanoforgeclusters\"")
                && l.contains(&format!("subresource=\"{subresource}\""))
                && verbs.iter().any(|v| l.contains(&format!("verb=\"{v}\"")))
                && code.is_none_or(|c| l.contains(&format!("code=\"{c}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A pod's ClusterWatcher and StatusWriter, wired as `system::spawn_all` wires them: the watcher's
/// reads reach the writer (`CfcSeen`). Returns the Decider stand-in and the writer.
async fn watcher(server: &ApiServer, pod: &str) -> (Probe, Addr<StatusWriter>) {
    let c = client(Some(server.admin_kubeconfig()), TIMEOUT)
        .await
        .expect("client");
    let probe = Probe::start();
    let object: Arc<ForgeClusterApi> = Arc::new(NamedObject::new(c.clone(), "default", NAME, TIMEOUT));
    let leader = Arc::new(NamedObject::new(c, "default", "pool-leader", TIMEOUT));
    let writer = StatusWriter::new(leader, pod, None)
        .with_cluster(object.clone())
        .start();
    let cluster = ClusterObject {
        object,
        default_spec: spec(),
        fact: probe.recipient(),
        idle: Duration::from_secs(30),
        retry_after: Duration::from_millis(200),
        network: ("preview".into(), 2),
        health_spec: None,
        seen: Some(writer.clone().recipient()),
    };
    ClusterWatcher::new(cluster, None).start();
    (probe, writer)
}

#[actix::test]
async fn the_cluster_watcher_follows_creates_and_writes_our_cardano_forge_cluster() {
    let Some((server, _, cfcs)) = server_with_crds(
        "the_cluster_watcher_follows_creates_and_writes_our_cardano_forge_cluster",
        "pod-0",
    )
    .await
    else {
        return;
    };

    // Two replicas start together: one creates, the other reads theirs (409), both report.
    let (p0, w0) = watcher(&server, "pod-0").await;
    let (p1, _w1) = watcher(&server, "pod-1").await;
    for p in [&p0, &p1] {
        let e = until(p, "the created spec", |e| {
            matches!(e, Event::ClusterSpecChanged { .. })
        })
        .await;
        assert!(
            matches!(&e, Event::ClusterSpecChanged { spec: s, generation: Some(1) } if **s == spec()),
            "{e:?}"
        );
    }

    // The status: written, then not written again while unchanged.
    w0.send(WriteStatus(report(true, Some(1))))
        .await
        .expect("mailbox")
        .expect("status written");
    let written = cfcs.get(NAME).await.expect("get");
    let status = written.status.clone().expect("status");
    assert_eq!(status.forging_enabled, Some(true));
    assert_eq!(status.active_leader.as_deref(), Some("pod-0"));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.reason.as_deref(), Some("single_cluster_leader"));
    assert!(status.last_transition.is_some());
    // A write conditioned on an old resourceVersion is refused (what keeps a delayed write
    // from landing over a newer one).
    let c = client(Some(server.admin_kubeconfig()), TIMEOUT)
        .await
        .expect("client");
    let raw: NamedObject<CardanoForgeCluster> = NamedObject::new(c, "default", NAME, TIMEOUT);
    let stale = raw
        .patch_status_at(&serde_json::json!({"reason": "stale"}), Some("1"))
        .await;
    assert!(
        matches!(stale, Err(forge_actors::ports::ApiError::Conflict(_))),
        "{stale:?}"
    );
    // A transition moves lastTransition.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w0.send(WriteStatus(report(false, Some(1))))
        .await
        .expect("mailbox")
        .expect("written");
    let stopped = cfcs.get(NAME).await.expect("get").status.expect("status");
    assert_eq!(stopped.forging_enabled, Some(false));
    assert_ne!(stopped.last_transition, status.last_transition);
    // An unchanged status is not written again, unless it is a claim (a claim is confirmed by
    // the server, never by our cached copy).
    let before = cfcs.get(NAME).await.expect("get");
    w0.send(WriteStatus(report(false, Some(1))))
        .await
        .expect("mailbox")
        .expect("unchanged");
    let again = cfcs.get(NAME).await.expect("get");
    assert_eq!(
        again.metadata.resource_version, before.metadata.resource_version,
        "an unchanged status is not written"
    );
    // F15: a claim is written to the server even when our cached copy already shows it (the
    // server answers a no-op patch without a new resourceVersion: its request count tells).
    w0.send(WriteStatus(report(true, Some(1))))
        .await
        .expect("mailbox")
        .expect("claim written");
    let patches = cfc_requests(&server, &["PATCH"], "status", None).await;
    w0.send(WriteStatus(report(true, Some(1))))
        .await
        .expect("mailbox")
        .expect("claim written again");
    assert!(
        cfc_requests(&server, &["PATCH"], "status", None).await > patches,
        "an unchanged claim was confirmed from the cache, not written"
    );

    // A spec change arrives with its generation.
    let params = PatchParams::default();
    cfcs.patch(
        NAME,
        &params,
        &Patch::Merge(serde_json::json!({"spec": {"forgeState": "Disabled"}})),
    )
    .await
    .expect("patch");
    let e = until(
        &p0,
        "the Disabled spec",
        |e| matches!(e, Event::ClusterSpecChanged { spec, .. } if spec.forge_state == ForgeState::Disabled),
    )
    .await;
    assert!(
        matches!(
            e,
            Event::ClusterSpecChanged {
                generation: Some(2),
                ..
            }
        ),
        "{e:?}"
    );

    // Another network's spec is not ours: fail closed.
    cfcs.patch(
        NAME,
        &params,
        &Patch::Merge(serde_json::json!({"spec": {"network": {"magic": 1}}})),
    )
    .await
    .expect("patch");
    let e = until(&p0, "unavailable (network)", |e| {
        matches!(e, Event::ClusterSpecUnavailable { .. })
    })
    .await;
    assert!(
        matches!(&e, Event::ClusterSpecUnavailable { why } if why.contains("network")),
        "{e:?}"
    );

    // Deleted: unavailable, then re-created from configuration.
    let before = p0.events().len();
    cfcs.delete(NAME, &DeleteParams::default()).await.expect("delete");
    let e = until(
        &p0,
        "unavailable (deleted)",
        |e| matches!(e, Event::ClusterSpecUnavailable { why } if why.contains("deleted")),
    )
    .await;
    drop(e);
    let recreated = eventually(200, Duration::from_millis(50), || {
        p0.events()
            .split_off(before)
            .iter()
            .any(|e| matches!(e, Event::ClusterSpecChanged { spec: s, .. } if **s == spec()))
    })
    .await;
    assert!(recreated, "not re-created from configuration: {:?}", p0.events());
}

/// F15: the first CardanoForgeCluster status write of a writer that has seen no status yet
/// reads the object and writes conditioned on that `resourceVersion`, so a write delayed past
/// another pod's claim is refused (409) and not applied: the command fails and the other pod's
/// claim stays. Requests from the writer go through the fault proxy with 2 s of latency, and
/// the other claim is written as soon as the server has answered the writer's read, so it lands
/// between the read and the delayed patch.
#[actix::test]
async fn a_first_status_write_based_on_a_stale_read_is_refused_and_not_applied() {
    let Some((server, _, cfcs)) = server_with_crds(
        "a_first_status_write_based_on_a_stale_read_is_refused_and_not_applied",
        "pod-0",
    )
    .await
    else {
        return;
    };
    cfcs.create(&Default::default(), &CardanoForgeCluster::new(NAME, spec()))
        .await
        .expect("create");
    let status_patch = |leader: &str, forging: bool, reason: &str| {
        Patch::Merge(serde_json::json!({"status": {
            "activeLeader": leader, "forgingEnabled": forging, "reason": reason,
        }}))
    };
    cfcs.patch_status(
        NAME,
        &PatchParams::default(),
        &status_patch("pod-0", false, "node_down"),
    )
    .await
    .expect("an earlier status");

    let proxy = FaultProxy::start_local(server.addr()).await.expect("proxy");
    let kubeconfig = server
        .kubeconfig_via("pod-0", proxy.handle().local_addr())
        .expect("kubeconfig");
    let c = client(Some(&kubeconfig), TIMEOUT).await.expect("client");
    let object = Arc::new(NamedObject::new(c.clone(), "default", NAME, TIMEOUT));
    let leader = Arc::new(NamedObject::new(c, "default", "pool-leader", TIMEOUT));
    // No ClusterWatcher: the writer has seen no status when the claim is to be written.
    let writer = StatusWriter::new(leader, "pod-0", None)
        .with_cluster(object)
        .start();
    // Its start-up read of the CardanoLeader is done once it has handled a message.
    writer.send(CfcSeen(None)).await.expect("mailbox");
    let reads_before = cfc_requests(&server, &["GET", "LIST"], "", None).await;
    proxy.handle().latency(Duration::from_secs(2), Duration::ZERO);
    let write = tokio::task::spawn_local(writer.send(WriteStatus(report(true, Some(1)))));
    // As soon as the server has answered the writer's read, pod-1 claims (the writer's patch
    // is still 2 s away from the server).
    let mut claimed = false;
    for _ in 0..200 {
        if cfc_requests(&server, &["GET", "LIST"], "", None).await > reads_before {
            cfcs.patch_status(
                NAME,
                &PatchParams::default(),
                &status_patch("pod-1", true, "single_cluster_leader"),
            )
            .await
            .expect("pod-1's claim");
            claimed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result = write.await.expect("task").expect("mailbox");
    assert!(claimed, "the writer did not read the object: {result:?}");
    assert!(
        result.is_err(),
        "a write based on the read before pod-1's claim must fail, got {result:?}"
    );
    assert!(
        cfc_requests(&server, &["PATCH"], "status", Some("409")).await >= 1.0,
        "the delayed write was not refused by the server"
    );
    let status = cfcs.get(NAME).await.expect("get").status.expect("status");
    assert_eq!(
        (status.active_leader.as_deref(), status.forging_enabled),
        (Some("pod-1"), Some(true)),
        "the delayed write landed over pod-1's claim: {status:?}"
    );
    proxy.stop().await;
}
