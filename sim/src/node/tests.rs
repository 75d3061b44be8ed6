//! The order in which overlapping reloads take effect ([`ReloadOrder`]).

use std::time::Duration;

use super::{Latency, NodeBehaviour, NodeOptions, NodeSim, ReloadOrder, SplitMix64};
use crate::creds::write_test_credentials;
use crate::timeline::{EventKind, read_file};

/// A seed whose first reload draw from `reload` is slow and second fast.
fn slow_then_fast_seed(reload: Latency) -> u64 {
    (0..10_000u64)
        .find(|&seed| {
            let mut rng = SplitMix64::new(seed);
            reload.draw(&mut rng) >= Duration::from_millis(250)
                && reload.draw(&mut rng) <= Duration::from_millis(60)
        })
        .expect("some seed draws a slow reload, then a fast one")
}

/// A non-producing node; a start SIGHUP (credentials present), the files removed, a stop SIGHUP
/// at once after it. Whether it forges once both reloads took effect, and its forging events.
async fn start_then_stop(order: ReloadOrder) -> (bool, Vec<EventKind>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = write_test_credentials(dir.path(), 1, 0).expect("credentials");
    let timeline = dir.path().join("timeline.jsonl");
    let reload = Latency::range_ms(20, 300);
    let sim = NodeSim::start_with(
        NodeOptions::non_producing("node", dir.path().join("node.socket"), &creds, &timeline),
        NodeBehaviour {
            reload,
            reload_order: order,
            seed: slow_then_fast_seed(reload),
            ..NodeBehaviour::default()
        },
    )
    .await
    .expect("node starts");
    let node = sim.handle();
    node.sighup();
    // The handler of the first SIGHUP has read the files before they go (the sighup line is
    // written when the node takes the signal).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !read_file(&timeline)
        .expect("timeline")
        .iter()
        .any(|e| e.event == EventKind::Sighup)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never took the SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for f in [&creds.kes, &creds.vrf, &creds.opcert] {
        std::fs::remove_file(f).expect("remove");
    }
    node.sighup();
    // Both reloads took effect: in order, both draws; concurrent, the slower one.
    let settled = |e: &[crate::timeline::TimelineEvent]| {
        e.iter()
            .filter(|e| matches!(e.event, EventKind::ForgingOn | EventKind::ForgingOff))
            .count()
    };
    let want = match order {
        ReloadOrder::InOrder => 2,
        ReloadOrder::Concurrent => 1,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while settled(&read_file(&timeline).expect("timeline")) < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reloads never took effect"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Concurrent: the stop took effect (no change: not forging yet) before the start; the start's
    // latency is at most 300 ms, so after that nothing more happens.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let forging = node.forging();
    let events = read_file(&timeline)
        .expect("timeline")
        .into_iter()
        .map(|e| e.event)
        .filter(|e| matches!(e, EventKind::ForgingOn | EventKind::ForgingOff))
        .collect();
    sim.stop().await.expect("stops");
    (forging, events)
}

#[tokio::test]
async fn in_order_a_stop_after_a_slow_start_wins() {
    let (forging, events) = start_then_stop(ReloadOrder::InOrder).await;
    assert!(!forging);
    assert_eq!(events, [EventKind::ForgingOn, EventKind::ForgingOff]);
}

#[tokio::test]
async fn concurrent_a_slow_start_takes_effect_after_a_fast_stop_and_wins() {
    // As cardano-node: each SIGHUP's handler reads the files when it runs and applies what it
    // read when it is done; the start's, slower, is applied last.
    let (forging, events) = start_then_stop(ReloadOrder::Concurrent).await;
    assert!(
        forging,
        "the start read the files before they went, and was applied last"
    );
    assert_eq!(events, [EventKind::ForgingOn]);
}
