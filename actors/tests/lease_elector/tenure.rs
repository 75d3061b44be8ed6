//! A healthy API: a vacant Lease acquired and renewed, release handed over to the watching
//! standby, a stopped or withdrawn holder taken over only after the full duration, our own name
//! found after a restart, and how rarely a watching standby reads.
use std::time::Duration;

use forge_actors::{messages::Release, testing::MemoryLeases};
use forge_core::{decision::Event, lease::LeaseRecord};

use crate::{
    World, acquired, assert_at_most_one_holder, handover_after_release, held_until_14_s_then_saw_pod_b,
    holder_and_standby, lost, ms, on_virtual_time, renewed, secs, took_over_at_19_s,
};

#[test]
fn a_vacant_lease_is_acquired_and_renewed_every_retry_period_with_deadlines_from_send_time() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        world.until(ms(500)).await;
        assert_eq!(a.probe.events(), vec![], "no contending before Contend(true)");
        assert!(world.store.current().is_none());

        a.contend(true).await;
        world.until(ms(7_000)).await;
        // Acquired at 0.5 s, renewed at 2.5, 4.5, 6.5 s: deadline = sent + 10 s.
        assert_eq!(
            a.probe.events(),
            vec![
                Event::LeaseAcquired { deadline: ms(10_500) },
                Event::LeaseRenewed { deadline: ms(12_500) },
                Event::LeaseRenewed { deadline: ms(14_500) },
                Event::LeaseRenewed { deadline: ms(16_500) },
            ]
        );
        // What was written: holder, acquireTime once, renewTime always moving, transitions 1.
        let writes = world.store.history();
        assert_eq!(writes.len(), 4);
        let first = writes[0].after.clone().expect("created").record;
        assert_eq!(first.holder(), Some("pod-a"));
        assert_eq!(first.lease_transitions, Some(1));
        assert_eq!(first.lease_duration_seconds, Some(15));
        assert_eq!(first.acquire_time, first.renew_time);
        let mut last_renew = first.renew_time.expect("renewTime");
        for w in &writes[1..] {
            let r = w.after.clone().expect("replaced").record;
            assert_eq!(
                r.acquire_time, first.acquire_time,
                "acquireTime only on acquisition"
            );
            assert_eq!(r.lease_transitions, Some(1));
            let renew = r.renew_time.expect("renewTime");
            assert!(renew > last_renew, "renewTime must change on every renewal");
            last_renew = renew;
        }
        let versions: Vec<_> = writes
            .iter()
            .map(|w| w.after.clone().expect("lease").resource_version)
            .collect();
        let mut unique = versions.clone();
        unique.dedup();
        assert_eq!(versions, unique, "every renewal moved the resourceVersion");
    });
}

#[test]
fn release_hands_over_to_the_watching_standby_within_milliseconds() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(100)).await;
        world.until(ms(5_000)).await;

        let handover = handover_after_release(&world, &a, &b, ms(5_050)).await;
        assert!(handover < Duration::from_millis(10), "handover took {handover:?}");
        assert_eq!(a.probe.events(), held_until_14_s_then_saw_pod_b());
        assert_eq!(
            b.probe.events(),
            vec![lost(Some("pod-a")), lost(None), acquired(15)]
        );
        // The release record, then b's acquisition: transitions 1 -> 1 -> 2.
        let writes = world.store.history();
        let released = writes[writes.len() - 2].after.clone().expect("lease").record;
        assert!(released.is_vacant());
        assert_eq!(released.holder_identity.as_deref(), Some(""));
        assert_eq!(released.lease_transitions, Some(1));
        assert_eq!(released.lease_duration_seconds, Some(1));
        let taken = writes[writes.len() - 1].after.clone().expect("lease").record;
        assert_eq!(taken.holder(), Some("pod-b"));
        assert_eq!(taken.lease_transitions, Some(2));
        assert_eq!(taken.acquire_time, taken.renew_time);
        assert_at_most_one_holder(&world, &[&a, &b]);

        // Released and not contending: a stays out.
        world.until(secs(40)).await;
        assert_eq!(world.store.holder().as_deref(), Some("pod-b"));
        assert_eq!(a.probe.events().len(), 5);
    });
}

