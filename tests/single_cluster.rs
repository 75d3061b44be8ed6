//! Single-cluster scenarios with real processes: three `forge-manager run` sidecars and three
//! node simulators against the real kube-apiserver, each manager behind its own fault proxy,
//! with short lease timings (3 s / 2 s / 0.5 s). The merged node timelines are the judge: the
//! overlap of forgers (S1) must be 0 ms in every scenario. Bounds are generous; each scenario
//! prints what it measured.
//!
//! The scenarios share two worlds, each its own test: (a), (g), (h) and then (b) the
//! undisturbed cluster until its leader gets SIGTERM; (c), (d), (e), (f) one disturbance of the
//! leader after the other (each scenario begins with whoever forges then, and its bounds count
//! from its own disturbance). A world takes about as long to start and to stop as a scenario
//! takes to run; the whole run of each world is judged after every scenario and at its shutdown.
//! The tests run one at a time (each starts its own API server and six processes; running them
//! together on two cores would distort the timings they measure).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use forge_core::{cardano::KesState, status::CredentialsReport};
use forge_sim::apiserver::ONE_AT_A_TIME;
use forge_sim::world::{World, WorldOptions, wait_for};
use nix::sys::signal::Signal;

const LEASE: Duration = Duration::from_secs(4);
const RETRY: Duration = Duration::from_millis(500);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// Starts a 3-replica world, or returns None (loudly) when the real API server tests are off.
async fn world(test: &str) -> Option<World> {
    if !forge_sim::apiserver::runs_for_test(test) {
        return None;
    }
    let world = World::start(WorldOptions::realistic(exe(), 3))
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    Some(world)
}

/// Waits for the first forger after a cold start and checks it is alone.
async fn first_forger(w: &World) -> (usize, Duration) {
    let (name, took) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no single forger after a cold start: {:?}\n{}",
                w.forging_now(),
                w.manager_log(0)
            )
        });
    (w.index_of(&name).expect("known pod"), took)
}

fn assert_no_overlap(w: &World, scenario: &str) {
    let v = w.verdict();
    eprintln!("{scenario}: verdict {v:?}");
    v.assert_no_overlap(scenario);
    // Someone forges (L1): no gap longer than a lease takeover plus the slowest reload and
    // the STOP_GRACE a handover without the guard waits, with room for a loaded machine.
    v.assert_gap_within(scenario, LEASE + Duration::from_secs(8));
    assert!(
        w.forging_without_lease().is_empty(),
        "{scenario}: a node forged while its pod held no lease: {:?}",
        w.forging_without_lease()
    );
}

/// The time between `since` (unix ns) and the first `forging_on` of a node other than `old`.
fn handover_ms(w: &World, old: &str, since_ns: u64) -> Option<f64> {
    w.events()
        .iter()
        .filter(|e| {
            e.node != old && e.event == forge_sim::timeline::EventKind::ForgingOn && e.t_unix_ns >= since_ns
        })
        .map(|e| (e.t_unix_ns - since_ns) as f64 / 1e6)
        .next()
}

