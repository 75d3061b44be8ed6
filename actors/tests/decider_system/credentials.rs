//! Credentials and the stops they cause: a rotation while forging, a corrupt rotation, boot
//! credentials for a node that is down, a removal that fails, and a stop that failed after the
//! node was told.

use std::time::Duration;

use forge_actors::node_signaller::STOP_SETTLE;
use forge_core::decision::ReloadReason;
use futures::future::join_all;

use crate::{
    A, B, calls, calls_and_results, handed_over, leader, node_calls, released_to_another,
    support::{Did, Fleet, Pod, PodOptions, on_virtual_time},
    three_ready_pods, with_a_leader,
};

#[test]
fn a_rotation_while_forging_installs_and_reloads_the_forging_pod_only() {
    with_a_leader(async |fleet, pods, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        join_all(pods.iter().map(Pod::rotated)).await;
        fleet.run_checked(3_000, 10).await;

        assert_eq!(node_calls(fleet, l.name, mark), [Did::Install, Did::Reload]);
        assert_eq!(l.reloads_since(&before), [(ReloadReason::Rotation, 1)]);
        assert_eq!(
            l.world.credentials.installed(),
            l.world.sources.read_now(),
            "the rotated set is installed"
        );
        for p in pods.iter().filter(|p| p.name != l.name) {
            assert_eq!(calls(fleet, p.name, mark), [], "{} ignores it", p.name);
        }
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
    });
}

#[test]
fn a_corrupt_rotation_on_the_leader_stops_it_and_releases_so_another_pod_forges() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        l.credentials_invalid("kes.skey: not a valid text envelope").await;
        fleet.run_checked(5_000, 10).await;

        let (stop, other) = released_to_another(fleet, mark, l, &before, ReloadReason::StopForging);
        assert!(
            other.at - stop.at < STOP_SETTLE + Duration::from_millis(10),
            "handover at release, once the stop is confirmed: {:?}",
            other.at - stop.at
        );
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);
        let refused = l.world.events.warnings();
        assert!(
            refused.iter().any(|w| w.reason == "CredentialsRefused"),
            "{refused:?}"
        );

        // Valid again: it contends (its /status says so), but stays a standby: nothing
        // reaches its node, and the Lease stays where it is.
        let mark = fleet.mark();
        assert!(!l.status().expect("a status").contending);
        l.credentials_valid().await;
        fleet.run_checked(5_000, 50).await;
        assert!(l.status().expect("a status").contending);
        assert_eq!(calls(fleet, l.name, mark), []);
        assert_eq!(fleet.store.holder(), Some(other.pod.clone()));
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

        let mark = fleet.mark();
        let a = fleet.start_pod(
            A,
            PodOptions {
                boot_credentials: true,
                ..PodOptions::default()
            },
        );
        a.credentials_valid().await;
        fleet.run_checked(5_000, 10).await;
        // The start-up removals (the keeper's, then the start-up plan's; its reload finds no
        // node), then Install only: no reload while down.
        let boot = calls_and_results(&fleet, A, mark);
        assert_eq!(boot.last(), Some(&(Did::Install, true)), "{boot:?}");
        assert!(
            boot[..boot.len() - 1].iter().all(|c| *c == (Did::Remove, true)),
            "{boot:?}"
        );
        assert_eq!(a.reload_counts().iter().map(|(_, n)| n).sum::<u64>(), 0);
        assert!(a.world.credentials.installed().is_some());

        // The node comes up (non-producing): Remove, then the start-up reload, before anything
        // else.
        let mark = fleet.mark();
        let before = a.reload_counts();
        a.node_up().await;
        fleet.run_checked(5_000, 10).await;
        let cmds = calls(&fleet, A, mark);
        assert_eq!(cmds[..2], [Did::Remove, Did::Reload], "{cmds:?}");
        assert_eq!(a.reloads_since(&before), [(ReloadReason::Startup, 1)]);
        assert!(a.world.credentials.installed().is_none());
        assert_eq!(fleet.forgers(), vec![B.to_string()]);

        // b's node dies: a takes over and forges; then a's node dies: it stops, and its boot
        // credentials come back (still without a reload) for the node's next start.
        let mark = fleet.mark();
        b.node_down().await;
        fleet.run_checked(5_000, 10).await;
        assert_eq!(fleet.forgers(), vec![A.to_string()]);
        let mark2 = fleet.mark();
        let before = a.reload_counts();
        a.node_down().await;
        fleet.run_checked(5_000, 10).await;
        assert!(fleet.forgers().is_empty());
        assert_eq!(node_calls(&fleet, A, mark2), [Did::Remove, Did::Install]);
        assert_eq!(a.reloads_since(&before), [], "no node to reload");
        assert!(a.world.credentials.installed().is_some());
        assert!(fleet.first_since(mark, Some(B), |d| *d == Did::Install).is_none());
    });
}

