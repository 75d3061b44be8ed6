//! The three regions and a witness world's scenario steps, one `async fn` each, run one after
//! the other by `three_regions_and_a_witness_fail_over_by_the_tickets_without_overlap` in the
//! crate root: every ticket held at the start (q1), the witness down with a planned failover and
//! failback (q2), east partitioned (q3), east's API server frozen (q4), the asymmetric partition
//! (q5), the flapping link (q6) and east reaching nobody (q7). Each starts and ends with east
//! forging.

use std::time::{Duration, Instant};

use forge_sim::{
    proxy::ProxyMode,
    timeline::{judge_window, unix_now_ns},
};

use crate::{
    WITNESS,
    regions::Quorum,
    timing::{
        LOCAL_RENEW_DEADLINE, TICKET_DURATION, assert_not_before_the_tickets, failover_bound, flap_gap_bound,
        flap_schedule, one_way_failover_bound, out_of_reach_failover_bound, planned_bound, recovery_bound,
    },
};

/// (q1) East forges holding every ticket, shown by its `/status`, its metrics (and the names the
/// alert rules use) and `kubectl get cfc`. East's forger.
pub(crate) async fn every_ticket_held(q: &mut Quorum) -> String {
    let t0 = Instant::now();
    let east = q
        .expect_forger_in("east", Duration::from_secs(40), "(q1) start")
        .await;
    eprintln!("(q1) {east} forges after {:?}", t0.elapsed());
    q.only(&east, Duration::from_secs(2), "(q1)").await;
    let i = q.world("east").index_of(&east).expect("pod");
    let status = q.world("east").status(i).await.unwrap_or_default();
    eprintln!("(q1) {east} /status quorum: {:?}", status.quorum);
    assert_eq!(
        status.quorum.as_ref().map(|q| q.held),
        Some(4),
        "east holds every ticket: {:?}",
        status.quorum
    );
    let held = q.world("east").metrics(i).await.unwrap_or_default();
    let held: Vec<&str> = held
        .lines()
        .filter(|l| l.starts_with("cardano_forge_ticket_held{"))
        .collect();
    eprintln!("(q1) {east} ticket metrics: {held:?}");
    assert_eq!(held.len(), 4, "{held:?}");
    assert!(held.iter().all(|l| l.ends_with(" 1")), "{held:?}");
    q.expect_tickets("east", "4/4", "(q1)").await;
    eprintln!(
        "(q1) kubectl get cfc: Tickets of pool-west {:?}, pool-north {:?}",
        q.tickets_column("west").await,
        q.tickets_column("north").await
    );
    // The names the alert rules and the dashboard use (tests/deploy_metrics.rs lists them as
    // quorum mode only).
    let text = q.world("east").metrics(i).await.unwrap_or_default();
    for name in [
        "cardano_forge_tickets_held ",
        "cardano_forge_tickets_needed ",
        "cardano_forge_ticket_reachable{",
        "cardano_forge_ticket_age_seconds{",
        "cardano_forge_quorum_break_glass ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} not exported:\n{text}"
        );
    }
    east
}

/// (q2) The witness down: east keeps forging on 3 of 4; a planned failover (east Disabled)
/// and a planned failback still work.
pub(crate) async fn witness_down(q: &mut Quorum, east: &str) {
    for r in ["east", "west", "north"] {
        q.link(r, WITNESS).handle().blackhole();
    }
    q.only(
        east,
        TICKET_DURATION + Duration::from_secs(2),
        "(q2) witness down",
    )
    .await;
    let since = unix_now_ns();
    q.patch_spec("east", serde_json::json!({"forgeState": "Disabled"}))
        .await;
    let (west, _) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(20),
            "(q2) planned failover",
            "(q2) witness down, planned failover east->west",
            planned_bound(),
            "(q2)",
        )
        .await;
    let since = unix_now_ns();
    q.patch_spec("east", serde_json::json!({"forgeState": "Priority-based"}))
        .await;
    let (east, _) = q
        .moved_to(
            "east",
            since,
            Duration::from_secs(20),
            "(q2) planned failback",
            "(q2) witness down, planned failback west->east",
            planned_bound(),
            "(q2b)",
        )
        .await;
    eprintln!("(q2) failback: {east} forges");
    drop(west);
    for r in ["east", "west", "north"] {
        q.link(r, WITNESS).handle().pass();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// (q3) East partitioned from every other participant (its own API server still answers):
/// it stops before its tickets expire; west forges after the ticket timing, not before.
pub(crate) async fn partitioned(q: &mut Quorum) {
    let since = unix_now_ns();
    q.partition("east", true);
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(30),
            "(q3) partition",
            "(q3) east partitioned from all others",
            failover_bound(),
            "(q3)",
        )
        .await;
    assert_not_before_the_tickets(took, "(q3) west", "the partition");
    q.only(&west, Duration::from_secs(3), "(q3) partitioned").await;
    // Healed: east is the better region again and reachable: west stops, releases, east forges.
    let since = unix_now_ns();
    q.partition("east", false);
    let (east, _) = q
        .moved_to(
            "east",
            since,
            Duration::from_secs(30),
            "(q3) healed",
            "(q3) healed: failback west->east",
            planned_bound(),
            "(q3b)",
        )
        .await;
    eprintln!("(q3) healed: {east} forges");
}

