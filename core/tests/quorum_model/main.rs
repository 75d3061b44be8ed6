//! Model check of quorum mode (docs/quorum.md, "The model check"), with the `stateright` model
//! checker: every reachable state of a bounded model of regions, witnesses and their API servers.
//!
//! The model drives the production rules of `forge_core::quorum`: the acquisition rule
//! ([`ticket_verdict`]), yield then release ([`want`]) and the forge deadline ([`standing`]);
//! what it adds is the world around them:
//!
//! - **Time.** Abstract real time in ticks. Each region's monotonic clock runs at its own fixed
//!   rate, 4 or 5 local units per tick (every combination is an initial state): a clock-rate
//!   difference of 25 %, far beyond the 1 % the configuration allows for. Ticket duration 16
//!   units, renew deadline 6, renewal every 4 (the keeper's retry period), and a node that goes
//!   on forging for 4 units after its permit ends (its reload).
//! - **Start.** Region 0 holds every ticket and forges; everyone has seen it.
//! - **Requests.** In each tick every region runs one round: one request per participant, the
//!   one the rules call for (read, version-checked write, release). Each request is applied at
//!   once or lost; each answer arrives or is lost (so a write may land without its writer
//!   knowing), within a budget of lost messages per run (at most one per round). Regions' rounds
//!   interleave in any order, so answers arrive in any order relative to other regions' writes.
//! - **Faults.** Message loss (above), a crash of a region's manager (its state is lost, it
//!   sends nothing until it restarts, if ever, and its node keeps forging until its permit
//!   ends: a dead region, or a hung or paused manager), partitions (a region cut from some servers: in
//!   the fair models; in the safety models a partition is a run of losses), and in the safety
//!   models any region may start or stop contending at the start of any tick (the decision
//!   engine is adversarial).
//!
//! Properties:
//! - **S1**: in every reachable state at most one region's node forges.
//! - **Liveness** (fair models: no loss, the partition fixed from the start): the primary, cut
//!   off from every server but its own, holds every ticket and forges at tick 0; the best region
//!   of the majority side forges before the horizon. The horizon is the bound the argument
//!   gives: a full ticket duration on the slowest clock, plus one round to write.
//!
//! Bounds (so the whole check stays under about two minutes on two cores, in the test profile):
//! the horizon in ticks (7 ticks, nearly two ticket lifetimes, without loss; 3 ticks with one lost
//! message), at most one crash, 2 or 3 regions. `QUORUM_MODEL_HORIZON` and
//! `QUORUM_MODEL_LOSSES` raise the safety models' bounds for a longer run.
//!
//! The model itself (its state, actions and properties) is in [`model`]; this file runs the
//! checker on it, with the bounds above, and holds the checks.
use forge_core::quorum::majority;
use model::{DURATION, QuorumModel, RENEW_DEADLINE};
use stateright::{Checker, Model};

mod model;

struct Outcome {
    states: usize,
    depth: usize,
}

fn check(model: QuorumModel) -> Outcome {
    let label = format!(
        "{} regions + {} witnesses ({} participants, majority {}), {}, horizon {} ticks",
        model.regions,
        model.witnesses,
        model.participants(),
        majority(model.participants()),
        if model.lossy {
            "loss/reorder/crash/adversarial intent"
        } else {
            "fair, primary partitioned"
        },
        model.horizon
    );
    let started = std::time::Instant::now();
    let checker = model.checker().threads(2).spawn_bfs().join();
    let out = Outcome {
        states: checker.unique_state_count(),
        depth: checker.max_depth(),
    };
    eprintln!(
        "quorum model: {label}: {} unique states, max depth {}, {:.1} s",
        out.states,
        out.depth,
        started.elapsed().as_secs_f64()
    );
    checker.assert_properties();
    out
}

fn losses(default: u8) -> u8 {
    std::env::var("QUORUM_MODEL_LOSSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn horizon(default: u16) -> u16 {
    std::env::var("QUORUM_MODEL_HORIZON")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A lossy safety model: `losses` messages may be lost, one crash, adversarial intent.
fn safety(regions: usize, witnesses: usize, default_horizon: u16, default_losses: u8) -> Outcome {
    check(QuorumModel {
        regions,
        witnesses,
        horizon: horizon(default_horizon),
        lossy: true,
        max_crashes: 1,
        max_losses: losses(default_losses),
        renew_deadline: RENEW_DEADLINE,
    })
}

#[test]
fn at_most_one_forger_with_two_regions_and_a_witness_when_a_message_is_lost() {
    let out = safety(2, 1, 3, 1);
    assert!(
        out.states > 10_000,
        "the model explored only {} states",
        out.states
    );
}

#[test]
fn at_most_one_forger_with_two_regions_and_a_witness_over_two_ticket_lifetimes() {
    // 7 ticks: the holder's tickets can expire (16 units on a clock of 4 or 5 a tick) and be
    // taken, with a crash and any change of intent on the way.
    safety(2, 1, 7, 0);
}

#[test]
fn at_most_one_forger_with_three_regions() {
    safety(3, 0, 3, 0);
}

#[test]
fn at_most_one_forger_with_five_participants_when_a_message_is_lost() {
    safety(2, 3, 3, 1);
}

#[test]
fn at_most_one_forger_with_five_participants_over_two_ticket_lifetimes() {
    safety(2, 3, 7, 0);
}

#[test]
fn the_majority_side_takes_over_from_a_partitioned_primary() {
    // Slowest clock 4 units per tick: the primary's tickets expire for the others at tick
    // 16 / 4 = 4, whose round writes them; forging follows in that tick, so by the horizon 5.
    for (regions, witnesses) in [(2, 1), (3, 0), (3, 2), (2, 3)] {
        check(QuorumModel {
            regions,
            witnesses,
            horizon: 5,
            lossy: false,
            max_crashes: 0,
            max_losses: 0,
            renew_deadline: RENEW_DEADLINE,
        });
    }
}

#[test]
fn the_model_finds_two_forgers_when_the_renew_deadline_leaves_no_margin() {
    // The check can fail: with the renew deadline equal to the duration, the node's stop and
    // the clock-rate difference no longer fit, and once the holder's manager crashes (its node
    // forging on until its permit ends) another region takes the tickets and forges too.
    let model = QuorumModel {
        regions: 2,
        witnesses: 1,
        horizon: 7,
        lossy: true,
        max_crashes: 1,
        max_losses: 0,
        renew_deadline: DURATION,
    };
    let checker = model.checker().threads(2).spawn_bfs().join();
    let path = checker.assert_any_discovery("S1: at most one forger");
    eprintln!(
        "quorum model: no margin: two forgers after {} steps",
        path.into_actions().len()
    );
}
