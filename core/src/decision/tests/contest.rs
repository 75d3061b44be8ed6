//! Who wins between clusters: the claim published before the start, peers that block a
//! takeover or make us yield, equal priorities, enabled and priority clusters.

use super::*;

#[test]
fn a_winner_claims_first_and_starts_only_on_evidence_read_after_its_claim() {
    let s = multi(&["eu-west-1"], spec(1, ForgeState::PriorityBased));
    let s = apply(
        s,
        observed(
            "eu-west-1",
            status(ForgeState::PriorityBased, 2, false, 4),
            4,
            secs(1),
        ),
    );
    let d = decide(&s, secs(2), wall());
    assert_eq!(
        (d.forge, d.claim, d.reason.clone()),
        (false, true, Reason::AwaitingClaim)
    );
    let s = claimed(s, secs(3));
    let d = decide(&s, secs(3), wall());
    assert_eq!(
        d.reason,
        Reason::AwaitingPeerConfirmation {
            peer: "eu-west-1".into()
        },
        "read before the claim"
    );
    let s = apply(
        s,
        observed(
            "eu-west-1",
            status(ForgeState::PriorityBased, 2, false, 4),
            4,
            secs(4),
        ),
    );
    let d = decide(&s, secs(5), wall());
    assert_eq!((d.forge, d.reason), (true, Reason::GlobalWinner));
}

#[test]
fn an_unreachable_or_never_seen_higher_priority_peer_blocks_takeover() {
    let s = claimed(multi(&["eu-west-1"], spec(2, ForgeState::PriorityBased)), secs(1));
    let d = decide(&s, secs(2), wall());
    assert_eq!((d.forge, d.reason.as_str()), (false, "peer_unreachable"));
    let s = feed(
        s,
        [
            observed(
                "eu-west-1",
                status(ForgeState::PriorityBased, 1, true, 4),
                4,
                secs(2),
            ),
            Event::PeerUnreachable {
                cluster: "eu-west-1".into(),
                at: secs(2),
            },
        ],
    );
    let d = decide(&s, secs(3), wall());
    assert_eq!(
        (d.forge, d.reason),
        (
            false,
            Reason::PeerUnreachable {
                peer: "eu-west-1".into()
            }
        )
    );
}

