//! Drop-in next to objects the reference chart created: names derived from `POOL_ID` under the
//! default `NAMING_SCHEME=hashed` carry a hash of the pool id, which the reference's names do not.
//! When the hashed object does not exist and the reference's one does, the sidecar follows the
//! reference's (the Lease and CardanoLeader `cardano-leader-{network}-{poolShort}`, the
//! CardanoForgeCluster `{network}-{poolShort}-{region}`), so a rolling migration keeps one
//! election and the operator's `kubectl patch` of the reference-named CardanoForgeCluster takes
//! effect. Names given explicitly (`LEASE_NAME`, `CRD_NAME`, `CLUSTER_IDENTIFIER`) and
//! `NAMING_SCHEME=reference` are never changed. Each switch is logged with both names.

use std::time::Duration;

use forge_core::{
    config::{NameSource, ValidConfig},
    crd::{CardanoForgeCluster, CardanoLeader},
    naming::{self, NamingScheme},
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Whether `name` exists; `None` when the API server did not answer within `timeout`.
async fn exists<K>(api: &Api<K>, name: &str, timeout: Duration) -> Option<bool>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match tokio::time::timeout(timeout, api.get_metadata_opt(name)).await {
        Ok(Ok(o)) => Some(o.is_some()),
        Ok(Err(e)) => {
            tracing::warn!(name, error = %e, "looking up a reference-named object failed; keeping the derived name");
            None
        }
        Err(_) => {
            tracing::warn!(
                name,
                "looking up a reference-named object timed out; keeping the derived name"
            );
            None
        }
    }
}

/// `derived` unless it is absent and `reference` exists (then `reference`).
async fn pick<K>(
    api: &Api<K>,
    kind: &str,
    derived: &str,
    reference: &str,
    timeout: Duration,
) -> Option<String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    if derived == reference || exists(api, derived, timeout).await != Some(false) {
        return None;
    }
    if exists(api, reference, timeout).await == Some(true) {
        tracing::info!(
            kind,
            derived,
            reference,
            "following the reference chart's object: the hashed name does not exist and the reference's does"
        );
        return Some(reference.to_owned());
    }
    None
}

/// Replaces derived hashed names by the reference's when only the latter's objects exist.
pub async fn follow(kube: &Client, mut cfg: ValidConfig) -> ValidConfig {
    let Some(pool) = cfg.pool.clone() else {
        return cfg;
    };
    if cfg.names.scheme != NamingScheme::Hashed {
        return cfg;
    }
    let (ns, network, timeout) = (cfg.namespace.clone(), cfg.network.name.clone(), cfg.api_timeout);
    let leader_ref = naming::leader_name(&network, &pool.id, NamingScheme::Reference);
    if cfg.names.lease_source == NameSource::Derived {
        let api: Api<Lease> = Api::namespaced(kube.clone(), &ns);
        if let Some(n) = pick(&api, "Lease", &cfg.names.lease, &leader_ref, timeout).await {
            cfg.names.lease = n;
        }
    }
    if cfg.names.leader_source == NameSource::Derived {
        let api: Api<CardanoLeader> = Api::namespaced(kube.clone(), &ns);
        if let Some(n) = pick(&api, "CardanoLeader", &cfg.names.leader, &leader_ref, timeout).await {
            cfg.names.leader = n;
        }
    }
    if cfg.cluster.management_enabled && cfg.names.cluster_source == NameSource::Derived {
        let reference =
            naming::cluster_name(&network, &pool.id, &cfg.cluster.region, NamingScheme::Reference);
        let api: Api<CardanoForgeCluster> = Api::namespaced(kube.clone(), &ns);
        if let Some(n) = pick(
            &api,
            "CardanoForgeCluster",
            &cfg.names.cluster,
            &reference,
            timeout,
        )
        .await
        {
            cfg.names.cluster = n;
        }
    }
    cfg
}
