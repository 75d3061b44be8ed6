//! LeaseElector (docs/architecture.md, "Actors" and "Lease timing"): owns the local
//! `coordination.k8s.io/v1` Lease, acquires, renews and releases it with client-go's semantics, and
//! reports the facts `LeaseAcquired{deadline}`, `LeaseRenewed{deadline}`, `LeaseLost{holder}` to
//! the Decider. It decides nothing about forging: the Decider stops forging at the deadline we
//! report.
//!
//! # How it elects (our own implementation; the Rust election crates either never report a
//! loss while the API server is unreachable, or write without a version check)
//!
//! - It contends only after the Decider sends [`Contend`](crate::messages::Contend)`(true)`. While
//!   contending it renews every retry period (a fixed cadence from when the last write was *sent*).
//!   A standby relies on its watch (below) and on the takeover timer; it resyncs with a GET only
//!   once per lease duration plus a jitter of up to 1.2 retry periods (client-go's `JitterUntil`
//!   factor), so standbys do not read in lockstep and a region's standbys cost the API server
//!   next to nothing (client-go's standbys GET every retry period; the watch makes that
//!   unnecessary: every renewal and release arrives as an event).
//! - Every write is version-checked: `replace` with the `resourceVersion` last read or watched,
//!   `create` when the Lease is absent. At most one call (read or write) is in flight. A 409
//!   means someone else wrote first: we re-read and decide again, writing at once at most
//!   [`MAX_IMMEDIATE_CONFLICTS`] times per retry period so a conflict storm cannot make us spin.
//! - Records come from forge-core ([`acquisition_record`], [`release_record`]): the holder,
//!   `acquireTime` and `leaseTransitions + 1` on a holder change, our duration, and a
//!   `renewTime` that always moves forward (at least 1 µs past the one we wrote last), because
//!   the API server skips an update that changes nothing and the `resourceVersion` then stays.
//! - Another holder's lease counts as expired only via [`LeaseObservation`]: a full lease
//!   duration after *we* observed its record last change, on our monotonic clock; never by its
//!   `renewTime` against our wall clock. A standby arms a timer at `earliest_takeover`.
//! - The Lease is watched (`ctx.add_stream`): a release (vacant Lease) or another holder is seen
//!   within milliseconds, and a contending standby acquires a vacant Lease at once (L1: graceful
//!   handover under 1 s), not at its next poll.
//!
//! # What it reports, and when (S1, S2)
//!
//! - `LeaseAcquired{deadline}` once per tenure, `LeaseRenewed{deadline}` after every successful
//!   renewal; `deadline` = when that request was *sent* + renew deadline ([`HeldLease`]). A
//!   failed renewal never moves it; the answer to a request whose deadline has passed already is
//!   not reported.
//! - `LeaseLost{holder}` once per tenure, when we learn someone else holds it, when our write
//!   loses (409 and the re-read shows another holder), at our deadline without a successful
//!   renewal (a timer fires *at* the deadline, before any standby may take over at its
//!   observation + duration > deadline), or when we release. A standby also reports
//!   `LeaseLost{holder}` whenever the holder it knows changes (the Decider shows it), never
//!   naming us. Acquisitions and losses count in `cardano_leadership_changes_total`.
//! - Facts go through an ordered queue to one forwarding task that `send().await`s each, so
//!   they arrive in order and the elector never blocks on the Decider (which may itself be
//!   waiting for our answer to `Release`).
//!
//! # Failures and restarts
//!
//! API errors are counted (`forge_manager_kube_api_errors_total{op,kind}`) and retried at the
//! next retry period. Every call also runs under our own guard of one renew deadline (the port
//! promises its own, shorter, timeouts; a call that answers later could not help anyway). A
//! watch that fails or ends stops the actor; its `Supervisor` restarts it after the backoff of
//! [`Restarts`]. `restarting()` forgets the per-connection state (the observation, the call in
//! flight, timers) and **keeps** the [`HeldLease`] and the facts last reported: the deadline
//! the Decider holds stays exactly as valid as before (nothing after the last successful renewal
//! ever extended it), the deadline timer is re-armed at start so `LeaseLost` still comes on
//! time, and after reconnecting we renew at once. Reporting a loss on every restart instead
//! would make a watch blip stop forging for nothing: safety never depended on it, because the
//! Decider stops forging at the deadline by itself (S1).

