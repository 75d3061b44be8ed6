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
//! - Records come from forge-core ([`acquisition_record`](forge_core::lease::acquisition_record),
//!   [`release_record`](forge_core::lease::release_record)): the holder, `acquireTime` and
//!   `leaseTransitions + 1` on a holder change, our duration, and a `renewTime` that always
//!   moves forward (at least 1 µs past the one we wrote last), because the API server skips an
//!   update that changes nothing and the `resourceVersion` then stays.
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
//!
//! # Layout
//!
//! This file holds the state (per connection, and kept across restarts), the constructor, the
//! facts and metrics, and the connection; `observation.rs` what we know of the Lease and the
//! tenure it implies, `timers.rs` the deadline, takeover and tick timers, `claim.rs` acquiring
//! and renewing, `release.rs` contending and releasing, `actor.rs` the lifecycle and
//! `handlers.rs` one handler per message.

mod actor;
mod claim;
mod handlers;
mod observation;
mod release;
mod timers;

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use actix::{AsyncContext, Context, Recipient, SpawnHandle};
use forge_core::{
    config::LeaseTiming,
    decision::Event,
    lease::{HeldLease, LeaseObservation, Mono},
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    clock::Clock,
    messages::{CommandResult, Fact},
    metrics::Metrics,
    ports::{ApiError, LeaseApi},
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
