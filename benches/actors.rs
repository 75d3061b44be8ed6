//! Lease-to-command latency through the whole actor system of one pod, as the sidecar builds it
//! (`forge_actors::system::spawn_all`), on its in-memory adapters (`testing::InMemory`, the node
//! under its guard as `testing::ModelNode`), measured at the ports (target: under 100 µs). One
//! pod, node up, valid source credentials; each round trip toggles forging through the Lease:
//!
//! - on:  a foreign writer releases the Lease; our LeaseElector (contending) sees it on its watch
//!   and acquires it. From the moment that acquiring write is answered at the Lease port, we
//!   time until the CardanoLeader status with `forgingEnabled: true` reaches the leader port
//!   (the StatusWriter's write, the first command), and until the credentials reach the
//!   credential store (`Install`, after the status write);
//! - off: a foreign writer takes the Lease; from that write, we time until the credential store
//!   is asked to remove the credentials (`Remove`, the first command).
//!
//! What a figure includes (it is not the Decider's mailbox alone): for "on", the LeaseElector
//! handling the write's answer, its fact queue, the LeaseTap (the NodeSignaller sees the
//! deadline first), the counting inbox, the Decider's decision and plan, and the StatusWriter
//! (or the CredentialKeeper) up to its port call; for "off", in addition, the in-memory Lease
//! watch delivering the foreign write to the elector. The forging status changes every round
//! trip, so the StatusWriter (which writes only on a change) writes every time.
//!
//! Real (not paused) runtime: an actix `System` on tokio's current-thread runtime, as in
//! production; every actor of the pod runs (the NodeWatcher polls every 250 ms; no
//! ClusterWatcher, HealthProber or PeerWatcher without cluster management). Between round trips
//! we wait until the Decider has published the decision and is idle, so every change meets an
//! idle system. Between the two, the other pod names itself in the CardanoLeader status (as its
//! StatusWriter would), so writing ours on the next acquisition is a change; the first line
//! counts the acquisitions whose status write reached the port (it was `n=0` while the
//! StatusWriter compared only with what it last wrote itself: the CardanoLeader kept naming the
//! other pod while this one forged; docs/safety-findings.md, F23).
//!
//! A round trip takes wall time the figures do not include: a stop is confirmed by the node
//! guard's report plus its settle time (`STOP_SETTLE`, 100 ms), and it is sent only once the
//! start reload before it has had its `STOP_GRACE` (F20: the node handles SIGHUPs concurrently).
//! With the default `STOP_GRACE` (2 s) every round trip took over 2 s, and the bench ran for
//! about 20 minutes printing nothing, as if hung; here `STOP_GRACE` is 100 ms (the stop plan's
//! credential removal, the "off" figure, comes before that reload and does not wait for it).
//! Each wait for the Decider fails after `SETTLE_TIMEOUT` naming what it waited for, and a line
//! on stderr marks every `PROGRESS_EVERY` round trips. A plain `harness = false` main: it prints
//! p50/p90/p99/max over `ROUND_TRIPS` round trips after a warm-up.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use forge_actors::{
    clock::Clock,
    ports::{ApiError, CredentialFileError, LeaseSnapshot},
    system::{Handles, spawn_all},
    testing::{CredentialCall, InMemory, MemoryCluster, MemoryLeases, ModelNode, Tap, Tapped, config},
};
use forge_core::{
    crd::CardanoLeader,
    lease::{LeaseRecord, release_record},
};
use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

/// Measured round trips per direction (on and off), after `WARM_UP` unmeasured ones.
const ROUND_TRIPS: usize = 500;
const WARM_UP: usize = 50;

/// `STOP_GRACE` for the bench (module docs): how long a stop waits for the start reload before it.
const STOP_GRACE: &str = "100ms";

/// The longest wait for the Decider to settle on a decision (a round trip takes about 0.2 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A progress line on stderr every this many round trips.
const PROGRESS_EVERY: usize = 100;

