//! Lifecycle: follow our CardanoForgeCluster for as long as the actor runs.

use actix::{Actor, AsyncContext, Context, Supervised, WrapFuture};

use super::{ClusterWatcher, follow::Follow};

impl Actor for ClusterWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let c = &self.cluster;
        let follow = Follow {
            object: c.object.clone(),
            default_spec: c.default_spec.clone(),
            fact: c.fact.clone(),
            idle: c.idle,
            retry_after: c.retry_after,
            network: c.network.clone(),
            health_spec: c.health_spec.clone(),
            seen: c.seen.clone(),
        };
        ctx.spawn(follow.run().into_actor(self));
    }
}

impl Supervised for ClusterWatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.record();
    }
}
