//! Unit tests of the decision engine: one scenario per rule.
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::crd::{CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, NetworkSpec, OverrideSpec};
use crate::lease::LeaseRecord;

const ME: &str = "us-east-1";

fn secs(s: u64) -> Mono {
    Mono::from_duration(Duration::from_secs(s))
}

fn wall() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid time")
}

fn spec(priority: i32, state: ForgeState) -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec::new(state, priority, "us-east-1", NetworkSpec::new("preview", 2))
}

fn status(state: ForgeState, priority: i32, forging: bool, observed: i64) -> CardanoForgeClusterStatus {
    CardanoForgeClusterStatus {
        effective_state: Some(state),
        effective_priority: Some(priority),
        forging_enabled: Some(forging),
        observed_generation: Some(observed),
        reason: Some(
            if forging {
                "global_winner"
            } else {
                "yielding_to_peer"
            }
            .into(),
        ),
        claim_protocol: Some(crate::crd::CLAIM_PROTOCOL),
        ..Default::default()
    }
}

fn feed(state: State, events: impl IntoIterator<Item = Event>) -> State {
    events.into_iter().fold(state, apply)
}

/// A local leader with a healthy node, valid credentials and the lease until 100 s.
fn ready(config: DeciderConfig) -> State {
    feed(
        State::new(config),
        [
            Event::NodeUp,
            Event::CredentialsValid,
            Event::LeaseAcquired { deadline: secs(100) },
        ],
    )
}

fn multi(peers: &[&str], own: CardanoForgeClusterSpec) -> State {
    feed(
        ready(DeciderConfig::multi_cluster(ME, peers.iter().copied())),
        [Event::ClusterSpecChanged {
            spec: Box::new(own),
            generation: Some(1),
        }],
    )
}

fn observed(cluster: &str, st: CardanoForgeClusterStatus, generation: i64, read_at: Mono) -> Event {
    Event::PeerObserved {
        cluster: cluster.into(),
        status: Some(Box::new(st)),
        generation: Some(generation),
        read_at,
    }
}

fn claimed(state: State, at: Mono) -> State {
    apply(
        state,
        Event::StatusWritten {
            forging_enabled: true,
            at,
        },
    )
}

#[test]
fn a_fresh_state_is_standby_and_does_not_contend() {
    let d = decide(&State::new(DeciderConfig::single_cluster(ME)), secs(0), wall());
    assert!(!d.forge && !d.contend && !d.claim);
    assert_eq!(d.reason, Reason::NodeDown);
}

#[test]
fn a_single_cluster_leader_forges_until_its_renew_deadline() {
    let s = ready(DeciderConfig::single_cluster(ME));
    let d = decide(&s, secs(99), wall());
    assert!(d.forge && d.contend && d.holds_lease);
    assert_eq!(d.reason, Reason::SingleClusterLeader);
    assert_eq!(d.next_wake, Some(secs(100)));
    let late = decide(&s, secs(100), wall());
    assert!(!late.forge);
    assert_eq!(late.reason, Reason::RenewDeadlinePassed);
}

#[test]
fn standby_never_forges_without_the_lease() {
    let s = apply(
        ready(DeciderConfig::single_cluster(ME)),
        Event::LeaseLost {
            holder: Some("other".into()),
        },
    );
    let d = decide(&s, secs(1), wall());
    assert!(!d.forge && d.contend);
    assert_eq!(d.reason, Reason::NoLease);
}

#[test]
fn a_late_renewal_after_losing_the_lease_does_not_revive_it() {
    let s = feed(
        ready(DeciderConfig::single_cluster(ME)),
        [
            Event::LeaseLost { holder: None },
            Event::LeaseRenewed { deadline: secs(500) },
        ],
    );
    assert_eq!(decide(&s, secs(1), wall()).reason, Reason::NoLease);
}

#[test]
fn each_missing_local_input_has_its_own_reason() {
    let base = ready(DeciderConfig::single_cluster(ME));
    let cases = [
        (apply(base.clone(), Event::NodeDown), "node_down", false),
        (
            apply(base.clone(), Event::CredentialsInvalid { why: "kes".into() }),
            "credentials_invalid",
            false,
        ),
        (
            apply(
                State {
                    credentials: Credentials::Unknown,
                    ..base.clone()
                },
                Event::Tick,
            ),
            "credentials_unknown",
            false,
        ),
    ];
    for (s, code, contend) in cases {
        let d = decide(&s, secs(1), wall());
        assert!(!d.forge);
        assert_eq!(d.reason.as_str(), code);
        assert_eq!(d.contend, contend, "{code}");
    }
    let mut sync = DeciderConfig::single_cluster(ME);
    sync.require_sync = true;
    let s = ready(sync);
    assert_eq!(decide(&s, secs(1), wall()).reason, Reason::NodeNotSynced);
    assert!(decide(&apply(s, Event::NodeSync { synced: true }), secs(1), wall()).forge);
}

