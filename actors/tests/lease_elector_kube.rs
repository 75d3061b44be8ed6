//! Contract of the LeaseElector against the real kube-apiserver (through `KubeLeasePort`): two
//! electors with their own identities and clients elect exactly one holder, and `Release` hands
//! the lease to the other within a second (L1, graceful handover), through the watch.
use std::{sync::Arc, time::Duration};

use actix::{Actor, Addr};
use forge_actors::{
    adapters::{
        kube::client,
        kube_lease::{KubeLeasePort, KubeLeases},
    },
    clock::Clock,
    lease_elector::LeaseElector,
    messages::{Contend, Release},
    testing::Probe,
};
use forge_core::{config::LeaseTiming, decision::Event};
use forge_sim::apiserver::{ApiServer, ApiServerOptions, start_for_test};
use tokio::time::Instant;

/// Per-call deadline, well inside the renew deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
const LEASE: &str = "forge-elector-contract";

fn timing() -> LeaseTiming {
    LeaseTiming {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

/// Starts a real API server, or returns None (loudly) when `FORGE_SKIP_APISERVER_TESTS=1`.
async fn start(test: &str) -> Option<ApiServer> {
    start_for_test(test, ApiServerOptions::with_identities(["pod-0", "pod-1"])).await
}

async fn leases(server: &ApiServer, identity: &str) -> KubeLeases {
    let c = client(server.kubeconfig(identity), CALL_TIMEOUT)
        .await
        .expect("client");
    KubeLeases::new(c, "default", LEASE, CALL_TIMEOUT)
}

struct Candidate {
    name: &'static str,
    probe: Probe,
    addr: Addr<LeaseElector>,
}

async fn candidate(server: &ApiServer, name: &'static str, clock: Clock) -> Candidate {
    let port = KubeLeasePort::new(leases(server, name).await, Duration::from_secs(30));
    let probe = Probe::start();
    let addr = LeaseElector::new(Arc::new(port), name, timing(), clock, probe.recipient(), None).start();
    Candidate { name, probe, addr }
}

fn acquired_at(c: &Candidate) -> Option<Instant> {
    c.probe
        .first(|e| matches!(e, Event::LeaseAcquired { .. }))
        .map(|(at, _)| at)
}

#[actix::test]
async fn two_electors_elect_one_holder_and_release_hands_over_within_a_second() {
    let test = "two_electors_elect_one_holder_and_release_hands_over_within_a_second";
    let Some(server) = start(test).await else {
        return;
    };
    let clock = Clock::new();
    let a = candidate(&server, "pod-0", clock).await;
    let b = candidate(&server, "pod-1", clock).await;
    a.addr.send(Contend(true)).await.expect("a alive");
    b.addr.send(Contend(true)).await.expect("b alive");

    // Exactly one acquires; the other stays out for several renewals.
    let deadline = Instant::now() + Duration::from_secs(10);
    while acquired_at(&a).is_none() && acquired_at(&b).is_none() {
        assert!(Instant::now() < deadline, "nobody acquired the lease");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (holder, standby) = match (acquired_at(&a), acquired_at(&b)) {
        (Some(_), None) => (&a, &b),
        (None, Some(_)) => (&b, &a),
        other => panic!("exactly one must hold, got {other:?}"),
    };
    let renewals = holder
        .probe
        .events()
        .iter()
        .filter(|e| matches!(e, Event::LeaseRenewed { .. }))
        .count();
    assert!(renewals >= 2, "renewed every 0.5 s: {renewals} in 2 s");
    assert_eq!(
        standby.probe.events(),
        vec![Event::LeaseLost {
            holder: Some(holder.name.to_string())
        }]
    );
    let observer = leases(&server, "pod-0").await;
    let lease = observer.get().await.expect("get").expect("lease exists");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(holder.name));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(3));

    // Release: the standby, watching, acquires at once.
    let asked = Instant::now();
    assert_eq!(holder.addr.send(Release).await.expect("alive"), Ok(()));
    let answered = asked.elapsed();
    let limit = asked + Duration::from_secs(1);
    let taken = loop {
        if let Some(at) = acquired_at(standby) {
            break at;
        }
        assert!(
            Instant::now() < limit,
            "{} did not take over within 1 s of the release",
            standby.name
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let handover = taken.saturating_duration_since(asked);
    eprintln!(
        "\n>>> real API server: Release answered after {answered:?}; {} acquired {handover:?} after the Release was sent\n",
        standby.name
    );
    assert!(handover < Duration::from_secs(1), "handover took {handover:?}");
    assert!(
        holder.probe.events().contains(&Event::LeaseLost { holder: None }),
        "the releaser reported its loss"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        holder.probe.events().last(),
        Some(&Event::LeaseLost {
            holder: Some(standby.name.to_string())
        })
    );
    let lease = observer.get().await.expect("get").expect("lease exists");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(standby.name));
    assert_eq!(spec.lease_transitions, Some(2));
}
