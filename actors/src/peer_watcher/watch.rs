//! The watches of the peer's CFC and Lease (the `peer_watcher` module docs): opened once the
//! client is built, closed and retried after a failure, and their events, which are only ever a
//! reason to read, except a changed, held Lease.

use std::time::Duration;

use actix::{AsyncContext, Context, StreamHandler};
use forge_core::{
    crd::CardanoForgeCluster,
    decision::Event,
    lease::{LeaseRecord, Mono},
};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;

use super::{PeerWatcher, read::Why};
use crate::{
    messages::Fact,
    ports::{ApiError, PeerObjects, newer_resource_version},
};

/// An item of the watches: which object, in which watch generation (`None`: that watch ended).
#[derive(Debug)]
enum Watched {
    Cfc(Result<Option<Box<CardanoForgeCluster>>, ApiError>),
    Lease(Result<Option<Box<Lease>>, ApiError>),
}

/// The watches' item, tagged with the generation of the watches it came from.
struct WatchItem(u64, Option<Watched>);

impl PeerWatcher {
    /// Opens the watches of the peer's CFC and Lease when none is open, the client is built
    /// (by the first read) and no failure holds them back.
    pub(super) fn open_watch(&mut self, now: Mono, ctx: &mut Context<Self>) {
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
    fn watch_failed(&mut self, error: Option<&ApiError>, ctx: &mut Context<Self>) {
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
