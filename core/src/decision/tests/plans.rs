//! The order of the commands in a plan: stop, start, shutdown and startup, the status write
//! past the deadline, the first contention, a claim from an earlier tenure.

use super::*;

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
