//! A fleet of pods for system tests of the Decider: per pod the real Decider and the real
//! LeaseElector (under a `Supervisor`), all sharing one [`MemoryLeases`] store, with in-memory
//! stand-ins for the CredentialKeeper, the NodeSignaller and the ClusterWatcher, and a fake
//! cardano-node per pod.
//!
//! The fake node models what S1 and S2 are about: `files` follows `Install`/`Remove`, and
//! `forging` follows the last `Reload` given the files (a node that starts with the files
//! present forges from the start, unless it starts non-producing). Every command, node event,
//! forging change and lease-holder change lands in one ordered log with its virtual time, and
//! the invariants are checked *at the instant* each change happens:
//!
//! - S1: never two fake nodes forging at once;
//! - S2: when a pod's `Install` arrives, no other node forges (boot credentials for a node that
//!   is down and starts non-producing excepted); when the Lease passes to a pod
//!   (its write lands), no other node forges; when a pod's release lands, its node does not
//!   forge.
//!
//! A violation is recorded (an actor must not panic) and [`Fleet::assert_safe`] reports it.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use actix::{Actor, Addr, AsyncContext, Context, Handler, ResponseFuture, Supervisor, System};
use forge_actors::{
    clock::Clock,
    decider::{Decider, DeciderOutputs, DeciderSettings},
    http::Snapshot,
    lease_elector::LeaseElector,
    messages::{
        CommandError, CommandFailed, CommandResult, Contend, Fact, Install, Release, Reload, Remove,
        Shutdown, SourcesRotated, WriteStatus,
    },
    metrics::{Metrics, PodLabels},
    ports::{ApiError, ApiErrorKind, LeaseApi, LeaseSnapshot},
    testing::{MemoryLeaseClient, MemoryLeases},
};
use forge_core::{
    config::LeaseTiming,
    decision::{DeciderConfig, Event, ReloadReason, State},
    lease::{LeaseRecord, Mono},
};
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};
use tokio::{sync::watch, time::Instant};

/// Runs `test` in an actix System on a paused tokio clock (as `tests/lease_elector.rs` does,
/// so that instants sit exactly on the timer wheel's millisecond grid).
pub fn on_virtual_time<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime")
    })
    .block_on(test());
}

/// Short timings: lease 3 s, renew deadline 2 s, retry period 0.5 s.
pub fn timing() -> LeaseTiming {
    LeaseTiming {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

/// What a pod is started with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodOptions {
    /// `DeciderSettings::boot_credentials`; the fake node then starts non-producing.
    pub boot_credentials: bool,
    /// `DeciderSettings::status_write_required` (cluster management: the claim must be
    /// written, and a failed status write stops a plan).
    pub status_write_required: bool,
}

/// The Decider settings of the tests (production shapes, short timings).
pub fn settings(pod: &str, options: PodOptions) -> DeciderSettings {
    let t = timing();
    DeciderSettings {
        pod: pod.to_string(),
        heartbeat: t.retry_period,
        retry_after: t.retry_period,
        status_write_required: options.status_write_required,
        boot_credentials: options.boot_credentials,
        reassert_window: Duration::from_secs(2),
        reassert_every: Duration::from_secs(1),
        shutdown_hold_max: Duration::ZERO,
    }
}

/// One line of the log: a command as its recipient got it, or something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    /// CredentialKeeper stand-in got `Install`.
    Install,
    /// CredentialKeeper stand-in got `Remove`.
    Remove,
    /// NodeSignaller stand-in got `Reload`.
    Reload(ReloadReason),
    /// ClusterWatcher stand-in got `WriteStatus` with this `forgingEnabled`.
    WriteStatus(bool),
    /// The LeaseElector got `Contend`.
    Contend(bool),
    /// The LeaseElector got `Release`.
    Release,
    /// The test started the pod's node process.
    NodeUp,
    /// The test stopped the pod's node process.
    NodeDown,
    /// The fake node started or stopped forging.
    Forging(bool),
    /// A write of this pod's elector changed the Lease holder (`None`: released).
    Holder(Option<String>),
}

