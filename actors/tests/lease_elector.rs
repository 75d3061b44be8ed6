//! LeaseElector on virtual time (the actor tier of docs/architecture.md, "Test world"): in-memory
//! Leases with scripted faults, probes standing in for the Decider, and exact fact sequences.
//!
//! Each test runs in an actix System whose tokio runtime starts with the clock paused, so the
//! shared [`Clock`]'s origin sits on the timer wheel's millisecond grid and every instant below
//! is exact (pausing inside `#[actix::test]` works too, but leaves a sub-millisecond offset that
//! the timer wheel rounds up at every step).
use std::{future::Future, sync::Arc, time::Duration};

use actix::{Actor, Addr, Supervisor, System};
use forge_actors::{
    clock::Clock,
    lease_elector::LeaseElector,
    messages::{Contend, Release},
    metrics::{Metrics, PodLabels},
    testing::{MemoryLeaseClient, MemoryLeases, Outage, Probe},
};
use forge_core::{
    config::LeaseTiming,
    decision::Event,
    lease::{LeaseRecord, Mono},
};
use tokio::time::Instant;

/// Runs `test` in an actix System on a paused tokio clock.
fn on_virtual_time<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime")
    })
    .block_on(test());
}

fn timing() -> LeaseTiming {
    LeaseTiming::default() // 15 s / 10 s / 2 s
}

fn ms(n: u64) -> Mono {
    Mono::from_millis(n)
}

fn secs(n: u64) -> Mono {
    Mono::from_millis(n * 1000)
}

fn acquired(at_secs: u64) -> Event {
    Event::LeaseAcquired {
        deadline: secs(at_secs),
    }
}

fn renewed(at_secs: u64) -> Event {
    Event::LeaseRenewed {
        deadline: secs(at_secs),
    }
}

fn lost(holder: Option<&str>) -> Event {
    Event::LeaseLost {
        holder: holder.map(str::to_string),
    }
}

/// One candidate: its elector, the client it uses (to script faults), its probe.
struct Candidate {
    name: &'static str,
    client: MemoryLeaseClient,
    probe: Probe,
    addr: Addr<LeaseElector>,
}

struct World {
    store: MemoryLeases,
    clock: Clock,
}

impl World {
    fn new(store: MemoryLeases) -> Self {
        Self {
            store,
            clock: Clock::new(),
        }
    }

    fn elector(
        &self,
        name: &'static str,
        client: &MemoryLeaseClient,
        probe: &Probe,
        metrics: Option<Metrics>,
    ) -> LeaseElector {
        LeaseElector::new(
            Arc::new(client.clone()),
            name,
            timing(),
            self.clock,
            probe.recipient(),
            metrics,
        )
    }

    /// An elector started without a supervisor (it stays stopped once it stops).
    fn start(&self, name: &'static str) -> Candidate {
        let client = self.store.client(name);
        let probe = Probe::start();
        let addr = self.elector(name, &client, &probe, None).start();
        Candidate {
            name,
            client,
            probe,
            addr,
        }
    }

    /// An elector under a `Supervisor`.
    fn supervised(&self, name: &'static str, metrics: Metrics) -> Candidate {
        let client = self.store.client(name);
        let probe = Probe::start();
        let elector = self.elector(name, &client, &probe, Some(metrics));
        let addr = Supervisor::start(move |_| elector);
        Candidate {
            name,
            client,
            probe,
            addr,
        }
    }

    /// Sleeps until `at` on the shared clock (virtual time runs everything due before).
    async fn until(&self, at: Mono) {
        tokio::time::sleep_until(self.clock.instant_of(at)).await;
    }

    fn instant(&self, at: Mono) -> Instant {
        self.clock.instant_of(at)
    }

    fn mono(&self, at: Instant) -> Mono {
        self.clock.mono_of(at)
    }
}

impl Candidate {
    async fn contend(&self, on: bool) {
        self.addr.send(Contend(on)).await.expect("elector alive");
    }

