//! Quorum mode: a region without a majority in reach (by its peers' reads, or by the ticket
//! keeper's calls, witnesses included), a peer that stands aside, a primary with only the
//! witness in reach.

use super::*;

/// A local leader in quorum mode with `peers`, its own spec `PriorityBased` at `priority`.
fn quorum_leader(peers: &[&str], priority: i32) -> State {
    let mut config = DeciderConfig::multi_cluster(ME, peers.iter().copied());
    config.quorum = true;
    feed(
        ready(config),
        [Event::ClusterSpecChanged {
            spec: Box::new(spec(priority, ForgeState::PriorityBased)),
            generation: Some(1),
        }],
    )
}

/// The Lease duration of the tests' configurations.
fn lease() -> Duration {
    DeciderConfig::multi_cluster(ME, ["west"]).lease.duration
}

/// Quorum mode, three regions and a witness (four participants, a majority of three), us the
/// best priority, holding only our own ticket.
fn quorum_primary() -> State {
    feed(
        quorum_leader(&["west", "north"], 1),
        [
            tickets(1, &[]),
            peer("west", 2, false, secs(0)),
            peer("north", 3, false, secs(0)),
        ],
    )
}

/// `cluster`'s status read at `read_at`: `PriorityBased` at `priority`, generation 1.
fn peer(cluster: &str, priority: i32, forging: bool, read_at: Mono) -> Event {
    observed(
        cluster,
        status(ForgeState::PriorityBased, priority, forging, 1),
        1,
        read_at,
    )
}

fn unreachable(cluster: &str, at: Mono) -> Event {
    Event::PeerUnreachable {
        cluster: cluster.into(),
        at,
    }
}

/// `d` stands aside (no forging, no claim, no tickets) with `in_reach` of the 3 needed and
/// `out` beyond reach.
fn assert_stands_aside(d: &Decision, in_reach: usize, out: &[&str]) {
    assert_eq!(
        d.reason,
        Reason::MajorityOutOfReach {
            in_reach,
            needed: 3,
            out: out.iter().map(|o| o.to_string()).collect(),
        }
    );
    assert!(!d.forge && !d.claim && !d.tickets, "{d:?}");
}

#[test]
fn quorum_a_region_that_cannot_reach_a_majority_stops_contending_and_releases() {
    let lease = lease();
    let s = quorum_primary();
    let d = decide(&s, secs(1), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets, "the best region takes tickets");

    // Every peer region unreachable: one failed read is not enough (a blip, a slow answer).
    let s = feed(s, [unreachable("west", secs(2)), unreachable("north", secs(3))]);
    let d = decide(&s, secs(4), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets);
    // It wakes when the first peer has been unreachable for its Lease duration.
    assert_eq!(d.next_wake, Some(secs(2) + lease + Duration::from_millis(1)));

    // West long unreachable, north not yet: ourselves, the witness and north still make three.
    let at = secs(2) + lease + Duration::from_millis(500);
    let d = decide(&s, at, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });

    // Both long unreachable: ourselves and the witness are two of four. Stand aside with a
    // reason that does not contend, and let go of our ticket.
    let at = secs(3) + lease + Duration::from_millis(500);
    let d = decide(&s, at, wall());
    assert_stands_aside(&d, 2, &["north", "west"]);
    assert!(!is_contender_code(Some(d.reason.as_str())));

    // A peer answers again: contend again at once (the failback after the heal).
    let s = apply(s, peer("west", 2, true, at));
    let d = decide(&s, at + Duration::from_millis(1), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
    assert!(d.tickets);
}

#[test]
fn quorum_a_peer_that_stands_aside_is_not_yielded_to() {
    let s = quorum_leader(&["east"], 2);
    let mut east = status(ForgeState::PriorityBased, 1, false, 1);
    east.reason = Some("awaiting_majority".into());
    let s = apply(s, observed("east", east.clone(), 1, secs(1)));
    let d = decide(&s, secs(1), wall());
    assert_eq!(d.reason, Reason::YieldingToPeer { peer: "east".into() });
    assert!(!d.tickets);
    east.reason = Some("majority_out_of_reach".into());
    let s = apply(s, observed("east", east, 1, secs(2)));
    let d = decide(&s, secs(2), wall());
    assert!(d.tickets, "we take the tickets instead: {:?}", d.reason);
}

