//! The scenario world's timings (local lease, tickets, retry period, the node's slowest reload)
//! and the bounds the argument gives from them (see the crate docs): a lost primary's failover,
//! the one-way, out-of-reach and part-reach variants, the recovery after a cut heals, a planned handover,
//! and the flapping link's schedule with the gap each of its cuts may cause.

use std::time::Duration;

use forge_sim::proxy::ProxyMode;

pub(crate) const TICKET_DURATION: Duration = Duration::from_secs(6);

pub(crate) const TICKET_RENEW_DEADLINE: Duration = Duration::from_secs(3);

pub(crate) const RETRY_PERIOD: Duration = Duration::from_millis(500);

const SLOWEST_RELOAD: Duration = Duration::from_millis(1500);

/// The scenario world's `RENEW_DEADLINE` (the local lease).
pub(crate) const LOCAL_RENEW_DEADLINE: Duration = Duration::from_secs(2);

/// The scenario world's `API_TIMEOUT` (below a quarter of the ticket renew deadline, so the
/// ticket calls' own timeout).
const API_TIMEOUT: Duration = Duration::from_millis(500);

/// The argument's bound on a lost primary's failover (module docs).
pub(crate) fn failover_bound() -> Duration {
    TICKET_DURATION + RETRY_PERIOD * 2 + SLOWEST_RELOAD
}

/// When only the answers of east's links are lost, one renewal per ticket may still land (its
/// answer lost, east does not count it; its next write, read first, never goes out): the
/// tickets age out from up to a retry period after the fault.
pub(crate) fn one_way_failover_bound() -> Duration {
    failover_bound() + RETRY_PERIOD
}

/// The scenario world's `LEASE_DURATION` (the local lease).
const LOCAL_LEASE_DURATION: Duration = Duration::from_secs(4);

/// When east reaches nobody but the others still read it (q7): its leader reads each peer once
/// per lease duration and a read fails after the API timeout; east stands aside once both have
/// been unreachable for a lease duration, and west reads that status within about a retry
/// period; then the failover's own bound (west may first see east's last renewals only then).
pub(crate) fn out_of_reach_failover_bound() -> Duration {
    LOCAL_LEASE_DURATION * 2 + API_TIMEOUT + RETRY_PERIOD + failover_bound()
}

/// When east still reaches some participants but not a majority while those it reaches still
/// read it (q9: only west; q10: only the witness, the 2/2 split): its ticket calls to the others
/// fail from its next renewal (within a retry period, after the API timeout), it stands aside
/// once they have failed for a lease duration (`majority_out_of_reach`) and releases what it
/// holds, and west reads that status within about a retry period (in q10 west sees east
/// unreachable sooner: a read a lease duration after its watch went quiet, failing after the
/// API timeout). East releases only once its node's stop is confirmed: it lost its majority by
/// the ticket renew deadline, and without the node guard a stop counts as done after
/// `STOP_GRACE`. The tickets east could not release west takes once east's last renewals have
/// aged out (the ticket duration). Then the take's round and the node's reload.
pub(crate) fn part_reach_failover_bound() -> Duration {
    let aside = RETRY_PERIOD + API_TIMEOUT + LOCAL_LEASE_DURATION + RETRY_PERIOD;
    let stopped = TICKET_RENEW_DEADLINE + STOP_GRACE;
    aside.max(stopped).max(TICKET_DURATION) + RETRY_PERIOD * 2 + SLOWEST_RELOAD
}

/// The scenario world's `STOP_GRACE` (the default).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// After a cut heals: the call in flight times out, a retry period's wait, a read and a
/// write, the node's reload.
pub(crate) fn recovery_bound() -> Duration {
    API_TIMEOUT + RETRY_PERIOD * 2 + SLOWEST_RELOAD
}

/// The flapping link's schedule (module docs): rounds of three quick cuts of 1 s (below the
/// ticket renew deadline less a retry period: east keeps its majority), one of 4 s (past the
/// renew deadline, before the ticket duration: east stops, nobody may take its tickets), one of
/// 8 s (past the ticket duration: west takes over, and fails back at the heal); the first and
/// third rounds cut both ways, the second and fourth lose only the answers. `(mode, cut,
/// heal)`: 2 minutes from the first cut to the last heal.
pub(crate) fn flap_schedule() -> Vec<(ProxyMode, Duration, Duration)> {
    let s = Duration::from_millis;
    let mut out = Vec::new();
    for round in 0..4 {
        let mode = if round % 2 == 0 {
            ProxyMode::Blackhole
        } else {
            ProxyMode::BlackholeDown
        };
        for (cut, heal) in [
            (1000, 1000),
            (1000, 1000),
            (1000, 1000),
            (4000, 6000),
            (8000, 8000),
        ] {
            out.push((mode, s(cut), s(heal)));
        }
    }
    out
}

/// The forging gap one cut of `cut` (in `mode`) can cause, from the timings: east counts each
/// ticket until `TICKET_RENEW_DEADLINE` after its last successful renewal, sent at most a retry
/// period before the cut, so it forges at least `TICKET_RENEW_DEADLINE - RETRY_PERIOD` into the
/// cut; someone forges again by the heal plus [`recovery_bound`] or by the failover bound,
/// whichever comes first; a cut past `TICKET_DURATION - RETRY_PERIOD` may let west take over,
/// and the heal then costs a planned failback ([`planned_bound`]).
pub(crate) fn flap_gap_bound(mode: ProxyMode, cut: Duration) -> Duration {
    let failover = if mode == ProxyMode::BlackholeDown {
        one_way_failover_bound()
    } else {
        failover_bound()
    };
    let resumed = (cut + recovery_bound()).min(failover);
    let mut bound = resumed.saturating_sub(TICKET_RENEW_DEADLINE - RETRY_PERIOD);
    if cut > TICKET_DURATION - RETRY_PERIOD {
        bound += planned_bound();
    }
    bound
}

/// The estimate for a planned handover (the holder yields): its node's stop (a reload), the
/// confirmed stop's release, the better region's read of the released tickets and its take, the
/// peer reads that show the change, and its node's start (a reload).
pub(crate) fn planned_bound() -> Duration {
    SLOWEST_RELOAD * 2 + RETRY_PERIOD * 6
}

/// `took` ms from a fault to `who`'s forging is no less than the ticket timing allows: the lost
/// primary's last renewal may be up to `RETRY_PERIOD` old, its tickets last `TICKET_DURATION`.
pub(crate) fn assert_not_before_the_tickets(took: f64, who: &str, after: &str) {
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "{who} forged {took:.0} ms after {after}: before the ticket timing allows"
    );
}