    /// When this candidate's first event matching `pred` arrived.
    fn first_at(&self, world: &World, pred: impl Fn(&Event) -> bool) -> Option<Mono> {
        self.probe.first(pred).map(|(at, _)| world.mono(at))
    }
}

/// The tenures a candidate believed in, from its facts: from `LeaseAcquired` until the last
/// reported deadline or a `LeaseLost`, whichever came first. With `trust_news_of_another`
/// false, a `LeaseLost` naming another holder does not end the tenure: that news comes *after*
/// the other's write, so only the deadline (or our own earlier loss) may bound it there.
fn tenures(
    world: &World,
    c: &Candidate,
    end_of_test: Instant,
    trust_news_of_another: bool,
) -> Vec<(Instant, Instant)> {
    let mut out = Vec::new();
    let mut open: Option<(Instant, Instant)> = None;
    for r in c.probe.recorded() {
        match r.fact.event {
            Event::LeaseAcquired { deadline } => {
                assert!(open.is_none(), "{}: acquired twice without a loss", c.name);
                open = Some((r.at, world.instant(deadline)));
            }
            Event::LeaseRenewed { deadline } => {
                let (start, _) = open.unwrap_or_else(|| panic!("{}: renewed without holding", c.name));
                open = Some((start, world.instant(deadline)));
            }
            Event::LeaseLost { holder } => {
                if let Some((start, deadline)) = open.take() {
                    let end = if holder.is_some() && !trust_news_of_another {
                        deadline
                    } else {
                        deadline.min(r.at)
                    };
                    out.push((start, end));
                }
            }
            _ => {}
        }
    }
    if let Some((start, deadline)) = open {
        out.push((start, deadline.min(end_of_test)));
    }
    out
}

/// S1 as the elector can guarantee it: no two candidates believe they hold the lease at one
/// instant, and whenever a candidate's write makes it the holder, every other candidate's
/// tenure has already ended by its own deadline, release or loss (not by the news of that
/// very write). Foreign writers are outside the contract and not checked.
fn assert_at_most_one_holder(world: &World, candidates: &[&Candidate]) {
    let end = Instant::now();
    let beliefs: Vec<_> = candidates
        .iter()
        .map(|c| (c.name, tenures(world, c, end, true)))
        .collect();
    for (i, (a, ta)) in beliefs.iter().enumerate() {
        for (b, tb) in beliefs.iter().skip(i + 1) {
            for &(s1, e1) in ta {
                for &(s2, e2) in tb {
                    assert!(
                        e1 <= s2 || e2 <= s1,
                        "{a} [{:?}, {:?}) and {b} [{:?}, {:?}) overlap",
                        world.mono(s1),
                        world.mono(e1),
                        world.mono(s2),
                        world.mono(e2)
                    );
                }
            }
        }
    }
    let bounded: Vec<_> = candidates
        .iter()
        .map(|c| (c.name, tenures(world, c, end, false)))
        .collect();
    let mut last_holder: Option<String> = None;
    for w in world.store.history() {
        let holder = w.holder().map(str::to_string);
        let changed = holder != last_holder;
        last_holder = holder.clone();
        let Some(holder) = holder else { continue };
        if !changed || w.writer != holder {
            continue;
        }
        for (name, ts) in &bounded {
            if *name == holder {
                continue;
            }
            for &(s, e) in ts {
                assert!(
                    !(s <= w.at && w.at < e),
                    "{holder} got the lease at {:?} while {name} held it until {:?}",
                    world.mono(w.at),
                    world.mono(e)
                );
            }
        }
    }
}

