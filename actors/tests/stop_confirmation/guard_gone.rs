//! When the guard cannot be asked: a refused guard whose node process (PID and start time) is
//! gone confirms the stop; one whose node was seen only through it does not (F3); an old guard's
//! `exited` report confirms nothing for a new node process (F22).

use std::time::Duration;

use actix::Addr;
use forge_actors::{
    adapters::process::{ProcFs, ProcessIdentity},
    messages::NodeProcess,
    node_signaller::{NodeSignaller, StopConfirmation},
};

use super::{
    fake_guard::{exiting_guard, refusing_socket},
    signaller, socket_in, stop, subscribed,
};

/// A node process (`sleep`, which a SIGHUP ends), its identity told to the signaller at `addr`
/// as the NodeWatcher does.
async fn node_told_to(addr: &Addr<NodeSignaller>) -> std::process::Child {
    let node = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn");
    let identity = ProcFs::default().identity(node.id() as i32).expect("identity");
    addr.send(NodeProcess(Some(identity))).await.expect("mailbox");
    node
}

#[actix::test]
async fn a_refused_guard_whose_node_process_is_gone_confirms_the_stop() {
    // A SIGKILLed guard took its node along (PR_SET_PDEATHSIG): the node process the
    // NodeWatcher identified (PID and start time) is gone, so nothing forges and the stop is
    // done, although the guard cannot answer.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = refusing_socket(&dir);
    let (addr, _metrics) = signaller(&socket, StopConfirmation::default());
    let mut node = node_told_to(&addr).await;
    node.kill().expect("kill");
    node.wait().expect("reap");
    addr.send(NodeProcess(None)).await.expect("mailbox");
    stop(&addr)
        .await
        .expect("the node process is gone: the stop is confirmed");
}

#[actix::test]
async fn an_exited_report_about_the_old_node_does_not_confirm_a_stop_to_the_new_one() {
    // F22: the node container restarted. The old guard reported its node's exit and went; the
    // NodeWatcher already sees the new node process, the new guard is not subscribed yet. A
    // stop now must reach the new node, not be confirmed by the old process's exit.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let old_pid = i32::MAX as u32 - 2;
    let (exit, exit_rx) = tokio::sync::oneshot::channel();
    exiting_guard(&socket, old_pid, exit_rx).await;
    let (addr, metrics) = signaller(&socket, StopConfirmation::default());
    subscribed(&metrics).await;
    exit.send(()).expect("guard running");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metrics.fencing_covered.get() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guard's subscription never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new node process; `sleep` ends on the SIGHUP the stop sends it.
    let mut node = node_told_to(&addr).await;
    let _ = stop(&addr).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = node.try_wait().expect("try_wait") {
            break Some(status);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = node.kill();
    let _ = node.wait();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.and_then(|s| s.signal()),
        Some(rustix::process::Signal::HUP.as_raw()),
        "the stop never reached the new node process: the old node's `exited` report was taken for its confirmation"
    );
}

#[actix::test]
async fn a_refused_guard_whose_node_was_seen_only_through_it_is_no_confirmation() {
    // No shared process namespace: the node was known only through its guard (start time
    // unknown), so its death cannot be checked here and the stop stays unconfirmed.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = refusing_socket(&dir);
    let (addr, _metrics) = signaller(&socket, StopConfirmation::default());
    let seen_through_guard = ProcessIdentity {
        pid: i32::MAX - 1,
        start_time: 0,
    };
    addr.send(NodeProcess(Some(seen_through_guard)))
        .await
        .expect("mailbox");
    addr.send(NodeProcess(None)).await.expect("mailbox");
    let failed = stop(&addr)
        .await
        .expect_err("an unverifiable node behind a refused guard is no confirmation");
    assert!(
        !failed.kind.is_node_absent(),
        "{failed:?} would let the plan hand over while the node may forge"
    );
}
