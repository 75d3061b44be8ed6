//! A stopping reload is answered only once the node is seen not forging (S2), against a
//! scripted node guard on a real Unix socket: the answer comes after the guard's "Disabling
//! block forging" report, never before; a node that never confirms fails the reload
//! (`stop_unconfirmed`); a guard that does not answer is not a node that is gone (F3), unless
//! the node process identified by PID and start time is gone; a reload the node lost in its
//! replay is never re-sent for a standby (F4). By PID, against the node simulator handling
//! SIGHUPs concurrently as cardano-node does, a start still under way never undoes a confirmed
//! stop (F20).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix::{Actor, Addr, Supervisor};
use forge_actors::ports::{DiscoveryError, NodeHost, SignalError, SocketState};
use forge_actors::{
    adapters::{
        guard::GuardClient,
        process::{ProcFs, ProcessIdentity},
    },
    clock::Clock,
    messages::{CommandError, CommandResult, Fact, NodeProcess, Reload},
    metrics::{Metrics, PodLabels},
    node_signaller::{NodeSignaller, StopConfirmation},
};
use forge_core::decision::{Event, ReloadReason};
use forge_guard::protocol::{Answer, GuardState, Observation};
use forge_sim::{
    creds::write_test_credentials,
    node::{Latency, NodeBehaviour, NodeOptions, NodeSim, ReloadOrder, SplitMix64},
    timeline::EventKind,
};
use futures::future::BoxFuture;
use prometheus::Registry;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::broadcast,
};

/// How the scripted guard behaves.
#[derive(Clone, Copy)]
enum Script {
    /// Answers every request; after a `reload`, pushes `Disabled` this much later.
    ConfirmAfter(Duration),
    /// Answers every request, never reports a reconfiguration.
    NeverConfirms,
}

/// When the guard received each `reload` request.
type Reloads = Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>;

/// A guard on `socket` whose node forges until a reload is confirmed per `script`. `pushed` is
/// set just before the confirming report is written.
fn scripted_guard(socket: &Path, script: Script, pushed: Arc<AtomicBool>) {
    let _ = recording_guard(socket, script, pushed, Arc::default());
}

/// [`scripted_guard`], recording when each `reload` request arrives in `reloads`. Returns the
/// channel of its pushes to subscribers (a test may push reports of its own).
fn recording_guard(
    socket: &Path,
    script: Script,
    pushed: Arc<AtomicBool>,
    reloads: Reloads,
) -> broadcast::Sender<String> {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    let (tx, _) = broadcast::channel::<String>(16);
    let pushes = tx.clone();
    let forging = GuardState {
        forging: Some(true),
        last: Some(Observation::Enabled),
        child_pid: 4242,
        ..GuardState::default()
    };
    actix::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let pushed = pushed.clone();
            let forging = forging.clone();
            let reloads = reloads.clone();
            actix::spawn(async move { serve(conn, script, tx, pushed, forging, reloads).await });
        }
    });
    pushes
}

