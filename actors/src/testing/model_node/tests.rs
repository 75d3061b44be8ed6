//! The model the test fleet judges S1 and S2 with: when the node forges, what its guard allows,
//! and what the guard reports.

use std::sync::{Arc, Mutex};

use forge_core::credentials::CredentialSet;
use forge_guard::protocol::{GuardState, Observation, Request};
use futures::{FutureExt, StreamExt, stream::BoxStream};
use rustix::process::Signal;

use super::ModelNode;
use crate::{
    clock::Clock,
    ports::{CredentialContents, CredentialStore, GuardError, GuardReport, NodeGuard, NodeHost, SecretBytes},
    testing::{InMemory, MemoryCluster, config},
};

const PID: i32 = 4242;

/// A model node of a fresh world (no process, no guard, no files).
fn model() -> ModelNode {
    let cfg = config(&[("POD_NAME", "pod-a")]);
    ModelNode::of(&InMemory::new(&cfg, &MemoryCluster::new(&cfg), Clock::new()))
}

fn files() -> CredentialContents {
    CredentialSet {
        kes: SecretBytes::new(b"kes".to_vec()),
        vrf: SecretBytes::new(b"vrf".to_vec()),
        opcert: SecretBytes::new(b"opcert".to_vec()),
    }
}

/// The credential files are written (as the CredentialKeeper's install does).
fn install(node: &ModelNode) {
    node.credentials.install(&files()).expect("installed");
}

/// A permit for a minute.
fn permit() -> Request {
    Request::Permit {
        deadline_mono_ns: forge_guard::monotonic_now_ns() + 60_000_000_000,
    }
}

async fn ask(node: &ModelNode, req: Request) -> Result<GuardState, GuardError> {
    node.request(req).await
}

async fn subscribed(node: &ModelNode) -> BoxStream<'static, GuardReport> {
    let mut reports = node.subscribe().await.expect("the guard runs");
    let first = reports.next().await.expect("the subscription's answer");
    assert_eq!(first.event, None, "the first item is the state, not a push");
    reports
}

/// The pushes received so far: (event, the state's `forging`, its `last`).
fn pushed(reports: &mut BoxStream<'static, GuardReport>) -> Vec<(String, Option<bool>, Option<Observation>)> {
    let mut out = Vec::new();
    while let Some(Some(r)) = reports.next().now_or_never() {
        out.push((r.event.unwrap_or_default(), r.state.forging, r.state.last));
    }
    out
}

#[tokio::test]
async fn before_its_first_start_there_is_no_guard_and_nothing_forges() {
    let node = model();
    assert!(!node.present());
    assert!(matches!(
        ask(&node, Request::State).await,
        Err(GuardError::Gone { .. })
    ));
    assert!(node.subscribe().await.is_err());
    assert!(!node.forging());
    assert!(node.forging_changes().is_empty());
}

#[tokio::test]
async fn a_node_forges_from_its_start_exactly_when_it_starts_producing_with_its_files_present() {
    let with_files = model();
    install(&with_files);
    let identity = with_files.start(PID, false);
    assert!(with_files.forging());
    assert!(with_files.present(), "its guard runs with it");
    assert_eq!(with_files.guard.state().forging, Some(true));
    assert_eq!(with_files.guard.state().child_pid, 4242);
    assert_eq!(with_files.node.process(), Some(identity));

    let non_producing = model();
    install(&non_producing);
    non_producing.start(PID, true);
    assert!(
        !non_producing.forging(),
        "--start-as-non-producing-node reads no files"
    );
    let cmdline = non_producing.cmdline(PID).expect("visible");
    assert!(
        cmdline.iter().any(|a| a == "--start-as-non-producing-node"),
        "{cmdline:?}"
    );

    let without_files = model();
    without_files.start(PID, false);
    assert!(!without_files.forging());
    assert_ne!(without_files.guard.state().forging, Some(true));
}

#[tokio::test]
async fn a_reload_while_files_exist_is_refused_without_a_permit_and_forges_with_one() {
    let node = model();
    install(&node);
    node.start(PID, true);
    let mut reports = subscribed(&node).await;

    let refused = ask(&node, Request::Reload).await.expect_err("no permit");
    assert!(
        matches!(&refused, GuardError::Refused { kind, .. } if kind == "no_permit"),
        "{refused}"
    );
    assert!(!node.forging(), "a refused reload does not reach the node");
    assert!(pushed(&mut reports).is_empty());

    let permitted = ask(&node, permit()).await.expect("a permit is granted");
    assert!(permitted.permit_ms.is_some());
    let answer = ask(&node, Request::Reload).await.expect("a permitted reload");
    assert!(node.forging());
    assert_eq!(
        answer.forging,
        Some(true),
        "answered with the state after the reload"
    );
    assert_eq!(
        pushed(&mut reports),
        vec![("observed".into(), Some(true), Some(Observation::Enabled))]
    );
}

#[tokio::test]
async fn a_reload_after_the_files_are_removed_needs_no_permit_and_stops_forging() {
    let node = model();
    install(&node);
    node.start(PID, false);
    let mut reports = subscribed(&node).await;
    node.credentials.remove().expect("removed");
    assert!(
        node.forging(),
        "the node forges from memory until it re-reads its files"
    );

    ask(&node, Request::Reload)
        .await
        .expect("nothing to guard: no files");
    assert!(!node.forging());
    assert_eq!(
        pushed(&mut reports),
        vec![("observed".into(), Some(false), Some(Observation::Disabled))]
    );
}