impl Did {
    /// A command from the Decider (not an event of the world).
    pub fn is_command(&self) -> bool {
        !matches!(
            self,
            Did::NodeUp | Did::NodeDown | Did::Forging(_) | Did::Holder(_)
        )
    }

    /// A command to the CredentialKeeper or NodeSignaller (what touches the node).
    pub fn touches_node(&self) -> bool {
        matches!(self, Did::Install | Did::Remove | Did::Reload(_))
    }

    fn key(&self) -> &'static str {
        match self {
            Did::Install => "install",
            Did::Remove => "remove",
            Did::Reload(_) => "reload",
            Did::WriteStatus(_) => "write_status",
            Did::Contend(_) => "contend",
            Did::Release => "release",
            Did::NodeUp => "node_up",
            Did::NodeDown => "node_down",
            Did::Forging(_) => "forging",
            Did::Holder(_) => "holder",
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the log (total order, finer than virtual time).
    pub seq: usize,
    /// Virtual time.
    pub at: Instant,
    /// Which pod.
    pub pod: String,
    /// What.
    pub did: Did,
    /// For commands: whether the stand-in answered `Ok`.
    pub ok: bool,
}

/// The fake cardano-node of one pod.
#[derive(Debug, Clone, Default)]
pub struct FakeNode {
    /// The node process runs.
    pub up: bool,
    /// The credential files are installed.
    pub files: bool,
    /// Block forging is enabled.
    pub forging: bool,
    /// It starts non-producing whatever the files (boot credentials).
    pub starts_non_producing: bool,
    /// The source credentials are valid (else `Install` is refused, as the keeper refuses).
    pub sources_valid: bool,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, FakeNode>,
    log: Vec<Entry>,
    violations: Vec<String>,
    holder: Option<String>,
    /// Scripted failures: (pod, command key) -> how many of the next ones fail.
    fail_next: BTreeMap<(String, &'static str), u32>,
    /// The next command of a kind to a pod is answered only after this long (a slow disk, a
    /// slow API server); it takes effect at the answer.
    delay_next: BTreeMap<(String, &'static str), Duration>,
}

/// The shared world: fake nodes, log, invariants. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Mutex<Inner>>,
    /// The Lease store all pods share.
    pub store: MemoryLeases,
    /// The clock all pods share (one virtual time).
    pub clock: Clock,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    /// An empty fleet (call inside the System).
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            store: MemoryLeases::new(),
            clock: Clock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts pod `name`: its stand-ins, its supervised elector and its Decider. Its node is
    /// down and its credentials unknown until the test says otherwise.
    pub fn start_pod(&self, name: &'static str, options: PodOptions) -> Pod {
        self.lock().nodes.insert(
            name.to_string(),
            FakeNode {
                starts_non_producing: options.boot_credentials,
                sources_valid: true,
                ..FakeNode::default()
            },
        );
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry, &PodLabels::default(), "test").expect("metrics");

        let decider_ctx = Context::<Decider>::new();
        let decider = decider_ctx.address();
        let client = self.store.client(name);
        let api = Arc::new(TappedLeases {
            pod: name,
            inner: client.clone(),
            fleet: self.clone(),
        });
        let (clock, fact, m) = (self.clock, decider.clone().recipient(), metrics.clone());
        let elector =
            Supervisor::start(move |_| LeaseElector::new(api, name, timing(), clock, fact, Some(m)));
        let tap = ElectorTap {
            pod: name,
            fleet: self.clone(),
            elector: elector.clone(),
        }
        .start();
        let stand_in = StandIn {
            pod: name,
            fleet: self.clone(),
        }
        .start();
        let out = DeciderOutputs {
            contend: tap.clone().recipient(),
            release: tap.recipient(),
            install: stand_in.clone().recipient(),
            remove: stand_in.clone().recipient(),
            reload: stand_in.clone().recipient(),
            write_status: stand_in.recipient(),
            poll_peers: Vec::new(),
        };
        let config = DeciderConfig {
            lease: timing(),
            ..DeciderConfig::single_cluster("local")
        };
        let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        decider_ctx.run(Decider::new(
            settings(name, options),
            State::new(config),
            self.clock,
            out,
            snapshot_tx,
            Some(metrics.clone()),
        ));
        Pod {
            name,
            fleet: self.clone(),
            client,
            decider,
            elector,
            snapshot,
            metrics,
            _registry: registry,
        }
    }

