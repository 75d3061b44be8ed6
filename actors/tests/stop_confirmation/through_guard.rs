//! Through the node guard: a stop is answered only once the node reports it stopped forging,
//! and fails when it never does; a guard that does not answer is no node that is gone (F3); a
//! lost reload is not re-sent for a standby (F4); a stop waits for an earlier reload (F20); a
//! start right after the guard's fence is answered as undoable until the fence is done, and the
//! follow-up reload then reaches the guard (F24; the Decider's lifecycle plans it, within F21's
//! room).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix::{Actor, Addr, Supervisor};
use forge_actors::{
    adapters::{guard::GuardClient, process::ProcFs},
    clock::Clock,
    messages::{CommandError, Fact, Reload, Reloaded},
    metrics::{Metrics, PodLabels},
    node_signaller::{NodeSignaller, StopConfirmation},
};
use forge_core::decision::{Event, ReloadReason};
use forge_guard::protocol::{Answer, GuardState, Observation};
use prometheus::Registry;
use tokio::sync::{broadcast, mpsc};

use super::{
    fake_guard::{Reloads, Script, recording_guard, replaying_guard},
    signaller, socket_in, stop, subscribed, subscribed_to_scripted_guard,
};

#[actix::test]
async fn a_stop_through_the_guard_is_answered_only_after_the_node_reports_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pushed = Arc::new(AtomicBool::new(false));
    let addr = subscribed_to_scripted_guard(
        &dir,
        Script::ConfirmAfter(Duration::from_millis(700)),
        pushed.clone(),
        StopConfirmation {
            grace: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        },
    )
    .await;
    let result = stop(&addr).await;
    assert_eq!(result, Ok(()));
    assert!(
        pushed.load(Ordering::SeqCst),
        "the stop was answered before the node reported it stopped forging"
    );
}

#[actix::test]
async fn a_stop_the_node_never_confirms_fails_and_is_not_taken_for_a_missing_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = subscribed_to_scripted_guard(
        &dir,
        Script::NeverConfirms,
        Arc::new(AtomicBool::new(false)),
        StopConfirmation {
            grace: Duration::from_millis(100),
            timeout: Duration::from_millis(800),
        },
    )
    .await;
    let failed = stop(&addr).await.expect_err("an unconfirmed stop must fail");
    assert_eq!(failed.kind, CommandError::StopUnconfirmed);
    assert!(!failed.kind.is_node_absent());
}

#[actix::test]
async fn a_guard_that_does_not_answer_is_not_a_node_that_is_gone() {
    // A guard that is alive but stalled (SIGSTOP, CPU throttling): its socket is bound and
    // listening, nothing is accepted or answered.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _stalled = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let (addr, _metrics) = signaller(&socket, StopConfirmation::default());
    let failed = stop(&addr)
        .await
        .expect_err("a stop through a stalled guard must fail");
    assert!(
        !failed.kind.is_node_absent(),
        "{failed:?} would let the plan hand over while the node may forge"
    );
}

#[actix::test]
async fn a_reload_lost_in_the_replay_is_not_resent_for_a_standby() {
    // F4: a standby's node (no permit) lost the start-up reload in its replay while boot
    // credentials may be present: re-sending it once consensus runs would make it read them
    // and forge. Only the Decider may ask for a reload there.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let reloads = Arc::new(AtomicUsize::new(0));
    replaying_guard(&socket, reloads.clone());
    let (_addr, metrics) = signaller(&socket, StopConfirmation::default());
    subscribed(&metrics).await;
    // The signaller's re-send period is 1 s: wait out two of them after the ChainExtended push.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        reloads.load(Ordering::SeqCst),
        0,
        "a reload was sent to a standby's node on the signaller's own initiative"
    );
}

