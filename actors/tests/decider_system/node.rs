//! The node under the Decider: restarts of the leader's node (reported in time or not), the
//! guard's fence, and node processes that come up forging (F12) on a standby and during a stop.

use std::time::Duration;

use forge_core::decision::ReloadReason;
use tokio::time::Instant;

use crate::{
    A, first, forging_started_by_another, node_commands,
    support::{Did, Fleet, PodOptions, on_virtual_time},
    taken_over, with_a_leader,
};

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
