//! Model-based property tests of the Decider's lifecycle (`core/src/decision/lifecycle/`): a
//! model world carries out its plans one command at a time, so plans are slow and facts,
//! timers and rotations arrive while they run; commands fail at random; the lease expires
//! unless renewed; the node restarts (booting non-producing where configured) and its guard
//! fences it. After every step the world checks who could forge:
//!
//! - a reload that finds credentials installed is sent only by a plan that means to forge (a
//!   standby never forges, whatever the boot credentials, re-asserts and rotations do);
//! - a plan that installs credentials to forge carries the renew deadline and is emitted before
//!   it (start_by), and the executor sends none of its commands past it, as the actor's does;
//! - the lease is never released while the node may forge (S2), also when a node process comes
//!   up forging while the plan that releases it runs (F12: the executor's hand-over gate is
//!   modelled as the actor's);
//! - a reload that does not stop forging (a start, a rotation, a re-assert) is planned only
//!   while at least `STOP_GRACE` is left before the renew deadline, so the stop there never
//!   waits past it for that reload (F21);
//! - an idle lifecycle (no plan in flight, no failed plan waiting) never leaves the node forging
//!   past the renew deadline (S1 with its stop plan);
//! - settled (no more failures, every timer fed), the node forges exactly when the decision in
//!   force does, and does whenever it should (L1); the shutdown plan ends in one `Exit`, and a
//!   confirmed one leaves nothing forging.
//!
//! The tests count the cases in which the model node forged, and those in which a node process
//! came up while a plan was about to give something up, so a model that never reaches these
//! states fails instead of passing vacuously.
//!
//! This file holds the model: the generated actions, the world's state and the checks once a
//! history settled. The world's steps and checks are in [`world`]; the tests in [`properties`]
//! (generated histories and shutdowns), [`fixed_histories`] (histories the properties once found)
//! and [`scenarios`] (hand-written cases of single hazards).

use forge_core::decision::{Lifecycle, Mono};
use model_world::{RENEW_DEADLINE, Running, Timers, cases, wall_at};
use proptest::prelude::*;

mod fixed_histories;
mod follow_up;
#[path = "../support/model_world.rs"]
mod model_world;
mod properties;
mod reload_room;
mod scenarios;
mod world;

/// One step of the world.
#[derive(Debug, Clone)]
enum Action {
    /// Carry out the next command of the plan in flight (a slow plan: one command a step).
    Progress,
    /// Time passes (timers due in between fire first).
    Advance(u64),
    NodeUp,
    /// A node process comes up forging with keys it read at its start, whatever the files are
    /// now: started without `--start-as-non-producing-node` while files were present, a stop
    /// reload lost in its replay (F12), at any point, also while a plan that stops forging or
    /// gives the lease up is in flight. With boot credentials only when they are present (the
    /// boot files, read by a node that was started without the non-producing flag).
    NodeUpForging,
    NodeDown,
    CredentialsValid,
    CredentialsInvalid,
    LeaseAcquired,
    LeaseRenewed,
    LeaseLost,
    /// The node guard fenced the node (permit lapsed).
    Fenced,
    Heartbeat,
    Rotated,
    Shutdown,
    /// Our next leader slot starts this many milliseconds from now (`LEADER_SCHEDULE`).
    Schedule(u64),
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => Just(Action::Progress),
        4 => (1u64..4_000).prop_map(Action::Advance),
        2 => Just(Action::NodeUp),
        1 => Just(Action::NodeUpForging),
        1 => Just(Action::NodeDown),
        2 => Just(Action::CredentialsValid),
        1 => Just(Action::CredentialsInvalid),
        3 => Just(Action::LeaseAcquired),
        3 => Just(Action::LeaseRenewed),
        1 => Just(Action::LeaseLost),
        1 => Just(Action::Fenced),
        2 => Just(Action::Heartbeat),
        1 => Just(Action::Rotated),
        1 => (0u64..30_000).prop_map(Action::Schedule),
    ]
}

struct World {
    life: Lifecycle,
    boot_credentials: bool,
    now: Mono,
    /// Failure probability of a command, in percent (0 once settling).
    fail_percent: u32,
    rng: u64,
    running: Option<Running>,
    timers: Timers,
    files: bool,
    node_up: bool,
    node_forging: bool,
    ever_forged: bool,
    exits: u32,
    exit_confirmed: Option<bool>,
    /// Whether the node forged when the lifecycle exited (a node process that comes up after
    /// the exit is no longer this process's to stop).
    forging_at_exit: bool,
    /// When the lifecycle asked every PeerWatcher to read now (`Effect::PollPeers`).
    polls: Vec<Mono>,
    /// A start-up reload found no node (no boot credentials): the NodeSignaller sends it to the
    /// first node process that appears (F7).
    startup_pending: bool,
    /// How often the hand-over gate stopped a plan (a node process came up during it).
    gated: u32,
    /// How often a reload that does not stop forging was deferred for lack of room before the
    /// renew deadline (F21).
    deferred: u32,
}

/// The model's `STOP_GRACE`: a reload that does not stop forging leaves at least this much
/// before the renew deadline when it is planned (F21).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What must hold once a history settled (no failures left, every plan carried out).
fn check_settled(w: &World) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        w.node_forging,
        w.life.current().forge && w.node_up,
        "settled, the node forges exactly as decided"
    );
    let should = w.life.next_decision(w.now, wall_at(w.now)).forge;
    prop_assert_eq!(
        w.life.current().forge,
        should,
        "settled, the decision in force is the current one"
    );
    if w.boot_credentials && !w.life.current().forge {
        prop_assert_eq!(
            w.files,
            !w.node_up,
            "boot credentials present exactly while the node is down"
        );
    }
    if !w.boot_credentials && !w.life.current().forge {
        prop_assert!(!w.files, "a standby keeps no credentials");
    }
    Ok(())
}
