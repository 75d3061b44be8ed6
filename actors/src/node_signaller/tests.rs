//! Stops by PID behind earlier reloads: a stop is sent only once no earlier reload may still be
//! under way, and counts as done only after its own (module docs). The
//! node is a real child process that ignores SIGHUP (it lives on, so only `STOP_GRACE` can end
//! the wait, never its exit).

use std::{
    process::{Child, Command},
    time::Duration,
};

use actix::{Actor, Addr, AsyncContext};
use forge_core::decision::ReloadReason;
use prometheus::Registry;
use tokio::time::Instant;

use super::{NodeSignaller, StopConfirmation};
use crate::{
    adapters::process::{ProcFs, ProcessIdentity},
    messages::{NodeProcess, Reload, Reloaded},
    metrics::{Metrics, PodLabels},
};

const GRACE: Duration = Duration::from_millis(500);

/// A child that ignores SIGHUP (inherited across its `exec` of `sleep`), killed on drop.
struct DeafNode(Child);

impl DeafNode {
    async fn spawn() -> Self {
        let child = Command::new("sh")
            .args(["-c", "trap '' HUP; exec sleep 30"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        // Only once it runs `sleep` is the disposition in place.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .as_deref()
            != Some("sleep\n")
        {
            assert!(Instant::now() < deadline, "the child never ran sleep");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        DeafNode(child)
    }

    fn identity(&self) -> ProcessIdentity {
        ProcFs::default().identity(self.0.id() as i32).expect("identity")
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for DeafNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A NodeSignaller (not started) whose stops have STOP_GRACE [`GRACE`].
fn with_grace(metrics: &Metrics) -> NodeSignaller {
    NodeSignaller::new(ProcFs::default(), metrics).with_stop_confirmation(StopConfirmation {
        grace: GRACE,
        timeout: Duration::from_secs(5),
    })
}

fn signaller() -> (Addr<NodeSignaller>, Metrics) {
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let addr = with_grace(&metrics).start();
    (addr, metrics)
}

/// [`signaller`], told the process of `node`.
async fn signaller_of(node: &DeafNode) -> (Addr<NodeSignaller>, Metrics) {
    let (addr, metrics) = signaller();
    tell(&addr, node).await;
    (addr, metrics)
}

/// Tells the signaller at `addr` the process of `node`, as the NodeWatcher does.
async fn tell(addr: &Addr<NodeSignaller>, node: &DeafNode) {
    addr.send(NodeProcess(Some(node.identity())))
        .await
        .expect("mailbox");
}

async fn reload(addr: &Addr<NodeSignaller>, reason: ReloadReason) -> Reloaded {
    addr.send(Reload { reason })
        .await
        .expect("mailbox")
        .unwrap_or_else(|e| panic!("{} reload: {e:?}", reason.as_str()))
}

fn sighups(metrics: &Metrics, reason: ReloadReason) -> u64 {
    metrics.sighup_signals.with_label_values(&[reason.as_str()]).get()
}

#[actix::test]
async fn a_stop_queued_behind_an_earlier_reload_waits_for_that_reload_too() {
    // The shutdown of a leader that started forging a moment ago: its start reload may still be
    // under way in the node (up to STOP_GRACE), and the stop's own reload begins only after it.
    // Taking the stop as done STOP_GRACE after its own SIGHUP released the lease while the
    // node still forged (two forgers once the next pod's node started).
    let mut node = DeafNode::spawn().await;
    let (addr, _metrics) = signaller();
    addr.send(NodeProcess(Some(node.identity())))
        .await
        .expect("mailbox");
    reload(&addr, ReloadReason::StartForging).await;
    let sent = Instant::now();
    reload(&addr, ReloadReason::Shutdown).await;
    let took = sent.elapsed();
    assert!(
        node.alive(),
        "the node must outlive the wait (only STOP_GRACE ends it)"
    );
    assert!(
        took >= 2 * GRACE - Duration::from_millis(100),
        "the stop counted as done {took:?} after its SIGHUP, before the start reload queued ahead of it had had its \
         STOP_GRACE ({GRACE:?}) and then the stop its own"
    );
    assert!(took < 2 * GRACE + Duration::from_secs(3), "{took:?}");
}

#[actix::test]
async fn a_stop_to_a_new_node_process_waits_only_for_its_own_reload() {
    // Reloads queued in a process that is gone are nothing to wait for.
    let old = DeafNode::spawn().await;
    let mut new = DeafNode::spawn().await;
    let (addr, _metrics) = signaller();
    addr.send(NodeProcess(Some(old.identity())))
        .await
        .expect("mailbox");
    reload(&addr, ReloadReason::StartForging).await;
    addr.send(NodeProcess(Some(new.identity())))
        .await
        .expect("mailbox");
    let sent = Instant::now();
    reload(&addr, ReloadReason::StopForging).await;
    let took = sent.elapsed();
    assert!(new.alive());
    assert!(took >= GRACE, "{took:?}");
    assert!(
        took < 2 * GRACE - Duration::from_millis(100),
        "the stop waited for a reload sent to another process: {took:?}"
    );
}

#[actix::test]
async fn a_reassert_by_pid_is_not_queued_behind_a_reload_that_may_be_under_way() {
    // The Decider re-asserts a leader's reload every few seconds during the node's start-up
    // window. Queued behind a start (or another re-assert) still under way it adds nothing (it
    // reads the same files) and holds back any stop that follows by one more reload.
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    reload(&addr, ReloadReason::StartForging).await;
    reload(&addr, ReloadReason::Reassert).await;
    assert_eq!(
        sighups(&metrics, ReloadReason::Reassert),
        0,
        "a re-assert was sent while the start reload may still be under way"
    );
    tokio::time::sleep(GRACE + Duration::from_millis(50)).await;
    reload(&addr, ReloadReason::Reassert).await;
    assert_eq!(
        sighups(&metrics, ReloadReason::Reassert),
        1,
        "a re-assert once the start reload has had its STOP_GRACE is sent"
    );
    reload(&addr, ReloadReason::Reassert).await;
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 1);
}

#[actix::test]
async fn a_start_an_earlier_stopping_reload_may_undo_is_answered_with_when_that_one_is_done() {
    // F24: the node handles each SIGHUP in a thread of its own. A start sent while the start-up
    // reload (credentials absent) may still be under way can take effect first, and that
    // reload then turns forging off while this pod holds the lease. The answer says until when
    // (the Decider's lifecycle reloads once more then); the signaller sends nothing by itself.
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    let before = Instant::now();
    reload(&addr, ReloadReason::Startup).await;
    let after = Instant::now();
    let answer = reload(&addr, ReloadReason::StartForging).await;
    let until = answer
        .undoable_until
        .expect("a start sent while the start-up reload may be under way is answered as undoable");
    assert!(
        until >= before + GRACE && until <= after + GRACE,
        "undoable until {:?} after the start-up reload, not its STOP_GRACE ({GRACE:?})",
        until - before
    );
    // A rotation then too; a stop never (it turns nothing on).
    let rotation = reload(&addr, ReloadReason::Rotation).await;
    assert_eq!(rotation.undoable_until, Some(until));
    // Nothing follows by itself: the follow-up is the Decider's.
    tokio::time::sleep_until(until + GRACE).await;
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 0);
    assert_eq!(sighups(&metrics, ReloadReason::FollowUp), 0);
}

#[actix::test]
async fn a_follow_up_by_pid_goes_although_the_start_may_still_be_under_way() {
    // The follow-up is due when the earlier stop has had its STOP_GRACE, which is before the
    // start after it has had its own: unlike a re-assert, it is not skipped then.
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    reload(&addr, ReloadReason::Startup).await;
    tokio::time::sleep(GRACE / 2).await;
    let until = reload(&addr, ReloadReason::StartForging)
        .await
        .undoable_until
        .expect("undoable");
    tokio::time::sleep_until(until).await;
    let answer = reload(&addr, ReloadReason::FollowUp).await;
    assert_eq!(
        sighups(&metrics, ReloadReason::FollowUp),
        1,
        "the follow-up reload was not sent while the start may still be under way"
    );
    assert_eq!(
        answer.undoable_until, None,
        "no stopping reload is left to undo it"
    );
}

#[actix::test]
async fn a_start_no_stopping_reload_may_undo_is_answered_as_final() {
    let node = DeafNode::spawn().await;
    let (addr, _metrics) = signaller_of(&node).await;
    assert_eq!(
        reload(&addr, ReloadReason::StartForging).await,
        Reloaded::default()
    );
    assert_eq!(reload(&addr, ReloadReason::Rotation).await, Reloaded::default());
}

/// Stands in for the NodeSignaller's mailbox: records what reaches it once it runs.
struct Inbox<M>(std::sync::Arc<std::sync::Mutex<Vec<M>>>);

impl<M: 'static + Unpin> Actor for Inbox<M> {
    type Context = actix::Context<Self>;
}

impl<M: actix::Message<Result = ()> + Send + Unpin + 'static> actix::Handler<M> for Inbox<M> {
    type Result = ();

    fn handle(&mut self, msg: M, _: &mut actix::Context<Self>) {
        self.0.lock().expect("inbox").push(msg);
    }
}

#[actix::test]
async fn a_lease_fact_reaches_the_decider_while_the_signaller_holds_a_stop() {
    // F20's hold: a stop sent while an earlier reload may still be under way waits up to
    // STOP_GRACE, and the signaller handles nothing else meanwhile. The lease facts pass it on
    // their way to the Decider (the LeaseTap): a tap that waited for the signaller kept every
    // renewal from the Decider that long. It enqueues them at the signaller and goes on.
    use super::LeaseTap;
    use crate::messages::Fact;
    use forge_core::decision::Event;
    let node = DeafNode::spawn().await;
    let (addr, _metrics) = signaller_of(&node).await;
    let facts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Fact>::new()));
    let decider = Inbox(facts.clone()).start();
    let tap = LeaseTap::new(addr.clone().recipient(), decider.recipient()).start();
    reload(&addr, ReloadReason::StartForging).await;
    // Enqueued now: the signaller takes it before the fact below, and holds it back until the
    // start has had its STOP_GRACE.
    let stop = actix::spawn(addr.send(Reload {
        reason: ReloadReason::StopForging,
    }));
    let renewal = Fact::now(Event::LeaseRenewed {
        deadline: forge_core::lease::Mono::from_millis(60_000),
    });
    tap.send(renewal.clone()).await.expect("mailbox");
    assert!(
        !stop.is_finished(),
        "the renewal reached the Decider only once the signaller's held stop was done"
    );
    assert_eq!(
        facts.lock().expect("facts").last().map(|f| &f.event),
        Some(&renewal.event)
    );
    let stopped = stop.await.expect("joined").expect("mailbox");
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[actix::test]
async fn the_decider_hears_of_a_new_node_only_once_the_signaller_knows_its_process() {
    // The NodeWatcher reports a new node process to the NodeSignaller and NodeUp to the
    // Decider. Were NodeUp to go first (the signaller's mailbox full), the Decider's next stop
    // would reach the old process or none ("no node": a stop then counts as done) while the
    // new process may forge.
    use crate::{
        messages::Fact,
        node_watcher::{Found, NodeWatcher, NodeWatcherSettings, Observation},
    };
    use forge_core::decision::Event;
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let facts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Fact>::new()));
    let decider = Inbox(facts.clone()).start();
    // A NodeSignaller that does not take anything now: its mailbox is full.
    let processes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<NodeProcess>::new()));
    let mut ctx = actix::Context::<Inbox<NodeProcess>>::new();
    ctx.set_mailbox_capacity(1);
    let signaller = ctx.address();
    let node = DeafNode::spawn().await;
    let mut watcher = NodeWatcher::new(
        NodeWatcherSettings::new("/nonexistent/node.socket", "sleep"),
        ProcFs::default(),
        decider.recipient(),
        signaller.recipient(),
        &metrics,
    );
    // Filled through the watcher's own sender (each sender has a slot of its own).
    while watcher.signaller.try_send(NodeProcess(None)).is_ok() {}
    watcher.observe(Observation::Ready(Found {
        identity: node.identity(),
        inodes: Vec::new(),
        non_producing_flag: None,
    }));
    watcher.flush();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        facts
            .lock()
            .expect("facts")
            .iter()
            .all(|f| f.event != Event::NodeUp),
        "NodeUp reached the Decider before the NodeSignaller took the node's process"
    );
    // The signaller takes its mail again: the process first, then NodeUp.
    let _running = ctx.run(Inbox(processes.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    watcher.flush();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        processes.lock().expect("processes").last(),
        Some(&NodeProcess(Some(node.identity())))
    );
    assert!(
        facts
            .lock()
            .expect("facts")
            .iter()
            .any(|f| f.event == Event::NodeUp)
    );
}