#[tokio::test]
async fn a_revoke_fences_a_node_whose_files_exist_and_changes_nothing_else_without_them() {
    let node = model();
    install(&node);
    node.start(PID, false);
    ask(&node, permit()).await.expect("permit");
    let mut reports = subscribed(&node).await;

    let answer = ask(&node, Request::Revoke).await.expect("revoked");
    assert_eq!(answer.permit_ms, None, "the permit is gone");
    assert!(node.credentials.present().is_empty(), "the files are removed");
    assert!(!node.forging(), "and the node reloaded without them");
    assert_eq!(
        pushed(&mut reports),
        vec![("observed".into(), Some(false), Some(Observation::Disabled))]
    );

    ask(&node, Request::Revoke).await.expect("revoked again");
    assert!(
        pushed(&mut reports).is_empty(),
        "no files, no reload: nothing to report"
    );
    let requests = node.guard.requests();
    assert!(
        matches!(
            requests.as_slice(),
            [Request::Permit { .. }, Request::Revoke, Request::Revoke]
        ),
        "every request reaches the guard: {requests:?}"
    );
}

#[tokio::test]
async fn a_sighup_by_pid_makes_the_running_node_read_its_files_again() {
    let node = model();
    install(&node);
    let identity = node.start(PID, true);
    let mut reports = subscribed(&node).await;

    node.signal(identity, Signal::HUP).expect("delivered");
    assert!(node.forging(), "the files are read: the node forges");
    assert_eq!(
        pushed(&mut reports),
        vec![("observed".into(), Some(true), Some(Observation::Enabled))],
        "the guard sees the node reconfigure whoever sent the SIGHUP"
    );
    node.signal(identity, Signal::TERM).expect("delivered");
    assert!(node.forging(), "only a SIGHUP reloads");

    node.credentials.remove().expect("removed");
    node.signal(identity, Signal::HUP).expect("delivered");
    assert!(!node.forging());
    assert_eq!(node.node.signals().len(), 3);
}

#[tokio::test]
async fn an_exit_stops_forging_reports_exited_and_takes_the_guard_with_it() {
    let node = model();
    install(&node);
    let identity = node.start(PID, false);
    let mut reports = subscribed(&node).await;

    node.exit();
    assert!(!node.forging());
    let rest: Vec<GuardReport> = reports.by_ref().collect().await;
    assert_eq!(rest.len(), 1, "`exited`, then the subscription ends: {rest:?}");
    assert_eq!(
        (rest[0].event.as_deref(), rest[0].state.forging),
        (Some("exited"), Some(false))
    );
    assert!(!node.present());
    assert!(matches!(
        ask(&node, Request::Reload).await,
        Err(GuardError::Gone { .. })
    ));
    assert!(
        node.signal(identity, Signal::HUP).is_err(),
        "no process to signal"
    );
    assert_eq!(
        node.credentials.installed(),
        Some(files()),
        "an exit leaves the files"
    );

    // The next process is another one (same PID, new start time), read its files at its start.
    let next = node.start(PID, false);
    assert_ne!(next, identity);
    assert!(node.forging() && node.present());
}

#[tokio::test]
async fn a_lapsed_permit_fences_on_the_guards_own_account() {
    let node = model();
    install(&node);
    node.start(PID, true);
    ask(&node, permit()).await.expect("permit");
    ask(&node, Request::Reload).await.expect("reload");
    assert!(node.forging());
    let mut reports = subscribed(&node).await;

    node.lapse();
    assert!(!node.forging());
    assert!(node.credentials.present().is_empty(), "the files are removed");
    assert_eq!(node.guard.state().permit_ms, None);
    assert_eq!(
        pushed(&mut reports),
        vec![("lapsed".into(), Some(false), Some(Observation::Disabled))]
    );
}

#[tokio::test]
async fn a_node_started_forging_forges_without_files_until_it_reloads() {
    let node = model();
    node.start_forging(PID);
    assert!(node.forging(), "it read files at its start that are gone since");
    assert_eq!(node.guard.state().forging, Some(true), "its guard saw it");

    ask(&node, Request::Reload)
        .await
        .expect("no files: no permit needed");
    assert!(!node.forging());
}

#[tokio::test]
async fn every_change_of_forging_is_recorded_once_and_told_to_the_observer_as_it_happens() {
    let node = model();
    let told = Arc::new(Mutex::new(Vec::new()));
    let seen = told.clone();
    let model = node.clone();
    node.observe(Arc::new(move |forging| {
        // The observer is told after the change: the model already shows it (and may be read).
        assert_eq!(model.forging(), forging);
        seen.lock().expect("lock").push(forging);
    }));
    install(&node);
    node.start(PID, true);
    ask(&node, permit()).await.expect("permit");
    ask(&node, Request::Reload).await.expect("reload: forging");
    ask(&node, Request::Reload)
        .await
        .expect("reload again: still forging");
    node.exit();
    node.exit();

    assert_eq!(*told.lock().expect("lock"), vec![true, false]);
    let changes = node.forging_changes();
    assert_eq!(
        changes.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert!(changes[0].0 <= changes[1].0, "in order, with their instants");
}