/// (q4) East's API server frozen (SIGSTOP): east loses its local lease and stops; west takes
/// over once east's tickets have gone unrenewed.
pub(crate) async fn api_server_frozen(q: &mut Quorum) {
    let (_, apiserver_pid) = q.world("east").apiserver.pids();
    let pid = nix::unistd::Pid::from_raw(apiserver_pid.expect("east apiserver pid") as i32);
    let since = unix_now_ns();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    // East's keeper reaches the other participants' API servers: it renews their tickets until
    // its local lease's renew deadline (2 s) passes; only then do they start to age out.
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(30),
            "(q4) frozen",
            "(q4) east's API server frozen",
            failover_bound() + LOCAL_RENEW_DEADLINE,
            "(q4)",
        )
        .await;
    assert_not_before_the_tickets(took, "(q4) west", "the freeze");
    let since = unix_now_ns();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let (east, _) = q
        .moved_to(
            "east",
            since,
            Duration::from_secs(40),
            "(q4) thawed",
            "(q4) thawed: failback west->east",
            planned_bound(),
            "(q4b)",
        )
        .await;
    drop((west, east));
}

/// (q5) An asymmetric partition: every path between east and the other participants loses
/// its answers but not its requests (one direction of each link fails, as on an established
/// TCP connection whose return path breaks). East's requests still land: at most one renewal
/// per ticket lands blind (its answer lost, east does not count it, and its next write, read
/// first, never goes out). East keeps only its own ticket and stops; west, seeing east
/// silent, takes the other three once they have aged out.
pub(crate) async fn answers_lost(q: &mut Quorum) {
    let since = unix_now_ns();
    q.isolate("east", ProxyMode::BlackholeDown);
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(30),
            "(q5) answers lost",
            "(q5) asymmetric: east's links lose their answers",
            one_way_failover_bound(),
            "(q5)",
        )
        .await;
    assert_not_before_the_tickets(took, "(q5) west", "the fault");
    q.expect_tickets("west", "3/4", "(q5)").await;
    // East, reaching no majority (its reads of the peers fail for longer than a lease
    // duration), stands aside and lets its own ticket go; west cannot take it (its answers are
    // lost too).
    q.expect_tickets("east", "0/4", "(q5)").await;
    q.only(&west, Duration::from_secs(2), "(q5) answers lost").await;
    let since = unix_now_ns();
    q.isolate("east", ProxyMode::Pass);
    let (east, _) = q
        .moved_to(
            "east",
            since,
            Duration::from_secs(30),
            "(q5) healed",
            "(q5) healed: failback west->east",
            planned_bound(),
            "(q5b)",
        )
        .await;
    eprintln!("(q5) healed: {east} forges");
    q.expect_tickets("east", "4/4", "(q5b)").await;
    drop(west);
}