    // === the model ===

    fn push(inner: &mut Inner, pod: &str, did: Did, ok: bool) {
        let seq = inner.log.len();
        inner.log.push(Entry {
            seq,
            at: Instant::now(),
            pod: pod.to_string(),
            did,
            ok,
        });
    }

    /// Sets `pod`'s forging flag, logging a change and checking S1 at this instant.
    fn set_forging(inner: &mut Inner, pod: &str, forging: bool) {
        let node = inner.nodes.get_mut(pod).expect("known pod");
        if node.forging == forging {
            return;
        }
        node.forging = forging;
        Self::push(inner, pod, Did::Forging(forging), true);
        let forgers = Self::forgers_of(inner);
        if forgers.len() > 1 {
            let seq = inner.log.len() - 1;
            inner
                .violations
                .push(format!("S1: {forgers:?} forge at once (log #{seq})"));
        }
    }

    fn forgers_of(inner: &Inner) -> Vec<String> {
        inner
            .nodes
            .iter()
            .filter(|(_, n)| n.forging)
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn others_forging(inner: &Inner, pod: &str) -> Vec<String> {
        Self::forgers_of(inner).into_iter().filter(|p| p != pod).collect()
    }

    /// A command reached `pod`'s stand-in: apply it to the fake node and answer.
    fn command(&self, pod: &str, did: Did) -> CommandResult {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(n) = inner.fail_next.get_mut(&(pod.to_string(), did.key()))
            && *n > 0
        {
            *n -= 1;
            Self::push(inner, pod, did, false);
            return Err(CommandFailed::new(ApiErrorKind::Server, "scripted failure"));
        }
        let node = inner.nodes.get(pod).cloned().expect("known pod");
        let result = match &did {
            Did::Install if !node.sources_valid => Err(CommandFailed::new(
                CommandError::InvalidCredentials,
                "source credentials are invalid",
            )),
            Did::Install => {
                // Boot credentials for a node that is down and starts non-producing cannot
                // make it forge; any other install is a step towards forging.
                let boot = !node.up && node.starts_non_producing;
                let others = Self::others_forging(inner, pod);
                if !boot && !others.is_empty() {
                    inner.violations.push(format!(
                        "S2: {pod} got Install (log #{}) while {others:?} still forge",
                        inner.log.len()
                    ));
                }
                inner.nodes.get_mut(pod).expect("known pod").files = true;
                Ok(())
            }
            Did::Remove => {
                inner.nodes.get_mut(pod).expect("known pod").files = false;
                Ok(())
            }
            Did::Reload(_) if !node.up => Err(CommandFailed::new(
                CommandError::NoNode,
                "no node process to signal",
            )),
            Did::Reload(_) => Ok(()),
            _ => Ok(()),
        };
        Self::push(inner, pod, did.clone(), result.is_ok());
        if matches!(did, Did::Reload(_)) && node.up {
            let files = inner.nodes[pod].files;
            Self::set_forging(inner, pod, files);
        }
        result
    }

    /// A write of `pod`'s elector landed: log a holder change and check S2 at this instant.
    fn lease_written(&self, pod: &str, snapshot: &LeaseSnapshot) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let holder = snapshot.record.holder().map(str::to_string);
        if holder == inner.holder {
            return;
        }
        inner.holder = holder.clone();
        Self::push(inner, pod, Did::Holder(holder.clone()), true);
        let seq = inner.log.len() - 1;
        match holder {
            Some(h) => {
                let others = Self::others_forging(inner, &h);
                if !others.is_empty() {
                    inner.violations.push(format!(
                        "S2: the Lease passed to {h} (log #{seq}) while {others:?} still forge"
                    ));
                }
            }
            None => {
                if inner.nodes[pod].forging {
                    inner
                        .violations
                        .push(format!("S2: {pod} released the Lease (log #{seq}) while forging"));
                }
            }
        }
    }

