//! The whole actor system of one pod as the sidecar builds it (`system::spawn_all`), on its
//! in-memory adapters (`testing::InMemory`), on virtual time: every actor is the real one, and
//! the test drives and reads the pod's world only through the doubles.

use std::time::Duration;

use forge_actors::{
    clock::Clock,
    system::{Handles, spawn_all},
    testing::{InMemory, MemoryCluster, MemoryLeases, config},
};
use forge_core::config::ValidConfig;
use forge_guard::protocol::Request;
use support::{TIMING_KEYS, on_virtual_time};

#[path = "support/mod.rs"]
mod support;

/// Short lease timings (3 s, renew deadline 2 s, retry 0.5 s) for pod `pod`.
fn pod_config(pod: &str) -> ValidConfig {
    let mut pairs = vec![("POD_NAME", pod)];
    pairs.extend(TIMING_KEYS);
    config(&pairs)
}

fn start(cfg: &ValidConfig, world: &InMemory) -> Handles {
    spawn_all(cfg, world.adapters(cfg), &prometheus::Registry::new()).expect("the system starts")
}

/// Pod "pod-a" alone in its cluster, its node process running: its configuration, the Lease
/// store and its world.
fn one_pod_with_its_node_up() -> (ValidConfig, MemoryLeases, InMemory) {
    let cfg = pod_config("pod-a");
    let shared = MemoryCluster::new(&cfg);
    let world = InMemory::new(&cfg, &shared, Clock::new());
    world.node.start(4242, &["cardano-node", "run"]);
    (cfg, shared.leases, world)
}

fn decides_to_forge(handles: &Handles) -> bool {
    handles.snapshot.borrow().status.as_ref().and_then(|s| s.forging) == Some(true)
}

#[test]
fn a_pod_forges_once_its_node_is_up_and_its_credentials_valid_and_stops_when_the_node_goes() {
    on_virtual_time(|| async {
        let (cfg, store, world) = one_pod_with_its_node_up();
        world.sources.publish_valid(1);
        let handles = start(&cfg, &world);

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(decides_to_forge(&handles), "the pod decides to forge");
        assert_eq!(store.holder(), Some(cfg.lease_identity()), "it holds the Lease");
        assert_eq!(
            world.credentials.installed(),
            world.sources.read_now(),
            "the sources are installed"
        );
        let requests = world.guard.requests();
        let permit = requests
            .iter()
            .position(|r| matches!(r, Request::Permit { .. }))
            .expect("a permit before forging");
        assert_eq!(requests.get(permit + 1), Some(&Request::Reload), "{requests:?}");
        let status = world.leader.current().and_then(|l| l.status).expect("a status");
        assert_eq!(status.forging_enabled, Some(true));
        assert!(world.events.warnings().is_empty());

        // The node exits with its guard: the pod removes its credentials and releases; then
        // (NODE_STARTS_NON_PRODUCING, the default) installs them again for the node's next
        // start, which starts non-producing.
        let (_, removals) = world.credentials.counts();
        world.node.exit();
        world.guard.set_present(false);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!decides_to_forge(&handles));
        assert!(
            world.credentials.counts().1 > removals,
            "the credentials were removed"
        );
        assert_eq!(store.holder(), None, "the Lease is released");
    });
}

#[test]
fn invalid_source_credentials_are_refused_with_an_event_and_the_pod_never_contends() {
    on_virtual_time(|| async {
        let (cfg, store, world) = one_pod_with_its_node_up();
        world
            .sources
            .publish(b"not a key", b"not a key", b"not a certificate");
        let handles = start(&cfg, &world);

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!decides_to_forge(&handles));
        assert_eq!(store.holder(), None, "nobody contended");
        assert_eq!(world.credentials.installed(), None);
        // One Event at the first validation, one at the refused boot-credential install.
        let warnings = world.events.warnings();
        assert!(!warnings.is_empty());
        for w in &warnings {
            assert_eq!(w.reason, "CredentialsRefused");
            assert!(w.note.contains("memory/kes.skey"), "{}", w.note);
            assert!(
                !w.note.contains("not a key"),
                "no contents in the note: {}",
                w.note
            );
        }

        // A valid set appears (a Secret update): the pod forges.
        world.sources.publish_valid(1);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(decides_to_forge(&handles));
        assert_eq!(store.holder(), Some(cfg.lease_identity()));
    });
}

/// The pod the cluster's CardanoLeader names, and its `forgingEnabled`.
fn leader_named(shared: &MemoryCluster) -> Option<(String, bool)> {
    let status = shared.leader.current()?.status?;
    Some((status.leader_pod?, status.forging_enabled?))
}

/// Whether `world`'s node guard holds a forging permit now (granted and not revoked).
fn permitted(world: &InMemory) -> bool {
    world.guard.state().permit_ms.is_some()
}

