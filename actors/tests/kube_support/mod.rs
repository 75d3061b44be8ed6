//! Fixtures shared by the tests of the actors that follow and write the pool's Kubernetes
//! objects (the ClusterWatcher, the StatusWriter, the PeerWatcher): our CardanoForgeCluster's
//! default spec and the status reports a Decider sends, a real API server with our CRDs, and
//! waiting for what an actor reports.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use forge_actors::{adapters::kube::client, testing::Probe};
use forge_core::{
    crd::{CardanoForgeCluster, CardanoForgeClusterSpec, ForgeState, NetworkSpec},
    decision::{Event, Reason, StatusReport},
};
use forge_sim::apiserver::{ApiServer, ApiServerOptions, start_for_test};
use kube::{Api, Client};

/// The default spec of our CardanoForgeCluster: priority-based, priority 1, region
/// `us-east-1`, the preview network.
pub fn spec() -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec::new(
        ForgeState::PriorityBased,
        1,
        "us-east-1",
        NetworkSpec::new("preview", 2),
    )
}

/// The status a Decider asks to be written: forging as the single cluster's leader, or not
/// forging because the node is down; priority-based, priority 1.
pub fn report(forging: bool, generation: Option<i64>) -> StatusReport {
    StatusReport {
        forging_enabled: forging,
        effective_state: ForgeState::PriorityBased,
        effective_priority: 1,
        reason: if forging {
            Reason::SingleClusterLeader
        } else {
            Reason::NodeDown
        },
        observed_generation: generation,
        tickets: None,
    }
}

/// A real API server for `test` (the pod identity `identity`) with our CRDs, its admin client
/// and the CardanoForgeCluster API in `default`; `None` when the test is skipped.
pub async fn server_with_crds(
    test: &str,
    identity: &str,
) -> Option<(ApiServer, Client, Api<CardanoForgeCluster>)> {
    let server = start_for_test(test, ApiServerOptions::with_identities([identity])).await?;
    let admin = client(Some(server.admin_kubeconfig()), Duration::from_secs(5))
        .await
        .expect("admin");
    server.install_crds().await.expect("CRDs");
    let cfcs = Api::namespaced(admin.clone(), "default");
    Some((server, admin, cfcs))
}

/// The latest event `probe` got that matches `f`, waiting up to 10 s for one (`what` names it
/// in the failure).
pub async fn until(probe: &Probe, what: &str, f: impl Fn(&Event) -> bool) -> Event {
    for _ in 0..200 {
        if let Some(e) = probe.events().into_iter().rev().find(|e| f(e)) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} not reported within 10 s: {:?}", probe.events());
}

/// Whether `done` holds within `tries` checks `step` apart (checked first at once).
pub async fn eventually(tries: u32, step: Duration, done: impl Fn() -> bool) -> bool {
    for _ in 0..tries {
        if done() {
            return true;
        }
        tokio::time::sleep(step).await;
    }
    done()
}
