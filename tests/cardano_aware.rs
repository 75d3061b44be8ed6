//! Cardano-aware election with real processes against real kube-apiservers, realistic nodes
//! (`WorldOptions::realistic`), judged by the merged node timelines:
//!
//! - sync: with `REQUIRE_SYNC`, a node whose tip lags (the simulator's metrics endpoint serves
//!   mainnet's slot less a lag) is not elected, and a forger whose node falls behind hands over
//!   to the synced standby, never to the lagging one; across regions, a primary whose node falls
//!   behind hands over to the synced region and fails back once it has caught up;
//! - schedule: a planned handover (the primary region set `Disabled`) is held while one of its
//!   leader slots (`LEADER_SCHEDULE`, cncli leaderlog JSON) is within `HANDOVER_QUIET`, and
//!   happens right after the slot; a crash of the forger's node is never held.
//!
//! The scenarios run one at a time (each starts its own API servers and several processes). The
//! two across regions share one pair of regions, one after the other.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use forge_sim::{
    apiserver::take_turn,
    regions::Regions,
    timeline::{
        EventKind::{self, ForgingOff, ForgingOn},
        TimelineEvent, judge,
    },
    world::{World, WorldOptions, wait_for},
};

const LEASE: Duration = Duration::from_secs(4);
/// How far behind a lagging node's tip runs: ten minutes, against a tolerance of one.
const LAG: Duration = Duration::from_secs(600);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// When a node whose name starts with `node_prefix` first logged `kind` at or after `since_ns`.
fn first_time(events: &[TimelineEvent], kind: EventKind, node_prefix: &str, since_ns: u64) -> Option<u64> {
    events
        .iter()
        .filter(|e| e.event == kind && e.node.starts_with(node_prefix) && e.t_unix_ns >= since_ns)
        .map(|e| e.t_unix_ns)
        .min()
}

/// Sync required: a tip at most a minute behind, read every 0.3 s.
fn sync_env() -> Vec<(String, String)> {
    vec![
        ("REQUIRE_SYNC".into(), "true".into()),
        ("SYNC_TOLERANCE".into(), "60".into()),
        ("SYNC_CHECK_INTERVAL".into(), "300ms".into()),
    ]
}

/// Waits up to `within` until `pod` is the only node forging in any region; panics with
/// `failure`, who forges and the logs otherwise.
async fn until_forging(r: &Regions, pod: &str, within: Duration, failure: &str) {
    wait_for(within, || async { r.forging_now() == [pod] })
        .await
        .unwrap_or_else(|_| panic!("{failure}: {:?}\n{}", r.forging_now(), r.logs()));
}

