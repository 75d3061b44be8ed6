//! The quorum world: the regions (one real API server, two sidecars and nodes each), the witness
//! API server, a fault proxy per (observer, participant), and what the scenarios do with them:
//! partitions, isolation, one-way loss, the tickets column of `kubectl get cfc`, the forger and
//! S1 by the merged node timelines, and the figures each scenario records.

use std::time::{Duration, Instant};

use forge_sim::{
    apiserver::{ApiServer, ApiServerOptions},
    proxy::{FaultProxy, ProxyMode},
    timeline::{judge, judge_window},
    world::WorldOptions,
};

use crate::{
    REPLICAS, WITNESS, exe,
    timing::{TICKET_DURATION, TICKET_RENEW_DEADLINE},
};

/// The regions (their `links` also hold each region's proxy to the witness), the witness and
/// the figures of the scenarios.
pub(crate) struct Quorum {
    regions: forge_sim::regions::Regions,
    witness: ApiServer,
    /// Per scenario: (name, fault -> new forger in ms, bound in ms).
    pub(crate) figures: Vec<(String, f64, f64)>,
}

forge_sim::deref_to_regions!(Quorum);

impl Quorum {
    pub(crate) async fn start(test: &str, regions: &[(&str, u16)]) -> Option<Quorum> {
        if !forge_sim::apiserver::runs_for_test(test) {
            return None;
        }
        let prepared =
            forge_sim::world::prepare_regions(regions, |_| WorldOptions::scenario(exe(), REPLICAS))
                .await
                .unwrap_or_else(|e| panic!("{test}: {e}"));
        let (mut worlds, mut links) = (prepared.worlds, prepared.links);
        let identities: Vec<String> = regions
            .iter()
            .flat_map(|(r, _)| (0..REPLICAS).map(move |i| format!("{r}-{i}")))
            .collect();
        let witness = ApiServer::start(ApiServerOptions::with_identities(identities))
            .await
            .unwrap_or_else(|e| panic!("{test}: witness API server: {e}"));
        for (i, (region, _)) in regions.iter().enumerate() {
            let proxy = FaultProxy::start_local(witness.addr()).await.expect("proxy");
            let kubeconfig = witness
                .kubeconfig_via(&format!("{region}-0"), proxy.local_addr())
                .expect("kubeconfig");
            let witness_entry = format!("witness:{WITNESS}={}", kubeconfig.display());
            let participants = match prepared.peer_clusters[i].as_str() {
                "" => witness_entry,
                peers => format!("{peers},{witness_entry}"),
            };
            links.insert(((*region).to_string(), WITNESS.to_string()), proxy);
            worlds[i].options_mut().extra_env.extend([
                ("QUORUM_PARTICIPANTS".into(), participants),
                ("TICKET_DURATION".into(), TICKET_DURATION.as_secs().to_string()),
                (
                    "TICKET_RENEW_DEADLINE".into(),
                    TICKET_RENEW_DEADLINE.as_secs().to_string(),
                ),
            ]);
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

    pub(crate) fn link(&self, observer: &str, participant: &str) -> &FaultProxy {
        &self.links[&(observer.to_string(), participant.to_string())]
    }

    /// Cuts (or heals) every path between `region` and every other participant, both ways.
    pub(crate) fn partition(&self, region: &str, cut: bool) {
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
    pub(crate) fn isolate(&self, region: &str, mode: ProxyMode) {
        for ((a, b), proxy) in &self.links {
            if a == region || b == region {
                proxy.handle().set_mode(mode);
            }
        }
    }

    /// Puts only `region`'s own paths to every other participant (those it reads and writes
    /// through) in `mode`; the others' paths to `region` stay as they are.
    pub(crate) fn outbound(&self, region: &str, mode: ProxyMode) {
        for ((a, _), proxy) in &self.links {
            if a == region {
                proxy.handle().set_mode(mode);
            }
        }
    }

    /// The `Tickets` cell of `pool-{region}` in the table `kubectl get cfc` prints: its API
    /// server renders the CRD's printer columns (`Accept: ...;as=Table`), as for kubectl.
    pub(crate) async fn tickets_column(&self, region: &str) -> Option<String> {
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
    pub(crate) async fn expect_tickets(&self, region: &str, want: &str, what: &str) {
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

    pub(crate) async fn expect_forger_in(&self, region: &str, within: Duration, what: &str) -> String {
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
    pub(crate) fn assert_no_overlap(&self, scenario: &str, since_ns: u64) {
        self.verdict().assert_no_overlap(scenario);
        let events = self.events();
        if let Ok(w) = judge_window(&events, forge_sim::timeline::Window::since(since_ns)) {
            eprintln!(
                "{scenario}: overlap {} ms, forgers {:?}, longest gap {:.0} ms",
                w.overlap_ms, w.forgers, w.max_gap_ms
            );
        }
    }

    /// After a fault at `since`: a node of `region` forges within `within` (`what` names the
    /// wait), how long it took is recorded as `figure` against `bound`, and nobody overlapped
    /// (`scenario` tags the check). The new forger and how long it took (ms).
    pub(crate) async fn moved_to(
        &mut self,
        region: &str,
        since: u64,
        within: Duration,
        what: &str,
        figure: &str,
        bound: Duration,
        scenario: &str,
    ) -> (String, f64) {
        let forger = self.expect_forger_in(region, within, what).await;
        let took = self
            .took_over_ms(region, since)
            .unwrap_or_else(|| panic!("forging_on in {region}"));
        self.record(figure, took, bound);
        self.assert_no_overlap(scenario, since);
        (forger, took)
    }

    /// The whole `region` dead: its nodes and managers SIGKILLed, its API server stopped.
    pub(crate) fn kill_region(&mut self, region: &str) {
        let w = self.world(region);
        for i in 0..w.pods.len() {
            w.kill_node(i);
            w.signal_manager(i, nix::sys::signal::Signal::SIGKILL);
        }
        w.apiserver.stop();
    }

    pub(crate) fn record(&mut self, scenario: &str, took_ms: f64, bound: Duration) {
        let bound_ms = bound.as_secs_f64() * 1e3;
        eprintln!("{scenario}: fault -> new forger {took_ms:.0} ms (argument's bound {bound_ms:.0} ms)");
        self.figures.push((scenario.to_string(), took_ms, bound_ms));
    }

    /// Nobody but `forger` forges for `d` (checked every 100 ms).
    pub(crate) async fn only(&self, forger: &str, d: Duration, what: &str) {
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

    pub(crate) fn stop(&mut self) {
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
