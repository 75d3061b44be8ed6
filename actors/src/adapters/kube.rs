//! Kubernetes client construction, and the mapping of kube's errors into the ports'
//! [`ApiError`], shared by the Kubernetes adapters.
//!
//! kube-rs has no read timeout by default, so a request to a blackholed API server hangs forever;
//! every call the adapters make goes through [`with_timeout`], well inside the renew deadline (gap
//! G-14 of the reference in docs/architecture.md: a hung call let the lease expire while keys
//! stayed in place).

use std::{future::Future, path::Path, time::Duration};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::ports::ApiError;

impl From<kube::Error> for ApiError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match status.code {
                    409 => ApiError::Conflict(message),
                    404 => ApiError::NotFound(message),
                    400 | 422 => ApiError::Invalid(message),
                    401 | 403 => ApiError::Unauthorized(message),
                    code => ApiError::Server { code, message },
                }
            }
            other => ApiError::Transport(other.to_string()),
        }
    }
}

/// Runs one API call under a deadline.
pub async fn with_timeout<T>(
    op: &'static str,
    after: Duration,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(after, call).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::Timeout { op, after }),
    }
}

/// A client from a kubeconfig file, or from the environment (in-cluster service account, then
/// `KUBECONFIG`) when `kubeconfig` is `None`. The connect timeout is bounded by `timeout`; the
/// read timeout stays unset because watches are long-lived, and per-call deadlines come from
/// [`with_timeout`].
pub async fn client(kubeconfig: Option<&Path>, timeout: Duration) -> Result<Client, ApiError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| ApiError::Transport(format!("reading kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ApiError::Transport(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => Config::infer()
            .await
            .map_err(|e| ApiError::Transport(format!("no Kubernetes config: {e}")))?,
    };
    config.connect_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| ApiError::Transport(e.to_string()))
}
