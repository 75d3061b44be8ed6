//! TicketKeeper (docs/quorum.md): quorum mode's forge tickets. One `coordination.k8s.io/v1`
//! Lease per participant (the pool's regions and its witnesses), each in that participant's API
//! server, named like our local Lease with a `-ticket` suffix and held under our region's name.
//! Each is reached through the [`TicketApi`] port (in production ours through our own client,
//! the others through their kubeconfigs), connected on its first call and again until a call
//! through it answers, then kept.
//!
//! It carries out forge-core's pure rules ([`forge_core::quorum`]) and decides nothing itself:
//!
//! - What to do comes from the Decider as a [`TicketIntent`] ([`want`]): only the region's local
//!   leader touches tickets; it takes the ones it may while the decision engine says the region
//!   should forge, keeps (renews) what it holds otherwise, and releases them only once its node's
//!   stop is confirmed.
//! - For each ticket, [`TicketState::step`] says the next request: read, create, a
//!   version-checked replace (acquire or renew), a release, or wait. At most one call per ticket
//!   is in flight, each under its own timeout ([`TicketSettings::call_timeout`], well within the
//!   ticket renew deadline). While the keeper touches tickets (the local leader), each ticket is
//!   followed by a watch: its events are the observations the rules need (a holder's renewal
//!   restarts our observation clock of the record at the event's arrival, a release shows at
//!   once), so a ticket held by someone else, or free, is not read again; if its watch fails,
//!   it is read every retry period until the watch is open again. An observation from a watch
//!   is as good as one from a read for taking: the take is a replace under the
//!   `resourceVersion` observed, so it lands only if the record stayed unchanged since, and a
//!   watch event older than what we know is dropped. A ticket nobody asks us to touch is not
//!   read or watched at all.
//! - Reach: a participant whose calls fail is read every retry period (after each failure's
//!   wait) whatever its watch says, and a ticket whose watch has shown nothing, and which we
//!   have not called, for half a ticket duration is read (a free ticket, or a watch stalled on
//!   a dead path), so a region that stands aside still learns when a majority is back in reach.
//! - After every answer, and on a short tick, the standing
//!   ([`standing`](forge_core::quorum::standing): tickets held, the majority, the forge
//!   deadline, and since when each participant's calls have all failed)
//!   goes to the Decider as `TicketsChanged` when it changed. A ticket counts only until its
//!   renew deadline after our last *successful* write was sent, so a participant that stops
//!   answering drops out of the count by itself; the Decider counts it out of reach once its
//!   calls have failed for longer than a lease duration (docs/quorum.md, "Out of reach").
//!
//! It exports per participant `cardano_forge_ticket_held`, `cardano_forge_ticket_reachable`
//! and `cardano_forge_ticket_age_seconds` (since our last successful call), the totals
//! `cardano_forge_tickets_held` / `cardano_forge_tickets_needed`, and
//! `cardano_forge_quorum_break_glass`; and it sends a [`QuorumReport`] to the Decider for
//! `/status` whenever it changes (who holds each ticket, as last seen). Holder changes and failed calls are logged with the
//! participant and the reason.

mod calls;
mod metrics;
mod standing;
mod watch;

use std::{sync::Arc, time::Duration};

use actix::{
    Actor, AsyncContext, Context, Handler, Message, Recipient, SpawnHandle, StreamHandler, Supervised,
};
use forge_core::{
    config::TicketTiming,
    lease::Mono,
    quorum::{Intent, Seen, TicketState, TicketStep, Want, want},
};
use futures::{FutureExt, future::BoxFuture};

use crate::{
    clock::Clock,
    messages::{Fact, StatusFigures},
    ports::{ApiError, LeaseApi, LeaseSnapshot, TicketApi},
};

/// The actor's name in logs.
pub const ACTOR: &str = "ticket_keeper";

/// The suffix of the ticket Lease's name (our local Lease's name + this).
pub const TICKET_SUFFIX: &str = "-ticket";