#[actix::test]
async fn a_stop_through_the_guard_waits_for_an_earlier_reload_that_may_be_under_way() {
    // F20 through the guard: the node handles each SIGHUP in a thread of its own, so a stop's
    // SIGHUP sent while a rotation (credentials present) may still be under way could take effect
    // before it, and its "Disabling" line would confirm a stop the rotation then undoes. The
    // stop's reload reaches the guard only once the rotation has had its STOP_GRACE.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let reloads = Reloads::default();
    let _ = recording_guard(
        &socket,
        Script::ConfirmAfter(Duration::from_millis(50)),
        Arc::new(AtomicBool::new(false)),
        reloads.clone(),
    );
    let grace = Duration::from_millis(600);
    let (addr, metrics) = signaller(
        &socket,
        StopConfirmation {
            grace,
            timeout: Duration::from_secs(5),
        },
    );
    subscribed(&metrics).await;
    let rotated = addr
        .send(Reload {
            reason: ReloadReason::Rotation,
        })
        .await
        .expect("mailbox");
    assert!(rotated.is_ok(), "{rotated:?}");
    assert_eq!(stop(&addr).await, Ok(()));
    let at = reloads.lock().expect("reloads").clone();
    assert_eq!(at.len(), 2, "one reload for the rotation, one for the stop");
    let between = at[1] - at[0];
    assert!(
        between >= grace - Duration::from_millis(50),
        "the stop's reload reached the guard {between:?} after the rotation's, while that one may still be \
         under way in the node (STOP_GRACE {grace:?})"
    );
}

/// Stands in for the Decider: passes on the facts the NodeSignaller sends it.
struct DeciderFacts(tokio::sync::mpsc::UnboundedSender<Fact>);

impl actix::Actor for DeciderFacts {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Fact> for DeciderFacts {
    type Result = ();

