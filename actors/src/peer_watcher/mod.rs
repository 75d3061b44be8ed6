//! PeerWatcher (docs/architecture.md, "Regions"): one per peer region. It follows the peer's
//! CardanoForgeCluster and its local Lease with watches through the peer's own kubeconfig (the
//! [`PeerApi`] port), and
//! sends a consistent GET of both (no resourceVersion: served from etcd, never old news) only when
//! a read has to be *current*: at start, on `PollNow` (our claim was just confirmed, or this pod
//! just became its region's leader) and for a lease duration after it, when a watch shows the CFC
//! at a version not read yet (leaders; a standby waits for its resync), when the Lease shows a
//! vacancy, when the watches have been silent for a lease duration, once per lease duration on a
//! leader, after a watch failed, and every period while the peer is unreachable. It reports to the
//! Decider:
//!
//! - `PeerObserved` only from a consistent read, with `read_at` = when that GET was *sent* (the
//!   heartbeat): a watch event may deliver old news, so it is never evidence by itself, only the
//!   reason to read.
//! - `PeerLeaseObserved` from a read (sent and received times), and from a watch event that shows
//!   the peer's Lease *changed* and held (sent = received = its arrival): such a report can only
//!   restart the Decider's observation clock of the record (a later start is the safe side of the
//!   client-go rule), never prove a lapse, which needs a later read that returns the same record.
//!   A vacant Lease is reported only from a read (a vacancy is evidence).
//! - `PeerUnreachable` when the CFC read fails or times out (silence is never evidence: the
//!   Decider keeps the peer's last word and blocks a takeover). A watch that fails, or goes
//!   silent for a lease duration while the peer's leader should renew every retry period, is a
//!   reason to read, and the read decides.
//!
//! A peer whose CFC does not exist is reported with no status, which counts as "may be forging".
//! The Lease is reported only when it speaks for the peer: when the peer's CFC names an
//! `activeLeader`, only a Lease held by that pod counts (a vacant or foreign Lease under our
//! lease name may be a stale object of a deployment with another lease name, and proves
//! nothing; the mismatch is logged). Read-only access on the peer side is enough (`get`,
//! `list`, `watch`).
//!
//! It exports the per-peer gauges `cardano_cluster_peer_{reachable, priority, forging,
//! heartbeat_age_seconds}{peer}` and the counter `cardano_cluster_peer_reads_total{peer, why}`
//! (consistent reads by reason: each is two GETs).

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Recipient, SpawnHandle, StreamHandler, Supervised,
    WrapFuture,
};
use forge_core::{
    crd::CardanoForgeCluster,
    decision::Event,
    lease::{LeaseRecord, Mono, speaks_for_peer},
};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::{
    adapters::{
        kube::{KubeApiError, newer_resource_version},
        kube_peer::KubePeers,
    },
    clock::Clock,
    messages::Fact,
    ports::{PeerApi, PeerObjects},
};

/// Per-peer gauges (labelled by `peer`).
#[derive(Clone)]
pub struct PeerMetrics {
    /// 1 when the last read of the peer's CFC succeeded.
    pub reachable: IntGaugeVec,
    /// The peer's `status.effectivePriority` (-1 when unknown).
    pub priority: IntGaugeVec,
    /// The peer's `status.forgingEnabled` (1, 0; -1 when unknown).
    pub forging: IntGaugeVec,
    /// Seconds since the peer's API server last showed its state: a successful read sent, or
    /// a watch event received.
    pub heartbeat_age: GaugeVec,
    /// Consistent reads of the peer (a GET of its CFC and one of its Lease) by reason.
    pub reads: IntCounterVec,
}

