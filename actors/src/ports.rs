//! Ports: the traits between actors and adapters (docs/architecture.md, "Conventions"). Actors
//! depend on these, never on an adapter, so actor tests run on in-memory implementations without
//! HTTP; `src/` wires the real adapters in.

use forge_core::lease::LeaseRecord;
use futures::{future::BoxFuture, stream::BoxStream};

use crate::adapters::kube::KubeApiError;

/// A fieldless enum whose variants are bounded labels: `as_str` (and `Display`) give the label
/// value logs and metrics carry.
macro_rules! labels {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels! {
    /// What kind of Kubernetes API failure (`forge_manager_kube_api_errors_total{kind}`).
    pub enum ApiErrorKind {
        /// 409: the object changed (or exists already).
        Conflict => "conflict",
        /// 404.
        NotFound => "not_found",
        /// 422 and other validation refusals.
        Invalid => "invalid",
        /// 401/403.
        Unauthorized => "unauthorized",
        /// 5xx and other server answers.
        Server => "server",
        /// No answer within the request timeout.
        Timeout => "timeout",
        /// Connection, TLS or decoding failure.
        Transport => "transport",
    }
}

labels! {
    /// What kind of node-guard request failure.
    pub enum GuardErrorKind {
        /// Its socket file is absent: no guard runs (its node exited, or none was started).
        Gone => "guard_gone",
        /// Nothing listens on its socket.
        Unreachable => "guard_unreachable",
        /// It did not answer in time.
        Timeout => "guard_timeout",
        /// It answered with a refusal.
        Refused => "guard_refused",
    }
}

labels! {
    /// What kind of credential-file failure.
    pub enum FileErrorKind {
        /// A source could not be read.
        Read => "read",
        /// A source is larger than any credential file.
        TooLarge => "too_large",
        /// A target could not be written.
        Write => "write",
        /// A target could not be removed.
        Remove => "remove",
    }
}

/// A Lease record with the `resourceVersion` it was read or written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSnapshot {
    /// The leader-election fields.
    pub record: LeaseRecord,
    /// The precondition for the next write.
    pub resource_version: Option<String>,
}

/// The local Lease as the LeaseElector needs it. Every call must time out on its own, well
/// within the renew deadline.
pub trait LeaseApi: Send + Sync + 'static {
    /// The Lease, or `None` when it does not exist.
    fn get(&self) -> BoxFuture<'static, Result<Option<LeaseSnapshot>, KubeApiError>>;
    /// Creates it; [`KubeApiError::Conflict`] when it exists already.
    fn create(&self, record: LeaseRecord) -> BoxFuture<'static, Result<LeaseSnapshot, KubeApiError>>;
    /// Replaces it if still at `resource_version`; [`KubeApiError::Conflict`] otherwise.
    fn replace(
        &self,
        resource_version: String,
        record: LeaseRecord,
    ) -> BoxFuture<'static, Result<LeaseSnapshot, KubeApiError>>;
    /// Every change: `Some` on create/modify, `None` on delete; an `Err` item means the watch
    /// failed and the caller should restart it.
    fn watch(&self) -> BoxStream<'static, Result<Option<LeaseSnapshot>, KubeApiError>>;
}
