//! Quorum mode with real processes (issue 14, docs/quorum.md): one real kube-apiserver per
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

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use forge_sim::{
    apiserver::{ApiServer, ApiServerOptions},
    proxy::{FaultProxy, ProxyMode},
    timeline::{judge, judge_window, unix_now_ns},
    world::{World, WorldOptions},
};

/// The scenarios run one at a time (each starts several API servers and many processes).
static ONE_AT_A_TIME: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

const REPLICAS: usize = 2;
const TICKET_DURATION: Duration = Duration::from_secs(6);
const TICKET_RENEW_DEADLINE: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(500);
const SLOWEST_RELOAD: Duration = Duration::from_millis(1500);
const WITNESS: &str = "witness";
/// The scenario world's `RENEW_DEADLINE` (the local lease).
const LOCAL_RENEW_DEADLINE: Duration = Duration::from_secs(2);
/// The scenario world's `API_TIMEOUT` (below a quarter of the ticket renew deadline, so the
/// ticket calls' own timeout).
const API_TIMEOUT: Duration = Duration::from_millis(500);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// The argument's bound on a lost primary's failover (module docs).
fn failover_bound() -> Duration {
    TICKET_DURATION + RETRY_PERIOD * 2 + SLOWEST_RELOAD
}

/// When only the answers of east's links are lost, one renewal per ticket may still land (its
/// answer lost, east does not count it; its next write, read first, never goes out): the
/// tickets age out from up to a retry period after the fault.
fn one_way_failover_bound() -> Duration {
    failover_bound() + RETRY_PERIOD
}

/// The scenario world's `LEASE_DURATION` (the local lease).
const LOCAL_LEASE_DURATION: Duration = Duration::from_secs(4);

/// When east reaches nobody but the others still read it (q7): its leader reads each peer once
/// per lease duration and a read fails after the API timeout; east stands aside once both have
/// been unreachable for a lease duration, and west reads that status within about a retry
/// period; then the failover's own bound (west may first see east's last renewals only then).
fn out_of_reach_failover_bound() -> Duration {
    LOCAL_LEASE_DURATION * 2 + API_TIMEOUT + RETRY_PERIOD + failover_bound()
}

/// After a cut heals: the call in flight times out, a retry period's wait, a read and a
/// write, the node's reload.
fn recovery_bound() -> Duration {
    API_TIMEOUT + RETRY_PERIOD * 2 + SLOWEST_RELOAD
}

