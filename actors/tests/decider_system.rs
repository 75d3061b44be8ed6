//! System tests of the Decider (the actor tier of docs/architecture.md, "Test world"): per pod the
//! real Decider and the real LeaseElector (supervised) over one shared in-memory Lease store, with
//! stand-ins for the CredentialKeeper, NodeSignaller and ClusterWatcher and a fake node each (see
//! `support`). Facts enter as the real actors send them. On virtual time, S1 (never two forgers)
//! and S2 (a pod stops forging before another installs or gets the Lease) are checked at the
//! instant of every change, and again after every step.
mod support;

use std::time::Duration;

use forge_actors::testing::Outage;
use forge_core::decision::ReloadReason;
use futures::future::join_all;
use support::{Did, Entry, Fleet, Pod, PodOptions, on_virtual_time, timing};
use tokio::time::Instant;

const A: &str = "pod-a";
const B: &str = "pod-b";
const C: &str = "pod-c";

/// Three ready pods (node up, credentials valid), their facts sent concurrently, so their
/// electors race for the Lease. The facts come 250 ms after the start, so that lease
/// renewals (every retry period from the acquisition) and their deadlines fall between the
/// Deciders' heartbeats: a Decider that only noticed a passed deadline at its next heartbeat
/// would be caught late.
async fn three_ready_pods(fleet: &Fleet, options: impl Fn() -> PodOptions) -> Vec<Pod> {
    let pods: Vec<Pod> = [A, B, C]
        .into_iter()
        .map(|n| fleet.start_pod(n, options()))
        .collect();
    fleet.sleep_ms(250).await;
    join_all(pods.iter().map(Pod::ready)).await;
    pods
}

/// Runs until one pod forges (checked), and returns it.
async fn leader<'a>(fleet: &Fleet, pods: &'a [Pod]) -> &'a Pod {
    fleet.run_checked(5_000, 10).await;
    let forgers = fleet.forgers();
    assert_eq!(forgers.len(), 1, "one forger: {forgers:?}");
    let leader = pods.iter().find(|p| p.name == forgers[0]).expect("a pod");
    assert_eq!(
        fleet.store.holder().as_deref(),
        Some(leader.name),
        "the forger holds the Lease"
    );
    assert!(leader.decides_to_forge());
    leader
}

