//! Unit tests of the decision engine: one scenario per rule.
//!
//! This file holds the states and observations the tests build on and the rules of a single
//! pod (the lease, the local inputs and their reasons); the others are in [`cluster`] (this
//! cluster's spec, overrides and health), [`contest`] (who wins between clusters, the claim
//! before the start, yielding), [`evidence`] (what shows that a peer does not forge: its status
//! for the current generation, heartbeats, its Lease lapsed or released, the claim protocol
//! marker), [`plans`] (the order of the commands in a plan), [`chain`] (a node behind the
//! chain, the hold of a planned handover until our leader slot) and [`quorum`].
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::crd::{CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, NetworkSpec, OverrideSpec};
use crate::lease::LeaseRecord;

mod chain;
mod cluster;
mod contest;
mod evidence;
mod plans;
mod quorum;

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
