//! The timing model's tests: holder identities, verdicts on observed leases, the records we
//! write, our own deadline and the monotonic arithmetic.
#[test]
fn a_pod_uid_makes_a_successor_of_the_same_name_another_holder() {
    let timing = timing();
    let old = holder_identity("pod-a", Some("1111"));
    let new = holder_identity("pod-a", Some("2222"));
    assert_eq!(old, "pod-a_1111");
    assert_eq!(holder_identity("pod-a", None), "pod-a");
    assert_eq!(holder_identity("pod-a", Some("")), "pod-a");
    assert_eq!(holder_pod(&old), "pod-a");
    assert_eq!(holder_pod("pod-a"), "pod-a");
    let held = LeaseRecord {
        holder_identity: Some(old.clone()),
        lease_duration_seconds: Some(15),
        ..Default::default()
    };
    let obs = LeaseObservation::observe(None, held, None, secs(1));
    // The same pod (a restarted container) renews at once ...
    assert_eq!(obs.verdict(&old, secs(1), &timing), Verdict::Ours);
    // ... its successor waits out the whole tenure.
    assert!(matches!(
        obs.verdict(&new, secs(1), &timing),
        Verdict::HeldBy { .. }
    ));
    assert!(matches!(
        obs.verdict(&new, secs(16), &timing),
        Verdict::Expired { .. }
    ));
}

#[test]
fn a_peer_lease_speaks_for_its_region_only_when_held_by_its_active_leader() {
    let rec = |h: Option<&str>| LeaseRecord {
        holder_identity: h.map(str::to_owned),
        ..Default::default()
    };
    assert!(speaks_for_peer(&rec(Some("east-0")), Some("east-0")));
    assert!(speaks_for_peer(&rec(Some("east-0_1111")), Some("east-0")));
    assert!(!speaks_for_peer(&rec(Some("east-1")), Some("east-0")));
    assert!(
        !speaks_for_peer(&rec(None), Some("east-0")),
        "vacant: maybe a stale Lease"
    );
    assert!(!speaks_for_peer(&rec(Some("")), Some("east-0")));
    assert!(speaks_for_peer(&rec(None), None), "no leader named: as it is");
    assert!(speaks_for_peer(&rec(None), Some("")));
}

use super::*;

const ME: &str = "pool-bp-0";
const OTHER: &str = "pool-bp-1";

fn timing() -> LeaseTiming {
    LeaseTiming::default()
}

fn wall(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("valid timestamp")
}

fn held_by(holder: &str, renew: Timestamp) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(15),
        acquire_time: Some(renew),
        renew_time: Some(renew),
        lease_transitions: Some(3),
    }
}

fn secs(s: u64) -> Mono {
    Mono::from_duration(Duration::from_secs(s))
}

#[test]
fn a_missing_or_released_lease_is_vacant() {
    assert_eq!(verdict(None, ME, secs(0), &timing()), Verdict::Vacant);
    let released = release_record(&held_by(OTHER, wall(0)), wall(1));
    let obs = LeaseObservation::observe(None, released, None, secs(5));
    assert_eq!(obs.verdict(ME, secs(5), &timing()), Verdict::Vacant);
    assert_eq!(obs.earliest_takeover(&timing()), secs(5));
}

#[test]
fn another_holder_expires_only_a_full_duration_after_we_observed_it() {
    let obs = LeaseObservation::observe(None, held_by(OTHER, wall(0)), None, secs(100));
    assert_eq!(
        obs.verdict(ME, secs(114), &timing()),
        Verdict::HeldBy {
            holder: OTHER.into(),
            until: secs(115)
        }
    );
    assert_eq!(
        obs.verdict(ME, secs(115), &timing()),
        Verdict::Expired { holder: OTHER.into() }
    );
}

#[test]
fn skewed_holder_clocks_do_not_change_the_verdict() {
    for skew in [-1_000_000i64, -3600, 0, 3600, 1_000_000] {
        let obs = LeaseObservation::observe(None, held_by(OTHER, wall(skew)), None, secs(100));
        assert!(
            !obs.verdict(ME, secs(114), &timing()).may_acquire(),
            "skew {skew}"
        );
        assert!(obs.verdict(ME, secs(115), &timing()).may_acquire(), "skew {skew}");
    }
}