#[test]
fn quorum_a_primary_with_only_the_witness_in_reach_of_three_keeps_contending() {
    // Two regions and a witness: the witness and ourselves are a majority, so a long
    // unreachable peer (a dead region) never makes us stand aside.
    let s = feed(
        quorum_leader(&["west"], 2),
        [
            Event::TicketsChanged {
                standing: crate::quorum::standing([Some(secs(100)), None, None], secs(0)),
            },
            unreachable("west", secs(1)),
        ],
    );
    let d = decide(&s, secs(2) + lease() * 3, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 2 });
    assert!(d.tickets);
}

/// The standing of `quorum_primary`'s four participants holding `held` tickets, with the keeper's
/// ticket calls to `unreachable` all failed since the instant given.
fn tickets(held: usize, unreachable: &[(&str, Mono)]) -> Event {
    let mut standing = crate::quorum::standing((0..4).map(|i| (i < held).then_some(secs(100))), secs(0));
    standing.unreachable_since = unreachable.iter().map(|(n, at)| (n.to_string(), *at)).collect();
    Event::TicketsChanged { standing }
}

#[test]
fn quorum_a_primary_reaching_one_peer_but_neither_the_other_nor_the_witness_stands_aside() {
    // Three regions and a witness: we still reach west (it reads us, we hold its ticket and
    // ours), but north and the witness stopped answering our ticket calls at 2 s (and north's
    // reads fail too). Counting the witness in reach always, we would contend for ever with
    // two of four, and west and north, which yield to us, would never forge.
    let lease = lease();
    let s = feed(
        quorum_primary(),
        [
            tickets(2, &[("north", secs(2)), ("witness", secs(2))]),
            unreachable("north", secs(2)),
        ],
    );
    // One failed call is never enough: contend, and wake when the failures have lasted a
    // Lease duration.
    let d = decide(&s, secs(3), wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 2, needed: 3 });
    assert!(d.tickets);
    assert_eq!(d.next_wake, Some(secs(2) + lease + Duration::from_millis(1)));
    // ... and not a moment later: between the lease duration's end and the wake-up nothing
    // changes (found by `decision_props`; the wake-up must be the first instant that does).
    let just_before = secs(2) + lease + Duration::from_micros(500);
    assert_eq!(
        decide(&s, just_before, wall()).reason,
        Reason::AwaitingMajority { held: 2, needed: 3 }
    );

    // Every call to the witness (and to north) has failed for longer than a Lease duration:
    // ourselves and west are two of four. Stand aside and let go.
    let at = secs(2) + lease + Duration::from_millis(1);
    let d = decide(&s, at, wall());
    assert_stands_aside(&d, 2, &["north", "witness"]);
    assert!(
        d.reason.message().contains("north, witness"),
        "{}",
        d.reason.message()
    );

    // The witness answers again: three in reach, contend again (west yields, we take back).
    let s = apply(s, tickets(2, &[("north", secs(2))]));
    let d = decide(&s, at, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 2, needed: 3 });
    assert!(d.tickets);
}

#[test]
fn quorum_a_participant_counts_out_of_reach_by_its_ticket_calls_or_its_reads_once() {
    let lease = lease();
    // North's reads succeed but its ticket calls fail; west's reads fail but its ticket calls
    // succeed: either is a sign its API server (holding its ticket) is beyond our reach. The
    // witness fails both ways at once: it counts out once.
    let s = feed(
        quorum_primary(),
        [
            tickets(1, &[("north", secs(1)), ("witness", secs(1))]),
            unreachable("west", secs(1)),
        ],
    );
    let d = decide(&s, secs(1) + lease + Duration::from_millis(1), wall());
    assert_stands_aside(&d, 1, &["north", "west", "witness"]);
    // Our own ticket failing is no sign of anything here (our local lease says it).
    let s = apply(s, tickets(1, &[(ME, secs(1)), ("witness", secs(1))]));
    let s = apply(s, peer("west", 2, false, secs(2)));
    let d = decide(&s, secs(1) + lease * 2, wall());
    assert_eq!(d.reason, Reason::AwaitingMajority { held: 1, needed: 3 });
}