#[test]
fn a_visible_better_peer_makes_us_yield_and_withdraw_the_claim() {
    let s = claimed(multi(&["eu-west-1"], spec(2, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed(
            "eu-west-1",
            status(ForgeState::PriorityBased, 1, false, 3),
            3,
            secs(2),
        ),
    );
    let d = decide(&s, secs(2), wall());
    assert_eq!((d.forge, d.claim), (false, false));
    assert_eq!(
        d.reason,
        Reason::YieldingToPeer {
            peer: "eu-west-1".into()
        }
    );
}

#[test]
fn equal_priorities_are_broken_by_cluster_name() {
    let s = claimed(
        multi(&["ap-south-1", "zz-last"], spec(1, ForgeState::PriorityBased)),
        secs(1),
    );
    let s = feed(
        s,
        [
            observed(
                "ap-south-1",
                status(ForgeState::PriorityBased, 1, false, 1),
                1,
                secs(2),
            ),
            observed(
                "zz-last",
                status(ForgeState::PriorityBased, 1, false, 1),
                1,
                secs(2),
            ),
        ],
    );
    assert_eq!(
        decide(&s, secs(2), wall()).reason,
        Reason::YieldingToPeer {
            peer: "ap-south-1".into()
        }
    );
}

#[test]
fn a_better_cluster_coming_back_waits_for_the_worse_one_to_stop() {
    let s = claimed(multi(&["b"], spec(1, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed("b", status(ForgeState::PriorityBased, 2, true, 1), 1, secs(2)),
    );
    let d = decide(&s, secs(2), wall());
    assert_eq!(
        (d.forge, d.claim, d.reason.as_str()),
        (false, true, "awaiting_peer_stop")
    );
}

#[test]
fn a_forging_winner_keeps_forging_when_a_worse_peer_goes_silent() {
    let s = claimed(multi(&["b"], spec(1, ForgeState::PriorityBased)), secs(1));
    let s = apply(
        s,
        observed("b", status(ForgeState::PriorityBased, 2, false, 1), 1, secs(2)),
    );
    assert!(decide(&s, secs(2), wall()).forge);
    let s = feed(
        s,
        [
            Event::Committed { forge: true },
            Event::PeerUnreachable {
                cluster: "b".into(),
                at: secs(3),
            },
        ],
    );
    assert!(decide(&s, secs(50), wall()).forge);
}

#[test]
fn an_enabled_cluster_skips_unreachable_peers_but_waits_for_visible_forgers() {
    let s = multi(&["a", "b"], spec(5, ForgeState::Enabled));
    assert_eq!(
        decide(&s, secs(1), wall()).reason.as_str(),
        "peer_unreachable",
        "peers not yet tried may be forging"
    );
    let s = feed(
        s,
        [
            Event::PeerUnreachable {
                cluster: "a".into(),
                at: secs(1),
            },
            Event::PeerUnreachable {
                cluster: "b".into(),
                at: secs(1),
            },
        ],
    );
    let early = decide(&s, secs(2), wall());
    assert_eq!(
        early.reason.as_str(),
        "peer_unreachable",
        "one failed read is no reason to skip a peer that may be forging"
    );
    assert!(
        early.next_wake.is_some_and(|w| w > secs(16) && w <= secs(17)),
        "decides again once the silence outlasts the lease duration: {:?}",
        early.next_wake
    );
    // Nothing changes before that wake-up, even at the lease duration's very end (a decision
    // that changed between it and the wake-up would wait for an unrelated event: found by
    // `decision_props`).
    let wake = early.next_wake.expect("a wake-up");
    for at in [secs(16), secs(16) + Duration::from_micros(500)] {
        assert_eq!(
            decide(&s, at, wall()).reason.as_str(),
            "peer_unreachable",
            "at {at:?}"
        );
    }
    assert_eq!(decide(&s, wake, wall()).reason, Reason::ClusterEnabled);
    assert_eq!(
        decide(&s, secs(17), wall()).reason,
        Reason::ClusterEnabled,
        "an override during a region outage skips peers silent for longer than a lease duration"
    );
    // "a" answers again (b stays silent): a visible forger is waited for.
    let s = apply(
        s,
        observed("a", status(ForgeState::PriorityBased, 1, true, 1), 1, secs(18)),
    );
    assert_eq!(decide(&s, secs(18), wall()).reason.as_str(), "awaiting_peer_stop");
    let s = claimed(s, secs(19));
    assert_eq!(decide(&s, secs(19), wall()).reason.as_str(), "awaiting_peer_stop");
    let s = apply(
        s,
        observed("a", status(ForgeState::PriorityBased, 1, false, 1), 1, secs(20)),
    );
    assert_eq!(decide(&s, secs(20), wall()).reason, Reason::ClusterEnabled);
}

#[test]
fn a_priority_cluster_yields_to_an_enabled_peer_whatever_its_priority() {
    let s = multi(&["a"], spec(1, ForgeState::PriorityBased));
    let s = apply(
        s,
        observed("a", status(ForgeState::Enabled, 500, false, 1), 1, secs(1)),
    );
    assert_eq!(decide(&s, secs(1), wall()).reason.as_str(), "yielding_to_peer");
}

#[test]
fn a_peer_that_cannot_forge_does_not_win_the_contest() {
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let mut st = status(ForgeState::PriorityBased, 1, false, 1);
    st.reason = Some("node_down".into());
    let s = apply(s, observed("a", st, 1, secs(2)));
    assert!(decide(&s, secs(2), wall()).forge);
}
