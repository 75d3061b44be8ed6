//! A failing API: calls timing out or hanging past the renew deadline, server errors, conflict
//! storms and foreign writers, a fixed script of many disruptions, and a watch error under a
//! supervisor. The lease is lost on time and never held twice (S1).
use std::time::Duration;

use actix::Actor;
use forge_actors::{
    messages::{Contend, Release},
    testing::{MemoryLeases, Outage, Probe},
};
use forge_core::{decision::Event, lease::LeaseRecord};

use crate::{
    World, acquired, assert_at_most_one_holder, foreign_holder, held_until_14_s_then_saw_pod_b,
    holder_and_standby, lost, metrics, ms, on_virtual_time, renewed, secs, took_over_at_19_s,
};

#[test]
fn api_timeouts_past_the_renew_deadline_lose_the_lease_at_the_deadline_before_anyone_takes_over() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(100)).await;

        // From 5 s every call of a fails after 3 s: renewals sent at 6, 9, 12 s all fail.
        world.until(ms(5_000)).await;
        a.client.set_outage(Outage::TimeoutAfter(Duration::from_secs(3)));
        world.until(secs(25)).await;

        assert_eq!(
            a.first_at(&world, |e| matches!(e, Event::LeaseLost { .. })),
            Some(secs(14)),
            "lost at the deadline of the renewal sent at 4 s"
        );
        assert_eq!(
            b.first_at(&world, |e| matches!(e, Event::LeaseAcquired { .. })),
            Some(secs(19)),
            "taken over a full duration after b observed the renewal at 4 s"
        );
        assert_eq!(a.probe.events(), held_until_14_s_then_saw_pod_b());
        assert_eq!(b.probe.events(), took_over_at_19_s());
        assert_at_most_one_holder(&world, &[&a, &b]);

        // Healed: a sees b holding and stays a standby.
        a.client.set_outage(Outage::None);
        world.until(secs(40)).await;
        assert_eq!(world.store.holder().as_deref(), Some("pod-b"));
        assert_eq!(a.probe.events().len(), 5);
    });
}

#[test]
fn hanging_calls_are_abandoned_at_the_renew_deadline_and_the_lease_is_lost_on_time() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(5_000)).await;
        a.client.set_outage(Outage::Hang);
        world.until(secs(30)).await;
        assert_eq!(
            a.probe.events(),
            vec![acquired(10), renewed(12), renewed(14), lost(None)]
        );
        assert_eq!(
            a.first_at(&world, |e| matches!(e, Event::LeaseLost { .. })),
            Some(secs(14))
        );
        // Healed: the record still names a and nobody wrote since, so a renews it as its own.
        a.client.set_outage(Outage::None);
        world.until(secs(60)).await;
        let events = a.probe.events();
        assert!(matches!(events[4], Event::LeaseAcquired { .. }), "{events:?}");
        assert_eq!(
            world.store.current().expect("lease").record.lease_transitions,
            Some(1)
        );
    });
}

#[test]
fn a_failed_renewal_is_retried_next_period_and_never_extends_the_deadline() {
    on_virtual_time(|| async {
        let (_registry, metrics) = metrics();
        let world = World::new(MemoryLeases::new());
        let client = world.store.client("pod-a");
        let probe = Probe::start();
        let a = world
            .elector("pod-a", &client, &probe, Some(metrics.clone()))
            .start();
        a.send(Contend(true)).await.expect("alive");
        world.until(ms(5_000)).await;
        client.set_outage(Outage::ServerError);
        world.until(ms(9_000)).await;
        client.set_outage(Outage::None);
        world.until(ms(11_000)).await;
        // Renewals at 6 and 8 s fail; the one at 10 s succeeds.
        assert_eq!(
            probe.events(),
            vec![acquired(10), renewed(12), renewed(14), renewed(20)]
        );
        assert_eq!(
            metrics
                .kube_api_errors
                .with_label_values(&["lease_replace", "server"])
                .get(),
            2
        );
        assert_eq!(metrics.leadership_changes.get(), 1);
        assert_eq!(metrics.leader_status.get(), 1);
        assert_eq!(metrics.lease_renew_latency.get_sample_count(), 3);
    });
}