/// Decider → TicketKeeper: what the decision engine says about the tickets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct TicketIntent(pub Intent);

/// One participant as configured (how its API server is reached is the [`TicketApi`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Its name (a region's CardanoForgeCluster name, or a witness's).
    pub name: String,
    /// A witness runs no pods.
    pub witness: bool,
}

/// The keeper's settings.
#[derive(Clone)]
pub struct TicketSettings {
    /// Our region's name: the holder we write.
    pub me: String,
    /// Every participant, ours first.
    pub participants: Vec<Participant>,
    /// The ticket Lease's name (for logs: the [`TicketApi`] addresses it).
    pub lease: String,
    /// The ticket timing.
    pub timing: TicketTiming,
    /// Per-call timeout: every read and write gives up after this.
    pub call_timeout: Duration,
    /// `QUORUM_BREAK_GLASS` is on (logged at warn on every renewal).
    pub break_glass: bool,
}

impl TicketSettings {
    /// The per-call timeout for `api_timeout` and `timing`: `API_TIMEOUT`, but never more than a
    /// quarter of the ticket renew deadline, so two renew attempts and their answers fit.
    pub fn call_timeout(api_timeout: Duration, timing: &TicketTiming) -> Duration {
        api_timeout.min(timing.renew_deadline / 4)
    }
}

pub use metrics::TicketMetrics;

/// The keeper's report for `/status` and one participant's ticket in it (the document's types,
/// in the core).
pub use forge_core::status::{QuorumReport, TicketReport};

/// One ticket and what we know of it.
struct Ticket {
    name: String,
    witness: bool,
    /// Its ticket through the [`TicketApi`], once a call through it answered (until then each
    /// call connects again).
    port: Option<Arc<dyn LeaseApi>>,
    state: TicketState,
    in_flight: bool,
    reachable: Option<bool>,
    /// Since when every call to its API server has failed (the first failure with no answer
    /// since); the Decider counts the participant out of reach once that lasts longer than a
    /// Lease duration.
    unreachable_since: Option<Mono>,
    last_ok: Option<Mono>,
    last_read: Option<Mono>,
    /// After a failed call (other than a lost race), no new call before this instant.
    retry_at: Option<Mono>,
    /// The open watch and its generation.
    watch: Option<(SpawnHandle, u64)>,
    /// No watch is opened before this (after one failed).
    watch_retry_at: Option<Mono>,
    /// The last watch failure was logged (once per streak).
    watch_failing: bool,
}

/// A watch event of ticket `.0` from watch generation `.1` (`None`: the watch ended).
struct TicketWatch(usize, u64, Option<Result<Option<LeaseSnapshot>, ApiError>>);

/// What a call to one ticket came to.
enum Outcome {
    Read(Result<Option<LeaseSnapshot>, ApiError>),
    Wrote {
        result: Result<LeaseSnapshot, ApiError>,
        sent: Mono,
        release: bool,
    },
}

/// The actor.
pub struct TicketKeeper {
    settings: TicketSettings,
    api: Arc<dyn TicketApi>,
    clock: Clock,
    fact: Recipient<Fact>,
    metrics: Option<TicketMetrics>,
    /// Where the [`QuorumReport`] goes (the Decider, for `/status`), and what was last sent.
    report: Recipient<StatusFigures>,
    report_sent: Option<QuorumReport>,
    intent: Intent,
    tickets: Vec<Ticket>,
    /// The standing last sent to the Decider.
    sent: Option<forge_core::quorum::Standing>,
    /// When the break-glass warning was last logged (once per retry period while it is on).
    glass_warned: Option<Mono>,
    /// The last watch generation handed out.
    generation: u64,
}

