//! Unit and property tests of the quorum rules.
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::config::{LeaseTiming, MAX_CLOCK_RATE_DIFFERENCE, check_ticket_timing};
use crate::lease::{LeaseRecord, Mono, Verdict};

const ME: &str = "east";
const OTHER: &str = "west";

fn ms(v: u64) -> Mono {
    Mono::from_millis(v)
}

fn wall() -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("valid timestamp")
}

fn timing() -> TicketTiming {
    TicketTiming::default()
}

fn held_by(holder: &str, renew_s: i64) -> LeaseRecord {
    let t = Timestamp::from_second(1_700_000_000 + renew_s).expect("valid timestamp");
    LeaseRecord {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(20),
        acquire_time: Some(t),
        renew_time: Some(t),
        lease_transitions: Some(1),
    }
}

#[test]
fn majority_is_strict() {
    assert_eq!([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4]);
}

#[test]
fn the_forge_deadline_is_the_majority_th_latest_ticket_deadline() {
    let s = standing([Some(ms(10_000)), Some(ms(12_000)), Some(ms(11_000))], ms(5_000));
    assert_eq!((s.held, s.needed, s.until), (3, 2, Some(ms(11_000))));
    assert!(s.allows_forging_at(ms(10_999)));
    assert!(!s.allows_forging_at(ms(11_000)));
    let one = standing([Some(ms(12_000)), None, Some(ms(4_000))], ms(5_000));
    assert_eq!((one.held, one.until), (1, None), "a passed deadline is not held");
}

#[test]
fn a_ticket_is_taken_only_when_free_released_ours_or_unrenewed_for_its_duration() {
    let d = Duration::from_secs(20);
    assert_eq!(ticket_verdict(None, ME, ms(0), d, ms(0)), Verdict::Vacant);
    assert_eq!(ticket_verdict(Some(""), ME, ms(0), d, ms(0)), Verdict::Vacant);
    assert_eq!(ticket_verdict(Some(ME), ME, ms(0), d, ms(0)), Verdict::Ours);
    assert_eq!(
        ticket_verdict(Some(OTHER), ME, ms(1_000), d, ms(20_999)),
        Verdict::HeldBy {
            holder: OTHER.into(),
            until: ms(21_000)
        }
    );
    assert_eq!(
        ticket_verdict(Some(OTHER), ME, ms(1_000), d, ms(21_000)),
        Verdict::Expired { holder: OTHER.into() }
    );
}

#[test]
fn a_ticket_is_read_before_it_is_ever_written() {
    let t = TicketState::default();
    assert_eq!(t.step(ME, Want::Take, ms(0), wall(), &timing()), TicketStep::Read);
    let mut failed = t.clone();
    failed.observed(None, None, ms(1), ME);
    assert!(matches!(
        failed.step(ME, Want::Take, ms(1), wall(), &timing()),
        TicketStep::Create { .. }
    ));
    failed.write_failed();
    assert_eq!(
        failed.step(ME, Want::Take, ms(2), wall(), &timing()),
        TicketStep::Read
    );
}

#[test]
fn another_holders_ticket_waits_for_its_whole_duration_on_our_clock() {
    let mut t = TicketState::default();
    t.observed(Some(held_by(OTHER, 0)), Some("7".into()), ms(1_000), ME);
    assert_eq!(
        t.step(ME, Want::Take, ms(20_999), wall(), &timing()),
        TicketStep::WaitUntil(ms(21_000))
    );
    // The same record read again does not restart the clock; a renewal does.
    t.observed(Some(held_by(OTHER, 0)), Some("7".into()), ms(15_000), ME);
    match t.step(ME, Want::Take, ms(21_000), wall(), &timing()) {
        TicketStep::Write {
            resource_version,
            acquire: true,
            record,
        } => {
            assert_eq!(resource_version.as_deref(), Some("7"));
            assert_eq!(record.holder(), Some(ME));
        }
        other => panic!("expected an acquiring write, got {other:?}"),
    }
    t.observed(Some(held_by(OTHER, 2)), Some("8".into()), ms(16_000), ME);
    assert_eq!(
        t.step(ME, Want::Take, ms(21_000), wall(), &timing()),
        TicketStep::WaitUntil(ms(36_000))
    );
}