/// On virtual time, three ready pods (`three_ready_pods`, default options) and the one that forges
/// among them (`leader`), handed to `test`: where most tests here start.
fn with_a_leader(test: impl AsyncFnOnce(&Fleet, &[Pod], &Pod)) {
    on_virtual_time(|| async move {
        let fleet = Fleet::new();
        let pods = three_ready_pods(&fleet, PodOptions::default).await;
        let l = leader(&fleet, &pods).await;
        test(&fleet, &pods, l).await;
    });
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// When `pod`'s elector last wrote the Lease (the in-memory store answers at once, so this is
/// also when that write was sent).
fn last_write_by(fleet: &Fleet, pod: &str) -> Instant {
    fleet
        .store
        .history()
        .iter()
        .rev()
        .find(|w| w.writer == pod)
        .expect("a write")
        .at
}

fn forging_started_by_another(fleet: &Fleet, mark: usize, not: &str) -> Entry {
    fleet.log()[mark..]
        .iter()
        .find(|e| e.did == Did::Forging(true) && e.pod != not)
        .cloned()
        .unwrap_or_else(|| {
            fleet.dump();
            panic!("another pod forges")
        })
}

fn first(fleet: &Fleet, mark: usize, pod: &str, did: Did) -> Entry {
    fleet
        .first_since(mark, Some(pod), |d| *d == did)
        .unwrap_or_else(|| {
            fleet.dump();
            panic!("{pod}: no {did:?}")
        })
}

/// The first holder change to a pod other than `not` from `mark` on.
fn taken_over(fleet: &Fleet, mark: usize, not: &str) -> Entry {
    fleet
        .first_since(mark, None, |d| matches!(d, Did::Holder(Some(h)) if h != not))
        .unwrap_or_else(|| {
            fleet.dump();
            panic!("nobody took over from {not}")
        })
}

/// How the forging passed on from a pod: its node stopped forging, another pod took the Lease,
/// another pod's node started forging.
struct Handover {
    stop: Entry,
    taken: Entry,
    other: Entry,
}

/// The hand-over from `from` since `mark`, checked to stop `from` before the Lease passed.
fn handed_over(fleet: &Fleet, mark: usize, from: &str) -> Handover {
    let stop = first(fleet, mark, from, Did::Forging(false));
    let taken = taken_over(fleet, mark, from);
    assert!(taken.seq > stop.seq);
    let other = forging_started_by_another(fleet, mark, from);
    Handover { stop, taken, other }
}

/// The release by `from` since `mark`, checked: its commands were those of a stop for `why`
/// that gives the Lease up, its node stopped forging before the release, and another pod's
/// started after it. Returns the stop and the other pod's start.
fn released_to_another(fleet: &Fleet, mark: usize, from: &str, why: ReloadReason) -> (Entry, Entry) {
    assert_eq!(
        fleet.commands_since(from, mark),
        [
            Did::Remove,
            Did::Reload(why),
            Did::WriteStatus(false),
            Did::Contend(false),
            Did::Release,
        ]
    );
    let stop = first(fleet, mark, from, Did::Forging(false));
    let released = first(fleet, mark, from, Did::Holder(None));
    assert!(released.seq > stop.seq);
    let other = forging_started_by_another(fleet, mark, from);
    assert!(other.seq > released.seq);
    (stop, other)
}

/// The commands that reached `pod`'s node from `mark` on.
fn node_commands(fleet: &Fleet, pod: &str, mark: usize) -> Vec<Did> {
    fleet
        .commands_since(pod, mark)
        .into_iter()
        .filter(Did::touches_node)
        .collect()
}

/// The commands `pod` got from `mark` on, with whether each succeeded.
fn commands_and_results(fleet: &Fleet, pod: &str, mark: usize) -> Vec<(Did, bool)> {
    fleet
        .entries_since(pod, mark)
        .into_iter()
        .filter(|e| e.did.is_command())
        .map(|e| (e.did, e.ok))
        .collect()
}

#[test]
fn a_cold_start_of_three_pods_makes_exactly_one_forge_within_lease_duration_plus_retry() {
    on_virtual_time(|| async {
        let fleet = Fleet::new();
        let started = Instant::now();
        let _pods = three_ready_pods(&fleet, PodOptions::default).await;
        let t = timing();
        fleet.run_checked(ms(t.duration + t.retry_period), 10).await;
        let forgers = fleet.forgers();
        assert_eq!(forgers.len(), 1, "exactly one forger: {forgers:?}");
        let began = first(&fleet, 0, &forgers[0], Did::Forging(true));
        assert!(began.at - started <= t.duration + t.retry_period);
        assert_eq!(fleet.store.holder(), Some(forgers[0].clone()));

        // And it stays that way: one forger, the same one, nobody else ever installs.
        fleet.run_checked(20_000, 50).await;
        assert_eq!(fleet.forgers(), forgers);
        let log = fleet.log();
        assert_eq!(log.iter().filter(|e| e.did == Did::Forging(true)).count(), 1);
        assert!(log.iter().all(|e| e.did != Did::Install || e.pod == forgers[0]));
        assert!(log.iter().all(|e| e.did != Did::Forging(false)));
    });
}

/// API timeouts (or a hang) on the leader's client past the renew deadline.
fn leader_outage_stops_forging_by_its_renew_deadline(outage: Outage) {
    with_a_leader(async move |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        l.client.set_outage(outage);
        let last_renew = last_write_by(fleet, l.name);
        fleet.run_checked(8_000, 10).await;

        // The leader stops forging (Remove, then Reload) by last renewal sent + renew deadline.
        let Handover { stop, taken, other } = handed_over(fleet, mark, l.name);
        assert!(
            stop.at <= last_renew + t.renew_deadline,
            "stopped {:?} after the last renewal; renew deadline {:?}",
            stop.at - last_renew,
            t.renew_deadline
        );
        assert_eq!(
            node_commands(fleet, l.name, mark)[..2],
            [Did::Remove, Did::Reload(ReloadReason::StopForging)]
        );
        // Nobody got the Lease before observation + lease duration, and the leader had
        // stopped by then; another pod forges right after.
        assert!(taken.at >= last_renew + t.duration, "taken over too early");
        assert!(other.at <= last_renew + t.duration + t.retry_period);
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);

        // Healed, the old leader stays a standby.
        l.client.set_outage(Outage::None);
        fleet.run_checked(10_000, 50).await;
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);
        assert!(!l.decides_to_forge());
    });
}

