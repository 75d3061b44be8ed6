//! The timeline judge fed by real node timelines: a deliberate overlap of two nodes, two
//! processes with one name told apart, and a live verdict counting an overlap still open.
use std::time::Duration;

use forge_sim::node::NodeSim;
use forge_sim::timeline::{Window, judge, judge_window, read_file, read_files};

use crate::{T, World};

/// Nodes `a` and `b`, each in its own world, forging at once: `a` first, then `b` while `a`
/// still forges (S1 broken on purpose).
async fn two_forgers() -> (World, NodeSim, World, NodeSim) {
    let wa = World::new();
    let wb = World::new();
    let a = NodeSim::start(wa.opts("a")).await.expect("start a");
    let b = NodeSim::start(wb.opts("b")).await.expect("start b");
    a.handle().sighup();
    assert!(a.handle().wait_forging(true, T).await);
    b.handle().sighup();
    assert!(b.handle().wait_forging(true, T).await);
    (wa, a, wb, b)
}

#[tokio::test]
async fn the_judge_reports_a_deliberate_overlap_between_two_nodes() {
    let (wa, a, wb, b) = two_forgers().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    wa.remove_creds();
    a.handle().sighup();
    assert!(a.handle().wait_forging(false, T).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");

    let events = read_files(&[wa.timeline(), wb.timeline()]).expect("timelines");
    let v = judge_window(&events, Window::default()).expect("judged");
    assert!(v.overlap_ms >= 50.0 && v.overlap_ms < 2000.0, "{v:?}");
    assert_eq!(v.forgers, vec!["a", "b"]);
    assert_eq!(v.transitions, 4);
    // b forges until its shutdown; only its own forging_off -> exit interval is a gap.
    assert!(v.max_gap_ms < 5.0, "{v:?}");
}

#[tokio::test]
async fn the_judge_tells_apart_two_processes_with_one_name() {
    // Two node processes called "twin" write to one timeline and forge at once: the old
    // name-only judge saw one forger; it is two.
    let w = World::new();
    let a = NodeSim::start(w.opts("twin")).await.expect("start a");
    let mut ob = w.opts("twin");
    ob.socket = w.dir.path().join("twin-b.socket");
    let b = NodeSim::start(ob).await.expect("start b");
    a.handle().sighup();
    assert!(a.handle().wait_forging(true, T).await);
    b.handle().sighup();
    assert!(b.handle().wait_forging(true, T).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    let events = read_file(&w.timeline()).expect("timeline");
    let v = judge_window(&events, Window::default()).expect("judged");
    assert!(v.overlap_ms >= 30.0, "{v:?}");
    assert_eq!(v.max_forgers, 2);
    assert_eq!(v.forgers, vec!["twin"]);
    assert_eq!(v.processes.len(), 2, "{v:?}");
    assert!(v.processes.iter().all(|p| p.started && p.exited));
}

#[tokio::test]
async fn a_live_verdict_counts_an_overlap_still_open_when_it_is_taken() {
    let (wa, a, wb, b) = two_forgers().await;
    // b's forging_on is the last event; the overlap it opened runs until the verdict.
    tokio::time::sleep(Duration::from_millis(40)).await;
    let v = judge(&read_files(&[wa.timeline(), wb.timeline()]).expect("timelines"));
    assert!(v.overlap_ms >= 40.0, "{v:?}");
    assert_eq!(v.forging_at_end, vec!["a", "b"]);
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}