async fn serve(
    conn: UnixStream,
    script: Script,
    tx: broadcast::Sender<String>,
    pushed: Arc<AtomicBool>,
    forging: GuardState,
    reloads: Reloads,
) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let op = serde_json::from_str::<serde_json::Value>(&line).expect("request")["op"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let _ = write
        .write_all(Answer::ok(forging.clone()).to_line().as_bytes())
        .await;
    match op.as_str() {
        "subscribe" => {
            let mut rx = tx.subscribe();
            while let Ok(push) = rx.recv().await {
                if write.write_all(push.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        "reload" => {
            reloads.lock().expect("reloads").push(tokio::time::Instant::now());
            if let Script::ConfirmAfter(after) = script {
                tokio::time::sleep(after).await;
                let stopped = GuardState {
                    forging: Some(false),
                    last: Some(Observation::Disabled),
                    ..forging
                };
                pushed.store(true, Ordering::SeqCst);
                let _ = tx.send(Answer::event("observed", stopped).to_line());
            }
        }
        _ => {}
    }
}

fn signaller(socket: &Path, stop: StopConfirmation) -> (Addr<NodeSignaller>, Metrics) {
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

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("guard.sock")
}

/// Waits (bounded) until the signaller's subscription to the guard is up
/// (`forge_manager_fencing_covered` 1).
async fn subscribed(metrics: &Metrics) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metrics.fencing_covered.get() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "no guard subscription");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop(addr: &Addr<NodeSignaller>) -> CommandResult {
    addr.send(Reload {
        reason: ReloadReason::StopForging,
    })
    .await
    .expect("mailbox")
}

/// A NodeSignaller stopping with `stop`, subscribed to a guard in `dir` scripted with `script`
/// (see [`scripted_guard`] for `pushed`).
async fn subscribed_to_scripted_guard(
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

/// A guard whose node lost a reload in its replay (`reload_lost`), then reports consensus
/// running (`ChainExtended`); counts the `reload` requests it receives.
fn replaying_guard(socket: &Path, reloads: Arc<AtomicUsize>) {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    let lost = GuardState {
        forging: Some(false),
        last: Some(Observation::NotEffective),
        reload_lost: true,
        child_pid: 4242,
        ..GuardState::default()
    };
    actix::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let (lost, reloads) = (lost.clone(), reloads.clone());
            actix::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                if line.contains("\"reload\"") {
                    reloads.fetch_add(1, Ordering::SeqCst);
                }
                let _ = write
                    .write_all(Answer::ok(lost.clone()).to_line().as_bytes())
                    .await;
                if line.contains("\"subscribe\"") {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let running = GuardState {
                        last: Some(Observation::ChainExtended),
                        ..lost
                    };
                    let _ = write
                        .write_all(Answer::event("observed", running).to_line().as_bytes())
                        .await;
                    // Keep the subscription open.
                    std::future::pending::<()>().await;
                }
            });
        }
    });
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

/// A guard socket file with nobody listening on it: what a SIGKILLed guard leaves behind
/// (a connection is refused).
fn refusing_socket(dir: &tempfile::TempDir) -> PathBuf {
    let socket = socket_in(dir);
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists(), "the socket file stays");
    socket
}

#[actix::test]
async fn a_refused_guard_whose_node_process_is_gone_confirms_the_stop() {
    // A SIGKILLed guard took its node along (PR_SET_PDEATHSIG): the node process the
    // NodeWatcher identified (PID and start time) is gone, so nothing forges and the stop is
    // done, although the guard cannot answer.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = refusing_socket(&dir);
    let (addr, _metrics) = signaller(&socket, StopConfirmation::default());
    let mut node = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn");
    let identity = ProcFs::default().identity(node.id() as i32).expect("identity");
    addr.send(NodeProcess(Some(identity))).await.expect("mailbox");
    node.kill().expect("kill");
    node.wait().expect("reap");
    addr.send(NodeProcess(None)).await.expect("mailbox");
    stop(&addr)
        .await
        .expect("the node process is gone: the stop is confirmed");
}

