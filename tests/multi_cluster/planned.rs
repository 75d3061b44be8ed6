//! Planned moves: only the priority-one region forges and planned maintenance hands over and
//! back, a handover inside the primary region stays there (two phases of the east-west test in
//! `main.rs`), and three regions with bad input and an override that expires.

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};

use crate::{REPLICAS, Regions};

/// Normal operation (only the priority-one region forges, one cluster-gauge exporter per region,
/// the steady state's API requests), planned maintenance (east `Disabled`: west takes over) and
/// back (`Priority-based`: east fails back). Begins and ends with east forging.
pub(crate) async fn maintenance(r: &mut Regions) {
    // Normal operation: only the priority-1 region forges.
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(30), "east does not forge alone")
        .await;
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
    let (west, over) = r
        .handed_to("west", since, Duration::from_secs(20), "west did not take over")
        .await;
    eprintln!("(2) east Disabled: {west} forges after {over:.0} ms");
    r.assert_handovers("(2)");

    // Back to Priority-based: failback to east.
    let since = forge_sim::timeline::unix_now_ns();
    r.patch_spec("east", serde_json::json!({"forgeState": "Priority-based"}))
        .await;
    let (east, back) = r
        .handed_to("east", since, Duration::from_secs(20), "no failback to east")
        .await;
    eprintln!("(3) east Priority-based: {east} forges after {back:.0} ms");
    r.assert_handovers("(3)");
}

/// A handover inside the primary region stays there: SIGTERM to east's forger, its replica
/// takes over, west never forges. Begins and ends with east forging (its replica, from then on
/// east's only pod).
pub(crate) async fn inside_the_primary(r: &mut Regions) {
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(30), "east does not forge alone")
        .await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_bad_input_and_an_expiring_override() {
    let test = "three_regions_bad_input_and_an_expiring_override";
    let Some(mut r) = Regions::start(test, &[("east", 1), ("west", 2), ("north", 3)]).await else {
        return;
    };
    let (forger, took) = r
        .forger_in("east", Duration::from_secs(40), "east does not forge alone")
        .await;
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
    let (west, over) = r
        .handed_to("west", since, Duration::from_secs(8), "west did not take over")
        .await;
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
    let (east, back) = r
        .handed_to(
            "east",
            expires_ns,
            Duration::from_secs(20),
            "no failback at expiry",
        )
        .await;
    eprintln!("(o4) override expired: {east} forges {back:.0} ms after expiresAt");
    assert!(back < 10_000.0, "the expiry took effect late: {back} ms");
    r.assert_handovers("(o4)");
    r.stop();
}
