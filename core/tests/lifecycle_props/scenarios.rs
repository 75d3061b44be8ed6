//! Hand-written cases of single hazards: stale status writes, a node that comes up forging while
//! we are a standby or during a stop, the claim's peer read, a SIGTERM before our leader slot, and
//! whether the models reach forging at all.

use std::time::Duration;

use forge_core::decision::{Command, Event, Input, ReloadReason};
use jiff::SignedDuration;

use super::{Action, RENEW_DEADLINE, World, check_settled, wall_at};

/// A status write sent in one lease tenure confirms no claim in the next: the plan that carried
/// it spanned a loss and a new acquisition.
#[test]
fn a_status_write_from_an_earlier_tenure_confirms_no_claim() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    let plan = w
        .running
        .as_ref()
        .expect("the starting plan runs")
        .run
        .commands
        .clone();
    assert!(
        matches!(plan.first(), Some(Command::WriteStatus(r)) if r.forging_enabled),
        "the claim comes first: {plan:?}"
    );
    w.act(&Progress).expect("the claim is written in this tenure");
    w.act(&LeaseLost).expect("lost");
    w.act(&LeaseAcquired).expect("a new tenure");
    while w.running.as_ref().is_some_and(|r| r.run.commands == plan) {
        w.act(&Progress).expect("the rest of the plan");
    }
    assert_eq!(
        w.life.state().own.claim_at,
        None,
        "the old tenure's write confirmed the new tenure's claim"
    );
}

/// F12: a node process that comes up forging while we are a standby (started producing with
/// files present then) is reloaded once up, with the credential targets absent, and stops; a
/// reload that fails is retried after the hold.
#[test]
fn a_new_node_process_that_forges_while_we_are_a_standby_is_reloaded() {
    use Action::*;
    for fail_first in [false, true] {
        let mut w = World::new(false, 0, 1);
        for a in [Progress, Progress, Progress, NodeUp, NodeDown] {
            w.act(&a).expect("valid steps");
        }
        assert!(w.running.is_none() && !w.life.current().forge, "an idle standby");
        w.act(&NodeUpForging).expect("a producing node restarts");
        assert!(w.node_forging, "the model's node forges from its start");
        let run = w.running.as_ref().expect("a plan for the new node").run.clone();
        assert_eq!(run.step, "standby_reload");
        assert_eq!(
            run.commands,
            vec![Command::Reload {
                reason: ReloadReason::Startup
            }]
        );
        if fail_first {
            w.fail_percent = 100;
            w.act(&Progress).expect("the reload fails");
            w.fail_percent = 0;
            assert!(w.node_forging && w.running.is_none(), "held after the failure");
            w.act(&Advance(2_000)).expect("the hold ends");
            assert_eq!(
                w.running.as_ref().map(|r| r.run.step),
                Some("standby_reload"),
                "retried after the hold"
            );
        }
        w.settle().expect("settles");
        assert!(!w.node_forging, "the new node was told there are no credentials");
        check_settled(&w).expect("settled");
    }
}

/// L1-c: evidence about a peer counts only when read after our claim was confirmed; the
/// confirmation itself asks every PeerWatcher to read at once, instead of leaving the start to
/// wait up to a poll period.
#[test]
fn a_confirmed_claim_asks_the_peers_to_be_read_at_once() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    assert!(w.polls.is_empty(), "no claim confirmed yet: {:?}", w.polls);
    while w.running.is_some() {
        w.act(&Progress).expect("the starting plan");
    }
    assert!(w.life.state().own.claim_at.is_some(), "the claim is confirmed");
    assert_eq!(w.polls, vec![w.now], "peers read at the confirmation");
}

/// SIGTERM a few seconds before one of our leader slots: the shutdown plan waits until the slot
/// has ended, unless the hold is longer than allowed, and never past a stop the decision itself
/// calls for (here: the lease lost).
#[test]
fn a_sigterm_just_before_our_leader_slot_waits_for_the_slot_unless_a_stop_is_due() {
    use Action::*;
    let forging_world = |hold_max_s: u64| {
        let mut w = World::with_hold(false, 0, 3, Duration::from_secs(hold_max_s));
        w.elect().expect("valid steps");
        w.settle().expect("settles");
        assert!(w.node_forging, "the leader forges");
        // One of our slots starts in 5 s (slots last 1 s).
        let slot = wall_at(w.now) + SignedDuration::from_secs(5);
        w.input(Input::Fact(Event::LeaderScheduleChanged { slots: vec![slot] }))
            .expect("schedule");
        w
    };
    let shutdown_plan_started = |w: &World| w.running.as_ref().is_some_and(|r| r.run.step == "shutdown");

    // Held: nothing is sent until the slot has ended (6 s), then the shutdown plan runs.
    let mut w = forging_world(20);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(!shutdown_plan_started(&w), "held for the slot");
    w.act(&LeaseRenewed).expect("renewed");
    w.act(&Advance(5_500)).expect("in the slot");
    assert!(
        !shutdown_plan_started(&w) && w.node_forging,
        "still forging through the slot"
    );
    w.act(&LeaseRenewed).expect("renewed");
    w.act(&Advance(600)).expect("the slot has ended");
    assert!(
        shutdown_plan_started(&w),
        "the shutdown runs once the slot has passed"
    );
    w.settle().expect("settles");
    assert_eq!((w.exits, w.node_forging), (1, false));

    // A hold longer than allowed: no hold.
    let mut w = forging_world(3);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(shutdown_plan_started(&w), "not held past the allowed wait");

    // The lease is lost during the hold: the stop is not held.
    let mut w = forging_world(20);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(!shutdown_plan_started(&w));
    w.act(&LeaseLost).expect("lost");
    assert!(shutdown_plan_started(&w), "a lost lease ends the hold at once");
}

