//! Quorum mode with real processes (docs/quorum.md): one real kube-apiserver per
//! region plus a witness API server with no pods, two `forge-manager run` sidecars and
//! realistic node simulators per region, cluster management on, every participant's ticket
//! reached through a fault proxy per (observer, participant). The merged node timelines of all
//! regions are the judge: the overlap of forgers must be 0 ms.
//!
//! Timing: the scenario world's lease (4 s / 2 s / 0.5 s retry), `TICKET_DURATION` 6 s and
//! `TICKET_RENEW_DEADLINE` 3 s. A lost primary keeps its tickets on the others' API servers
//! until they have gone unrenewed for the ticket duration on the taker's clock, so a new region
//! may forge no sooner than `D - RETRY_PERIOD` after the fault (its last renewal may be that
//! old), and the argument's bound on the failover is `D + 2 x RETRY_PERIOD + slowest reload`
//! (observation of the last renewal, the take, the node's reload), plus the decision and the
//! claim's status write. Bounds asserted here are generous (a loaded 2-core machine).
//!
//! The scenarios run in one world, one after the other, each starting from east (priority 1)
//! forging: witness down with a planned failover and failback, east partitioned from every
//! other participant, east's API server frozen (SIGSTOP), an asymmetric partition (east's links
//! lose their answers but not their requests), a link flapping for 2 minutes around the ticket
//! timings, east reaching nobody while the others still read it (its own paths lose their
//! requests), then the whole east region dead. A second, smaller world has two regions and the
//! witness (three participants): east and west cut apart while both reach the witness (east
//! keeps forging), then the primary region dies and the other takes its own ticket and the
//! witness's. `kubectl get cfc` (the API server's table of the printer columns) shows the
//! tickets held on the way.
//!
//! This file holds the two scenarios: the three-region world's last steps (east reaching only
//! part of the participants, q9 and q10, then east dead, q8) and the two-region world whole; the
//! three-region world's first steps (q1 to q7) are in [`scenarios`], the timings and the bounds
//! the argument gives in [`timing`], the world of regions, witness and fault proxies in
//! [`regions`].

use std::{path::PathBuf, time::Duration};

use forge_sim::{
    apiserver::ONE_AT_A_TIME,
    timeline::{judge_window, unix_now_ns},
};

use regions::Quorum;
use timing::{
    assert_not_before_the_tickets, failover_bound, part_reach_failover_bound, planned_bound, recovery_bound,
};

mod regions;
mod scenarios;
mod timing;

const REPLICAS: usize = 2;

const WITNESS: &str = "witness";

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_and_a_witness_fail_over_by_the_tickets_without_overlap() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "three_regions_and_a_witness_fail_over_by_the_tickets_without_overlap";
    let Some(mut q) = Quorum::start(test, &[("east", 1), ("west", 2), ("north", 3)]).await else {
        return;
    };
    let east = scenarios::every_ticket_held(&mut q).await;
    scenarios::witness_down(&mut q, &east).await;
    scenarios::partitioned(&mut q).await;
    scenarios::api_server_frozen(&mut q).await;
    scenarios::answers_lost(&mut q).await;
    scenarios::flapping_link(&mut q).await;
    let east = scenarios::reaching_nobody(&mut q).await;

    // (q9) East reaches only west: north and the witness are cut off from east both ways, west
    // still reads east and is read by it. East keeps its own ticket and west's (two of four) and
    // stops; counting the witness in reach always, it would contend for ever, west and north
    // yielding to it. Its calls to north's ticket and the witness's have all failed for a lease
    // duration: it stands aside (`majority_out_of_reach`) and releases the two it holds; west
    // reads that, takes them at once and the other two once east's renewals have aged out.
    // Healed, east contends again and takes back.
    let (west, _) = part_reach(
        &mut q,
        &[("east", "north"), ("north", "east"), ("east", WITNESS)],
        "4/4",
        "(q9)",
        "east reaches only west",
    )
    .await;
    drop(west);

    // (q10) The 2/2 split: east reaches only the witness (cut from west and north both ways).
    // East keeps its own ticket and the witness's, west and north see east unreachable; east
    // stands aside and releases both, west takes its own, north's and the witness's (three of
    // four: east's it cannot reach).
    let (west, _) = part_reach(
        &mut q,
        &[
            ("east", "west"),
            ("west", "east"),
            ("east", "north"),
            ("north", "east"),
        ],
        "3/4",
        "(q10)",
        "east reaches only the witness (2/2 split)",
    )
    .await;
    drop(west);

    // (q8) The whole east region dead: nodes, managers and API server.
    let since = unix_now_ns();
    q.kill_region("east");
    let (west, _) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(30),
            "(q8) east dead",
            "(q8) whole east region dead",
            failover_bound(),
            "(q8)",
        )
        .await;
    q.only(&west, Duration::from_secs(3), "(q8)").await;
    drop(east);

    for (s, took, bound) in &q.figures {
        eprintln!("figure: {s}: {took:.0} ms (bound {bound:.0} ms)");
    }
    for (s, took, bound) in &q.figures {
        // Generous: twice the bound plus 5 s (a loaded 2-core machine).
        assert!(
            *took <= bound * 2.0 + 5_000.0,
            "{s}: {took:.0} ms against a bound of {bound:.0} ms"
        );
    }
    q.stop();
}