#[test]
fn we_hold_a_ticket_until_the_renew_deadline_of_the_last_successful_write_sent() {
    let mut t = TicketState::default();
    t.wrote(held_by(ME, 0), Some("2".into()), ms(1_000), ms(1_300), &timing());
    assert_eq!(t.held_until(ms(1_300)), Some(ms(13_000)));
    assert_eq!(
        t.step(ME, Want::Take, ms(2_000), wall(), &timing()),
        TicketStep::WaitUntil(ms(3_000))
    );
    assert!(matches!(
        t.step(ME, Want::Take, ms(3_000), wall(), &timing()),
        TicketStep::Write { acquire: false, .. }
    ));
    t.write_failed();
    assert_eq!(
        t.held_until(ms(12_999)),
        Some(ms(13_000)),
        "a failed write neither cuts nor extends"
    );
    assert_eq!(t.held_until(ms(13_000)), None);
}

#[test]
fn seeing_another_holder_ends_our_tenure_at_once() {
    let mut t = TicketState::default();
    t.wrote(held_by(ME, 0), Some("2".into()), ms(1_000), ms(1_100), &timing());
    t.observed(Some(held_by(OTHER, 5)), Some("3".into()), ms(2_000), ME);
    assert_eq!(t.held, None);
}

#[test]
fn a_yielding_holder_keeps_renewing_and_releases_only_once_stopped() {
    let stopping = Intent {
        local_leader: true,
        contend: false,
        stopped: false,
    };
    let stopped = Intent {
        stopped: true,
        ..stopping
    };
    assert_eq!(want(stopping), Want::Keep);
    assert_eq!(want(stopped), Want::Release);
    assert_eq!(
        want(Intent {
            contend: true,
            ..stopped
        }),
        Want::Take
    );
    assert_eq!(
        want(Intent {
            local_leader: false,
            contend: true,
            stopped: true
        }),
        Want::Leave
    );

    let mut t = TicketState::default();
    t.wrote(held_by(ME, 0), Some("2".into()), ms(0), ms(100), &timing());
    assert!(matches!(
        t.step(ME, Want::Keep, ms(2_000), wall(), &timing()),
        TicketStep::Write { acquire: false, .. }
    ));
    match t.step(ME, Want::Release, ms(2_000), wall(), &timing()) {
        TicketStep::Release {
            record,
            resource_version,
        } => {
            assert!(record.is_vacant());
            assert_eq!(resource_version.as_deref(), Some("2"));
        }
        other => panic!("expected a release, got {other:?}"),
    }
    t.releasing();
    assert_eq!(t.held_until(ms(2_000)), None, "released before the write is sent");
}

#[test]
fn keeping_takes_nothing_new() {
    let mut t = TicketState::default();
    t.observed(None, None, ms(0), ME);
    assert_eq!(t.step(ME, Want::Keep, ms(0), wall(), &timing()), TicketStep::Idle);
    t.observed(Some(held_by("", 0)), Some("1".into()), ms(0), ME);
    assert_eq!(t.step(ME, Want::Keep, ms(0), wall(), &timing()), TicketStep::Idle);
    assert_eq!(
        t.step(ME, Want::Leave, ms(0), wall(), &timing()),
        TicketStep::Idle
    );
}

#[test]
fn the_default_ticket_timing_passes_its_rules() {
    assert_eq!(
        check_ticket_timing(&timing(), &LeaseTiming::default(), Duration::from_secs(2)),
        vec![]
    );
    let tight = TicketTiming {
        renew_deadline: Duration::from_millis(19_000),
        ..timing()
    };
    let errs = check_ticket_timing(&tight, &LeaseTiming::default(), Duration::from_secs(2));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].key, "TICKET_RENEW_DEADLINE");
    let short = TicketTiming {
        duration: Duration::from_secs(14),
        renew_deadline: Duration::from_secs(8),
        ..timing()
    };
    let errs = check_ticket_timing(&short, &LeaseTiming::default(), Duration::from_secs(2));
    assert_eq!(
        errs.iter().map(|e| e.key).collect::<Vec<_>>(),
        vec!["TICKET_DURATION"]
    );
}

