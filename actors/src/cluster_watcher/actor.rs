//! Lifecycle: at start, clear a stale entry naming this pod (we hold no lease yet); with
//! cluster management, follow our CardanoForgeCluster for as long as the actor runs.

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Supervised, WrapFuture};

use super::{ClusterWatcher, follow::Follow};

impl Actor for ClusterWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(c) = &self.cluster {
            let follow = Follow {
                object: c.object.clone(),
                default_spec: c.default_spec.clone(),
                fact: c.fact.clone(),
                idle: c.idle,
                retry_after: c.retry_after,
                network: c.network.clone(),
                health_spec: c.health_spec.clone(),
                seen: self.seen.clone(),
            };
            ctx.spawn(follow.run().into_actor(self));
        }
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
                let written = leader.patch_status(&clear).await?;
                tracing::info!(pod = %pod, "cleared a stale CardanoLeader entry naming this pod");
                return Ok(written.status);
            }
            Ok::<_, crate::adapters::kube::KubeApiError>(status)
        };
        ctx.wait(fut.into_actor(self).map(|result, act, _| match result {
            Ok(status) => act.last = status,
            // Not fatal: the object may not exist yet (it is created on the first write).
            Err(e) => tracing::debug!(error = %e, "could not read the CardanoLeader at start"),
        }));
    }
}

impl Supervised for ClusterWatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.record();
        self.last = None;
    }
}
