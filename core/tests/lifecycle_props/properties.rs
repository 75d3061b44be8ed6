//! The generated properties: histories of actions under slow, failing plans, and a SIGTERM at any
//! point of one.

use std::time::Duration;

use forge_core::decision::Phase;
use proptest::prelude::*;

use super::{Action, World, action_strategy, cases, check_settled};

/// Every step of a generated history keeps the invariants (module docs); settled, the node
/// forges exactly as the decision in force says, and whenever it may. Counts the histories in
/// which the node forged and fails when too few did (a vacuous model).
#[test]
fn slow_failing_plans_never_let_a_standby_forge() {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(400))
    };
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let forged = std::cell::Cell::new(0u32);
    let with_failures = std::cell::Cell::new(0u32);
    let gated = std::cell::Cell::new(0u32);
    let deferred = std::cell::Cell::new(0u32);
    let strategy = (
        any::<bool>(),
        prop_oneof![Just(0u32), 1u32..30],
        any::<u64>(),
        prop::collection::vec(action_strategy(), 1..120),
    );
    let result = runner.run(&strategy, |(boot_credentials, fail_percent, seed, actions)| {
        let mut w = World::new(boot_credentials, fail_percent, seed);
        for a in &actions {
            w.act(a)?;
        }
        w.settle()?;
        if w.gated > 0 {
            gated.set(gated.get() + 1);
        }
        if w.deferred > 0 {
            deferred.set(deferred.get() + 1);
        }
        if w.ever_forged {
            forged.set(forged.get() + 1);
            if fail_percent > 0 {
                with_failures.set(with_failures.get() + 1);
            }
        }
        check_settled(&w)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (forged, with_failures, gated) = (forged.get(), with_failures.get(), gated.get());
    let deferred = deferred.get();
    println!(
        "lifecycle model: {} cases (shrinking runs not counted), the node forged in {forged}, \
         {with_failures} of them with failing commands; in {gated} a node process came up during a \
         plan that was to give something up; in {deferred} a reload was deferred for lack of room \
         before the renew deadline",
        config.cases
    );
    assert!(
        deferred > 0,
        "no history had a reload deferred for lack of room before the renew deadline (F21)"
    );
    assert!(
        gated > 0,
        "no history had a node process come up before a hand-over (F12)"
    );
    assert!(
        forged * 5 >= config.cases,
        "only {forged} of {} histories ever forged: the model is too weak to test anything",
        config.cases
    );
    assert!(with_failures > 0, "no forging history had failing commands");
}

proptest! {
    // The seeds live next to this file (the default looks next to the test crate's main.rs).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(cases(400))
    })]

    /// SIGTERM at any point: exactly one `Exit`; a confirmed shutdown leaves nothing forging and
    /// released the lease only after the node stopped (checked by the world at the release).
    #[test]
    fn shutdown_at_any_point_ends_once_and_confirmed_means_stopped(
        boot_credentials in any::<bool>(),
        fail_percent in prop_oneof![Just(0u32), 1u32..30],
        seed in any::<u64>(),
        before in prop::collection::vec(action_strategy(), 0..80),
        after in prop::collection::vec(action_strategy(), 0..20),
    ) {
        // SIGTERM may be held for a leader slot (up to 20 s) here.
        let mut w = World::with_hold(boot_credentials, fail_percent, seed, Duration::from_secs(20));
        for a in &before {
            w.act(a)?;
        }
        w.act(&Action::Shutdown)?;
        for a in &after {
            w.act(a)?;
        }
        w.settle()?;
        prop_assert_eq!(w.exits, 1, "one exit");
        prop_assert_eq!(w.life.phase(), Phase::Stopped);
        if w.exit_confirmed == Some(true) {
            prop_assert!(!w.files, "a confirmed shutdown removed the credentials");
            prop_assert!(!w.forging_at_exit, "a confirmed shutdown left the node forging");
        }
    }
}