#[test]
fn cluster_management_without_a_readable_spec_fails_closed() {
    let s = ready(DeciderConfig::multi_cluster(ME, Vec::<String>::new()));
    assert_eq!(
        decide(&s, secs(1), wall()).reason.as_str(),
        "cluster_spec_unavailable"
    );
    let s = apply(s, Event::ClusterSpecUnavailable { why: "422".into() });
    let d = decide(&s, secs(1), wall());
    assert!(!d.forge && d.contend);
    assert_eq!(d.reason, Reason::ClusterSpecUnavailable { why: "422".into() });
}

#[test]
fn a_disabled_cluster_keeps_the_lease_but_does_not_forge() {
    let s = multi(&[], spec(1, ForgeState::Disabled));
    let d = decide(&s, secs(1), wall());
    assert!(!d.forge && d.contend && d.holds_lease && !d.claim);
    assert_eq!(d.reason, Reason::ClusterDisabled);
}

#[test]
fn an_enabled_or_sole_priority_cluster_forges_with_the_lease() {
    let d = decide(&multi(&[], spec(1, ForgeState::Enabled)), secs(1), wall());
    assert_eq!((d.forge, d.reason), (true, Reason::ClusterEnabled));
    let d = decide(&multi(&[], spec(1, ForgeState::PriorityBased)), secs(1), wall());
    assert_eq!((d.forge, d.reason), (true, Reason::GlobalWinner));
}

#[test]
fn an_override_forcing_disabled_wins_over_the_spec() {
    let mut own = spec(1, ForgeState::Enabled);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let d = decide(&multi(&[], own), secs(1), wall());
    assert_eq!(
        (d.forge, d.reason, d.effective_state),
        (false, Reason::OverrideDisabled, ForgeState::Disabled)
    );
}

#[test]
fn an_override_with_a_typo_in_expires_at_fails_closed() {
    let mut own = spec(1, ForgeState::Enabled);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        expires_at: Some("2025-13-01".into()),
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let d = decide(&multi(&[], own), secs(1), wall());
    assert!(!d.forge);
    assert_eq!(d.reason.as_str(), "override_invalid");
    assert_eq!(d.effective_state, ForgeState::Disabled);
}

#[test]
fn an_override_expiry_sets_the_next_wake_and_then_stops_applying() {
    let mut own = spec(1, ForgeState::PriorityBased);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        expires_at: Some("2025-06-01T12:00:30Z".into()),
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let s = multi(&[], own);
    let d = decide(&s, secs(10), wall());
    assert_eq!(d.reason, Reason::OverrideDisabled);
    assert_eq!(d.next_wake, Some(secs(40)));
    let later = "2025-06-01T12:00:30Z".parse().expect("valid time");
    let d = decide(&s, secs(40), later);
    assert_eq!((d.forge, d.reason), (true, Reason::GlobalWinner));
}

#[test]
fn health_failures_raise_the_effective_priority_and_a_success_clears_it() {
    let s = multi(&[], spec(5, ForgeState::PriorityBased));
    let fail = |s: State| apply(s, Event::HealthResult { ok: false });
    let s1 = fail(s);
    assert_eq!(decide(&s1, secs(1), wall()).effective_priority, 15);
    let s3 = fail(fail(s1));
    assert_eq!(decide(&s3, secs(1), wall()).effective_priority, 105);
    let ok = apply(s3, Event::HealthResult { ok: true });
    assert_eq!(decide(&ok, secs(1), wall()).effective_priority, 5);
}

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
    let rec = LeaseRecord {
        holder_identity: Some("a-0".into()),
        lease_duration_seconds: Some(15),
        ..Default::default()
    };
    let read = |s: State, t: u64| {
        apply(
            s,
            Event::PeerLeaseObserved {
                cluster: "a".into(),
                record: rec.clone(),
                sent_at: secs(t),
                received_at: secs(t),
            },
        )
    };
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
    let rec = LeaseRecord {
        holder_identity: Some("a-0".into()),
        lease_duration_seconds: Some(15),
        ..Default::default()
    };
    let read = |s: State, t: u64| {
        let s = apply(
            s,
            observed("a", status(ForgeState::PriorityBased, 1, true, 1), 1, secs(t)),
        );
        apply(
            s,
            Event::PeerLeaseObserved {
                cluster: "a".into(),
                record: rec.clone(),
                sent_at: secs(t),
                received_at: secs(t),
            },
        )
    };
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
    let s = apply(
        s,
        Event::PeerLeaseObserved {
            cluster: "a".into(),
            record: renewed,
            sent_at: secs(18),
            received_at: secs(18),
        },
    );
    assert_eq!(decide(&s, secs(18), wall()).reason.as_str(), "yielding_to_peer");
}

