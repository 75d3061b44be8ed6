//! The PeerWatcher on its in-memory port (`forge_actors::testing::MemoryPeers`): a peer is read
//! through the `PeerApi` it is given, and a peer that cannot be reached is reported so. Its watches and reads against real API servers are in
//! `peer_watcher_kube.rs`.

use std::{sync::Arc, time::Duration};

use actix::Actor;
use forge_actors::{
    clock::Clock,
    messages::Leading,
    peer_watcher::{PeerSettings, PeerWatcher},
    testing::{MemoryPeers, Probe, eventually, on_virtual_time},
};
use forge_core::{
    crd::{CardanoForgeCluster, CardanoForgeClusterSpec, ForgeState, NetworkSpec},
    decision::Event,
};
use kube::api::ObjectMeta;

fn settings(peer: &str) -> PeerSettings {
    PeerSettings {
        name: peer.to_owned(),
        lease: "pool-lease".into(),
        every: Duration::from_millis(100),
        resync: Duration::from_secs(3),
    }
}

fn watch(peer: &str, peers: &MemoryPeers, probe: &Probe) -> actix::Addr<PeerWatcher> {
    PeerWatcher::new(
        settings(peer),
        Arc::new(peers.clone()),
        Clock::new(),
        probe.recipient(),
        None,
    )
    .start()
}

#[actix::test]
async fn a_peer_is_read_through_the_peer_api() {
    let peers = MemoryPeers::default();
    let (cfc, _lease) = peers.add("pool-east", "pool-lease");
    cfc.write_foreign(CardanoForgeCluster {
        metadata: ObjectMeta::default(),
        spec: CardanoForgeClusterSpec::new(
            ForgeState::PriorityBased,
            2,
            "east",
            NetworkSpec::new("preview", 2),
        ),
        status: None,
    });
    let probe = Probe::start();
    let _watcher = watch("pool-east", &peers, &probe);
    eventually("the peer observed", || {
        probe
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerObserved { cluster, .. } if cluster == "pool-east"))
    })
    .await;
    assert!(
        !probe
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerUnreachable { .. })),
        "{:?}",
        probe.events()
    );
}

#[actix::test]
async fn a_peer_that_cannot_be_reached_is_reported_unreachable() {
    let peers = MemoryPeers::default();
    peers.add("pool-west", "pool-lease");
    peers.set_reachable("pool-west", false);
    let probe = Probe::start();
    let _watcher = watch("pool-west", &peers, &probe);
    eventually("the peer reported unreachable", || {
        probe
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerUnreachable { cluster, .. } if cluster == "pool-west"))
    })
    .await;
    assert!(
        !probe
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerObserved { .. })),
        "{:?}",
        probe.events()
    );
}

/// The API budget (docs/quorum.md, "API load"): a gated watcher is a standby's until the Decider
/// says this pod leads its region (`Leading`). A change of the peer's CFC, shown by the watch,
/// is read at once only while it leads; a standby leaves it to its next resync (30 s here).
#[test]
fn a_gated_watcher_reads_a_watched_change_at_once_only_while_it_leads() {
    on_virtual_time(|| async {
        let peers = MemoryPeers::default();
        let (cfc, _lease) = peers.add("pool-east", "pool-lease");
        let spec = CardanoForgeClusterSpec::new(
            ForgeState::PriorityBased,
            2,
            "east",
            NetworkSpec::new("preview", 2),
        );
        cfc.write_foreign(CardanoForgeCluster::new("pool-east", spec));
        let touch = |priority: i32| {
            let mut object = cfc.current().expect("the CFC");
            object.spec.priority = priority;
            cfc.write_foreign(object);
        };
        let probe = Probe::start();
        let reads = || {
            probe
                .events()
                .iter()
                .filter(|e| matches!(e, Event::PeerObserved { .. }))
                .count()
        };
        let watcher = PeerWatcher::new(
            PeerSettings {
                resync: Duration::from_secs(30),
                ..settings("pool-east")
            },
            Arc::new(peers.clone()),
            Clock::new(),
            probe.recipient(),
            None,
        )
        .with_leader_gate(Duration::from_secs(30))
        .start();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(reads(), 1, "the first read");

        touch(3);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(reads(), 1, "a standby read a change at once");

        // Told it leads: the change not read yet is read at the next tick, the next at once.
        watcher.do_send(Leading(true));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(reads(), 2, "the change seen as a standby, read once leading");
        touch(4);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(reads(), 3, "a leader reads a change at once");

        watcher.do_send(Leading(false));
        touch(5);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(reads(), 3, "a standby again read a change at once");
    });
}
