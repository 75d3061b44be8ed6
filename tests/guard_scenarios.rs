//! The node guard in the scenario world (S3 and the node guard: docs/architecture.md): three pods,
//! each a `forge-manager run` sidecar plus `forge-manager guard -- forge-manager sim node ...`, on
//! the real kube-apiserver, with short lease timings (3 s / 2 s / 0.5 s). The node timelines judge.
//!
//! - A SIGKILLed manager: its guard fences its node before the lease passes (overlap 0); the
//!   same without the guard leaves an orphaned forger (overlap > 0: why the guard exists).
//! - A SIGSTOPped manager, paused past the lease and resumed: overlap 0, no fight.
//! - A reload lost in the replay is re-sent when the node reports consensus runs.
//! - A SIGKILLed guard of the forger (its node dies with it, its socket file stays): the node's
//!   death confirms the stop, the lease passes within a lease expiry, boot credentials follow.
//! - A shutdown whose stop fails (F2), a stalled guard (F3), a node that closes its socket first
//!   on SIGTERM (F1).
//!
//! The scenarios that disturb the forger of a plain guarded world (the paused manager, the
//! SIGKILLed guard, the SIGKILLed manager, the failed stop) share one world, one after the other:
//! a world takes about as long to start and stop as a scenario to run. The others need a world
//! of their own (no guard, a long replay, no shared process namespace, other nodes).

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

const LEASE: Duration = Duration::from_secs(4);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

async fn world(test: &str, guard: bool, replay: Option<Duration>) -> Option<World> {
    if forge_sim::apiserver::skipped(test) {
        return None;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut o = WorldOptions::realistic(exe(), 3);
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

/// The world of `test` once one node forges: the world, the forging pod's index and name.
async fn forging(test: &str, guard: bool, replay: Option<Duration>) -> Option<(World, usize, String)> {
    let w = world(test, guard, replay).await?;
    let leader = first_forger(&w).await;
    let name = w.pods[leader].name.clone();
    Some((w, leader, name))
}

/// The first event of `kind` on `node` at or after `since_ns`.
fn first(w: &World, node: &str, kind: EventKind, since_ns: u64) -> Option<u64> {
    w.events()
        .iter()
        .find(|e| e.node == node && e.event == kind && e.t_unix_ns >= since_ns)
        .map(|e| e.t_unix_ns)
}

async fn metric(w: &World, i: usize, name: &str) -> Option<f64> {
    let text = w.metrics(i).await?;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Four disturbances of the forging pod in one world of guarded pods, one after the other (a
/// world takes about as long to start and stop as a scenario to run), each beginning with
/// whoever forges then: a paused manager, a SIGKILLed guard (its node restarted after), a
/// SIGKILLed manager, and a shutdown whose stop fails. The whole run is judged after each and at
/// the shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_manager_a_killed_guard_a_killed_manager_and_a_failed_stop_keep_one_forger() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_paused_manager_a_killed_guard_a_killed_manager_and_a_failed_stop_keep_one_forger";
    let Some((mut w, leader, _)) = forging(test, true, None).await else {
        return;
    };
    let leader = a_paused_manager_is_fenced_and_does_not_fight(&mut w, leader).await;
    let leader = a_sigkilled_guard_hands_over_once_its_node_is_gone(&mut w, leader).await;
    let leader = a_sigkilled_manager_is_fenced_by_its_guard(&mut w, leader).await;
    a_shutdown_whose_stop_fails_hands_nothing_over(&mut w, leader).await;
    w.assert_clean_shutdown();
}

/// A SIGSTOPped manager, paused past its lease and resumed: its guard fenced its node, the new
/// leader forges, and the resumed manager does not fight it. Returns the new forger.
async fn a_paused_manager_is_fenced_and_does_not_fight(w: &mut World, leader: usize) -> usize {
    let test = "a paused manager is fenced and does not fight the new leader";
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
    let off = first(w, &old, EventKind::ForgingOff, since).expect("the paused pod's node was fenced");
    let on = first(w, &next, EventKind::ForgingOn, since).expect("the new leader forges");
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
    assert_eq!(status.forging, Some(false), "{status}");
    w.verdict().assert_no_overlap(test);
    w.index_of(&next).expect("known pod")
}

/// A SIGKILLed guard of the forger hands over once its node is gone. Returns the new forger.
async fn a_sigkilled_guard_hands_over_once_its_node_is_gone(w: &mut World, leader: usize) -> usize {
    // The chaos soak's guard_kill: SIGKILL to the forging pod's guard, which takes its node
    // along (PR_SET_PDEATHSIG) and leaves its socket file behind (connection refused). The
    // node stays down (a kubelet back-off, or a node that cannot start): the sidecar sees the
    // node process gone, so its stop is confirmed, the lease passes and another pod forges
    // within the bound of a lease expiry; and the pod provides the boot credentials its next
    // node needs to start. A sidecar that took the refused guard for "the stop is not
    // confirmed" kept the lease (and no boot credentials) until a new node answered.
    let test = "a SIGKILLed guard of the forger hands over once its node is gone";
    let old = w.pods[leader].name.clone();
    wait_for(Duration::from_secs(5), || async {
        metric(w, leader, "forge_manager_fencing_covered").await == Some(1.0)
    })
    .await
    .unwrap_or_else(|_| panic!("guard not connected\n{}", w.manager_log(leader)));
    // The bound: the old leader's last renewal at most one retry period before the kill, its
    // lease seen vacant one lease duration after it, acquired within one more retry period,
    // then the new leader's slowest reload; plus room for a loaded machine.
    let o = w.options_mut().clone();
    let bound = Duration::from_secs(o.lease_duration_s)
        + 2 * o.retry_period
        + o.node.reload.max
        + Duration::from_secs(4);
    // Only what the manager logs from the kill on is judged (its pod may have had a part
    // earlier in the world's run).
    let logged = w.manager_log(leader).len();
    let since = unix_now_ns();
    w.kill_node(leader);
    let (next, took) = w
        .wait_for_single_forger(bound, Some(&old))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no other pod forged within {bound:?} of the guard's SIGKILL (its node gone): {:?}\n{}",
                w.forging_now(),
                w.manager_log(leader)
            )
        });
    let log = w.manager_log(leader).split_off(logged);
    assert!(
        log.lines()
            .any(|l| l.contains("stop confirmed") && l.contains("the node process is gone")),
        "the stop must be confirmed by the node's death, and said: {log}"
    );
    let kes = w.pods[leader].target().join("kes.skey");
    wait_for(Duration::from_secs(5), || {
        let kes = kes.clone();
        async move { kes.exists() }
    })
    .await
    .unwrap_or_else(|_| panic!("{old}: no boot credentials for its next node: {log}"));
    eprintln!(
        "{test}: {old}'s guard SIGKILLed; {next} forging after {took:?} (bound {bound:?}); \
         {old} provided boot credentials"
    );
    w.start_node(leader).await.expect("the node starts again");
    let gap = w.verdict_since(since).max_gap_ms;
    assert!(
        gap <= bound.as_millis() as f64,
        "{gap} ms without a forger after the kill, bound {bound:?}"
    );
    assert_one_forger_at_most(w, test);
    w.index_of(&next).expect("known pod")
}

