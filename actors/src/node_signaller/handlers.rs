//! One handler per message the NodeSignaller receives.

use actix::{Context, Handler};

use super::NodeSignaller;
use crate::messages::{CommandResult, NodeProcess, Reload};

impl Handler<Reload> for NodeSignaller {
    type Result = CommandResult;

    fn handle(&mut self, msg: Reload, _ctx: &mut Context<Self>) -> CommandResult {
        self.reload(msg.reason)
    }
}

impl Handler<NodeProcess> for NodeSignaller {
    type Result = ();

    fn handle(&mut self, msg: NodeProcess, _ctx: &mut Context<Self>) {
        self.node_process(msg.0);
    }
}
