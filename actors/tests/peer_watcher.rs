//! The PeerWatcher on its in-memory port (`forge_actors::testing::MemoryPeers`): a peer is read
//! through the `PeerApi` it is given, and a peer that cannot be reached is reported so. Its watches and reads against real API servers are in
//! `peer_watcher_kube.rs`.

use std::{sync::Arc, time::Duration};

use actix::Actor;
use forge_actors::{
    clock::Clock,
    peer_watcher::{PeerSettings, PeerWatcher},
    testing::{MemoryPeers, Probe, eventually},
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