fn metrics() -> (prometheus::Registry, Metrics) {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry, &PodLabels::default(), "test").expect("metrics");
    (registry, metrics)
}

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
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(100)).await;
        let b = world.start("pod-b");
        b.contend(true).await;
        world.until(ms(5_000)).await;

        let asked = Instant::now();
        assert_eq!(a.addr.send(Release).await.expect("alive"), Ok(()));
        world.until(ms(5_050)).await;

        let (b_at, _) = b
            .probe
            .first(|e| matches!(e, Event::LeaseAcquired { .. }))
            .expect("b acquired");
        let handover = b_at - asked;
        assert!(handover < Duration::from_millis(10), "handover took {handover:?}");
        assert_eq!(
            a.probe.events(),
            vec![
                acquired(10),
                renewed(12),
                renewed(14),
                lost(None),
                lost(Some("pod-b"))
            ]
        );
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
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(100)).await;
        let b = world.start("pod-b");
        b.contend(true).await;

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
fn api_timeouts_past_the_renew_deadline_lose_the_lease_at_the_deadline_before_anyone_takes_over() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(100)).await;
        let b = world.start("pod-b");
        b.contend(true).await;

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
        assert_eq!(
            a.probe.events(),
            vec![
                acquired(10),
                renewed(12),
                renewed(14),
                lost(None),
                lost(Some("pod-b"))
            ]
        );
        assert_eq!(
            b.probe.events(),
            vec![lost(Some("pod-a")), acquired(29), renewed(31), renewed(33)]
        );
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
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(100)).await;
        let b = world.start("pod-b");
        b.contend(true).await;

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
            holder_identity: Some("pod-x".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(jiff::Timestamp::now()),
            lease_transitions: Some(9),
            ..LeaseRecord::default()
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
                    world.store.write_foreign(LeaseRecord {
                        holder_identity: Some("pod-x".into()),
                        lease_duration_seconds: Some(15),
                        renew_time: Some(jiff::Timestamp::now()),
                        ..LeaseRecord::default()
                    });
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

#[test]
fn a_holder_that_stops_contending_loses_at_its_deadline_and_a_standby_takes_over_after_the_duration() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(100)).await;
        let b = world.start("pod-b");
        b.contend(true).await;
        world.until(ms(5_000)).await;
        a.contend(false).await;
        world.until(secs(25)).await;
        assert_eq!(
            a.probe.events(),
            vec![
                acquired(10),
                renewed(12),
                renewed(14),
                lost(None),
                lost(Some("pod-b"))
            ]
        );
        assert_eq!(
            a.first_at(&world, |e| matches!(e, Event::LeaseLost { .. })),
            Some(secs(14))
        );
        assert_eq!(
            b.probe.events(),
            vec![lost(Some("pod-a")), acquired(29), renewed(31), renewed(33)]
        );
        assert_at_most_one_holder(&world, &[&a, &b]);
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
        world.store.write_foreign(LeaseRecord {
            holder_identity: Some("pod-x".into()),
            renew_time: Some(jiff::Timestamp::now()),
            ..LeaseRecord::default()
        });
        world.until(ms(8_001)).await;
        assert_eq!(a.probe.events().last(), Some(&lost(Some("pod-x"))));
        assert_eq!(metrics.leader_status.get(), 0);
    });
}

/// API requests (issue 14): a contending standby relies on its watch and reads its Lease only
/// to resync, at most once per lease duration (15 s here): at most 5 reads a minute (the first
/// read included), against client-go's standby GET every retry period (20 a minute at 2 s plus
/// jitter). The leader's renewals are one per retry period; a holder that stops is still taken
/// over a full duration after the standby observed it (the takeover timer, not a poll), and a
/// release within milliseconds (the watch).
#[test]
fn a_watching_standby_reads_its_lease_at_most_once_per_lease_duration() {
    on_virtual_time(|| async {
        let world = World::new(MemoryLeases::new());
        let a = world.start("pod-a");
        a.contend(true).await;
        world.until(ms(1_000)).await;
        let b = world.start("pod-b");
        b.contend(true).await;
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
        let asked = Instant::now();
        assert_eq!(a.addr.send(Release).await.expect("alive"), Ok(()));
        world.until(secs(63)).await;
        let (b_at, _) = b
            .probe
            .first(|e| matches!(e, Event::LeaseAcquired { .. }))
            .expect("b acquired");
        assert!(
            b_at - asked < Duration::from_millis(10),
            "handover took {:?}",
            b_at - asked
        );
    });
}