impl TicketKeeper {
    /// A keeper of `settings.participants`' tickets, reached through `api`, reporting to `fact`,
    /// and its [`QuorumReport`] to `report` whenever that changes.
    pub fn new(
        settings: TicketSettings,
        api: Arc<dyn TicketApi>,
        clock: Clock,
        fact: Recipient<Fact>,
        metrics: Option<TicketMetrics>,
        report: Recipient<StatusFigures>,
    ) -> Self {
        let tickets = settings
            .participants
            .iter()
            .map(|p| Ticket {
                name: p.name.clone(),
                witness: p.witness,
                port: None,
                state: TicketState::default(),
                in_flight: false,
                reachable: None,
                unreachable_since: None,
                last_ok: None,
                last_read: None,
                retry_at: None,
                watch: None,
                watch_retry_at: None,
                watch_failing: false,
            })
            .collect();
        if let Some(m) = &metrics {
            m.break_glass.set(i64::from(settings.break_glass));
            m.needed
                .set(i64::try_from(forge_core::quorum::majority(settings.participants.len())).unwrap_or(0));
        }
        Self {
            settings,
            api,
            clock,
            fact,
            metrics,
            report,
            report_sent: None,
            intent: Intent::default(),
            tickets,
            sent: None,
            glass_warned: None,
            generation: 0,
        }
    }

    /// How often the keeper looks at its tickets with no new answer or intent.
    fn tick(&self) -> Duration {
        (self.settings.timing.retry_period / 4).clamp(Duration::from_millis(100), Duration::from_millis(500))
    }

    /// Starts every request the tickets call for now, then reports the standing.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let wall = self.clock.wall();
        let want = want(self.intent);
        let retry = self.settings.timing.retry_period;
        for i in 0..self.tickets.len() {
            match want {
                Want::Leave => self.close_watch(i, ctx),
                _ => self.open_watch(i, now, ctx),
            }
            let t = &self.tickets[i];
            if t.in_flight || t.retry_at.is_some_and(|at| now < at) {
                continue;
            }
            let watched = t.watch.is_some();
            let stale = t.last_read.is_none_or(|at| now.saturating_since(at) >= retry);
            let idle = self.settings.timing.duration / 2;
            let idle_read_due = t.last_read.is_none_or(|at| now.saturating_since(at) >= idle);
            // Reach is learned from calls and watch events. A participant whose calls fail is
            // read every retry period (after each failure's wait) whatever its watch, so the
            // first answer after a heal is seen; one that has shown nothing for half a ticket
            // duration (a free ticket, or a watch stalled on a dead path) is read then.
            let unreachable = t.unreachable_since.is_some();
            let quiet = idle_read_due && t.last_ok.is_none_or(|at| now.saturating_since(at) >= idle);
            let ours = t.state.held.is_some();
            let step = t
                .state
                .step(&self.settings.me, want, now, wall, &self.settings.timing);
            match step {
                TicketStep::Read => self.read(i, ctx),
                TicketStep::Create { record } => self.write(i, None, record, false, ctx),
                TicketStep::Write {
                    record,
                    resource_version,
                    acquire,
                } => {
                    if acquire {
                        tracing::info!(
                            actor = ACTOR, participant = %self.tickets[i].name,
                            previous = ?self.seen_holder(i),
                            "taking the forge ticket: free, released or unrenewed for its whole duration"
                        );
                    }
                    self.write(i, resource_version, record, false, ctx)
                }
                TicketStep::Release {
                    record,
                    resource_version,
                } => {
                    tracing::info!(
                        actor = ACTOR, participant = %self.tickets[i].name,
                        "releasing the forge ticket: this region should not forge and its node's stop is confirmed"
                    );
                    self.tickets[i].state.releasing();
                    self.write(i, resource_version, record, true, ctx)
                }
                // Someone else holds it (or we wait to renew): its watch shows a renewal or a
                // release; without one, re-read a foreign one every retry period.
                TicketStep::WaitUntil(_) if (!ours && ((stale && !watched) || quiet)) || unreachable => {
                    self.read(i, ctx)
                }
                TicketStep::WaitUntil(_) => {}
                // Keeping or releasing with nothing of ours there: the watch shows it; without
                // one, look now and then (visibility and reach).
                TicketStep::Idle
                    if want != Want::Leave && ((idle_read_due && !watched) || quiet || unreachable) =>
                {
                    self.read(i, ctx)
                }
                TicketStep::Idle => {}
            }
        }
        if self.settings.break_glass
            && self
                .glass_warned
                .is_none_or(|at| now.saturating_since(at) >= retry)
        {
            self.glass_warned = Some(now);
            tracing::warn!(
                actor = ACTOR,
                "QUORUM_BREAK_GLASS is on: an override forcing Enabled forges without a majority of the \
                 forge tickets, and two forging regions are then the operator's responsibility"
            );
        }
        self.report_standing(now);
    }

    fn seen_holder(&self, i: usize) -> Option<String> {
        match &self.tickets[i].state.seen {
            Seen::Record(o) => o.record.holder().map(str::to_string),
            _ => None,
        }
    }

    /// Ticket `i` through the [`TicketApi`]: the one kept, or connected afresh until a call
    /// through it answers.
    fn port(&self, i: usize) -> BoxFuture<'static, Result<Arc<dyn LeaseApi>, ApiError>> {
        let t = &self.tickets[i];
        match &t.port {
            Some(port) => futures::future::ready(Ok(port.clone())).boxed(),
            None => self.api.connect(&t.name),
        }
    }

    fn count(&self, i: usize, call: &str) {
        if let Some(m) = &self.metrics {
            m.calls.with_label_values(&[&self.tickets[i].name, call]).inc();
        }
    }
}