#[test]
fn a_better_peer_whose_leader_is_shutting_down_still_contends_until_its_lease_lapses() {
    let s = claimed(multi(&["a"], spec(2, ForgeState::PriorityBased)), secs(1));
    let mut st = status(ForgeState::PriorityBased, 1, false, 1);
    st.reason = Some("shutting_down".into());
    let vacant = LeaseRecord {
        holder_identity: Some(String::new()),
        lease_duration_seconds: Some(15),
        ..Default::default()
    };
    let read = |s: State, t: u64| {
        let s = apply(s, observed("a", st.clone(), 1, secs(t)));
        apply(
            s,
            Event::PeerLeaseObserved {
                cluster: "a".into(),
                record: vacant.clone(),
                sent_at: secs(t),
                received_at: secs(t),
            },
        )
    };
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
    let released = LeaseRecord {
        holder_identity: Some(String::new()),
        lease_duration_seconds: Some(1),
        ..Default::default()
    };
    let read = |s: State, t: u64| {
        let s = apply(s, observed("a", st.clone(), 1, secs(t)));
        apply(
            s,
            Event::PeerLeaseObserved {
                cluster: "a".into(),
                record: released.clone(),
                sent_at: secs(t),
                received_at: secs(t),
            },
        )
    };
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

#[test]
fn stopping_removes_and_reloads_before_withdrawing_and_releasing() {
    let s = ready(DeciderConfig::single_cluster(ME));
    let forging = decide(&s, secs(1), wall());
    let down = decide(&apply(s, Event::NodeDown), secs(1), wall());
    assert_eq!(
        plan(&forging, &down),
        vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging
            },
            Command::WriteStatus(StatusReport::of(&down)),
            Command::Contend(false),
            Command::Release,
        ]
    );
}

#[test]
fn starting_publishes_the_claim_then_installs_then_reloads() {
    let s = ready(DeciderConfig::single_cluster(ME));
    let idle = decide(
        &apply(s.clone(), Event::LeaseLost { holder: None }),
        secs(1),
        wall(),
    );
    let forging = decide(&s, secs(1), wall());
    assert_eq!(
        plan(&idle, &forging),
        vec![
            Command::WriteStatus(StatusReport::of(&forging)),
            Command::Install,
            Command::Reload {
                reason: ReloadReason::StartForging
            },
        ]
    );
    assert_eq!(plan(&forging, &forging), vec![]);
}

#[test]
fn a_leader_past_its_deadline_does_not_write_status() {
    let s = ready(DeciderConfig::single_cluster(ME));
    let forging = decide(&s, secs(1), wall());
    let late = decide(&s, secs(100), wall());
    assert_eq!(
        plan(&forging, &late),
        vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging
            }
        ]
    );
}

#[test]
fn shutdown_and_startup_plans_stop_forging_first() {
    let s = ready(DeciderConfig::single_cluster(ME));
    let forging = decide(&s, secs(1), wall());
    let cmds = shutdown_plan(&forging);
    assert_eq!(
        cmds[..2],
        [
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::Shutdown
            }
        ]
    );
    assert!(
        matches!(&cmds[2], Command::WriteStatus(r) if !r.forging_enabled && r.reason == Reason::ShuttingDown)
    );
    assert_eq!(cmds[3..], [Command::Contend(false), Command::Release]);
    assert_eq!(
        startup_plan(),
        vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::Startup
            }
        ]
    );
}

#[test]
fn the_first_plan_contends_once_the_node_and_credentials_are_ready() {
    let s = feed(
        State::new(DeciderConfig::single_cluster(ME)),
        [Event::NodeUp, Event::CredentialsValid],
    );
    let d = decide(&s, secs(0), wall());
    assert_eq!(plan(&Decision::initial(), &d), vec![Command::Contend(true)]);
}

#[test]
fn a_claim_confirmed_in_an_earlier_tenure_does_not_count_in_the_next() {
    let s = claimed(multi(&["b"], spec(1, ForgeState::PriorityBased)), secs(1));
    let s = feed(
        s,
        [
            Event::LeaseLost {
                holder: Some("us-east-1-pod-1".into()),
            },
            Event::StatusWritten {
                forging_enabled: true,
                at: secs(2),
            },
            Event::LeaseAcquired { deadline: secs(100) },
            observed("b", status(ForgeState::PriorityBased, 2, false, 1), 1, secs(3)),
        ],
    );
    assert_eq!(s.own.claim_at, None);
    assert_eq!(decide(&s, secs(3), wall()).reason, Reason::AwaitingClaim);
}

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
        let vacant = apply(
            s,
            Event::PeerLeaseObserved {
                cluster: "a".into(),
                record: LeaseRecord {
                    lease_duration_seconds: Some(15),
                    ..Default::default()
                },
                sent_at: secs(4),
                received_at: secs(4),
            },
        );
        assert!(
            decide(&vacant, secs(4), wall()).forge,
            "{own:?}: a vacant Lease is evidence"
        );
    }
}