#[test]
fn a_lease_without_duration_uses_our_configured_duration() {
    let mut rec = held_by(OTHER, wall(0));
    rec.lease_duration_seconds = None;
    let t = LeaseTiming {
        duration: Duration::from_secs(30),
        ..timing()
    };
    let obs = LeaseObservation::observe(None, rec.clone(), None, secs(0));
    assert!(!obs.is_expired(secs(29), &t));
    assert!(obs.is_expired(secs(30), &t));
    rec.lease_duration_seconds = Some(0);
    let obs = LeaseObservation::observe(None, rec, None, secs(0));
    assert_eq!(obs.duration(&t), Duration::from_secs(30));
}

#[test]
fn a_renewal_restarts_the_observation_clock_but_a_resource_version_alone_does_not() {
    let first = LeaseObservation::observe(None, held_by(OTHER, wall(0)), Some("1".into()), secs(0));
    let relabelled =
        LeaseObservation::observe(Some(&first), held_by(OTHER, wall(0)), Some("2".into()), secs(10));
    assert_eq!(relabelled.observed_at, secs(0));
    assert_eq!(relabelled.resource_version.as_deref(), Some("2"));
    let renewed = LeaseObservation::observe(
        Some(&relabelled),
        held_by(OTHER, wall(2)),
        Some("3".into()),
        secs(12),
    );
    assert_eq!(renewed.observed_at, secs(12));
    assert!(!renewed.is_expired(secs(20), &timing()));
}

#[test]
fn a_holder_change_increments_transitions_and_sets_acquire_time() {
    let prev = held_by(OTHER, wall(0));
    let rec = acquisition_record(Some(&prev), ME, wall(20), &timing());
    assert_eq!(rec.holder(), Some(ME));
    assert_eq!(rec.lease_transitions, Some(4));
    assert_eq!(rec.acquire_time, Some(wall(20)));
    assert_eq!(rec.renew_time, Some(wall(20)));
    assert_eq!(rec.lease_duration_seconds, Some(15));
}

#[test]
fn missing_transitions_count_as_zero() {
    let mut prev = held_by(OTHER, wall(0));
    prev.lease_transitions = None;
    assert_eq!(
        acquisition_record(Some(&prev), ME, wall(1), &timing()).lease_transitions,
        Some(1)
    );
    assert_eq!(
        acquisition_record(None, ME, wall(1), &timing()).lease_transitions,
        Some(1)
    );
    assert_eq!(
        renewal_record(&prev, OTHER, wall(1), &timing()).lease_transitions,
        Some(0)
    );
}

#[test]
fn renewing_keeps_acquire_time_and_transitions() {
    let prev = held_by(ME, wall(0));
    let rec = renewal_record(&prev, ME, wall(9), &timing());
    assert_eq!(rec.acquire_time, Some(wall(0)));
    assert_eq!(rec.renew_time, Some(wall(9)));
    assert_eq!(rec.lease_transitions, Some(3));
}

#[test]
fn our_own_stale_lease_after_a_restart_is_ours_to_renew_without_a_transition() {
    let obs = LeaseObservation::observe(None, held_by(ME, wall(-50)), None, secs(1));
    assert_eq!(obs.verdict(ME, secs(1), &timing()), Verdict::Ours);
    let rec = acquisition_record(Some(&obs.record), ME, wall(0), &timing());
    assert_eq!(rec.lease_transitions, Some(3));
    assert_eq!(rec.acquire_time, Some(wall(-50)));
}

#[test]
fn the_deadline_counts_from_when_the_renewal_was_sent() {
    let t = timing();
    let held = HeldLease::acquired(secs(100), &t);
    assert_eq!(held.deadline, secs(110));
    assert!(!held.must_stop_forging(secs(109)));
    assert!(held.must_stop_forging(secs(110)));
    let renewed = held.renewed(secs(102), &t);
    assert_eq!(renewed.deadline, secs(112));
    assert_eq!(renewed.next_renew_at(&t), secs(104));
    assert_eq!(
        renewed.renewed(secs(101), &t),
        renewed,
        "a late answer never moves it back"
    );
}

#[test]
fn release_empties_the_holder_and_keeps_transitions() {
    let rec = release_record(&held_by(ME, wall(0)), wall(5));
    assert!(rec.is_vacant());
    assert_eq!(rec.holder_identity.as_deref(), Some(""));
    assert_eq!(rec.lease_transitions, Some(3));
}

#[test]
fn records_round_trip_through_the_kubernetes_lease_spec() {
    let rec = held_by(ME, wall(7));
    assert_eq!(LeaseRecord::from_spec(&rec.to_spec()), rec);
}

#[test]
fn mono_arithmetic_saturates() {
    assert_eq!(secs(1) - secs(2), Duration::ZERO);
    let max = Mono::from_duration(Duration::MAX);
    assert_eq!(max + Duration::from_secs(1), max);
}