#[test]
fn release_without_the_lease_answers_at_once_and_writes_nothing() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        let b = world.start("pod-b");
        world.until(ms(100)).await;
        let writes = world.store.history().len();
        assert_eq!(b.addr.send(Release).await.expect("alive"), Ok(()));
        assert_eq!(world.store.history().len(), writes);
        assert_eq!(world.store.holder().as_deref(), Some("pod-a"));
    });
}

#[test]
fn a_holder_that_stops_is_taken_over_only_a_full_duration_after_the_standby_observed_it() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(100)).await;

        // a's last renewal is at 4 s; its watch breaks at 5 s and, unsupervised, it stays down.
        world.until(ms(5_000)).await;
        a.client.break_watches();
        world.until(ms(5_001)).await;
        assert!(!a.addr.connected(), "a stopped");

        world.until(ms(18_999)).await;
        assert_eq!(
            world.store.holder().as_deref(),
            Some("pod-a"),
            "not before 4 s + 15 s"
        );
        world.until(secs(20)).await;
        assert_eq!(a.probe.events(), vec![acquired(10), renewed(12), renewed(14)]);
        assert_eq!(b.probe.events(), vec![lost(Some("pod-a")), acquired(29)]);
        assert_eq!(
            b.first_at(&world, |e| matches!(e, Event::LeaseAcquired { .. })),
            Some(secs(19))
        );
        let taken = world.store.current().expect("lease").record;
        assert_eq!(taken.lease_transitions, Some(2));
        assert_at_most_one_holder(&world, &[&a, &b]);
    });
}

#[test]
fn a_holder_that_stops_contending_loses_at_its_deadline_and_a_standby_takes_over_after_the_duration() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(100)).await;
        world.until(ms(5_000)).await;
        a.contend(false).await;
        world.until(secs(25)).await;
        assert_eq!(a.probe.events(), held_until_14_s_then_saw_pod_b());
        assert_eq!(
            a.first_at(&world, |e| matches!(e, Event::LeaseLost { .. })),
            Some(secs(14))
        );
        assert_eq!(b.probe.events(), took_over_at_19_s());
        assert_at_most_one_holder(&world, &[&a, &b]);
    });
}

#[test]
fn a_lease_held_under_our_own_name_after_a_restart_is_renewed_as_ours() {
    on_virtual_time(|| async {
        let then = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(50);
        let mine = LeaseRecord {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(then),
            renew_time: Some(then),
            lease_transitions: Some(3),
        };
        let world = World::new(MemoryLeases::with_record(mine));
        let a = world.start("pod-a");
        world.until(ms(1_000)).await;
        assert_eq!(
            a.probe.events(),
            vec![],
            "our own name is not someone else's lease"
        );
        a.contend(true).await;
        world.until(ms(1_500)).await;
        assert_eq!(a.probe.events(), vec![acquired(11)]);
        let now = world.store.current().expect("lease").record;
        assert_eq!(now.holder(), Some("pod-a"));
        assert_eq!(now.lease_transitions, Some(3), "no transition: same holder");
        assert_eq!(
            now.acquire_time.map(|t| t.as_microsecond()),
            Some(then.as_microsecond())
        );
        assert!(now.renew_time.expect("renewTime") > then);
    });
}

/// API requests (docs/quorum.md, "API load"): a contending standby relies on its watch and reads
/// its Lease only to resync, at most once per lease duration (15 s here): at most 5 reads a minute
/// (the first read included), against client-go's standby GET every retry period (20 a minute at
/// 2 s plus jitter). The leader's renewals are one per retry period; a holder that stops is still
/// taken over a full duration after the standby observed it (the takeover timer, not a poll), and
/// a release within milliseconds (the watch).
#[test]
fn a_watching_standby_reads_its_lease_at_most_once_per_lease_duration() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(1_000)).await;
        world.until(secs(2)).await;
        let (a0, b0) = (a.client.calls(), b.client.calls());
        world.until(secs(62)).await;
        let (leader, standby) = (a.client.calls() - a0, b.client.calls() - b0);
        eprintln!("one minute: leader {leader} calls, standby {standby} calls");
        assert!(standby <= 5, "the standby made {standby} calls in a minute");
        assert!(
            (29..=31).contains(&leader),
            "the leader renews every retry period: {leader} calls in a minute"
        );
        // Release: the watching standby takes over at once.
        let handover = handover_after_release(&world, &a, &b, secs(63)).await;
        assert!(handover < Duration::from_millis(10), "handover took {handover:?}");
    });
}
