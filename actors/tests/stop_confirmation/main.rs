//! A stopping reload is answered only once the node is seen not forging (S2), and a start is
//! never left undone by a stopping reload still under way (L1). Against a scripted node guard on
//! a real Unix socket (`fake_guard`), through the guard (`through_guard`): the answer comes after
//! the guard's "Disabling block forging" report, never before; a node that never confirms fails
//! the reload (`stop_unconfirmed`); a guard that does not answer is not a node that is gone
//! (F3); a reload the node lost in its replay is never re-sent for a standby (F4); a stop waits
//! for an earlier reload that may be under way (F20); a start right after the guard's fence is
//! answered as undoable until the fence is done, and the follow-up then reaches the guard (F24). When the guard is gone or refuses (`guard_gone`): only the node
//! process identified by PID and start time being gone confirms a stop, and an old guard's
//! `exited` report confirms nothing for a new node process (F22). By PID, against the node
//! simulator handling SIGHUPs concurrently as cardano-node does (`concurrent_node`): a start
//! still under way never undoes a confirmed stop (F20), and a start an earlier stopping reload
//! undoes is answered as undoable, and forges again after the follow-up reload (F24).

mod concurrent_node;
mod fake_guard;
mod guard_gone;
mod through_guard;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::{
    adapters::{guard::GuardClient, process::ProcFs},
    clock::Clock,
    messages::{CommandResult, Reload},
    metrics::{Metrics, PodLabels},
    node_signaller::{NodeSignaller, StopConfirmation},
};
use forge_core::decision::ReloadReason;
use prometheus::Registry;

use fake_guard::{Script, scripted_guard};

pub(crate) fn signaller(socket: &Path, stop: StopConfirmation) -> (Addr<NodeSignaller>, Metrics) {
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let client = GuardClient::new(socket, Duration::from_millis(500));
    let m = metrics.clone();
    let addr = Supervisor::start(move |_| {
        NodeSignaller::new(ProcFs::default(), &m)
            .with_guard(Arc::new(client), Clock::new())
            .with_stop_confirmation(stop)
    });
    (addr, metrics)
}

pub(crate) fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("guard.sock")
}

/// Waits (bounded) until the signaller's subscription to the guard is up
/// (`forge_manager_fencing_covered` 1).
pub(crate) async fn subscribed(metrics: &Metrics) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metrics.fencing_covered.get() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "no guard subscription");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn stop(addr: &Addr<NodeSignaller>) -> CommandResult {
    addr.send(Reload {
        reason: ReloadReason::StopForging,
    })
    .await
    .expect("mailbox")
    .map(|_| ())
}

/// A NodeSignaller stopping with `stop`, subscribed to a guard in `dir` scripted with `script`
/// (see [`scripted_guard`] for `pushed`).
pub(crate) async fn subscribed_to_scripted_guard(
    dir: &tempfile::TempDir,
    script: Script,
    pushed: Arc<AtomicBool>,
    stop: StopConfirmation,
) -> Addr<NodeSignaller> {
    let socket = socket_in(dir);
    scripted_guard(&socket, script, pushed);
    let (addr, metrics) = signaller(&socket, stop);
    subscribed(&metrics).await;
    addr
}
