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
    clock::Clock,
    messages::{NodeProcess, Reload},
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

/// [`signaller`] keeping STOP_GRACE of room before the renew deadline (read on the returned
/// clock), told the process of `node`.
async fn signaller_with_reload_room(node: &DeafNode) -> (Addr<NodeSignaller>, Metrics, Clock) {
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let addr = with_grace(&metrics).with_reload_room(GRACE, clock).start();
    tell(&addr, node).await;
    (addr, metrics, clock)
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

async fn reload(addr: &Addr<NodeSignaller>, reason: ReloadReason) {
    addr.send(Reload { reason })
        .await
        .expect("mailbox")
        .unwrap_or_else(|e| panic!("{} reload: {e:?}", reason.as_str()));
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

/// Waits (bounded) until `metrics` counts `n` re-assert SIGHUPs.
async fn reasserts_reach(metrics: &Metrics, n: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while sighups(metrics, ReloadReason::Reassert) < n {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[actix::test]
async fn a_start_an_earlier_stopping_reload_may_undo_is_reloaded_once_more_after_it() {
    // F24: the node handles each SIGHUP in a thread of its own. A start sent while the start-up
    // reload (credentials absent) may still be under way can take effect first, and that
    // reload then turns forging off while this pod holds the lease; nothing else would reload
    // the node. One more reload follows once the start-up reload has had its STOP_GRACE.
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    let startup = Instant::now();
    reload(&addr, ReloadReason::Startup).await;
    reload(&addr, ReloadReason::StartForging).await;
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 0);
    assert!(
        reasserts_reach(&metrics, 1, GRACE + Duration::from_secs(3)).await,
        "no reload followed a start sent while the start-up reload may still have been under way"
    );
    let after = startup.elapsed();
    assert!(
        after >= GRACE - Duration::from_millis(20),
        "the follow-up went {after:?} after the start-up reload, before it had had its STOP_GRACE ({GRACE:?})"
    );
    // Once: the follow-up is no start of its own.
    tokio::time::sleep(2 * GRACE).await;
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 1);
}

#[actix::test]
async fn a_start_no_stopping_reload_may_undo_is_not_followed_up() {
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    reload(&addr, ReloadReason::StartForging).await;
    reload(&addr, ReloadReason::Rotation).await;
    assert!(
        !reasserts_reach(&metrics, 1, 2 * GRACE).await,
        "a reload followed starts that no stopping reload could undo"
    );
}

#[actix::test]
async fn a_stop_after_such_a_start_cancels_its_follow_up() {
    // The follow-up reload restores forging: it must never go after a stop (S2).
    let node = DeafNode::spawn().await;
    let (addr, metrics) = signaller_of(&node).await;
    reload(&addr, ReloadReason::Startup).await;
    reload(&addr, ReloadReason::StartForging).await;
    reload(&addr, ReloadReason::StopForging).await;
    assert!(
        !reasserts_reach(&metrics, 1, 2 * GRACE).await,
        "a reload followed the start after the stop that ended it"
    );
}

#[actix::test]
async fn a_follow_up_due_too_close_to_the_renew_deadline_waits_for_the_next_renewal() {
    // F21 through F24: the follow-up reload is a start the Decider does not see. Sent with less
    // than STOP_GRACE left before the renew deadline, the stop at the deadline would wait for
    // its STOP_GRACE (F20's hold) past the deadline. It goes after the renewal instead.
    use crate::messages::Fact;
    use forge_core::decision::Event;
    let node = DeafNode::spawn().await;
    let (addr, metrics, clock) = signaller_with_reload_room(&node).await;
    // The renew deadline comes 200 ms after the follow-up would be due (STOP_GRACE after the
    // start-up reload): too little room for it.
    let renew_deadline = Instant::now() + GRACE + Duration::from_millis(200);
    addr.send(Fact::now(Event::LeaseAcquired {
        deadline: clock.mono_of(renew_deadline),
    }))
    .await
    .expect("mailbox");
    reload(&addr, ReloadReason::Startup).await;
    reload(&addr, ReloadReason::StartForging).await;
    assert!(
        !reasserts_reach(&metrics, 1, GRACE + Duration::from_millis(600)).await,
        "the follow-up reload went with less than STOP_GRACE left before the renew deadline"
    );
    // The renewal moves the deadline: the follow-up goes now, not STOP_GRACE later.
    let renewed = Instant::now();
    addr.send(Fact::now(Event::LeaseRenewed {
        deadline: clock.mono_of(renewed + Duration::from_secs(10)),
    }))
    .await
    .expect("mailbox");
    assert!(
        reasserts_reach(&metrics, 1, Duration::from_millis(300)).await,
        "the deferred follow-up reload did not go after the renewal that left room for it"
    );
    // Once.
    addr.send(Fact::now(Event::LeaseRenewed {
        deadline: clock.mono_of(Instant::now() + Duration::from_secs(10)),
    }))
    .await
    .expect("mailbox");
    tokio::time::sleep(2 * GRACE).await;
    assert_eq!(sighups(&metrics, ReloadReason::Reassert), 1);
}

#[actix::test]
async fn a_deferred_follow_up_is_dropped_by_a_stop() {
    // The lease is lost at the deadline and the Decider stops the node: the renewal of a later
    // tenure must not restore forging the stop ended (S2).
    use crate::messages::Fact;
    use forge_core::decision::Event;
    let node = DeafNode::spawn().await;
    let (addr, metrics, clock) = signaller_with_reload_room(&node).await;
    addr.send(Fact::now(Event::LeaseAcquired {
        deadline: clock.mono_of(Instant::now() + GRACE + Duration::from_millis(200)),
    }))
    .await
    .expect("mailbox");
    reload(&addr, ReloadReason::Startup).await;
    reload(&addr, ReloadReason::StartForging).await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    addr.send(Fact::now(Event::LeaseLost { holder: None }))
        .await
        .expect("mailbox");
    reload(&addr, ReloadReason::StopForging).await;
    let before = sighups(&metrics, ReloadReason::Reassert);
    addr.send(Fact::now(Event::LeaseAcquired {
        deadline: clock.mono_of(Instant::now() + Duration::from_secs(10)),
    }))
    .await
    .expect("mailbox");
    assert!(
        !reasserts_reach(&metrics, before + 1, 2 * GRACE).await,
        "a deferred follow-up reload went after the stop that ended its start"
    );
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
