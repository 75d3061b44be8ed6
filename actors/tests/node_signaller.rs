//! NodeSignaller against real child processes: a copy of `sleep` under a unique name dies of
//! the SIGHUP it receives, so delivery (and non-delivery) is observable.

use std::{
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::{
    adapters::process::{ProcFs, ProcessIdentity},
    messages::{CommandError, CommandResult, NodeProcess, Reload},
    metrics::{Metrics, PodLabels},
    node_signaller::NodeSignaller,
};
use forge_core::decision::ReloadReason;
use prometheus::Registry;

/// SIGHUP's number on Linux.
const SIGHUP: i32 = 1;

/// A child running a copy of `sleep` named `name`, killed on drop.
struct NamedChild(Child);

impl NamedChild {
    fn spawn(dir: &Path, name: &str) -> Self {
        let exe = dir.join(name);
        std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
        NamedChild(Command::new(&exe).arg("30").spawn().expect("spawn"))
    }

    fn identity(&self) -> ProcessIdentity {
        ProcFs::default().identity(self.0.id() as i32).expect("identity")
    }

    /// Waits (bounded) for the child to end; its terminating signal, if it ended.
    async fn ended_by(&mut self, within: Duration) -> Option<Option<i32>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status.signal());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for NamedChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Addr<NodeSignaller>, Metrics) {
    start_with(|s| s)
}

/// A signaller for a node that never boots with credentials (`NODE_STARTS_NON_PRODUCING` off).
fn start_without_boot_credentials() -> (Addr<NodeSignaller>, Metrics) {
    start_with(NodeSignaller::without_boot_credentials)
}

fn start_with(build: fn(NodeSignaller) -> NodeSignaller) -> (Addr<NodeSignaller>, Metrics) {
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let m = metrics.clone();
    let addr = Supervisor::start(move |_| build(NodeSignaller::new(ProcFs::default(), &m)));
    (addr, metrics)
}

#[actix::test]
async fn a_startup_reload_that_found_no_node_reaches_the_first_node_that_appears() {
    // F7: a crashed sidecar's node forges from memory; the new sidecar starts before its
    // NodeWatcher found the node. Without boot credentials the files are absent, so the
    // start-up SIGHUP is owed to the first node process that appears.
    let dir = tempfile::tempdir().expect("tempdir");
    let (signaller, metrics) = start_without_boot_credentials();
    let err = reload(&signaller, ReloadReason::Startup)
        .await
        .expect_err("no node yet");
    assert_eq!(err.kind, CommandError::NoNode);
    let mut orphan = NamedChild::spawn(dir.path(), "fm-sig-node-f7");
    node_is(&signaller, &orphan).await;
    assert_eq!(orphan.ended_by(WAIT).await, Some(Some(SIGHUP)));
    assert_eq!(sighups(&metrics, ReloadReason::Startup), 1);
    // Once only.
    let mut next = NamedChild::spawn(dir.path(), "fm-sig-node-f7b");
    node_is(&signaller, &next).await;
    assert_eq!(next.ended_by(Duration::from_millis(300)).await, None);
}

/// Asks the signaller for a reload for `reason` and returns its answer.
async fn reload(signaller: &Addr<NodeSignaller>, reason: ReloadReason) -> CommandResult {
    signaller
        .send(Reload { reason })
        .await
        .expect("mailbox")
        .map(|_| ())
}

/// Tells the signaller that `child` is the node process now.
async fn node_is(signaller: &Addr<NodeSignaller>, child: &NamedChild) {
    signaller
        .send(NodeProcess(Some(child.identity())))
        .await
        .expect("mailbox");
}

fn sighups(metrics: &Metrics, reason: ReloadReason) -> u64 {
    metrics.sighup_signals.with_label_values(&[reason.as_str()]).get()
}

const WAIT: Duration = Duration::from_secs(5);

#[actix::test]
async fn a_reload_sends_sighup_to_the_node_and_counts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = NamedChild::spawn(dir.path(), "fm-sig-node-a");
    let (signaller, metrics) = start();
    node_is(&signaller, &child).await;
    reload(&signaller, ReloadReason::StartForging)
        .await
        .expect("delivered");
    assert_eq!(child.ended_by(WAIT).await, Some(Some(SIGHUP)));
    assert_eq!(sighups(&metrics, ReloadReason::StartForging), 1);
    assert_eq!(sighups(&metrics, ReloadReason::StopForging), 0);
}

#[actix::test]
async fn a_reload_without_a_node_fails_and_is_never_sent_later_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (signaller, metrics) = start();
    let err = reload(&signaller, ReloadReason::Startup)
        .await
        .expect_err("no node yet");
    assert_eq!(err.kind, CommandError::NoNode);

    // A node that boots non-producing has credentials present: a SIGHUP the Decider did not
    // ask for now would make it forge. The signaller must leave it alone.
    let mut child = NamedChild::spawn(dir.path(), "fm-sig-node-b");
    node_is(&signaller, &child).await;
    assert_eq!(
        child.ended_by(Duration::from_millis(300)).await,
        None,
        "signalled on its own"
    );
    assert_eq!(sighups(&metrics, ReloadReason::Startup), 0);
}

#[actix::test]
async fn a_new_node_process_is_signalled_only_when_the_decider_asks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (signaller, metrics) = start();
    let mut first = NamedChild::spawn(dir.path(), "fm-sig-node-c1");
    node_is(&signaller, &first).await;
    reload(&signaller, ReloadReason::StartForging)
        .await
        .expect("delivered");
    assert_eq!(first.ended_by(WAIT).await, Some(Some(SIGHUP)));
    signaller.send(NodeProcess(None)).await.expect("mailbox");
    let mut second = NamedChild::spawn(dir.path(), "fm-sig-node-c2");
    node_is(&signaller, &second).await;
    assert_eq!(
        second.ended_by(Duration::from_millis(300)).await,
        None,
        "signalled on its own"
    );
    reload(&signaller, ReloadReason::Reassert)
        .await
        .expect("delivered");
    assert_eq!(second.ended_by(WAIT).await, Some(Some(SIGHUP)));
    assert_eq!(sighups(&metrics, ReloadReason::StartForging), 1);
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 1);
}

#[actix::test]
async fn a_stale_identity_is_never_signalled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = NamedChild::spawn(dir.path(), "fm-sig-node-d");
    let mut stale = child.identity();
    // The same PID with another start time: the PID now names a different process.
    stale.start_time += 1;
    let (signaller, metrics) = start();
    signaller.send(NodeProcess(Some(stale))).await.expect("mailbox");
    let err = reload(&signaller, ReloadReason::StopForging)
        .await
        .expect_err("refused");
    assert_eq!(err.kind, CommandError::NodeGone);
    assert_eq!(sighups(&metrics, ReloadReason::StopForging), 0);
    assert_eq!(
        child.ended_by(Duration::from_millis(200)).await,
        None,
        "the process must be untouched"
    );
    // Once the real identity is reported, the Decider's next reload reaches it.
    node_is(&signaller, &child).await;
    reload(&signaller, ReloadReason::StopForging)
        .await
        .expect("delivered");
    assert_eq!(child.ended_by(WAIT).await, Some(Some(SIGHUP)));
    assert_eq!(sighups(&metrics, ReloadReason::StopForging), 1);
}
