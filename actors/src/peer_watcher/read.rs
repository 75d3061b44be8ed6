//! The consistent reads of the peer (the `peer_watcher` module docs): when one is due, sending
//! it, and reporting what it returned (or that it failed) to the Decider.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::{
    crd::CardanoForgeCluster,
    decision::Event,
    lease::{LeaseRecord, Mono, speaks_for_peer},
};
use k8s_openapi::api::coordination::v1::Lease;

use super::PeerWatcher;
use crate::{
    messages::Fact,
    ports::{ApiError, PeerObjects, newer_resource_version},
};

/// Why a consistent read is sent (`cardano_cluster_peer_reads_total{why}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
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

impl PeerWatcher {
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

    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        self.refresh_age();
        let now = self.clock.now();
        self.open_watch(now, ctx);
        if let Some(why) = self.due(now) {
            self.poll(why, ctx);
        }
    }

    pub(super) fn poll(&mut self, why: Why, ctx: &mut Context<Self>) {
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
            Ok::<_, ApiError>((objects, sent, received, object, record))
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.in_flight = false;
            if std::mem::take(&mut act.poll_again) {
                ctx.notify(crate::messages::PollNow);
            }
            act.report(result, why, ctx);
        }));
    }

    /// F14: only the Lease of the pod the peer's CFC names as its leader is evidence (logged on
    /// a change).
    pub(super) fn speaks(&mut self, record: &LeaseRecord) -> bool {
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
                Result<Option<CardanoForgeCluster>, ApiError>,
                Result<Option<Lease>, ApiError>,
            ),
            ApiError,
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
    fn unreachable(&mut self, e: &ApiError, at: Mono) {
        let cluster = self.settings.name.clone();
        if self.reachable != Some(false) {
            tracing::warn!(peer = %cluster, error = %e, "peer region unreachable: no takeover from it on silence");
        }
        self.reachable = Some(false);
        if let Some(m) = &self.metrics {
            m.reachable.with_label_values(&[&cluster]).set(0);
        }
        if !e.is_retryable() || matches!(e, ApiError::Transport(_)) {
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