/// (q6) A flapping link: every path between east and the others cut and restored again and
/// again for 2 minutes, around the ticket timings (flap_schedule). Never two forgers; the
/// forging gap stays within what each cut may cost; east forges once the link settles.
pub(crate) async fn flapping_link(q: &mut Quorum) {
    let schedule = flap_schedule();
    let since = unix_now_ns();
    let started = Instant::now();
    let mut gap_bound = Duration::ZERO;
    let mut longest_bound = Duration::ZERO;
    for (i, (mode, cut, heal)) in schedule.iter().enumerate() {
        q.isolate("east", *mode);
        tokio::time::sleep(*cut).await;
        q.isolate("east", ProxyMode::Pass);
        let b = flap_gap_bound(*mode, *cut);
        gap_bound += b;
        longest_bound = longest_bound.max(b);
        if i + 1 < schedule.len() {
            tokio::time::sleep(*heal).await;
        }
    }
    let settled = unix_now_ns();
    let flapped = started.elapsed();
    let events = q.events();
    let w = judge_window(
        &events,
        forge_sim::timeline::Window {
            from_unix_ns: Some(since),
            until_unix_ns: Some(settled),
        },
    )
    .expect("timeline");
    let gap_ms = (settled - since) as f64 / 1e6 - w.forging_ms.values().sum::<f64>();
    let takeovers = events
        .iter()
        .filter(|e| {
            e.event == forge_sim::timeline::EventKind::ForgingOn
                && !e.node.starts_with("east-")
                && (since..settled).contains(&e.t_unix_ns)
        })
        .count();
    eprintln!(
        "(q6) flapping: {} cuts over {flapped:.1?}: overlap {} ms, forging gap {gap_ms:.0} ms in total \
         (bound {:.0} ms), longest gap {:.0} ms (bound {:.0} ms), {takeovers} takeovers by west or north, \
         forgers {:?}",
        schedule.len(),
        w.overlap_ms,
        gap_bound.as_secs_f64() * 1e3,
        w.max_gap_ms,
        longest_bound.as_secs_f64() * 1e3,
        w.forgers
    );
    assert!(flapped >= Duration::from_secs(120), "{flapped:?}");
    q.assert_no_overlap("(q6)", since);
    let east = q
        .expect_forger_in("east", Duration::from_secs(30), "(q6) settled")
        .await;
    eprintln!("(q6) settled: {east} forges");
    let took = q.took_over_ms("east", settled).expect("forging_on in east");
    q.record("(q6) flapping settled: east forges", took, planned_bound());
    // Generous, like the figures below: a loaded 2-core machine.
    assert!(
        gap_ms <= gap_bound.as_secs_f64() * 1e3 + 10_000.0,
        "(q6) {gap_ms:.0} ms without a forger against a bound of {gap_bound:?}"
    );
    assert!(
        w.max_gap_ms <= longest_bound.as_secs_f64() * 2e3 + 5_000.0,
        "(q6) a gap of {:.0} ms against a bound of {longest_bound:?}",
        w.max_gap_ms
    );
}

/// (q7) East reaches nobody while the others still read it: east's own paths to every other
/// participant lose their requests (`blackhole up`), the others' paths to east pass. East
/// keeps only its own ticket and stops; once its reads of both peer regions have failed for
/// longer than a lease duration it stands aside (`majority_out_of_reach`, not contending) and
/// releases its ticket, so west, which reads that status, no longer yields to it: it takes
/// its own, north's and the witness's tickets once east's have aged out (and east's released
/// one), and forges. Healed, east contends again and takes back.
pub(crate) async fn reaching_nobody(q: &mut Quorum) -> String {
    let since = unix_now_ns();
    q.outbound("east", ProxyMode::BlackholeUp);
    let (west, took) = q
        .moved_to(
            "west",
            since,
            Duration::from_secs(40),
            "(q7) east reaches nobody",
            "(q7) east reaches nobody, the others still read it",
            out_of_reach_failover_bound(),
            "(q7)",
        )
        .await;
    assert_not_before_the_tickets(took, "(q7) west", "the fault");
    q.expect_tickets("east", "0/4", "(q7)").await;
    q.expect_tickets("west", "4/4", "(q7)").await;
    let since = unix_now_ns();
    q.outbound("east", ProxyMode::Pass);
    let (east, _) = q
        .moved_to(
            "east",
            since,
            Duration::from_secs(30),
            "(q7) healed",
            "(q7) healed: failback west->east",
            recovery_bound() + planned_bound(),
            "(q7b)",
        )
        .await;
    q.expect_tickets("east", "4/4", "(q7b)").await;
    drop(west);
    east
}