#[test]
fn api_timeouts_on_the_leader_stop_its_node_by_its_renew_deadline_before_another_pod_takes_over() {
    leader_outage_stops_forging_by_its_renew_deadline(Outage::TimeoutAfter(Duration::from_secs(5)));
}

#[test]
fn a_hung_api_on_the_leader_stops_its_node_by_its_renew_deadline_before_another_pod_takes_over() {
    leader_outage_stops_forging_by_its_renew_deadline(Outage::Hang);
}

#[test]
fn a_short_409_storm_on_the_leader_is_ridden_out_without_a_handover() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        l.client.conflict_next_writes(3);
        fleet.run_checked(10_000, 10).await;
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(
            fleet
                .first_since(mark, None, |d| matches!(d, Did::Forging(_)))
                .is_none()
        );
        assert_eq!(fleet.store.holder().as_deref(), Some(l.name));
    });
}

#[test]
fn a_long_409_storm_on_the_leader_hands_over_without_two_forgers() {
    with_a_leader(async |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        let last_renew = last_write_by(fleet, l.name);
        l.client.conflict_next_writes(1_000);
        fleet.run_checked(10_000, 10).await;

        let Handover { stop, taken, other } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline);
        assert!(taken.at >= last_renew + t.duration);
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}

/// The leader's node restarts, coming back `gap_ms` after it died.
fn node_restart_on_the_leader(gap_ms: u64) {
    with_a_leader(async move |fleet, _, l| {
        let mark = fleet.mark();
        let died = Instant::now();
        l.node_down().await;
        fleet.sleep_ms(gap_ms).await;
        fleet.assert_safe();
        l.node_up().await;
        fleet.run_checked(6_000, 10).await;

        // At once: Remove then Reload (the reload finds no node when it is still down), and only
        // then the release; another pod takes over from the release, not at lease expiry.
        let cmds = fleet.commands_since(l.name, mark);
        assert_eq!(
            cmds[..2],
            [Did::Remove, Did::Reload(ReloadReason::StopForging)],
            "{cmds:?}"
        );
        let removed = first(fleet, mark, l.name, Did::Remove);
        assert_eq!(removed.at, died, "removed at once");
        let released = first(fleet, mark, l.name, Did::Release);
        assert!(released.seq > removed.seq);
        let taken = taken_over(fleet, mark, l.name);
        assert!(taken.seq > released.seq);
        assert!(
            taken.at - died < Duration::from_millis(10),
            "handover took {:?}",
            taken.at - died
        );
        let other = forging_started_by_another(fleet, mark, l.name);
        assert!(other.at - died < Duration::from_millis(10));
        // The restarted node does not forge again, and its files are gone.
        assert_eq!(fleet.forgers(), vec![other.pod]);
        assert!(!fleet.node(l.name).files);
    });
}

#[test]
fn a_node_restart_on_the_leader_stops_it_at_once_and_hands_over_without_overlap() {
    node_restart_on_the_leader(1_000);
}

