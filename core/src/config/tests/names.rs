//! The names: derived from the pool or given, the reference naming scheme, the host-name
//! fallback, the reference chart's env blocks, and the Lease identity.

use super::*;
use crate::naming;

#[test]
fn pool_id_derives_hashed_names_unless_names_are_explicit() {
    let c = validate(&with_pod(&[("POOL_ID", POOL), ("CLUSTER_REGION", "us-east-1")])).expect("valid");
    let hash = naming::pool_hash(POOL);
    assert_eq!(c.names.lease, format!("cardano-leader-mainnet-pool1abcde-{hash}"));
    assert_eq!(c.names.leader, c.names.lease);
    assert_eq!(c.names.cluster, format!("mainnet-pool1abcde-us-east-1-{hash}"));
    assert_eq!(
        (c.names.lease_source, c.names.cluster_source),
        (NameSource::Derived, NameSource::Derived)
    );

    let c = validate(&with_pod(&[
        ("POOL_ID", POOL),
        ("LEASE_NAME", "cardano-leader-mainnet-pool1abcde"),
        ("CLUSTER_IDENTIFIER", "my-cfc"),
    ]))
    .expect("valid");
    assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
    assert_eq!(c.names.lease_source, NameSource::Explicit);
    assert_eq!(c.names.leader_source, NameSource::Derived);
    assert_eq!(c.names.cluster, "my-cfc");
}

#[test]
fn the_reference_scheme_gives_the_reference_names() {
    let c = validate(&with_pod(&[
        ("POOL_ID", POOL),
        ("CLUSTER_REGION", "us-east-1"),
        ("NAMING_SCHEME", "reference"),
    ]))
    .expect("valid");
    assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
    assert_eq!(c.names.cluster, "mainnet-pool1abcde-us-east-1");
}

#[test]
fn the_cluster_name_falls_back_to_the_sanitised_host_name() {
    let mut r = with_pod(&[]);
    r.host_name = Some("Build_Host".into());
    let c = validate(&r).expect("valid");
    assert_eq!(
        (c.names.cluster.as_str(), c.names.cluster_source),
        ("build-host", NameSource::HostName)
    );
}

#[test]
fn the_reference_charts_env_blocks_are_accepted_unchanged() {
    let c = validate(&raw(CHART_SINGLE)).expect("single-cluster chart env");
    assert_eq!(
        (c.names.lease.as_str(), c.names.leader.as_str()),
        ("cardano-node-leader", "cardano-node-leader")
    );
    let multi = chart_multi_tenant();
    let c = validate(&raw(&multi)).expect("multi-tenant chart env");
    assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
    assert_eq!(c.cluster.priority, 1);
}

#[test]
fn the_lease_identity_carries_the_pod_uid_when_given() {
    let c = validate(&with_pod(&[])).expect("valid");
    assert_eq!(c.pod_uid, None);
    assert_eq!(c.lease_identity(), "forge-0");
    let uid = "7c6f0a3e-2b1d-4e59-9d0a-51c3b2a4f8e1";
    let c = validate(&with_pod(&[("POD_UID", uid)])).expect("valid");
    assert_eq!(c.pod_uid.as_deref(), Some(uid));
    assert_eq!(c.lease_identity(), format!("forge-0_{uid}"));
    assert_eq!(c.pod_name, "forge-0", "the pod name itself is unchanged");
}
