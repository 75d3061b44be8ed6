//! Contract of the object adapter with our own CRDs on the real kube-apiserver: the generated
//! CRDs install, concurrent creation is race-safe, status patches (including cleared strings)
//! are accepted, spec and status are separate, and a watch reports deletion.
use std::time::Duration;

use forge_actors::adapters::{kube::client, kube_object::NamedObject};
use forge_core::crd::{
    CardanoForgeCluster, CardanoForgeClusterSpec, CardanoLeader, CardanoLeaderSpec, ForgeState, NetworkSpec,
};
use forge_sim::apiserver::{ApiServer, ApiServerOptions, start_for_test};
use futures::StreamExt;
use kube::api::ObjectMeta;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a real API server, or returns None (loudly) when `FORGE_SKIP_APISERVER_TESTS=1`.
async fn start(test: &str) -> Option<ApiServer> {
    start_for_test(test, ApiServerOptions::with_identities(["pod-0", "pod-1"])).await
}

fn cluster(name: &str, priority: i32) -> CardanoForgeCluster {
    CardanoForgeCluster {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: CardanoForgeClusterSpec::new(
            ForgeState::PriorityBased,
            priority,
            "us-east-1",
            NetworkSpec::new("preview", 2),
        ),
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_crds_round_trip_through_the_real_api_server() {
    let Some(server) = start("our_crds_round_trip_through_the_real_api_server").await else {
        return;
    };
    server.install_crds().await.expect("CRDs");
    let a: NamedObject<CardanoForgeCluster> = NamedObject::new(
        client(server.kubeconfig("pod-0"), TIMEOUT).await.expect("client"),
        "default",
        "preview-pool-us-east-1",
        TIMEOUT,
    );
    let b = NamedObject::new(
        client(server.kubeconfig("pod-1"), TIMEOUT).await.expect("client"),
        "default",
        "preview-pool-us-east-1",
        TIMEOUT,
    );
    let mut watch = Box::pin(a.watch(Duration::from_secs(30)));

    // Two replicas start together and both try to create the object: both end up with it.
    let (one, two) = (
        cluster("preview-pool-us-east-1", 1),
        cluster("preview-pool-us-east-1", 2),
    );
    let (ra, rb) = tokio::join!(a.create_if_absent(&one), b.create_if_absent(&two));
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(ra.metadata.uid, rb.metadata.uid, "one object, not two");
    assert_eq!(
        ra.spec.priority, rb.spec.priority,
        "the loser reads the winner's object"
    );

    // A status with cleared strings is accepted (needs the build fix of the real server).
    let status = serde_json::json!({
        "effectiveState": "Priority-based", "effectivePriority": 1, "activeLeader": "",
        "forgingEnabled": false, "reason": "", "message": "", "observedGeneration": 1
    });
    let patched = a
        .patch_status(&status)
        .await
        .expect("status patch with empty strings");
    let st = patched.status.expect("status");
    assert_eq!(st.active_leader.as_deref(), Some(""));
    assert_eq!(st.effective_state, Some(ForgeState::PriorityBased));
    assert_eq!(patched.spec, ra.spec, "a status patch leaves the spec alone");

    // A status patch that breaks the schema is refused.
    let err = a
        .patch_status(&serde_json::json!({"effectiveState": "Bogus"}))
        .await
        .expect_err("schema");
    assert_eq!(err.kind().as_str(), "invalid", "{err}");

    // The watch saw the object and sees its deletion.
    let first = tokio::time::timeout(TIMEOUT, watch.next())
        .await
        .expect("event")
        .expect("open");
    assert!(first.expect("ok").is_some());
    a.api()
        .delete("preview-pool-us-east-1", &Default::default())
        .await
        .expect("delete");
    let deleted = loop {
        let ev = tokio::time::timeout(TIMEOUT, watch.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok");
        if ev.is_none() {
            break true;
        }
    };
    assert!(deleted);
    assert!(a.get().await.expect("get").is_none());

    let leader: NamedObject<CardanoLeader> = NamedObject::new(
        client(server.kubeconfig("pod-0"), TIMEOUT).await.expect("client"),
        "default",
        "cardano-leader",
        TIMEOUT,
    );
    let object = CardanoLeader {
        metadata: ObjectMeta {
            name: Some("cardano-leader".into()),
            ..ObjectMeta::default()
        },
        spec: CardanoLeaderSpec::default(),
        status: None,
    };
    leader.create_if_absent(&object).await.expect("leader object");
    let st = serde_json::json!({"leaderPod": "pod-0", "forgingEnabled": true, "lastTransitionTime": "2026-11-25T12:00:00Z"});
    let patched = leader.patch_status(&st).await.expect("leader status");
    assert_eq!(
        patched.status.and_then(|s| s.leader_pod).as_deref(),
        Some("pod-0")
    );
}