    /// The test starts (`true`) or stops `pod`'s node process. A node that starts with its
    /// files present forges at once, unless it starts non-producing.
    pub fn set_node(&self, pod: &str, up: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let node = inner.nodes.get_mut(pod).expect("known pod");
        node.up = up;
        let forging = up && node.files && !node.starts_non_producing;
        Self::push(inner, pod, if up { Did::NodeUp } else { Did::NodeDown }, true);
        Self::set_forging(inner, pod, forging);
    }

    /// `pod`'s node process starts forging whatever its files are now: it was started without
    /// `--start-as-non-producing-node` while files were present, and read them then (F12).
    pub fn start_node_forging(&self, pod: &str) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").up = true;
        Self::push(inner, pod, Did::NodeUp, true);
        Self::set_forging(inner, pod, true);
    }

    /// The guard's fence on `pod`'s node: credentials removed, forging off.
    pub fn fence(&self, pod: &str) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").files = false;
        Self::push(inner, pod, Did::Remove, true);
        Self::set_forging(inner, pod, false);
    }

    /// Makes `pod`'s source credentials valid or not (the stand-in refuses to install an
    /// invalid set).
    pub fn set_sources_valid(&self, pod: &str, valid: bool) {
        self.lock().nodes.get_mut(pod).expect("known pod").sources_valid = valid;
    }

    /// The next `n` commands like `did` (by kind) to `pod` fail.
    pub fn fail_next(&self, pod: &str, did: &Did, n: u32) {
        self.lock().fail_next.insert((pod.to_string(), did.key()), n);
    }

    /// The next command like `did` to `pod` takes `delay` to be carried out and answered.
    pub fn delay_next(&self, pod: &str, did: &Did, delay: Duration) {
        self.lock().delay_next.insert((pod.to_string(), did.key()), delay);
    }

    /// Carries out `did` for `pod` after its scripted delay, if any.
    fn command_later(&self, pod: &'static str, did: Did) -> ResponseFuture<CommandResult> {
        let delay = self.lock().delay_next.remove(&(pod.to_string(), did.key()));
        let fleet = self.clone();
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            fleet.command(pod, did)
        })
    }

    // === reading the world ===

    /// The fake node of `pod` now.
    pub fn node(&self, pod: &str) -> FakeNode {
        self.lock().nodes[pod].clone()
    }

    /// The pods whose nodes forge now.
    pub fn forgers(&self) -> Vec<String> {
        Self::forgers_of(&self.lock())
    }

    /// The log so far.
    pub fn log(&self) -> Vec<Entry> {
        self.lock().log.clone()
    }

    /// The log position now (to look at what comes after).
    pub fn mark(&self) -> usize {
        self.lock().log.len()
    }

    /// `pod`'s log entries from `mark` on.
    pub fn entries_since(&self, pod: &str, mark: usize) -> Vec<Entry> {
        self.lock().log[mark..]
            .iter()
            .filter(|e| e.pod == pod)
            .cloned()
            .collect()
    }

    /// The commands `pod` got from `mark` on, in order.
    pub fn commands_since(&self, pod: &str, mark: usize) -> Vec<Did> {
        self.entries_since(pod, mark)
            .into_iter()
            .filter(|e| e.did.is_command())
            .map(|e| e.did)
            .collect()
    }

    /// The first entry from `mark` on (of any pod when `pod` is `None`) matching `pred`.
    pub fn first_since(&self, mark: usize, pod: Option<&str>, pred: impl Fn(&Did) -> bool) -> Option<Entry> {
        self.lock().log[mark..]
            .iter()
            .find(|e| pod.is_none_or(|p| e.pod == p) && pred(&e.did))
            .cloned()
    }

    /// Virtual time now on the shared clock.
    pub fn now(&self) -> Mono {
        self.clock.now()
    }

    /// Sleeps `ms` of virtual time (everything due before runs first).
    pub async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// S1 and S2 held at every instant so far; panics with the violations and the log.
    pub fn assert_safe(&self) {
        let inner = self.lock();
        if inner.violations.is_empty() {
            return;
        }
        let mut report = String::new();
        for e in &inner.log {
            report.push_str(&format!(
                "  #{:<4} {:>9?} {:<6} {:?}{}\n",
                e.seq,
                self.clock.mono_of(e.at),
                e.pod,
                e.did,
                if e.ok { "" } else { "  (failed)" }
            ));
        }
        panic!("invariants violated: {:#?}\nlog:\n{report}", inner.violations);
    }

    /// Prints the log (for debugging a test).
    pub fn dump(&self) {
        for e in self.log() {
            eprintln!(
                "#{:<4} {:>9?} {:<6} {:?}{}",
                e.seq,
                self.clock.mono_of(e.at),
                e.pod,
                e.did,
                if e.ok { "" } else { "  (failed)" }
            );
        }
    }

    /// Sleeps in `step_ms` steps for `total_ms`, asserting S1/S2 after each step and that at
    /// most one node forges at each step boundary.
    pub async fn run_checked(&self, total_ms: u64, step_ms: u64) {
        let mut left = total_ms;
        while left > 0 {
            let step = step_ms.min(left);
            self.sleep_ms(step).await;
            left -= step;
            self.assert_safe();
            assert!(self.forgers().len() <= 1, "S1: {:?}", self.forgers());
        }
    }
}

