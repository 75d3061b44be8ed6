//! Issue 14's API budget and liveness: a foreign ticket followed by its watch, a participant
//! whose calls all fail reported and read until it answers again, and a watch stalled on a
//! dead path found out by a read; and how a participant's API server is connected through the
//! port.

use super::*;

/// Issue 14's API budget: a ticket held by another region is followed by its watch (each
/// renewal restarts our observation clock at its arrival), not read every retry period; a
/// broken watch costs a read and is opened again; the ticket is taken a whole duration after
/// the last renewal the watch showed, and not much later.
#[test]
fn a_foreign_ticket_is_followed_by_its_watch_not_read_every_retry_period() {
    on_virtual_time(|| async {
        let stores = vec![
            MemoryLeases::new(),
            MemoryLeases::with_record(east_renewal(0)),
            MemoryLeases::new(),
        ];
        let s = start(stores);
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("ours and the witness's taken", || {
            s.stores[0].holder().as_deref() == Some("west") && s.stores[2].holder().as_deref() == Some("west")
        })
        .await;
        // East renews every 2 s for 24 s (longer than the ticket duration); its watch breaks
        // halfway.
        let calls = s.clients[1].calls();
        for n in 1..=12 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            s.stores[1].write_foreign(east_renewal(n));
            if n == 6 {
                s.clients[1].break_watches();
            }
        }
        assert_eq!(
            s.stores[1].holder().as_deref(),
            Some("east"),
            "taken while renewed"
        );
        let read = s.clients[1].calls() - calls;
        assert!(
            read <= 2,
            "{read} calls to a watched foreign ticket in 24 s (every retry period would be 12)"
        );
        // East stops renewing: taken a whole duration after the last renewal, not much later.
        let last = tokio::time::Instant::now();
        let took = taken_from_east_after_a_duration(&s, 1).await.duration_since(last);
        assert!(
            took >= Duration::from_secs(20) && took <= Duration::from_secs(23),
            "taken {took:?} after the last renewal"
        );
    })
}

/// Issue 14's last liveness gap: the Decider counts a participant (a witness too) out of reach
/// once every ticket call to it has failed for longer than a Lease duration, so the keeper
/// reports since when; standing aside (releasing), it goes on reading that participant (at
/// most once per retry period, the first failure's instant unchanged: no flapping) and reports
/// the first answer after the heal, while the participants in reach cost at most a read per
/// half ticket duration.
#[test]
fn a_participant_whose_calls_all_fail_is_reported_and_read_until_it_answers_again() {
    on_virtual_time(|| async {
        let s = start_free();
        take_all(&s).await;
        assert!(unreachable(&s.probe).is_empty());
        s.clients[2].set_outage(Outage::Hang);
        let cut = s.clock.now();
        // The next renewal (within a retry period) times out after the call timeout.
        tokio::time::sleep(timing().retry_period + Duration::from_secs(3)).await;
        eventually("the witness reported unreachable", || {
            !unreachable(&s.probe).is_empty()
        })
        .await;
        let reported = unreachable(&s.probe);
        assert_eq!(reported.len(), 1, "{reported:?}");
        let (name, since) = reported[0].clone();
        assert_eq!(name, "witness");
        assert!(
            since >= cut && since <= cut + timing().retry_period + Duration::from_secs(3),
            "unreachable since {:?} after the cut",
            since.saturating_since(cut)
        );

        // A blip of the local lease (leader, not, leader again): the new tenure's first
        // standing carries the same first failure (the count goes on). (The in-memory double's
        // new watch then shows the record at once, as a list-then-watch on a live path does,
        // which ends the count: a real dead path shows nothing.)
        s.probe.take_events();
        s.keeper.do_send(TicketIntent(Intent {
            local_leader: false,
            ..TAKE
        }));
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("the new tenure's standing", || {
            s.probe.events().iter().any(
                |e| matches!(e, Event::TicketsChanged { standing } if !standing.unreachable_since.is_empty()),
            )
        })
        .await;
        let first = s.probe.events().into_iter().find_map(|e| match e {
            Event::TicketsChanged { standing } if !standing.unreachable_since.is_empty() => {
                Some(standing.unreachable_since)
            }
            _ => None,
        });
        assert_eq!(
            first.and_then(|m| m.get("witness").copied()),
            Some(since),
            "the count restarted after a blip"
        );
        tokio::time::sleep(timing().retry_period + Duration::from_secs(3)).await;
        eventually("the witness reported unreachable again", || {
            !unreachable(&s.probe).is_empty()
        })
        .await;
        let since = unreachable(&s.probe)[0].1;

        // Standing aside: ours are released; the witness is still read, at most once per
        // retry period, and its first failure stays the one reported.
        s.keeper.do_send(TicketIntent(RELEASE));
        eventually("ours released", || {
            s.stores[..2].iter().all(|st| st.holder().is_none())
        })
        .await;
        let calls: Vec<u64> = s.clients.iter().map(|c| c.calls()).collect();
        let events_before = s.probe.events().len();
        tokio::time::sleep(Duration::from_secs(40)).await;
        let during: Vec<u64> = s.clients.iter().zip(&calls).map(|(c, n)| c.calls() - n).collect();
        assert!(
            (4..=21).contains(&during[2]),
            "{} calls to the unreachable witness in 40 s (every retry period at most: 20)",
            during[2]
        );
        assert!(
            during[..2].iter().all(|n| *n <= 6),
            "calls to the free tickets in reach in 40 s: {during:?} (a read per half ticket duration: 4)"
        );
        for e in &s.probe.events()[events_before..] {
            if let Event::TicketsChanged { standing } = e {
                assert_eq!(
                    standing.unreachable_since.get("witness"),
                    Some(&since),
                    "the witness's failures restarted or ended: {standing:?}"
                );
            }
        }

        // Healed: reported in reach after the call in flight's timeout and a retry period.
        s.clients[2].set_outage(Outage::None);
        let healed = s.clock.now();
        tokio::time::sleep(timing().retry_period + Duration::from_secs(3)).await;
        eventually("the witness in reach again", || unreachable(&s.probe).is_empty()).await;
        let back = last_reported(&s, |st| st.unreachable_since.is_empty());
        assert!(
            back <= healed + timing().retry_period + Duration::from_secs(3) + Duration::from_millis(600),
            "in reach again {:?} after the heal",
            back.saturating_since(healed)
        );
    })
}

