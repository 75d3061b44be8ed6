//! F21's reload room: a start, a rotation or a re-assert planned with less than the room left
//! before the renew deadline waits for the next renewal (or, without one, never goes).

use forge_core::decision::{Command, ReloadReason};

use super::{Action, RENEW_DEADLINE, World, check_settled, wall_at};

/// The plan in flight's commands, if any.
fn running_commands(w: &World) -> Option<Vec<Command>> {
    w.running.as_ref().map(|r| r.run.commands.clone())
}

/// A leader whose node is up, its credentials not yet known valid: settled, not forging.
fn leader_with_credentials_unknown() -> World {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    for a in [
        Progress,
        Progress,
        Progress,
        NodeUp,
        Progress,
        Progress,
        LeaseAcquired,
    ] {
        w.act(&a).expect("valid steps");
    }
    w.settle().expect("settles");
    w
}

/// F21: `action` 1.5 s before the renew deadline of the lease `w` holds plans nothing and reports
/// the deferral (`what` names what would be planned); returns what the next renewal plans.
fn deferred_until_the_renewal(w: &mut World, action: Action, what: &str) -> Option<Vec<Command>> {
    let left = w
        .life
        .state()
        .lease
        .deadline()
        .expect("held")
        .saturating_since(w.now);
    w.act(&Action::Advance(left.as_millis() as u64 - 1_500))
        .expect("time passes");
    w.act(&action).expect("the action");
    assert_eq!(running_commands(w), None, "no {what} 1.5 s before the deadline");
    assert_eq!(w.deferred, 1, "the deferral is reported");
    w.act(&Action::LeaseRenewed).expect("renewed");
    running_commands(w)
}

/// F21: a start that would leave the stop at the renew deadline less than `STOP_GRACE` to wait
/// for it is not planned; the next renewal plans it.
#[test]
fn a_start_too_close_to_the_renew_deadline_waits_for_the_next_renewal() {
    use Action::*;
    let mut w = leader_with_credentials_unknown();
    assert!(!w.life.current().forge, "credentials unknown: no start yet");
    // 1.5 s before the renew deadline the credentials turn valid: the start would leave the
    // stop there less than STOP_GRACE (2 s).
    w.act(&Advance(RENEW_DEADLINE.as_millis() as u64 - 1_500))
        .expect("time passes");
    w.act(&CredentialsValid).expect("valid");
    assert!(
        w.life.next_decision(w.now, wall_at(w.now)).forge,
        "the decision forges"
    );
    assert_eq!(
        running_commands(&w),
        None,
        "no start planned 1.5 s before the deadline"
    );
    assert_eq!(w.deferred, 1, "the deferral is reported");
    w.act(&Heartbeat).expect("a heartbeat");
    assert_eq!(running_commands(&w), None, "still no room");
    assert_eq!(w.deferred, 1, "reported once");
    // The renewal moves the deadline: the start goes.
    w.act(&LeaseRenewed).expect("renewed");
    let start = running_commands(&w).expect("the start is planned after the renewal");
    assert!(start.contains(&Command::Install), "{start:?}");
    w.settle().expect("settles");
    assert!(w.node_forging, "forging after the renewal");
    check_settled(&w).expect("settled");
}

/// F21: with no renewal, the deferred start is never planned, and the deadline's wake-up
/// leaves the decision in force matching the decision (standby).
#[test]
fn a_start_deferred_at_the_renew_deadline_without_a_renewal_never_goes() {
    use Action::*;
    let mut w = leader_with_credentials_unknown();
    w.act(&Advance(RENEW_DEADLINE.as_millis() as u64 - 1_000))
        .expect("time passes");
    w.act(&CredentialsValid).expect("valid");
    assert_eq!(running_commands(&w), None);
    w.act(&Advance(2_000)).expect("the deadline passes");
    w.settle().expect("settles");
    assert!(!w.ever_forged, "nothing started past the room");
    check_settled(&w).expect("settled");
}

/// F21: a rotation 1.5 s before the renew deadline is not installed then, and not lost: the
/// next renewal installs it.
#[test]
fn a_rotation_too_close_to_the_renew_deadline_is_installed_after_the_next_renewal() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    w.settle().expect("settles");
    assert!(w.node_forging, "the leader forges");
    assert_eq!(
        deferred_until_the_renewal(&mut w, Rotated, "rotation"),
        Some(vec![
            Command::Install,
            Command::Reload {
                reason: ReloadReason::Rotation
            }
        ]),
        "the rotation is installed after the renewal"
    );
    w.settle().expect("settles");
    check_settled(&w).expect("settled");
}

/// F21: a re-assert due 1.5 s before the renew deadline is not sent then; the next renewal
/// sends it.
#[test]
fn a_reassert_too_close_to_the_renew_deadline_is_sent_after_the_next_renewal() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    while w.running.is_some() {
        w.act(&Progress).expect("the start");
    }
    assert!(w.node_forging, "the leader forges");
    // Inside the node's start-up window (20 s), a re-assert is due every 4 s: one falls due at
    // the heartbeat.
    assert_eq!(
        deferred_until_the_renewal(&mut w, Heartbeat, "re-assert"),
        Some(vec![Command::Reload {
            reason: ReloadReason::Reassert
        }]),
        "the re-assert is sent after the renewal"
    );
    w.settle().expect("settles");
    check_settled(&w).expect("settled");
}