/// The single forger within `within`, as the index of its pod; `what` names the failure.
async fn single_forger(w: &World, within: Duration, other_than: Option<&str>, what: &str) -> usize {
    let (name, _) = w
        .wait_for_single_forger(within, other_than)
        .await
        .unwrap_or_else(|| panic!("{what}: {:?}\n{}", w.forging_now(), w.manager_log(0)));
    w.index_of(&name).expect("known pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_g_h_b_one_forger_from_a_cold_start_shown_and_steady_until_a_sigterm_hands_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "a_g_h_b_one_forger_from_a_cold_start_shown_and_steady_until_a_sigterm_hands_over";
    let Some(mut w) = world(test).await else {
        return;
    };
    let leader = cold_start(&w).await;
    shown_by_kubectl_and_metrics(&w, leader).await;
    steady_state(&w, leader).await;
    sigterm_hands_over(&mut w, leader).await;
    w.assert_clean_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_d_e_f_a_crash_a_partition_a_node_restart_and_corrupt_credentials_keep_one_forger() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "c_d_e_f_a_crash_a_partition_a_node_restart_and_corrupt_credentials_keep_one_forger";
    let Some(mut w) = world(test).await else {
        return;
    };
    let (leader, _) = first_forger(&w).await;
    let leader = pod_crash(&mut w, leader).await;
    let leader = partition(&mut w, leader).await;
    let leader = node_restart(&mut w, leader).await;
    corrupt_credentials(&w, leader).await;
    w.assert_clean_shutdown();
}

/// (a) From a cold start exactly one forges, soon; it stays the only one through the
/// scenarios that follow in its world ((g) and the 22 s of (h), many renewals).
async fn cold_start(w: &World) -> usize {
    let (leader, took) = first_forger(w).await;
    eprintln!(
        "(a) first forger {} after {took:?} (nodes up at {:?})",
        w.pods[leader].name,
        w.age()
    );
    assert!(
        took <= LEASE + Duration::from_secs(1) + Duration::from_secs(3),
        "first forger took {took:?}"
    );
    assert_no_overlap(w, "(a)");
    leader
}

/// (b) SIGTERM to the leader's manager: another pod forges after the old node's STOP_GRACE.
/// The world's leader has forged for well over `2 x STOP_GRACE` here ((g) and (h) before), so
/// its start-up reloads have had their time: at most one re-assert may still be under way.
async fn sigterm_hands_over(w: &mut World, leader: usize) {
    let old = w.pods[leader].name.clone();
    let since = forge_sim::timeline::unix_now_ns();
    let t0 = Instant::now();
    w.signal_manager(leader, Signal::SIGTERM);
    let (next, _) = w
        .wait_for_single_forger(Duration::from_secs(8), Some(&old))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no handover after SIGTERM: {:?}\n{}",
                w.forging_now(),
                w.manager_log(leader)
            )
        });
    let waited = t0.elapsed();
    let handover = handover_ms(w, &old, since).expect("a forging_on after the signal");
    eprintln!("(b) SIGTERM {old} -> {next} forging after {handover:.1} ms (observed in {waited:?})");
    // Without the node guard nothing confirms the old node's stop: the handover waits STOP_GRACE
    // (2 s by default) so a slow reload cannot overlap (with the guard it is confirmed at once).
    // The node applies reloads in order, so the stop also waits for a re-assert still under way:
    // one at most (none is sent while an earlier one may run), up to one STOP_GRACE more. Then
    // the new node's reload, up to 1.5 s, and 1 s of room: 2 + 2 + 1.5 + 1 s.
    assert!(
        handover < 6500.0,
        "graceful handover took {handover} ms (a re-assert's and the stop's STOP_GRACE, 2 x 2 s, \
         + the new node's reload, up to 1.5 s, + 1 s)"
    );
    assert!(
        handover >= 1900.0,
        "the handover must wait STOP_GRACE without the guard, took {handover} ms"
    );
    let code = w.wait_manager_exit(leader, Duration::from_secs(6)).await;
    assert_eq!(
        code,
        Some(0),
        "the manager exits cleanly after a graceful shutdown"
    );
    assert_no_overlap(w, "(b)");
}

/// (c) Pod crash: the leader's manager and node die together, nothing is cleaned up; another
/// pod forges once the lease expires. Returns the new leader.
async fn pod_crash(w: &mut World, leader: usize) -> usize {
    let old = w.pods[leader].name.clone();
    let since = forge_sim::timeline::unix_now_ns();
    w.signal_manager(leader, Signal::SIGKILL);
    w.kill_node(leader);
    let bound = LEASE + RETRY + Duration::from_secs(1);
    let next = single_forger(
        w,
        bound + Duration::from_secs(5),
        Some(&old),
        "no takeover after a pod crash",
    )
    .await;
    let took = handover_ms(w, &old, since).expect("forging_on after the crash");
    eprintln!(
        "(c) crash of {old} -> {} forging after {took:.0} ms (bound {bound:?})",
        w.pods[next].name
    );
    assert!(
        took <= (bound + Duration::from_secs(2)).as_millis() as f64,
        "takeover took {took} ms"
    );
    assert_no_overlap(w, "(c)");
    next
}

