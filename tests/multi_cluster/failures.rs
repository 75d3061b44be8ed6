//! Failures: a failing health endpoint demotes the primary and recovery fails back, the silence
//! of a peer is no evidence but its expired lease is (phases of the east-west test in
//! `main.rs`), and a whole region's outage needs the operator's override.

use std::time::{Duration, Instant};

use crate::{Regions, override_bound};

/// A health endpoint the test controls: answers 200 while `healthy`, else 503.
pub(crate) struct HealthEndpoint {
    pub(crate) url: String,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HealthEndpoint {
    pub(crate) async fn start() -> HealthEndpoint {
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

/// East's health check against `url`: every second, unhealthy after two failures.
pub(crate) fn health_env(region: &str, url: &str) -> Vec<(String, String)> {
    if region == "east" {
        vec![
            ("HEALTH_CHECK_ENDPOINT".into(), url.to_owned()),
            ("HEALTH_CHECK_INTERVAL".into(), "1".into()),
            ("HEALTH_CHECK_TIMEOUT".into(), "1".into()),
            ("HEALTH_CHECK_FAILURE_THRESHOLD".into(), "2".into()),
        ]
    } else {
        Vec::new()
    }
}

/// A failing health endpoint (east's, [`health_env`]) demotes the primary and west forges;
/// recovery fails back. Begins and ends with east forging.
pub(crate) async fn ill_health(r: &mut Regions, endpoint: &HealthEndpoint) {
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(30), "east does not forge alone")
        .await;
    eprintln!("(h1) {forger} forges after {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.forging_now(), vec![forger.clone()], "{}", r.logs());

    // 503: after the threshold (2 failures, 1 s apart) east is demoted (+100) and west forges.
    let since = forge_sim::timeline::unix_now_ns();
    endpoint.set(false);
    let (west, over) = r
        .handed_to("west", since, Duration::from_secs(20), "west did not take over")
        .await;
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
    let (east, back) = r
        .handed_to("east", since, Duration::from_secs(20), "no failback to east")
        .await;
    eprintln!("(h3) east healthy again: {east} forges after {back:.0} ms");
    r.assert_handovers("(h3)");
}

/// The silence of a peer is no evidence: west, cut off from east's API server while east
/// forges, does not take over, and says east is unreachable. Begins and ends with east forging,
/// west reaching east again.
pub(crate) async fn silence(r: &mut Regions) {
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(30), "east does not forge alone")
        .await;
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
    // Reachable again.
    r.links[&("west".to_string(), "east".to_string())].handle().pass();
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// A peer's expired Lease is evidence: every east pod dies while east's API server stays up,
/// and west takes over once east's Lease has gone unrenewed for its duration.
pub(crate) async fn expired_lease(r: &mut Regions) {
    let since = forge_sim::timeline::unix_now_ns();
    {
        let east = r.world("east");
        for i in 0..east.pods.len() {
            east.kill_node(i);
            east.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let (west, over) = r
        .handed_to(
            "west",
            since,
            Duration::from_secs(30),
            "west did not take over from a dead east",
        )
        .await;
    eprintln!("(u3) east's pods all killed: {west} forges after {over:.0} ms (lease 3 s)");
    r.assert_handovers("(u3)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_region_outage_needs_the_operators_override() {
    let test = "a_whole_region_outage_needs_the_operators_override";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2)]).await else {
        return;
    };
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(30), "east does not forge alone")
        .await;
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
        .forger_in(
            "west",
            Duration::from_secs(10),
            "the override did not make west forge",
        )
        .await;
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
