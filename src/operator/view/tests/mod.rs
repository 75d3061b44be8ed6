//! The view's tests: fixtures of three regions (east, west, south), one pod each.
mod table;
mod verdict;

use super::*;
use forge_core::crd::{
    CardanoForgeClusterSpec, CardanoForgeClusterStatus, CardanoLeaderSpec, CardanoLeaderStatus, ForgeState,
    HealthStatus, NetworkSpec, OverrideSpec,
};
use forge_core::{
    cardano::{KesState, KesStatus},
    credentials::OpCertInfo,
    status::KesReport,
};
use k8s_openapi::{api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime};

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

const NOW: &str = "2026-01-01T12:00:00Z";

fn cfc(region: &str, priority: i32, forging: bool, reason: &str, leader: &str) -> CardanoForgeCluster {
    let mut c = CardanoForgeCluster::new(
        &format!("pool-{region}"),
        CardanoForgeClusterSpec::new(
            ForgeState::PriorityBased,
            priority,
            region,
            NetworkSpec::new("preview", 2),
        ),
    );
    c.status = Some(CardanoForgeClusterStatus {
        effective_state: Some(ForgeState::PriorityBased),
        effective_priority: Some(priority),
        active_leader: Some(leader.into()),
        forging_enabled: Some(forging),
        reason: Some(reason.into()),
        last_transition: Some("2026-01-01T11:58:00Z".into()),
        health_status: Some(HealthStatus {
            healthy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    });
    c
}

fn lease(holder: &str, renewed: &str) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("cardano-node-leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..Default::default()
        }),
    }
}

fn leader(pod: &str, forging: bool, reason: &str) -> CardanoLeader {
    let mut l = CardanoLeader::new("cardano-node-leader", CardanoLeaderSpec::default());
    l.status = Some(CardanoLeaderStatus {
        leader_pod: Some(pod.into()),
        forging_enabled: Some(forging),
        reason: Some(reason.into()),
        ..Default::default()
    });
    l
}

fn pod_input(name: &str, forging: bool, reason: &str) -> PodInput {
    PodInput {
        name: name.into(),
        status: Ok(SidecarStatus {
            pod: name.into(),
            forging: Some(forging),
            reason: reason.into(),
            kes: Some(KesReport {
                op_cert: OpCertInfo {
                    counter: 0,
                    kes_period: 1016,
                },
                kes: Some(KesStatus {
                    current_period: 1017,
                    start_period: 1016,
                    end_period: 1062,
                    remaining_periods: 45,
                    expires_at: at("2027-02-04T21:44:51Z"),
                    state: KesState::Valid,
                }),
            }),
            ..SidecarStatus::default()
        }),
    }
}

fn region(name: &str, c: CardanoForgeCluster, leader_forging: bool) -> ContextInput {
    let pod = format!("{name}-0");
    let c_forging = c.status.as_ref().and_then(|s| s.forging_enabled) == Some(true)
        && FORGING_CODES.contains(&c.status.as_ref().and_then(|s| s.reason.as_deref()).unwrap_or(""));
    let reason = c
        .status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_default();
    ContextInput {
        context: format!("ctx-{name}"),
        namespace: "cardano".into(),
        fetched: Ok(Fetched {
            clusters: vec![c],
            leaders: vec![leader(&pod, leader_forging, &reason)],
            leases: vec![lease(&pod, "2026-01-01T11:59:58Z")],
            pods: Ok(vec![pod_input(&pod, c_forging, &reason)]),
        }),
    }
}

fn three(east: (bool, &str), west: (bool, &str), south: (bool, &str)) -> Vec<ContextInput> {
    vec![
        region("east", cfc("east", 10, east.0, east.1, "east-0"), east.0),
        region("west", cfc("west", 20, west.0, west.1, "west-0"), west.0),
        region("south", cfc("south", 30, south.0, south.1, "south-0"), south.0),
    ]
}

/// East forges (`global_winner`) and west and south yield to it: the pool as it should be.
fn east_forges() -> Vec<ContextInput> {
    three(
        (true, "global_winner"),
        (false, "yielding_to_peer"),
        (false, "yielding_to_peer"),
    )
}

/// What was read in the context `inputs[i]` (the fixtures read every context).
fn fetched(inputs: &mut [ContextInput], i: usize) -> &mut Fetched {
    inputs[i].fetched.as_mut().expect("the fixture read this context")
}

/// The table of `v` at `NOW` without colours, `wide` or not.
fn plain_table(v: &View, wide: bool) -> String {
    render_table(v, at(NOW), Style { wide, colour: false })
}