/// The generated histories are not vacuous: a fair share of them made the node forge.
#[test]
fn the_models_reach_forging() {
    // Runs after (or alongside) the property above in the same binary; run it on its own to be
    // sure of the order: the counts are printed either way.
    let mut w = World::new(false, 0, 7);
    for a in [
        Action::NodeUp,
        Action::CredentialsValid,
        Action::LeaseAcquired,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
    ] {
        w.act(&a).expect("valid step");
    }
    w.settle().expect("settles");
    assert!(
        w.node_forging,
        "node up, credentials valid, lease held: the node forges"
    );
    // Past the renew deadline with no renewal the stop plan runs at the timer.
    w.advance(RENEW_DEADLINE.as_millis() as u64 + 1).expect("timer");
    w.settle().expect("settles");
    assert!(!w.node_forging, "past the renew deadline the node stopped");
}

/// F12 during a stop: the leader's stop plan has removed the credentials and sent its reload to
/// the old process, which is gone; a new node process comes up forging with the keys it read at
/// its start. Nothing is given up (claim, contention, lease) until that process has been
/// reloaded too; the world checks at the release that the node does not forge. The same for the
/// shutdown plan, and for a new process seen only after the shutdown's release (it is told
/// before the process exits).
#[test]
fn a_node_process_that_comes_up_forging_during_a_stop_is_stopped_before_the_hand_over() {
    use Action::*;
    let forging = || {
        let mut w = World::new(false, 0, 5);
        w.elect().expect("valid steps");
        w.settle().expect("settles");
        assert!(w.node_forging, "the leader forges");
        w
    };
    let step = |w: &World| w.running.as_ref().map(|r| r.run.step);
    let reloads = |w: &World| {
        w.running.as_ref().map_or(0, |r| {
            r.run
                .commands
                .iter()
                .filter(|c| matches!(c, Command::Reload { .. }))
                .count()
        })
    };

    for stop in [CredentialsInvalid, Shutdown] {
        let mut w = forging();
        w.act(&stop).expect("the stop starts");
        let plan = w.running.as_ref().expect("a stop plan").run.clone();
        assert!(plan.commands.contains(&Command::Release), "{plan:?}");
        w.act(&Progress).expect("Remove");
        w.act(&NodeDown).expect("the old process is gone");
        w.act(&Progress).expect("its reload finds no node");
        w.act(&NodeUpForging)
            .expect("a new process forges from its start");
        assert!(w.node_forging);
        // The gate: the next command would give something up; the plan stops and the stop is
        // planned again for the new process (every command checked by the world).
        while w.running.as_ref().is_some_and(|r| r.run == plan) {
            w.act(&Progress).expect("nothing given up");
        }
        assert_eq!(w.gated, 1, "{stop:?}: the hand-over gate stopped the plan");
        assert_eq!(step(&w), Some(plan.step), "{stop:?}: the stop again");
        assert_eq!(reloads(&w), 1, "{stop:?}: it reloads the new process");
        w.settle().expect("no release while the new process forges");
        assert!(!w.node_forging, "{stop:?}: the new process was told");
        if matches!(stop, Shutdown) {
            assert_eq!((w.exits, w.exit_confirmed), (1, Some(true)));
        }
    }

    // After the shutdown's release, before it exits: the new process is reloaded first.
    let mut w = forging();
    w.act(&Shutdown).expect("SIGTERM");
    let plan = w.running.as_ref().expect("the shutdown plan").run.clone();
    for _ in &plan.commands {
        w.act(&Progress).expect("every command sent");
    }
    w.act(&NodeDown).expect("gone");
    w.act(&NodeUpForging).expect("a new process after the release");
    w.act(&Progress).expect("the plan's end reported");
    assert_eq!(w.exits, 0, "not exited with a forging node seen");
    assert_eq!(
        w.running.as_ref().map(|r| r.run.commands.clone()),
        Some(vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::Shutdown
            }
        ])
    );
    w.settle().expect("settles");
    assert_eq!((w.exits, w.node_forging), (1, false));
}