/// A path that dies while its ticket's watch stays open shows nothing; the keeper of a region
/// that stands by (releasing, a foreign holder renewing every ticket) reads a ticket whose
/// watch has shown nothing for half a ticket duration, so the dead path is reported all the
/// same. Without a local tenure, nothing is reported.
#[test]
fn a_watch_stalled_on_a_dead_path_is_found_out_by_a_read() {
    on_virtual_time(|| async {
        let s = start(vec![
            MemoryLeases::with_record(east_renewal(0)),
            MemoryLeases::with_record(east_renewal(0)),
            MemoryLeases::with_record(east_renewal(0)),
        ]);
        s.keeper.do_send(TicketIntent(RELEASE));
        let mut n = 0;
        let mut renew = |stores: &[MemoryLeases], upto: usize| {
            n += 1;
            for st in &stores[..upto] {
                st.write_foreign(east_renewal(n));
            }
        };
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            renew(&s.stores, 3);
        }
        let calls = s.clients[2].calls();
        assert!(unreachable(&s.probe).is_empty());
        // The witness's path dies: its watch stays open and shows nothing, its calls hang.
        s.clients[2].set_outage(Outage::Hang);
        let cut = s.clock.now();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            renew(&s.stores, 2);
        }
        let reported = unreachable(&s.probe);
        assert_eq!(
            reported.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["witness"],
            "{reported:?}"
        );
        assert!(
            reported[0].1 <= cut + timing().duration / 2 + Duration::from_secs(3) + Duration::from_secs(2),
            "found out {:?} after the path died",
            reported[0].1.saturating_since(cut)
        );
        assert!(s.clients[2].calls() > calls, "the stalled ticket was never read");
        // No longer the local leader: nothing reported (only the local leader's decision needs it).
        s.keeper.do_send(TicketIntent(Intent {
            local_leader: false,
            ..RELEASE
        }));
        eventually("nothing reported without a tenure", || {
            last_standing(&s.probe).is_some_and(|st| st.unreachable_since.is_empty())
        })
        .await;
    })
}

/// Each participant's API server is connected through the [`TicketApi`] on its ticket's first
/// call, and again at every call until one answers (a participant that cannot be connected is
/// out of reach like one whose calls fail, tried again every retry period); then the ticket is
/// kept: calls that fail later do not connect it again.
#[test]
fn a_participant_is_connected_until_a_call_answers_then_kept() {
    on_virtual_time(|| async {
        let s = start_free();
        s.api.set_reachable("witness", false);
        tokio::time::sleep(timing().retry_period).await;
        assert_eq!(
            NAMES.map(|n| s.api.connects(n)),
            [0; 3],
            "connected before any call"
        );

        s.keeper.do_send(TicketIntent(TAKE));
        eventually("two held, the witness reported unreachable", || {
            last_standing(&s.probe)
                .is_some_and(|st| st.held == 2 && st.unreachable_since.contains_key("witness"))
        })
        .await;
        let tried = s.api.connects("witness");
        tokio::time::sleep(timing().retry_period * 5).await;
        let again = s.api.connects("witness") - tried;
        assert!(
            (4..=6).contains(&again),
            "{again} connects of the unreachable witness in five retry periods"
        );

        s.api.set_reachable("witness", true);
        eventually("three held", || {
            last_standing(&s.probe).is_some_and(|st| st.held == 3 && st.unreachable_since.is_empty())
        })
        .await;
        let witness = s.api.connects("witness");
        assert_eq!([s.api.connects("west"), s.api.connects("east")], [1, 1]);

        // East's calls fail for a while: its ticket is not connected again.
        s.clients[1].set_outage(Outage::ServerError);
        eventually("east reported unreachable", || {
            last_standing(&s.probe).is_some_and(|st| st.unreachable_since.contains_key("east"))
        })
        .await;
        tokio::time::sleep(timing().retry_period * 2).await;
        s.clients[1].set_outage(Outage::None);
        eventually("three held, east in reach again", || {
            last_standing(&s.probe).is_some_and(|st| st.held == 3 && st.unreachable_since.is_empty())
        })
        .await;
        assert_eq!(
            NAMES.map(|n| s.api.connects(n)),
            [1, 1, witness],
            "a ticket connected again after it answered"
        );
    });
}
