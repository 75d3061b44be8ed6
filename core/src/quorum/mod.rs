//! Quorum mode's pure rules (docs/quorum.md): the forge ticket held in a strict majority of the
//! participants' API servers.
//!
//! Owns: the ticket timing ([`TicketTiming`]), the rule for taking one ticket
//! ([`ticket_verdict`], built on the client-go rule of [`crate::lease`]), our state per ticket
//! and the next request it calls for ([`TicketState`], [`TicketStep`]), the majority and the
//! forge deadline it gives ([`majority`](fn@majority), [`standing`], [`Standing`]), and
//! yield-then-release ([`Want`], [`want`]). No I/O, no clock reads, no tokio or kube client: every instant arrives as
//! an argument, and the ticket keeper actor carries out the steps.
//!
//! # The rules, in one place
//!
//! - **Taking.** A ticket (one `coordination.k8s.io/v1` Lease per participant) is written only
//!   when it is free, released, already ours, or has gone unrenewed for its whole duration as
//!   observed on our monotonic clock ([`ticket_verdict`]); every write carries the
//!   `resourceVersion` read, so of two writers one gets 409.
//! - **Holding.** A ticket counts as held until `sent + renew_deadline`, where `sent` is when our
//!   last *successful* write was sent ([`crate::lease::HeldLease`]). Seeing another holder, or
//!   releasing, ends it at once; a failed write ends nothing early, and extends nothing.
//! - **Forging.** Allowed only while a strict majority of the tickets are held; the forge
//!   deadline is the instant at which fewer than a majority would still be held
//!   ([`Standing::until`]). The Decider stops forging (and the node guard's permit ends) by then.
//! - **Yielding.** A holder that should no longer forge keeps renewing what it holds, takes
//!   nothing new, and releases only once its node's stop is confirmed ([`want`]).
//!
//! Why this is safe (majorities intersect; one holder per ticket; a holder's deadline passes
//! before any of its tickets can expire for others, given a bounded clock-rate difference) is
//! argued in docs/quorum.md and checked on a model in `core/tests/quorum_model/`.
mod majority;
mod ticket;

pub use majority::{Standing, majority, standing};
pub use ticket::{Intent, Seen, TicketState, TicketStep, Want, ticket_verdict, want};

pub use crate::config::TicketTiming;

#[cfg(test)]
mod tests;
