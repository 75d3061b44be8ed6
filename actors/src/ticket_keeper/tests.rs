//! The TicketKeeper against in-memory Leases on virtual time: it takes free tickets only while
//! told to, reports the majority and its forge deadline, keeps without taking, releases only
//! when told the stop is confirmed, waits a whole ticket duration before taking another region's
//! unrenewed ticket, and drops a ticket whose API server stops answering from its count by the
//! renew deadline.
use std::{sync::Arc, time::Duration};

use actix::Actor;
use forge_core::{
    config::TicketTiming,
    decision::Event,
    lease::LeaseRecord,
    quorum::{Intent, Standing},
};

use super::*;
use crate::{
    clock::Clock,
    testing::{MemoryLeases, Outage, Probe, eventually, on_virtual_time},
};

fn timing() -> TicketTiming {
    TicketTiming {
        duration: Duration::from_secs(20),
        renew_deadline: Duration::from_secs(12),
        retry_period: Duration::from_secs(2),
    }
}

struct Setup {
    stores: Vec<MemoryLeases>,
    clients: Vec<crate::testing::MemoryLeaseClient>,
    probe: Probe,
    keeper: actix::Addr<TicketKeeper>,
    clock: Clock,
    /// What the keeper sent for `/status`.
    figures: Arc<std::sync::Mutex<Vec<StatusFigures>>>,
}

fn start(stores: Vec<MemoryLeases>) -> Setup {
    let clock = Clock::new();
    let probe = Probe::start();
    let clients: Vec<_> = stores.iter().map(|s| s.client("west")).collect();
    let names = ["west", "east", "witness"];
    let participants = clients
        .iter()
        .enumerate()
        .map(|(i, c)| ParticipantEndpoint {
            name: names[i].to_string(),
            witness: i == 2,
            endpoint: Endpoint::Port(Arc::new(c.clone())),
        })
        .collect();
    let settings = TicketSettings {
        me: "west".into(),
        participants,
        namespace: "cardano".into(),
        lease: "pool-ticket".into(),
        timing: timing(),
        call_timeout: Duration::from_secs(3),
        break_glass: false,
    };
    let (report, figures) = crate::testing::recorder::<StatusFigures>();
    let keeper = TicketKeeper::new(settings, clock, probe.recipient(), None, report).start();
    Setup {
        figures,
        stores,
        clients,
        probe,
        keeper,
        clock,
    }
}

/// The quorum reports sent for `/status`, in order.
fn reports(s: &Setup) -> Vec<QuorumReport> {
    s.figures
        .lock()
        .expect("figures")
        .iter()
        .map(|f| match f {
            StatusFigures::Quorum(r) => r.clone(),
            other => panic!("the TicketKeeper sent {other:?}"),
        })
        .collect()
}

fn last_standing(probe: &Probe) -> Option<Standing> {
    probe.events().into_iter().rev().find_map(|e| match e {
        Event::TicketsChanged { standing } => Some(standing),
        _ => None,
    })
}

const TAKE: Intent = Intent {
    local_leader: true,
    contend: true,
    stopped: true,
};

#[test]
fn takes_free_tickets_only_when_told_and_reports_the_majority() {
    on_virtual_time(|| async {
        let s = start(vec![
            MemoryLeases::new(),
            MemoryLeases::new(),
            MemoryLeases::new(),
        ]);
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
        let s = start(vec![
            MemoryLeases::new(),
            MemoryLeases::new(),
            MemoryLeases::new(),
        ]);
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
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert!(
            s.stores[1].holder().as_deref() == Some("east"),
            "taken before the ticket duration"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        eventually("east's tickets taken", || {
            s.stores[1..]
                .iter()
                .all(|st| st.holder().as_deref() == Some("west"))
        })
        .await;
        let took = s.stores[1]
            .holder_changes()
            .into_iter()
            .find(|(_, h)| h.as_deref() == Some("west"))
            .map(|(at, _)| at)
            .expect("taken");
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
        let s = start(vec![
            MemoryLeases::new(),
            MemoryLeases::new(),
            MemoryLeases::new(),
        ]);
        s.keeper.do_send(TicketIntent(TAKE));
        eventually("three held", || {
            last_standing(&s.probe).is_some_and(|st| st.held == 3)
        })
        .await;
        s.clients[1].set_outage(Outage::Hang);
        s.clients[2].set_outage(Outage::ServerError);
        let cut = s.clock.now();
        tokio::time::sleep(Duration::from_secs(11)).await;
        eventually("majority lost", || {
            last_standing(&s.probe).is_some_and(|st| st.until.is_none() && st.held == 1)
        })
        .await;
        let lost_at = s
            .probe
            .recorded()
            .into_iter()
            .rev()
            .find(|r| matches!(&r.fact.event, Event::TicketsChanged { standing } if standing.until.is_none()))
            .map(|r| s.clock.mono_of(r.at))
            .expect("lost");
        assert!(
            lost_at <= cut + timing().renew_deadline + Duration::from_secs(1),
            "majority counted too long: {:?} after the cut",
            lost_at.saturating_since(cut)
        );
    })
}

/// Issue 14's API budget: a ticket held by another region is followed by its watch (each
/// renewal restarts our observation clock at its arrival), not read every retry period; a
/// broken watch costs a read and is opened again; the ticket is taken a whole duration after
/// the last renewal the watch showed, and not much later.
#[test]
fn a_foreign_ticket_is_followed_by_its_watch_not_read_every_retry_period() {
    on_virtual_time(|| async {
        let renewal = |n: i64| LeaseRecord {
            holder_identity: Some("east".into()),
            lease_duration_seconds: Some(20),
            renew_time: Some(jiff::Timestamp::from_second(1_700_000_000 + n).expect("time")),
            ..LeaseRecord::default()
        };
        let stores = vec![
            MemoryLeases::new(),
            MemoryLeases::with_record(renewal(0)),
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
            s.stores[1].write_foreign(renewal(n));
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
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert_eq!(
            s.stores[1].holder().as_deref(),
            Some("east"),
            "taken before the ticket duration"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        eventually("east's ticket taken", || {
            s.stores[1].holder().as_deref() == Some("west")
        })
        .await;
        let took = s.stores[1]
            .holder_changes()
            .into_iter()
            .rfind(|(_, h)| h.as_deref() == Some("west"))
            .map(|(at, _)| at.duration_since(last))
            .expect("taken");
        assert!(
            took >= Duration::from_secs(20) && took <= Duration::from_secs(23),
            "taken {took:?} after the last renewal"
        );
    })
}
