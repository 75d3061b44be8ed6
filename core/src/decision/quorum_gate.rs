//! Quorum mode's gate on a decision (docs/quorum.md): forging needs a strict majority of the
//! forge tickets, and a region that cannot reach a majority stands aside. No I/O.
use std::time::Duration;

use crate::lease::Mono;

use super::decide::{Decision, earliest, peer_lease_duration};
use super::reason::Reason;
use super::state::{Reach, State};

/// Quorum mode's gate (docs/quorum.md), applied to the decision the preference gives: a region
/// that means to forge (or to keep forging through a held handover) contends for the tickets,
/// and forges only while it holds a strict majority whose forge deadline is ahead; the decision
/// wakes at that deadline, so losing the majority stops forging by then (the margin between the
/// ticket renew deadline and the ticket duration is the stop's). Break glass (`glass`) skips the
/// majority, not the contest for the tickets.
pub(super) fn quorum_gate(s: &State, now: Mono, mut d: Decision, glass: bool) -> Decision {
    if !s.config.quorum {
        return d;
    }
    let means_to_forge = d.forge || d.claim;
    d.tickets = means_to_forge && !matches!(d.reason, Reason::HandoverHeld { .. });
    if !means_to_forge || glass {
        return d;
    }
    match s.majority_until(now) {
        Some(until) => {
            d.next_wake = earliest(d.next_wake, Some(until));
            if d.forge {
                d
            } else {
                let reason = d.reason.clone();
                d.forging(reason)
            }
        }
        None => {
            let (held, needed) = s.tickets.as_ref().map_or((0, 0), |t| (t.held, t.needed));
            let reach = participants_in_reach(s, now);
            d.next_wake = earliest(d.next_wake, reach.wake);
            if s.tickets.is_some() && reach.in_reach < needed {
                // Nothing we can take makes a majority: stand aside (a reason that does not
                // contend), so peers that still read our status do not yield to us, and let go
                // of what we hold once our node's stop is confirmed.
                d.tickets = false;
                d.standby(Reason::MajorityOutOfReach {
                    in_reach: reach.in_reach,
                    needed,
                    out: reach.out,
                })
            } else {
                d.standby(Reason::AwaitingMajority { held, needed })
            }
        }
    }
}

/// Quorum mode: the participants we may still reach ([`participants_in_reach`]).
struct InReach {
    /// How many, ourselves included.
    in_reach: usize,
    /// The others, by name (sorted).
    out: Vec<String>,
    /// When the count drops next if nothing is heard (the next participant's instant, plus a
    /// millisecond).
    wake: Option<Mono>,
}

/// Quorum mode: how many participants we may still reach. Every participant counts but those
/// whose ticket calls (as the TicketKeeper reports them) have all failed for longer than our
/// Lease duration, and the peer regions whose reads have all failed for longer than their
/// Lease duration: either is a sign that its API server, which holds its ticket, is beyond our
/// reach. One failed call or read is never enough, as for skipping a peer; ourselves always
/// count (a region that cannot reach its own API server loses its local lease). Counting a
/// participant in reach that is not is the side that costs nothing in safety (S1 rests on the
/// tickets), only liveness.
fn participants_in_reach(s: &State, now: Mono) -> InReach {
    let Some(t) = &s.tickets else {
        return InReach {
            in_reach: 0,
            out: Vec::new(),
            wake: None,
        };
    };
    let names: std::collections::BTreeSet<&str> = s
        .peers
        .keys()
        .map(String::as_str)
        .chain(t.unreachable_since.keys().map(String::as_str))
        .filter(|name| *name != s.config.cluster)
        .collect();
    let mut out = Vec::new();
    let mut wake = None;
    for name in names {
        let by_ticket = t
            .unreachable_since
            .get(name)
            .map(|since| *since + s.config.lease.duration);
        let by_reads = s.peers.get(name).and_then(|v| {
            v.unreachable_since
                .filter(|_| v.reach == Reach::Unreachable)
                .map(|since| since + peer_lease_duration(s, v))
        });
        // Out of reach from the first millisecond after its instant, and woken exactly then.
        match earliest(by_ticket, by_reads).map(|at| at + Duration::from_millis(1)) {
            Some(from) if now >= from => out.push(name.to_string()),
            Some(from) => wake = earliest(wake, Some(from)),
            None => {}
        }
    }
    InReach {
        in_reach: t.participants.saturating_sub(out.len()),
        out,
        wake,
    }
}