// F25 (docs/safety-findings.md): the second attempt's reload waits for the first's STOP_GRACE
// (F20), and lease facts pass through the NodeSignaller, so the third attempt is planned when
// the Decider has heard of no renewal since before its renew deadline. The claim is withdrawn
// anyway, once the late renewal arrives, before the release.
#[test]
fn a_failed_removal_still_reloads_keeps_the_lease_and_is_retried_before_anything_is_released() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        fleet.fail_next(l.name, &Did::Remove, 2);
        l.credentials_invalid("vrf.skey: unreadable").await;
        fleet.run_checked(5_000, 10).await;

        // The node is told anyway (some files may be gone; the guard's revoke fences), and
        // nothing is handed over until a removal succeeded.
        let attempt = |removed| [(Did::Remove, removed), (Did::Reload, true), (Did::Revoke, true)];
        let mut expected: Vec<(Did, bool)> = Vec::new();
        expected.extend(attempt(false));
        expected.extend(attempt(false));
        expected.extend(attempt(true));
        expected.push((Did::Status(false), true));
        assert_eq!(calls_and_results(fleet, l.name, mark), expected);
        assert_eq!(l.reloads_since(&before), [(ReloadReason::StopForging, 3)]);
        let removed = fleet
            .first_since(mark, Some(l.name), |d| *d == Did::Remove)
            .map(|_| {
                fleet
                    .entries_since(l.name, mark)
                    .into_iter()
                    .find(|e| e.did == Did::Remove && e.ok)
                    .expect("a removal succeeded")
            })
            .expect("removals");
        let h = handed_over(fleet, mark, l.name);
        assert!(
            h.taken.seq > removed.seq,
            "the Lease passed only after the removal"
        );
    });
}

#[test]
fn a_stop_that_failed_after_the_node_was_told_leaves_nobody_without_a_forger() {
    // L1-b: a stop plan removed the credentials and reloaded the node, then its claim
    // withdrawal failed (with cluster management a failed status write stops the plan, so the
    // claim and the lease stay), and the cause of the stop cleared meanwhile. The node was told
    // to stop: someone must forge again (this pod after Install and a reload, or another after
    // a release), not a leader that claims to forge with nothing installed.
    on_virtual_time(|| async {
        let fleet = Fleet::new();
        let pods = three_ready_pods(&fleet, || PodOptions {
            cluster_management: true,
            ..PodOptions::default()
        })
        .await;
        let l = leader(&fleet, &pods).await;
        let mark = fleet.mark();
        // The claim withdrawal hangs for 2 s, then fails; the cause clears meanwhile.
        fleet.fail_next(l.name, &Did::Claim(false), 1);
        fleet.delay_next(l.name, &Did::Claim(false), Duration::from_secs(2));
        l.credentials_invalid("kes.skey: unreadable").await;
        fleet.run_checked(500, 10).await;
        assert!(fleet.forgers().is_empty(), "the node was told to stop");
        l.credentials_valid().await;
        fleet.run_checked(5_000, 10).await;
        assert_eq!(
            fleet.forgers().len(),
            1,
            "nobody forges; the leader's calls since the stop: {:?}",
            calls_and_results(&fleet, l.name, mark)
        );
    });
}
