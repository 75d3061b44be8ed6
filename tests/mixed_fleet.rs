//! A mixed fleet (docs/migrating-from-reference.md, finding F14): region `ours` runs our sidecars
//! (two pods, realistic node simulators, cluster management on), and its peer region `ref` still
//! runs the reference sidecar. The reference region is simulated on its own real kube-apiserver:
//! the test writes its CardanoForgeCluster status as the reference writes it (`activeLeader`,
//! `forgingEnabled`, `effectiveState`, `effectivePriority`, ... and no `claimProtocol`; `true`
//! only after its node started forging) and holds its Lease as the reference's leader does (its
//! pod name as `holderIdentity`, renewed every second). When the reference region's node forges
//! is the test's claim, merged with our nodes' timelines for the judge.
//!
//! What the migration page promises, checked here: our region never starts on the reference
//! peer's `forgingEnabled: false` while that peer's Lease is held (it waits with
//! `awaiting_peer_confirmation`, naming the peer, in its CardanoForgeCluster status and its
//! metrics), and it takes over once the reference region's Lease has gone unrenewed for a lease
//! duration. Over the whole run, 0 ms of two forgers.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use forge_core::{crd::CardanoForgeCluster, lease::LeaseRecord};
use forge_sim::{
    proxy::FaultProxy,
    regions::Regions,
    timeline::{EventKind, TimelineEvent, judge, unix_now_ns},
    world::{World, WorldOptions},
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};

/// The sidecars' default Lease name (no `LEASE_NAME`, no `POOL_ID`): the reference's too.
const LEASE: &str = "cardano-node-leader";
/// The reference region's leader pod.
const REF_LEADER: &str = "ref-0";
/// The reference region's Lease duration, as written in its Lease (our worlds use 4 s too).
const REF_LEASE_S: u64 = 4;
/// Room for a loaded 2-core machine.
const ALLOWANCE: Duration = Duration::from_secs(4);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// The reference region: its API server's admin client, its Lease renewer, and the intervals in
/// which its node forges (timeline events of a process the test stands in for).
struct Reference {
    cfcs: Api<CardanoForgeCluster>,
    leases: Api<Lease>,
    renewing: Arc<AtomicBool>,
    /// Unix ns at which the last renewal that reached the API server was sent.
    last_renew_ns: Arc<AtomicU64>,
    renewer: tokio::task::JoinHandle<()>,
    events: Vec<TimelineEvent>,
    started_ns: u64,
}

impl Reference {
    /// Creates `pool-ref` (Priority-based, priority 2) and its status as the reference's leader
    /// writes it, not forging yet; its Lease held by [`REF_LEADER`] and renewed every second.
    async fn start(world: &World) -> Reference {
        let admin = world.apiserver.client("admin").await.expect("admin client");
        let cfcs: Api<CardanoForgeCluster> = Api::namespaced(admin.clone(), "default");
        let leases: Api<Lease> = Api::namespaced(admin, "default");
        let cfc: CardanoForgeCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "cardano.io/v1",
            "kind": "CardanoForgeCluster",
            "metadata": { "name": "pool-ref", "namespace": "default" },
            "spec": {
                "forgeState": "Priority-based",
                "priority": 2,
                "region": "ref",
                "network": { "name": "mainnet", "magic": 764824073 }
            }
        }))
        .expect("a CFC");
        cfcs.create(&PostParams::default(), &cfc)
            .await
            .expect("creating pool-ref");
        let now = jiff::Timestamp::now();
        let record = LeaseRecord {
            holder_identity: Some(REF_LEADER.into()),
            lease_duration_seconds: Some(REF_LEASE_S as i32),
            acquire_time: Some(now),
            renew_time: Some(now),
            lease_transitions: Some(0),
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(LEASE.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: Some(record.to_spec()),
        };
        let last_renew_ns = Arc::new(AtomicU64::new(unix_now_ns()));
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("creating the reference's Lease");
        let renewing = Arc::new(AtomicBool::new(true));
        let renewer = tokio::spawn({
            let (leases, renewing, last) = (leases.clone(), renewing.clone(), last_renew_ns.clone());
            async move {
                while renewing.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if !renewing.load(Ordering::SeqCst) {
                        return;
                    }
                    let sent = unix_now_ns();
                    let patch = serde_json::json!({ "spec": {
                        "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now())
                    }});
                    if leases
                        .patch(LEASE, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .is_ok()
                    {
                        last.store(sent, Ordering::SeqCst);
                    }
                }
            }
        });
        let started_ns = unix_now_ns();
        let mut r = Reference {
            cfcs,
            leases,
            renewing,
            last_renew_ns,
            renewer,
            events: Vec::new(),
            started_ns,
        };
        r.event(EventKind::Start);
        r.write_status(false, "Priority-based").await;
        r
    }

    fn event(&mut self, kind: EventKind) {
        self.events.push(TimelineEvent {
            proc_start_ns: self.started_ns,
            ..TimelineEvent::now(
                REF_LEADER,
                kind,
                "the reference region's node (as the test claims it)",
            )
        });
    }

    /// The status the reference's leader writes every loop: no `claimProtocol`.
    async fn write_status(&self, forging: bool, state: &str) {
        let status = serde_json::json!({ "status": {
            "activeLeader": REF_LEADER,
            "forgingEnabled": forging,
            "effectiveState": state,
            "effectivePriority": 2,
            "reason": if forging { "leader_elected" } else { "not_leader" },
            "message": "written as the reference sidecar writes it",
            "lastTransition": jiff::Timestamp::now().to_string(),
            "observedGeneration": 1,
        }});
        self.cfcs
            .patch_status("pool-ref", &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("writing pool-ref's status");
    }

    /// The reference's leader makes its node forge (SIGHUP), then writes `forgingEnabled: true`
    /// at its next loop, `status_after` later.
    async fn forge(&mut self, status_after: Duration) {
        self.event(EventKind::ForgingOn);
        tokio::time::sleep(status_after).await;
        self.write_status(true, "Priority-based").await;
    }

    /// An operator set the reference region `Disabled`: its leader stops its node, then writes
    /// `forgingEnabled: false`, and goes on leading its region (its Lease renewed).
    async fn disabled(&mut self) {
        self.event(EventKind::ForgingOff);
        self.write_status(false, "Disabled").await;
    }

    /// The reference region's pods are deleted: its node stops with them, nobody renews its
    /// Lease any more (still naming [`REF_LEADER`]), and its status stays as last written.
    /// Returns when the last renewal was sent (unix ns).
    async fn pods_gone(&mut self) -> u64 {
        self.renewing.store(false, Ordering::SeqCst);
        (&mut self.renewer).await.expect("the renewer ends");
        self.event(EventKind::ForgingOff);
        self.event(EventKind::Exit);
        let lease = self.leases.get(LEASE).await.expect("the reference's Lease");
        assert_eq!(
            lease.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(REF_LEADER),
            "left held, unrenewed"
        );
        self.last_renew_ns.load(Ordering::SeqCst)
    }
}