/// The leader's node dies and starts again before the NodeWatcher reports either, forging from
/// its start with the files still present: both facts arrive back to back, the second while the
/// stop plan for the first is in flight. That plan's reload reaches the new process and stops
/// it, but the hand-over gate keeps the claim and the lease (a process came up after the plan
/// was made, F12); decided again with the node up, the leader starts its new node forging.
#[test]
fn a_node_restart_faster_than_its_report_is_stopped_and_forges_again_without_a_handover() {
    with_a_leader(async move |fleet, _, l| {
        let mark = fleet.mark();
        l.node_restarted_before_reported().await;
        fleet.run_checked(6_000, 10).await;

        let cmds: Vec<Did> = fleet
            .commands_since(l.name, mark)
            .into_iter()
            .filter(|d| *d != Did::Reload(ReloadReason::Reassert))
            .collect();
        assert_eq!(
            cmds,
            [
                Did::Remove,
                Did::Reload(ReloadReason::StopForging),
                Did::Install,
                Did::Reload(ReloadReason::StartForging),
            ],
            "stopped, then started again; nothing given up"
        );
        let stopped = first(fleet, mark, l.name, Did::Forging(false));
        let again = fleet
            .first_since(stopped.seq, Some(l.name), |d| *d == Did::Forging(true))
            .expect("forging again");
        assert!(again.seq > stopped.seq);
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert_eq!(fleet.store.holder().as_deref(), Some(l.name), "no handover");
    });
}

#[test]
fn a_rotation_while_forging_installs_and_reloads_the_forging_pod_only() {
    with_a_leader(async |fleet, pods, l| {
        let mark = fleet.mark();
        join_all(pods.iter().map(Pod::rotated)).await;
        fleet.run_checked(3_000, 10).await;

        assert_eq!(
            node_commands(fleet, l.name, mark),
            [Did::Install, Did::Reload(ReloadReason::Rotation)]
        );
        for p in pods.iter().filter(|p| p.name != l.name) {
            assert_eq!(fleet.commands_since(p.name, mark), [], "{} ignores it", p.name);
        }
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(fleet.node(l.name).files);
    });
}

#[test]
fn a_corrupt_rotation_on_the_leader_stops_it_and_releases_so_another_pod_forges() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        l.credentials_invalid("kes.skey: not a valid text envelope").await;
        fleet.run_checked(5_000, 10).await;

        let (stop, other) = released_to_another(fleet, mark, l.name, ReloadReason::StopForging);
        assert!(
            other.at - stop.at < Duration::from_millis(10),
            "handover at release"
        );
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);

        // Valid again: it contends, but stays a standby.
        let mark = fleet.mark();
        l.credentials_valid().await;
        fleet.run_checked(5_000, 50).await;
        assert_eq!(fleet.commands_since(l.name, mark), [Did::Contend(true)]);
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}

#[test]
fn a_crashed_leader_elector_is_restarted_and_keeps_its_tenure_without_two_forgers() {
    with_a_leader(async |fleet, pods, l| {
        let mark = fleet.mark();

        // Its watch fails: the elector stops, its Supervisor restarts it after a backoff, it
        // keeps its tenure and renews at once. Nobody notices.
        l.client.break_watches();
        fleet.run_checked(3_000, 10).await;
        assert_eq!(l.elector_restarts(), 1);
        assert!(l.elector.connected());
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(last_write_by(fleet, l.name) > Instant::now() - timing().retry_period * 2);
        // Every elector's watch fails at once, twice.
        for _ in 0..2 {
            fleet.store.break_watches();
            fleet.run_checked(3_000, 10).await;
        }
        assert!(
            pods.iter()
                .all(|p| p.elector_restarts() >= 2 && p.elector.connected())
        );
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(
            fleet
                .first_since(mark, None, |d| matches!(d, Did::Forging(_)))
                .is_none()
        );

        // It crashes while the API hangs: the restarted elector cannot renew, so the tenure it
        // kept ends at its deadline; the node stops first, then another pod takes over.
        let t = timing();
        let last_renew = last_write_by(fleet, l.name);
        l.client.set_outage(Outage::Hang);
        l.client.break_watches();
        fleet.run_checked(8_000, 10).await;
        let Handover { stop, other, .. } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline);
        l.client.set_outage(Outage::None);
        fleet.run_checked(5_000, 50).await;
        assert_eq!(fleet.forgers(), vec![other.pod]);
        assert!(l.elector.connected());
    });
}