impl PeerMetrics {
    /// Registers the gauges in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let int = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["peer"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let heartbeat_age = GaugeVec::new(
            Opts::new(
                "cardano_cluster_peer_heartbeat_age_seconds",
                "Seconds since the peer's API server last showed its state (a successful read sent, or a watch event received).",
            ),
            &["peer"],
        )?;
        registry.register(Box::new(heartbeat_age.clone()))?;
        let reads = IntCounterVec::new(
            Opts::new(
                "cardano_cluster_peer_reads_total",
                "Consistent reads of a peer region (a GET of its CardanoForgeCluster and one of its Lease), by reason; \
                 between them the peer is followed by watches.",
            ),
            &["peer", "why"],
        )?;
        registry.register(Box::new(reads.clone()))?;
        Ok(Self {
            reachable: int(
                "cardano_cluster_peer_reachable",
                "1 when the peer region's API server answered the last read.",
            )?,
            priority: int(
                "cardano_cluster_peer_priority",
                "The peer's status.effectivePriority (-1 unknown).",
            )?,
            forging: int(
                "cardano_cluster_peer_forging",
                "The peer's status.forgingEnabled (1 true, 0 false, -1 unknown).",
            )?,
            heartbeat_age,
            reads,
        })
    }
}

/// Where and how a peer is read.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// The peer's name: also its CardanoForgeCluster's name.
    pub name: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
    /// The namespace of its objects.
    pub namespace: String,
    /// The name of its local Lease.
    pub lease: String,
    /// The period of the watcher's tick: reads while eager or unreachable, watch retries.
    pub every: Duration,
    /// Per-call deadline.
    pub timeout: Duration,
    /// The resync period (`LEASE_DURATION`): a leader reads at least this often, anyone reads
    /// when the watches have shown nothing for this long.
    pub resync: Duration,
}

/// Why a consistent read is sent (`cardano_cluster_peer_reads_total{why}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The first read.
    Start,
    /// The Decider asked (`PollNow`).
    PollNow,
    /// Within a lease duration of a `PollNow`: every period.
    Eager,
    /// A watch showed the CFC at a version not read yet (or deleted).
    Changed,
    /// A watch showed the Lease vacant or deleted: a vacancy is evidence only from a read.
    Vacant,
    /// A leader's periodic read.
    Resync,
    /// The watches showed nothing for a lease duration.
    Silent,
    /// The last read failed: every period until one succeeds.
    Unreachable,
    /// A watch failed.
    WatchFailed,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Start => "start",
            Why::PollNow => "poll_now",
            Why::Eager => "eager",
            Why::Changed => "changed",
            Why::Vacant => "vacant",
            Why::Resync => "resync",
            Why::Silent => "silent",
            Why::Unreachable => "unreachable",
            Why::WatchFailed => "watch_failed",
        }
    }
}

/// An item of the watches: which object, in which watch generation (`None`: that watch ended).
#[derive(Debug)]
enum Watched {
    Cfc(Result<Option<Box<CardanoForgeCluster>>, KubeApiError>),
    Lease(Result<Option<Box<Lease>>, KubeApiError>),
}

/// The watches' item, tagged with the generation of the watches it came from.
struct WatchItem(u64, Option<Watched>);

/// The actor.
pub struct PeerWatcher {
    settings: PeerSettings,
    clock: Clock,
    fact: Recipient<Fact>,
    metrics: Option<PeerMetrics>,
    /// The peer's API server.
    api: Arc<dyn PeerApi>,
    objects: Option<PeerObjects>,
    in_flight: bool,
    /// A `PollNow` arrived while a read was in flight (sent before it): read again after it.
    poll_again: bool,
    /// The last sign of life: a successful read sent, or a watch event received.
    last_seen: Option<Mono>,
    /// Whether the last read succeeded (logs only on a change).
    reachable: Option<bool>,
    /// The peer Lease's holder and the CFC's `activeLeader` when they differ (logs only on a
    /// change).
    lease_mismatch: Option<(String, String)>,
    /// This pod leads its region (set by the Decider); without one, it always counts as leader.
    /// A standby reads on a CFC change only at its next resync.
    gate: Option<Arc<AtomicBool>>,
    /// When the last read was sent.
    last_poll: Option<Mono>,
    /// Reads every period until then (after a `PollNow`).
    eager_until: Option<Mono>,
    /// The open watches and their generation.
    watch: Option<SpawnHandle>,
    generation: u64,
    /// No watch is opened before this (after one failed).
    watch_retry_at: Option<Mono>,
    /// Whether the last watch failure was logged (logs once per streak).
    watch_failing: bool,
    /// The CFC's `resourceVersion` as last read, and whether a watch showed a later one.
    cfc_version: Option<String>,
    cfc_dirty: bool,
    /// The `activeLeader` of the CFC as last read.
    active_leader: Option<String>,
    /// The Lease record last reported to the Decider and its `resourceVersion`.
    reported: Option<(LeaseRecord, Option<String>)>,
    /// The Lease's latest `resourceVersion`, from a read or a watch.
    lease_version: Option<String>,
    /// When the watch last showed a new version of the Lease, or a read was sent.
    quiet_since: Option<Mono>,
}

