//! Every metric name used by the alert rules (`deploy/prometheus/rules.yaml`) and the Grafana
//! dashboard (`deploy/grafana/forge-manager.json`) exists in a live `/metrics` scrape, so a
//! renamed metric breaks this test instead of silently blanking a panel or muting an alert.
//!
//! The scrape comes from a 3-replica world of real sidecars (`forge_sim::world`) after the first
//! election, plus two events that create label children: the leader's API connection refused
//! until a renewal fails (`forge_manager_kube_api_errors_total`) and one more sidecar started with a
//! corrupt KES key (`forge_manager_credential_validation_failures_total`).
//!
//! Names that no sidecar exports yet are listed explicitly below ([`PENDING`]), each with the
//! feature that brings it; the test prints them, and fails once one of them appears (move it out
//! of the list then), so the list never goes stale.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use forge_sim::world::{World, WorldOptions, http_get, wait_for};

/// Used by the rules or the dashboard, not exported by the single-cluster sidecars scraped here:
/// (name, why). The `cardano_cluster_*` ones exist only with `ENABLE_CLUSTER_MANAGEMENT=true`
/// (`tests/multi_cluster/` scrapes them from multi-region sidecars); the node's sync only where
/// its tip is read.
const PENDING: &[(&str, &str)] = &[
    (
        "cardano_cluster_forge_enabled",
        "cluster management only: exported by a region's lease holder",
    ),
    (
        "cardano_cluster_forge_priority",
        "cluster management only: exported by a region's lease holder",
    ),
    (
        "cardano_cluster_health_check_success",
        "cluster management with a health endpoint only, labelled by cluster",
    ),
    (
        "cardano_cluster_health_check_consecutive_failures",
        "cluster management with a health endpoint only, labelled by cluster",
    ),
    (
        "cardano_cluster_peer_reachable",
        "cluster management with peers only: 1 while a peer region's API server answers, by peer",
    ),
    (
        "cardano_forge_tickets_held",
        "quorum mode only (QUORUM_PARTICIPANTS): the TicketKeeper; tests/quorum/ scrapes it",
    ),
    (
        "cardano_forge_tickets_needed",
        "quorum mode only (QUORUM_PARTICIPANTS): the TicketKeeper; tests/quorum/ scrapes it",
    ),
    (
        "cardano_forge_ticket_reachable",
        "quorum mode only (QUORUM_PARTICIPANTS): the TicketKeeper, by participant; tests/quorum/ scrapes it",
    ),
    (
        "cardano_forge_quorum_break_glass",
        "quorum mode only (QUORUM_PARTICIPANTS): the TicketKeeper; tests/quorum/ scrapes it",
    ),
    (
        "forge_manager_node_synced",
        "with REQUIRE_SYNC or NODE_METRICS_URL only (the ChainWatcher); tests/cardano_aware.rs scrapes it",
    ),
    (
        "forge_manager_node_slot_lag",
        "with REQUIRE_SYNC or NODE_METRICS_URL only (the ChainWatcher); tests/cardano_aware.rs scrapes it",
    ),
    (
        "cardano_leader_next_slot_timestamp_seconds",
        "with LEADER_SCHEDULE only (the ChainWatcher); tests/cardano_aware.rs scrapes it",
    ),
];

/// Exported only after an event this test does not provoke: (name, why). Empty now: the
/// labelled counters the rules use start at 0 (`actors/src/metrics.rs`).
const AFTER_AN_EVENT: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Identifiers in a PromQL expression that name one of our metrics.
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            // `cardano_node_*` are cardano-node's own metrics (the node's scrape, not a sidecar's;
            // tests/prometheus_scenario.rs scrapes the node simulator's).
            if (word.starts_with("cardano_") || word.starts_with("forge_manager_"))
                && !word.starts_with("cardano_node_")
                && !word.ends_with('_')
            {
                out.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
}

fn names_in_rules() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("deploy/prometheus/rules.yaml")).expect("rules.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("rules.yaml parses");
    let mut out = BTreeSet::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            metric_names(rule["expr"].as_str().expect("expr"), &mut out);
        }
    }
    out
}

fn names_in_dashboard() -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                            metric_names(s, out)
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(root().join("deploy/grafana/forge-manager.json")).expect("dashboard");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = BTreeSet::new();
    walk(&doc, &mut out);
    out
}

/// Sample names in a Prometheus text exposition (`_bucket`, `_sum`, `_count` included).
fn scraped_names(text: &str, out: &mut BTreeSet<String>) {
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        out.insert(line[..end].to_string());
    }
}