/// East cut off from every participant but some (the `cut` links put in `blackhole`), which
/// still read it: another region forges within [`part_reach_failover_bound`] and not before the
/// ticket timing, east stands aside holding nothing and west holds `west_tickets`; healed, east
/// fails back. West's forger and
/// how long it took.
async fn part_reach(
    q: &mut Quorum,
    cut: &[(&str, &str)],
    west_tickets: &str,
    tag: &str,
    what: &str,
) -> (String, f64) {
    let since = unix_now_ns();
    for (a, b) in cut {
        q.link(a, b).handle().blackhole();
    }
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(40),
            &format!("{tag} {what}"),
            &format!("{tag} {what}"),
            part_reach_failover_bound(),
            tag,
        )
        .await;
    assert_not_before_the_tickets(took, &format!("{tag} west"), "the fault");
    q.expect_tickets("east", "0/4", tag).await;
    q.expect_tickets("west", west_tickets, tag).await;
    let since = unix_now_ns();
    for (a, b) in cut {
        q.link(a, b).handle().pass();
    }
    let healed = format!("{}b)", tag.trim_end_matches(')'));
    q.moved_to(
        "east",
        since,
        Duration::from_secs(30),
        &format!("{tag} healed"),
        &format!("{tag} healed: failback west->east"),
        recovery_bound() + planned_bound(),
        &healed,
    )
    .await;
    q.expect_tickets("east", "4/4", &healed).await;
    (west, took)
}

/// Two regions and a witness (three participants, a majority of two): east forges holding all
/// three tickets; cut from west while both still reach the witness, it keeps forging (the
/// witness's ticket is its); when the whole east region dies, west takes its own ticket and the
/// witness's once east's have aged out, and forges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_and_a_witness_fail_over_when_the_primary_dies() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "two_regions_and_a_witness_fail_over_when_the_primary_dies";
    let Some(mut q) = Quorum::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };
    let east = q
        .expect_forger_in("east", Duration::from_secs(40), "(w1) start")
        .await;
    q.only(&east, Duration::from_secs(2), "(w1)").await;
    let i = q.world("east").index_of(&east).expect("pod");
    let status = q.world("east").status(i).await.unwrap_or_default();
    let quorum = status.quorum.as_ref();
    assert_eq!(
        quorum.map(|q| q.held),
        Some(3),
        "east holds every ticket: {quorum:?}"
    );
    assert_eq!(quorum.map(|q| q.needed), Some(2), "{quorum:?}");

    // (w2) A non-transitive partition: east and west cannot reach each other, both reach the
    // witness. West sees east silent and takes what it may: its own ticket, once east's renewals
    // of it have stopped for the ticket duration, never the witness's, which east keeps
    // renewing. East keeps a majority (its own and the witness's) and forges throughout.
    let since = unix_now_ns();
    for (a, b) in [("east", "west"), ("west", "east")] {
        q.link(a, b).handle().blackhole();
    }
    q.only(
        &east,
        failover_bound() + Duration::from_secs(1),
        "(w2) east and west cut apart",
    )
    .await;
    q.expect_tickets("west", "1/3", "(w2)").await;
    q.expect_tickets("east", "2/3", "(w2)").await;
    let w = judge_window(&q.events(), forge_sim::timeline::Window::since(since)).expect("timeline");
    assert!(
        w.transitions == 0 && w.forgers == [east.clone()],
        "(w2) {east} stopped or someone else forged: {w:?}"
    );
    eprintln!(
        "(w2) east and west cut apart, both reach the witness: {east} forged throughout ({:.0} ms), nobody else",
        w.forging_ms.values().sum::<f64>()
    );
    for (a, b) in [("east", "west"), ("west", "east")] {
        q.link(a, b).handle().pass();
    }
    q.expect_tickets("east", "3/3", "(w2) healed").await;

    // (w3) The whole east region dead.
    let since = unix_now_ns();
    q.kill_region("east");
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(30),
            "(w3) east dead",
            "(w3) two regions + witness: whole east region dead",
            failover_bound(),
            "(w3)",
        )
        .await;
    assert_not_before_the_tickets(took, "(w3) west", "east died");
    assert!(
        took <= failover_bound().as_secs_f64() * 2e3 + 5_000.0,
        "(w3) {took:.0} ms"
    );
    q.only(&west, Duration::from_secs(3), "(w3)").await;
    q.stop();
}