#[test]
fn a_graceful_shutdown_of_the_leader_removes_reloads_then_releases_and_another_forges_within_milliseconds() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        let asked = Instant::now();
        l.shutdown().await;
        fleet.run_checked(20, 1).await;

        let (_, other) = released_to_another(fleet, mark, l.name, ReloadReason::Shutdown);
        assert!(
            other.at - asked <= Duration::from_millis(10),
            "took {:?}",
            other.at - asked
        );
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}

#[test]
fn boot_credentials_are_installed_without_a_reload_while_the_node_is_down_and_removed_first_when_it_comes_up()
{
    on_virtual_time(|| async {
        let fleet = Fleet::new();
        // b forges; a starts non-producing and needs its files to boot.
        let b = fleet.start_pod(B, PodOptions::default());
        b.ready().await;
        fleet.run_checked(1_000, 10).await;
        assert_eq!(fleet.forgers(), vec![B.to_string()]);

        let a = fleet.start_pod(
            A,
            PodOptions {
                boot_credentials: true,
                ..PodOptions::default()
            },
        );
        a.credentials_valid().await;
        fleet.run_checked(5_000, 10).await;
        // The start-up plan (its reload finds no node), then Install only: no reload while down.
        assert_eq!(
            commands_and_results(&fleet, A, 0),
            [
                (Did::Remove, true),
                (Did::Reload(ReloadReason::Startup), false),
                (Did::Install, true),
            ]
        );
        assert!(fleet.node(A).files && !fleet.node(A).up);

        // The node comes up (non-producing): Remove, then Reload, before anything else.
        let mark = fleet.mark();
        a.node_up().await;
        fleet.run_checked(5_000, 10).await;
        let cmds = fleet.commands_since(A, mark);
        assert_eq!(
            cmds[..3],
            [
                Did::Remove,
                Did::Reload(ReloadReason::Startup),
                Did::Contend(true)
            ],
            "{cmds:?}"
        );
        assert!(!fleet.node(A).files);
        assert_eq!(fleet.forgers(), vec![B.to_string()]);

        // b's node dies: a takes over and forges; then a's node dies: it stops, and its boot
        // credentials come back (still without a reload) for the node's next start.
        let mark = fleet.mark();
        b.node_down().await;
        fleet.run_checked(5_000, 10).await;
        assert_eq!(fleet.forgers(), vec![A.to_string()]);
        let mark2 = fleet.mark();
        a.node_down().await;
        fleet.run_checked(5_000, 10).await;
        assert!(fleet.forgers().is_empty());
        assert_eq!(
            node_commands(&fleet, A, mark2),
            [Did::Remove, Did::Reload(ReloadReason::StopForging), Did::Install]
        );
        assert!(fleet.node(A).files);
        assert!(fleet.first_since(mark, Some(B), |d| *d == Did::Install).is_none());
    });
}

#[test]
fn a_failed_removal_still_reloads_keeps_the_lease_and_is_retried_before_anything_is_released() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        fleet.fail_next(l.name, &Did::Remove, 2);
        l.credentials_invalid("vrf.skey: unreadable").await;
        fleet.run_checked(5_000, 10).await;

        assert_eq!(
            commands_and_results(fleet, l.name, mark),
            [
                // The node is told anyway (some files may be gone), and nothing is handed over.
                (Did::Remove, false),
                (Did::Reload(ReloadReason::StopForging), true),
                (Did::Remove, false),
                (Did::Reload(ReloadReason::StopForging), true),
                (Did::Remove, true),
                (Did::Reload(ReloadReason::StopForging), true),
                (Did::WriteStatus(false), true),
                (Did::Contend(false), true),
                (Did::Release, true),
            ]
        );
        handed_over(fleet, mark, l.name);
    });
}

#[test]
fn a_leader_whose_node_the_guard_fenced_starts_it_again() {
    // L1-a: the guard's permit lapsed (renewals lost on the way) while the lease renews fine:
    // the node stopped forging; the Decider must not go on claiming to forge with nothing
    // installed.
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        l.fenced().await;
        fleet.run_checked(3_000, 10).await;
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert_eq!(
            node_commands(fleet, l.name, mark),
            [Did::Remove, Did::Install, Did::Reload(ReloadReason::StartForging)],
            "after the fence (Remove), install and reload again"
        );
    });
}

