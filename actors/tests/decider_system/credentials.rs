//! Credentials and the stops they cause: a rotation while forging, a corrupt rotation, boot
//! credentials for a node that is down, a removal that fails, and a stop that failed after the
//! node was told.

use std::time::Duration;

use forge_core::decision::ReloadReason;
use futures::future::join_all;

use crate::{
    A, B, commands_and_results, handed_over, leader, node_commands, released_to_another,
    support::{Did, Fleet, Pod, PodOptions, on_virtual_time},
    three_ready_pods, with_a_leader,
};

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