/// What arrived at a port, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Our elector's write that made us the holder was answered.
    Acquired,
    /// A CardanoLeader status write with this `forgingEnabled`.
    Status(Option<bool>),
    Install,
    Remove,
}

#[derive(Clone, Default)]
struct Stamps(Arc<Mutex<Vec<(At, Instant)>>>);

impl Stamps {
    fn stamp(&self, at: At) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, Instant::now()));
    }

    fn take(&self) -> Vec<(At, Instant)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn first(stamps: &[(At, Instant)], at: At) -> Instant {
        stamps
            .iter()
            .find(|(a, _)| *a == at)
            .unwrap_or_else(|| panic!("no {at:?} in {stamps:?}"))
            .1
    }
}

/// The bench's tap on the pod's ports (`testing::Tapped`): stamps the answer to every Lease
/// write of ours that leaves us the holder (within a round trip "on", the first is the
/// acquisition: no renewal is due), every CardanoLeader status write with its
/// `forgingEnabled`, and every credential install and removal.
struct StampTap {
    me: String,
    stamps: Stamps,
}

impl Tap for StampTap {
    fn lease_written(&self, snapshot: &LeaseSnapshot) {
        if snapshot.record.holder() == Some(self.me.as_str()) {
            self.stamps.stamp(At::Acquired);
        }
    }

    fn status_called(
        &self,
        _kind: &str,
        status: &serde_json::Value,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        self.stamps.stamp(At::Status(status["forgingEnabled"].as_bool()));
        futures::future::ready(Ok(())).boxed()
    }

    fn credentials_called(&self, call: CredentialCall) -> Result<(), CredentialFileError> {
        self.stamps.stamp(match call {
            CredentialCall::Install => At::Install,
            CredentialCall::Remove => At::Remove,
        });
        Ok(())
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
        if n == 0 {
            println!("{what:<52} n=0 (no such write)");
            return;
        }
        let q = |p: f64| self.0[((n as f64 * p) as usize).min(n - 1)] as f64 / 1_000.0;
        println!(
            "{what:<52} n={n:<6} p50 {:>7.1} µs   p90 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs",
            q(0.50),
            q(0.90),
            q(0.99),
            *self.0.last().unwrap_or(&0) as f64 / 1_000.0
        );
    }
}

struct Pod {
    store: MemoryLeases,
    leader: forge_actors::testing::MemoryObject<CardanoLeader>,
    handles: Handles,
    stamps: Stamps,
    node: ModelNode,
}

impl Pod {
    fn start() -> Pod {
        // Long lease timings: no renewal or takeover timer falls into a round trip.
        let cfg = config(&[
            ("POD_NAME", "bench"),
            ("LEASE_DURATION", "600"),
            ("RENEW_DEADLINE", "400"),
            ("RETRY_PERIOD", "200"),
            ("STOP_GRACE", STOP_GRACE),
        ]);
        let shared = MemoryCluster::new(&cfg);
        let store = shared.leases.clone();
        let world = InMemory::new(&cfg, &shared, Clock::new());
        let node = ModelNode::of(&world);
        node.start(4242, cfg.node.starts_non_producing);
        world.sources.publish_valid(1);
        let stamps = Stamps::default();
        let tap = Arc::new(StampTap {
            me: cfg.lease_identity(),
            stamps: stamps.clone(),
        });
        let mut adapters = node.adapters(&world, &cfg);
        adapters.leases = Arc::new(Tapped::new(world.lease.clone(), tap.clone()));
        adapters.leader = Arc::new(Tapped::new(world.leader.clone(), tap.clone()));
        adapters.credentials = Arc::new(Tapped::new(world.credentials.clone(), tap));
        let handles = spawn_all(&cfg, adapters, &prometheus::Registry::new()).expect("the system starts");
        Pod {
            store,
            leader: world.leader.clone(),
            handles,
            stamps,
            node,
        }
    }

