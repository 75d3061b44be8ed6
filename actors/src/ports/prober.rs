//! The health probe's port: one HTTP probe of the health endpoint.

use std::{collections::BTreeMap, time::Duration};

use futures::future::BoxFuture;

/// Why a health probe failed, in the words an operator reads in the log and in the CFC's
/// `healthStatus.message` (`HTTP 503`, `timeout after 2s`, the TLS or connection error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeFailed(pub String);

/// The HealthProber's client: one probe of a health endpoint. The call must end within
/// `timeout` on its own.
pub trait Prober: Send + Sync + 'static {
    /// Healthy iff `url` answers 200 within `timeout` (after redirects), sent with `headers`.
    fn probe(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), ProbeFailed>>;
}
