//! The node guard in the scenario world (S3 and the node guard: docs/architecture.md): three pods,
//! each a `forge-manager run` sidecar plus `forge-manager guard -- forge-manager sim node ...`, on
//! the real kube-apiserver, with short lease timings (3 s / 2 s / 0.5 s). The node timelines judge.
//!
//! - A SIGKILLed manager: its guard fences its node before the lease passes (overlap 0); the
//!   same without the guard leaves an orphaned forger (overlap > 0: why the guard exists).
//! - A SIGSTOPped manager, paused past the lease and resumed: overlap 0, no fight.
//! - A reload lost in the replay is re-sent when the node reports consensus runs.

use std::{
    path::PathBuf,
    sync::LazyLock,
    time::{Duration, Instant},
};

use forge_sim::{
    timeline::{EventKind, unix_now_ns},
    world::{World, WorldOptions, wait_for},
};
use nix::sys::signal::Signal;

static ONE_AT_A_TIME: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

const LEASE: Duration = Duration::from_secs(3);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

async fn world(test: &str, guard: bool, replay: Option<Duration>) -> Option<World> {
    if forge_sim::apiserver::skipped(test) {
        return None;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut o = WorldOptions::fast(exe(), 3);
    o.guard = guard;
    if let Some(r) = replay {
        o.replay = r;
    }
    Some(World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}")))
}

async fn first_forger(w: &World) -> usize {
    let (name, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|| panic!("no single forger: {:?}\n{}", w.forging_now(), w.manager_log(0)));
    w.index_of(&name).expect("known pod")
}

/// The first event of `kind` on `node` at or after `since_ns`.
fn first(w: &World, node: &str, kind: EventKind, since_ns: u64) -> Option<u64> {
    w.events()
        .iter()
        .find(|e| e.node == node && e.event == kind && e.t_unix_ns >= since_ns)
        .map(|e| e.t_unix_ns)
}

/// The `t_unix_ns` of the guard's last log line containing `what`, from the pod's node log.
fn guard_logged_at(log: &str, what: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.starts_with("forge-guard:") && l.contains(what))
        .filter_map(|l| {
            l.split("t_unix_ns=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

async fn metric(w: &World, i: usize, name: &str) -> Option<f64> {
    let text = w.metrics(i).await?;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_fences_the_node_of_a_sigkilled_manager_before_the_lease_passes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "the_guard_fences_the_node_of_a_sigkilled_manager_before_the_lease_passes";
    let Some(mut w) = world(test, true, None).await else {
        return;
    };
    let leader = first_forger(&w).await;
    let old = w.pods[leader].name.clone();
    wait_for(Duration::from_secs(5), || async {
        metric(&w, leader, "forge_manager_fencing_covered").await == Some(1.0)
            && metric(&w, leader, "cardano_forging_enabled").await == Some(1.0)
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "guard not connected or forging not reported\n{}",
            w.manager_log(leader)
        )
    });
    let since = unix_now_ns();
    let t0 = Instant::now();
    w.signal_manager(leader, Signal::SIGKILL);
    let (next, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), Some(&old))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no new forger: {:?}\n{}\n{}",
                w.forging_now(),
                w.manager_log(leader),
                w.pods[leader].node_log()
            )
        });
    let off = first(&w, &old, EventKind::ForgingOff, since).expect("the old node stopped forging");
    let on = first(&w, &next, EventKind::ForgingOn, since).expect("the new node forges");
    let lapsed =
        guard_logged_at(&w.pods[leader].node_log(), "permit lapsed").expect("the guard's lapse is logged");
    eprintln!(
        "SIGKILL {old}: fenced by its guard {:.1} ms after the kill ({:.2} ms after the permit lapsed); \
         {next} forging {:.1} ms after the kill, {:.1} ms after the fence (observed in {:?})",
        (off - since) as f64 / 1e6,
        off.saturating_sub(lapsed) as f64 / 1e6,
        (on - since) as f64 / 1e6,
        (on - off) as f64 / 1e6,
        t0.elapsed()
    );
    assert!(
        off < on,
        "break before make: the old node stopped before the new one started"
    );
    let v = w.verdict();
    assert_eq!(v.overlap_ms, 0.0, "two forgers: {v:?}");
    w.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_guard_a_sigkilled_manager_leaves_an_orphaned_forger() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "without_the_guard_a_sigkilled_manager_leaves_an_orphaned_forger";
    let Some(mut w) = world(test, false, None).await else {
        return;
    };
    let leader = first_forger(&w).await;
    let old = w.pods[leader].name.clone();
    assert_eq!(
        metric(&w, leader, "forge_manager_fencing_covered").await,
        Some(0.0)
    );
    w.signal_manager(leader, Signal::SIGKILL);
    // Another pod takes the lease and forges, while the orphan keeps forging.
    wait_for(LEASE + Duration::from_secs(10), || async {
        let now = w.forging_now();
        now.len() == 2 && now.contains(&old)
    })
    .await
    .unwrap_or_else(|_| panic!("expected the orphan and a new forger: {:?}", w.forging_now()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Ends the orphan (its exit closes the interval the judge measures).
    w.kill_node(leader);
    let v = w.verdict();
    eprintln!("without the guard: {v:?}");
    assert!(
        v.overlap_ms > 0.0,
        "without the guard the orphaned node keeps forging (S3 not covered): {v:?}"
    );
    w.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_manager_is_fenced_and_does_not_fight_the_new_leader() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_paused_manager_is_fenced_and_does_not_fight_the_new_leader";
    let Some(mut w) = world(test, true, None).await else {
        return;
    };
    let leader = first_forger(&w).await;
    let old = w.pods[leader].name.clone();
    let since = unix_now_ns();
    w.signal_manager(leader, Signal::SIGSTOP);
    let (next, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), Some(&old))
        .await
        .unwrap_or_else(|| panic!("no new forger while paused: {:?}", w.forging_now()));
    // Paused well past the lease.
    tokio::time::sleep(LEASE).await;
    w.signal_manager(leader, Signal::SIGCONT);
    tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    assert_eq!(
        w.forging_now(),
        vec![next.clone()],
        "the resumed manager must not take over\n{}",
        w.manager_log(leader)
    );
    let off = first(&w, &old, EventKind::ForgingOff, since).expect("the paused pod's node was fenced");
    let on = first(&w, &next, EventKind::ForgingOn, since).expect("the new leader forges");
    eprintln!(
        "SIGSTOP {old}: fenced {:.1} ms after the pause, {next} forging {:.1} ms after it",
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off < on);
    let later_on = w
        .events()
        .iter()
        .filter(|e| e.node == old && e.event == EventKind::ForgingOn && e.t_unix_ns > off)
        .count();
    assert_eq!(later_on, 0, "the resumed pod's node forged again");
    let status = w.status(leader).await.expect("the resumed manager answers");
    assert_eq!(status["forging"], false, "{status}");
    let v = w.verdict();
    assert_eq!(v.overlap_ms, 0.0, "two forgers: {v:?}");
    w.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_lost_in_the_replay_is_resent_when_the_node_is_up() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_reload_lost_in_the_replay_is_resent_when_the_node_is_up";
    let replay = Duration::from_secs(4);
    let Some(mut w) = world(test, true, Some(replay)).await else {
        return;
    };
    let leader = first_forger(&w).await;
    let name = w.pods[leader].name.clone();
    let events = w.events();
    let lost = events
        .iter()
        .find(|e| e.node == name && e.event == EventKind::NotEffective)
        .map(|e| e.t_unix_ns)
        .expect("a reload was lost in the replay");
    let on = events
        .iter()
        .find(|e| e.node == name && e.event == EventKind::ForgingOn)
        .map(|e| e.t_unix_ns)
        .expect("the leader forges");
    assert!(lost < on);
    let log = w.manager_log(leader);
    assert!(
        log.contains("the node lost a reload in its replay: re-sending it through the guard"),
        "the re-send was driven by the guard's report\n{log}"
    );
    eprintln!(
        "reload lost during the replay, forging {:.1} ms later",
        (on - lost) as f64 / 1e6
    );
    wait_for(Duration::from_secs(3), || async {
        metric(&w, leader, "cardano_forging_enabled").await == Some(1.0)
    })
    .await
    .expect("cardano_forging_enabled follows the node");
    assert_eq!(w.verdict().overlap_ms, 0.0);
    w.stop();
}
