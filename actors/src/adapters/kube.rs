//! Kubernetes client construction and error classification shared by the Kubernetes adapters.
//!
//! kube-rs has no read timeout by default, so a request to a blackholed API server hangs forever;
//! every call the adapters make goes through [`with_timeout`], well inside the renew deadline (gap
//! G-14 of the reference in docs/architecture.md: a hung call let the lease expire while keys
//! stayed in place).

use std::{future::Future, path::Path, time::Duration};

use crate::ports::ApiErrorKind;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// A failed Kubernetes API call, classified for retry decisions, metrics and status reasons.
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    /// 409: someone else wrote first (stale resourceVersion) or the object already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 422 or 400: the server refused the object (schema, validation).
    #[error("rejected by the API server: {0}")]
    Invalid(String),
    /// 401 or 403: credentials or RBAC.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// Any other status from the server (5xx, 429, ...).
    #[error("API server answered {code}: {message}")]
    Server {
        /// HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// No answer within our own deadline.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// What was attempted.
        op: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// Connection, TLS or decoding failure.
    #[error("transport: {0}")]
    Transport(String),
}

impl KubeApiError {
    /// Bounded label for `forge_manager_kube_api_errors_total{kind}` and status reasons.
    pub fn kind(&self) -> ApiErrorKind {
        match self {
            KubeApiError::Conflict(_) => ApiErrorKind::Conflict,
            KubeApiError::NotFound(_) => ApiErrorKind::NotFound,
            KubeApiError::Invalid(_) => ApiErrorKind::Invalid,
            KubeApiError::Unauthorized(_) => ApiErrorKind::Unauthorized,
            KubeApiError::Server { .. } => ApiErrorKind::Server,
            KubeApiError::Timeout { .. } => ApiErrorKind::Timeout,
            KubeApiError::Transport(_) => ApiErrorKind::Transport,
        }
    }

    /// Whether trying again (after re-reading, for a conflict) can succeed. Authorization and
    /// validation failures are configuration problems and are not retried blindly.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, KubeApiError::Invalid(_) | KubeApiError::Unauthorized(_))
    }
}

impl From<kube::Error> for KubeApiError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match status.code {
                    409 => KubeApiError::Conflict(message),
                    404 => KubeApiError::NotFound(message),
                    400 | 422 => KubeApiError::Invalid(message),
                    401 | 403 => KubeApiError::Unauthorized(message),
                    code => KubeApiError::Server { code, message },
                }
            }
            other => KubeApiError::Transport(other.to_string()),
        }
    }
}

/// Runs one API call under a deadline.
pub async fn with_timeout<T>(
    op: &'static str,
    after: Duration,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, KubeApiError> {
    match tokio::time::timeout(after, call).await {
        Ok(result) => result.map_err(KubeApiError::from),
        Err(_) => Err(KubeApiError::Timeout { op, after }),
    }
}

/// A client from a kubeconfig file, or from the environment (in-cluster service account, then
/// `KUBECONFIG`) when `kubeconfig` is `None`. The connect timeout is bounded by `timeout`; the
/// read timeout stays unset because watches are long-lived, and per-call deadlines come from
/// [`with_timeout`].
pub async fn client(kubeconfig: Option<&Path>, timeout: Duration) -> Result<Client, KubeApiError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| {
                KubeApiError::Transport(format!("reading kubeconfig {}: {e}", path.display()))
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| KubeApiError::Transport(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => Config::infer()
            .await
            .map_err(|e| KubeApiError::Transport(format!("no Kubernetes config: {e}")))?,
    };
    config.connect_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| KubeApiError::Transport(e.to_string()))
}

/// Whether `candidate` is a later `resourceVersion` of the same object than `known`: false only
/// when both are decimal numbers (as the API server's etcd revisions are) and `candidate` is
/// not greater. Used to drop a watch event that repeats or predates what a read or a write
/// already showed (a watch restarted from the server's cache may deliver old news); a version
/// that is not a number is taken as new (the caller's other checks still hold).
pub fn newer_resource_version(candidate: Option<&str>, known: Option<&str>) -> bool {
    match (
        candidate.and_then(|c| c.parse::<u64>().ok()),
        known.and_then(|k| k.parse::<u64>().ok()),
    ) {
        (Some(c), Some(k)) => c > k,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::newer_resource_version;

    #[test]
    fn only_a_greater_numeric_version_is_older_news_proof() {
        assert!(newer_resource_version(Some("12"), Some("11")));
        assert!(!newer_resource_version(Some("11"), Some("11")));
        assert!(!newer_resource_version(Some("9"), Some("11")));
        assert!(newer_resource_version(Some("9"), None));
        assert!(newer_resource_version(None, Some("11")));
        assert!(newer_resource_version(Some("abc"), Some("11")));
    }
}