impl PeerWatcher {
    /// A watcher of one peer, reporting to `fact`, reaching the peer through its kubeconfig
    /// ([`KubePeers`]; [`PeerWatcher::with_api`] replaces it).
    pub fn new(
        settings: PeerSettings,
        clock: Clock,
        fact: Recipient<Fact>,
        metrics: Option<PeerMetrics>,
    ) -> Self {
        let api = KubePeers::new(
            [(settings.name.clone(), settings.kubeconfig.clone())],
            &settings.namespace,
            &settings.lease,
            settings.timeout,
        );
        Self {
            settings,
            api: Arc::new(api),
            clock,
            fact,
            metrics,
            objects: None,
            in_flight: false,
            poll_again: false,
            last_seen: None,
            reachable: None,
            lease_mismatch: None,
            gate: None,
            last_poll: None,
            eager_until: None,
            watch: None,
            generation: 0,
            watch_retry_at: None,
            watch_failing: false,
            cfc_version: None,
            cfc_dirty: false,
            active_leader: None,
            reported: None,
            lease_version: None,
            quiet_since: None,
        }
    }

    /// Issue 14's API budget: the Decider keeps `leader` (this pod holds its region's Lease). A
    /// standby reads the peer on a CFC change only at its next resync, and never on the
    /// periodic resync while the watches show the peer's Lease being renewed; the Decider
    /// sends `PollNow` when this pod becomes its region's leader, so a new leader decides on
    /// fresh reads. `resync` replaces [`PeerSettings::resync`].
    pub fn with_leader_gate(mut self, leader: Arc<AtomicBool>, resync: Duration) -> Self {
        self.gate = Some(leader);
        self.settings.resync = resync;
        self
    }

    /// Reaches the peer through `api` (the system's [`PeerApi`]).
    pub fn with_api(mut self, api: Arc<dyn PeerApi>) -> Self {
        self.api = api;
        self
    }