/// A guard that answers one subscription and, once `exit` fires, pushes the `exited` report of
/// its node (PID `child_pid`) and exits: its socket refuses every later connection.
async fn exiting_guard(socket: &Path, child_pid: u32, exit: tokio::sync::oneshot::Receiver<()>) {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    actix::spawn(async move {
        let Ok((conn, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = conn.into_split();
        let mut line = String::new();
        let _ = BufReader::new(read).read_line(&mut line).await;
        let state = GuardState {
            forging: Some(true),
            last: Some(Observation::Enabled),
            child_pid,
            ..GuardState::default()
        };
        let _ = write
            .write_all(Answer::ok(state.clone()).to_line().as_bytes())
            .await;
        let _ = exit.await;
        let _ = write
            .write_all(Answer::event("exited", state).to_line().as_bytes())
            .await;
        // The guard exits with its node: connection and listener close.
    });
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
    let mut node = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn");
    let identity = ProcFs::default().identity(node.id() as i32).expect("identity");
    addr.send(NodeProcess(Some(identity))).await.expect("mailbox");
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
    assert_eq!(rotated, Ok(()));
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

/// The node simulator behind a [`NodeHost`]: the test process's own identity stands for the
/// node process (alive and verifiable throughout), and a SIGHUP to it is the simulator's.
struct SimHost {
    node: forge_sim::node::NodeHandle,
    identity: ProcessIdentity,
}

impl NodeHost for SimHost {
    fn check_socket(&self, socket: &Path, timeout: Duration) -> BoxFuture<'static, SocketState> {
        ProcFs::default().check_socket(socket, timeout)
    }

    fn listening_socket_inodes(&self, socket: &Path) -> std::io::Result<Vec<u64>> {
        ProcFs::default().listening_socket_inodes(socket)
    }

    fn identity(&self, pid: i32) -> std::io::Result<ProcessIdentity> {
        ProcFs::default().identity(pid)
    }

    fn discover_node(&self, _socket: &Path, _name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        Ok(self.identity)
    }

    fn cmdline(&self, pid: i32) -> std::io::Result<Vec<String>> {
        ProcFs::default().cmdline(pid)
    }

    fn signal(&self, target: ProcessIdentity, signal: rustix::process::Signal) -> Result<(), SignalError> {
        assert_eq!(target, self.identity, "only the node is signalled");
        assert_eq!(signal, rustix::process::Signal::HUP);
        self.node.sighup();
        Ok(())
    }
}

/// The slowest reload of the concurrent node below; `STOP_GRACE` covers it.
const RELOAD_MAX_MS: u64 = 400;

/// A seed whose first reload draw is slow and second fast: a start still under way when the stop
/// that follows it has already taken effect.
fn slow_then_fast_seed(reload: Latency) -> u64 {
    (0..10_000u64)
        .find(|&seed| {
            let mut rng = SplitMix64::new(seed);
            reload.draw(&mut rng) >= Duration::from_millis(300)
                && reload.draw(&mut rng) <= Duration::from_millis(60)
        })
        .expect("some seed draws a slow reload, then a fast one")
}

/// The node simulator handling SIGHUPs concurrently as cardano-node does, started non-producing
/// with credentials in `dir` (its first reload slow, its second fast), and a NodeSignaller by
/// PID that knows its process and confirms a stop after `grace`.
struct ConcurrentNode {
    sim: NodeSim,
    creds: forge_sim::creds::CredentialPaths,
    timeline: PathBuf,
    addr: Addr<NodeSignaller>,
}

impl ConcurrentNode {
    async fn start(dir: &Path, grace: Duration) -> Self {
        let creds = write_test_credentials(dir, 1, 0).expect("credentials");
        let timeline = dir.join("timeline.jsonl");
        let reload = Latency::range_ms(20, RELOAD_MAX_MS);
        let sim = NodeSim::start_with(
            NodeOptions {
                name: "node".into(),
                socket: dir.join("node.socket"),
                kes: creds.kes.clone(),
                vrf: creds.vrf.clone(),
                opcert: creds.opcert.clone(),
                timeline: timeline.clone(),
                start_as_non_producing: true,
                replay: Duration::ZERO,
                metrics_port: None,
                echo_stdout: false,
            },
            NodeBehaviour {
                reload,
                reload_order: ReloadOrder::Concurrent,
                seed: slow_then_fast_seed(reload),
                ..NodeBehaviour::default()
            },
        )
        .await
        .expect("node starts");
        let identity = ProcFs::default()
            .identity(std::process::id() as i32)
            .expect("own identity");
        let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
        let host = SimHost {
            node: sim.handle(),
            identity,
        };
        assert!(grace >= Duration::from_millis(RELOAD_MAX_MS));
        let addr = Supervisor::start(move |_| {
            NodeSignaller::new(host, &metrics).with_stop_confirmation(StopConfirmation {
                grace,
                timeout: Duration::from_secs(5),
            })
        });
        addr.send(NodeProcess(Some(identity))).await.expect("mailbox");
        Self {
            sim,
            creds,
            timeline,
            addr,
        }
    }

    async fn reload(&self, reason: ReloadReason) {
        let r = self.addr.send(Reload { reason }).await.expect("mailbox");
        assert!(r.is_ok(), "{} reload: {r:?}", reason.as_str());
    }

    /// Removes the credential files (as the Decider does before a stopping reload).
    fn remove_credentials(&self) {
        for f in self.credential_files() {
            std::fs::remove_file(f).expect("remove credentials");
        }
    }

    fn credential_files(&self) -> [&PathBuf; 3] {
        [&self.creds.kes, &self.creds.vrf, &self.creds.opcert]
    }

    fn events(&self) -> Vec<forge_sim::timeline::TimelineEvent> {
        forge_sim::timeline::read_file(&self.timeline).expect("timeline")
    }
}

#[actix::test]
async fn a_start_still_under_way_never_undoes_a_stop_confirmed_by_pid() {
    // F20. cardano-node handles every SIGHUP in a thread of its own: a start (credentials
    // present when its handler read them) that is slow to apply can take effect after a stop
    // sent just behind it (credentials absent), and the node forges again after the stop was
    // taken as done. The sidecar must hold the stop's SIGHUP back until the start is done.
    let dir = tempfile::tempdir().expect("tempdir");
    let grace = Duration::from_millis(500);
    let node = ConcurrentNode::start(dir.path(), grace).await;

    // A leader starts forging, and shuts down a moment later: the credentials go first (as the
    // Decider removes them before the stopping reload), then the stop.
    node.reload(ReloadReason::StartForging).await;
    node.remove_credentials();
    let sent = tokio::time::Instant::now();
    node.reload(ReloadReason::Shutdown).await;
    let confirmed_ns = forge_sim::timeline::unix_now_ns();
    let took = sent.elapsed();
    assert!(
        took < 2 * grace + Duration::from_secs(3),
        "the stop took {took:?}"
    );

    // Every reload sent has taken effect once its slowest latency passed after the last SIGHUP.
    tokio::time::sleep(Duration::from_millis(RELOAD_MAX_MS + 200)).await;
    let events = node.events();
    let forging: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.event, EventKind::ForgingOn | EventKind::ForgingOff))
        .collect();
    assert!(
        forging.iter().any(|e| e.event == EventKind::ForgingOn),
        "the start never took effect: {events:#?}"
    );
    let at_confirmation = forging
        .iter()
        .rev()
        .find(|e| e.t_unix_ns <= confirmed_ns)
        .map(|e| e.event);
    let after: Vec<_> = forging.iter().filter(|e| e.t_unix_ns > confirmed_ns).collect();
    assert!(
        at_confirmation == Some(EventKind::ForgingOff) && after.is_empty() && !node.sim.handle().forging(),
        "the node forged when the stop was confirmed or after it (an earlier start's reload applied after \
         the stop's): last before the confirmation {at_confirmation:?}, after it {after:#?}, timeline {events:#?}"
    );
    node.sim.stop().await.expect("node stops");
}

