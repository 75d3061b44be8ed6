//! What shows that a peer does not forge: its status for the current generation, fresh
//! heartbeats, its Lease unrenewed for its duration or released, the claim protocol marker.

use super::*;

/// A Lease held by `holder` (`""`: vacant) for `duration_s`.
fn lease_of(holder: &str, duration_s: i32) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(duration_s),
        ..Default::default()
    }
}

/// Peer `a`'s Lease `record`, read (sent and answered) at `t` s.
fn a_lease_read(record: &LeaseRecord, t: u64) -> Event {
    Event::PeerLeaseObserved {
        cluster: "a".into(),
        record: record.clone(),
        sent_at: secs(t),
        received_at: secs(t),
    }
}

/// `s` after reading peer `a`'s status `st` (generation 1) and its Lease `record` at `t` s.
fn a_read(s: State, st: &CardanoForgeClusterStatus, record: &LeaseRecord, t: u64) -> State {
    feed(
        s,
        [observed("a", st.clone(), 1, secs(t)), a_lease_read(record, t)],
    )
}

#[test]
fn a_peer_patched_disabled_is_not_evidence_until_its_status_confirms_the_generation() {
    // B (us, priority 2) and A (priority 1, forging). A is patched Disabled: generation 6.
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed("a", status(ForgeState::PriorityBased, 1, true, 5), 6, secs(2)),
    );
    assert_eq!(decide(&s, secs(2), wall()).reason.as_str(), "yielding_to_peer");
    // A's status says Disabled but still for generation 5 (impossible combination kept for rigour).
    let s = apply(
        s,
        observed("a", status(ForgeState::Disabled, 1, false, 5), 6, secs(3)),
    );
    assert_eq!(
        decide(&s, secs(3), wall()).reason.as_str(),
        "awaiting_peer_confirmation"
    );
    let s = apply(
        s,
        observed("a", status(ForgeState::Disabled, 1, true, 6), 6, secs(4)),
    );
    assert_eq!(decide(&s, secs(4), wall()).reason.as_str(), "awaiting_peer_stop");
    let s = apply(
        s,
        observed("a", status(ForgeState::Disabled, 1, false, 6), 6, secs(5)),
    );
    assert!(decide(&s, secs(5), wall()).forge);
}

