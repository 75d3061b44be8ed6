//! The Lease and its API server under fault: timeouts, a hung API and 409 storms on the leader's
//! client, a crashed elector, and the stop at the renew deadline while a slow plan is in flight.

use std::time::Duration;

use forge_actors::testing::Outage;
use forge_core::decision::ReloadReason;
use tokio::time::Instant;

use crate::{
    Handover, handed_over, last_write_by, node_calls,
    support::{Did, timing},
    taken_over, with_a_leader,
};

/// API timeouts (or a hang) on the leader's client past the renew deadline.
fn leader_outage_stops_forging_by_its_renew_deadline(outage: Outage) {
    with_a_leader(async move |fleet, _, l| {
        let t = timing();
        let mark = fleet.mark();
        let before = l.reload_counts();
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
        assert_eq!(node_calls(fleet, l.name, mark)[..2], [Did::Remove, Did::Reload]);
        assert_eq!(l.reloads_since(&before), [(ReloadReason::StopForging, 1)]);
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
        assert_eq!(fleet.forgers(), vec![l.name.to_string()]);
        // The restarted elector renews again.
        assert!(last_write_by(fleet, l.name) > Instant::now() - timing().retry_period * 2);
        // Every elector's watch fails at once, twice.
        for _ in 0..2 {
            fleet.store.break_watches();
            fleet.run_checked(3_000, 10).await;
        }
        assert!(pods.iter().all(|p| p.elector_restarts() >= 2));
        assert!(last_write_by(fleet, l.name) > Instant::now() - timing().retry_period * 2);
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
        // Healed, its restarted elector follows the Lease again: a standby now.
        assert!(!l.decides_to_forge());
        let status = l.status().expect("a status");
        assert!(!status.holds_lease && status.contending, "{status:?}");
    });
}

#[test]
fn the_stop_at_the_renew_deadline_does_not_wait_for_a_slow_plan_in_flight() {
    // F10: a standby takes the Lease over as the leader shuts down, and its API server fails
    // right after (no renewal after the acquisition) while the status write that begins its
    // forging plan (the claim) hangs for longer than the renew deadline. The plan must not wait
    // for that answer: it is abandoned at the deadline, nothing of it reaches the node, and the
    // stop's Remove goes out at once. (A slow status write is what can hold a forging plan in
    // production: the other steps are local, and the guard adapter answers within 500 ms.)
    with_a_leader(async |fleet, pods, l| {
        let t = timing();
        let slow = t.renew_deadline + Duration::from_secs(4);
        for p in pods.iter().filter(|p| p.name != l.name) {
            fleet.delay_next(p.name, &Did::Status(true), slow);
        }
        let mark = fleet.mark();
        let counts: Vec<_> = pods.iter().map(|p| (p.name, p.reload_counts())).collect();
        l.shutdown().await;
        let successor = loop {
            fleet.sleep_ms(1).await;
            if let Some(e) =
                fleet.first_since(mark, None, |d| matches!(d, Did::Holder(Some(h)) if h != l.name))
            {
                break e.pod;
            }
        };
        let s = pods.iter().find(|p| p.name == successor).expect("a pod");
        let before = &counts.iter().find(|(n, _)| *n == s.name).expect("counted").1;
        s.client.set_outage(Outage::ServerError);
        let acquired = last_write_by(fleet, s.name);
        fleet.run_checked(8_000, 10).await;

        let remove = fleet
            .first_since(mark, Some(s.name), |d| *d == Did::Remove)
            .unwrap_or_else(|| {
                fleet.dump();
                panic!("{} removes its credentials", s.name)
            });
        let late = Duration::from_millis(100);
        assert!(
            remove.at <= acquired + t.renew_deadline + late,
            "Remove came {:?} after the acquisition; renew deadline {:?} (the status write answers after {slow:?})",
            remove.at - acquired,
            t.renew_deadline
        );
        // Nothing of the abandoned plan reached the node (it would install, grant a permit and
        // reload to start); what did was the stop.
        assert!(
            fleet
                .first_since(mark, Some(s.name), |d| matches!(d, Did::Install | Did::Permit))
                .is_none(),
            "{:?}",
            fleet.calls_since(s.name, mark)
        );
        assert_eq!(s.reloads_since(before), [(ReloadReason::StopForging, 1)]);
        // The third pod takes over once the successor's lease expired, and forges alone.
        let third = taken_over(fleet, mark, s.name);
        assert!(third.pod != l.name && third.at >= acquired + t.duration);
        assert_eq!(fleet.forgers(), vec![third.pod]);
    });
}

#[test]
fn a_rotation_just_before_the_renew_deadline_is_not_installed_and_does_not_hold_up_the_stop() {
    // F21: the leader's API server fails (no renewal after the last one), and its credentials
    // are rotated 1 s before the renew deadline: less than the room a reload must leave the stop
    // there (STOP_GRACE, capped at RENEW_DEADLINE - RETRY_PERIOD = 1.5 s in the fleet). The
    // rotation is not installed (no renewal comes to make room), and the stop at the deadline is
    // sent at once. Installed, the rotation's reload would have held the stop's reload back for
    // its STOP_GRACE (F20), past the deadline.
    with_a_leader(async |fleet, _, l| {
        let t = timing();
        l.client.set_outage(Outage::ServerError);
        let deadline = last_write_by(fleet, l.name) + t.renew_deadline;
        tokio::time::sleep_until(deadline - Duration::from_secs(1)).await;
        let mark = fleet.mark();
        l.rotated().await;
        fleet.run_checked(3_000, 10).await;

        let calls = fleet.calls_since(l.name, mark);
        assert!(
            fleet
                .first_since(mark, Some(l.name), |d| *d == Did::Install)
                .is_none(),
            "the rotation was installed 1 s before the renew deadline: {calls:?}"
        );
        let reload = fleet
            .first_since(mark, Some(l.name), |d| *d == Did::Reload)
            .expect("the stop reloads the node");
        assert!(
            reload.at <= deadline + Duration::from_millis(100),
            "the stop's reload went {:?} after the renew deadline: {calls:?}",
            reload.at - deadline
        );
        assert!(fleet.forgers().iter().all(|f| f != l.name), "the leader stopped");
    });
}
