//! Tickets taken only while told to and the majority reported, kept without taking and
//! released once stopped, another region's taken only after a whole duration unrenewed, and an
//! unreachable participant dropped by the renew deadline.

use super::*;

#[test]
fn takes_free_tickets_only_when_told_and_reports_the_majority() {
    on_virtual_time(|| async {
        let s = start_free();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            s.stores.iter().all(|st| st.current().is_none()),
            "touched without an intent"
        );
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("all three tickets held", || {
            s.stores.iter().all(|st| st.holder().as_deref() == Some("west"))
        })
        .await;
        eventually("a majority reported", || {
            last_standing(&s.probe).is_some_and(|st| st.held == 3 && st.needed == 2 && st.until.is_some())
        })
        .await;
        let until = last_standing(&s.probe).and_then(|st| st.until).expect("deadline");
        assert!(
            until <= s.clock.now() + timing().renew_deadline,
            "forge deadline beyond the renew deadline"
        );
        eventually("the majority in the /status report", || {
            reports(&s).last().is_some_and(|r| {
                r.want == "take"
                    && r.held == 3
                    && r.needed == 2
                    && r.forge_deadline_in_ms.is_some()
                    && r.holders.get("west") == Some(&3)
            })
        })
        .await;
        let sent = reports(&s);
        assert_eq!(sent[0].want, "leave", "{:?}", sent[0]);
        assert!(
            sent.windows(2).all(|w| w[0] != w[1]),
            "a report sent again unchanged: {sent:?}"
        );
        // Renewals keep the deadline ahead.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let st = last_standing(&s.probe).expect("standing");
        assert!(
            st.until.is_some_and(|u| u > s.clock.now()),
            "majority not renewed: {st:?}"
        );
    })
}

#[test]
fn keeps_without_taking_and_releases_only_once_stopped() {
    on_virtual_time(|| async {
        let s = start_free();
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("held", || {
            s.stores.iter().all(|st| st.holder().as_deref() == Some("west"))
        })
        .await;
        // Should yield, stop not yet confirmed: keep renewing.
        s.keeper.do_send(TicketIntent(Intent {
            stopped: false,
            contend: false,
            ..TAKE
        }));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            s.stores.iter().all(|st| st.holder().as_deref() == Some("west")),
            "released before the stop"
        );
        let st = last_standing(&s.probe).expect("standing");
        assert!(
            st.until.is_some_and(|u| u > s.clock.now()),
            "kept tickets not renewed"
        );
        // Stopped: release.
        s.keeper.do_send(TicketIntent(Intent {
            stopped: true,
            contend: false,
            ..TAKE
        }));
        eventually("released", || s.stores.iter().all(|st| st.holder().is_none())).await;
        eventually("no majority reported", || {
            last_standing(&s.probe).is_some_and(|st| st.held == 0 && st.until.is_none())
        })
        .await;
    })
}

#[test]
fn another_regions_ticket_is_taken_only_after_a_whole_duration_unrenewed() {
    on_virtual_time(|| async {
        let foreign = LeaseRecord {
            holder_identity: Some("east".into()),
            lease_duration_seconds: Some(20),
            ..LeaseRecord::default()
        };
        let stores = vec![
            MemoryLeases::new(),
            MemoryLeases::with_record(foreign.clone()),
            MemoryLeases::with_record(foreign),
        ];
        let s = start(stores);
        let t0 = tokio::time::Instant::now();
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("ours taken", || s.stores[0].holder().as_deref() == Some("west")).await;
        let took = taken_from_east_after_a_duration(&s, 1).await;
        eventually("the witness's ticket taken too", || {
            s.stores[2].holder().as_deref() == Some("west")
        })
        .await;
        assert!(
            took.duration_since(t0) >= Duration::from_secs(20),
            "taken after {:?}, before the ticket duration",
            took.duration_since(t0)
        );
    })
}

#[test]
fn an_unreachable_participant_drops_out_by_the_renew_deadline() {
    on_virtual_time(|| async {
        let s = start_free();
        take_all(&s).await;
        s.clients[1].set_outage(Outage::Hang);
        s.clients[2].set_outage(Outage::ServerError);
        let cut = s.clock.now();
        tokio::time::sleep(Duration::from_secs(11)).await;
        eventually("majority lost", || {
            last_standing(&s.probe).is_some_and(|st| st.until.is_none() && st.held == 1)
        })
        .await;
        let lost_at = last_reported(&s, |st| st.until.is_none());
        assert!(
            lost_at <= cut + timing().renew_deadline + Duration::from_secs(1),
            "majority counted too long: {:?} after the cut",
            lost_at.saturating_since(cut)
        );
    })
}