#[test]
fn of_two_pods_on_one_lease_one_forges_and_the_other_takes_over_when_its_node_goes() {
    on_virtual_time(|| async {
        // One Lease and one CardanoLeader for both, as in production.
        let shared = MemoryCluster::new(&pod_config("pod-a"));
        let store = shared.leases.clone();
        let clock = Clock::new();
        let pods: Vec<(ValidConfig, InMemory)> = ["pod-a", "pod-b"]
            .into_iter()
            .map(|name| {
                let cfg = pod_config(name);
                let world = InMemory::new(&cfg, &shared, clock);
                world.node.start(4242, &["cardano-node", "run"]);
                world.sources.publish_valid(1);
                (cfg, world)
            })
            .collect();
        let handles: Vec<Handles> = pods.iter().map(|(cfg, world)| start(cfg, world)).collect();

        tokio::time::sleep(Duration::from_secs(5)).await;
        let forging: Vec<usize> = (0..2).filter(|&i| decides_to_forge(&handles[i])).collect();
        assert_eq!(forging.len(), 1, "exactly one pod forges");
        let (leader, other) = (forging[0], 1 - forging[0]);
        assert_eq!(store.holder(), Some(pods[leader].0.lease_identity()));
        assert!(permitted(&pods[leader].1) && !permitted(&pods[other].1));
        assert_eq!(
            leader_named(&shared),
            Some((pods[leader].0.pod_name.clone(), true))
        );

        // The leader's node exits with its guard: the other pod takes over.
        pods[leader].1.node.exit();
        pods[leader].1.guard.set_present(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(decides_to_forge(&handles[other]) && !decides_to_forge(&handles[leader]));
        assert_eq!(store.holder(), Some(pods[other].0.lease_identity()));
        assert!(
            permitted(&pods[other].1),
            "the new leader's guard holds the permit"
        );
        assert_eq!(
            leader_named(&shared),
            Some((pods[other].0.pod_name.clone(), true)),
            "the pool's one CardanoLeader names the new leader"
        );
    });
}

/// `cardano_cluster_peer_reads_total{peer="pool-east", why}` in `registry` (0 when absent).
fn peer_reads(registry: &prometheus::Registry, why: &str) -> u64 {
    let line = format!("cardano_cluster_peer_reads_total{{peer=\"pool-east\",why=\"{why}\"}} ");
    forge_actors::metrics::encode(registry)
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// A new version of `cfc` (a peer's status write), as a watch shows it.
fn touch(cfc: &forge_actors::testing::MemoryObject<forge_core::crd::CardanoForgeCluster>, n: i32) {
    let mut object = cfc.current().expect("the peer's CFC");
    object.spec.priority = n;
    cfc.write_foreign(object);
}

/// The API budget (docs/quorum.md, "API load") through the whole system: the Decider tells the
/// PeerWatchers (`Leading`) whether this pod holds its region's Lease, and only then does a
/// change of the peer's CardanoForgeCluster, seen by the watch, make them read it at once
/// (`why="changed"`); a standby leaves it to its next resync.
#[test]
fn a_peer_change_is_read_at_once_only_while_this_pod_holds_its_regions_lease() {
    on_virtual_time(|| async {
        let cfg = config(&[
            ("POD_NAME", "pod-a"),
            ("LEASE_DURATION", "3"),
            ("RENEW_DEADLINE", "2"),
            ("RETRY_PERIOD", "500ms"),
            ("API_TIMEOUT", "500ms"),
            ("ENABLE_CLUSTER_MANAGEMENT", "true"),
            ("PEER_CLUSTERS", "pool-east=/nonexistent/east.kubeconfig"),
        ]);
        let shared = MemoryCluster::new(&cfg);
        let store = shared.leases.clone();
        let world = InMemory::new(&cfg, &shared, Clock::new());
        let (cfc, _lease) = world.peers.add("pool-east", &cfg.names.lease);
        cfc.write_foreign(forge_core::crd::CardanoForgeCluster::new(
            "pool-east",
            forge_core::crd::CardanoForgeClusterSpec::new(
                forge_core::crd::ForgeState::PriorityBased,
                2,
                "east",
                forge_core::crd::NetworkSpec::new("mainnet", 764824073),
            ),
        ));
        world.sources.publish_valid(1);
        let registry = prometheus::Registry::new();
        let _handles = spawn_all(&cfg, world.adapters(&cfg), &registry).expect("the system starts");

        // No node: the pod does not contend; the peer's changes wait for a resync.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(store.holder(), None);
        for n in 3..6 {
            touch(&cfc, n);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            peer_reads(&registry, "changed"),
            0,
            "a standby read a change at once"
        );
        assert!(peer_reads(&registry, "start") > 0);

        // The node comes up: the pod takes the Lease and reads a change at once.
        world.node.start(4242, &["cardano-node", "run"]);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(store.holder(), Some(cfg.lease_identity()));
        touch(&cfc, 6);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            peer_reads(&registry, "changed"),
            1,
            "the leader did not read the change"
        );

        // The node goes: the pod releases the Lease and is a standby again.
        world.node.exit();
        world.guard.set_present(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(store.holder(), None);
        for n in 7..10 {
            touch(&cfc, n);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            peer_reads(&registry, "changed"),
            1,
            "a former leader read a change at once"
        );
    });
}
