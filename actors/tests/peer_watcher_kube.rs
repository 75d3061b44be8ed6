//! Contract of the PeerWatcher against real kube-apiservers: a peer's CFC and Lease are read
//! with consistent GETs and reported with the time the read was *sent*; a peer whose CFC does
//! not exist yet is reported with no status; a peer whose API server is gone is reported
//! unreachable (and its gauges say so), and reachable again when it answers. Between reads the
//! peer is followed by watches: its Lease renewals are reported from them, a change of its CFC
//! makes a leader read at once, and a read follows once the Lease shows nothing new for the
//! resync period.
mod kube_support;

use std::{sync::Arc, time::Duration};

use actix::Actor;
use forge_actors::{
    adapters::kube_peer::KubePeers,
    clock::Clock,
    messages::Leading,
    peer_watcher::{PeerMetrics, PeerSettings, PeerWatcher},
    ports::PeerApi,
    testing::Probe,
};
use forge_core::{
    crd::{CardanoForgeCluster, CardanoForgeClusterSpec, CardanoForgeClusterStatus, NetworkSpec},
    decision::Event,
};
use forge_sim::apiserver::ApiServer;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use kube_support::{eventually, server_with_crds, until};

/// The peer region "east": a real API server (the identity `east-0`) with the CRDs, its
/// admin client and the CardanoForgeCluster API in `default`; `None` when the test is skipped.
async fn east(test: &str) -> Option<(ApiServer, Client, Api<CardanoForgeCluster>)> {
    server_with_crds(test, "east-0").await
}

/// East's CardanoForgeCluster `pool-east` (priority 1), without a status.
async fn create_pool_east(cfcs: &Api<CardanoForgeCluster>) {
    let mut cfc = CardanoForgeCluster::new(
        "pool-east",
        CardanoForgeClusterSpec::new(Default::default(), 1, "east", NetworkSpec::new("preview", 2)),
    );
    cfc.metadata.namespace = Some("default".into());
    cfcs.create(&PostParams::default(), &cfc)
        .await
        .expect("create CFC");
}

/// Merge-patches the status of east's CardanoForgeCluster: `forging` or not, at priority 1,
/// with `leader` as its active leader when given.
async fn set_east_status(cfcs: &Api<CardanoForgeCluster>, forging: bool, leader: Option<&str>) {
    let status = CardanoForgeClusterStatus {
        forging_enabled: Some(forging),
        effective_priority: Some(1),
        active_leader: leader.map(Into::into),
        ..Default::default()
    };
    cfcs.patch_status(
        "pool-east",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .expect("status");
}

/// Creates east's Lease under our lease name, held by `holder` for 15 s; returns the Lease API.
async fn create_east_lease(admin: Client, holder: &str) -> Api<Lease> {
    let leases: Api<Lease> = Api::namespaced(admin, "default");
    leases
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some("cardano-node-leader".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.into()),
                    lease_duration_seconds: Some(15),
                    ..LeaseSpec::default()
                }),
            },
        )
        .await
        .expect("lease");
    leases
}

/// A PeerWatcher's settings for east (our lease name), reading every `every`, with the resync
/// period `resync`.
fn east_settings(every: Duration, resync: Duration) -> PeerSettings {
    PeerSettings {
        name: "pool-east".into(),
        lease: "cardano-node-leader".into(),
        every,
        resync,
    }
}

/// East's API server as the PeerWatcher reaches it: through its admin kubeconfig, our lease
/// name in `default`, calls that time out after 500 ms.
fn east_api(server: &ApiServer) -> Arc<dyn PeerApi> {
    Arc::new(KubePeers::new(
        [("pool-east".to_owned(), server.admin_kubeconfig().to_path_buf())],
        "default",
        "cardano-node-leader",
        Duration::from_millis(500),
    ))
}

/// How many of the events `probe` got match `f`.
fn count(probe: &Probe, f: impl Fn(&Event) -> bool) -> usize {
    probe.events().iter().filter(|e| f(e)).count()
}

