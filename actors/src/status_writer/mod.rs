//! StatusWriter: writes our status, only ever as the lease holder (the Decider sends
//! `WriteStatus` only then).
//!
//! - The `CardanoLeader` status: written only when it changed from what is on the server. A
//!   report equal to our last write is confirmed by a read first: another pod of this cluster
//!   may have written since (a handover A -> B -> A), and then we write again (logged at info
//!   level, naming the pod found there); `lastTransitionTime` moves only
//!   when the leader or its forging state changes (the reference rewrote it on every loop: gap
//!   G-25 in docs/architecture.md). The object is created if absent. At start, an entry naming
//!   this pod is cleared (we hold no lease yet).
//! - With cluster management, first our CardanoForgeCluster status (our claim, which peers
//!   read): a failed CFC write fails the command (the Decider then aborts a start), a failed
//!   CardanoLeader write does not. A CFC write is skipped only when the status last seen on the
//!   server (the ClusterWatcher's reads, `CfcSeen`, and our own write responses) already has the
//!   same content and it is not a claim (a claim is confirmed by the server, never by a cached
//!   copy). Every write carries the `resourceVersion` last seen as a precondition (with nothing
//!   seen yet, the object is read first), so a delayed write never lands over a status written
//!   since: on 409 the object is re-read, and the write is retried once unless the status now
//!   names another pod as the active leader (then the command fails, and the Decider's retry
//!   starts from what is on the server).
//!
//! Its inputs are messages only: `WriteStatus` from the Decider, `CfcSeen` from the
//! ClusterWatcher, `HealthObserved` from the HealthProber (`status.healthStatus`).

mod handlers;

use std::sync::Arc;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Supervised, WrapFuture};
use forge_core::crd::{CardanoForgeCluster, CardanoLeaderStatus, HealthStatus};

use crate::{
    messages::{CfcSeen, HealthObserved},
    metrics::Metrics,
    ports::{ForgeClusterApi, LeaderApi},
    supervisor::Restarts,
};

/// The actor.
pub struct StatusWriter {
    leader: Arc<LeaderApi>,
    pod: String,
    /// The CardanoLeader status we last wrote or read (an equal report is confirmed by a read).
    last: Option<CardanoLeaderStatus>,
    metrics: Option<Metrics>,
    restarts: Restarts,
    /// Cluster management: our CardanoForgeCluster.
    cluster: Option<Arc<ForgeClusterApi>>,
    /// The CFC last seen on the server.
    seen: Option<CardanoForgeCluster>,
    /// This pod's HealthProber's latest result.
    health: Option<HealthStatus>,
}

impl StatusWriter {
    /// A writer of the CardanoLeader `leader` for pod `pod`.
    pub fn new(leader: Arc<LeaderApi>, pod: impl Into<String>, metrics: Option<Metrics>) -> Self {
        let restarts = Restarts::new(
            "status_writer",
            metrics.as_ref().map(|m| m.actor_restarts.clone()),
        );
        Self {
            leader,
            pod: pod.into(),
            last: None,
            metrics,
            restarts,
            cluster: None,
            seen: None,
            health: None,
        }
    }

    /// Adds cluster management: write our CardanoForgeCluster's status too.
    pub fn with_cluster(mut self, cluster: Arc<ForgeClusterApi>) -> Self {
        self.cluster = Some(cluster);
        self
    }
}

impl Actor for StatusWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let leader = self.leader.clone();
        let pod = self.pod.clone();
        let fut = async move {
            let current = leader.get().await?;
            let status = current.and_then(|o| o.status);
            if status.as_ref().and_then(|s| s.leader_pod.as_deref()) == Some(pod.as_str()) {
                let clear = serde_json::json!({
                    "leaderPod": "", "forgingEnabled": false,
                    "reason": "starting", "message": format!("{pod} restarted and holds no lease yet"),
                });
                let written = leader.patch_status(clear, None).await?;
                tracing::info!(pod = %pod, "cleared a stale CardanoLeader entry naming this pod");
                return Ok(written.status);
            }
            Ok::<_, crate::ports::ApiError>(status)
        };
        ctx.wait(fut.into_actor(self).map(|result, act, _| match result {
            Ok(status) => act.last = status,
            // Not fatal: the object may not exist yet (it is created on the first write).
            Err(e) => tracing::debug!(error = %e, "could not read the CardanoLeader at start"),
        }));
    }
}

impl Supervised for StatusWriter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.record();
        self.last = None;
    }
}

impl Handler<CfcSeen> for StatusWriter {
    type Result = ();

    fn handle(&mut self, CfcSeen(object): CfcSeen, _: &mut Context<Self>) {
        self.seen = object.map(|o| *o);
    }
}

impl Handler<HealthObserved> for StatusWriter {
    type Result = ();

    fn handle(&mut self, HealthObserved(health): HealthObserved, _: &mut Context<Self>) {
        self.health = health;
    }
}
