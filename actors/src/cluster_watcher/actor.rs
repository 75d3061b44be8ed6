//! Lifecycle: follow our CardanoForgeCluster for as long as the actor runs.

use actix::{Actor, AsyncContext, Context, Supervised, WrapFuture};

use super::ClusterWatcher;

impl Actor for ClusterWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.spawn(self.cluster.clone().run().into_actor(self));
    }
}

impl Supervised for ClusterWatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.record();
    }
}
