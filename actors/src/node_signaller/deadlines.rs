//! The forging deadlines the NodeSignaller reads from the lease facts (the LeaseTap shows them
//! here before the Decider): they bound the guard's permit.

use tokio::time::Instant;

use crate::clock::Clock;

/// The forging deadlines the lease facts set (the LeaseTap shows them here first).
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    /// The LeaseElector's clock, so its deadlines mean the same instants here; `None`: lease
    /// facts are not read (no guard mode).
    pub(super) clock: Option<Clock>,
    /// The lease's renew deadline, from the last `LeaseAcquired`/`LeaseRenewed`.
    pub(super) renew: Option<Instant>,
    /// Quorum mode: the forge deadline (the majority's, from the last `TicketsChanged`) also
    /// bounds forging; `None` inside: no majority. Outer `None`: quorum mode off (or break glass).
    pub(super) forge: Option<Option<Instant>>,
}

impl Deadlines {
    /// The instant forging must stop by, if any is known: the renew deadline, in quorum mode
    /// the earlier of it and the forge deadline.
    pub(super) fn forging(&self) -> Option<Instant> {
        match self.forge {
            None => self.renew,
            Some(forge) => Some(self.renew?.min(forge?)),
        }
    }
}
