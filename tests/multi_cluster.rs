//! Multi-region scenarios with real processes (issue 6): one real kube-apiserver per region,
//! two `forge-manager run` sidecars and node simulators per region, cluster management on,
//! `PEER_CLUSTERS` pointing at the other regions' API servers. The merged node timelines of
//! all regions are the judge: the overlap of forgers must be 0 ms, and the longest interval
//! without a forger within what a handover between regions may take (L1,
//! [`Regions::handover_bound`]).
//!
//! The scenarios run one at a time (each starts several API servers and many processes).

use std::{
    path::PathBuf,
    sync::LazyLock,
    time::{Duration, Instant},
};

use forge_sim::{
    timeline::{Window, judge, judge_window},
    world::WorldOptions,
};
use kube::api::{Patch, PatchParams};

static ONE_AT_A_TIME: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

const REPLICAS: usize = 2;

/// `STOP_GRACE`'s default: these worlds run no node guard, so a stop by SIGHUP counts as done
/// this long after the signal (earlier if the node process is gone).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Room for a loaded 2-core machine (process scheduling, API round trips), as in the chaos soak.
const ALLOWANCE: Duration = Duration::from_secs(4);

/// The longest interval without a forger (L1) a handover between regions, or inside one, may
/// leave, from the scenario worlds' timings (`o`). After the forger's node stops:
/// - its stop counts as done at most `STOP_GRACE` after the SIGHUP (then the claim is withdrawn
///   and the Lease released), and the other region reads that within a retry period; or, when
///   the forging region died without a word, its Lease was renewed at most a retry period
///   before, the other region sees it unrenewed for `LEASE_DURATION` after its next read (a
///   retry period) and reads the vacancy within one more: `LEASE + 2 x RETRY`, the longer route;
/// - the taking region writes its claim and reads every peer again (an API timeout at most);
/// - its node's slowest reload;
/// - the allowance.
fn handover_bound(o: &WorldOptions) -> Duration {
    let lease = Duration::from_secs(o.lease_duration_s);
    let noticed = (STOP_GRACE + o.retry_period).max(lease + 2 * o.retry_period);
    noticed + o.api_timeout + o.node.reload.max + ALLOWANCE
}