#[test]
fn a_conflict_storm_never_produces_two_holders() {
    on_virtual_time(|| async {
        let (world, a, b) = holder_and_standby(ms(100)).await;

        // a's renewals conflict 5 times: at 4 s (and its immediate retry), at 6 s (and retry),
        // at 8 s; the retry at 8 s succeeds. Its deadline never moved meanwhile (14 s).
        world.until(ms(3_000)).await;
        a.client.conflict_next_writes(5);
        world.until(ms(9_000)).await;
        assert_eq!(a.probe.events(), vec![acquired(10), renewed(12), renewed(18)]);

        // A release that conflicts once (re-read, still ours, released), while b's first three
        // acquisition attempts conflict: b still gets it, and only once.
        a.client.conflict_next_writes(1);
        b.client.conflict_next_writes(3);
        assert_eq!(a.addr.send(Release).await.expect("alive"), Ok(()));
        world.until(secs(20)).await;
        assert_eq!(world.store.holder().as_deref(), Some("pod-b"));
        let acquisitions = b
            .probe
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::LeaseAcquired { .. }))
            .count();
        assert_eq!(acquisitions, 1);

        // A foreign writer takes it: b learns at once; then both contend against the foreign
        // holder's expiry at the same instant, and exactly one wins.
        a.contend(true).await;
        world.until(secs(21)).await;
        world.store.write_foreign(LeaseRecord {
            lease_transitions: Some(9),
            ..foreign_holder()
        });
        world.until(ms(21_001)).await;
        assert_eq!(b.probe.events().last(), Some(&lost(Some("pod-x"))));
        world.until(secs(40)).await;
        let holder = world.store.holder().expect("someone holds it");
        assert!(holder == "pod-a" || holder == "pod-b", "{holder}");
        assert_eq!(
            world.store.current().expect("lease").record.lease_transitions,
            Some(10)
        );
        assert_at_most_one_holder(&world, &[&a, &b]);
    });
}

#[test]
fn two_electors_never_both_hold_across_many_disruptions() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        let b = world.start("pod-b");
        a.contend(true).await;
        b.contend(true).await;
        // A fixed script of disruptions, one step per virtual second, in 40-step cycles:
        // conflict storms, a release, outages long enough to pass the renew deadline (calls
        // timing out, or hanging), a foreign holder that never renews, and the holder
        // withdrawing from the contest.
        for step in 0..400u64 {
            world.until(secs(step)).await;
            let (holder, other) = match world.store.holder().as_deref() {
                Some("pod-b") => (&b, &a),
                _ => (&a, &b),
            };
            let cycle = step / 40;
            match step % 40 {
                2 => holder.client.conflict_next_writes(3),
                4 => other.client.conflict_next_writes(4),
                6 => {
                    let _ = holder.addr.send(Release).await.expect("alive");
                }
                7 => {
                    a.contend(true).await;
                    b.contend(true).await;
                }
                10 if cycle % 2 == 0 => holder
                    .client
                    .set_outage(Outage::TimeoutAfter(Duration::from_secs(3))),
                10 => holder.client.set_outage(Outage::Hang),
                12 if cycle % 3 == 2 => {
                    world.store.write_foreign(foreign_holder());
                }
                28 => {
                    a.client.set_outage(Outage::None);
                    b.client.set_outage(Outage::None);
                }
                30 => holder.contend(false).await,
                39 => {
                    a.contend(true).await;
                    b.contend(true).await;
                }
                _ => {}
            }
            assert_at_most_one_holder(&world, &[&a, &b]);
        }
        let changes = world.store.holder_changes();
        assert!(changes.len() > 10, "the lease moved around: {}", changes.len());
    });
}

#[test]
fn a_watch_error_stops_the_elector_and_its_supervisor_brings_it_back_still_holding() {
    on_virtual_time(|| async {
        let (_registry, metrics) = metrics();
        let world = World::new(MemoryLeases::new());
        let a = world.supervised("pod-a", metrics.clone());
        a.contend(true).await;
        world.until(ms(5_000)).await;
        a.client.break_watches();
        world.until(ms(8_000)).await;
        assert_eq!(
            metrics.actor_restarts.with_label_values(&["lease_elector"]).get(),
            1
        );
        assert_eq!(
            metrics
                .kube_api_errors
                .with_label_values(&["lease_watch", "transport"])
                .get(),
            1
        );
        // Back after the 100 ms backoff, it renews at once, then every retry period; the
        // tenure survived the restart (no loss reported, no second acquisition).
        assert_eq!(
            a.probe.events(),
            vec![
                acquired(10),
                renewed(12),
                renewed(14),
                Event::LeaseRenewed { deadline: ms(15_100) },
                Event::LeaseRenewed { deadline: ms(17_100) },
            ]
        );
        assert_eq!(metrics.leadership_changes.get(), 1);
        assert_eq!(metrics.leader_status.get(), 1);

        // It watches again: a release elsewhere is seen (a foreign writer takes the lease).
        world.store.write_foreign(foreign_holder());
        world.until(ms(8_001)).await;
        assert_eq!(a.probe.events().last(), Some(&lost(Some("pod-x"))));
        assert_eq!(metrics.leader_status.get(), 0);
    });
}