/// An event in the life of one ticket, from our side.
#[derive(Debug, Clone)]
enum Ev {
    /// A read answered with another holder's record (renewal number `n`).
    SeeOther(u8),
    /// A read answered with our own record.
    SeeOurs,
    /// A read answered with a released ticket.
    SeeReleased,
    /// A read answered: no Lease.
    SeeAbsent,
    /// Our write sent `back` ms ago succeeded.
    WriteOk(u16),
    /// Our write failed.
    WriteFailed,
    /// We released.
    Release,
    /// Time passes.
    Wait(u16),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (0u8..3).prop_map(Ev::SeeOther),
        Just(Ev::SeeOurs),
        Just(Ev::SeeReleased),
        Just(Ev::SeeAbsent),
        (0u16..3_000).prop_map(Ev::WriteOk),
        Just(Ev::WriteFailed),
        Just(Ev::Release),
        (0u16..25_000).prop_map(Ev::Wait),
    ]
}

fn wants() -> impl Strategy<Value = Want> {
    prop_oneof![
        Just(Want::Take),
        Just(Want::Keep),
        Just(Want::Release),
        Just(Want::Leave)
    ]
}

proptest! {
    /// The acquisition rule, the tenure rule and the release rule hold after every event.
    #[test]
    fn ticket_rules_hold_after_every_event(events in proptest::collection::vec((ev(), wants()), 1..60)) {
        let tm = timing();
        let mut t = TicketState::default();
        let mut now = ms(1_000);
        // The latest `sent` of a successful write since the last release or foreign holder.
        let mut last_ok_sent: Option<Mono> = None;
        for (e, w) in events {
            match e {
                Ev::SeeOther(n) => {
                    t.observed(Some(held_by(OTHER, i64::from(n))), Some(format!("o{n}")), now, ME);
                    last_ok_sent = None;
                }
                Ev::SeeOurs => t.observed(Some(held_by(ME, 0)), Some("m".into()), now, ME),
                Ev::SeeReleased => {
                    t.observed(Some(held_by("", 0)), Some("r".into()), now, ME);
                    last_ok_sent = None;
                }
                Ev::SeeAbsent => {
                    t.observed(None, None, now, ME);
                    last_ok_sent = None;
                }
                Ev::WriteOk(back) => {
                    let sent = Mono::from_duration(now.as_duration().saturating_sub(Duration::from_millis(back.into())));
                    t.wrote(held_by(ME, 0), Some("w".into()), sent, now, &tm);
                    last_ok_sent = Some(last_ok_sent.map_or(sent, |s| s.max(sent)));
                }
                Ev::WriteFailed => t.write_failed(),
                Ev::Release => {
                    t.releasing();
                    last_ok_sent = None;
                }
                Ev::Wait(d) => now = now + Duration::from_millis(d.into()),
            }
            // Tenure: never beyond the renew deadline of the latest successful write sent.
            match (t.held_until(now), last_ok_sent) {
                (Some(until), Some(sent)) => prop_assert!(until <= sent + tm.renew_deadline),
                (Some(until), None) => prop_assert!(false, "held until {until:?} without a write"),
                (None, _) => {}
            }
            // Taking: never write over another holder's ticket before its duration passed.
            let step = t.step(ME, w, now, wall(), &tm);
            if let Seen::Record(o) = &t.seen {
                let foreign = o.record.holder().is_some_and(|h| h != ME);
                let unexpired = now < o.observed_at + o.record.duration_or(tm.duration);
                if foreign && unexpired {
                    let writes = matches!(step, TicketStep::Write { .. } | TicketStep::Create { .. } | TicketStep::Release { .. });
                    prop_assert!(!writes, "wrote over {:?} at {now:?}: {step:?}", o.record.holder());
                }
            }
            match (&step, w) {
                (TicketStep::Write { acquire: true, .. } | TicketStep::Create { .. }, w) => prop_assert_eq!(w, Want::Take),
                (TicketStep::Write { .. }, w) => prop_assert!(matches!(w, Want::Take | Want::Keep)),
                (TicketStep::Release { .. }, w) => prop_assert_eq!(w, Want::Release),
                (_, Want::Leave) => prop_assert_eq!(&step, &TicketStep::Idle),
                _ => {}
            }
        }
    }

    /// The forge deadline: a majority of the tickets is held at every instant before it, and
    /// not at it; holding more tickets, or later deadlines, never moves it earlier.
    #[test]
    fn forging_is_allowed_only_while_a_majority_is_held(
        deadlines in proptest::collection::vec(proptest::option::of(0u64..30_000), 1..8),
        now in 0u64..30_000,
        probe in 0u64..30_000,
        extra in 0u64..30_000,
    ) {
        let ds: Vec<Option<Mono>> = deadlines.iter().map(|d| d.map(ms)).collect();
        let s = standing(ds.clone(), ms(now));
        let live_at = |t: Mono| ds.iter().filter(|d| d.is_some_and(|d| d > t)).count();
        prop_assert_eq!(s.needed, majority(ds.len()));
        prop_assert_eq!(s.has_majority(), live_at(ms(now)) >= s.needed);
        if let Some(until) = s.until {
            let t = ms(now);
            if ms(probe) >= ms(now) && ms(probe) < until {
                prop_assert!(live_at(ms(probe)) >= s.needed);
            }
            prop_assert!(live_at(until) < s.needed);
            prop_assert!(s.allows_forging_at(t) == (t < until));
        } else {
            prop_assert!(!s.allows_forging_at(ms(probe)));
        }
        let mut more = ds.clone();
        if let Some(slot) = more.iter_mut().find(|d| d.is_none()) {
            *slot = Some(ms(extra));
            let s2 = standing(more, ms(now));
            prop_assert!(s2.until >= s.until);
        }
    }

    /// Two majorities of the same participants always share a participant (whose ticket has one
    /// holder at a time): why two regions can never both forge.
    #[test]
    fn two_majorities_always_intersect(n in 1usize..9, a in any::<u16>(), b in any::<u16>()) {
        let pick = |mask: u16| -> Vec<usize> { (0..n).filter(|i| mask & (1 << i) != 0).collect() };
        let (sa, sb) = (pick(a), pick(b));
        if sa.len() >= majority(n) && sb.len() >= majority(n) {
            prop_assert!(sa.iter().any(|i| sb.contains(i)));
        }
    }

    /// A holder's deadline passes before anyone else may take the ticket, with the node's stop
    /// margin to spare, for any timing that passes the rules and any clock-rate difference up to
    /// the bound: the holder's clock runs `slow` and the observer's `fast`, the worst case.
    #[test]
    fn a_holder_stops_before_its_ticket_can_expire_for_others(
        duration_s in 15u64..120,
        renew_ms in 3_000u64..120_000,
        seen_after_ms in 0u64..5_000,
        rate_pm in 0u64..=1_000,
    ) {
        let t = TicketTiming {
            duration: Duration::from_secs(duration_s),
            renew_deadline: Duration::from_millis(renew_ms),
            retry_period: Duration::from_secs(2),
        };
        prop_assume!(check_ticket_timing(&t, &LeaseTiming::default(), Duration::from_millis(500)).is_empty());
        let rho = MAX_CLOCK_RATE_DIFFERENCE * rate_pm as f64 / 1_000.0;
        // Real seconds: the write is sent at 0; the holder's clock runs at 1 - rho/2, so its
        // renew deadline passes at R / (1 - rho/2); the observer first sees the write at
        // `seen_after` >= 0 and its clock runs at 1 + rho/2, so it may take the ticket at
        // seen_after + D / (1 + rho/2).
        let holder_stops = t.renew_deadline.as_secs_f64() / (1.0 - rho / 2.0);
        let others_take = seen_after_ms as f64 / 1_000.0 + t.duration.as_secs_f64() / (1.0 + rho / 2.0);
        let node_stop = crate::config::MIN_DEADLINE_MARGIN.as_secs_f64();
        prop_assert!(holder_stops + node_stop <= others_take + 1e-9,
            "stops at {holder_stops} + {node_stop}, taken at {others_take}");
    }
}