/// The longest interval without a forger after an operator's `Enabled` override on a region
/// whose peers have been unreachable for longer than their lease (they are skipped): the spec
/// change seen (a watch event; a retry period allowed), the claim written and the peers read
/// (an API timeout), the node's slowest reload, the allowance.
fn override_bound(o: &WorldOptions) -> Duration {
    o.retry_period + o.api_timeout + o.node.reload.max + ALLOWANCE
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// The regions of a test: `(region, priority)`; each region's CFC is `pool-{region}`.
struct Regions(forge_sim::regions::Regions);

impl std::ops::Deref for Regions {
    type Target = forge_sim::regions::Regions;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Regions {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Regions {
    /// Starts one API server per region, then every region's pods, each region's managers
    /// reading the others' CFCs and Leases through the others' admin kubeconfigs.
    async fn start(test: &str, regions: &[(&str, u16)]) -> Option<Regions> {
        Regions::start_with(test, regions, |_| Vec::new()).await
    }

    /// [`Regions::start`] with more environment per region.
    async fn start_with(
        test: &str,
        regions: &[(&str, u16)],
        extra: impl Fn(&str) -> Vec<(String, String)>,
    ) -> Option<Regions> {
        if forge_sim::apiserver::skipped(test) {
            return None;
        }
        forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
        let r =
            forge_sim::regions::Regions::start(regions, |_| WorldOptions::scenario(exe(), REPLICAS), extra)
                .await
                .unwrap_or_else(|e| panic!("{test}: {e}"));
        Some(Regions(r))
    }

    fn assert_no_overlap(&self, scenario: &str) {
        let v = self.verdict();
        eprintln!("{scenario}: merged verdict {v:?}");
        assert_eq!(v.overlap_ms, 0.0, "{scenario}: two nodes forged at once: {v:?}");
        assert!(
            v.max_forgers <= 1,
            "{scenario}: two forgers at one instant: {v:?}"
        );
        assert!(!v.forgers.is_empty(), "{scenario}: nobody forged: {v:?}");
    }

    /// The worlds' timings (every region is started with the same).
    fn options(&self) -> WorldOptions {
        WorldOptions::scenario(exe(), REPLICAS)
    }

    /// L1: the longest interval without a forger in the merged timelines, from the first
    /// `forging_on` (or from `since_ns`, when nobody may forge before it), is within `bound`.
    fn assert_gap_within(&self, scenario: &str, since_ns: Option<u64>, bound: Duration) {
        let window = Window {
            from_unix_ns: since_ns,
            until_unix_ns: Some(forge_sim::timeline::unix_now_ns()),
        };
        let v =
            judge_window(&self.events(), window).unwrap_or_else(|e| panic!("{scenario}: no verdict: {e}"));
        eprintln!(
            "{scenario}: longest gap {:.0} ms (bound {} ms)",
            v.max_gap_ms,
            bound.as_millis()
        );
        assert!(
            v.max_gap_ms <= bound.as_secs_f64() * 1e3,
            "{scenario}: {:.0} ms without a forger, bound {} ms: {v:?}\n{}",
            v.max_gap_ms,
            bound.as_millis(),
            self.logs()
        );
    }

    /// [`Regions::assert_no_overlap`] and L1 with [`handover_bound`] over the whole run so far.
    fn assert_handovers(&self, scenario: &str) {
        self.assert_no_overlap(scenario);
        self.assert_gap_within(scenario, None, handover_bound(&self.options()));
    }

    /// A metric line of every pod of `region` that starts with `prefix`.
    async fn metric_lines(&self, region: &str, prefix: &str) -> Vec<String> {
        let w = &self.worlds[self.index(region)];
        let mut out = Vec::new();
        for p in 0..w.pods.len() {
            let text = w.metrics(p).await.unwrap_or_default();
            out.extend(text.lines().filter(|l| l.starts_with(prefix)).map(str::to_string));
        }
        out
    }

    /// `apiserver_request_total` summed over every region's API server.
    async fn api_requests(&self) -> f64 {
        let mut total = 0.0;
        for w in &self.worlds {
            let text = w.apiserver_metrics().await.unwrap_or_default();
            total += text
                .lines()
                .filter(|l| l.starts_with("apiserver_request_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        total
    }

    /// Stops every region as Kubernetes deletes pods (each sidecar in turn hands over, across
    /// regions too) and judges the merged timelines, the shutdown included.
    fn stop(&mut self) {
        for w in &mut self.worlds {
            w.stop_processes();
        }
        let v = judge(&self.events());
        for w in &mut self.worlds {
            w.stop();
        }
        eprintln!("shutdown: merged verdict {v:?}");
        v.assert_clean_shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_priority_one_region_forges_and_planned_maintenance_hands_over_and_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "only_the_priority_one_region_forges_and_planned_maintenance_hands_over_and_back";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };

    // Normal operation: only the priority-1 region forges.
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(1) {forger} forges after {took:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.forging_now(), vec![forger.clone()], "{}", r.logs());
    let status = r
        .cfcs("east")
        .await
        .get("pool-east")
        .await
        .expect("east CFC")
        .status
        .expect("east status");
    assert_eq!(status.forging_enabled, Some(true), "{status:?}");
    assert_eq!(status.active_leader.as_deref(), Some(forger.as_str()));
    // The cluster gauges come from each region's lease holder only: one exporter per region,
    // and only east's says forging; every pod sees its peer.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut exporters = Vec::new();
    for w in &r.worlds {
        for (i, p) in w.pods.iter().enumerate() {
            let text = w.metrics(i).await.unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.starts_with("cardano_cluster_forge_enabled{"))
            {
                exporters.push((p.name.clone(), line.to_string()));
            }
            assert!(
                text.lines()
                    .any(|l| l.starts_with("cardano_cluster_peer_reachable{") && l.ends_with(" 1")),
                "{}: no reachable peer in\n{text}",
                p.name
            );
        }
    }
    eprintln!("(1) cluster gauge exporters: {exporters:?}");
    assert_eq!(exporters.len(), 2, "one exporter per region: {exporters:?}");
    let on: Vec<_> = exporters.iter().filter(|(_, l)| l.ends_with(" 1")).collect();
    assert_eq!(on.len(), 1, "{exporters:?}");
    assert_eq!(on[0].0, forger);
    r.assert_handovers("(1)");

    // Steady state: API requests per pod and minute (all API servers, with the test's fast
    // timings: retry period 0.5 s, so about 4x the default 2 s).
    let (before, t0) = (r.api_requests().await, Instant::now());
    tokio::time::sleep(Duration::from_secs(15)).await;
    let per_pod_minute =
        (r.api_requests().await - before) / (2.0 * REPLICAS as f64) * 60.0 / t0.elapsed().as_secs_f64();
    eprintln!("(1) steady state: {per_pod_minute:.0} API requests per pod per minute (retry period 0.5 s)");

    // Planned maintenance: east Disabled -> west takes over.
    let since = forge_sim::timeline::unix_now_ns();
    r.patch_spec("east", serde_json::json!({"forgeState": "Disabled"}))
        .await;
    let (west, _) = r
        .wait_for_forger_in("west", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("west did not take over: {:?}\n{}", r.forging_now(), r.logs()));
    let over = r.took_over_ms("west", since).expect("a forging_on in west");
    eprintln!("(2) east Disabled: {west} forges after {over:.0} ms");
    r.assert_handovers("(2)");

    // Back to Priority-based: failback to east.
    let since = forge_sim::timeline::unix_now_ns();
    r.patch_spec("east", serde_json::json!({"forgeState": "Priority-based"}))
        .await;
    let (east, _) = r
        .wait_for_forger_in("east", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no failback to east: {:?}\n{}", r.forging_now(), r.logs()));
    let back = r.took_over_ms("east", since).expect("a forging_on in east");
    eprintln!("(3) east Priority-based: {east} forges after {back:.0} ms");
    r.assert_handovers("(3)");
    r.stop();
}

/// A health endpoint the test controls: answers 200 while `healthy`, else 503.
struct HealthEndpoint {
    url: String,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HealthEndpoint {
    async fn start() -> HealthEndpoint {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/health", listener.local_addr().expect("addr"));
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let h = healthy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let ok = h.load(std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let line = if ok { "200 OK" } else { "503 Service Unavailable" };
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        HealthEndpoint { url, healthy }
    }

    fn set(&self, healthy: bool) {
        self.healthy.store(healthy, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_endpoint_demotes_the_primary_and_recovery_fails_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_failing_health_endpoint_demotes_the_primary_and_recovery_fails_back";
    let endpoint = HealthEndpoint::start().await;
    let url = endpoint.url.clone();
    let Some(mut r) = Regions::start_with(test, &[("east", 1), ("west", 2)], |region| {
        if region == "east" {
            vec![
                ("HEALTH_CHECK_ENDPOINT".into(), url.clone()),
                ("HEALTH_CHECK_INTERVAL".into(), "1".into()),
                ("HEALTH_CHECK_TIMEOUT".into(), "1".into()),
                ("HEALTH_CHECK_FAILURE_THRESHOLD".into(), "2".into()),
            ]
        } else {
            Vec::new()
        }
    })
    .await
    else {
        return;
    };
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(h1) {forger} forges after {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.forging_now(), vec![forger.clone()], "{}", r.logs());

    // 503: after the threshold (2 failures, 1 s apart) east is demoted (+100) and west forges.
    let since = forge_sim::timeline::unix_now_ns();
    endpoint.set(false);
    let (west, _) = r
        .wait_for_forger_in("west", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("west did not take over: {:?}\n{}", r.forging_now(), r.logs()));
    let over = r.took_over_ms("west", since).expect("a forging_on in west");
    eprintln!("(h2) east unhealthy: {west} forges after {over:.0} ms");
    // One failure already costs +10 (1 + 10 > 2); the threshold brings the full +100, and
    // the leader's status shows it.
    let cfcs = r.cfcs("east").await;
    let mut status = None;
    for _ in 0..100 {
        let s = cfcs.get("pool-east").await.expect("east CFC").status;
        if s.as_ref().and_then(|s| s.effective_priority) == Some(101) {
            status = s;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.unwrap_or_else(|| panic!("east not demoted to 101 within 10 s\n{}", r.logs()));
    let health = status.health_status.clone().expect("healthStatus");
    assert_eq!(health.healthy, Some(false), "{status:?}");
    assert_eq!(status.forging_enabled, Some(false), "{status:?}");
    r.assert_handovers("(h2)");

    // Recovery: failback to east.
    let since = forge_sim::timeline::unix_now_ns();
    endpoint.set(true);
    let (east, _) = r
        .wait_for_forger_in("east", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no failback to east: {:?}\n{}", r.forging_now(), r.logs()));
    let back = r.took_over_ms("east", since).expect("a forging_on in east");
    eprintln!("(h3) east healthy again: {east} forges after {back:.0} ms");
    r.assert_handovers("(h3)");
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_of_a_peer_is_no_evidence_but_its_expired_lease_is() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "silence_of_a_peer_is_no_evidence_but_its_expired_lease_is";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(u1) {forger} forges after {took:?}");

    // West cannot reach east's API server while east is alive and forging: west must not take
    // over (that would be two forgers), and it says so in its metrics.
    r.links[&("west".to_string(), "east".to_string())]
        .handle()
        .blackhole();
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert_eq!(
            r.forging_now(),
            vec![forger.clone()],
            "west took over on silence\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reach = r.metric_lines("west", "cardano_cluster_peer_reachable{").await;
    eprintln!("(u2) west's view of east while blackholed: {reach:?}");
    assert!(
        !reach.is_empty() && reach.iter().all(|l| l.ends_with(" 0")),
        "{reach:?}"
    );
    let west_status = r.world("west").status(0).await;
    eprintln!("(u2) west-0 /status: {west_status:?}");
    r.assert_handovers("(u2)");

    // Reachable again; then every east pod dies while east's API server stays up: west takes
    // over once east's Lease has gone unrenewed for its duration.
    r.links[&("west".to_string(), "east".to_string())].handle().pass();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = forge_sim::timeline::unix_now_ns();
    {
        let east = r.world("east");
        for i in 0..east.pods.len() {
            east.kill_node(i);
            east.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let (west, _) = r
        .wait_for_forger_in("west", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "west did not take over from a dead east: {:?}\n{}",
                r.forging_now(),
                r.logs()
            )
        });
    let over = r.took_over_ms("west", since).expect("a forging_on in west");
    eprintln!("(u3) east's pods all killed: {west} forges after {over:.0} ms (lease 3 s)");
    r.assert_handovers("(u3)");
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_bad_input_and_an_expiring_override() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "three_regions_bad_input_and_an_expiring_override";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2), ("north", 3)]).await else {
        return;
    };
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(40))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(o1) priorities 1/2/3: {forger} forges after {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.forging_now(), vec![forger.clone()], "{}", r.logs());

    // Bad input: what the schema forbids is rejected by the API server.
    let cfcs = r.cfcs("east").await;
    for bad in [
        serde_json::json!({"forgeState": "Bogus"}),
        serde_json::json!({"priority": 0}),
        serde_json::json!({"priority": "x"}),
        serde_json::json!({"override": {"enabled": true, "expiresAt": "yesterday"}}),
    ] {
        let result = cfcs
            .patch(
                "pool-east",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": bad })),
            )
            .await;
        eprintln!(
            "(o2) patch {bad}: {}",
            match &result {
                Ok(_) => "accepted".to_string(),
                Err(e) => format!(
                    "rejected: {}",
                    e.to_string().chars().take(160).collect::<String>()
                ),
            }
        );
        assert!(result.is_err(), "the API server accepted {bad}");
    }
    assert_eq!(r.forging_now(), vec![forger.clone()], "{}", r.logs());

    // An override on east (Disabled until a few seconds from now): the next best region, west,
    // takes over; at expiry east fails back by itself.
    let expires = forge_core::decision::WallTime::now()
        .checked_add(Duration::from_secs(8))
        .expect("time");
    let since = forge_sim::timeline::unix_now_ns();
    r.patch_spec(
        "east",
        serde_json::json!({"override": {
            "enabled": true, "forceState": "Disabled", "reason": "planned maintenance",
            "expiresAt": expires.to_string(),
        }}),
    )
    .await;
    let (west, _) = r
        .wait_for_forger_in("west", Duration::from_secs(8))
        .await
        .unwrap_or_else(|| panic!("west did not take over: {:?}\n{}", r.forging_now(), r.logs()));
    let over = r.took_over_ms("west", since).expect("a forging_on in west");
    eprintln!("(o3) east overridden Disabled: {west} forges after {over:.0} ms");
    let status = cfcs.get("pool-east").await.expect("east").status.expect("status");
    eprintln!(
        "(o3) east status: reason {:?}, message {:?}",
        status.reason, status.message
    );
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("planned maintenance")),
        "the override's reason is shown: {status:?}"
    );
    let expires_ns = u64::try_from(expires.as_nanosecond()).expect("positive");
    let (east, _) = r
        .wait_for_forger_in("east", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no failback at expiry: {:?}\n{}", r.forging_now(), r.logs()));
    let back = r
        .took_over_ms("east", expires_ns)
        .expect("a forging_on in east after expiry");
    eprintln!("(o4) override expired: {east} forges {back:.0} ms after expiresAt");
    assert!(back < 10_000.0, "the expiry took effect late: {back} ms");
    r.assert_handovers("(o4)");
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_region_outage_needs_the_operators_override() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_whole_region_outage_needs_the_operators_override";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(r1) {forger} forges after {took:?}");

    // The whole east region goes: its nodes, its managers and its API server.
    {
        let east = r.world("east");
        for i in 0..east.pods.len() {
            east.kill_node(i);
            east.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
        east.apiserver.stop();
    }
    // West cannot tell an outage from a partition: it does not take over on silence.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert!(
            r.forging_now().is_empty(),
            "west took over on silence\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let west_status = r.world("west").status(0).await.unwrap_or_default();
    eprintln!("(r2) west-0 during the outage: {}", west_status.message);

    // The documented override: force west Enabled (the operator vouches that east is down).
    let t0 = Instant::now();
    let patched = forge_sim::timeline::unix_now_ns();
    r.patch_spec(
        "west",
        serde_json::json!({"override": {
            "enabled": true, "forceState": "Enabled", "reason": "east region down",
        }}),
    )
    .await;
    let (west, _) = r
        .wait_for_forger_in("west", Duration::from_secs(10))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the override did not make west forge: {:?}\n{}",
                r.forging_now(),
                r.logs()
            )
        });
    eprintln!(
        "(r3) override Enabled on west: {west} forges after {:?}",
        t0.elapsed()
    );
    r.assert_no_overlap("(r3)");
    // Nobody forges from the outage until the override (that is the point); from the patch on,
    // L1 applies.
    r.assert_gap_within("(r3)", Some(patched), override_bound(&r.options()));
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_inside_the_primary_region_stays_there() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_handover_inside_the_primary_region_stays_there";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };
    let (forger, took) = r
        .wait_for_forger_in("east", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("east does not forge alone: {:?}\n{}", r.forging_now(), r.logs()));
    eprintln!("(i1) {forger} forges after {took:?}");
    let i = r.world("east").index_of(&forger).expect("pod");
    let since = forge_sim::timeline::unix_now_ns();
    // SIGTERM: the leader stops, withdraws east's claim, releases the lease; its replica takes
    // the lease, claims again and forges. West never starts.
    r.world("east")
        .signal_manager(i, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    let next = loop {
        let now = r.forging_now();
        assert!(
            now.iter().all(|n| n.starts_with("east-")),
            "west forged during east's internal handover: {now:?}\n{}",
            r.logs()
        );
        if now.len() == 1 && now[0] != forger {
            break now[0].clone();
        }
        assert!(Instant::now() < deadline, "no handover inside east\n{}", r.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = r.took_over_ms("east", since).expect("a forging_on in east");
    eprintln!("(i2) SIGTERM {forger} -> {next} forges after {took:.0} ms");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.forging_now(), vec![next], "{}", r.logs());
    r.assert_handovers("(i2)");
    r.stop();
}