/// Our region's CardanoForgeCluster status: `(reason, message, activeLeader)`.
async fn our_status(r: &Regions) -> Option<(String, String, String)> {
    let cfc = r.cfcs("ours").await.get_opt("pool-ours").await.ok()??;
    let s = cfc.status?;
    Some((
        s.reason?,
        s.message.unwrap_or_default(),
        s.active_leader.unwrap_or_default(),
    ))
}

/// Waits until our region's status reason is `want`; returns its message and leader.
async fn wait_reason(r: &Regions, want: &str, within: Duration) -> (String, String) {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < within {
        last = our_status(r).await;
        if let Some((reason, message, leader)) = &last
            && reason == want
        {
            return (message.clone(), leader.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "our region's reason is not {want} within {within:?}: {last:?}\n{}",
        r.logs()
    );
}

fn ours_forging(r: &Regions) -> Vec<String> {
    r.forging_now()
        .into_iter()
        .filter(|n| n.starts_with("ours-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_next_to_a_reference_region_waits_for_its_lease_not_its_status_and_takes_over_when_it_lapses()
 {
    let test = "a_region_next_to_a_reference_region_waits_for_its_lease_not_its_status_and_takes_over_when_it_lapses";
    if !forge_sim::apiserver::runs_for_test(test) {
        return;
    }
    let options = WorldOptions {
        pod_prefix: "ours".into(),
        ..WorldOptions::scenario(exe(), 2)
    };
    assert_eq!(
        options.lease_duration_s, REF_LEASE_S,
        "both regions on 4 s Leases"
    );
    let (retry, api_timeout, reload_max) =
        (options.retry_period, options.api_timeout, options.node.reload.max);
    let mut ours = World::prepare(options).await.expect("our region's API server");
    // The reference region: its API server only (one identity, `ref-0`, for our readers).
    let reference_world = World::prepare(WorldOptions {
        pod_prefix: "ref".into(),
        ..WorldOptions::fast(exe(), 1)
    })
    .await
    .expect("the reference region's API server");
    let proxy = FaultProxy::start_local(reference_world.apiserver.addr())
        .await
        .expect("proxy");
    let kubeconfig = reference_world
        .apiserver
        .kubeconfig_via(REF_LEADER, proxy.local_addr())
        .expect("kubeconfig");
    ours.options_mut().extra_env = vec![
        ("ENABLE_CLUSTER_MANAGEMENT".into(), "true".into()),
        ("CLUSTER_IDENTIFIER".into(), "pool-ours".into()),
        ("CLUSTER_REGION".into(), "ours".into()),
        ("CLUSTER_PRIORITY".into(), "1".into()),
        (
            "PEER_CLUSTERS".into(),
            format!("pool-ref={}", kubeconfig.display()),
        ),
    ];
    let mut reference = Reference::start(&reference_world).await;
    ours.populate().await.expect("our region's pods");
    let mut links = forge_sim::world::RegionLinks::new();
    links.insert(("ours".into(), "ref".into()), proxy);
    let mut r = Regions {
        names: vec!["ours".into(), "ref".into()],
        worlds: vec![ours, reference_world],
        links,
    };

    // (1) The reference region forges (status `true` a second after its node started). Our
    // region is the better one (priority 1) but waits for it to stop.
    reference.forge(Duration::from_secs(1)).await;
    let (message, leader) = wait_reason(&r, "awaiting_peer_stop", Duration::from_secs(30)).await;
    eprintln!("(1) {leader}: {message}");
    assert!(ours_forging(&r).is_empty(), "{:?}", r.forging_now());

    // (2) An operator disables the reference region: its leader stops its node and writes
    // `false`, still leading (its Lease renewed). Without the claim protocol marker that proves
    // nothing: our region keeps waiting, naming the peer, for two lease durations.
    reference.disabled().await;
    let (message, leader) = wait_reason(&r, "awaiting_peer_confirmation", Duration::from_secs(10)).await;
    eprintln!("(2) {leader}: {message}");
    assert!(message.contains("pool-ref"), "{message}");
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_secs(2 * REF_LEASE_S) {
        assert!(
            ours_forging(&r).is_empty(),
            "our region started on an unmarked `false`: {:?}\n{}",
            r.forging_now(),
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (reason, ..) = our_status(&r).await.expect("our status");
    assert_eq!(reason, "awaiting_peer_confirmation");
    let w = &r.worlds[0];
    let i = w.index_of(&leader).expect("our leader is one of our pods");
    let metrics = w.metrics(i).await.unwrap_or_default();
    let counted = metrics.lines().find(|l| {
        l.starts_with("forge_manager_decisions_total{") && l.contains("reason=\"awaiting_peer_confirmation\"")
    });
    assert!(
        counted.is_some_and(|l| !l.ends_with(" 0")),
        "no awaiting_peer_confirmation decision counted:\n{metrics}"
    );
    let peer_forging = metrics
        .lines()
        .find(|l| l.starts_with("cardano_cluster_peer_forging{") && l.contains("pool-ref"));
    assert!(
        peer_forging.is_some_and(|l| l.ends_with(" 0")),
        "the peer's `false` is shown as read: {peer_forging:?}"
    );

    // (3) Back to Priority-based: the reference's leader makes its node forge at once and
    // writes `true` only a second later. Had our region trusted the `false`, two would forge.
    reference.forge(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_reason(&r, "awaiting_peer_stop", Duration::from_secs(10)).await;

    // (4) The reference region's pods are deleted (its status still says `true`): our region
    // takes over once the Lease has gone unrenewed for its duration, and not before.
    let last_renew_ns = reference.pods_gone().await;
    let bound = Duration::from_secs(REF_LEASE_S) + 2 * retry + api_timeout + reload_max + ALLOWANCE;
    let (forger, _) = r
        .wait_for_forger_in("ours", bound + Duration::from_secs(2))
        .await
        .unwrap_or_else(|| {
            panic!(
                "our region did not take over: {:?}\n{}",
                r.forging_now(),
                r.logs()
            )
        });
    let took_ms = r
        .took_over_ms("ours", last_renew_ns)
        .expect("a forging_on in ours");
    eprintln!(
        "(4) {forger} forges {took_ms:.0} ms after the reference's last renewal (lease {REF_LEASE_S} s, bound {} ms)",
        bound.as_millis()
    );
    assert!(
        took_ms >= (REF_LEASE_S * 1000) as f64,
        "started {took_ms:.0} ms after the last renewal, before the Lease lapsed"
    );
    assert!(
        took_ms <= bound.as_secs_f64() * 1e3,
        "took over {took_ms:.0} ms after the last renewal, bound {} ms",
        bound.as_millis()
    );
    let (reason, ..) = our_status(&r).await.expect("our status");
    eprintln!("(4) our reason now: {reason}");

    // The judge: our nodes' timelines and the reference's claimed forging, merged.
    let mut events = r.events();
    events.extend(reference.events.iter().cloned());
    let v = judge(&events);
    eprintln!("merged verdict {v:?}");
    assert_eq!(v.overlap_ms, 0.0, "two forgers: {v:?}");
    assert!(v.max_forgers <= 1, "{v:?}");
    assert!(
        v.forgers.contains(&REF_LEADER.to_string()) && v.forgers.contains(&forger),
        "{v:?}"
    );
    assert_eq!(
        r.without_lease(),
        0,
        "a node of ours forged without its pod's Lease"
    );

    for w in &mut r.worlds {
        w.stop_processes();
    }
    let mut events = r.events();
    events.extend(reference.events.iter().cloned());
    let v = judge(&events);
    for w in &mut r.worlds {
        w.stop();
    }
    eprintln!("shutdown: merged verdict {v:?}");
    assert_eq!(v.overlap_ms, 0.0, "shutdown included: {v:?}");
    assert!(v.forging_at_end.is_empty(), "{v:?}");
}