mod actor;
mod handlers;

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use actix::{ActorFutureExt, AsyncContext, Context, Recipient, SpawnHandle, WrapFuture};
use forge_core::{
    config::LeaseTiming,
    decision::Event,
    lease::{HeldLease, LeaseObservation, LeaseRecord, Mono, Verdict, acquisition_record, release_record},
};
use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::{
    clock::Clock,
    messages::{CommandFailed, CommandResult, Fact},
    metrics::Metrics,
    ports::{ApiError, ApiErrorKind, LeaseApi, LeaseSnapshot},
    supervisor::Restarts,
};

/// The actor's name in `forge_manager_actor_restarts_total{actor}` and in logs.
pub const ACTOR: &str = "lease_elector";

/// Writes at once after a 409 (re-read, then write again) at most this often per retry period;
/// further conflicts wait for the next period. Two: one genuine race plus one stale read.
pub const MAX_IMMEDIATE_CONFLICTS: u32 = 2;

/// client-go's `JitterFactor` (the configuration's, one copy): a standby's poll waits between 1
/// and 2.2 retry periods.
pub use forge_core::config::JITTER_FACTOR;

/// Mailbox bound: commands come from the Decider only, one at a time.
const MAILBOX_CAPACITY: usize = 16;

/// Conflicts tolerated while releasing before `Release` answers with an error.
const MAX_RELEASE_CONFLICTS: u32 = 3;

/// `op` labels of `forge_manager_kube_api_errors_total` and `..._api_call_duration_seconds`.
const OP_GET: &str = "lease_get";
const OP_CREATE: &str = "lease_create";
const OP_REPLACE: &str = "lease_replace";
const OP_RELEASE: &str = "lease_release";
const OP_WATCH: &str = "lease_watch";

/// What we know of the Lease on this connection.
#[derive(Debug, Clone, Default)]
enum Seen {
    /// Not read yet (just started or restarted).
    #[default]
    Unknown,
    /// It does not exist: the next write creates it.
    Absent,
    /// As last read or watched, with when we first saw that record.
    Present(LeaseObservation),
}

/// What to do once a read is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterRead {
    /// Acquire if the verdict allows (a standby's poll, the first read).
    Consider,
    /// A write of ours lost with 409: renew again at once if the Lease is still ours.
    RetryAfterConflict,
    /// A `Release` is waiting for the current record.
    Release,
}

/// Per-connection state: reset by `restarting()`, because actix reuses the struct.
#[derive(Debug, Default)]
struct Connection {
    /// The watch is open and the first read was issued (false during restart backoff).
    connected: bool,
    seen: Seen,
    /// A read or write is in flight (never two).
    in_flight: bool,
    /// 409s since the last retry-period tick.
    conflicts: u32,
    /// A call failed since the last successful read: a standby's next read comes after a
    /// retry period, not after a lease duration.
    retry_soon: bool,
    /// When our last acquire/renew write was sent (renewals keep a fixed cadence from it).
    last_write_sent: Option<Mono>,
    tick: Option<SpawnHandle>,
    takeover: Option<SpawnHandle>,
}

/// The elector of the local Lease. See the module docs for its behaviour.
pub struct LeaseElector {
    api: Arc<dyn LeaseApi>,
    identity: String,
    timing: LeaseTiming,
    clock: Clock,
    metrics: Option<Metrics>,
    restarts: Restarts,
    facts: mpsc::UnboundedSender<Fact>,
    /// Taken by the first `started()`, which spawns the forwarding task.
    forwarder: Option<(mpsc::UnboundedReceiver<Fact>, Recipient<Fact>)>,
    rng: u64,
    /// Kept across restarts: the Decider does not resend it.
    contending: bool,
    /// Our tenure, `Some` from `LeaseAcquired` until `LeaseLost` (kept across restarts).
    held: Option<HeldLease>,
    /// While not holding: the holder named in the last `LeaseLost` (the Decider starts with
    /// "not held, holder unknown").
    reported_holder: Option<String>,
    /// `Release` commands waiting for their answer.
    releases: Vec<oneshot::Sender<CommandResult>>,
    deadline_timer: Option<SpawnHandle>,
    /// Backoff to wait in `started()` before reconnecting after a restart.
    restart_delay: Duration,
    conn: Connection,
}

