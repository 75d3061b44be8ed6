//! Fact-to-command latency through the real actix mailboxes (target: under 100 µs): a `Fact`
//! enters the real Decider's mailbox, and we time until the first command it causes arrives at
//! its recipient. One pod, node up, credentials valid; each round trip toggles forging:
//!
//! - on:  `Fact(LeaseAcquired)` → `WriteStatus` (first command) → `Install` → `Reload`;
//! - off: `Fact(LeaseLost)` → `Remove` (first command) → `Reload`.
//!
//! Real (not paused) runtime: an actix `System` on tokio's current-thread runtime, as in
//! production. The command recipients are one small actor that stamps each command on arrival
//! (`std::time::Instant`) and answers `Ok` at once; the LeaseElector is stubbed (we feed its
//! facts ourselves). Between round trips we wait for the Decider to publish the decision, so
//! every fact meets an idle Decider. A plain `harness = false` main: it prints p50/p90/p99/max
//! over `ROUND_TRIPS` round trips after a warm-up.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Actor, Addr, Context, Handler};
use forge_actors::{
    clock::Clock,
    decider::{Decider, DeciderOutputs, DeciderSettings},
    http::Snapshot,
    messages::{CommandResult, Contend, Fact, Install, Release, Reload, Remove, WriteStatus},
};
use forge_core::decision::{DeciderConfig, Event, State};
use tokio::sync::{mpsc, watch};

/// Measured round trips per direction (on and off), after `WARM_UP` unmeasured ones.
const ROUND_TRIPS: usize = 10_000;
const WARM_UP: usize = 1_000;

/// Which command arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    WriteStatus,
    Install,
    Remove,
    Reload,
    Lease,
}

/// Every command recipient of the Decider: stamps the arrival and answers `Ok`.
struct Sink {
    arrivals: mpsc::UnboundedSender<(Cmd, Instant)>,
}

impl Sink {
    fn arrived(&self, cmd: Cmd) -> CommandResult {
        let _ = self.arrivals.send((cmd, Instant::now()));
        Ok(())
    }
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Install> for Sink {
    type Result = CommandResult;
    fn handle(&mut self, _: Install, _: &mut Context<Self>) -> CommandResult {
        self.arrived(Cmd::Install)
    }
}

impl Handler<Remove> for Sink {
    type Result = CommandResult;
    fn handle(&mut self, _: Remove, _: &mut Context<Self>) -> CommandResult {
        self.arrived(Cmd::Remove)
    }
}

impl Handler<Reload> for Sink {
    type Result = CommandResult;
    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> CommandResult {
        self.arrived(Cmd::Reload)
    }
}

impl Handler<WriteStatus> for Sink {
    type Result = CommandResult;
    fn handle(&mut self, _: WriteStatus, _: &mut Context<Self>) -> CommandResult {
        self.arrived(Cmd::WriteStatus)
    }
}

impl Handler<Contend> for Sink {
    type Result = ();
    fn handle(&mut self, _: Contend, _: &mut Context<Self>) {
        let _ = self.arrivals.send((Cmd::Lease, Instant::now()));
    }
}

impl Handler<Release> for Sink {
    type Result = CommandResult;
    fn handle(&mut self, _: Release, _: &mut Context<Self>) -> CommandResult {
        self.arrived(Cmd::Lease)
    }
}

/// Latencies of one kind, in nanoseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    fn report(&mut self, what: &str) {
        self.0.sort_unstable();
        let n = self.0.len();
        let q = |p: f64| self.0[((n as f64 * p) as usize).min(n - 1)] as f64 / 1_000.0;
        println!(
            "{what:<44} n={n:<6} p50 {:>7.1} µs   p90 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs",
            q(0.50),
            q(0.90),
            q(0.99),
            *self.0.last().unwrap_or(&0) as f64 / 1_000.0
        );
    }
}

