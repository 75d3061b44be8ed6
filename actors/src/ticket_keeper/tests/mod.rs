//! The TicketKeeper against in-memory Leases on virtual time. Here the world every test starts
//! (three participants, west's keeper) and what they read from it; [`holding`] holds the tickets
//! taken only while told to, the majority and its forge deadline reported, tickets kept without
//! taking and released only when told the stop is confirmed, another region's unrenewed ticket
//! taken only after a whole ticket duration, and an API server that stops answering dropped from
//! the count by the renew deadline; [`reach`] holds a foreign ticket followed by its watch, a
//! participant out of reach reported and read until it answers again, and a watch stalled on a
//! dead path found out by a read.

mod holding;
mod reach;

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
    testing::{MemoryLeases, MemoryTickets, Outage, Probe, eventually, on_virtual_time},
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
    /// The participants' API servers, each serving its ticket through `clients[i]`.
    api: MemoryTickets,
    probe: Probe,
    keeper: actix::Addr<TicketKeeper>,
    clock: Clock,
    /// What the keeper sent for `/status`.
    figures: Arc<std::sync::Mutex<Vec<StatusFigures>>>,
}

/// The participants, in the order of [`start`]'s stores: west (ours), east, and a witness.
const NAMES: [&str; 3] = ["west", "east", "witness"];

fn start(stores: Vec<MemoryLeases>) -> Setup {
    let clock = Clock::new();
    let probe = Probe::start();
    let clients: Vec<_> = stores.iter().map(|s| s.client("west")).collect();
    let api = MemoryTickets::default();
    let participants = clients
        .iter()
        .zip(NAMES)
        .enumerate()
        .map(|(i, (c, name))| {
            api.add(name, c.clone());
            Participant {
                name: name.to_string(),
                witness: i == 2,
            }
        })
        .collect();
    let settings = TicketSettings {
        me: "west".into(),
        participants,
        lease: "pool-ticket".into(),
        timing: timing(),
        call_timeout: Duration::from_secs(3),
        break_glass: false,
    };
    let (report, figures) = crate::testing::recorder::<StatusFigures>();
    let keeper = TicketKeeper::new(
        settings,
        Arc::new(api.clone()),
        clock,
        probe.recipient(),
        None,
        report,
    )
    .start();
    Setup {
        figures,
        stores,
        clients,
        api,
        probe,
        keeper,
        clock,
    }
}

/// [`start`] with three free tickets.
fn start_free() -> Setup {
    start(vec![
        MemoryLeases::new(),
        MemoryLeases::new(),
        MemoryLeases::new(),
    ])
}

/// Tells the keeper to take the tickets and waits until it reports all three held.
async fn take_all(s: &Setup) {
    s.keeper.do_send(TicketIntent(TAKE));
    eventually("three held", || {
        last_standing(&s.probe).is_some_and(|st| st.held == 3)
    })
    .await;
}

/// East's ticket renewed for the `n`th time (second `n` of a fixed wall clock).
fn east_renewal(n: i64) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some("east".into()),
        lease_duration_seconds: Some(20),
        renew_time: Some(jiff::Timestamp::from_second(1_700_000_000 + n).expect("time")),
        ..LeaseRecord::default()
    }
}

/// When the keeper last reported a standing that satisfies `which`.
fn last_reported(s: &Setup, which: impl Fn(&Standing) -> bool) -> forge_core::lease::Mono {
    s.probe
        .recorded()
        .into_iter()
        .rev()
        .find(|r| matches!(&r.fact.event, Event::TicketsChanged { standing } if which(standing)))
        .map(|r| s.clock.mono_of(r.at))
        .expect("a standing reported")
}

/// Waits while `store`'s ticket stays east's for 19 s (just short of a ticket duration
/// unrenewed) and then until west holds it; returns when west last took it.
async fn taken_from_east_after_a_duration(s: &Setup, store: usize) -> tokio::time::Instant {
    tokio::time::sleep(Duration::from_secs(19)).await;
    assert_eq!(
        s.stores[store].holder().as_deref(),
        Some("east"),
        "taken before the ticket duration"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    eventually("east's ticket taken", || {
        s.stores[store].holder().as_deref() == Some("west")
    })
    .await;
    s.stores[store]
        .holder_changes()
        .into_iter()
        .rfind(|(_, h)| h.as_deref() == Some("west"))
        .map(|(at, _)| at)
        .expect("taken")
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

/// The participants reported unreachable in the last standing, and since when.
fn unreachable(probe: &Probe) -> Vec<(String, forge_core::lease::Mono)> {
    last_standing(probe)
        .map(|st| st.unreachable_since.into_iter().collect())
        .unwrap_or_default()
}

const RELEASE: Intent = Intent {
    local_leader: true,
    contend: false,
    stopped: true,
};
