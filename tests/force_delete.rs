//! F13 with real processes: a StatefulSet pod force-deleted while its old incarnation still runs
//! (a NotReady node: `kubectl delete pod --force`) is replaced by a pod of the same name and a
//! new UID. With `POD_UID` in the Lease holder identity the successor finds the Lease held by
//! *another* identity and waits out the old tenure; without it, it would renew the Lease as its
//! own at once while the old incarnation's node may still forge.
//!
//! Three pods under the node guard, realistic nodes, 4 s lease. The old incarnation is frozen
//! (SIGSTOP of its sidecar) and a successor sidecar with a new `POD_UID` is started for the same
//! pod name. Nobody may write the Lease until the old tenure has run out.

use std::{path::PathBuf, time::Duration};

use forge_sim::{
    timeline::unix_now_ns,
    world::{World, WorldOptions},
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use nix::sys::signal::Signal;

const LEASE: Duration = Duration::from_secs(4);
const RETRY: Duration = Duration::from_millis(500);
const OLD_UID: &str = "6f1d1a52-0b7e-4c1e-9a51-000000000001";
const NEW_UID: &str = "6f1d1a52-0b7e-4c1e-9a51-000000000002";

/// The Lease's holder and `renewTime` (Unix ns).
async fn lease(api: &Api<Lease>) -> Option<(String, u64)> {
    let l = api.get_opt("cardano-node-leader").await.ok()??;
    let spec = l.spec?;
    let renewed = u64::try_from(spec.renew_time?.0.as_nanosecond()).ok()?;
    Some((spec.holder_identity.unwrap_or_default(), renewed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_of_a_force_deleted_pod_waits_out_the_old_tenure() {
    let test = "a_successor_of_a_force_deleted_pod_waits_out_the_old_tenure";
    if !forge_sim::apiserver::runs_for_test(test) {
        return;
    }
    let mut o = WorldOptions::realistic(PathBuf::from(env!("CARGO_BIN_EXE_forge-manager")), 3);
    o.guard = true;
    o.extra_env = vec![("POD_UID".into(), OLD_UID.into())];
    let mut w = World::start(o).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    let (name, _) = w
        .wait_for_single_forger(LEASE + Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|| panic!("no forger: {:?}\n{}", w.forging_now(), w.manager_log(0)));
    let i = w.index_of(&name).expect("pod");
    let leases: Api<Lease> = Api::namespaced(w.apiserver.client("admin").await.expect("admin"), "default");
    let (holder, _) = lease(&leases).await.expect("a Lease");
    assert_eq!(
        holder,
        format!("{name}_{OLD_UID}"),
        "the holder identity carries the pod UID"
    );

    // The force-delete: the old incarnation freezes where it runs, its successor starts.
    let t0 = unix_now_ns();
    w.signal_manager(i, Signal::SIGSTOP);
    let mut old = w.pods[i].manager.take().expect("old incarnation");
    w.options_mut().extra_env = vec![("POD_UID".into(), NEW_UID.into())];
    // A new pod has its own address: the frozen one still holds the old port.
    let port = forge_sim::apiserver::free_ports(1).expect("a free port")[0];
    w.pods[i].http = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    w.start_manager(i)
        .await
        .unwrap_or_else(|e| panic!("{test}: successor: {e}"));
    let successor_up = unix_now_ns();

    // The first Lease write after the freeze (a request in flight at the SIGSTOP lands within
    // milliseconds; 200 ms leaves room for it).
    let mut first = None;
    let deadline = std::time::Instant::now() + LEASE + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some((h, renewed)) = lease(&leases).await
            && renewed > t0 + 200_000_000
        {
            first = Some((h, renewed));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = old.kill();
    let _ = old.wait();
    let (holder, renewed) = first.unwrap_or_else(|| panic!("nobody wrote the Lease after the force-delete"));
    let after_ms = (renewed - t0) as f64 / 1e6;
    eprintln!(
        "{test}: {name} frozen; successor up {:.0} ms later; first Lease write {after_ms:.0} ms after the freeze, by {holder}",
        (successor_up - t0) as f64 / 1e6
    );
    // The old holder's last renewal was at most one retry period before the freeze; no one may
    // write before its lease duration has passed since then.
    assert!(
        after_ms >= (LEASE - RETRY).as_millis() as f64,
        "the Lease was written {after_ms:.0} ms after the old incarnation froze, by {holder}: \
         its tenure was not waited out\n{}",
        w.manager_log(i)
    );
    assert_ne!(
        holder,
        format!("{name}_{OLD_UID}"),
        "the frozen holder cannot write"
    );
    // Someone forges again, alone.
    w.wait_for_single_forger(LEASE + Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|| panic!("nobody forges after the force-delete: {:?}", w.forging_now()));
    let v = w.verdict();
    assert_eq!(v.overlap_ms, 0.0, "{v:?}");
    assert!(
        w.forging_without_lease().is_empty(),
        "{:?}",
        w.forging_without_lease()
    );
    let v = w.stop_judged().unwrap_or_else(|e| panic!("no verdict: {e}"));
    assert_eq!(v.overlap_ms, 0.0, "shutdown included: {v:?}");
}