/// The flapping link's schedule (module docs): rounds of three quick cuts of 1 s (below the
/// ticket renew deadline less a retry period: east keeps its majority), one of 4 s (past the
/// renew deadline, before the ticket duration: east stops, nobody may take its tickets), one of
/// 8 s (past the ticket duration: west takes over, and fails back at the heal); the first and
/// third rounds cut both ways, the second and fourth lose only the answers. `(mode, cut,
/// heal)`: 2 minutes from the first cut to the last heal.
fn flap_schedule() -> Vec<(ProxyMode, Duration, Duration)> {
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
fn flap_gap_bound(mode: ProxyMode, cut: Duration) -> Duration {
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
fn planned_bound() -> Duration {
    SLOWEST_RELOAD * 2 + RETRY_PERIOD * 6
}

/// The regions (their `links` also hold each region's proxy to the witness), the witness and
/// the figures of the scenarios.
struct Quorum {
    regions: forge_sim::regions::Regions,
    witness: ApiServer,
    /// Per scenario: (name, fault -> new forger in ms, bound in ms).
    figures: Vec<(String, f64, f64)>,
}

impl std::ops::Deref for Quorum {
    type Target = forge_sim::regions::Regions;
    fn deref(&self) -> &Self::Target {
        &self.regions
    }
}

impl std::ops::DerefMut for Quorum {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.regions
    }
}

impl Quorum {
    async fn start(test: &str, regions: &[(&str, u16)]) -> Option<Quorum> {
        if forge_sim::apiserver::skipped(test) {
            return None;
        }
        forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
        let mut worlds = Vec::new();
        for (region, _) in regions {
            let mut o = WorldOptions::scenario(exe(), REPLICAS);
            o.pod_prefix = (*region).to_string();
            worlds.push(World::prepare(o).await.unwrap_or_else(|e| panic!("{test}: {e}")));
        }
        let identities: Vec<String> = regions
            .iter()
            .flat_map(|(r, _)| (0..REPLICAS).map(move |i| format!("{r}-{i}")))
            .collect();
        let witness = ApiServer::start(ApiServerOptions::with_identities(identities))
            .await
            .unwrap_or_else(|e| panic!("{test}: witness API server: {e}"));
        let mut links = BTreeMap::new();
        for (i, (region, priority)) in regions.iter().enumerate() {
            let (mut peers, mut participants) = (Vec::new(), Vec::new());
            for (j, (peer, _)) in regions.iter().enumerate().filter(|(j, _)| *j != i) {
                let proxy = FaultProxy::start_local(worlds[j].apiserver.addr())
                    .await
                    .expect("proxy");
                let kubeconfig = worlds[j]
                    .apiserver
                    .kubeconfig_via(&format!("{peer}-0"), proxy.local_addr())
                    .expect("kubeconfig");
                peers.push(format!("pool-{peer}={}", kubeconfig.display()));
                participants.push(format!("pool-{peer}={}", kubeconfig.display()));
                links.insert(((*region).to_string(), (*peer).to_string()), proxy);
            }
            let proxy = FaultProxy::start_local(witness.addr()).await.expect("proxy");
            let kubeconfig = witness
                .kubeconfig_via(&format!("{region}-0"), proxy.local_addr())
                .expect("kubeconfig");
            participants.push(format!("witness:{WITNESS}={}", kubeconfig.display()));
            links.insert(((*region).to_string(), WITNESS.to_string()), proxy);
            let env = &mut worlds[i].options_mut().extra_env;
            *env = vec![
                ("ENABLE_CLUSTER_MANAGEMENT".into(), "true".into()),
                ("CLUSTER_IDENTIFIER".into(), format!("pool-{region}")),
                ("CLUSTER_REGION".into(), (*region).to_string()),
                ("CLUSTER_PRIORITY".into(), priority.to_string()),
                ("PEER_CLUSTERS".into(), peers.join(",")),
                ("QUORUM_PARTICIPANTS".into(), participants.join(",")),
                ("TICKET_DURATION".into(), TICKET_DURATION.as_secs().to_string()),
                (
                    "TICKET_RENEW_DEADLINE".into(),
                    TICKET_RENEW_DEADLINE.as_secs().to_string(),
                ),
            ];
        }
        for w in &mut worlds {
            w.populate().await.unwrap_or_else(|e| panic!("{test}: {e}"));
        }
        Some(Quorum {
            regions: forge_sim::regions::Regions {
                names: regions.iter().map(|(r, _)| (*r).to_string()).collect(),
                worlds,
                links,
            },
            witness,
            figures: Vec::new(),
        })
    }

    fn link(&self, observer: &str, participant: &str) -> &FaultProxy {
        &self.links[&(observer.to_string(), participant.to_string())]
    }

    /// Cuts (or heals) every path between `region` and every other participant, both ways.
    fn partition(&self, region: &str, cut: bool) {
        self.isolate(
            region,
            if cut {
                ProxyMode::Blackhole
            } else {
                ProxyMode::Pass
            },
        );
    }

    /// Puts every path between `region` and every other participant (both ends' proxies) in
    /// `mode`.
    fn isolate(&self, region: &str, mode: ProxyMode) {
        for ((a, b), proxy) in &self.links {
            if a == region || b == region {
                proxy.handle().set_mode(mode);
            }
        }
    }

    /// Puts only `region`'s own paths to every other participant (those it reads and writes
    /// through) in `mode`; the others' paths to `region` stay as they are.
    fn outbound(&self, region: &str, mode: ProxyMode) {
        for ((a, _), proxy) in &self.links {
            if a == region {
                proxy.handle().set_mode(mode);
            }
        }
    }

    /// The `Tickets` cell of `pool-{region}` in the table `kubectl get cfc` prints: its API
    /// server renders the CRD's printer columns (`Accept: ...;as=Table`), as for kubectl.
    async fn tickets_column(&self, region: &str) -> Option<String> {
        let w = &self.worlds[self.index(region)];
        let c = w.apiserver.client("admin").await.ok()?;
        let request = http::Request::get(format!(
            "/apis/cardano.io/v1/namespaces/default/cardanoforgeclusters/pool-{region}"
        ))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .ok()?;
        let table: serde_json::Value = serde_json::from_str(&c.request_text(request).await.ok()?).ok()?;
        let column = table["columnDefinitions"]
            .as_array()?
            .iter()
            .position(|c| c["name"] == "Tickets")?;
        table["rows"][0]["cells"][column].as_str().map(str::to_string)
    }

    /// Waits until `kubectl get cfc` shows `want` tickets for `region` (its status is written
    /// when the count changes).
    async fn expect_tickets(&self, region: &str, want: &str, what: &str) {
        let started = Instant::now();
        let mut seen = None;
        while started.elapsed() < Duration::from_secs(10) {
            seen = self.tickets_column(region).await;
            if seen.as_deref() == Some(want) {
                eprintln!("{what}: kubectl get cfc pool-{region}: Tickets {want}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: pool-{region} shows tickets {seen:?}, not {want:?}");
    }

    async fn expect_forger_in(&self, region: &str, within: Duration, what: &str) -> String {
        match self.wait_for_forger_in(region, within).await {
            Some((node, _)) => node,
            None => panic!(
                "{what}: no single forger in {region} within {within:?}: {:?}\n{}",
                self.forging_now(),
                self.logs()
            ),
        }
    }

    /// 0 ms of overlap overall; prints the verdict of the scenario's window (who forged, the
    /// longest gap).
    fn assert_no_overlap(&self, scenario: &str, since_ns: u64) {
        let v = self.verdict();
        assert_eq!(v.overlap_ms, 0.0, "{scenario}: two nodes forged at once: {v:?}");
        assert!(
            v.max_forgers <= 1,
            "{scenario}: two forgers at one instant: {v:?}"
        );
        let events = self.events();
        if let Ok(w) = judge_window(&events, forge_sim::timeline::Window::since(since_ns)) {
            eprintln!(
                "{scenario}: overlap {} ms, forgers {:?}, longest gap {:.0} ms",
                w.overlap_ms, w.forgers, w.max_gap_ms
            );
        }
    }

    fn record(&mut self, scenario: &str, took_ms: f64, bound: Duration) {
        let bound_ms = bound.as_secs_f64() * 1e3;
        eprintln!("{scenario}: fault -> new forger {took_ms:.0} ms (argument's bound {bound_ms:.0} ms)");
        self.figures.push((scenario.to_string(), took_ms, bound_ms));
    }

    /// Nobody but `forger` forges for `d` (checked every 100 ms).
    async fn only(&self, forger: &str, d: Duration, what: &str) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            let now = self.forging_now();
            assert!(
                now.iter().all(|n| n == forger),
                "{what}: {now:?} forge besides {forger}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        for w in &mut self.worlds {
            w.stop_processes();
        }
        let v = judge(&self.events());
        for w in &mut self.worlds {
            w.stop();
        }
        self.witness.stop();
        eprintln!("shutdown: merged verdict {v:?}");
        assert_eq!(
            v.overlap_ms, 0.0,
            "two nodes forged at once (shutdown included): {v:?}"
        );
        assert!(v.max_forgers <= 1, "two forgers at one instant: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_and_a_witness_fail_over_by_the_tickets_without_overlap() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "three_regions_and_a_witness_fail_over_by_the_tickets_without_overlap";
    let Some(mut q) = Quorum::start(test, &[("east", 1), ("west", 2), ("north", 3)]).await else {
        return;
    };
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

    // (q2) The witness down: east keeps forging on 3 of 4; a planned failover (east Disabled)
    // and a planned failback still work.
    for r in ["east", "west", "north"] {
        q.link(r, WITNESS).handle().blackhole();
    }
    q.only(
        &east,
        TICKET_DURATION + Duration::from_secs(2),
        "(q2) witness down",
    )
    .await;
    let since = unix_now_ns();
    q.patch_spec("east", serde_json::json!({"forgeState": "Disabled"}))
        .await;
    let west = q
        .expect_forger_in("west", Duration::from_secs(20), "(q2) planned failover")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record(
        "(q2) witness down, planned failover east->west",
        took,
        planned_bound(),
    );
    q.assert_no_overlap("(q2)", since);
    let since = unix_now_ns();
    q.patch_spec("east", serde_json::json!({"forgeState": "Priority-based"}))
        .await;
    let east = q
        .expect_forger_in("east", Duration::from_secs(20), "(q2) planned failback")
        .await;
    eprintln!("(q2) failback: {east} forges");
    let took = q.took_over_ms("east", since).expect("forging_on in east");
    q.record(
        "(q2) witness down, planned failback west->east",
        took,
        planned_bound(),
    );
    q.assert_no_overlap("(q2b)", since);
    drop(west);
    for r in ["east", "west", "north"] {
        q.link(r, WITNESS).handle().pass();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (q3) East partitioned from every other participant (its own API server still answers):
    // it stops before its tickets expire; west forges after the ticket timing, not before.
    let since = unix_now_ns();
    q.partition("east", true);
    let west = q
        .expect_forger_in("west", Duration::from_secs(30), "(q3) partition")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record("(q3) east partitioned from all others", took, failover_bound());
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "(q3) west forged {took:.0} ms after the partition: before the ticket timing allows"
    );
    q.assert_no_overlap("(q3)", since);
    q.only(&west, Duration::from_secs(3), "(q3) partitioned").await;
    // Healed: east is the better region again and reachable: west stops, releases, east forges.
    let since = unix_now_ns();
    q.partition("east", false);
    let east = q
        .expect_forger_in("east", Duration::from_secs(30), "(q3) healed")
        .await;
    eprintln!("(q3) healed: {east} forges");
    let took = q.took_over_ms("east", since).expect("forging_on in east");
    q.record("(q3) healed: failback west->east", took, planned_bound());
    q.assert_no_overlap("(q3b)", since);

    // (q4) East's API server frozen (SIGSTOP): east loses its local lease and stops; west takes
    // over once east's tickets have gone unrenewed.
    let (_, apiserver_pid) = q.world("east").apiserver.pids();
    let pid = nix::unistd::Pid::from_raw(apiserver_pid.expect("east apiserver pid") as i32);
    let since = unix_now_ns();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    let west = q
        .expect_forger_in("west", Duration::from_secs(30), "(q4) frozen")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    // East's keeper reaches the other participants' API servers: it renews their tickets until
    // its local lease's renew deadline (2 s) passes; only then do they start to age out.
    q.record(
        "(q4) east's API server frozen",
        took,
        failover_bound() + LOCAL_RENEW_DEADLINE,
    );
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "(q4) west forged {took:.0} ms after the freeze: before the ticket timing allows"
    );
    q.assert_no_overlap("(q4)", since);
    let since = unix_now_ns();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let east = q
        .expect_forger_in("east", Duration::from_secs(40), "(q4) thawed")
        .await;
    let took = q.took_over_ms("east", since).expect("forging_on in east");
    q.record("(q4) thawed: failback west->east", took, planned_bound());
    q.assert_no_overlap("(q4b)", since);
    drop((west, east));

    // (q5) An asymmetric partition: every path between east and the other participants loses
    // its answers but not its requests (one direction of each link fails, as on an established
    // TCP connection whose return path breaks). East's requests still land: at most one renewal
    // per ticket lands blind (its answer lost, east does not count it, and its next write, read
    // first, never goes out). East keeps only its own ticket and stops; west, seeing east
    // silent, takes the other three once they have aged out.
    let since = unix_now_ns();
    q.isolate("east", ProxyMode::BlackholeDown);
    let west = q
        .expect_forger_in("west", Duration::from_secs(30), "(q5) answers lost")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record(
        "(q5) asymmetric: east's links lose their answers",
        took,
        one_way_failover_bound(),
    );
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "(q5) west forged {took:.0} ms after the fault: before the ticket timing allows"
    );
    q.assert_no_overlap("(q5)", since);
    q.expect_tickets("west", "3/4", "(q5)").await;
    // East, reaching no majority (its reads of the peers fail for longer than a lease
    // duration), stands aside and lets its own ticket go; west cannot take it (its answers are
    // lost too).
    q.expect_tickets("east", "0/4", "(q5)").await;
    q.only(&west, Duration::from_secs(2), "(q5) answers lost").await;
    let since = unix_now_ns();
    q.isolate("east", ProxyMode::Pass);
    let east = q
        .expect_forger_in("east", Duration::from_secs(30), "(q5) healed")
        .await;
    eprintln!("(q5) healed: {east} forges");
    let took = q.took_over_ms("east", since).expect("forging_on in east");
    q.record("(q5) healed: failback west->east", took, planned_bound());
    q.assert_no_overlap("(q5b)", since);
    q.expect_tickets("east", "4/4", "(q5b)").await;
    drop(west);

    // (q6) A flapping link: every path between east and the others cut and restored again and
    // again for 2 minutes, around the ticket timings (flap_schedule). Never two forgers; the
    // forging gap stays within what each cut may cost; east forges once the link settles.
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

    // (q7) East reaches nobody while the others still read it: east's own paths to every other
    // participant lose their requests (`blackhole up`), the others' paths to east pass. East
    // keeps only its own ticket and stops; once its reads of both peer regions have failed for
    // longer than a lease duration it stands aside (`majority_out_of_reach`, not contending) and
    // releases its ticket, so west, which reads that status, no longer yields to it: it takes
    // its own, north's and the witness's tickets once east's have aged out (and east's released
    // one), and forges. Healed, east contends again and takes back.
    let since = unix_now_ns();
    q.outbound("east", ProxyMode::BlackholeUp);
    let west = q
        .expect_forger_in("west", Duration::from_secs(40), "(q7) east reaches nobody")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record(
        "(q7) east reaches nobody, the others still read it",
        took,
        out_of_reach_failover_bound(),
    );
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "(q7) west forged {took:.0} ms after the fault: before the ticket timing allows"
    );
    q.assert_no_overlap("(q7)", since);
    q.expect_tickets("east", "0/4", "(q7)").await;
    q.expect_tickets("west", "4/4", "(q7)").await;
    let since = unix_now_ns();
    q.outbound("east", ProxyMode::Pass);
    let east = q
        .expect_forger_in("east", Duration::from_secs(30), "(q7) healed")
        .await;
    let took = q.took_over_ms("east", since).expect("forging_on in east");
    q.record(
        "(q7) healed: failback west->east",
        took,
        recovery_bound() + planned_bound(),
    );
    q.assert_no_overlap("(q7b)", since);
    q.expect_tickets("east", "4/4", "(q7b)").await;
    drop(west);

    // (q8) The whole east region dead: nodes, managers and API server.
    let since = unix_now_ns();
    {
        let w = q.world("east");
        for i in 0..w.pods.len() {
            w.kill_node(i);
            w.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
        w.apiserver.stop();
    }
    let west = q
        .expect_forger_in("west", Duration::from_secs(30), "(q8) east dead")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record("(q8) whole east region dead", took, failover_bound());
    q.assert_no_overlap("(q8)", since);
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
    {
        let w = q.world("east");
        for i in 0..w.pods.len() {
            w.kill_node(i);
            w.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
        w.apiserver.stop();
    }
    let west = q
        .expect_forger_in("west", Duration::from_secs(30), "(w3) east dead")
        .await;
    let took = q.took_over_ms("west", since).expect("forging_on in west");
    q.record(
        "(w3) two regions + witness: whole east region dead",
        took,
        failover_bound(),
    );
    assert!(
        took >= (TICKET_DURATION - RETRY_PERIOD).as_secs_f64() * 1e3,
        "(w3) west forged {took:.0} ms after east died: before the ticket timing allows"
    );
    assert!(
        took <= failover_bound().as_secs_f64() * 2e3 + 5_000.0,
        "(w3) {took:.0} ms"
    );
    q.assert_no_overlap("(w3)", since);
    q.only(&west, Duration::from_secs(3), "(w3)").await;
    q.stop();
}