/// Quorum mode, three regions and a witness (four participants, a majority of three), us the
/// best priority, holding only our own ticket.
fn quorum_primary() -> State {
    let mut config = DeciderConfig::multi_cluster(ME, ["west", "north"]);
    config.quorum = true;
    let s = feed(
        ready(config),
        [Event::ClusterSpecChanged {
            spec: Box::new(spec(1, ForgeState::PriorityBased)),
            generation: Some(1),
        }],
    );
    let tickets = crate::quorum::standing([Some(secs(100)), None, None, None], secs(0));
    feed(
        s,
        [
            Event::TicketsChanged { standing: tickets },
            observed("west", status(ForgeState::PriorityBased, 2, false, 1), 1, secs(0)),
            observed(
                "north",
                status(ForgeState::PriorityBased, 3, false, 1),
                1,
                secs(0),
            ),
        ],
    )
}

#[test]
fn quorum_a_region_that_cannot_reach_a_majority_stops_contending_and_releases() {
    let lease = DeciderConfig::multi_cluster(ME, ["west"]).lease.duration;
    let s = quorum_primary();
    let d = decide(&s, secs(1), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets, "the best region takes tickets");

    // Every peer region unreachable: one failed read is not enough (a blip, a slow answer).
    let s = feed(
        s,
        [
            Event::PeerUnreachable {
                cluster: "west".into(),
                at: secs(2),
            },
            Event::PeerUnreachable {
                cluster: "north".into(),
                at: secs(3),
            },
        ],
    );
    let d = decide(&s, secs(4), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets);
    // It wakes when the first peer has been unreachable for its Lease duration.
    assert_eq!(d.next_wake, Some(secs(2) + lease + Duration::from_millis(1)));

    // West long unreachable, north not yet: ourselves, the witness and north still make three.
    let at = secs(2) + lease + Duration::from_millis(500);
    let d = decide(&s, at, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });

    // Both long unreachable: ourselves and the witness are two of four. Stand aside with a
    // reason that does not contend, and let go of our ticket.
    let at = secs(3) + lease + Duration::from_millis(500);
    let d = decide(&s, at, wall());
    assert_eq!(
        d.reason,
        Reason::MajorityOutOfReach {
            in_reach: 2,
            needed: 3
        }
    );
    assert!(!d.forge && !d.claim && !d.tickets);
    assert!(!is_contender_code(Some(d.reason.as_str())));

    // A peer answers again: contend again at once (the failback after the heal).
    let s = feed(
        s,
        [observed(
            "west",
            status(ForgeState::PriorityBased, 2, true, 1),
            1,
            at,
        )],
    );
    let d = decide(&s, at + Duration::from_millis(1), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets);
}

#[test]
fn quorum_a_peer_that_stands_aside_is_not_yielded_to() {
    let mut config = DeciderConfig::multi_cluster(ME, ["east"]);
    config.quorum = true;
    let s = feed(
        ready(config),
        [Event::ClusterSpecChanged {
            spec: Box::new(spec(2, ForgeState::PriorityBased)),
            generation: Some(1),
        }],
    );
    let mut east = status(ForgeState::PriorityBased, 1, false, 1);
    east.reason = Some("awaiting_majority".into());
    let s = apply(s, observed("east", east.clone(), 1, secs(1)));
    let d = decide(&s, secs(1), wall());
    assert_eq!(d.reason, Reason::YieldingToPeer { peer: "east".into() });
    assert!(!d.tickets);
    east.reason = Some("majority_out_of_reach".into());
    let s = apply(s, observed("east", east, 1, secs(2)));
    let d = decide(&s, secs(2), wall());
    assert!(d.tickets, "we take the tickets instead: {:?}", d.reason);
}

#[test]
fn quorum_a_primary_with_only_the_witness_in_reach_of_three_keeps_contending() {
    // Two regions and a witness: the witness and ourselves are a majority, so a long
    // unreachable peer (a dead region) never makes us stand aside.
    let mut config = DeciderConfig::multi_cluster(ME, ["west"]);
    config.quorum = true;
    let lease = config.lease.duration;
    let s = feed(
        ready(config),
        [
            Event::ClusterSpecChanged {
                spec: Box::new(spec(2, ForgeState::PriorityBased)),
                generation: Some(1),
            },
            Event::TicketsChanged {
                standing: crate::quorum::standing([Some(secs(100)), None, None], secs(0)),
            },
            Event::PeerUnreachable {
                cluster: "west".into(),
                at: secs(1),
            },
        ],
    );
    let d = decide(&s, secs(2) + lease * 3, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 2 });
    assert!(d.tickets);
}
