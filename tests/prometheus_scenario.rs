//! A real Prometheus (Debian's `prometheus`, `/usr/bin/prometheus`, on loopback) scrapes a
//! 3-replica world without the node guard: the three sidecars' `/metrics` and the three node
//! simulators' metrics ports, with the repo's `deploy/prometheus/rules.yaml` loaded.
//!
//! - Steady state: "forgers per pool" is exactly 1 (the sidecars' sum and the per-pod count the
//!   two-forgers alert uses), and `CardanoMultipleForgers` is silent.
//! - The leader's manager SIGKILLed (no guard): its node keeps forging while another pod takes
//!   the lease, an orphaned forger that only the node's own metric shows (the sidecar's
//!   `/metrics` died with it): `CardanoMultipleForgers` fires.
//! - The orphaned node killed: the alert resolves.
//!
//! The node's scrape carries the `pod`, `network` and `pool_id` target labels the rule needs
//! (see the header of rules.yaml); here they are static labels, read off the sidecar's series.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use forge_sim::{
    process::{spawn_tied, terminate, tied_command},
    world::{World, WorldOptions, http_get, wait_for},
};
use nix::sys::signal::Signal;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const ALERT: &str = "CardanoMultipleForgers";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of `label` in the first `cardano_forging_enabled{...}` sample of a scrape.
fn label(scrape: &str, label: &str) -> Option<String> {
    let line = scrape
        .lines()
        .find(|l| l.starts_with("cardano_forging_enabled{"))?;
    let key = format!("{label}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_string())
}

struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/api/v1/query`: the result vector as (labels, value).
    async fn query(&self, q: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", encode(q));
        let Ok((200, body)) = http_get(self.addr, &path).await else {
            return Vec::new();
        };
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        doc["data"]["result"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        let v = r["value"][1].as_str()?.parse().ok()?;
                        Some((r["metric"].clone(), v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `/api/v1/alerts`: the states of the alerts named `name` (empty: none pending or firing).
    async fn alert_states(&self, name: &str) -> Option<Vec<String>> {
        let Ok((200, body)) = http_get(self.addr, "/api/v1/alerts").await else {
            return None;
        };
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(
            doc["data"]["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["labels"]["alertname"] == name)
                .filter_map(|a| a["state"].as_str().map(str::to_string))
                .collect(),
        )
    }

    async fn firing(&self, name: &str) -> bool {
        self.alert_states(name)
            .await
            .is_some_and(|s| s.iter().any(|s| s == "firing"))
    }

    fn stop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_prometheus(managers: &[String], nodes: &[(String, String, String, String)]) -> Prometheus {
    let dir = tempfile::Builder::new()
        .prefix("forge-prometheus-")
        .tempdir()
        .expect("tempdir");
    let rules = root().join("deploy/prometheus/rules.yaml");
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: forge-manager\n    static_configs:\n      - targets: {managers:?}\n\
         \x20 - job_name: cardano-node\n    static_configs:\n",
        rules = rules.display().to_string(),
    );
    for (target, pod, network, pool_id) in nodes {
        config.push_str(&format!(
            "      - targets: [{target:?}]\n        labels: {{pod: {pod:?}, network: {network:?}, pool_id: {pool_id:?}}}\n"
        ));
    }
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, &config).expect("write prometheus.yml");
    let port = forge_sim::apiserver::free_ports(1).expect("free port")[0];
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.path().join("prometheus.log");
    let out = std::fs::File::create(&log).expect("log file");
    let mut cmd = tied_command(Path::new(PROMETHEUS));
    cmd.arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out);
    let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("starting {PROMETHEUS}: {e}"));
    eprintln!("prometheus on {addr}, config:\n{config}");
    Prometheus {
        child,
        addr,
        log,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_counts_one_forger_and_fires_on_the_orphaned_forger_of_a_sigkilled_manager() {
    let test = "a_real_prometheus_counts_one_forger_and_fires_on_the_orphaned_forger_of_a_sigkilled_manager";
    if !forge_sim::apiserver::runs_for_test(test) {
        return;
    }
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{test}: {PROMETHEUS} is missing: Debian's `prometheus` package provides it; \
         .ci/run installs it (apt-get install prometheus)"
    );
    let mut o = WorldOptions::realistic(PathBuf::from(env!("CARGO_BIN_EXE_forge-manager")), 3);
    o.guard = false;
    o.node_metrics = true;
    let mut world = World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    let (leader, _) = world
        .wait_for_single_forger(Duration::from_secs(20), None)
        .await
        .expect("a single forger");
    let leader = world.index_of(&leader).expect("known pod");

    let scrape = world.metrics(0).await.expect("pod-0 /metrics");
    let network = label(&scrape, "network").unwrap_or_else(|| panic!("network label in\n{scrape}"));
    let pool_id = label(&scrape, "pool_id").unwrap_or_else(|| panic!("pool_id label in\n{scrape}"));
    let managers: Vec<String> = world.pods.iter().map(|p| p.http.to_string()).collect();
    let nodes: Vec<_> = world
        .pods
        .iter()
        .map(|p| {
            let m = p.node_metrics.expect("node metrics port");
            (m.to_string(), p.name.clone(), network.clone(), pool_id.clone())
        })
        .collect();
    let mut prom = start_prometheus(&managers, &nodes);

    // All six targets up.
    let up = wait_for(Duration::from_secs(60), || async {
        prom.query("count(up == 1)").await.first().map(|(_, v)| *v) == Some(6.0)
    })
    .await;
    assert!(
        up.is_ok(),
        "targets not up within 60 s: {:?}\n{}",
        prom.query("up").await,
        prom.log()
    );
    eprintln!("six targets up after {:.1} s", up.unwrap().as_secs_f64());

    // Steady state: exactly one forger per pool, both as the sidecars say and as the alert
    // counts (per pod, the sidecar's word, else the node's), and no two-forgers alert.
    let per_pool = "sum by (network, pool_id) (cardano_forging_enabled)";
    let per_pod = "sum by (network, pool_id) (max by (network, pool_id, pod) (cardano_forging_enabled) \
                   or max by (network, pool_id, pod) (cardano_node_metrics_forging_enabled))";
    let steady = wait_for(Duration::from_secs(20), || async {
        let a = prom.query(per_pool).await;
        let b = prom.query(per_pod).await;
        a.len() == 1 && a[0].1 == 1.0 && b.len() == 1 && b[0].1 == 1.0
    })
    .await;
    assert!(
        steady.is_ok(),
        "forgers per pool: {:?}, per pod: {:?}",
        prom.query(per_pool).await,
        prom.query(per_pod).await
    );
    let nodes_forging = prom.query("sum(cardano_node_metrics_forging_enabled)").await;
    assert_eq!(
        nodes_forging.first().map(|(_, v)| *v),
        Some(1.0),
        "the nodes' own metric: one forges"
    );
    // A few evaluations in steady state: the alert stays silent.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            prom.alert_states(ALERT).await,
            Some(vec![]),
            "{ALERT} in steady state"
        );
        let a = prom.query(per_pool).await;
        assert!(a.len() == 1 && a[0].1 == 1.0, "forgers per pool: {a:?}");
    }
    eprintln!("steady state: forgers per pool {:?}", prom.query(per_pool).await);

    // SIGKILL the leader's manager: no guard, so its node keeps forging.
    let old = world.pods[leader].name.clone();
    world.signal_manager(leader, Signal::SIGKILL);
    let killed = Instant::now();
    let fired = wait_for(Duration::from_secs(60), || prom.firing(ALERT)).await;
    assert!(
        fired.is_ok(),
        "{ALERT} not firing within 60 s of the SIGKILL of {old}'s manager; forging (timelines): {:?}; \
         per pod: {:?}; alerts: {:?}\n{}",
        world.forging_now(),
        prom.query(per_pod).await,
        prom.alert_states(ALERT).await,
        prom.log()
    );
    let fire_delay = killed.elapsed();
    // The new leader's sidecar may report forging before its node's reload (up to 1.5 s with
    // realistic nodes) has taken effect: give the timelines that long to show both.
    let both = wait_for(Duration::from_secs(5), || async {
        let now = world.forging_now();
        now.len() == 2 && now.contains(&old)
    })
    .await;
    let now = world.forging_now();
    assert!(both.is_ok(), "the orphan and a new forger: {now:?}");
    let sidecars = prom.query(per_pool).await;
    eprintln!(
        "{ALERT} firing {:.1} s after the SIGKILL of {old}'s manager (sidecars alone count {sidecars:?}; per pod {:?})",
        fire_delay.as_secs_f64(),
        prom.query(per_pod).await
    );

    // Kill the orphaned node: the alert resolves.
    world.kill_node(leader);
    let node_killed = Instant::now();
    let resolved = wait_for(Duration::from_secs(60), || async {
        prom.alert_states(ALERT).await == Some(vec![])
    })
    .await;
    assert!(
        resolved.is_ok(),
        "{ALERT} not resolved within 60 s of killing the orphaned node: {:?}; per pod {:?}",
        prom.alert_states(ALERT).await,
        prom.query(per_pod).await
    );
    let resolve_delay = node_killed.elapsed();
    let after = prom.query(per_pod).await;
    assert!(
        after.len() == 1 && after[0].1 == 1.0,
        "one forger again: {after:?}"
    );
    eprintln!(
        "{ALERT} resolved {:.1} s after the orphaned node was killed",
        resolve_delay.as_secs_f64()
    );

    prom.stop();
    world.stop();
}
