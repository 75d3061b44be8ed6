//! Helpers shared by the integration tests of forge-sim.
#![allow(dead_code)]

use forge_sim::apiserver::{ApiServer, ApiServerOptions, apiserver_binary};

/// Env var that lets a machine without the kube-apiserver binary skip the tests that need it.
pub const SKIP_ENV: &str = "FORGE_SKIP_APISERVER_TESTS";

/// Starts a real API server, or returns None (loudly) when `FORGE_SKIP_APISERVER_TESTS=1`.
/// A missing binary without that variable is a test failure that says how to build it.
pub async fn start_apiserver(test: &str, opts: ApiServerOptions) -> Option<ApiServer> {
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!("\n!!! SKIPPED {test}: {SKIP_ENV}=1, the real kube-apiserver tests do not run !!!\n");
        return None;
    }
    if let Err(e) = apiserver_binary() {
        panic!("{test}: {e}");
    }
    match ApiServer::start(opts).await {
        Ok(s) => {
            eprintln!(
                "{test}: kube-apiserver ready at {} after {:?}",
                s.url(),
                s.startup_time()
            );
            Some(s)
        }
        Err(e) => panic!("{test}: starting the API server failed: {e}"),
    }
}