#[actix::test]
async fn the_peer_watcher_reads_a_peer_and_reports_silence_as_unreachable() {
    let Some((mut server, admin, cfcs)) =
        east("the_peer_watcher_reads_a_peer_and_reports_silence_as_unreachable").await
    else {
        return;
    };

    let registry = prometheus::Registry::new();
    let metrics = PeerMetrics::register(&registry).expect("metrics");
    let probe = Probe::start();
    let clock = Clock::new();
    let settings = east_settings(Duration::from_millis(200), Duration::from_secs(2));
    let _watcher = PeerWatcher::new(
        settings.clone(),
        east_api(&server),
        clock,
        probe.recipient(),
        Some(metrics),
    )
    .start();

    // No CFC yet: observed, without a status (counts as "may be forging").
    let e = until(&probe, "an observation without status", |e| {
        matches!(e, Event::PeerObserved { status: None, .. })
    })
    .await;
    assert!(matches!(&e, Event::PeerObserved { cluster, generation: None, .. } if cluster == "pool-east"));

    // The CFC and its status, and the Lease.
    create_pool_east(&cfcs).await;
    set_east_status(&cfcs, true, None).await;
    create_east_lease(admin, "east-0").await;
    let e = until(
        &probe,
        "the status",
        |e| matches!(e, Event::PeerObserved { status: Some(s), .. } if s.forging_enabled == Some(true)),
    )
    .await;
    let Event::PeerObserved {
        generation, read_at, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(generation, Some(1));
    assert!(read_at <= clock.now(), "read_at is when the read was sent");
    let e = until(&probe, "the lease", |e| {
        matches!(e, Event::PeerLeaseObserved { .. })
    })
    .await;
    let Event::PeerLeaseObserved {
        record,
        sent_at,
        received_at,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(record.holder_identity.as_deref(), Some("east-0"));
    assert!(sent_at <= received_at);
    let text = forge_actors::metrics::encode(&registry);
    assert!(
        text.contains("cardano_cluster_peer_reachable{peer=\"pool-east\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("cardano_cluster_peer_forging{peer=\"pool-east\"} 1"),
        "{text}"
    );

    // L1-c: a PollNow (our claim was just confirmed) reads at once, whatever the period.
    let slow_probe = Probe::start();
    let slow = PeerWatcher::new(
        PeerSettings {
            every: Duration::from_secs(3600),
            ..settings
        },
        east_api(&server),
        clock,
        slow_probe.recipient(),
        None,
    )
    .start();
    let observed = |p: &Probe| count(p, |e| matches!(e, Event::PeerObserved { .. }));
    until(&slow_probe, "the first read", |e| {
        matches!(e, Event::PeerObserved { .. })
    })
    .await;
    let before = observed(&slow_probe);
    let asked = clock.now();
    slow.do_send(forge_actors::messages::PollNow);
    let e = until(
        &slow_probe,
        "a read sent after PollNow",
        |e| matches!(e, Event::PeerObserved { read_at, .. } if *read_at >= asked),
    )
    .await;
    assert!(matches!(e, Event::PeerObserved { .. }));
    assert!(observed(&slow_probe) > before);

    // The peer's API server goes away: unreachable, never "not forging".
    server.stop();
    until(&probe, "unreachable", |e| {
        matches!(e, Event::PeerUnreachable { .. })
    })
    .await;
    let text = forge_actors::metrics::encode(&registry);
    assert!(
        text.contains("cardano_cluster_peer_reachable{peer=\"pool-east\"} 0"),
        "{text}"
    );
}

/// F14: a peer's Lease counts only when it is held by the pod the peer's CFC names as its
/// `activeLeader`. A vacant Lease under our lease name while the peer's leader is another pod
/// (say, a stale object of a deployment that now uses another lease name) would otherwise read
/// as "that region does not forge".
#[actix::test]
async fn a_peer_lease_not_held_by_the_peers_active_leader_is_not_reported() {
    let Some((mut server, admin, cfcs)) =
        east("a_peer_lease_not_held_by_the_peers_active_leader_is_not_reported").await
    else {
        return;
    };
    create_pool_east(&cfcs).await;
    set_east_status(&cfcs, true, Some("east-1")).await;
    // A vacant Lease under our lease name: not the leader's.
    let leases = create_east_lease(admin, "").await;

    let probe = Probe::start();
    let clock = Clock::new();
    let settings = east_settings(Duration::from_millis(100), Duration::from_millis(300));
    let _watcher = PeerWatcher::new(settings, east_api(&server), clock, probe.recipient(), None).start();
    let leader_reads = |p: &Probe| {
        count(p, |e| {
            matches!(e, Event::PeerObserved { status: Some(s), .. }
                if s.active_leader.as_deref() == Some("east-1"))
        })
    };
    eventually(200, Duration::from_millis(50), || leader_reads(&probe) >= 5).await;
    assert!(
        leader_reads(&probe) >= 5,
        "the CFC was read: {:?}",
        probe.events()
    );
    assert!(
        !probe
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerLeaseObserved { .. })),
        "a vacant Lease while the peer names east-1 its leader is no evidence: {:?}",
        probe.events()
    );

    // The leader's own Lease (its identity carries its pod UID): reported.
    leases
        .patch(
            "cardano-node-leader",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "holderIdentity": "east-1_5d1c" } })),
        )
        .await
        .expect("lease holder");
    let e = until(&probe, "the leader's lease", |e| {
        matches!(e, Event::PeerLeaseObserved { .. })
    })
    .await;
    let Event::PeerLeaseObserved { record, .. } = e else {
        unreachable!()
    };
    assert_eq!(record.holder_identity.as_deref(), Some("east-1_5d1c"));
    server.stop();
}

