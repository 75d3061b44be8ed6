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

mod read;
mod watch;

use std::{sync::Arc, time::Duration};

use actix::{Actor, AsyncContext, Context, Recipient, SpawnHandle, Supervised};
use forge_core::lease::{LeaseRecord, Mono};
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::{
    clock::Clock,
    messages::{Fact, Leading, PollNow},
    ports::{PeerApi, PeerObjects},
};
use read::Why;

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

/// Which peer is read, and how often. Where its API server is and how long a call may take
/// are the [`PeerApi`] adapter's.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// The peer's name: also its CardanoForgeCluster's name, and the name [`PeerApi::connect`]
    /// is given.
    pub name: String,
    /// The name of its local Lease (for logs; the adapter addresses it).
    pub lease: String,
    /// The period of the watcher's tick: reads while eager or unreachable, watch retries.
    pub every: Duration,
    /// The resync period (`LEASE_DURATION`): a leader reads at least this often, anyone reads
    /// when the watches have shown nothing for this long.
    pub resync: Duration,
}

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
    /// Whether this pod leads its region, as the Decider last said (`Leading`); `None`: not
    /// gated, it always counts as leader. A standby reads on a CFC change only at its next
    /// resync.
    leading: Option<bool>,
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
    /// A watcher of one peer, reaching it through `api` (the system's [`PeerApi`]) and
    /// reporting to `fact`.
    pub fn new(
        settings: PeerSettings,
        api: Arc<dyn PeerApi>,
        clock: Clock,
        fact: Recipient<Fact>,
        metrics: Option<PeerMetrics>,
    ) -> Self {
        Self {
            settings,
            api,
            clock,
            fact,
            metrics,
            objects: None,
            in_flight: false,
            poll_again: false,
            last_seen: None,
            reachable: None,
            lease_mismatch: None,
            leading: None,
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

    /// The API budget (docs/quorum.md, "API load"): the watcher starts as a standby and the
    /// Decider tells it with [`Leading`] whether this pod holds its region's Lease. A standby
    /// reads the peer on a CFC change only at its next resync, and never on the periodic resync
    /// while the watches show the peer's Lease being renewed; the Decider sends `PollNow` when
    /// this pod becomes its region's leader, so a new leader decides on fresh reads. `resync`
    /// replaces [`PeerSettings::resync`].
    pub fn with_leader_gate(mut self, resync: Duration) -> Self {
        self.leading = Some(false);
        self.settings.resync = resync;
        self
    }

    fn leads(&self) -> bool {
        self.leading.unwrap_or(true)
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

impl actix::Handler<Leading> for PeerWatcher {
    type Result = ();

    /// Handled before the watcher's next tick or watch event (actix drains an actor's mailbox
    /// before it polls its timers and streams), so they see what the Decider last decided.
    fn handle(&mut self, Leading(on): Leading, _: &mut Context<Self>) {
        if let Some(leading) = &mut self.leading {
            *leading = on;
        }
    }
}

impl actix::Handler<PollNow> for PeerWatcher {
    type Result = ();

    fn handle(&mut self, _: PollNow, ctx: &mut Context<Self>) {
        self.eager_until = Some(self.clock.now() + self.settings.resync);
        if self.in_flight {
            self.poll_again = true;
        } else {
            self.poll(Why::PollNow, ctx);
        }
    }
}