#[test]
fn the_rules_and_the_dashboard_parse_and_use_metrics() {
    let rules = names_in_rules();
    let dashboard = names_in_dashboard();
    assert!(rules.contains("cardano_forging_enabled"), "{rules:?}");
    assert!(dashboard.contains("cardano_forging_enabled"), "{dashboard:?}");
    assert!(
        dashboard.contains("forge_manager_decision_latency_seconds_bucket"),
        "{dashboard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_used_by_the_rules_and_the_dashboard_is_exported() {
    let test = "every_metric_used_by_the_rules_and_the_dashboard_is_exported";
    if !forge_sim::apiserver::runs_for_test(test) {
        return;
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"));
    let world = World::start(WorldOptions::realistic(exe.clone(), 3))
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    let (leader, _) = world
        .wait_for_single_forger(Duration::from_secs(20), None)
        .await
        .expect("a single forger");
    let leader = world.index_of(&leader).expect("known pod");

    // API errors: refuse the leader's connections until its renewals fail (a handover may
    // follow; only the names matter here).
    let other = leader;
    let proxy = world.pods[other].proxy.handle();
    proxy.refuse();
    proxy.reset(); // open connections too
    let http = world.pods[other].http;
    let errors = wait_for(Duration::from_secs(15), || async move {
        http_get(http, "/metrics")
            .await
            .map(|(_, body)| body.contains("forge_manager_kube_api_errors_total{"))
            .unwrap_or(false)
    })
    .await;
    proxy.pass();
    assert!(
        errors.is_ok(),
        "no API error counted while refused:\n{}",
        world.manager_log(other)
    );

    // One more sidecar whose KES key is corrupt: its validation failure is counted.
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (dir.path().join("secrets"), dir.path().join("target"));
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::create_dir_all(&dst).expect("mkdir");
    forge_sim::creds::write_test_credentials(&src, 1, 0).expect("credentials");
    std::fs::write(src.join("kes.skey"), "not a key\n").expect("corrupt kes");
    let port = forge_sim::apiserver::free_ports(1).expect("port")[0];
    let mut extra = Command::new(&exe)
        .arg("run")
        .env_clear()
        .envs([
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            (
                "KUBECONFIG",
                world.apiserver.admin_kubeconfig().display().to_string(),
            ),
            ("NAMESPACE", "default".into()),
            ("POD_NAME", "pod-corrupt".into()),
            ("METRICS_PORT", port.to_string()),
            (
                "NODE_SOCKET",
                dir.path().join("node.socket").display().to_string(),
            ),
            ("NODE_STARTS_NON_PRODUCING", "true".into()),
            ("SOURCE_KES_KEY", src.join("kes.skey").display().to_string()),
            ("SOURCE_VRF_KEY", src.join("vrf.skey").display().to_string()),
            ("SOURCE_OP_CERT", src.join("node.cert").display().to_string()),
            ("TARGET_KES_KEY", dst.join("kes.skey").display().to_string()),
            ("TARGET_VRF_KEY", dst.join("vrf.skey").display().to_string()),
            ("TARGET_OP_CERT", dst.join("node.cert").display().to_string()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the extra sidecar");
    let extra_http = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let corrupt_seen = wait_for(Duration::from_secs(15), || async move {
        http_get(extra_http, "/metrics")
            .await
            .map(|(_, body)| body.contains("forge_manager_credential_validation_failures_total{"))
            .unwrap_or(false)
    })
    .await;

    let mut exported = BTreeSet::new();
    for i in 0..3 {
        let text = world
            .metrics(i)
            .await
            .unwrap_or_else(|| panic!("pod-{i} /metrics"));
        scraped_names(&text, &mut exported);
    }
    if let Ok((200, text)) = http_get(extra_http, "/metrics").await {
        scraped_names(&text, &mut exported);
    }
    let _ = extra.kill();
    let _ = extra.wait();
    assert!(
        corrupt_seen.is_ok(),
        "no credential validation failure counted for a corrupt key"
    );

    // The reference's names next to ours, and the process metrics its client library exported.
    for name in [
        "cardano_forge_manager_info_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(exported.contains(name), "{name} not exported: {exported:?}");
    }

    let mut used = names_in_rules();
    used.extend(names_in_dashboard());
    let pending: BTreeSet<&str> = PENDING.iter().map(|(n, _)| *n).collect();
    let after_event: BTreeSet<&str> = AFTER_AN_EVENT.iter().map(|(n, _)| *n).collect();

    let missing: Vec<&String> = used
        .iter()
        .filter(|n| {
            !exported.contains(*n) && !pending.contains(n.as_str()) && !after_event.contains(n.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "used by the rules or the dashboard but not exported: {missing:?}\nexported: {exported:?}"
    );
    let arrived: Vec<&&str> = pending.iter().filter(|n| exported.contains(**n)).collect();
    assert!(
        arrived.is_empty(),
        "now exported, move out of PENDING in tests/deploy_metrics.rs: {arrived:?}"
    );
    let unused: Vec<&&str> = pending
        .iter()
        .chain(&after_event)
        .filter(|n| !used.contains(**n))
        .collect();
    assert!(unused.is_empty(), "listed but no longer used: {unused:?}");
    let checked = used.len() - pending.len() - after_event.len();
    eprintln!("{checked} metric names used by the rules and the dashboard are in a live scrape");
    for (name, why) in PENDING.iter().chain(AFTER_AN_EVENT) {
        eprintln!("NOT YET EXPORTED (not checked): {name}: {why}");
    }
}