/// A SIGKILLed manager: its guard fences its node before the lease passes (break before
/// make, overlap 0). Returns the new forger.
async fn a_sigkilled_manager_is_fenced_by_its_guard(w: &mut World, leader: usize) -> usize {
    let test = "the guard fences the node of a SIGKILLed manager before the lease passes";
    let old = w.pods[leader].name.clone();
    wait_for(Duration::from_secs(5), || async {
        metric(w, leader, "forge_manager_fencing_covered").await == Some(1.0)
            && metric(w, leader, "cardano_forging_enabled").await == Some(1.0)
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
    let off = first(w, &old, EventKind::ForgingOff, since).expect("the old node stopped forging");
    let on = first(w, &next, EventKind::ForgingOn, since).expect("the new node forges");
    let lapsed = forge_guard::logged_at(&w.pods[leader].node_log(), "permit lapsed")
        .expect("the guard's lapse is logged");
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
    w.verdict().assert_no_overlap(test);
    w.index_of(&next).expect("known pod")
}

/// F2: the forging pod's credentials cannot be removed (read-only target directory) when its
/// sidecar gets SIGTERM: it must keep the claim and the lease (exit, the lease expires, the
/// guard's permit lapses and it escalates), never release them with the node forging.
async fn a_shutdown_whose_stop_fails_hands_nothing_over(w: &mut World, leader: usize) {
    let test = "a shutdown whose stop fails hands nothing over";
    let old = w.pods[leader].name.clone();
    // Only what the manager logs from the SIGTERM on is judged.
    let logged = w.manager_log(leader).len();
    w.set_target_read_only(leader, true)
        .expect("read-only target dir");
    w.signal_manager(leader, Signal::SIGTERM);
    let (next, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(15), Some(&old))
        .await
        .unwrap_or_else(|| panic!("no takeover: {:?}\n{}", w.forging_now(), w.manager_log(leader)));
    let log = w.manager_log(leader).split_off(logged);
    assert!(
        log.lines()
            .any(|l| l.contains("command failed") && l.contains("Remove"))
            && (log.contains("stop was not confirmed") || log.contains("fail-safe now")),
        "the failed stop must be said: {log}"
    );
    assert!(
        !log.contains("shutdown complete"),
        "a shutdown whose stop failed must not release: {log}"
    );
    eprintln!("{test}: {old} could not remove its credentials; {next} took over after its lease");
    w.set_target_read_only(leader, false).expect("writable again");
    assert_one_forger_at_most(w, test);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_guard_a_sigkilled_manager_leaves_an_orphaned_forger() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "without_the_guard_a_sigkilled_manager_leaves_an_orphaned_forger";
    let Some((mut w, leader, old)) = forging(test, false, None).await else {
        return;
    };
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
async fn a_reload_lost_in_the_replay_is_resent_when_the_node_is_up() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_reload_lost_in_the_replay_is_resent_when_the_node_is_up";
    let replay = Duration::from_secs(4);
    let Some((mut w, leader, name)) = forging(test, true, Some(replay)).await else {
        return;
    };
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
    w.verdict().assert_no_overlap(test);
    w.assert_clean_shutdown();
}

/// Judges the whole run: no two forgers at any instant, none without its pod's lease,
/// someone forged, and nobody-forging never lasted longer than a fenced or escalated
/// takeover allows (lease, escalation's SIGKILL after 3 s, the slowest reload, with room for a
/// loaded machine).
fn assert_one_forger_at_most(w: &World, scenario: &str) {
    let v = w.verdict();
    eprintln!("{scenario}: verdict {v:?}");
    v.assert_no_overlap(scenario);
    v.assert_gap_within(scenario, LEASE + Duration::from_secs(12));
    assert!(
        w.forging_without_lease().is_empty(),
        "{scenario}: a node forged while its pod held no lease: {:?}",
        w.forging_without_lease()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_guard_of_the_forger_is_not_taken_for_a_gone_node() {
    // F3: the shipped guard layout (no shared process namespace), the forging pod's guard
    // SIGSTOPped for 3 s while its node goes on forging: the sidecar must not take "the guard
    // did not answer" for "the node is gone" and hand the lease over.
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_stalled_guard_of_the_forger_is_not_taken_for_a_gone_node";
    if forge_sim::apiserver::skipped(test) {
        return;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut o = WorldOptions::realistic(exe(), 3);
    o.guard = true;
    // Without this the sidecar would see its node's process in /proc and never ask the guard.
    o.sidecar_sees_no_processes = true;
    let mut w = World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    let leader = first_forger(&w).await;
    let old = w.pods[leader].name.clone();
    w.signal_guard(leader, Signal::SIGSTOP).expect("stop the guard");
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.signal_guard(leader, Signal::SIGCONT).expect("resume the guard");
    // Whatever happens next (the lease may pass once the guard fenced), one forger at most.
    let (now, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|| panic!("no single forger after the stall: {:?}", w.forging_now()));
    eprintln!("{test}: {old}'s guard stalled 3 s; forging now: {now}");
    tokio::time::sleep(LEASE).await;
    assert_one_forger_at_most(&w, test);
    w.assert_clean_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_closes_its_socket_first_on_sigterm_is_stopped_before_the_handover() {
    // F1 (the aggravating path), no guard: the forging node gets SIGTERM, closes its socket at
    // once and goes on forging for 1 s before it exits (as a real node's shutdown can). The
    // socket is gone, the process is not: the sidecar must wait for the process to go (or its
    // STOP_GRACE) before it releases the lease.
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_node_that_closes_its_socket_first_on_sigterm_is_stopped_before_the_handover";
    if forge_sim::apiserver::skipped(test) {
        return;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut o = WorldOptions::realistic(exe(), 3);
    o.node.stop_grace = Duration::from_secs(1);
    o.node.close_socket_early = true;
    let mut w = World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    let leader = first_forger(&w).await;
    let old = w.pods[leader].name.clone();
    let since = unix_now_ns();
    w.signal_node(leader, Signal::SIGTERM).expect("SIGTERM the node");
    let (next, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), Some(&old))
        .await
        .unwrap_or_else(|| panic!("no takeover: {:?}\n{}", w.forging_now(), w.manager_log(leader)));
    let off = first(&w, &old, EventKind::ForgingOff, since).expect("the old node stopped");
    let on = first(&w, &next, EventKind::ForgingOn, since).expect("the new node forges");
    eprintln!(
        "{test}: {old} forged {:.0} ms after its SIGTERM; {next} forging {:.0} ms after it",
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off < on, "the new forger started before the old node stopped");
    // Whatever the successor's reload latency (which alone may hide an early handover): the
    // lease leaves the old pod only once its node stopped forging.
    let handed = w
        .lease_history()
        .into_iter()
        .find(|r| r.observed_unix_ns > since && !r.holder.starts_with(old.as_str()))
        .expect("the lease left the old pod");
    assert!(
        handed.observed_unix_ns >= off,
        "the lease left {old} ({:?} seen {:.0} ms after the SIGTERM) {:.0} ms before its node stopped forging",
        handed.holder,
        (handed.observed_unix_ns - since) as f64 / 1e6,
        (off - handed.observed_unix_ns) as f64 / 1e6
    );
    assert_one_forger_at_most(&w, test);
    w.assert_clean_shutdown();
}