#[test]
fn the_stop_at_the_renew_deadline_does_not_wait_for_a_slow_plan_in_flight() {
    // F10: the leader's API server fails (no more renewals) while a rotation's reload hangs in
    // the node for longer than the renew deadline. The stop must not wait for that answer: the
    // plan is abandoned at the deadline and Remove + Reload(StopForging) go out at once (without
    // the guard, nothing else stops a node that forges past the deadline).
    with_a_leader(async |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        l.client.set_outage(Outage::ServerError);
        let last_renew = last_write_by(fleet, l.name);
        let slow = t.renew_deadline + Duration::from_secs(4);
        fleet.delay_next(l.name, &Did::Reload(ReloadReason::Rotation), slow);
        l.rotated().await;
        fleet.run_checked(8_000, 10).await;

        let remove = fleet
            .first_since(mark, Some(l.name), |d| *d == Did::Remove)
            .unwrap_or_else(|| {
                fleet.dump();
                panic!("the leader removes its credentials")
            });
        let late = Duration::from_millis(100);
        assert!(
            remove.at <= last_renew + t.renew_deadline + late,
            "Remove came {:?} after the last renewal; renew deadline {:?} (the slow reload answers after {slow:?})",
            remove.at - last_renew,
            t.renew_deadline
        );
        let Handover { stop, .. } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline + late);
    });
}

#[test]
fn a_stop_that_failed_after_the_node_was_told_leaves_nobody_without_a_forger() {
    // L1-b: a stop plan removed the credentials and reloaded the node, then its status write
    // failed (with cluster management a failed status write stops the plan, so the claim and
    // the lease stay), and the cause of the stop cleared meanwhile. The node was told to stop:
    // someone must forge again (this pod after Install and a reload, or another after a
    // release), not a leader that claims to forge with nothing installed.
    on_virtual_time(|| async {
        let fleet = Fleet::new();
        let pods = three_ready_pods(&fleet, || PodOptions {
            status_write_required: true,
            ..PodOptions::default()
        })
        .await;
        let l = leader(&fleet, &pods).await;
        let mark = fleet.mark();
        // The status write hangs for 2 s, then fails; the cause clears meanwhile.
        fleet.fail_next(l.name, &Did::WriteStatus(false), 1);
        fleet.delay_next(l.name, &Did::WriteStatus(false), Duration::from_secs(2));
        l.credentials_invalid("kes.skey: unreadable").await;
        fleet.run_checked(200, 10).await;
        assert!(fleet.forgers().is_empty(), "the node was told to stop");
        l.credentials_valid().await;
        fleet.run_checked(5_000, 10).await;
        assert_eq!(
            fleet.forgers().len(),
            1,
            "nobody forges; the leader's commands since the stop: {:?}",
            commands_and_results(&fleet, l.name, mark)
        );
    });
}

/// F12, the sidecar half: a standby's node restarts producing (started without
/// `--start-as-non-producing-node`, it read files that were present at its start): once it is
/// up, the Decider reloads it with no credentials in place, and it stops forging.
#[test]
fn a_standby_whose_node_restarts_forging_reloads_it_with_no_credentials() {
    on_virtual_time(|| async {
        let fleet = Fleet::new();
        // a never forges: its source credentials are invalid.
        let a = fleet.start_pod(A, PodOptions::default());
        a.node_up().await;
        a.credentials_invalid("expired").await;
        fleet.run_checked(2_000, 10).await;
        assert!(fleet.forgers().is_empty());
        a.node_down().await;
        fleet.run_checked(1_000, 10).await;

        let mark = fleet.mark();
        a.node_up_forging().await;
        fleet.run_checked(2_000, 10).await;
        let entries: Vec<Did> = fleet.entries_since(A, mark).into_iter().map(|e| e.did).collect();
        assert_eq!(
            entries
                .iter()
                .filter(|d| matches!(d, Did::Forging(_)))
                .collect::<Vec<_>>(),
            [&Did::Forging(true), &Did::Forging(false)],
            "the new process forged from its start, then stopped: {entries:?}"
        );
        let cmds = fleet.commands_since(A, mark);
        assert_eq!(
            node_commands(&fleet, A, mark),
            [Did::Reload(ReloadReason::Startup)],
            "{cmds:?}"
        );
        assert!(fleet.forgers().is_empty(), "the restarted node still forges");
        assert!(!fleet.node(A).files);
    });
}