fn assert_safe(events: &[TimelineEvent], without_lease: usize, scenario: &str) {
    let v = judge(events);
    eprintln!("{scenario}: verdict {v:?}");
    v.assert_no_overlap(scenario);
    assert_eq!(
        without_lease, 0,
        "{scenario}: a node forged without its pod's lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_is_not_elected_and_a_forger_that_falls_behind_hands_over_to_a_synced_one() {
    let test = "a_lagging_node_is_not_elected_and_a_forger_that_falls_behind_hands_over_to_a_synced_one";
    let Some(_one) = take_turn(test).await else {
        return;
    };
    let mut o = WorldOptions::realistic(exe(), 3);
    o.node_metrics = true;
    o.extra_env = sync_env();
    let mut lagging = o.node.clone();
    lagging.tip_lag = LAG;
    let o = o.with_node(0, lagging.clone()).with_node(1, lagging);
    let mut w = World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    let started_ns = forge_sim::timeline::unix_now_ns();

    // (1) Only pod-2's node is synced: it is the one elected, whoever gets there first.
    let (first, took) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(15), None)
        .await
        .unwrap_or_else(|| panic!("no forger: {:?}\n{}", w.forging_now(), w.manager_log(2)));
    eprintln!("(1) first forger {first} after {took:?}");
    assert_eq!(first, w.pods[2].name, "{}", w.manager_log(0));
    let status = w.status(0).await.expect("pod-0 /status");
    eprintln!(
        "(1) pod-0 /status node {:?} chain {:?}",
        status.node, status.chain
    );
    assert_eq!(status.reason, "node_not_synced", "{status}");
    assert!(!status.contending, "{status}");
    assert_eq!(status.node.synced, Some(false), "{status}");
    let lag = status
        .chain
        .as_ref()
        .and_then(|c| c.sync)
        .map(|s| s.lag_slots)
        .expect("lag in /status");
    assert!((600..700).contains(&lag), "{status}");
    let metrics = w.metrics(0).await.unwrap_or_default();
    assert!(
        metrics.lines().any(|l| l == "forge_manager_node_synced 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("forge_manager_node_slot_lag 6")),
        "{metrics}"
    );
    let log0 = w.manager_log(0);
    assert!(
        log0.contains("node not synced") && log0.contains("behind the wall-clock slot"),
        "{log0}"
    );

    // (2) pod-1 catches up; then pod-2's node falls ten minutes behind: it stops (confirmed),
    // releases, and the synced pod-1 takes over; the lagging pod-0 never forges.
    w.node_tip(1, "resume").await.expect("resume pod-1");
    wait_for(Duration::from_secs(10), || async {
        w.status(1).await.is_some_and(|s| s.contending)
    })
    .await
    .unwrap_or_else(|_| panic!("pod-1 does not contend once synced\n{}", w.manager_log(1)));
    let since = forge_sim::timeline::unix_now_ns();
    let t0 = Instant::now();
    w.node_tip(2, "lag 600000").await.expect("pod-2 falls behind");
    let old = w.pods[2].name.clone();
    let (next, _) = w
        .wait_for_single_forger(Duration::from_secs(20), Some(&old))
        .await
        .unwrap_or_else(|| panic!("no handover: {:?}\n{}", w.forging_now(), w.manager_log(2)));
    let observed = t0.elapsed();
    assert_eq!(next, w.pods[1].name);
    let events = w.events();
    let off = first_time(&events, ForgingOff, &old, since).expect("pod-2 stopped");
    let on = first_time(&events, ForgingOn, &next, since).expect("pod-1 started");
    eprintln!(
        "(2) {old} behind: its forging_off after {:.0} ms, {next} forging_on after {:.0} ms (observed in {observed:?})",
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off < on, "break before make");
    // The tip is read every 0.3 s; the stop waits STOP_GRACE (2 s) without the guard; the new
    // node's reload takes up to 1.5 s. Generous for a loaded machine.
    assert!((on - since) as f64 / 1e6 < 12_000.0, "handover took too long");
    let log2 = w.manager_log(2);
    assert!(log2.contains("node not synced"), "{log2}");
    assert!(
        log2.contains("node_not_synced"),
        "the transition names the reason:\n{log2}"
    );
    assert!(
        first_time(&events, ForgingOn, &w.pods[0].name, started_ns).is_none(),
        "the lagging pod-0 forged"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.forging_now(), vec![next.clone()]);
    assert_safe(&w.events(), w.forging_without_lease().len(), "(2)");
    w.stop();
}

/// Writes a cncli leaderlog with one slot at `at` (or none) to `path`, as cncli does: the whole
/// file at once (a rename), `at` in RFC 3339 with an offset.
fn write_leaderlog(path: &Path, at: Option<jiff::Timestamp>) {
    let slots = match at {
        Some(t) => {
            // Mainnet slot numbers: POSIX time - 1 591 566 291 in the Shelley era.
            let slot = t.as_second() - 1_591_566_291;
            let at = t.strftime("%Y-%m-%dT%H:%M:%S+00:00");
            format!(r#"[{{"no":1,"slot":{slot},"slotInEpoch":0,"at":"{at}"}}]"#)
        }
        None => "[]".into(),
    };
    let json = format!(
        r#"{{"status":"ok","epoch":600,"epochNonce":"00","consensus":"praos","epochSlots":1,"epochSlotsIdeal":1.0,"maxPerformance":100.0,"poolId":"00","sigma":0.001,"activeStake":1,"totalActiveStake":1,"d":0.0,"f":0.05,"assignedSlots":{slots}}}"#
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).expect("write leaderlog");
    std::fs::rename(&tmp, path).expect("rename leaderlog");
}

/// Writes a leaderlog with our next leader slot `secs` whole seconds from now and waits (up to
/// 5 s) until pod `pod` of `world` shows it in `/status`; returns the slot's time, or `None`
/// when the schedule was not read.
async fn publish_slot(schedule: &Path, secs: i64, world: &World, pod: usize) -> Option<jiff::Timestamp> {
    let slot_at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    let slot_at = jiff::Timestamp::from_second(slot_at.as_second()).expect("whole second");
    write_leaderlog(schedule, Some(slot_at));
    wait_for(Duration::from_secs(5), || async {
        world
            .status(pod)
            .await
            .is_some_and(|s| s.chain.is_some_and(|c| c.next_leader_slot.is_some()))
    })
    .await
    .ok()
    .map(|_| slot_at)
}

/// The two regions' scenarios (east priority 1, west 2, one pod each, nodes serving their tip,
/// sync required; east also reads a leader schedule) in one pair of regions, one after the
/// other (a pair takes about as long to start and stop as a scenario to run): east's node
/// falling behind and catching up, then a planned handover held for east's leader slot and a
/// crash that is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_hand_over_for_a_node_behind_and_hold_a_planned_handover_for_a_leader_slot() {
    let test = "two_regions_hand_over_for_a_node_behind_and_hold_a_planned_handover_for_a_leader_slot";
    let Some(_one) = take_turn(test).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let schedule = dir.path().join("leaderlog.json");
    write_leaderlog(&schedule, None);
    let extra = |region: &str| -> Vec<(String, String)> {
        let mut env = sync_env();
        if region == "east" {
            env.extend([
                ("LEADER_SCHEDULE".into(), schedule.display().to_string()),
                ("HANDOVER_QUIET".into(), "20".into()),
                // The schedule is read with the tip (a later value wins).
                ("SYNC_CHECK_INTERVAL".into(), "200ms".into()),
            ]);
        }
        env
    };
    let mut r = Regions::start(
        &[("east", 1), ("west", 2)],
        |_| {
            let mut o = WorldOptions::realistic(exe(), 1);
            o.node_metrics = true;
            o
        },
        extra,
    )
    .await
    .unwrap_or_else(|e| panic!("{test}: {e}"));
    a_primary_region_whose_node_falls_behind_hands_over_to_the_synced_region(&mut r).await;
    a_planned_handover_waits_for_our_leader_slot_and_a_crash_is_never_held(&mut r, &schedule).await;
    for w in &mut r.worlds {
        w.stop();
    }
}

/// East's node falls behind: east hands over to the synced west, and fails back once caught
/// up. Begins and ends with east forging.
async fn a_primary_region_whose_node_falls_behind_hands_over_to_the_synced_region(r: &mut Regions) {
    until_forging(r, "east-0", Duration::from_secs(30), "east does not forge alone").await;

    // East's node falls ten minutes behind: east stops, says node_not_synced (not a
    // contender), and the synced west takes over on that evidence.
    let since = forge_sim::timeline::unix_now_ns();
    r.worlds[0]
        .node_tip(0, "lag 600000")
        .await
        .expect("east falls behind");
    until_forging(r, "west-0", Duration::from_secs(30), "west did not take over").await;
    let events: Vec<TimelineEvent> = r.events();
    let off = first_time(&events, ForgingOff, "east-", since).expect("east stopped");
    let on = first_time(&events, ForgingOn, "west-", since).expect("west started");
    eprintln!(
        "(1) east behind: east forging_off after {:.0} ms, west forging_on after {:.0} ms",
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off < on, "break before make");
    assert!(
        (on - since) as f64 / 1e6 < 20_000.0,
        "cross-region handover took too long"
    );
    let east = r.worlds[0].status(0).await.expect("east /status");
    assert_eq!(east.reason, "node_not_synced", "{east}");
    let without_lease = r.without_lease();
    assert_safe(&events, without_lease, "(1)");

    // East catches up: Priority-based, it is the better region again and fails back (a planned
    // handover for west, which has no schedule).
    let since = forge_sim::timeline::unix_now_ns();
    r.worlds[0].node_tip(0, "resume").await.expect("east catches up");
    until_forging(r, "east-0", Duration::from_secs(30), "no failback").await;
    let events: Vec<TimelineEvent> = r.events();
    let on = first_time(&events, ForgingOn, "east-", since).expect("east started again");
    eprintln!(
        "(2) east synced again: forging after {:.0} ms",
        (on - since) as f64 / 1e6
    );
    let without_lease = r.without_lease();
    assert_safe(&events, without_lease, "(2)");
}

/// A planned handover (east `Disabled`) waits for east's leader slot (`schedule`, a cncli
/// leaderlog east reads) and happens right after it; a crash of east's node is never held.
/// Begins with east forging, ends with west forging (east's node gone).
async fn a_planned_handover_waits_for_our_leader_slot_and_a_crash_is_never_held(
    r: &mut Regions,
    schedule: &Path,
) {
    until_forging(r, "east-0", Duration::from_secs(30), "east does not forge alone").await;

    // Our next leader slot 8 s from now; the ChainWatcher picks the new file up.
    let slot_at = publish_slot(schedule, 8, &r.worlds[0], 0)
        .await
        .unwrap_or_else(|| panic!("the schedule was not read\n{}", r.logs()));
    let metrics = r.worlds[0].metrics(0).await.unwrap_or_default();
    let want = format!(
        "cardano_leader_next_slot_timestamp_seconds {}",
        slot_at.as_second()
    );
    assert!(metrics.lines().any(|l| l == want), "{want} not in\n{metrics}");

    // Planned maintenance: east Disabled. The handover is held until the slot has passed.
    let since = forge_sim::timeline::unix_now_ns();
    r.patch_spec("east", serde_json::json!({"forgeState": "Disabled"}))
        .await;
    wait_for(Duration::from_secs(5), || async {
        r.worlds[0]
            .status(0)
            .await
            .is_some_and(|s| s.reason == "handover_held")
    })
    .await
    .unwrap_or_else(|_| panic!("no hold in /status\n{}", r.logs()));
    let held = r.worlds[0].status(0).await.expect("status");
    eprintln!("(1) east Disabled, held: {}", held.message);
    assert_eq!(held.forging, Some(true));
    assert!(held.message.contains(&slot_at.to_string()), "{held}");
    assert_eq!(
        r.forging_now(),
        vec!["east-0".to_string()],
        "still east during the hold"
    );

    until_forging(
        r,
        "west-0",
        Duration::from_secs(30),
        "west did not take over after the slot",
    )
    .await;
    let events: Vec<TimelineEvent> = r.events();
    let slot_ns = u64::try_from(slot_at.as_nanosecond()).expect("after 1970");
    let slot_end_ns = slot_ns + 1_000_000_000;
    let off = first_time(&events, ForgingOff, "east-", since).expect("east stopped");
    let on = first_time(&events, ForgingOn, "west-", since).expect("west started");
    eprintln!(
        "(2) slot at +{:.0} ms; east forging_off at +{:.0} ms, west forging_on at +{:.0} ms (after the patch)",
        (slot_ns - since) as f64 / 1e6,
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off >= slot_end_ns, "east stopped before its slot ended");
    assert!(off < on, "break before make");
    // Right after the slot: the wake-up is set for the slot's end; east's stop (STOP_GRACE 2 s,
    // its reload up to 1.5 s) and west's start (claim, evidence, reload) follow.
    assert!(
        on - slot_end_ns < 15_000_000_000,
        "west started {:.0} ms after the slot",
        (on - slot_end_ns) as f64 / 1e6
    );
    let east_log = r.worlds[0].manager_log(0);
    assert!(east_log.contains("handover_held"), "{east_log}");
    let without_lease = r.without_lease();
    assert_safe(&events, without_lease, "(2)");

    // (3) An unplanned stop is never held: east forges again (failback), has a slot 10 s
    // ahead, and its node crashes: west takes over well before that slot.
    r.patch_spec("east", serde_json::json!({"forgeState": "Priority-based"}))
        .await;
    until_forging(r, "east-0", Duration::from_secs(30), "no failback to east").await;
    let slot_at = publish_slot(schedule, 10, &r.worlds[0], 0)
        .await
        .unwrap_or_else(|| panic!("the new schedule was not read\n{}", r.logs()));
    let since = forge_sim::timeline::unix_now_ns();
    r.worlds[0].kill_node(0);
    until_forging(
        r,
        "west-0",
        Duration::from_secs(20),
        "west did not take over from the crash",
    )
    .await;
    let events: Vec<TimelineEvent> = r.events();
    let on = first_time(&events, ForgingOn, "west-", since).expect("west started");
    let slot_ns = u64::try_from(slot_at.as_nanosecond()).expect("after 1970");
    eprintln!(
        "(3) east's node killed with its slot at +{:.0} ms: west forging_on at +{:.0} ms",
        (slot_ns.saturating_sub(since)) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(on < slot_ns, "the crash was held until the slot");
    let without_lease = r.without_lease();
    assert_safe(&events, without_lease, "(3)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_just_before_our_leader_slot_is_held_until_the_slot_has_passed() {
    let test = "a_sigterm_just_before_our_leader_slot_is_held_until_the_slot_has_passed";
    let Some(_one) = take_turn(test).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let schedule = dir.path().join("leaderlog.json");
    write_leaderlog(&schedule, None);
    let mut options = WorldOptions::realistic(exe(), 2);
    options.extra_env = vec![
        ("LEADER_SCHEDULE".into(), schedule.display().to_string()),
        ("HANDOVER_QUIET".into(), "20".into()),
        ("SYNC_CHECK_INTERVAL".into(), "200ms".into()),
        // A hold may last up to SHUTDOWN_TIMEOUT - STOP_CONFIRM_TIMEOUT (5 s) - 1 s: 14 s.
        ("SHUTDOWN_TIMEOUT".into(), "20".into()),
    ];
    let mut w = World::start(options)
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    let (first, _) = w
        .wait_for_single_forger(Duration::from_secs(30), None)
        .await
        .unwrap_or_else(|| panic!("nobody forges\n{}", w.manager_log(0)));
    let leader = w.index_of(&first).expect("the forger's pod");

    // Our next leader slot 6 s from now; the forger's ChainWatcher picks the file up.
    let slot_at = publish_slot(&schedule, 6, &w, leader)
        .await
        .unwrap_or_else(|| panic!("the schedule was not read\n{}", w.manager_log(leader)));

    // SIGTERM to the forger's sidecar (a pod deletion): held until the slot has ended.
    let since = forge_sim::timeline::unix_now_ns();
    w.signal_manager(leader, nix::sys::signal::Signal::SIGTERM);
    let (second, _) = w
        .wait_for_single_forger(Duration::from_secs(30), Some(&first))
        .await
        .unwrap_or_else(|| panic!("nobody took over\n{}", w.manager_log(leader)));
    let log = w.manager_log(leader);
    assert!(
        log.lines()
            .any(|l| l.contains("shutdown held") && l.contains("leader slots is imminent")),
        "no hold in the log\n{log}"
    );
    let events = w.events();
    let slot_end_ns = u64::try_from(slot_at.as_nanosecond()).expect("after 1970") + 1_000_000_000;
    let off = first_time(&events, ForgingOff, &first, since).expect("the old forger stopped");
    let on = first_time(&events, ForgingOn, &second, since).expect("the new forger started");
    eprintln!(
        "SIGTERM at 0 ms; slot ended at +{:.0} ms; {first} forging_off at +{:.0} ms; {second} forging_on at +{:.0} ms",
        (slot_end_ns - since) as f64 / 1e6,
        (off - since) as f64 / 1e6,
        (on - since) as f64 / 1e6
    );
    assert!(off >= slot_end_ns, "the forger stopped before its slot ended");
    assert!(off < on, "break before make");
    assert!(
        on - slot_end_ns < 10_000_000_000,
        "the handover came {:.0} ms after the slot",
        (on - slot_end_ns) as f64 / 1e6
    );
    assert_safe(&events, w.forging_without_lease().len(), "sigterm hold");
    w.stop();
}