    fn leads(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| g.load(Ordering::Relaxed))
    }

    /// The reason to read now, if any (the tick's check).
    fn due(&self, now: Mono) -> Option<Why> {
        let resync = self.settings.resync;
        let since = |at: Option<Mono>| at.is_none_or(|at| now.saturating_since(at) >= resync);
        if self.reachable == Some(false) {
            Some(Why::Unreachable)
        } else if self.eager_until.is_some_and(|until| now < until) {
            Some(Why::Eager)
        } else if self.cfc_dirty && self.leads() {
            Some(Why::Changed)
        } else if since(self.quiet_since) {
            Some(Why::Silent)
        } else if self.leads() && since(self.last_poll) {
            Some(Why::Resync)
        } else {
            None
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.refresh_age();
        let now = self.clock.now();
        self.open_watch(now, ctx);
        if let Some(why) = self.due(now) {
            self.poll(why, ctx);
        }
    }

    fn poll(&mut self, why: Why, ctx: &mut Context<Self>) {
        self.refresh_age();
        if self.in_flight {
            return;
        }
        if let Some(m) = &self.metrics {
            m.reads
                .with_label_values(&[&self.settings.name, why.as_str()])
                .inc();
        }
        tracing::debug!(peer = %self.settings.name, why = why.as_str(), "reading the peer region");
        let now = self.clock.now();
        self.last_poll = Some(now);
        self.quiet_since = Some(now);
        self.poll_again = false;
        self.in_flight = true;
        let (peer, api) = (self.settings.name.clone(), self.api.clone());
        let objects = self.objects.clone();
        let clock = self.clock;
        let fut = async move {
            let objects = match objects {
                Some(o) => o,
                None => api.connect(&peer).await?,
            };
            let sent = clock.now();
            let (object, record) = futures::join!(objects.cfc.get(), objects.lease.get());
            let received = clock.now();
            Ok::<_, KubeApiError>((objects, sent, received, object, record))
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.in_flight = false;
            if std::mem::take(&mut act.poll_again) {
                ctx.notify(crate::messages::PollNow);
            }
            act.report(result, why, ctx);
        }));
    }

    /// Opens the watches of the peer's CFC and Lease when none is open, the client is built
    /// (by the first read) and no failure holds them back.
    fn open_watch(&mut self, now: Mono, ctx: &mut Context<Self>) {
        if self.watch.is_some() || self.watch_retry_at.is_some_and(|at| now < at) {
            return;
        }
        let Some(PeerObjects { cfc, lease }) = &self.objects else {
            return;
        };
        // The server ends a watch after this (the watcher then resumes it): a dead connection
        // is replaced at the latest then; the silence check reads much sooner.
        let idle = (self.settings.resync * 8).max(Duration::from_secs(60));
        self.generation += 1;
        let generation = self.generation;
        let cfcs = cfc
            .watch(idle)
            .map(|item| Watched::Cfc(item.map(|o| o.map(Box::new))));
        let leases = lease
            .watch(idle)
            .map(|item| Watched::Lease(item.map(|o| o.map(Box::new))));
        let items = futures::stream::select(cfcs, leases)
            .map(move |w| WatchItem(generation, Some(w)))
            .chain(futures::stream::once(async move { WatchItem(generation, None) }));
        self.watch = Some(ctx.add_stream(items));
    }

    /// Closes the watches (they failed): reopened after a period, and read now.
    fn watch_failed(&mut self, error: Option<&KubeApiError>, ctx: &mut Context<Self>) {
        if let Some(handle) = self.watch.take() {
            ctx.cancel_future(handle);
        }
        let now = self.clock.now();
        self.watch_retry_at = Some(now + self.settings.every);
        if !self.watch_failing {
            match error {
                Some(e) => tracing::warn!(peer = %self.settings.name, error = %e,
                    "watch of the peer region failed (a lost connection, or a peer kubeconfig without list and \
                     watch): reading it instead, watching again in a retry period"),
                None => tracing::info!(peer = %self.settings.name,
                    "watch of the peer region ended: reading it instead, watching again in a retry period"),
            }
        }
        self.watch_failing = true;
        if self
            .last_poll
            .is_none_or(|at| now.saturating_since(at) >= self.settings.every)
        {
            self.poll(Why::WatchFailed, ctx);
        }
    }

    /// A watch event of the peer's CFC: a version not read yet makes a leader read now.
    fn cfc_event(&mut self, cfc: Option<Box<CardanoForgeCluster>>, ctx: &mut Context<Self>) {
        let version = cfc.as_ref().and_then(|c| c.metadata.resource_version.clone());
        let changed = match &cfc {
            None => self.cfc_version.is_some(),
            Some(_) => {
                version != self.cfc_version
                    && newer_resource_version(version.as_deref(), self.cfc_version.as_deref())
            }
        };
        if changed {
            self.cfc_dirty = true;
            if self.leads() {
                self.poll(Why::Changed, ctx);
            }
        }
    }

    /// A watch event of the peer's Lease: a changed, held record is reported as observed at
    /// its arrival; a vacancy or a deletion is read.
    fn lease_event(&mut self, lease: Option<Box<Lease>>, ctx: &mut Context<Self>) {
        let Some(lease) = lease else {
            if self.lease_version.is_some() {
                self.poll(Why::Vacant, ctx);
            }
            return;
        };
        let version = lease.metadata.resource_version.clone();
        if !newer_resource_version(version.as_deref(), self.lease_version.as_deref()) {
            return;
        }
        let at = self.clock.now();
        // A new version of the Lease (a renewal, mostly): the peer's leader is alive or the
        // record changed; either way, not silent.
        self.lease_version = version.clone();
        self.quiet_since = Some(at);
        let record = lease
            .spec
            .as_ref()
            .map(LeaseRecord::from_spec)
            .unwrap_or_default();
        if self.reported.as_ref().is_some_and(|(r, _)| *r == record) {
            return;
        }
        if record.is_vacant() {
            self.poll(Why::Vacant, ctx);
            return;
        }
        if !self.speaks(&record) {
            return;
        }
        self.reported = Some((record.clone(), version));
        self.fact.do_send(Fact::now(Event::PeerLeaseObserved {
            cluster: self.settings.name.clone(),
            record,
            sent_at: at,
            received_at: at,
        }));
    }

    /// F14: only the Lease of the pod the peer's CFC names as its leader is evidence (logged on
    /// a change).
    fn speaks(&mut self, record: &LeaseRecord) -> bool {
        let cluster = &self.settings.name;
        let active_leader = self.active_leader.as_deref();
        let mismatch = (!speaks_for_peer(record, active_leader)).then(|| {
            (
                record.holder().unwrap_or("").to_owned(),
                active_leader.unwrap_or_default().to_owned(),
            )
        });
        if mismatch != self.lease_mismatch {
            match &mismatch {
                Some((holder, leader)) => tracing::warn!(
                    peer = %cluster, lease = %self.settings.lease, holder = %holder, active_leader = %leader,
                    "the peer's Lease is not held by the activeLeader its CardanoForgeCluster names: \
                     not taken as evidence (a stale Lease of another deployment, or an election in progress)"
                ),
                None => {
                    tracing::info!(peer = %cluster, "the peer's Lease is held by its activeLeader again")
                }
            }
            self.lease_mismatch = mismatch.clone();
        }
        mismatch.is_none()
    }

    #[allow(clippy::type_complexity)]
    fn report(
        &mut self,
        result: Result<
            (
                PeerObjects,
                Mono,
                Mono,
                Result<Option<CardanoForgeCluster>, KubeApiError>,
                Result<Option<Lease>, KubeApiError>,
            ),
            KubeApiError,
        >,
        why: Why,
        ctx: &mut Context<Self>,
    ) {
        let cluster = self.settings.name.clone();
        let (objects, sent, received, object, lease) = match result {
            Ok(r) => r,
            Err(e) => return self.unreachable(&e, self.clock.now()),
        };
        self.objects = Some(objects);
        match object {
            Ok(object) => {
                self.active_leader = object
                    .as_ref()
                    .and_then(|o| o.status.as_ref()?.active_leader.clone());
                self.cfc_version = object.as_ref().and_then(|o| o.metadata.resource_version.clone());
                self.cfc_dirty = false;
                let status = object.as_ref().and_then(|o| o.status.clone());
                let generation = object.as_ref().and_then(|o| o.metadata.generation);
                if let Some(m) = &self.metrics {
                    m.reachable.with_label_values(&[&cluster]).set(1);
                    let s = status.as_ref();
                    m.priority
                        .with_label_values(&[&cluster])
                        .set(s.and_then(|s| s.effective_priority).map_or(-1, i64::from));
                    m.forging
                        .with_label_values(&[&cluster])
                        .set(s.and_then(|s| s.forging_enabled).map_or(-1, i64::from));
                }
                if self.reachable != Some(true) {
                    tracing::info!(peer = %cluster, "peer region reachable");
                }
                self.reachable = Some(true);
                self.last_seen = Some(sent);
                self.refresh_age();
                self.fact.do_send(Fact::now(Event::PeerObserved {
                    cluster: cluster.clone(),
                    status: status.map(Box::new),
                    generation,
                    read_at: sent,
                }));
            }
            Err(e) => return self.unreachable(&e, sent),
        }
        self.open_watch(self.clock.now(), ctx);
        if let Ok(Some(lease)) = lease {
            let version = lease.metadata.resource_version.clone();
            let record = lease
                .spec
                .as_ref()
                .map(LeaseRecord::from_spec)
                .unwrap_or_default();
            if why == Why::Silent
                && self.reported.as_ref().is_some_and(|(r, _)| *r != record)
                && let Some(handle) = self.watch.take()
            {
                // The Lease changed while the watch showed nothing: it is stale; open a new one.
                tracing::info!(peer = %cluster, "the watch of the peer region missed a change: watching again");
                ctx.cancel_future(handle);
                self.open_watch(self.clock.now(), ctx);
            }
            if newer_resource_version(version.as_deref(), self.lease_version.as_deref()) {
                self.lease_version = version.clone();
            }
            if !self.speaks(&record) {
                return;
            }
            self.reported = Some((record.clone(), version));
            self.fact.do_send(Fact::now(Event::PeerLeaseObserved {
                cluster,
                record,
                sent_at: sent,
                received_at: received,
            }));
        }
    }

    /// A failed read (sent at `at`).
    fn unreachable(&mut self, e: &KubeApiError, at: Mono) {
        let cluster = self.settings.name.clone();
        if self.reachable != Some(false) {
            tracing::warn!(peer = %cluster, error = %e, "peer region unreachable: no takeover from it on silence");
        }
        self.reachable = Some(false);
        if let Some(m) = &self.metrics {
            m.reachable.with_label_values(&[&cluster]).set(0);
        }
        if !e.is_retryable() || matches!(e, KubeApiError::Transport(_)) {
            // Rebuild the client next time (a kubeconfig may have been rotated).
            self.objects = None;
        }
        self.fact
            .do_send(Fact::now(Event::PeerUnreachable { cluster, at }));
    }

    fn refresh_age(&self) {
        if let (Some(m), Some(seen)) = (&self.metrics, self.last_seen) {
            let age = self.clock.now().saturating_since(seen);
            m.heartbeat_age
                .with_label_values(&[&self.settings.name])
                .set(age.as_secs_f64());
        }
    }
}