/// One pod: the handles a test needs.
pub struct Pod {
    /// Its name (the Lease identity).
    pub name: &'static str,
    fleet: Fleet,
    /// Its elector's Lease client, to script faults.
    pub client: MemoryLeaseClient,
    /// Its Decider.
    pub decider: Addr<Decider>,
    /// Its (supervised) elector.
    pub elector: Addr<LeaseElector>,
    /// What the Decider publishes for `/status`.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Its metrics.
    pub metrics: Metrics,
    _registry: prometheus::Registry,
}

impl Pod {
    async fn fact(&self, event: Event) {
        self.decider
            .send(Fact::now(event))
            .await
            .expect("the Decider takes facts");
    }

    /// The node process starts, and the NodeWatcher reports it.
    pub async fn node_up(&self) {
        self.fleet.set_node(self.name, true);
        self.fact(Event::NodeUp).await;
    }

    /// A node process that forges from its start comes up (F12), and the NodeWatcher reports it.
    pub async fn node_up_forging(&self) {
        self.fleet.start_node_forging(self.name);
        self.fact(Event::NodeUp).await;
    }

    /// The node process dies, and the NodeWatcher reports it.
    pub async fn node_down(&self) {
        self.fleet.set_node(self.name, false);
        self.fact(Event::NodeDown).await;
    }

    /// The node process dies and starts again before the NodeWatcher reports either: both
    /// facts then arrive back to back.
    pub async fn node_restarted_before_reported(&self) {
        self.fleet.set_node(self.name, false);
        self.fleet.set_node(self.name, true);
        let down = self.decider.send(Fact::now(Event::NodeDown));
        let up = self.decider.send(Fact::now(Event::NodeUp));
        down.await.expect("the Decider takes facts");
        up.await.expect("the Decider takes facts");
    }

    /// The CredentialKeeper reports a valid source set.
    pub async fn credentials_valid(&self) {
        self.fleet.set_sources_valid(self.name, true);
        self.fact(Event::CredentialsValid).await;
    }

    /// The source set became invalid (corrupt rotation), and the CredentialKeeper reports it.
    pub async fn credentials_invalid(&self, why: &str) {
        self.fleet.set_sources_valid(self.name, false);
        self.fact(Event::CredentialsInvalid { why: why.into() }).await;
    }

    /// A valid new set appeared: `CredentialsValid` + `SourcesRotated`, as the keeper sends.
    pub async fn rotated(&self) {
        self.credentials_valid().await;
        self.decider
            .send(SourcesRotated)
            .await
            .expect("the Decider takes rotations");
    }

    /// The node guard fences the node (its permit lapsed): files removed, forging off, and the
    /// NodeSignaller reports it.
    pub async fn fenced(&self) {
        self.fleet.fence(self.name);
        self.fact(Event::NodeFenced).await;
    }