    fn handle(&mut self, fact: Fact, _: &mut actix::Context<Self>) {
        let _ = self.0.send(fact);
    }
}

/// A NodeSignaller through a guard that never confirms a reload, with what a test of the
/// guard's fence needs from it.
struct Fenceable {
    addr: Addr<NodeSignaller>,
    /// When the guard received each `reload` request.
    reloads: Reloads,
    /// The guard's pushes to its subscribers.
    pushes: broadcast::Sender<String>,
    /// The facts the NodeSignaller sends the Decider.
    facts: mpsc::UnboundedReceiver<Fact>,
}

/// A [`Fenceable`] NodeSignaller subscribed to a recording guard on `socket`, stopping with
/// STOP_GRACE `grace`: a leader (its renew deadline 30 s away) that has started its node forging.
async fn fenceable(socket: &Path, grace: Duration) -> Fenceable {
    let reloads = Reloads::default();
    let pushes = recording_guard(
        socket,
        Script::NeverConfirms,
        Arc::new(AtomicBool::new(false)),
        reloads.clone(),
    );
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let (tx, facts) = mpsc::unbounded_channel();
    let decider = DeciderFacts(tx).start();
    let client = GuardClient::new(socket, Duration::from_millis(500));
    let m = metrics.clone();
    let addr = Supervisor::start(move |_| {
        NodeSignaller::new(ProcFs::default(), &m)
            .with_guard(Arc::new(client), clock)
            .with_stop_confirmation(StopConfirmation {
                grace,
                timeout: Duration::from_secs(5),
            })
            .with_decider(decider.recipient())
    });
    subscribed(&metrics).await;
    addr.send(Fact::now(Event::LeaseAcquired {
        deadline: clock.mono_of(tokio::time::Instant::now() + Duration::from_secs(30)),
    }))
    .await
    .expect("mailbox");
    let first = start_forging(&addr).await;
    assert_eq!(
        first.undoable_until, None,
        "no stopping reload before the first start"
    );
    Fenceable {
        addr,
        reloads,
        pushes,
        facts,
    }
}

/// The guard found its permit lapsed and fenced its node: it pushes that, and the fence reaches
/// the Decider.
async fn fence(pushes: &broadcast::Sender<String>, facts: &mut mpsc::UnboundedReceiver<Fact>) {
    let fenced = GuardState {
        forging: Some(false),
        last: Some(Observation::Disabled),
        child_pid: 4242,
        ..GuardState::default()
    };
    pushes
        .send(Answer::event("lapsed", fenced).to_line())
        .expect("subscribed");
    let fact = tokio::time::timeout(Duration::from_secs(5), facts.recv())
        .await
        .expect("the fence reaches the Decider")
        .expect("fact");
    assert_eq!(fact.event, Event::NodeFenced);
}

async fn start_forging(addr: &Addr<NodeSignaller>) -> Reloaded {
    reload(addr, ReloadReason::StartForging).await
}

async fn reload(addr: &Addr<NodeSignaller>, reason: ReloadReason) -> Reloaded {
    let r = addr.send(Reload { reason }).await.expect("mailbox");
    r.unwrap_or_else(|e| panic!("{} reload: {e:?}", reason.as_str()))
}

#[actix::test]
async fn a_start_right_after_the_guards_fence_is_reloaded_once_more_through_the_guard() {
    // F24 through the guard, as in the two-region chaos soak: a stalled guard came back, found
    // its permit lapsed and fenced (credential files removed, a SIGHUP); the Decider, still
    // leading, started the node again at once. The fence's reload took 1.2 s, the start's 0.2 s:
    // the node stopped forging after it had started again, and nobody forged for half a minute.
    // The start's answer says the fence may undo it until the fence has had its STOP_GRACE, and
    // the follow-up the Decider's lifecycle plans then reaches the guard (the test stands in for
    // the Decider): through a subscribed guard, unlike a re-assert, it is not dropped.
    let dir = tempfile::tempdir().expect("tempdir");
    let grace = Duration::from_millis(600);
    let Fenceable {
        addr,
        reloads,
        pushes,
        mut facts,
        ..
    } = fenceable(&socket_in(&dir), grace).await;
    fence(&pushes, &mut facts).await;
    let fence_seen = tokio::time::Instant::now();
    let until = start_forging(&addr)
        .await
        .undoable_until
        .expect("a start sent while the guard's fence may still be under way is answered as undoable");
    assert!(
        until + Duration::from_millis(100) >= fence_seen + grace
            && until <= fence_seen + grace + Duration::from_secs(1),
        "undoable until {:?} after the fence was reported, not its STOP_GRACE ({grace:?})",
        until - fence_seen
    );
    assert_eq!(
        reloads.lock().expect("reloads").len(),
        2,
        "the first start and this one"
    );
    tokio::time::sleep_until(until).await;
    let answer = reload(&addr, ReloadReason::FollowUp).await;
    assert_eq!(answer.undoable_until, None);
    assert_eq!(
        reloads.lock().expect("reloads").len(),
        3,
        "the follow-up did not reach the subscribed guard"
    );
}

#[actix::test]
async fn a_fresh_sidecars_start_up_reload_counts_for_the_node_process_it_identifies_next() {
    // F24 after a sidecar restart, as the two-region chaos soak found it: the new sidecar's
    // start-up reload went through the guard before its NodeWatcher had identified the node
    // process, and that identification reset what the signaller knew was still under way in
    // the node. The start a moment later took effect first, the start-up reload last, and the
    // start was not answered as undoable: nothing reloaded the node again (36 s without a
    // forger). The first process identified is the one the earlier reload reached.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _ = recording_guard(
        &socket,
        Script::NeverConfirms,
        Arc::new(AtomicBool::new(false)),
        Reloads::default(),
    );
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let client = GuardClient::new(&socket, Duration::from_millis(500));
    let m = metrics.clone();
    let addr = Supervisor::start(move |_| {
        NodeSignaller::new(ProcFs::default(), &m)
            .with_guard(Arc::new(client), clock)
            .with_stop_confirmation(StopConfirmation {
                grace: Duration::from_millis(600),
                timeout: Duration::from_secs(5),
            })
    });
    subscribed(&metrics).await;
    let sent = tokio::time::Instant::now();
    reload(&addr, ReloadReason::Startup).await;
    let node = ProcFs::default()
        .identity(std::process::id() as i32)
        .expect("own identity");
    addr.send(forge_actors::messages::NodeProcess(Some(node)))
        .await
        .expect("mailbox");
    addr.send(Fact::now(Event::LeaseAcquired {
        deadline: clock.mono_of(tokio::time::Instant::now() + Duration::from_secs(30)),
    }))
    .await
    .expect("mailbox");
    let until = start_forging(&addr).await.undoable_until.expect(
        "the start after the start-up reload is answered as undoable, the node process identified in between",
    );
    assert!(until >= sent + Duration::from_millis(600), "{:?}", until - sent);
}
