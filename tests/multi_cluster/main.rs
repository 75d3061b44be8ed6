//! Multi-region scenarios with real processes (issue 6): one real kube-apiserver per region,
//! two `forge-manager run` sidecars and node simulators per region, cluster management on,
//! `PEER_CLUSTERS` pointing at the other regions' API servers. The merged node timelines of
//! all regions are the judge: the overlap of forgers must be 0 ms, and the longest interval
//! without a forger within what a handover between regions may take (L1,
//! [`Regions::handover_bound`]).
//!
//! The tests run one at a time (each starts several API servers and many processes). Starting
//! and stopping a set of regions takes about as long as a scenario: the scenarios that need
//! only east (priority 1) and west (priority 2) and leave east forging run one after the other
//! in one pair of regions ([`east_and_west_through_maintenance_silence_a_handover_inside_east_ill_health_and_an_expired_lease`]),
//! each judged on its own and the whole run at the shutdown; a whole region's outage (east's
//! API server gone) and the three regions have their own.
//!
//! This file holds what the scenarios share (the lock, the bounds, the regions of a test) and
//! the east-west test; the scenarios are in [`planned`] (maintenance handed over and back, a
//! handover inside the primary region, bad input and an expiring override) and [`failures`] (a
//! failing health endpoint, a silent peer against an expired lease, a whole region's outage).

use std::{path::PathBuf, time::Duration};

use forge_sim::{
    timeline::{Window, judge, judge_window},
    world::WorldOptions,
};

mod failures;
mod planned;

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

/// The regions of a test: `(region, priority)`; each region's CFC is `pool-{region}`. The test
/// has its turn (`forge_sim::apiserver::take_turn`) while they live.
struct Regions {
    regions: forge_sim::regions::Regions,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

forge_sim::deref_to_regions!(Regions);

impl Regions {
    /// Waits for the scenarios before `test` to end, then starts one API server per region,
    /// then every region's pods, each region's managers reading the others' CFCs and Leases
    /// through the others' admin kubeconfigs.
    async fn start(test: &str, regions: &[(&str, u16)]) -> Option<Regions> {
        Regions::start_with(test, regions, |_| Vec::new()).await
    }

    /// [`Regions::start`] with more environment per region.
    async fn start_with(
        test: &str,
        regions: &[(&str, u16)],
        extra: impl Fn(&str) -> Vec<(String, String)>,
    ) -> Option<Regions> {
        let turn = forge_sim::apiserver::take_turn(test).await?;
        let regions =
            forge_sim::regions::Regions::start(regions, |_| WorldOptions::scenario(exe(), REPLICAS), extra)
                .await
                .unwrap_or_else(|e| panic!("{test}: {e}"));
        Some(Regions { regions, _turn: turn })
    }

    /// A forger in `region` within `within` and how long it took; else panics with `what`, who
    /// forges and the logs.
    async fn forger_in(&self, region: &str, within: Duration, what: &str) -> (String, Duration) {
        self.wait_for_forger_in(region, within)
            .await
            .unwrap_or_else(|| panic!("{what}: {:?}\n{}", self.forging_now(), self.logs()))
    }

    /// A forger in `region` within `within` (else panics with `what`) and how many ms after
    /// `since_ns` its `forging_on` came.
    async fn handed_to(&self, region: &str, since_ns: u64, within: Duration, what: &str) -> (String, f64) {
        let (forger, _) = self.forger_in(region, within, what).await;
        let ms = self
            .took_over_ms(region, since_ns)
            .unwrap_or_else(|| panic!("{what}: no forging_on in {region} after the instant given"));
        (forger, ms)
    }

    fn assert_no_overlap(&self, scenario: &str) {
        let v = self.verdict();
        eprintln!("{scenario}: merged verdict {v:?}");
        v.assert_no_overlap(scenario);
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

/// Normal operation, planned maintenance and back, a silent peer, a handover inside east, ill
/// health and recovery, and an expired Lease as evidence, in one pair of regions: every phase
/// begins with east forging, and all but the last leave it forging. East's health check is on
/// throughout (its endpoint healthy but in [`failures::ill_health`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_and_west_through_maintenance_silence_a_handover_inside_east_ill_health_and_an_expired_lease() {
    let test =
        "east_and_west_through_maintenance_silence_a_handover_inside_east_ill_health_and_an_expired_lease";
    let endpoint = failures::HealthEndpoint::start().await;
    let url = endpoint.url.clone();
    let Some(mut r) = Regions::start_with(test, &[("east", 1), ("west", 2)], |region| {
        failures::health_env(region, &url)
    })
    .await
    else {
        return;
    };
    planned::maintenance(&mut r).await;
    failures::silence(&mut r).await;
    planned::inside_the_primary(&mut r).await;
    failures::ill_health(&mut r, &endpoint).await;
    failures::expired_lease(&mut r).await;
    r.stop();
}