    /// SIGTERM.
    pub async fn shutdown(&self) {
        self.decider
            .send(Shutdown)
            .await
            .expect("the Decider takes Shutdown");
    }

    /// Node up and credentials valid: a ready candidate.
    pub async fn ready(&self) {
        self.node_up().await;
        self.credentials_valid().await;
    }

    /// Whether the Decider's published decision forges.
    pub fn decides_to_forge(&self) -> bool {
        self.snapshot.borrow().status.as_ref().and_then(|s| s.forging) == Some(true)
    }

    /// Restarts of its elector counted so far.
    pub fn elector_restarts(&self) -> u64 {
        self.metrics
            .actor_restarts
            .with_label_values(&[forge_actors::lease_elector::ACTOR])
            .get()
    }
}

/// The CredentialKeeper, NodeSignaller and ClusterWatcher of one pod, in memory.
struct StandIn {
    pod: &'static str,
    fleet: Fleet,
}

impl Actor for StandIn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(16);
    }
}

impl Handler<Install> for StandIn {
    type Result = ResponseFuture<CommandResult>;
    fn handle(&mut self, _: Install, _: &mut Context<Self>) -> Self::Result {
        self.fleet.command_later(self.pod, Did::Install)
    }
}

impl Handler<Remove> for StandIn {
    type Result = ResponseFuture<CommandResult>;
    fn handle(&mut self, _: Remove, _: &mut Context<Self>) -> Self::Result {
        self.fleet.command_later(self.pod, Did::Remove)
    }
}

impl Handler<Reload> for StandIn {
    type Result = ResponseFuture<CommandResult>;
    fn handle(&mut self, m: Reload, _: &mut Context<Self>) -> Self::Result {
        self.fleet.command_later(self.pod, Did::Reload(m.reason))
    }
}

impl Handler<WriteStatus> for StandIn {
    type Result = ResponseFuture<CommandResult>;
    fn handle(&mut self, m: WriteStatus, _: &mut Context<Self>) -> Self::Result {
        self.fleet
            .command_later(self.pod, Did::WriteStatus(m.0.forging_enabled))
    }
}

/// Records `Contend`/`Release` and forwards them to the real elector, answering with its answer.
struct ElectorTap {
    pod: &'static str,
    fleet: Fleet,
    elector: Addr<LeaseElector>,
}

impl Actor for ElectorTap {
    type Context = Context<Self>;
}

impl Handler<Contend> for ElectorTap {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, m: Contend, _: &mut Context<Self>) -> Self::Result {
        let _ = self.fleet.command(self.pod, Did::Contend(m.0));
        let sent = self.elector.send(m);
        Box::pin(async move {
            let _ = sent.await;
        })
    }
}

impl Handler<Release> for ElectorTap {
    type Result = ResponseFuture<CommandResult>;
    fn handle(&mut self, m: Release, _: &mut Context<Self>) -> Self::Result {
        let _ = self.fleet.command(self.pod, Did::Release);
        let sent = self.elector.send(m);
        Box::pin(async move {
            sent.await
                .map_err(|e| CommandFailed::new(CommandError::Mailbox, e))
                .and_then(|r| r)
        })
    }
}

/// The pod's Lease client, reporting every landed write to the fleet (for the S2 check at the
/// instant the Lease changes hands).
struct TappedLeases {
    pod: &'static str,
    inner: MemoryLeaseClient,
    fleet: Fleet,
}

impl TappedLeases {
    fn tap(
        &self,
        call: BoxFuture<'static, Result<LeaseSnapshot, ApiError>>,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        let (fleet, pod) = (self.fleet.clone(), self.pod);
        call.map(move |r| {
            if let Ok(s) = &r {
                fleet.lease_written(pod, s);
            }
            r
        })
        .boxed()
    }
}

impl LeaseApi for TappedLeases {
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.get()
    }

    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.tap(self.inner.create(record))
    }

    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, ApiError>> {
        self.tap(self.inner.replace(resource_version, record))
    }

    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, ApiError>> {
        self.inner.watch()
    }
}