/// The API budget (docs/quorum.md, "API load"): a standby follows a peer by its watches (the peer's
/// Lease renewals are reported from them, with no read); once this pod leads, a change of the
/// peer's CFC is read at once; and once the Lease shows nothing new for the resync period a read
/// follows, which returns the same record a whole resync period after it was first seen: what the
/// Decider needs to call the peer's Lease lapsed.
#[actix::test]
async fn a_peer_is_followed_by_watches_and_read_only_when_a_decision_needs_it() {
    let Some((mut server, admin, cfcs)) =
        east("a_peer_is_followed_by_watches_and_read_only_when_a_decision_needs_it").await
    else {
        return;
    };
    create_pool_east(&cfcs).await;
    set_east_status(&cfcs, true, Some("east-0")).await;
    let leases = create_east_lease(admin, "east-0").await;
    let renew = |n: u32| {
        let leases = leases.clone();
        async move {
            leases
                .patch(
                    "cardano-node-leader",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({
                        "spec": { "renewTime": format!("2024-01-01T00:00:{n:02}.000000Z") }
                    })),
                )
                .await
                .expect("renew");
        }
    };

    let registry = prometheus::Registry::new();
    let metrics = PeerMetrics::register(&registry).expect("metrics");
    let probe = Probe::start();
    let clock = Clock::new();
    let resync = Duration::from_secs(3);
    let settings = east_settings(Duration::from_millis(100), resync);
    // A standby's watcher until it is told otherwise.
    let watcher = PeerWatcher::new(
        settings,
        east_api(&server),
        clock,
        probe.recipient(),
        Some(metrics),
    )
    .with_leader_gate(resync)
    .start();
    let reads = |p: &Probe| count(p, |e| matches!(e, Event::PeerObserved { .. }));
    let leases_seen = |p: &Probe| count(p, |e| matches!(e, Event::PeerLeaseObserved { .. }));
    until(&probe, "the first read", |e| {
        matches!(e, Event::PeerObserved { .. })
    })
    .await;
    // Give the watches a moment to open, then renew every 300 ms for 6 s (twice the resync).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (reads_before, leases_before) = (reads(&probe), leases_seen(&probe));
    for n in 0..20 {
        renew(n).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let text = forge_actors::metrics::encode(&registry);
    assert_eq!(
        reads(&probe),
        reads_before,
        "a standby read a peer whose watches showed renewals:\n{text}"
    );
    assert!(
        leases_seen(&probe) >= leases_before + 15,
        "the renewals were not reported from the watch: {} -> {}",
        leases_before,
        leases_seen(&probe)
    );

    // Leading now: a leader reads at least once per resync period, and this pod has not read
    // for longer, so its first tick as leader reads (`resync`). Wait for that read, so that the
    // change below can only be read because a watch showed it.
    watcher.do_send(Leading(true));
    eventually(100, Duration::from_millis(20), || reads(&probe) > reads_before).await;
    assert!(
        reads(&probe) > reads_before,
        "a new leader did not read a peer it had not read for a resync period"
    );
    // The peer's CFC changes (it stops forging) and is read at once.
    let changed = clock.now();
    set_east_status(&cfcs, false, Some("east-0")).await;
    let e = until(
        &probe,
        "the changed CFC read",
        |e| matches!(e, Event::PeerObserved { status: Some(s), .. } if s.forging_enabled == Some(false)),
    )
    .await;
    let Event::PeerObserved { read_at, .. } = e else {
        unreachable!()
    };
    assert!(
        read_at >= changed && read_at.saturating_since(changed) < Duration::from_secs(2),
        "the change was read {:?} after it, not at once",
        read_at.saturating_since(changed)
    );

    // The peer stops renewing: a read of the same record a whole resync period after it was
    // first seen follows.
    let last = probe
        .events()
        .into_iter()
        .rev()
        .find_map(|e| match e {
            Event::PeerLeaseObserved { record, .. } => Some(record),
            _ => None,
        })
        .expect("a lease");
    let first_seen = probe
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::PeerLeaseObserved {
                record, received_at, ..
            } if record == last => Some(received_at),
            _ => None,
        })
        .expect("first seen");
    let proof = |e: &Event| {
        matches!(e, Event::PeerLeaseObserved { record, sent_at, .. }
            if *record == last && *sent_at >= first_seen + resync)
    };
    eventually(160, Duration::from_millis(50), || {
        probe.events().iter().any(proof)
    })
    .await;
    assert!(
        probe.events().iter().any(proof),
        "no read of the unrenewed Lease a resync period after it was first seen: {:?}",
        probe.events()
    );
    let text = forge_actors::metrics::encode(&registry);
    assert!(
        text.contains("cardano_cluster_peer_reads_total{peer=\"pool-east\",why=\"changed\"}"),
        "{text}"
    );
    server.stop();
}