/// (d) The leader's API connection blackholed: it stops before its lease can pass, the next
/// takes over; healed, the old leader does not take the lease back. Returns the new leader.
async fn partition(w: &mut World, leader: usize) -> usize {
    let old = w.pods[leader].name.clone();
    let since = forge_sim::timeline::unix_now_ns();
    w.pods[leader].proxy.handle().blackhole();
    let next = single_forger(
        w,
        LEASE + Duration::from_secs(8),
        Some(&old),
        "no takeover from a partitioned leader",
    )
    .await;
    let name = w.pods[next].name.clone();
    let took = handover_ms(w, &old, since).expect("forging_on after the partition");
    eprintln!("(d) partition of {old} -> {name} forging after {took:.0} ms");
    assert_no_overlap(w, "(d)");
    // Heal: the old leader must not take the lease back (no flapping).
    w.pods[leader].proxy.handle().pass();
    tokio::time::sleep(LEASE * 2).await;
    assert_eq!(w.forging_now(), vec![name], "forging moved after the heal");
    assert_no_overlap(w, "(d) after heal");
    next
}

/// (e) The leader's node restarts: its manager provides boot credentials, the node comes back
/// non-producing, and one pod forges (another, or the same again). Returns that pod.
async fn node_restart(w: &mut World, leader: usize) -> usize {
    let old = w.pods[leader].name.clone();
    w.kill_node(leader);
    // As the startup probe lets a node start: once its manager has seen it down, stopped
    // forging and provided boot credentials (the forger's own files are there at once, and a
    // node started before its manager has finished with them fails on the files it reads).
    let boot = wait_for(Duration::from_secs(10), || async {
        w.status(leader)
            .await
            .is_some_and(|s| !s.node.up && s.forging == Some(false) && !s.busy)
            && w.pods[leader].target().join("kes.skey").exists()
    })
    .await;
    assert!(
        boot.is_ok(),
        "boot credentials were not provided for the restarting node: {:?}\n{}",
        w.status(leader).await,
        w.manager_log(leader)
    );
    w.start_node(leader).await.expect("node restarts");
    let now = single_forger(
        w,
        LEASE + Duration::from_secs(10),
        None,
        "nobody forges after the node restart",
    )
    .await;
    eprintln!("(e) after restarting {old}'s node, {} forges", w.pods[now].name);
    tokio::time::sleep(LEASE).await;
    assert_eq!(w.forging_now().len(), 1);
    assert_no_overlap(w, "(e)");
    now
}

/// (f) Corrupt source credentials on the leader: it refuses them, says why in /status and the
/// metrics (never the key material), and no node ever loads the bad files.
async fn corrupt_credentials(w: &World, leader: usize) {
    let old = w.pods[leader].name.clone();
    let kes = w.pods[leader].secrets().join("kes.skey");
    let corrupt = r#"{"type":"KesSigningKey_ed25519_kes_2^6","description":"","cborHex":"5902zz-not-hex"}"#;
    let tmp = kes.with_extension("tmp");
    std::fs::write(&tmp, corrupt).expect("write corrupt key");
    std::fs::rename(&tmp, &kes).expect("swap in the corrupt key");
    let next = single_forger(
        w,
        LEASE + Duration::from_secs(10),
        Some(&old),
        "the pod with corrupt credentials kept forging",
    )
    .await;
    eprintln!(
        "(f) corrupt credentials on {old}: {} forges instead",
        w.pods[next].name
    );
    let status = w.status(leader).await.expect("/status");
    assert!(
        matches!(status.credentials, CredentialsReport::Invalid { .. }),
        "{status}"
    );
    assert!(
        !status.to_string().contains("5902zz"),
        "key material leaked into /status"
    );
    let metrics = w.metrics(leader).await.expect("/metrics");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("forge_manager_credential_validation_failures_total") && !l.ends_with(" 0")
        ),
        "validation failure not counted:\n{metrics}"
    );
    assert!(
        !w.manager_log(leader).contains("5902zz"),
        "key material leaked into the log"
    );
    let reload_errors = w
        .events()
        .iter()
        .filter(|e| e.event == forge_sim::timeline::EventKind::ReloadError)
        .count();
    assert_eq!(reload_errors, 0, "a node loaded the bad files");
    assert_no_overlap(w, "(f)");
}

