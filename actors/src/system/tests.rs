//! [`spawn_all`] wires the ChainWatcher to its port in [`Adapters`](super::Adapters) (the other
//! actors' wiring is tested in `actors/tests/system.rs`).

use std::time::Duration;

use forge_core::{cardano::KesSchedule, status::ChainReport};
use jiff::{SignedDuration, Timestamp};
use prometheus::Registry;

use super::{Handles, spawn_all};
use crate::{
    clock::Clock,
    testing::{InMemory, MemoryCluster, config, on_virtual_time},
};

/// `/status` `chain` as the Decider last published it.
fn chain(handles: &Handles) -> Option<ChainReport> {
    handles
        .snapshot
        .borrow()
        .status
        .as_ref()
        .and_then(|s| s.chain.clone())
}

#[test]
fn with_node_metrics_url_and_leader_schedule_the_chain_is_read_through_the_adapters() {
    on_virtual_time(|| async {
        let cfg = config(&[
            ("NODE_METRICS_URL", "http://node:12798/metrics"),
            ("LEADER_SCHEDULE", "/leader/leaderlog.json"),
            ("SYNC_CHECK_INTERVAL", "1"),
        ]);
        let world = InMemory::new(&cfg, &MemoryCluster::new(&cfg), Clock::new());
        world
            .chain
            .set_tip(KesSchedule::mainnet().slot_at(Timestamp::now()));
        let soon = Timestamp::now() + SignedDuration::from_secs(3_600);
        world.chain.write_schedule(
            format!(r#"{{"status":"ok","epoch":1,"assignedSlots":[{{"no":1,"slot":5,"slotInEpoch":5,"at":"{soon}"}}]}}"#)
                .as_bytes(),
        );
        let handles = spawn_all(&cfg, world.adapters(&cfg), &Registry::new()).expect("the system starts");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let report = chain(&handles).expect("`chain` on /status");
        assert!(report.sync.is_some_and(|s| s.synced), "{report:?}");
        assert_eq!(report.schedule_slots, 1, "{report:?}");
        assert_eq!(report.next_leader_slot.map(|s| s.at), Some(soon), "{report:?}");
        assert!(world.chain.tip_reads() >= 2, "read every SYNC_CHECK_INTERVAL");
        assert_eq!(world.chain.schedule_reads(), 1, "an unchanged file is read once");
    });
}

#[test]
fn without_either_key_no_chain_watcher_runs() {
    on_virtual_time(|| async {
        let cfg = config(&[]);
        let world = InMemory::new(&cfg, &MemoryCluster::new(&cfg), Clock::new());
        world
            .chain
            .set_tip(KesSchedule::mainnet().slot_at(Timestamp::now()));
        let handles = spawn_all(&cfg, world.adapters(&cfg), &Registry::new()).expect("the system starts");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            handles.snapshot.borrow().status.is_some(),
            "the Decider published"
        );
        assert_eq!(chain(&handles), None);
        assert_eq!((world.chain.tip_reads(), world.chain.schedule_reads()), (0, 0));
    });
}
