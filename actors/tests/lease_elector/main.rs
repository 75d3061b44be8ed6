//! LeaseElector on virtual time (the actor tier of docs/architecture.md, "Test world"): in-memory
//! Leases with scripted faults, probes standing in for the Decider, and exact fact sequences.
//!
//! Each test runs in an actix System whose tokio runtime starts with the clock paused, so the
//! shared [`Clock`]'s origin sits on the timer wheel's millisecond grid and every instant below
//! is exact (pausing inside `#[actix::test]` works too, but leaves a sub-millisecond offset that
//! the timer wheel rounds up at every step).
//!
//! This file holds the test world (candidates on one in-memory Lease store) and the S1 check
//! every scenario ends with; the scenarios are in [`tenure`] (acquisition, renewal, release and
//! takeover on a healthy API) and [`faults`] (timeouts, hanging calls, errors, conflict storms,
//! foreign writers and a supervised restart).
use std::sync::Arc;

use actix::{Actor, Addr, Supervisor};
use forge_actors::{
    clock::Clock,
    lease_elector::LeaseElector,
    messages::{Contend, Release},
    metrics::{Metrics, PodLabels},
    testing::{MemoryLeaseClient, MemoryLeases, Probe},
};
use forge_core::{
    config::LeaseTiming,
    decision::Event,
    lease::{LeaseRecord, Mono},
};
use tokio::time::Instant;

mod faults;
mod tenure;

use forge_actors::testing::on_virtual_time;

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

/// The facts of a holder that acquired at 0 s, renewed at 2 and 4 s, lost the lease at the
/// deadline of that last renewal (14 s) and then saw pod-b take it.
fn held_until_14_s_then_saw_pod_b() -> Vec<Event> {
    vec![
        acquired(10),
        renewed(12),
        renewed(14),
        lost(None),
        lost(Some("pod-b")),
    ]
}

/// The facts of a standby that saw pod-a holding, took over at 19 s (a full duration after
/// pod-a's renewal at 4 s) and renewed at 21 and 23 s.
fn took_over_at_19_s() -> Vec<Event> {
    vec![lost(Some("pod-a")), acquired(29), renewed(31), renewed(33)]
}

/// A Lease record written by pod-x, a holder outside the test's candidates.
fn foreign_holder() -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some("pod-x".into()),
        lease_duration_seconds: Some(15),
        renew_time: Some(jiff::Timestamp::now()),
        ..LeaseRecord::default()
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

/// A fresh store with pod-a contending from 0 s and pod-b from `standby_from` (so pod-a holds
/// the lease and pod-b watches it as the standby).
async fn holder_and_standby(standby_from: Mono) -> (World, Candidate, Candidate) {
    let world = World::new(MemoryLeases::new());
    let a = world.start("pod-a");
    a.contend(true).await;
    world.until(standby_from).await;
    let b = world.start("pod-b");
    b.contend(true).await;
    (world, a, b)
}

/// Asks `holder` to release, runs the clock to `until`, and returns how long after the request
/// `standby` acquired the lease.
async fn handover_after_release(
    world: &World,
    holder: &Candidate,
    standby: &Candidate,
    until: Mono,
) -> std::time::Duration {
    let asked = Instant::now();
    assert_eq!(holder.addr.send(Release).await.expect("alive"), Ok(()));
    world.until(until).await;
    let (acquired_at, _) = standby
        .probe
        .first(|e| matches!(e, Event::LeaseAcquired { .. }))
        .unwrap_or_else(|| panic!("{} acquired", standby.name));
    acquired_at - asked
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