impl std::fmt::Debug for LeaseElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseElector")
            .field("identity", &self.identity)
            .field("contending", &self.contending)
            .field("held", &self.held)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl LeaseElector {
    /// An elector of the Lease behind `api`, contending as `identity` (the pod name) with
    /// `timing`, reporting to `decider`. `metrics` may be `None` (tests). It does nothing
    /// until started, and does not contend until it receives `Contend(true)`.
    pub fn new(
        api: Arc<dyn LeaseApi>,
        identity: impl Into<String>,
        timing: LeaseTiming,
        clock: Clock,
        decider: Recipient<Fact>,
        metrics: Option<Metrics>,
    ) -> Self {
        let identity = identity.into();
        let (facts, rx) = mpsc::unbounded_channel();
        let restarts = Restarts::new(ACTOR, metrics.as_ref().map(|m| m.actor_restarts.clone()));
        // Deterministic per identity (replayable tests), different between pods.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        identity.hash(&mut hasher);
        Self {
            api,
            identity,
            timing,
            clock,
            metrics,
            restarts,
            facts,
            forwarder: Some((rx, decider)),
            rng: hasher.finish() | 1,
            contending: false,
            held: None,
            reported_holder: None,
            releases: Vec::new(),
            deadline_timer: None,
            restart_delay: Duration::ZERO,
            conn: Connection::default(),
        }
    }

    /// Our identity (the holder name we write).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    // === facts and metrics ===

    fn report(&self, event: Event) {
        // The forwarding task lives as long as the system; if it is gone, so is the Decider.
        let _ = self.facts.send(Fact::now(event));
    }

    fn count_error(&mut self, op: &'static str, e: &ApiError) {
        // A standby whose call failed (a 409 included) reads again after a retry period, not a
        // lease duration: the watch may have missed nothing, but the next attempt must not wait.
        self.conn.retry_soon = true;
        if let Some(m) = &self.metrics {
            m.kube_api_errors
                .with_label_values(&[op, e.kind().as_str()])
                .inc();
        }
    }

    fn observe_call(&self, op: &'static str, took: Duration) {
        if let Some(m) = &self.metrics {
            m.api_call_duration
                .with_label_values(&[op])
                .observe(took.as_secs_f64());
        }
    }

    fn leadership_changed(&self, leading: bool) {
        if let Some(m) = &self.metrics {
            m.leadership_changes.inc();
            m.leader_status.set(i64::from(leading));
        }
    }

    /// Spawns the task that hands facts to the Decider in order (first start only).
    fn start_forwarder(&mut self) {
        let Some((mut rx, decider)) = self.forwarder.take() else {
            return;
        };
        actix::spawn(async move {
            while let Some(fact) = rx.recv().await {
                if let Err(e) = decider.send(fact).await {
                    tracing::warn!(actor = ACTOR, error = %e, "the Decider did not take a lease fact");
                }
            }
        });
    }

    // === what we know ===

    /// The holder as we know it (`None`: vacant or absent); `None` too when unknown.
    fn known_holder(&self) -> Option<Option<String>> {
        match &self.conn.seen {
            Seen::Unknown => None,
            Seen::Absent => Some(None),
            Seen::Present(o) => Some(o.record.holder().map(str::to_string)),
        }
    }

    /// The holder to name in `LeaseLost`: never ourselves.
    fn other_holder(&self) -> Option<String> {
        self.known_holder().flatten().filter(|h| *h != self.identity)
    }

    fn record_is_ours(&self) -> bool {
        matches!(&self.conn.seen, Seen::Present(o) if o.record.is_held_by(&self.identity))
    }

    /// Folds a read or watched Lease into the observation. A snapshot older than the one we
    /// have (a watch event overtaken by our own write's answer) is ignored: resourceVersions
    /// are opaque by contract but etcd revisions in practice, so they are compared only when
    /// both parse as numbers.
    fn observe(&mut self, snapshot: Option<LeaseSnapshot>) -> bool {
        let now = self.clock.now();
        match snapshot {
            None => self.conn.seen = Seen::Absent,
            Some(s) => {
                let prev = match &self.conn.seen {
                    Seen::Present(o) => Some(o),
                    _ => None,
                };
                let version = |v: Option<&String>| v.and_then(|v| v.parse::<u64>().ok());
                if let (Some(old), Some(new)) = (
                    version(prev.and_then(|p| p.resource_version.as_ref())),
                    version(s.resource_version.as_ref()),
                ) && new < old
                {
                    return false;
                }
                self.conn.seen =
                    Seen::Present(LeaseObservation::observe(prev, s.record, s.resource_version, now));
            }
        }
        true
    }

    /// Brings what we reported in line with what we know: a tenure ends when the record names
    /// someone else (or no one); a standby reports a changed holder. Re-arms the takeover timer.
    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let Some(holder) = self.known_holder() else {
            return;
        };
        if self.held.is_some() {
            if holder.as_deref() != Some(self.identity.as_str()) {
                let reason = if holder.is_some() {
                    "another holder took the lease"
                } else {
                    "the lease was emptied or deleted by someone else"
                };
                self.lose(holder, reason, ctx);
            }
        } else {
            let shown = holder.filter(|h| *h != self.identity);
            if shown != self.reported_holder {
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = ?shown, "lease holder changed");
                self.reported_holder = shown.clone();
                self.report(Event::LeaseLost { holder: shown });
            }
        }
        self.arm_takeover(ctx);
    }

    /// Ends our tenure: report `LeaseLost{holder}` once, stop the deadline timer.
    fn lose(&mut self, holder: Option<String>, reason: &'static str, ctx: &mut Context<Self>) {
        if self.held.take().is_none() {
            return;
        }
        if let Some(h) = self.deadline_timer.take() {
            ctx.cancel_future(h);
        }
        self.leadership_changed(false);
        tracing::info!(actor = ACTOR, identity = %self.identity, holder = ?holder, reason, "lease lost");
        self.reported_holder = holder.clone();
        self.report(Event::LeaseLost { holder });
    }

    /// A write of ours succeeded: start or extend our tenure from when it was sent.
    fn won(&mut self, sent_at: Mono, took: Duration, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let next = match self.held {
            Some(h) => h.renewed(sent_at, &self.timing),
            None => HeldLease::acquired(sent_at, &self.timing),
        };
        if next.must_stop_forging(now) {
            tracing::warn!(actor = ACTOR, identity = %self.identity, took_ms = took.as_millis() as u64,
                "a lease write succeeded only after its renew deadline; not counted");
            return;
        }
        let deadline = next.deadline;
        match self.held.replace(next) {
            Some(_) => {
                if let Some(m) = &self.metrics {
                    m.lease_renew_latency.observe(took.as_secs_f64());
                }
                tracing::debug!(actor = ACTOR, identity = %self.identity, ?deadline, "lease renewed");
                self.report(Event::LeaseRenewed { deadline });
            }
            None => {
                self.reported_holder = None;
                self.leadership_changed(true);
                let transitions = match &self.conn.seen {
                    Seen::Present(o) => o.record.lease_transitions,
                    _ => None,
                };
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = %self.identity,
                    ?deadline, ?transitions, "lease acquired");
                self.report(Event::LeaseAcquired { deadline });
            }
        }
        self.arm_deadline(ctx);
    }

    // === timers ===

    fn cancel(ctx: &mut Context<Self>, handle: &mut Option<SpawnHandle>) {
        if let Some(h) = handle.take() {
            ctx.cancel_future(h);
        }
    }

    /// Fires `LeaseLost` at our deadline unless a renewal moves it first.
    fn arm_deadline(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.deadline_timer);
        if let Some(h) = self.held {
            let delay = h.deadline.saturating_since(self.clock.now());
            self.deadline_timer = Some(ctx.run_later(delay, |act, ctx| {
                act.deadline_timer = None;
                act.deadline_reached(ctx);
            }));
        }
    }

    fn deadline_reached(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        match self.held {
            Some(h) if h.must_stop_forging(now) => {
                let holder = self.other_holder();
                self.lose(holder, "renew deadline passed without a successful renewal", ctx);
                self.arm_takeover(ctx);
            }
            Some(_) => self.arm_deadline(ctx),
            None => {}
        }
    }

    /// A contending standby tries again at the earliest instant the holder's lease may have
    /// expired (our observation + its duration), unless the record changes first.
    fn arm_takeover(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.conn.takeover);
        if !self.conn.connected || !self.contending || self.held.is_some() {
            return;
        }
        let Seen::Present(o) = &self.conn.seen else {
            return;
        };
        let now = self.clock.now();
        if let Verdict::HeldBy { until, .. } = o.verdict(&self.identity, now, &self.timing) {
            self.conn.takeover = Some(ctx.run_later(until.saturating_since(now), |act, ctx| {
                act.conn.takeover = None;
                act.consider(ctx);
            }));
        }
    }

    /// Schedules the next step: a renewal `retry_period` after the last write was sent while we
    /// hold the lease, else a standby's resync read after a lease duration plus a jitter (the
    /// watch shows every change in between; the takeover timer acts on a silent holder).
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.conn.tick);
        if !self.conn.connected || !self.contending || self.conn.in_flight || !self.releases.is_empty() {
            return;
        }
        let delay = if self.held.is_some() {
            let now = self.clock.now();
            self.conn.last_write_sent.map_or(Duration::ZERO, |s| {
                (s + self.timing.retry_period).saturating_since(now)
            })
        } else if self.conn.retry_soon {
            self.timing.retry_period + self.jitter()
        } else {
            self.timing.duration + self.jitter()
        };
        self.conn.tick = Some(ctx.run_later(delay, |act, ctx| {
            act.conn.tick = None;
            act.tick(ctx);
        }));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.conn.conflicts = 0;
        self.conn.retry_soon = false;
        if !self.conn.connected || !self.contending || self.conn.in_flight || !self.releases.is_empty() {
            return;
        }
        if self.held.is_some() && self.record_is_ours() {
            self.write(ctx);
        } else {
            self.read(AfterRead::Consider, ctx);
        }
    }

    /// `retry_period * JITTER_FACTOR * u`, `u` uniform in [0, 1) (xorshift64*): added to a
    /// standby's wait (a lease duration for a resync, a retry period after a failed call).
    fn jitter(&mut self) -> Duration {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        self.timing.retry_period.mul_f64(JITTER_FACTOR * unit)
    }

    // === acquiring and renewing ===

    /// A standby acquires now if the verdict allows (vacant, expired, or ours after a restart);
    /// else waits for the takeover timer. Renewals happen only on ticks.
    fn consider(&mut self, ctx: &mut Context<Self>) {
        if !self.conn.connected
            || !self.contending
            || self.conn.in_flight
            || !self.releases.is_empty()
            || self.held.is_some()
            || self.conn.conflicts >= MAX_IMMEDIATE_CONFLICTS
        {
            return;
        }
        let now = self.clock.now();
        let verdict = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Consider, ctx),
            Seen::Absent => Verdict::Vacant,
            Seen::Present(o) => o.verdict(&self.identity, now, &self.timing),
        };
        match verdict {
            Verdict::HeldBy { .. } => self.arm_takeover(ctx),
            Verdict::Expired { holder } => {
                tracing::info!(actor = ACTOR, identity = %self.identity, %holder,
                    "the holder's lease expired on our clock; taking over");
                self.write(ctx);
            }
            Verdict::Vacant | Verdict::Ours => self.write(ctx),
        }
    }

    /// The `renewTime` to write: now, but past the one we wrote last (to the microsecond the
    /// API server keeps), so a renewal always changes the record.
    fn write_time(&self, prev: Option<&LeaseRecord>) -> Timestamp {
        let now = self.clock.wall();
        let now_us = now.as_microsecond();
        match prev
            .filter(|r| r.is_held_by(&self.identity))
            .and_then(|r| r.renew_time)
        {
            Some(last) if now_us <= last.as_microsecond() => {
                Timestamp::from_microsecond(last.as_microsecond().saturating_add(1)).unwrap_or(now)
            }
            _ => now,
        }
    }

    /// Runs `call` under our guard (one renew deadline), timing it.
    fn guarded<T: Send + 'static>(
        &self,
        op: &'static str,
        call: BoxFuture<'static, Result<T, ApiError>>,
    ) -> impl std::future::Future<Output = (Result<T, ApiError>, Duration)> + 'static {
        let after = self.timing.renew_deadline;
        async move {
            let started = tokio::time::Instant::now();
            let result = match tokio::time::timeout(after, call).await {
                Ok(r) => r,
                Err(_) => Err(ApiError::Timeout { op, after }),
            };
            (result, started.elapsed())
        }
    }

    /// Reads the Lease (one call in flight); [`Self::on_read`] continues.
    fn read(&mut self, then: AfterRead, ctx: &mut Context<Self>) {
        self.conn.in_flight = true;
        let call = self.guarded(OP_GET, self.api.get());
        ctx.spawn(
            call.into_actor(self)
                .map(move |(result, took), act, ctx| act.on_read(result, took, then, ctx)),
        );
    }

    fn on_read(
        &mut self,
        result: Result<Option<LeaseSnapshot>, ApiError>,
        took: Duration,
        then: AfterRead,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(OP_GET, took);
        let failed = match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(snapshot);
                self.reconcile(ctx);
                None
            }
            Err(e) => {
                self.count_error(OP_GET, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, error = %e, "reading the lease failed");
                Some(e)
            }
        };
        if !self.releases.is_empty() {
            match failed {
                Some(e) if then == AfterRead::Release => self.answer_releases(Err(CommandFailed::new(
                    e.kind(),
                    format!("reading the lease to release it: {e}"),
                ))),
                _ => self.release_step(ctx),
            }
            return;
        }
        if failed.is_none()
            && then == AfterRead::RetryAfterConflict
            && self.contending
            && self.held.is_some()
            && self.record_is_ours()
            && self.conn.conflicts < MAX_IMMEDIATE_CONFLICTS
        {
            return self.write(ctx);
        }
        if failed.is_none() {
            self.consider(ctx);
        }
        self.schedule_tick(ctx);
    }

    /// Writes our claim (acquire, or renew when the record is ours), version-checked.
    fn write(&mut self, ctx: &mut Context<Self>) {
        let prev = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Consider, ctx),
            Seen::Absent => None,
            Seen::Present(o) => Some(o),
        };
        let record = acquisition_record(
            prev.map(|o| &o.record),
            &self.identity,
            self.write_time(prev.map(|o| &o.record)),
            &self.timing,
        );
        let (op, call) = match prev {
            None => (OP_CREATE, self.api.create(record)),
            Some(o) => match &o.resource_version {
                Some(rv) => (OP_REPLACE, self.api.replace(rv.clone(), record)),
                None => return self.read(AfterRead::Consider, ctx),
            },
        };
        let sent_at = self.clock.now();
        self.conn.in_flight = true;
        self.conn.last_write_sent = Some(sent_at);
        let call = self.guarded(op, call);
        ctx.spawn(
            call.into_actor(self)
                .map(move |(result, took), act, ctx| act.on_write(op, sent_at, result, took, ctx)),
        );
    }

    fn on_write(
        &mut self,
        op: &'static str,
        sent_at: Mono,
        result: Result<LeaseSnapshot, ApiError>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(op, took);
        match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(Some(snapshot));
                // A write that lands while a Release waits is not a tenure: it is released next.
                if self.releases.is_empty() {
                    self.won(sent_at, took, ctx);
                }
                self.reconcile(ctx);
            }
            Err(e @ ApiError::Conflict(_)) => {
                self.count_error(op, &e);
                self.conn.conflicts += 1;
                tracing::info!(actor = ACTOR, identity = %self.identity, op, error = %e,
                    "lease write lost a race (409); re-reading");
                return self.read(AfterRead::RetryAfterConflict, ctx);
            }
            Err(e @ ApiError::NotFound(_)) => {
                self.count_error(op, &e);
                self.conn.seen = Seen::Absent;
                self.reconcile(ctx);
                self.consider(ctx);
            }
            Err(e) => {
                self.count_error(op, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, op, error = %e,
                    holding = self.held.is_some(), "lease write failed; retrying next period, deadline unchanged");
            }
        }
        if !self.releases.is_empty() {
            return self.release_step(ctx);
        }
        self.schedule_tick(ctx);
    }

    // === contending and releasing ===

    /// `Contend(on)` from the Decider.
    fn set_contending(&mut self, on: bool, ctx: &mut Context<Self>) {
        if on == self.contending {
            return;
        }
        self.contending = on;
        tracing::info!(actor = ACTOR, identity = %self.identity, contending = on, "contend changed");
        if on {
            self.conn.conflicts = 0;
            self.consider(ctx);
            self.schedule_tick(ctx);
        } else {
            Self::cancel(ctx, &mut self.conn.tick);
            Self::cancel(ctx, &mut self.conn.takeover);
        }
    }

    /// True when we might hold the Lease (by tenure, by record, or not known yet).
    fn may_hold(&self) -> bool {
        self.held.is_some() || self.record_is_ours() || matches!(self.conn.seen, Seen::Unknown)
    }

    /// `Release` from the Decider: stop contending; answer at once when the Lease is not ours,
    /// else queue the answer until the release record is written.
    fn release(&mut self, ctx: &mut Context<Self>) -> Option<oneshot::Receiver<CommandResult>> {
        self.set_contending(false, ctx);
        if !self.conn.in_flight && self.releases.is_empty() && !self.may_hold() {
            tracing::info!(actor = ACTOR, identity = %self.identity, "release: we do not hold the lease");
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if self.releases.is_empty() {
            self.conn.conflicts = 0;
        }
        self.releases.push(tx);
        self.release_step(ctx);
        Some(rx)
    }

    /// One step of releasing, when no call is in flight: end our tenure (reported before the
    /// write, so the Decider never believes it holds a lease a standby may already have), then
    /// write the release record with the current resourceVersion.
    fn release_step(&mut self, ctx: &mut Context<Self>) {
        if self.releases.is_empty() || self.conn.in_flight || !self.conn.connected {
            return;
        }
        Self::cancel(ctx, &mut self.conn.tick);
        Self::cancel(ctx, &mut self.conn.takeover);
        if self.held.is_some() {
            self.lose(None, "released", ctx);
        }
        let o = match &self.conn.seen {
            Seen::Unknown => return self.read(AfterRead::Release, ctx),
            Seen::Present(o) if o.record.is_held_by(&self.identity) => o,
            _ => {
                tracing::info!(actor = ACTOR, identity = %self.identity, "release: the lease is not ours; nothing to write");
                return self.answer_releases(Ok(()));
            }
        };
        if self.conn.conflicts >= MAX_RELEASE_CONFLICTS {
            return self.answer_releases(Err(CommandFailed::new(
                ApiErrorKind::Conflict,
                "releasing the lease: it kept changing under us (409)",
            )));
        }
        let Some(rv) = o.resource_version.clone() else {
            return self.read(AfterRead::Release, ctx);
        };
        let record = release_record(&o.record, self.clock.wall());
        self.conn.in_flight = true;
        let call = self.guarded(OP_RELEASE, self.api.replace(rv, record));
        ctx.spawn(
            call.into_actor(self)
                .map(|(result, took), act, ctx| act.on_release_write(result, took, ctx)),
        );
    }

    fn on_release_write(
        &mut self,
        result: Result<LeaseSnapshot, ApiError>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        self.conn.in_flight = false;
        self.observe_call(OP_RELEASE, took);
        match result {
            Ok(snapshot) => {
                self.restarts.healthy();
                self.observe(Some(snapshot));
                tracing::info!(actor = ACTOR, identity = %self.identity, holder = "", "lease released");
                self.answer_releases(Ok(()));
                self.reconcile(ctx);
            }
            Err(e @ ApiError::Conflict(_)) => {
                self.count_error(OP_RELEASE, &e);
                self.conn.conflicts += 1;
                self.read(AfterRead::Release, ctx);
            }
            Err(e) => {
                self.count_error(OP_RELEASE, &e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, error = %e, "releasing the lease failed");
                self.answer_releases(Err(CommandFailed::new(
                    e.kind(),
                    format!("releasing the lease: {e}"),
                )));
            }
        }
    }

    fn answer_releases(&mut self, result: CommandResult) {
        for tx in self.releases.drain(..) {
            let _ = tx.send(result.clone());
        }
    }

    // === connection ===

    /// Opens the watch and reads the Lease (after the restart backoff, if any).
    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.conn.connected = true;
        ctx.add_stream(self.api.watch());
        self.read(AfterRead::Consider, ctx);
    }

    /// The watch failed or ended: stop, so the Supervisor restarts us (with backoff).
    fn watch_failed(&mut self, error: Option<&ApiError>, ctx: &mut Context<Self>) {
        match error {
            Some(e) => {
                self.count_error(OP_WATCH, e);
                tracing::warn!(actor = ACTOR, identity = %self.identity, error = %e, "lease watch failed; restarting");
            }
            None => tracing::warn!(actor = ACTOR, identity = %self.identity, "lease watch ended; restarting"),
        }
        actix::ActorContext::stop(ctx);
    }
}
