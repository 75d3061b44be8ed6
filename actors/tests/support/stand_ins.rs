//! The in-memory stand-ins of one pod: the CredentialKeeper, NodeSignaller and ClusterWatcher,
//! the tap on the elector's Contend/Release, and the tap on its Lease client, all reporting to
//! the fleet.

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use forge_actors::{
    lease_elector::LeaseElector,
    messages::{
        CommandError, CommandFailed, CommandResult, Contend, Install, Release, Reload, Remove, WriteStatus,
    },
    ports::{ApiError, LeaseApi, LeaseSnapshot},
    testing::MemoryLeaseClient,
};
use forge_core::lease::LeaseRecord;
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};

use super::{Did, Fleet};

/// The CredentialKeeper, NodeSignaller and ClusterWatcher of one pod, in memory.
pub(super) struct StandIn {
    pub(super) pod: &'static str,
    pub(super) fleet: Fleet,
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
pub(super) struct ElectorTap {
    pub(super) pod: &'static str,
    pub(super) fleet: Fleet,
    pub(super) elector: Addr<LeaseElector>,
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
pub(super) struct TappedLeases {
    pub(super) pod: &'static str,
    pub(super) inner: MemoryLeaseClient,
    pub(super) fleet: Fleet,
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
