//! The node against the chain: a leader that falls behind, a sync not known yet, and the hold
//! of a planned handover until our leader slot has passed.

use super::*;

/// `wall()` plus `s` seconds.
fn wall_plus(s: i64) -> Timestamp {
    wall() + jiff::SignedDuration::from_secs(s)
}

#[test]
fn a_leader_whose_node_falls_behind_stops_and_releases_so_a_synced_standby_takes_over() {
    let mut c = DeciderConfig::single_cluster(ME);
    c.require_sync = true;
    let s = apply(ready(c), Event::NodeSync { synced: true });
    let forging = decide(&s, secs(1), wall());
    assert!(forging.forge);
    let s = apply(s, Event::Committed { forge: true });
    let behind = decide(&apply(s, Event::NodeSync { synced: false }), secs(2), wall());
    assert_eq!(behind.reason, Reason::NodeNotSynced);
    // A node behind neither forges nor holds on to the lease: the confirmed stop first, then
    // the release a synced standby (which contends) acquires at once.
    assert!(!behind.forge && !behind.contend);
    assert_eq!(
        plan(&forging, &behind),
        vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging
            },
            Command::WriteStatus(StatusReport::of(&behind)),
            Command::Contend(false),
            Command::Release,
        ]
    );
    // Its status code tells peer regions it does not contend.
    assert!(!is_contender_code(Some(behind.reason.as_str())));
}

#[test]
fn a_node_whose_sync_is_not_known_yet_does_not_contend_and_a_restart_forgets_it() {
    let mut c = DeciderConfig::single_cluster(ME);
    c.require_sync = true;
    let s = ready(c);
    assert!(!decide(&s, secs(1), wall()).contend);
    let s = apply(s, Event::NodeSync { synced: true });
    assert!(decide(&s, secs(1), wall()).contend);
    let s = feed(s, [Event::NodeDown, Event::NodeUp]);
    assert_eq!(s.node.synced, None);
    assert_eq!(decide(&s, secs(1), wall()).reason, Reason::NodeNotSynced);
}

/// A forging sole `Priority-based` cluster with one leader slot `slot_in` seconds after
/// `wall()`.
fn forging_with_slot(slot_in: i64) -> State {
    let s = multi(&[], spec(1, ForgeState::PriorityBased));
    assert!(decide(&s, secs(1), wall()).forge);
    feed(
        s,
        [
            Event::Committed { forge: true },
            Event::LeaderScheduleChanged {
                slots: vec![wall_plus(slot_in), wall_plus(slot_in + 3_600)],
            },
        ],
    )
}

fn disabled(generation: i64) -> Event {
    Event::ClusterSpecChanged {
        spec: Box::new(spec(1, ForgeState::Disabled)),
        generation: Some(generation),
    }
}

#[test]
fn a_planned_handover_is_held_until_our_leader_slot_has_passed() {
    let s = apply(forging_with_slot(30), disabled(2));
    let held = decide(&s, secs(1), wall());
    assert!(held.forge && held.claim);
    assert_eq!(
        held.reason,
        Reason::HandoverHeld {
            planned: Box::new(Reason::ClusterDisabled),
            slot_at: wall_plus(30),
        }
    );
    assert_eq!(held.reason.as_str(), "handover_held");
    // Wakes when the 1 s slot has ended: 30 s + 1 s after `wall()`.
    assert_eq!(held.next_wake, Some(secs(32)));
    // Still held during the slot, and the handover goes ahead right after it.
    assert!(decide(&s, secs(31), wall_plus(30)).forge);
    let after = decide(&s, secs(32), wall_plus(31));
    assert_eq!((after.forge, after.reason), (false, Reason::ClusterDisabled));
}

#[test]
fn a_slot_beyond_the_quiet_window_or_already_over_holds_nothing() {
    let far = decide(&apply(forging_with_slot(61), disabled(2)), secs(1), wall());
    assert_eq!((far.forge, far.reason), (false, Reason::ClusterDisabled));
    let edge = decide(&apply(forging_with_slot(60), disabled(2)), secs(1), wall());
    assert!(edge.forge, "a slot exactly HANDOVER_QUIET ahead holds");
    let over = decide(&apply(forging_with_slot(-1), disabled(2)), secs(1), wall());
    assert_eq!((over.forge, over.reason), (false, Reason::ClusterDisabled));
    // A quiet window of its own.
    let mut s = apply(forging_with_slot(100), disabled(2));
    s.config.handover_quiet = Duration::from_secs(120);
    assert!(decide(&s, secs(1), wall()).forge);
}

#[test]
fn a_hold_never_starts_forging() {
    let s = apply(forging_with_slot(30), Event::Committed { forge: false });
    let d = decide(&apply(s, disabled(2)), secs(1), wall());
    assert_eq!((d.forge, d.reason), (false, Reason::ClusterDisabled));
}

#[test]
fn overrides_and_a_better_healthy_peer_are_planned_too() {
    let mut own = spec(1, ForgeState::PriorityBased);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let s = apply(
        forging_with_slot(10),
        Event::ClusterSpecChanged {
            spec: Box::new(own),
            generation: Some(2),
        },
    );
    assert!(matches!(
        decide(&s, secs(1), wall()).reason,
        Reason::HandoverHeld { planned, .. } if *planned == Reason::OverrideDisabled
    ));

    // A failback: the better peer comes back while we are healthy.
    let s = feed(
        multi(&["a"], spec(5, ForgeState::PriorityBased)),
        [
            Event::Committed { forge: true },
            Event::LeaderScheduleChanged {
                slots: vec![wall_plus(10)],
            },
            observed("a", status(ForgeState::PriorityBased, 1, false, 1), 1, secs(1)),
        ],
    );
    let d = decide(&s, secs(1), wall());
    assert!(d.forge);
    assert!(
        matches!(d.reason, Reason::HandoverHeld { planned, .. } if matches!(*planned, Reason::YieldingToPeer { .. }))
    );
    // Our own health failing makes the same yield an outage: not held.
    let d = decide(&apply(s, Event::HealthResult { ok: false }), secs(1), wall());
    assert_eq!(d.reason.as_str(), "yielding_to_peer");
    assert!(!d.forge);
}

#[test]
fn unplanned_and_safety_stops_are_never_held() {
    let base = apply(forging_with_slot(10), disabled(2));
    assert!(decide(&base, secs(1), wall()).forge);
    let mut sync = base.clone();
    sync.config.require_sync = true;
    let cases = [
        (apply(base.clone(), Event::NodeDown), "node_down"),
        (apply(base.clone(), Event::LeaseLost { holder: None }), "no_lease"),
        (
            apply(base.clone(), Event::CredentialsInvalid { why: "kes".into() }),
            "credentials_invalid",
        ),
        (
            apply(base.clone(), Event::ClusterSpecUnavailable { why: "gone".into() }),
            "cluster_spec_unavailable",
        ),
        (apply(sync, Event::NodeSync { synced: false }), "node_not_synced"),
    ];
    for (s, code) in cases {
        let d = decide(&s, secs(1), wall());
        assert_eq!((d.forge, d.reason.as_str()), (false, code));
    }
    // Past the renew deadline (100 s) nothing is held either.
    let d = decide(&base, secs(100), wall_plus(5));
    assert_eq!((d.forge, d.reason), (false, Reason::RenewDeadlinePassed));
}