impl Actor for TicketKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(
            actor = ACTOR,
            participants = self.tickets.len(),
            lease = %self.settings.lease,
            "quorum mode: keeping the forge tickets while this pod is its region's local leader"
        );
        if self.settings.break_glass {
            tracing::warn!(
                actor = ACTOR,
                "QUORUM_BREAK_GLASS is on: an override forcing Enabled forges without a majority of the tickets"
            );
        }
        ctx.run_interval(self.tick(), |act, ctx| act.drive(ctx));
        self.drive(ctx);
    }
}

impl Supervised for TicketKeeper {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Calls in flight died with the old context: read again; tenures keep their deadlines.
        for t in &mut self.tickets {
            t.in_flight = false;
            t.watch = None;
            t.state.write_failed();
        }
    }
}

impl StreamHandler<TicketWatch> for TicketKeeper {
    fn handle(&mut self, TicketWatch(i, generation, item): TicketWatch, ctx: &mut Context<Self>) {
        if self.tickets[i].watch.as_ref().map(|(_, g)| *g) != Some(generation) {
            return;
        }
        match item {
            None => self.watch_failed(i, None, ctx),
            Some(Err(e)) => self.watch_failed(i, Some(&e), ctx),
            Some(Ok(snapshot)) => {
                self.watched(i, snapshot);
                self.drive(ctx);
            }
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each watch ends with its own `None` item; the keeper goes on.
    }
}

impl Handler<TicketIntent> for TicketKeeper {
    type Result = ();

    fn handle(&mut self, TicketIntent(intent): TicketIntent, ctx: &mut Context<Self>) {
        if intent == self.intent {
            return;
        }
        let (before, after) = (want(self.intent), want(intent));
        if before == Want::Leave && after != Want::Leave {
            // A new local tenure: what we saw while not leader is stale; read everything first.
            for t in &mut self.tickets {
                if !t.in_flight {
                    t.state.write_failed();
                }
            }
        }
        if before != after {
            tracing::info!(
                actor = ACTOR, before = ?before, after = ?after,
                local_leader = intent.local_leader, contend = intent.contend, stopped = intent.stopped,
                "forge tickets: new intent"
            );
        }
        self.intent = intent;
        self.drive(ctx);
    }
}

#[cfg(test)]
mod tests;