struct Pod {
    decider: Addr<Decider>,
    arrivals: mpsc::UnboundedReceiver<(Cmd, Instant)>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    clock: Clock,
}

impl Pod {
    fn start() -> Pod {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let sink = Sink { arrivals: tx }.start();
        let out = DeciderOutputs {
            contend: sink.clone().recipient(),
            release: sink.clone().recipient(),
            install: sink.clone().recipient(),
            remove: sink.clone().recipient(),
            reload: sink.clone().recipient(),
            write_status: sink.recipient(),
            poll_peers: Vec::new(),
        };
        // No timer fires during the run: heartbeat and re-assert out of the way.
        let settings = DeciderSettings {
            pod: "bench".into(),
            heartbeat: Duration::from_secs(3_600),
            retry_after: Duration::from_millis(100),
            status_write_required: false,
            boot_credentials: false,
            reassert_window: Duration::ZERO,
            reassert_every: Duration::from_secs(3_600),
            shutdown_hold_max: Duration::ZERO,
        };
        let clock = Clock::new();
        let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let decider = Decider::new(
            settings,
            State::new(DeciderConfig::single_cluster("bench")),
            clock,
            out,
            snapshot_tx,
            None,
        )
        .start();
        Pod {
            decider,
            arrivals,
            snapshot,
            clock,
        }
    }

    /// Sends `event` into the Decider's mailbox (not awaiting it) and collects the commands it
    /// causes until `last` arrives; returns when each arrived, from the send.
    async fn round_trip(&mut self, event: Event, last: Cmd) -> Vec<(Cmd, Duration)> {
        let sent = Instant::now();
        self.decider
            .try_send(Fact::now(event))
            .expect("the Decider's mailbox has room");
        let mut got = Vec::new();
        loop {
            let (cmd, at) = self.arrivals.recv().await.expect("the sink is alive");
            got.push((cmd, at - sent));
            if cmd == last {
                return got;
            }
        }
    }

    /// Waits until the Decider has adopted a decision with `forging` and is idle.
    async fn settled(&mut self, forging: bool) {
        self.snapshot
            .wait_for(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|s| s.forging == Some(forging) && !s.busy)
            })
            .await
            .expect("the Decider publishes");
    }

    fn deadline(&self) -> forge_core::lease::Mono {
        self.clock.now() + Duration::from_secs(3_600)
    }
}

fn main() {
    let system = actix::System::new();
    system.block_on(async {
        let mut pod = Pod::start();
        // The start-up plan (Remove, Reload), then a ready candidate that contends.
        pod.decider.send(Fact::now(Event::NodeUp)).await.expect("alive");
        pod.round_trip(Event::CredentialsValid, Cmd::Lease).await;
        pod.settled(false).await;
        let (mut first_on, mut install, mut first_off) =
            (Samples::default(), Samples::default(), Samples::default());
        for i in 0..WARM_UP + ROUND_TRIPS {
            let deadline = pod.deadline();
            let on = pod
                .round_trip(Event::LeaseAcquired { deadline }, Cmd::Reload)
                .await;
            pod.settled(true).await;
            let off = pod
                .round_trip(Event::LeaseLost { holder: None }, Cmd::Reload)
                .await;
            pod.settled(false).await;
            assert_eq!(
                on.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
                [Cmd::WriteStatus, Cmd::Install, Cmd::Reload]
            );
            assert_eq!(
                off.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
                [Cmd::Remove, Cmd::Reload]
            );
            if i >= WARM_UP {
                first_on.push(on[0].1);
                install.push(on[1].1);
                first_off.push(off[0].1);
            }
        }
        println!(
            "fact in the Decider's mailbox -> command at its recipient (real actix mailboxes, real time)"
        );
        first_on.report("LeaseAcquired -> WriteStatus (first command)");
        install.report("LeaseAcquired -> Install (after WriteStatus)");
        first_off.report("LeaseLost -> Remove (first command)");
    });
}
