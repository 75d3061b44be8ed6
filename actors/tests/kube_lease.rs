//! Contract of the Lease adapter against the real kube-apiserver: version-checked writes, a
//! deadline on every call, and a watch that sees changes.
use std::time::Duration;

use forge_actors::{
    adapters::{kube::client, kube_lease::KubeLeases},
    ports::ApiError,
};
use forge_sim::{
    apiserver::{ApiServer, ApiServerOptions, start_for_test},
    proxy::FaultProxy,
};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::LeaseSpec;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Starts a real API server, or returns None (loudly) when `FORGE_SKIP_APISERVER_TESTS=1`.
async fn start(test: &str) -> Option<ApiServer> {
    start_for_test(test, ApiServerOptions::with_identities(["pod-0", "pod-1"])).await
}

/// A lease record renewed now. The renew time must change on every write: the API server
/// skips an update that changes nothing, and then the resourceVersion stays the same.
fn spec(holder: &str) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(15),
        renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            jiff::Timestamp::now(),
        )),
        ..LeaseSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_writes_are_version_checked_and_watched() {
    let Some(server) = start("lease_writes_are_version_checked_and_watched").await else {
        return;
    };
    let a = KubeLeases::new(
        client(server.kubeconfig("pod-0"), TIMEOUT).await.expect("client"),
        "default",
        "leader",
        TIMEOUT,
    );
    let b = KubeLeases::new(
        client(server.kubeconfig("pod-1"), TIMEOUT).await.expect("client"),
        "default",
        "leader",
        TIMEOUT,
    );
    assert!(a.get().await.expect("get").is_none(), "no lease yet");

    let mut watch = Box::pin(b.watch(Duration::from_secs(30)));
    let created = a.create(spec("pod-0")).await.expect("create");
    let err = b.create(spec("pod-1")).await.expect_err("second create");
    assert!(matches!(err, ApiError::Conflict(_)), "{err}");

    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("event in time");
    let seen = seen.expect("stream open").expect("no error").expect("an object");
    assert_eq!(
        seen.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("pod-0")
    );

    let rv = created.metadata.resource_version.clone().expect("rv");
    let renewed = a
        .replace(&rv, spec("pod-0"))
        .await
        .expect("renew with current rv");
    let err = b
        .replace(&rv, spec("pod-1"))
        .await
        .expect_err("stale rv must lose");
    assert!(matches!(err, ApiError::Conflict(_)), "{err}");
    assert_eq!(err.kind().as_str(), "conflict");

    let current = a.get().await.expect("get").expect("exists");
    assert_eq!(
        current.metadata.resource_version,
        renewed.metadata.resource_version
    );
    assert_eq!(
        current.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("pod-0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_api_server_fails_each_call_within_its_deadline() {
    let Some(server) = start("a_blackholed_api_server_fails_each_call_within_its_deadline").await else {
        return;
    };
    let proxy = FaultProxy::start_local(server.addr()).await.expect("proxy");
    let kubeconfig = server
        .kubeconfig_via("pod-0", proxy.handle().local_addr())
        .expect("kubeconfig");
    let leases = KubeLeases::new(
        client(Some(&kubeconfig), TIMEOUT).await.expect("client"),
        "default",
        "l",
        TIMEOUT,
    );
    assert!(leases.get().await.expect("through the proxy").is_none());

    proxy.handle().blackhole();
    let started = std::time::Instant::now();
    let err = leases.get().await.expect_err("hangs, then times out");
    let took = started.elapsed();
    assert!(matches!(err, ApiError::Timeout { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(took < TIMEOUT * 3, "gave up after {took:?}, deadline {TIMEOUT:?}");

    proxy.handle().pass();
    assert!(leases.get().await.expect("healed").is_none());
}