#[actix::test]
async fn a_start_an_earlier_stopping_reload_undoes_is_reloaded_until_the_node_forges() {
    // F24. The other way round from F20: a sidecar that comes back (or a leader the guard just
    // fenced) sends a stopping reload, wins the lease and starts at once. The stopping reload
    // (credentials absent when its handler read them) is slow, the start fast: the start takes
    // effect first, the stopping reload last, and the node no longer forges while its pod holds
    // the lease and means to forge. Nothing else reloaded it: in the two-region chaos soak
    // nobody forged for 27-36 s. One more reload must follow once the stopping one is done.
    let dir = tempfile::tempdir().expect("tempdir");
    let grace = Duration::from_millis(500);
    let node = ConcurrentNode::start(dir.path(), grace).await;
    let aside: Vec<PathBuf> = node
        .credential_files()
        .iter()
        .map(|f| f.with_extension("aside"))
        .collect();
    for (f, a) in node.credential_files().into_iter().zip(&aside) {
        std::fs::rename(f, a).expect("credentials aside");
    }
    // The standby state first (credentials absent), then the start (credentials installed).
    node.reload(ReloadReason::Startup).await;
    for (f, a) in node.credential_files().into_iter().zip(&aside) {
        std::fs::rename(a, f).expect("credentials back");
    }
    node.reload(ReloadReason::StartForging).await;

    // The race happened: the start took effect, then the start-up reload turned forging off.
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(RELOAD_MAX_MS) + Duration::from_secs(3);
    let undone = loop {
        let events = node.events();
        let on = events.iter().position(|e| e.event == EventKind::ForgingOn);
        if let Some(on) = on
            && let Some(off) = events[on..].iter().find(|e| e.event == EventKind::ForgingOff)
        {
            break off.t_unix_ns;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the seed did not produce the race (start first, start-up reload last): {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        node.sim
            .handle()
            .wait_forging(true, grace + Duration::from_secs(3))
            .await,
        "the node stopped forging when the earlier start-up reload took effect after the start, and was not \
         reloaded again: timeline {:#?}",
        node.events()
    );
    let on_again = node
        .events()
        .iter()
        .rev()
        .find(|e| e.event == EventKind::ForgingOn)
        .map(|e| e.t_unix_ns);
    assert!(on_again.is_some_and(|t| t > undone));
    node.sim.stop().await.expect("node stops");
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

async fn start_forging(addr: &Addr<NodeSignaller>) {
    let r = addr
        .send(Reload {
            reason: ReloadReason::StartForging,
        })
        .await
        .expect("mailbox");
    assert_eq!(r, Ok(()));
}

#[actix::test]
async fn a_start_right_after_the_guards_fence_is_reloaded_once_more_through_the_guard() {
    // F24 through the guard, as in the two-region chaos soak: a stalled guard came back, found
    // its permit lapsed and fenced (credential files removed, a SIGHUP); the Decider, still
    // leading, started the node again at once. The fence's reload took 1.2 s, the start's 0.2 s:
    // the node stopped forging after it had started again, and nobody forged for half a minute.
    // A reload must follow the start once the fence has had its STOP_GRACE.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let reloads = Reloads::default();
    let pushes = recording_guard(
        &socket,
        Script::NeverConfirms,
        Arc::new(AtomicBool::new(false)),
        reloads.clone(),
    );
    let grace = Duration::from_millis(600);
    let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let (tx, mut facts) = tokio::sync::mpsc::unbounded_channel();
    let decider = DeciderFacts(tx).start();
    let client = GuardClient::new(&socket, Duration::from_millis(500));
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
    let deadline = clock.mono_of(tokio::time::Instant::now() + Duration::from_secs(30));
    addr.send(Fact::now(Event::LeaseAcquired { deadline }))
        .await
        .expect("mailbox");
    start_forging(&addr).await;

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
    let fence_seen = tokio::time::Instant::now();
    start_forging(&addr).await;

    let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(3);
    while reloads.lock().expect("reloads").len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload followed the start sent while the guard's fence may still have been under way: {:?}",
            reloads.lock().expect("reloads")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let follow_up = reloads.lock().expect("reloads")[2];
    assert!(
        follow_up + Duration::from_millis(100) >= fence_seen + grace,
        "the follow-up reached the guard {:?} after the fence was reported, before the fence had had its \
         STOP_GRACE ({grace:?})",
        follow_up - fence_seen
    );
    // One follow-up only.
    tokio::time::sleep(2 * grace).await;
    assert_eq!(reloads.lock().expect("reloads").len(), 3);
}
