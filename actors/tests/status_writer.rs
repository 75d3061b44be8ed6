//! The StatusWriter on its in-memory ports (`forge_actors::testing::MemoryObject`): what it
//! writes, when it writes nothing, and how a write that another pod overtook fails. The same
//! behaviour against the real API server is in `cluster_watcher_kube.rs`.
mod kube_support;

use std::sync::Arc;

use actix::Actor;
use forge_actors::{
    messages::{CfcSeen, WriteStatus},
    status_writer::StatusWriter,
    testing::MemoryObject,
};
use forge_core::{
    crd::{CardanoForgeCluster, CardanoForgeClusterStatus, CardanoLeader},
    decision::StatusReport,
};
use kube::api::ObjectMeta;
use kube_support::spec;

/// The status report of generation 1 (`kube_support::report`).
fn report(forging: bool) -> StatusReport {
    kube_support::report(forging, Some(1))
}

fn cluster() -> MemoryObject<CardanoForgeCluster> {
    let cfc = MemoryObject::new("pool-us-east-1");
    cfc.write_foreign(CardanoForgeCluster {
        metadata: ObjectMeta::default(),
        spec: spec(),
        status: None,
    });
    cfc
}

#[actix::test]
async fn a_claim_fails_when_another_pod_claimed_since_the_writer_last_read() {
    let (cfc, leader) = (cluster(), MemoryObject::<CardanoLeader>::new("pool-leader"));
    let writer = StatusWriter::new(Arc::new(leader.clone()), "pod-0", None)
        .with_cluster(Arc::new(cfc.clone()))
        .start();
    writer
        .send(CfcSeen(cfc.current().map(Box::new)))
        .await
        .expect("mailbox");
    // Another region's pod claims after our read.
    let mut theirs = cfc.current().expect("cfc");
    theirs.status = Some(CardanoForgeClusterStatus {
        active_leader: Some("pod-9".into()),
        forging_enabled: Some(true),
        ..CardanoForgeClusterStatus::default()
    });
    cfc.write_foreign(theirs);

    let claim = writer.send(WriteStatus(report(true))).await.expect("mailbox");
    assert!(claim.is_err(), "a claim over pod-9's must fail: {claim:?}");
    let status = cfc.current().and_then(|o| o.status).expect("status");
    assert_eq!(status.active_leader.as_deref(), Some("pod-9"));
    assert!(
        leader.current().is_none(),
        "the CardanoLeader is not written after a failed claim"
    );
}

#[actix::test]
async fn the_leader_object_is_created_on_the_first_write_and_not_written_again_while_unchanged() {
    let leader = MemoryObject::<CardanoLeader>::new("pool-leader");
    let writer = StatusWriter::new(Arc::new(leader.clone()), "pod-0", None).start();

    writer
        .send(WriteStatus(report(true)))
        .await
        .expect("mailbox")
        .expect("written");
    let status = leader.current().and_then(|o| o.status).expect("status");
    assert_eq!(status.leader_pod.as_deref(), Some("pod-0"));
    assert_eq!(status.forging_enabled, Some(true));

    let version = || leader.current().and_then(|o| o.metadata.resource_version);
    let before = version();
    writer
        .send(WriteStatus(report(true)))
        .await
        .expect("mailbox")
        .expect("unchanged");
    assert_eq!(version(), before, "an unchanged status is not written");

    leader.fail_next(1);
    let failed = writer.send(WriteStatus(report(false))).await.expect("mailbox");
    assert!(
        failed.is_err(),
        "without cluster management a failed write fails the command"
    );
}

/// A handover A -> B -> A on the pool's one CardanoLeader: when pod-0 leads again with the same
/// report it last wrote, the object names pod-1 (which wrote since), so pod-0 writes again.
#[actix::test]
async fn a_writer_leading_again_rewrites_the_leader_another_pod_wrote_since() {
    let leader = MemoryObject::<CardanoLeader>::new("pool-leader");
    let a = StatusWriter::new(Arc::new(leader.clone()), "pod-0", None).start();
    let b = StatusWriter::new(Arc::new(leader.clone()), "pod-1", None).start();
    let leader_pod = || leader.current().and_then(|o| o.status).and_then(|s| s.leader_pod);

    a.send(WriteStatus(report(true)))
        .await
        .expect("mailbox")
        .expect("written");
    assert_eq!(leader_pod().as_deref(), Some("pod-0"));
    b.send(WriteStatus(report(true)))
        .await
        .expect("mailbox")
        .expect("written");
    assert_eq!(leader_pod().as_deref(), Some("pod-1"));

    a.send(WriteStatus(report(true)))
        .await
        .expect("mailbox")
        .expect("written");
    let status = leader.current().and_then(|o| o.status).expect("status");
    assert_eq!(
        status.leader_pod.as_deref(),
        Some("pod-0"),
        "pod-0 forges and must be named"
    );
    assert_eq!(status.forging_enabled, Some(true));
}
