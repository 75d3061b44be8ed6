//! Histories the properties found against the first version of the lifecycle, kept as fixed cases.

use super::{Action, World, check_settled};

/// Histories the properties found against the first version of the lifecycle (each failed
/// there): the world's checks and the settled checks must hold for every one.
#[test]
fn histories_found_by_the_properties_stay_fixed() {
    use Action::*;
    let cases: Vec<(&str, bool, u32, u64, Vec<Action>)> = vec![
        (
            // A re-assert in flight when the guard fences, then the credentials turn invalid:
            // the stop plan must remove and reload before releasing (it planned from a
            // "not forging" decision and released the lease with the node forging).
            "fence during a re-assert, then stop",
            false,
            0,
            0,
            vec![
                NodeUp,
                LeaseAcquired,
                CredentialsValid,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Heartbeat,
                Fenced,
                CredentialsInvalid,
                Progress,
                Progress,
                Progress,
                Shutdown,
            ],
        ),
        (
            // A start fails, then its undo fails: the credentials stayed on a standby for good.
            "failed undo of a failed start",
            false,
            14,
            2074193637290618164,
            vec![
                Progress,
                Progress,
                NodeUp,
                LeaseAcquired,
                Progress,
                NodeDown,
                Progress,
                Progress,
                Advance(1),
                NodeUp,
                Progress,
                CredentialsValid,
                Progress,
                Progress,
                Progress,
                Progress,
                NodeDown,
                Progress,
                Progress,
                Progress,
                NodeDown,
                Progress,
            ],
        ),
        (
            // Removing the boot credentials of a node that came up fails: never retried.
            "failed boot-credential removal",
            true,
            10,
            2717986474858277054,
            vec![
                LeaseAcquired,
                NodeUp,
                Progress,
                Progress,
                Progress,
                LeaseLost,
                CredentialsValid,
                Progress,
                Progress,
                NodeDown,
                LeaseAcquired,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                NodeUp,
                Progress,
                Progress,
                Progress,
                CredentialsInvalid,
            ],
        ),
        (
            // A stop fails after removing the credentials; the lease comes back: the decision in
            // force said "forging" with nothing installed (L1).
            "half-failed stop, then leader again",
            true,
            23,
            16685361556088724732,
            vec![
                Progress,
                Progress,
                LeaseAcquired,
                Progress,
                Progress,
                Progress,
                CredentialsValid,
                Progress,
                NodeUp,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Fenced,
                Rotated,
                Progress,
                Progress,
                Progress,
                Progress,
                Advance(470),
                Advance(530),
                LeaseLost,
                Progress,
                Progress,
                Progress,
                LeaseAcquired,
                Progress,
                Progress,
            ],
        ),
        (
            // The guard fences the node while the starting plan is still in flight: the fence
            // was ignored and the plan adopted "forging" (L1).
            "fence while a start is in flight",
            false,
            0,
            0,
            vec![
                NodeUp,
                Progress,
                Progress,
                Progress,
                Advance(1206),
                CredentialsValid,
                Advance(3991),
                Advance(3263),
                Advance(3000),
                CredentialsValid,
                Progress,
                Progress,
                LeaseAcquired,
                Advance(2613),
                Progress,
                Progress,
                Progress,
                Advance(3210),
                Advance(1223),
                Fenced,
                Advance(1495),
            ],
        ),
    ];
    let mut failed = Vec::new();
    for (name, boot, fail_percent, seed, actions) in cases {
        let mut w = World::new(boot, fail_percent, seed);
        let run = (|| {
            for a in &actions {
                w.act(a)?;
            }
            w.settle()?;
            check_settled(&w)
        })();
        if let Err(e) = run {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
