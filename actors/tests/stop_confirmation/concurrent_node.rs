//! By PID, against the node simulator handling SIGHUPs concurrently as cardano-node does: a
//! start still under way never undoes a confirmed stop (F20), and a start that an earlier
//! stopping reload undoes is reloaded until the node forges (F24).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::ports::{DiscoveryError, NodeHost, SignalError, SocketState};
use forge_actors::{
    adapters::process::{ProcFs, ProcessIdentity},
    messages::{NodeProcess, Reload, Reloaded},
    metrics::{Metrics, PodLabels},
    node_signaller::{NodeSignaller, StopConfirmation},
};
use forge_core::decision::ReloadReason;
use forge_sim::{
    creds::write_test_credentials,
    node::{Latency, NodeBehaviour, NodeOptions, NodeSim, ReloadOrder, SplitMix64},
    timeline::EventKind,
};
use futures::future::BoxFuture;
use prometheus::Registry;

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
            NodeOptions::non_producing("node", dir.join("node.socket"), &creds, &timeline),
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

    async fn reload(&self, reason: ReloadReason) -> Reloaded {
        let r = self.addr.send(Reload { reason }).await.expect("mailbox");
        r.unwrap_or_else(|e| panic!("{} reload: {e:?}", reason.as_str()))
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
    // nobody forged for 27-36 s. The start's answer says until when the stopping one may take
    // effect, and the Decider's lifecycle plans one more reload then (its property tests show
    // that it does, `core/tests/lifecycle_props/follow_up.rs`): here the test stands in for it.
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
    let until = node
        .reload(ReloadReason::StartForging)
        .await
        .undoable_until
        .expect("the start is answered as undoable by the start-up reload still under way");

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
    tokio::time::sleep_until(until).await;
    node.reload(ReloadReason::FollowUp).await;
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
