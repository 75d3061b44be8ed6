//! The launcher itself: start, readiness, kubeconfigs, several servers at once, and no stray
//! processes after stop.
mod common;

use std::time::Duration;

use forge_sim::apiserver::ApiServerOptions;
use forge_sim::process::{is_alive, rss_kib};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_run_at_once_and_leave_no_process_behind() {
    let opts = ApiServerOptions::with_identities(["pod-0", "pod-1"]);
    let (a, b) = tokio::join!(
        common::start_apiserver("server a", opts.clone()),
        common::start_apiserver("server b", opts)
    );
    let (Some(mut a), Some(b)) = (a, b) else { return };
    assert_ne!(a.addr(), b.addr());

    for server in [&a, &b] {
        for id in ["admin", "pod-0", "pod-1"] {
            let client = server.client(id).await.expect("client");
            let v = client.apiserver_version().await.expect("version");
            assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "20"));
        }
    }
    let (etcd, kas) = a.pids();
    let (etcd, kas) = (etcd.expect("etcd pid"), kas.expect("apiserver pid"));
    eprintln!(
        "RSS: kube-apiserver {} KiB, etcd {} KiB; start-to-ready {:?} and {:?}",
        rss_kib(kas).unwrap_or(0),
        rss_kib(etcd).unwrap_or(0),
        a.startup_time(),
        b.startup_time()
    );
    let dir = a.dir().expect("dir").to_owned();
    assert!(is_alive(etcd) && is_alive(kas));

    let t = std::time::Instant::now();
    a.stop();
    eprintln!("stop took {:?}", t.elapsed());
    assert!(!is_alive(etcd), "etcd {etcd} still running");
    assert!(!is_alive(kas), "kube-apiserver {kas} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());

    // b is unaffected by a's stop.
    b.client("admin")
        .await
        .expect("client")
        .apiserver_version()
        .await
        .expect("b still serves");
    let (etcd, kas) = b.pids();
    drop(b);
    assert!(!is_alive(etcd.expect("pid")) && !is_alive(kas.expect("pid")));
    tokio::time::sleep(Duration::from_millis(1)).await;
}