/// Quorum mode releases the forge tickets once the lifecycle counts the node as stopped
/// (`ticket_intent().stopped`, after the stop is adopted). A node process that comes up forging
/// after the stop plan's last command went out, before its end is reported, has had no reload
/// of it: the stop runs again for that process, and until it is done the node does not count
/// as stopped (the tickets stay held).
#[test]
fn a_node_process_that_comes_up_forging_as_a_stop_ends_keeps_the_node_from_counting_as_stopped() {
    use Action::*;
    let mut w = World::new(false, 0, 5);
    w.elect().expect("valid steps");
    w.settle().expect("settles");
    assert!(w.node_forging, "the leader forges");
    let stopped = |w: &World| w.life.ticket_intent(w.now, wall_at(w.now)).stopped;
    assert!(!stopped(&w));
    w.act(&CredentialsInvalid).expect("the stop starts");
    let plan = w.running.as_ref().expect("a stop plan").run.clone();
    for _ in 0..plan.commands.len() {
        w.act(&Progress).expect("every command of the stop");
    }
    assert!(!w.node_forging, "the old process was told");
    w.act(&NodeDown).expect("the old process is gone");
    w.act(&NodeUpForging)
        .expect("a new process forges from its start");
    w.act(&Progress).expect("the stop plan's end is reported");
    assert!(w.node_forging);
    assert!(
        !stopped(&w),
        "the node counts as stopped (quorum mode would release the tickets) while a process that came up during the stop forges"
    );
    let again = w.running.as_ref().expect("the stop again").run.clone();
    assert!(
        again.commands.iter().any(|c| matches!(c, Command::Reload { .. })),
        "{again:?}"
    );
    w.settle().expect("settles");
    assert!(!w.node_forging, "the new process was told");
    assert!(stopped(&w), "stopped once the new process was told");
}

/// F25: a stop retried after a failed removal, planned once the renew deadline of a lease we
/// have not lost had passed (its renewals' facts were late), still withdraws the claim before
/// the lease is handed over: the stop goes ahead at once, and the withdrawal and the release
/// follow the lease's next fact. It used to adopt "no claim" without writing it and release,
/// leaving the status saying we forge.
#[test]
fn a_stop_retried_past_the_renew_deadline_still_withdraws_the_claim_before_the_release() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    w.settle().expect("settles");
    assert!(w.node_forging, "the leader forges");
    w.act(&CredentialsInvalid).expect("the stop is planned");
    let first = w.running.as_ref().expect("the stop runs").run.commands.clone();
    assert_eq!(
        first[..2],
        [
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging
            }
        ]
    );
    assert!(
        first
            .iter()
            .any(|c| matches!(c, Command::WriteStatus(r) if !r.forging_enabled)),
        "the first stop withdraws the claim: {first:?}"
    );
    // The removal hangs past the renew deadline, then fails; no renewal has been heard of.
    w.act(&Advance(RENEW_DEADLINE.as_millis() as u64))
        .expect("time passes");
    assert!(!w.life.state().lease.is_current(w.now), "past the renew deadline");
    w.fail_percent = 100;
    w.act(&Progress).expect("the removal fails");
    w.fail_percent = 0;
    let retry = w
        .running
        .as_ref()
        .expect("the stop is retried at once")
        .run
        .commands
        .clone();
    assert_eq!(
        retry,
        [
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::StopForging
            }
        ],
        "the stop goes ahead; nothing is given up while the claim cannot be withdrawn"
    );
    while w.running.is_some() {
        w.act(&Progress).expect("the retried stop");
    }
    assert!(!w.node_forging, "stopped");
    assert!(
        w.life.current().claim,
        "the claim is still in force: nobody withdrew it"
    );
    // The late renewal arrives: the claim is withdrawn, then the lease handed over.
    w.act(&LeaseRenewed).expect("renewed");
    w.act(&Advance(1_000)).expect("the failed plan's hold ends");
    let handover = w
        .running
        .as_ref()
        .expect("the hand-over runs")
        .run
        .commands
        .clone();
    assert!(
        matches!(handover.first(), Some(Command::WriteStatus(r)) if !r.forging_enabled),
        "the claim is withdrawn first: {handover:?}"
    );
    assert_eq!(handover[1..], [Command::Contend(false), Command::Release]);
    w.settle().expect("settles");
    assert!(!w.life.current().claim);
    check_settled(&w).expect("settled");
}

/// F25, the other way: when the late fact is the lease's loss, nothing is left to write (the
/// next holder writes its own status) and contention stops.
#[test]
fn a_claim_kept_past_the_renew_deadline_is_dropped_when_the_lease_is_lost() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    w.settle().expect("settles");
    w.act(&CredentialsInvalid).expect("the stop is planned");
    w.act(&Advance(RENEW_DEADLINE.as_millis() as u64))
        .expect("time passes");
    w.fail_percent = 100;
    w.act(&Progress).expect("the removal fails");
    w.fail_percent = 0;
    while w.running.is_some() {
        w.act(&Progress).expect("the retried stop");
    }
    w.act(&LeaseLost).expect("lost");
    w.act(&Advance(1_000)).expect("the failed plan's hold ends");
    let rest = w.running.as_ref().expect("contention stops").run.commands.clone();
    assert_eq!(rest, [Command::Contend(false), Command::Release]);
    w.settle().expect("settles");
    assert!(!w.life.current().claim && !w.life.current().contend);
    check_settled(&w).expect("settled");
}