/// (g) `kubectl get cl` shows the leader, its /status and metrics its KES standing, and
/// exactly one pod's metrics say `cardano_forging_enabled 1`.
async fn shown_by_kubectl_and_metrics(w: &World, leader: usize) {
    // The source certificate's KES standing is in /status (the test keys are current on mainnet).
    let status = w.status(leader).await.expect("/status");
    let kes = status.kes.and_then(|k| k.kes);
    assert_eq!(kes.map(|k| k.state), Some(KesState::Valid), "{status}");
    assert!(kes.is_some_and(|k| k.remaining_periods > 0), "{status}");
    // The same figures as metrics (the note of the KES work quotes these lines).
    let metrics = w.metrics(leader).await.expect("/metrics");
    let kes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("cardano_kes_") || l.starts_with("cardano_opcert_"))
        .collect();
    eprintln!("KES and opcert metrics of the leader:\n{}", kes.join("\n"));
    for name in [
        "cardano_kes_current_period",
        "cardano_kes_remaining_periods",
        "cardano_kes_expiry_timestamp_seconds",
        "cardano_opcert_counter",
        "cardano_opcert_kes_period_start",
    ] {
        assert!(
            kes.iter().any(|l| l.starts_with(name)),
            "{name} not exported:\n{metrics}"
        );
    }
    let name = w.pods[leader].name.clone();
    let cache = tempfile::tempdir().expect("kubectl cache");
    let kubectl = || {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(w.apiserver.admin_kubeconfig())
            .arg("--cache-dir")
            .arg(cache.path())
            .args(["get", "cl", "-o", "wide"])
            .output()
            .expect("kubectl runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = wait_for(Duration::from_secs(10), || {
        let table = kubectl();
        let name = name.clone();
        async move { table.lines().any(|l| l.contains(&name) && l.contains("true")) }
    })
    .await;
    let table = kubectl();
    eprintln!("(g) kubectl get cl -o wide:\n{table}");
    assert!(
        shown.is_ok(),
        "kubectl get cl does not show {name} forging:\n{table}"
    );
    let mut ones = 0;
    for i in 0..w.pods.len() {
        let metrics = w.metrics(i).await.expect("/metrics");
        let forging = metrics
            .lines()
            .find(|l| l.starts_with("cardano_forging_enabled"))
            .expect("gauge")
            .to_string();
        if forging.ends_with(" 1") {
            ones += 1;
            assert_eq!(i, leader, "{forging}");
        }
    }
    assert_eq!(ones, 1, "exactly one pod reports cardano_forging_enabled 1");
    assert_no_overlap(w, "(g)");
}

/// Sum of `apiserver_request_total` samples for leases with the given verb.
fn lease_requests(metrics: &str, verb: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains(r#"resource="leases""#) && l.contains(&format!(r#"verb="{verb}""#)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (h) Steady state: the leader's lease writes and each standby's lease reads stay within one
/// per retry period, the leader stays the only forger, and every manager's memory is bounded.
async fn steady_state(w: &World, leader: usize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = w.apiserver_metrics().await.expect("apiserver metrics");
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let after = w.apiserver_metrics().await.expect("apiserver metrics");
    let per_min = |verb: &str| {
        (lease_requests(&after, verb) - lease_requests(&before, verb)) * 60.0 / window.as_secs_f64()
    };
    let (updates, gets) = (per_min("PUT"), per_min("GET"));
    let standbys = (w.pods.len() - 1) as f64;
    eprintln!(
        "(h) retry period {RETRY:?}: leader lease writes {updates:.0}/min; standby lease reads {:.0}/min each; \
         watches: {:.1} new/min in total",
        gets / standbys,
        per_min("WATCH")
    );
    // The leader renews once per retry period; a standby polls about once per retry period.
    let per_period = 60.0 / RETRY.as_secs_f64();
    assert!(updates <= per_period * 1.2, "leader writes {updates}/min");
    assert!(
        gets / standbys <= per_period * 1.2,
        "standby reads {}/min each",
        gets / standbys
    );
    assert_eq!(w.forging_now(), vec![w.pods[leader].name.clone()]);
    for i in 0..w.pods.len() {
        let rss = w.manager_rss_kib(i).expect("manager running");
        eprintln!("(h) {} RSS {} KiB", w.pods[i].name, rss);
        assert!(rss < 100 * 1024, "manager RSS {rss} KiB");
    }
    assert_no_overlap(w, "(h)");
}
