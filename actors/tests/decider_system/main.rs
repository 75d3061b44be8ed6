//! System tests of the Decider among the actors it commands (the actor tier of
//! docs/architecture.md, "Test world"): per pod the whole actor system as the sidecar builds it
//! (`system::spawn_all`) on its in-memory world, over one shared in-memory Lease store, each
//! with its cardano-node under its guard (see `support`). Facts reach the Deciders as in
//! production (the NodeWatcher's polls, the CredentialKeeper's validation, the guard's
//! reports, the LeaseElector's watch); the tests read what reached the ports: the credential
//! store, the node guard, the CardanoLeader status, the Lease and the node's forging, and why a
//! reload was sent from `cardano_sighup_signals_total{reason}`. On virtual time, S1 (never two
//! forgers) and S2 (a pod stops forging before another installs or gets the Lease) are checked
//! at the instant of every change, and again after every step.
//!
//! Timing bounds read as the system has them: a node's start or exit is seen at the
//! NodeWatcher's next poll ([`support::NODE_POLL`]), a change of the source credentials after
//! the CredentialKeeper's debounce, and a stop through the guard is confirmed by the node's
//! report plus `STOP_SETTLE`.
//!
//! This file holds the fleet the tests start from (three ready pods and the one that forges),
//! what they read from its log (who stopped, who took the Lease, who forged next, which calls
//! reached the ports), the cold start and the graceful shutdown; the other tests are in
//! [`lease`] (API timeouts, a hung API, 409 storms, a crashed elector, the stop at the renew
//! deadline), [`node`] (node restarts, the guard's fence, node processes that come up forging)
//! [`credentials`] (rotations, boot credentials, a failed removal, a stop that failed) and
//! [`status`] (the figures the Decider shows in `/status`).
#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use forge_actors::node_signaller::STOP_SETTLE;
use forge_core::decision::ReloadReason;
use futures::future::join_all;
use support::{Did, Entry, Fleet, Pod, PodOptions, on_virtual_time, timing};
use tokio::time::Instant;

mod credentials;
mod lease;
mod node;
mod status;

const A: &str = "pod-a";
const B: &str = "pod-b";
const C: &str = "pod-c";

/// Three ready pods (node up, credentials valid), made ready together, so their electors race
/// for the Lease. They are made ready 250 ms after the start, so that lease renewals (every
/// retry period from the acquisition) and their deadlines fall between the Deciders'
/// heartbeats: a Decider that only noticed a passed deadline at its next heartbeat would be
/// caught late.
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

/// The calls `pod`'s actors made at its ports from `mark` on, without the permit renewals that
/// follow every lease renewal while forging.
fn calls(fleet: &Fleet, pod: &str, mark: usize) -> Vec<Did> {
    fleet
        .calls_since(pod, mark)
        .into_iter()
        .filter(|d| *d != Did::Permit)
        .collect()
}

/// The stop of a pod that gives the Lease up, as it reaches the ports: the credentials
/// removed, the node reloaded (through the guard, which then revokes the permit), the claim
/// withdrawn in the CardanoLeader status.
const STOP_AND_WITHDRAW: [Did; 4] = [Did::Remove, Did::Reload, Did::Revoke, Did::Status(false)];

/// The release by `from` since `mark`, checked: what reached its ports was a stop that gives
/// the Lease up, the reload counted for `why` (and no other), its node stopped forging before
/// the release, and another pod's started after it. Returns the stop and the other pod's start.
fn released_to_another(
    fleet: &Fleet,
    mark: usize,
    from: &Pod,
    reloads_before: &[(ReloadReason, u64)],
    why: ReloadReason,
) -> (Entry, Entry) {
    assert_eq!(calls(fleet, from.name, mark), STOP_AND_WITHDRAW);
    assert_eq!(from.reloads_since(reloads_before), [(why, 1)]);
    let stop = first(fleet, mark, from.name, Did::Forging(false));
    let released = first(fleet, mark, from.name, Did::Holder(None));
    assert!(released.seq > stop.seq);
    let other = forging_started_by_another(fleet, mark, from.name);
    assert!(other.seq > released.seq);
    (stop, other)
}

/// The calls that reached `pod`'s node (its credential files, its reloads) from `mark` on.
fn node_calls(fleet: &Fleet, pod: &str, mark: usize) -> Vec<Did> {
    fleet
        .calls_since(pod, mark)
        .into_iter()
        .filter(Did::touches_node)
        .collect()
}

/// The calls `pod`'s actors made from `mark` on (permit renewals left out), with whether each
/// succeeded.
fn calls_and_results(fleet: &Fleet, pod: &str, mark: usize) -> Vec<(Did, bool)> {
    fleet
        .entries_since(pod, mark)
        .into_iter()
        .filter(|e| e.did.is_call() && e.did != Did::Permit)
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

#[test]
fn a_graceful_shutdown_of_the_leader_removes_reloads_then_releases_and_another_forges_within_milliseconds() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        let before = l.reload_counts();
        let asked = Instant::now();
        l.shutdown().await;
        fleet.run_checked(ms(STOP_SETTLE) + 50, 1).await;

        let (stop, other) = released_to_another(fleet, mark, l, &before, ReloadReason::Shutdown);
        assert_eq!(stop.at, asked, "the node stopped at once");
        // The stop is confirmed by the node's report plus STOP_SETTLE; then the Lease goes, and
        // another pod forges within milliseconds of that.
        assert!(
            other.at - asked <= STOP_SETTLE + Duration::from_millis(10),
            "took {:?}",
            other.at - asked
        );
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}