impl Actor for PeerWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.poll(Why::Start, ctx);
        ctx.run_interval(self.settings.every, |act, ctx| act.tick(ctx));
    }
}

impl Supervised for PeerWatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.in_flight = false;
        self.objects = None;
        self.watch = None;
    }
}

impl StreamHandler<WatchItem> for PeerWatcher {
    fn handle(&mut self, WatchItem(generation, item): WatchItem, ctx: &mut Context<Self>) {
        if generation != self.generation || self.watch.is_none() {
            return;
        }
        match item {
            None => {
                self.watch = None;
                self.watch_failed(None, ctx);
            }
            Some(Watched::Cfc(Err(e)) | Watched::Lease(Err(e))) => self.watch_failed(Some(&e), ctx),
            Some(item) => {
                self.watch_failing = false;
                self.last_seen = Some(self.clock.now());
                match item {
                    Watched::Cfc(Ok(cfc)) => self.cfc_event(cfc, ctx),
                    Watched::Lease(Ok(lease)) => self.lease_event(lease, ctx),
                    Watched::Cfc(Err(_)) | Watched::Lease(Err(_)) => {}
                }
            }
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each watch stream ends with its own `None` item; the actor goes on.
    }
}

impl actix::Handler<crate::messages::PollNow> for PeerWatcher {
    type Result = ();

    fn handle(&mut self, _: crate::messages::PollNow, ctx: &mut Context<Self>) {
        self.eager_until = Some(self.clock.now() + self.settings.resync);
        if self.in_flight {
            self.poll_again = true;
        } else {
            self.poll(Why::PollNow, ctx);
        }
    }
}
