//! Property tests of quorum mode's gate in the Decider's lifecycle (docs/quorum.md): a model
//! world carries out plans one command at a time (slow, failing at random) while the
//! TicketKeeper's standing changes under it (majorities won, renewed, lost), the local lease
//! comes and goes, and a better peer appears and leaves. After every step it checks:
//!
//! - a plan that installs credentials to forge is emitted only while a majority is held with
//!   its forge deadline ahead, and carries a `start_by` no later than that deadline;
//! - an idle lifecycle (no plan in flight, no retry pending) never leaves the node forging
//!   without a majority whose deadline is ahead (losing it stops forging before the deadline:
//!   the decision wakes at the deadline);
//! - the tickets are released (the keeper's `Want::Release`) only while the node is confirmed
//!   stopped: no credentials installed, nothing forging.
//!
//! Settled, a region that should forge and holds a majority forges (L1), and a region that should
//! yield to a better peer stops and then releases. The tests count the histories that forged
//! and the ones that released, so a model that never gets there fails.
//!
//! The model world (the lifecycle under test, its plans carried out one command at a time, the
//! node and the invariants checked after every step) is in [`world`]; this file holds the tests.
use std::time::Duration;

use forge_core::crd::ForgeState;
use forge_core::decision::{Event, Input};
use forge_core::quorum::{Want, want};
use proptest::prelude::*;
use world::{Action, World, action_strategy, spec, wall_at};

#[path = "../support/model_world.rs"]
mod model_world;
mod world;

use model_world::cases;

/// Random histories keep the gate's invariants at every step; settled as the winner with a
/// fresh majority, the node forges; then, a better peer appears: the node stops and only then
/// the tickets are released.
#[test]
fn forging_needs_a_current_majority_and_release_follows_a_confirmed_stop() {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(400))
    };
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let forged = std::cell::Cell::new(0u32);
    let released = std::cell::Cell::new(0u32);
    let strategy = (
        prop_oneof![Just(0u32), 1u32..30],
        any::<u64>(),
        prop::collection::vec(action_strategy(), 1..120),
    );
    let result = runner.run(&strategy, |(fail_percent, seed, actions)| {
        let mut w = World::new(fail_percent, seed)?;
        for a in &actions {
            w.act(a)?;
        }
        w.settle()?;
        if w.ever_forged {
            forged.set(forged.get() + 1);
        }
        // L1: the winner with a fresh majority forges.
        w.make_winner()?;
        w.settle()?;
        prop_assert!(
            w.life.current().forge && w.node_forging,
            "settled winner with a majority does not forge: {:?}",
            w.life.current().reason
        );
        // Yield: a better peer appears; we stop, confirmed, then release.
        w.act(&Action::BetterPeer)?;
        let intent = w.life.ticket_intent(w.now, wall_at(w.now));
        prop_assert!(
            want(intent) != Want::Release,
            "release before the stop was confirmed"
        );
        w.settle()?;
        prop_assert!(!w.life.current().forge && !w.node_forging && !w.files);
        prop_assert_eq!(
            want(w.life.ticket_intent(w.now, wall_at(w.now))),
            Want::Release,
            "the yielding region releases once stopped"
        );
        if w.ever_released {
            released.set(released.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (forged, released) = (forged.get(), released.get());
    println!(
        "quorum gate model: {} cases, forged during the random history in {forged}, released in {released}",
        config.cases
    );
    assert!(
        forged * 10 >= config.cases,
        "only {forged} of {} random histories forged: the model is too weak",
        config.cases
    );
    assert_eq!(released, config.cases, "every case ends with a release");
}

proptest! {
    // Seeds of past failures are kept next to this file, as before the move into this
    // directory: by default proptest looks up the tree for a `main.rs`, finds this one, and
    // would use `tests/proptest-regressions/main.txt`, a name every directory test shares.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(cases(200))
    })]

    /// A forging winner whose majority is not renewed stops at the forge deadline: the stop plan
    /// is emitted at the deadline's wake-up, without any other input, and the decision in force
    /// stops once it ran; the local lease stays current all along.
    #[test]
    fn losing_the_majority_stops_at_the_forge_deadline(ahead_ms in 500u64..8_000, seed in any::<u64>()) {
        let mut w = World::new(0, seed)?;
        w.make_winner()?;
        w.settle()?;
        prop_assert!(w.life.current().forge);
        // The keeper now holds a majority only until `ahead_ms`, and renews nothing.
        w.tickets(2, ahead_ms)?;
        let deadline = w.now + Duration::from_millis(ahead_ms);
        w.settle()?;
        prop_assert!(w.life.current().forge, "forging stopped while the majority held");
        // The lease stays current; only the forge deadline passes.
        w.act(&Action::LeaseRenewed)?;
        w.advance(ahead_ms)?;
        prop_assert!(w.running.is_some(), "no stop plan at the forge deadline");
        prop_assert!(w.now >= deadline);
        w.settle()?;
        prop_assert!(!w.life.current().forge && !w.node_forging);
        prop_assert_eq!(
            w.life.current().reason.as_str(),
            "awaiting_majority"
        );
    }
}

/// Break glass: with `QUORUM_BREAK_GLASS` an override forcing `Enabled` forges without a
/// majority (the peer long unreachable); without it, the same region waits for the majority.
#[test]
fn break_glass_skips_the_majority_only_for_a_forced_enabled() {
    use forge_core::crd::OverrideSpec;
    for glass in [false, true] {
        let mut w = World::with_glass(0, 7, glass).expect("world");
        w.settle().expect("settle");
        let mut s = spec(ForgeState::PriorityBased);
        s.override_ = Some(OverrideSpec {
            enabled: true,
            reason: None,
            expires_at: None,
            force_state: Some(ForgeState::Enabled),
            force_priority: None,
        });
        w.input(Input::Fact(Event::ClusterSpecChanged {
            spec: Box::new(s),
            generation: Some(1),
        }))
        .expect("spec");
        // The peer has been unreachable for longer than its lease: an Enabled override skips it.
        w.advance(20_000).expect("advance");
        w.act(&Action::PeerGone).expect("peer");
        w.act(&Action::LeaseRenewed).expect("lease");
        w.settle().expect("settle");
        assert_eq!(
            w.life.current().forge,
            glass,
            "glass {glass}: {:?}",
            w.life.current().reason
        );
        if !glass {
            assert_eq!(w.life.current().reason.as_str(), "awaiting_majority");
        }
    }
}
