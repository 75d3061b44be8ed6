//! The decision engine (docs/architecture.md, "Decision engine"): whether this node forges, and
//! why.
//!
//! Owns the pure core the Decider actor drives: [`State`] (everything known), [`Event`] and
//! [`apply`] (facts in), [`decide`](fn@decide) (a [`Decision`] with its [`Reason`]), and
//! [`plan`](fn@plan) (ordered [`Command`]s out, break-before-make encoded as data). Total and deterministic: no I/O, no
//! clock reads, no randomness; time arrives as arguments ([`Mono`], and wall time only for
//! override expiry).
//!
//! The Decider's loop: `state = apply(state, event)`, `next = decide(&state, now, wall)`,
//! send `plan(&prev, &next)` in order, `state = apply(state, Event::Committed { forge:
//! next.forge })`, arm a timer for `next.next_wake`.
mod decide;
mod event;
mod lifecycle;
mod plan;
mod priority;
mod quorum_gate;
mod reason;
mod state;

pub use decide::{Decision, decide, shutdown_hold};
pub use event::{Event, apply};
pub use lifecycle::{
    Boot, Effect, Finished, HandOver, Input, Lifecycle, LifecycleConfig, Note, Phase, Run, Step, aborts,
    gives_up,
};
pub use plan::{Command, ReloadReason, StatusReport, plan, shutdown_plan, startup_plan};
pub use priority::{
    DEFAULT_FAILURE_THRESHOLD, Effective, MAJOR_PENALTY, MINOR_PENALTY, OverrideStatus, effective,
    effective_priority, evaluate_override, failure_threshold, health_penalty,
};
pub use reason::{ALL_CODES, Reason, is_contender_code};
pub use state::{
    ClusterPolicy, Credentials, DEFAULT_HANDOVER_QUIET, DEFAULT_HEARTBEAT_FRESH_FOR, DEFAULT_SLOT_LENGTH,
    DeciderConfig, Health, LocalLease, NodeState, OwnStatus, PeerLease, PeerStatus, PeerView, Reach, State,
};

pub use crate::lease::Mono;
/// The wall-clock type [`decide`](fn@decide) takes (override `expiresAt` is wall time);
/// re-exported so callers need no direct `jiff` dependency.
pub use jiff::Timestamp as WallTime;

#[cfg(test)]
mod tests;
