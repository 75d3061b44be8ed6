//! Several regions of one pool as the multi-region scenarios use them: one [`World`] per region
//! (its own API server), cluster management on, each region reading the others through fault
//! proxies ([`start_regions`]). The merged node timelines of all regions are the judge.

use std::time::{Duration, Instant};

use forge_core::crd::CardanoForgeCluster;
use kube::{
    Api,
    api::{Patch, PatchParams},
};

use crate::{
    timeline::{EventKind, TimelineEvent, Verdict, judge},
    world::{RegionLinks, World, WorldError, WorldOptions, start_regions},
};

/// The regions of a test, in the order given; region `r`'s CardanoForgeCluster is `pool-{r}`.
pub struct Regions {
    /// Region names.
    pub names: Vec<String>,
    /// One world per region, in the order of `names`.
    pub worlds: Vec<World>,
    /// `(observer, peer)` -> the fault proxy the observer's managers read the peer through.
    pub links: RegionLinks,
}

/// For a test's own type of regions, a struct with a `regions: forge_sim::regions::Regions`
/// field and what the test keeps alive beside them (its turn, a witness, a directory): derefs
/// it to the [`Regions`], so the test drives and reads them through it (`r.world("east")`).
#[macro_export]
macro_rules! deref_to_regions {
    ($wrapper:ty) => {
        impl ::std::ops::Deref for $wrapper {
            type Target = $crate::regions::Regions;
            fn deref(&self) -> &Self::Target {
                &self.regions
            }
        }

        impl ::std::ops::DerefMut for $wrapper {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.regions
            }
        }
    };
}

impl Regions {
    /// Starts one API server per region, then every region's pods: `regions` is
    /// `(region, priority)`, `options(region)` each world's options, `extra(region)` more
    /// environment.
    pub async fn start<P: std::fmt::Display>(
        regions: &[(&str, P)],
        options: impl Fn(&str) -> WorldOptions,
        extra: impl Fn(&str) -> Vec<(String, String)>,
    ) -> Result<Regions, WorldError> {
        let (worlds, links) = start_regions(regions, options, extra).await?;
        Ok(Regions {
            names: regions.iter().map(|(r, _)| (*r).to_string()).collect(),
            worlds,
            links,
        })
    }

    /// The position of `region`; panics on a name the test did not start.
    pub fn index(&self, region: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == region)
            .unwrap_or_else(|| panic!("no region {region}"))
    }

    /// The world of `region`.
    pub fn world(&mut self, region: &str) -> &mut World {
        let i = self.index(region);
        &mut self.worlds[i]
    }

    /// Every region's node timeline events.
    pub fn events(&self) -> Vec<TimelineEvent> {
        self.worlds.iter().flat_map(|w| w.events()).collect()
    }

    /// The verdict on the merged timelines.
    pub fn verdict(&self) -> Verdict {
        judge(&self.events())
    }

    /// The nodes forging now, in every region.
    pub fn forging_now(&self) -> Vec<String> {
        self.worlds.iter().flat_map(|w| w.forging_now()).collect()
    }

    /// Waits until exactly one node forges, in `region`; returns it and the time waited.
    pub async fn wait_for_forger_in(&self, region: &str, within: Duration) -> Option<(String, Duration)> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let [one] = self.forging_now().as_slice()
                && one.starts_with(&format!("{region}-"))
            {
                return Some((one.clone(), started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Waits until the nodes forging now are exactly `want` (sorted), up to `within`.
    pub async fn wait_forging(&self, want: &[&str], within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            let mut now = self.forging_now();
            now.sort();
            if now == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// How many `forging_on` events, in every region, came while the node's pod held no Lease.
    pub fn without_lease(&self) -> usize {
        self.worlds.iter().map(|w| w.forging_without_lease().len()).sum()
    }

    /// The first `forging_on` in `region` at or after `since_ns`, in ms after it.
    pub fn took_over_ms(&self, region: &str, since_ns: u64) -> Option<f64> {
        let mut events = self.events();
        events.sort_by_key(|e| e.t_unix_ns);
        events
            .iter()
            .find(|e| {
                e.event == EventKind::ForgingOn
                    && e.node.starts_with(&format!("{region}-"))
                    && e.t_unix_ns >= since_ns
            })
            .map(|e| (e.t_unix_ns - since_ns) as f64 / 1e6)
    }

    /// The CardanoForgeClusters of `region`'s API server, as its admin.
    pub async fn cfcs(&self, region: &str) -> Api<CardanoForgeCluster> {
        let c = crate::apiserver::client_from_kubeconfig(
            self.worlds[self.index(region)].apiserver.admin_kubeconfig(),
            Some(Duration::from_secs(5)),
        )
        .await
        .expect("admin client");
        Api::namespaced(c, "default")
    }

    /// Merge-patches `pool-{region}`'s spec, as an operator's `kubectl patch` does.
    pub async fn patch_spec(&self, region: &str, spec: serde_json::Value) {
        self.cfcs(region)
            .await
            .patch(
                &format!("pool-{region}"),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patching pool-{region}: {e}"));
    }

    /// The last 15 log lines of every sidecar, for a failure message.
    pub fn logs(&self) -> String {
        self.log_tails(15)
    }

    /// The last `lines` log lines of every sidecar, each under its pod's name.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for w in &self.worlds {
            for (i, p) in w.pods.iter().enumerate() {
                let log = w.manager_log(i);
                let tail: Vec<&str> = log.lines().rev().take(lines).collect();
                out.push_str(&format!("--- {} ---\n", p.name));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}