    /// Waits until the Decider has adopted a decision with `forging` and is idle; panics after
    /// `SETTLE_TIMEOUT` with what it shows.
    async fn settled(&mut self, forging: bool) {
        let mut snapshot = self.handles.snapshot.clone();
        let settled = snapshot.wait_for(|s| {
            s.status
                .as_ref()
                .is_some_and(|s| s.forging == Some(forging) && !s.busy)
        });
        match tokio::time::timeout(SETTLE_TIMEOUT, settled).await {
            Ok(published) => {
                published.expect("the Decider publishes");
            }
            Err(_) => {
                let status = self.handles.snapshot.borrow().status.clone();
                panic!(
                    "the Decider did not settle on forging={forging} within {SETTLE_TIMEOUT:?}: {status:?}"
                );
            }
        }
    }

    /// A foreign writer releases the Lease; returns (acquired → status, if written; acquired →
    /// install).
    async fn on(&mut self) -> (Option<Duration>, Duration) {
        let held = self.store.current().expect("the Lease exists").record;
        self.stamps.take();
        self.store
            .write_foreign(release_record(&held, jiff::Timestamp::now()));
        self.settled(true).await;
        assert!(self.node.forging(), "the node forges");
        let s = self.stamps.take();
        let acquired = Stamps::first(&s, At::Acquired);
        let install = Stamps::first(&s, At::Install);
        // `None` when the StatusWriter wrote nothing (it writes only what changed).
        let status = s
            .iter()
            .find(|(a, _)| *a == At::Status(Some(true)))
            .map(|(_, t)| *t);
        if let Some(status) = status {
            assert!(status <= install, "the status is written first: {s:?}");
        }
        (status.map(|t| t - acquired), install - acquired)
    }

    /// A foreign writer takes the Lease; returns taken → remove.
    async fn off(&mut self) -> Duration {
        self.stamps.take();
        let taken = Instant::now();
        self.store.write_foreign(LeaseRecord {
            holder_identity: Some("another-pod".into()),
            lease_duration_seconds: Some(600),
            acquire_time: Some(jiff::Timestamp::now()),
            renew_time: Some(jiff::Timestamp::now()),
            lease_transitions: Some(1),
        });
        // As the other pod's StatusWriter would, it names itself in the CardanoLeader status.
        if let Some(mut object) = self.leader.current() {
            let status = object.status.get_or_insert_with(Default::default);
            status.leader_pod = Some("another-pod".into());
            status.forging_enabled = Some(true);
            self.leader.write_foreign(object);
        }
        self.settled(false).await;
        // The stop is confirmed only after the node reported it and settled; wait for the
        // node's forging to be off too (it is, by the confirmation).
        assert!(!self.node.forging(), "the node stopped forging");
        Stamps::first(&self.stamps.take(), At::Remove) - taken
    }
}

fn main() {
    let system = actix::System::new();
    system.block_on(async {
        let mut pod = Pod::start();
        // The start-up plan, then a ready candidate that contends and acquires the vacant Lease.
        pod.settled(true).await;
        let (mut status, mut install, mut remove) =
            (Samples::default(), Samples::default(), Samples::default());
        for i in 0..WARM_UP + ROUND_TRIPS {
            let off = pod.off().await;
            let (on_status, on_install) = pod.on().await;
            if i >= WARM_UP {
                if let Some(d) = on_status {
                    status.push(d);
                }
                install.push(on_install);
                remove.push(off);
            }
            if (i + 1) % PROGRESS_EVERY == 0 {
                eprintln!("{} of {} round trips", i + 1, WARM_UP + ROUND_TRIPS);
            }
        }
        println!(
            "Lease change at the Lease port -> command at its port (spawn_all on in-memory adapters, real time)"
        );
        status.report("acquired -> status forgingEnabled (first command)");
        install.report("acquired -> credentials installed");
        remove.report("taken by another -> credentials removed (first)");
    });
}