/// F12 during a stop, without the guard: the leader's stop plan (a corrupt rotation) has removed
/// the credentials and reloaded its node; while its claim withdrawal is on the way (a slow status
/// write), the node process dies and a new one comes up forging with the keys it read at its
/// start. The hand-over gate keeps contention and the lease: the stop is planned again, reaches
/// the new process, and only then is the lease released and another pod forges. S2 is checked
/// at every change (a release while the new process forges would be a violation).
#[test]
fn a_node_process_that_comes_up_forging_during_the_leaders_stop_is_stopped_before_the_release() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        fleet.delay_next(l.name, &Did::WriteStatus(false), Duration::from_millis(500));
        l.credentials_invalid("kes.skey: not a valid text envelope").await;
        fleet.run_checked(100, 10).await;
        assert_eq!(
            fleet.commands_since(l.name, mark),
            [Did::Remove, Did::Reload(ReloadReason::StopForging)],
            "the stop reached the old process; the claim withdrawal is on its way"
        );
        l.node_down().await;
        l.node_up_forging().await;
        fleet.run_checked(5_000, 10).await;

        assert_eq!(
            fleet.commands_since(l.name, mark),
            [
                Did::Remove,
                Did::Reload(ReloadReason::StopForging),
                Did::WriteStatus(false),
                // The gate: a new process came up; the stop again, for it.
                Did::Remove,
                Did::Reload(ReloadReason::StopForging),
                Did::WriteStatus(false),
                Did::Contend(false),
                Did::Release,
            ]
        );
        let new_process = first(fleet, mark, l.name, Did::NodeUp);
        let stopped = fleet
            .first_since(new_process.seq, Some(l.name), |d| *d == Did::Forging(false))
            .expect("the new process stopped");
        let released = first(fleet, mark, l.name, Did::Release);
        assert!(
            released.seq > stopped.seq,
            "released only after the new process stopped"
        );
        let other = forging_started_by_another(fleet, mark, l.name);
        assert!(other.seq > released.seq);
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}

#[test]
fn the_figures_other_actors_send_are_shown_in_status_the_last_of_each_kind() {
    use forge_actors::messages::StatusFigures;
    use forge_core::{
        credentials::OpCertInfo,
        status::{ChainReport, KesReport, QuorumReport},
    };

    with_a_leader(async |fleet, pods, l| {
        let shown = |pod: &Pod| {
            let status = pod.snapshot.borrow().status.clone().expect("a status");
            (status.kes, status.chain, status.quorum)
        };
        assert_eq!(shown(l), (None, None, None), "nothing sent yet");
        let kes = KesReport {
            op_cert: OpCertInfo {
                counter: 5,
                kes_period: 1560,
            },
            kes: None,
        };
        let chain = |slots| ChainReport {
            schedule_slots: slots,
            schedule_error: (slots == 0).then(|| "leaderlog.json: refused".to_string()),
            ..ChainReport::default()
        };
        let quorum = QuorumReport {
            want: "keep".into(),
            held: 2,
            needed: 2,
            ..QuorumReport::default()
        };
        l.decider.do_send(StatusFigures::Chain(chain(3)));
        l.decider.do_send(StatusFigures::Kes(kes));
        l.decider.do_send(StatusFigures::Quorum(quorum.clone()));
        l.decider.do_send(StatusFigures::Chain(chain(0)));
        // Published with the next decision or heartbeat.
        fleet.run_checked(ms(timing().retry_period * 2), 10).await;
        assert_eq!(shown(l), (Some(kes), Some(chain(0)), Some(quorum)));
        for other in pods.iter().filter(|p| p.name != l.name) {
            assert_eq!(
                shown(other),
                (None, None, None),
                "{} was sent nothing",
                other.name
            );
        }
    });
}
