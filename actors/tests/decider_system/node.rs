//! The node under the Decider: restarts of the leader's node (reported in time or not), the
//! guard's fence, and node processes that come up forging (F12) on a standby and during a stop.

use std::time::Duration;

use forge_core::decision::ReloadReason;
use tokio::time::Instant;

use crate::{
    A, calls, first, forging_started_by_another, node_calls,
    support::{Did, Fleet, NODE_POLL, PodOptions, on_virtual_time},
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

        // At its next poll: Remove, and the claim withdrawn (the guard reported its node's
        // exit, so the stop needs no reload), and only then the release; another pod takes
        // over from the release, not at lease expiry.
        let cmds = calls(fleet, l.name, mark);
        assert_eq!(cmds[..2], [Did::Remove, Did::Status(false)], "{cmds:?}");
        let removed = first(fleet, mark, l.name, Did::Remove);
        assert!(removed.at - died <= NODE_POLL, "removed at the next poll");
        let released = first(fleet, mark, l.name, Did::Holder(None));
        assert!(released.seq > removed.seq);
        let taken = taken_over(fleet, mark, l.name);
        assert!(taken.seq > released.seq);
        assert!(
            taken.at - died < NODE_POLL + Duration::from_millis(10),
            "handover took {:?}",
            taken.at - died
        );
        let other = forging_started_by_another(fleet, mark, l.name);
        assert!(other.at - died < NODE_POLL + Duration::from_millis(10));
        // The restarted node does not forge again, and its files are gone.
        assert_eq!(fleet.forgers(), vec![other.pod]);
        assert!(l.world.credentials.installed().is_none());
    });
}

#[test]
fn a_node_restart_on_the_leader_stops_it_at_once_and_hands_over_without_overlap() {
    node_restart_on_the_leader(1_000);
}

/// The leader's node dies and starts again between two polls of the NodeWatcher, forging from
/// its start with the files still present: the watcher sees another process and reports
/// `NodeDown` then `NodeUp` back to back, the second while the stop plan for the first is in
/// flight. The hand-over gate keeps the claim and the lease (a process came up after the plan
/// was made, F12); decided again with the node up, the leader installs and reloads for its new
/// node, which forges on. The stop reaches the new process: the old guard's `exited` report
/// is about the old process and confirms nothing for the new one (F22), and a stop during
/// which a new process came up is not adopted (F17): the leader, its lease renewed meanwhile,
/// starts that process again at once (when the lease facts waited behind the stop in the
/// NodeSignaller, the Decider saw its renew deadline pass and stopped it once more first), and
/// reloads it once more when the stop has had its STOP_GRACE (F24).
#[test]
fn a_node_restart_faster_than_its_report_is_stopped_and_forges_again_without_a_handover() {
    with_a_leader(async move |fleet, _, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        l.node_restarted_before_reported().await;
        fleet.run_checked(6_000, 10).await;

        let stopped = first(fleet, mark, l.name, Did::Forging(false));
        let again = fleet
            .first_since(stopped.seq, Some(l.name), |d| *d == Did::Forging(true))
            .expect("forging again");
        assert!(again.seq > stopped.seq);
        assert_eq!(
            node_calls(fleet, l.name, mark),
            [Did::Remove, Did::Reload, Did::Install, Did::Reload, Did::Reload],
            "stopped (the new process too), then started again and followed up; nothing given up"
        );
        assert_eq!(
            l.reloads_since(&before),
            [
                (ReloadReason::StartForging, 1),
                (ReloadReason::StopForging, 1),
                (ReloadReason::FollowUp, 1)
            ]
        );
        assert_eq!(
            l.world.credentials.installed(),
            l.world.sources.read_now(),
            "installed again for the new process"
        );
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert_eq!(fleet.store.holder().as_deref(), Some(l.name), "no handover");
        assert!(
            fleet
                .first_since(mark, None, |d| matches!(d, Did::Holder(_)))
                .is_none()
        );
    });
}

#[test]
fn a_leader_whose_node_the_guard_fenced_starts_it_again() {
    // L1-a: the guard's permit lapsed (renewals lost on the way) while the lease renews fine:
    // the guard removed the files and the node stopped forging; the Decider must not go on
    // claiming to forge with nothing installed. The start follows the fence's SIGHUP at once,
    // so the NodeSignaller answers it as undoable until the fence's STOP_GRACE, and the
    // Decider's lifecycle reloads it once more then (F24).
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        l.fenced().await;
        fleet.run_checked(3_000, 10).await;
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        let cmds = node_calls(fleet, l.name, mark);
        assert_eq!(
            cmds[cmds.len() - 3..],
            [Did::Install, Did::Reload, Did::Reload],
            "after the fence, install and reload again, then the follow-up reload: {cmds:?}"
        );
        assert_eq!(
            l.reloads_since(&before),
            [(ReloadReason::StartForging, 1), (ReloadReason::FollowUp, 1)]
        );
        assert!(l.world.credentials.installed().is_some());
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
        let before = a.reload_counts();
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
        assert_eq!(node_calls(&fleet, A, mark), [Did::Reload], "{entries:?}");
        assert_eq!(a.reloads_since(&before), [(ReloadReason::Startup, 1)]);
        let stopped = first(&fleet, mark, A, Did::Forging(false));
        assert!(
            stopped.at - first(&fleet, mark, A, Did::NodeUp).at <= NODE_POLL,
            "stopped once the NodeWatcher saw it"
        );
        assert!(fleet.forgers().is_empty(), "the restarted node still forges");
        assert!(a.world.credentials.installed().is_none());
    });
}

/// F12 during a stop: the leader's stop plan (a corrupt rotation) has removed the credentials
/// and reloaded its node; while its claim withdrawal is on the way (a slow status write), the
/// node process dies and a new one comes up forging with the keys it read at its start. The
/// hand-over gate keeps contention and the lease: the stop is planned again, reaches the new
/// process, and only then is the lease released and another pod forges. S2 is checked at every
/// change (a release while the new process forges would be a violation).
#[test]
fn a_node_process_that_comes_up_forging_during_the_leaders_stop_is_stopped_before_the_release() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        fleet.delay_next(l.name, &Did::Status(false), Duration::from_millis(1_000));
        l.credentials_invalid("kes.skey: not a valid text envelope").await;
        fleet.run_checked(500, 10).await;
        assert_eq!(
            calls(fleet, l.name, mark),
            [Did::Remove, Did::Reload, Did::Revoke],
            "the stop reached the old process; the claim withdrawal is on its way"
        );
        l.node_down().await;
        l.node_up_forging().await;
        fleet.run_checked(5_000, 10).await;

        let new_process = first(fleet, mark, l.name, Did::NodeUp);
        let stopped = fleet
            .first_since(new_process.seq, Some(l.name), |d| *d == Did::Forging(false))
            .expect("the new process stopped");
        let released = first(fleet, mark, l.name, Did::Holder(None));
        assert!(
            released.seq > stopped.seq,
            "released only after the new process stopped"
        );
        // The gate: a new process came up; the stop again, for it (its claim withdrawal is
        // written already, so the StatusWriter writes nothing new).
        let cmds = calls(fleet, l.name, mark);
        assert_eq!(
            cmds,
            [
                Did::Remove,
                Did::Reload,
                Did::Revoke,
                Did::Status(false),
                Did::Remove,
                Did::Reload,
                Did::Revoke,
            ],
            "{cmds:?}"
        );
        let other = forging_started_by_another(fleet, mark, l.name);
        assert!(other.seq > released.seq);
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}
