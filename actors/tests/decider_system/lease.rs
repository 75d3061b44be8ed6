//! The Lease and its API server under fault: timeouts, a hung API and 409 storms on the leader's
//! client, a crashed elector, and the stop at the renew deadline while a slow plan is in flight.

use std::time::Duration;

use forge_actors::testing::Outage;
use forge_core::decision::ReloadReason;
use tokio::time::Instant;

use crate::{
    Handover, handed_over, last_write_by, node_commands,
    support::{Did, timing},
    with_a_leader,
};

/// API timeouts (or a hang) on the leader's client past the renew deadline.
fn leader_outage_stops_forging_by_its_renew_deadline(outage: Outage) {
    with_a_leader(async move |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        l.client.set_outage(outage);
        let last_renew = last_write_by(fleet, l.name);
        fleet.run_checked(8_000, 10).await;

        // The leader stops forging (Remove, then Reload) by last renewal sent + renew deadline.
        let Handover { stop, taken, other } = handed_over(fleet, mark, l.name);
        assert!(
            stop.at <= last_renew + t.renew_deadline,
            "stopped {:?} after the last renewal; renew deadline {:?}",
            stop.at - last_renew,
            t.renew_deadline
        );
        assert_eq!(
            node_commands(fleet, l.name, mark)[..2],
            [Did::Remove, Did::Reload(ReloadReason::StopForging)]
        );
        // Nobody got the Lease before observation + lease duration, and the leader had
        // stopped by then; another pod forges right after.
        assert!(taken.at >= last_renew + t.duration, "taken over too early");
        assert!(other.at <= last_renew + t.duration + t.retry_period);
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);

        // Healed, the old leader stays a standby.
        l.client.set_outage(Outage::None);
        fleet.run_checked(10_000, 50).await;
        assert_eq!(fleet.forgers(), vec![other.pod.clone()]);
        assert!(!l.decides_to_forge());
    });
}

#[test]
fn api_timeouts_on_the_leader_stop_its_node_by_its_renew_deadline_before_another_pod_takes_over() {
    leader_outage_stops_forging_by_its_renew_deadline(Outage::TimeoutAfter(Duration::from_secs(5)));
}

#[test]
fn a_hung_api_on_the_leader_stops_its_node_by_its_renew_deadline_before_another_pod_takes_over() {
    leader_outage_stops_forging_by_its_renew_deadline(Outage::Hang);
}

#[test]
fn a_short_409_storm_on_the_leader_is_ridden_out_without_a_handover() {
    with_a_leader(async |fleet, _, l| {
        let mark = fleet.mark();
        l.client.conflict_next_writes(3);
        fleet.run_checked(10_000, 10).await;
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(
            fleet
                .first_since(mark, None, |d| matches!(d, Did::Forging(_)))
                .is_none()
        );
        assert_eq!(fleet.store.holder().as_deref(), Some(l.name));
    });
}

#[test]
fn a_long_409_storm_on_the_leader_hands_over_without_two_forgers() {
    with_a_leader(async |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        let last_renew = last_write_by(fleet, l.name);
        l.client.conflict_next_writes(1_000);
        fleet.run_checked(10_000, 10).await;

        let Handover { stop, taken, other } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline);
        assert!(taken.at >= last_renew + t.duration);
        assert_eq!(fleet.forgers(), vec![other.pod]);
    });
}

#[test]
fn a_crashed_leader_elector_is_restarted_and_keeps_its_tenure_without_two_forgers() {
    with_a_leader(async |fleet, pods, l| {
        let mark = fleet.mark();

        // Its watch fails: the elector stops, its Supervisor restarts it after a backoff, it
        // keeps its tenure and renews at once. Nobody notices.
        l.client.break_watches();
        fleet.run_checked(3_000, 10).await;
        assert_eq!(l.elector_restarts(), 1);
        assert!(l.elector.connected());
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(last_write_by(fleet, l.name) > Instant::now() - timing().retry_period * 2);
        // Every elector's watch fails at once, twice.
        for _ in 0..2 {
            fleet.store.break_watches();
            fleet.run_checked(3_000, 10).await;
        }
        assert!(
            pods.iter()
                .all(|p| p.elector_restarts() >= 2 && p.elector.connected())
        );
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        assert!(
            fleet
                .first_since(mark, None, |d| matches!(d, Did::Forging(_)))
                .is_none()
        );

        // It crashes while the API hangs: the restarted elector cannot renew, so the tenure it
        // kept ends at its deadline; the node stops first, then another pod takes over.
        let t = timing();
        let last_renew = last_write_by(fleet, l.name);
        l.client.set_outage(Outage::Hang);
        l.client.break_watches();
        fleet.run_checked(8_000, 10).await;
        let Handover { stop, other, .. } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline);
        l.client.set_outage(Outage::None);
        fleet.run_checked(5_000, 50).await;
        assert_eq!(fleet.forgers(), vec![other.pod]);
        assert!(l.elector.connected());
    });
}

#[test]
fn the_stop_at_the_renew_deadline_does_not_wait_for_a_slow_plan_in_flight() {
    // F10: the leader's API server fails (no more renewals) while a rotation's reload hangs in
    // the node for longer than the renew deadline. The stop must not wait for that answer: the
    // plan is abandoned at the deadline and Remove + Reload(StopForging) go out at once (without
    // the guard, nothing else stops a node that forges past the deadline).
    with_a_leader(async |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        l.client.set_outage(Outage::ServerError);
        let last_renew = last_write_by(fleet, l.name);
        let slow = t.renew_deadline + Duration::from_secs(4);
        fleet.delay_next(l.name, &Did::Reload(ReloadReason::Rotation), slow);
        l.rotated().await;
        fleet.run_checked(8_000, 10).await;

        let remove = fleet
            .first_since(mark, Some(l.name), |d| *d == Did::Remove)
            .unwrap_or_else(|| {
                fleet.dump();
                panic!("the leader removes its credentials")
            });
        let late = Duration::from_millis(100);
        assert!(
            remove.at <= last_renew + t.renew_deadline + late,
            "Remove came {:?} after the last renewal; renew deadline {:?} (the slow reload answers after {slow:?})",
            remove.at - last_renew,
            t.renew_deadline
        );
        let Handover { stop, .. } = handed_over(fleet, mark, l.name);
        assert!(stop.at <= last_renew + t.renew_deadline + late);
    });
}
