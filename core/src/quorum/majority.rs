//! The majority and the forge deadline it gives, and which participants' tickets the keeper
//! cannot reach. No I/O.
use std::collections::BTreeMap;

use crate::lease::Mono;

/// The least number of tickets that is a strict majority of `participants`: any two such sets
/// of tickets share at least one ticket, and a ticket has one holder at a time.
pub const fn majority(participants: usize) -> usize {
    participants / 2 + 1
}

/// Our standing at one instant: how many tickets we hold, how many we need, until when we may
/// forge, and which participants' API servers have stopped answering our ticket calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Participants (regions and witnesses).
    pub participants: usize,
    /// [`majority`] of them.
    pub needed: usize,
    /// Tickets held at `now` (deadline strictly after `now`).
    pub held: usize,
    /// When a majority is held: the instant from which fewer than `needed` tickets will still
    /// be held if none is renewed, i.e. the `needed`-th latest deadline. Forging must have
    /// stopped by then (S1, S2). `None` below a majority.
    pub until: Option<Mono>,
    /// The participants (by name) whose every ticket call has failed since the instant given,
    /// on our monotonic clock: the first failure with no success (an answer, a 409, a watch
    /// event) after it. The decision counts such a participant out of reach once that has
    /// lasted longer than a Lease duration (docs/quorum.md, "Out of reach"). Empty from
    /// [`standing`]; the ticket keeper fills it in.
    pub unreachable_since: BTreeMap<String, Mono>,
}

impl Standing {
    /// True when a majority is held at the instant this standing was computed for.
    pub fn has_majority(&self) -> bool {
        self.until.is_some()
    }

    /// True when forging is allowed at `at`: a majority held, and its deadline not reached.
    pub fn allows_forging_at(&self, at: Mono) -> bool {
        self.until.is_some_and(|u| at < u)
    }
}

/// The standing from each participant's ticket deadline (`None`: not held by us) at `now`.
/// Deadlines at or before `now` count as not held.
pub fn standing(deadlines: impl IntoIterator<Item = Option<Mono>>, now: Mono) -> Standing {
    let mut participants = 0;
    let mut live: Vec<Mono> = Vec::new();
    for d in deadlines {
        participants += 1;
        if let Some(d) = d.filter(|d| *d > now) {
            live.push(d);
        }
    }
    let needed = majority(participants);
    live.sort_unstable_by(|a, b| b.cmp(a));
    Standing {
        participants,
        needed,
        held: live.len(),
        until: live.get(needed - 1).copied(),
        unreachable_since: BTreeMap::new(),
    }
}
