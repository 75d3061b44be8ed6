//! PeerWatcher (docs/architecture.md, "Regions"): one per peer region. Every period it sends a
//! consistent GET (no resourceVersion: served from etcd, never old news) of the peer's
//! CardanoForgeCluster and of its local Lease through the peer's own kubeconfig, and reports to the
//! Decider: `PeerObserved` with `read_at` = when the GET was *sent* (the heartbeat),
//! `PeerLeaseObserved` (sent and received times), or `PeerUnreachable` when the CFC read fails or
//! times out (silence is never evidence: the Decider keeps the peer's last word and blocks a
//! takeover). A peer whose CFC does not exist is reported with no status, which counts as "may be
//! forging". The Lease is reported only when it speaks for the peer: when the peer's CFC names
//! an `activeLeader`, only a Lease held by that pod counts (a vacant or foreign Lease under our
//! lease name may be a stale object of a deployment with another lease name, and proves
//! nothing; the mismatch is logged). Read-only access on the peer side is enough. Watches are not used: a watch event may
//! deliver old news, and the heartbeat must be the time of a read.
//!
//! It also exports the per-peer gauges `cardano_cluster_peer_{reachable, priority, forging,
//! heartbeat_age_seconds}{peer}`.

use std::{path::PathBuf, time::Duration};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Recipient, Supervised, WrapFuture};
use forge_core::{
    crd::CardanoForgeCluster,
    decision::Event,
    lease::{LeaseRecord, Mono, speaks_for_peer},
};
use k8s_openapi::api::coordination::v1::Lease;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::{
    adapters::{
        kube::{KubeApiError, client},
        kube_object::NamedObject,
    },
    clock::Clock,
    messages::Fact,
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
    /// Seconds since the last successful read of the peer's CFC was sent.
    pub heartbeat_age: GaugeVec,
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
                "Seconds since the last successful read of the peer's CardanoForgeCluster was sent.",
            ),
            &["peer"],
        )?;
        registry.register(Box::new(heartbeat_age.clone()))?;
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
    /// Read period.
    pub every: Duration,
    /// Per-call deadline.
    pub timeout: Duration,
}

/// The actor.
pub struct PeerWatcher {
    settings: PeerSettings,
    clock: Clock,
    fact: Recipient<Fact>,
    metrics: Option<PeerMetrics>,
    objects: Option<(NamedObject<CardanoForgeCluster>, NamedObject<Lease>)>,
    in_flight: bool,
    /// A `PollNow` arrived while a read was in flight (sent before it): read again after it.
    poll_again: bool,
    last_seen: Option<Mono>,
    /// Whether the last read succeeded (logs only on a change).
    reachable: Option<bool>,
    /// The peer Lease's holder and the CFC's `activeLeader` when they differ (logs only on a
    /// change).
    lease_mismatch: Option<(String, String)>,
    /// Quorum mode: while this pod is not its region's local leader (the flag, set by the
    /// Decider), the periodic read runs only once per this resync period; `PollNow` always reads.
    gate: Option<(std::sync::Arc<std::sync::atomic::AtomicBool>, Duration)>,
    /// When the last read was started.
    last_poll: Option<tokio::time::Instant>,
}

impl PeerWatcher {
    /// A watcher of one peer, reporting to `fact`.
    pub fn new(
        settings: PeerSettings,
        clock: Clock,
        fact: Recipient<Fact>,
        metrics: Option<PeerMetrics>,
    ) -> Self {
        Self {
            settings,
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
        }
    }

    /// Quorum mode (issue 14's API budget): a standby (not `leader`) reads the peer only once per
    /// `resync`, not every period; the Decider sends `PollNow` when this pod becomes its region's
    /// local leader, so a new leader decides on fresh reads.
    pub fn with_leader_gate(
        mut self,
        leader: std::sync::Arc<std::sync::atomic::AtomicBool>,
        resync: Duration,
    ) -> Self {
        self.gate = Some((leader, resync));
        self
    }

    /// True when the periodic read is skipped now (a standby that read within its resync).
    fn gated_out(&self) -> bool {
        let Some((leader, resync)) = &self.gate else {
            return false;
        };
        !leader.load(std::sync::atomic::Ordering::Relaxed)
            && self.last_poll.is_some_and(|at| at.elapsed() < *resync)
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        self.refresh_age();
        if self.in_flight {
            return;
        }
        self.last_poll = Some(tokio::time::Instant::now());
        self.poll_again = false;
        self.in_flight = true;
        let s = self.settings.clone();
        let objects = self.objects.clone();
        let clock = self.clock;
        let fut = async move {
            let (cfc, lease) = match objects {
                Some(o) => o,
                None => {
                    let c = client(Some(&s.kubeconfig), s.timeout).await?;
                    (
                        NamedObject::new(c.clone(), &s.namespace, &s.name, s.timeout),
                        NamedObject::new(c, &s.namespace, &s.lease, s.timeout),
                    )
                }
            };
            let sent = clock.now();
            let (object, record) = futures::join!(cfc.get(), lease.get());
            let received = clock.now();
            Ok::<_, KubeApiError>(((cfc, lease), sent, received, object, record))
        };
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| {
            act.in_flight = false;
            if std::mem::take(&mut act.poll_again) {
                ctx.notify(crate::messages::PollNow);
            }
            act.report(result);
        }));
    }

    #[allow(clippy::type_complexity)]
    fn report(
        &mut self,
        result: Result<
            (
                (NamedObject<CardanoForgeCluster>, NamedObject<Lease>),
                Mono,
                Mono,
                Result<Option<CardanoForgeCluster>, KubeApiError>,
                Result<Option<Lease>, KubeApiError>,
            ),
            KubeApiError,
        >,
    ) {
        let cluster = self.settings.name.clone();
        let (objects, sent, received, object, lease) = match result {
            Ok(r) => r,
            Err(e) => return self.unreachable(&e, self.clock.now()),
        };
        self.objects = Some(objects);
        let active_leader = object
            .as_ref()
            .ok()
            .and_then(|o| o.as_ref()?.status.as_ref()?.active_leader.clone());
        match object {
            Ok(object) => {
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
        if let Ok(Some(lease)) = lease {
            let record = lease
                .spec
                .as_ref()
                .map(LeaseRecord::from_spec)
                .unwrap_or_default();
            // F14: only the Lease of the pod the peer's CFC names as its leader is evidence.
            let mismatch = (!speaks_for_peer(&record, active_leader.as_deref())).then(|| {
                (
                    record.holder().unwrap_or("").to_owned(),
                    active_leader.clone().unwrap_or_default(),
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
            if mismatch.is_some() {
                return;
            }
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
        self.poll(ctx);
        ctx.run_interval(self.settings.every, |act, ctx| {
            if act.gated_out() {
                act.refresh_age();
            } else {
                act.poll(ctx);
            }
        });
    }
}

impl Supervised for PeerWatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.in_flight = false;
        self.objects = None;
    }
}

impl actix::Handler<crate::messages::PollNow> for PeerWatcher {
    type Result = ();

    fn handle(&mut self, _: crate::messages::PollNow, ctx: &mut Context<Self>) {
        if self.in_flight {
            self.poll_again = true;
        } else {
            self.poll(ctx);
        }
    }
}