#[test]
fn stale_heartbeats_are_not_evidence() {
    let s = claimed(multi(&["b"], spec(1, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed("b", status(ForgeState::PriorityBased, 2, false, 1), 1, secs(2)),
    );
    assert!(decide(&s, secs(12), wall()).forge);
    assert_eq!(
        decide(&s, secs(13), wall()).reason.as_str(),
        "awaiting_peer_confirmation"
    );
}

#[test]
fn a_peer_lease_unrenewed_for_its_duration_is_evidence() {
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed("a", status(ForgeState::PriorityBased, 1, true, 1), 1, secs(1)),
    );
    let s = apply(
        s,
        Event::PeerUnreachable {
            cluster: "a".into(),
            at: secs(1),
        },
    );
    let rec = lease_of("a-0", 15);
    let read = |s: State, t: u64| apply(s, a_lease_read(&rec, t));
    let s = read(s, 2);
    assert_eq!(decide(&s, secs(10), wall()).reason.as_str(), "peer_unreachable");
    let s = read(s, 16);
    assert_eq!(
        decide(&s, secs(16), wall()).reason.as_str(),
        "peer_unreachable",
        "14 s < 15 s"
    );
    let s = read(s, 17);
    assert_eq!(decide(&s, secs(17), wall()).reason, Reason::GlobalWinner);
}

#[test]
fn a_reachable_better_peer_whose_lease_lapsed_no_longer_wins() {
    // All of the better region's pods died: its API server answers, its last status still
    // says priority 1 and forging, but its Lease goes unrenewed.
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let rec = lease_of("a-0", 15);
    let forging = status(ForgeState::PriorityBased, 1, true, 1);
    let read = |s: State, t: u64| a_read(s, &forging, &rec, t);
    let s = read(s, 2);
    assert_eq!(decide(&s, secs(2), wall()).reason.as_str(), "yielding_to_peer");
    let s = read(s, 16);
    assert_eq!(
        decide(&s, secs(16), wall()).reason.as_str(),
        "yielding_to_peer",
        "14 s < 15 s"
    );
    let s = read(s, 17);
    assert_eq!(decide(&s, secs(17), wall()).reason, Reason::GlobalWinner);
    // A lapse read long ago is not current: yield again (silence is not evidence).
    assert_eq!(decide(&s, secs(60), wall()).reason.as_str(), "yielding_to_peer");
    // It renews again (a pod came back): it is a contender again.
    let renewed = LeaseRecord {
        lease_transitions: Some(1),
        ..rec.clone()
    };
    let s = apply(s, a_lease_read(&renewed, 18));
    assert_eq!(decide(&s, secs(18), wall()).reason.as_str(), "yielding_to_peer");
}

#[test]
fn a_better_peer_whose_leader_is_shutting_down_still_contends_until_its_lease_lapses() {
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let mut st = status(ForgeState::PriorityBased, 1, false, 1);
    st.reason = Some("shutting_down".into());
    let vacant = lease_of("", 15);
    let read = |s: State, t: u64| a_read(s, &st, &vacant, t);
    // Its leader left (released the lease): its replica takes over in a moment, so we yield.
    let s = read(s, 2);
    assert_eq!(decide(&s, secs(2), wall()).reason.as_str(), "yielding_to_peer");
    // Nobody took its lease for the whole duration: the region is gone, we take over.
    let s = read(s, 17);
    assert_eq!(decide(&s, secs(17), wall()).reason, Reason::GlobalWinner);
}

#[test]
fn a_released_peer_lease_counts_as_vacant_for_our_lease_duration_not_its_own_one_second() {
    // client-go (and we) write leaseDurationSeconds: 1 on release. A primary whose only replica
    // restarts must not be taken over after 1 s (L1-d): the configured 15 s applies.
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let mut st = status(ForgeState::PriorityBased, 1, false, 1);
    st.reason = Some("shutting_down".into());
    let released = lease_of("", 1);
    let read = |s: State, t: u64| a_read(s, &st, &released, t);
    let s = read(s, 2);
    let s = read(s, 4);
    assert_eq!(
        decide(&s, secs(4), wall()).reason.as_str(),
        "yielding_to_peer",
        "2 s after a release with a 1 s record the region is still restarting its leader"
    );
    let s = read(s, 16);
    assert_eq!(decide(&s, secs(16), wall()).reason.as_str(), "yielding_to_peer");
    let s = read(s, 18);
    assert_eq!(decide(&s, secs(18), wall()).reason, Reason::GlobalWinner);
}

/// F14: a peer still running the reference sidecar (no `claimProtocol` in its status) may forge
/// while its status says `forgingEnabled: false`, so that status is never a reason to start
/// (an `Enabled` cluster skips such a peer only as it skips an unreachable one); its vacant
/// Lease still is evidence.
#[test]
fn a_peer_status_without_the_claim_protocol_marker_is_no_evidence_but_its_vacant_lease_is() {
    let mut reference = status(ForgeState::PriorityBased, 2, false, 1);
    reference.claim_protocol = None;
    for own in [ForgeState::PriorityBased, ForgeState::Enabled] {
        let s = claimed(multi(&["a"], spec(1, own)), secs(1));
        let s = apply(s, observed("a", reference.clone(), 1, secs(2)));
        // Waits; `Enabled` only until the peer has said so for longer than its Lease duration
        // (15 s from the first such read, as for a peer unreachable that long).
        let waits = |t: u64| own == ForgeState::PriorityBased || t <= 17;
        for t in [2, 16, 17, 18, 90] {
            let s = apply(s.clone(), observed("a", reference.clone(), 1, secs(t)));
            let d = decide(&s, secs(t), wall());
            if waits(t) {
                assert!(!d.forge, "{own:?} at {t} s started on an unmarked status");
                assert_eq!(
                    d.reason.as_str(),
                    "awaiting_peer_confirmation",
                    "{own:?} at {t} s"
                );
            } else {
                assert_eq!(d.reason, Reason::ClusterEnabled, "{own:?} at {t} s");
            }
        }
        // The same status from a writer that claims first is evidence.
        let marked = apply(
            s.clone(),
            observed("a", status(ForgeState::PriorityBased, 2, false, 1), 1, secs(3)),
        );
        assert!(
            decide(&marked, secs(3), wall()).forge,
            "{own:?}: a marked status is evidence"
        );
        // Its Lease, vacant and read after our claim, proves it does not forge.
        let never_held = LeaseRecord {
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        let vacant = apply(s, a_lease_read(&never_held, 4));
        assert!(
            decide(&vacant, secs(4), wall()).forge,
            "{own:?}: a vacant Lease is evidence"
        );
    }
}
