//! Ports: the traits between actors and adapters (docs/architecture.md, "Conventions"). Actors
//! depend on these, never on an adapter, so actor tests run on in-memory implementations without
//! HTTP, sockets or files; [`crate::system::Adapters`] carries one implementation of each.
//!
//! | port | outside thing | used by | adapter | in-memory double (`testing`) |
//! |---|---|---|---|---|
//! | [`LeaseApi`] | a Lease (ours, a forge ticket) | LeaseElector, TicketKeeper | `kube_lease` | `MemoryLeases` |
//! | [`ForgeClusterApi`] | our CardanoForgeCluster | ClusterWatcher, StatusWriter | `kube_object` | `MemoryObject` |
//! | [`LeaderApi`] | our CardanoLeader | StatusWriter | `kube_object` | `MemoryObject` |
//! | [`Prober`] | the health endpoint (HTTP) | HealthProber | `http_probe` | `ScriptedProber` |
//! | [`CredentialStore`] | the credential files the node reads | CredentialKeeper | `fs_credentials` | `MemoryCredentials` |
//! | [`CredentialSource`] | the source credential files and their watch | CredentialKeeper | `fs_credentials` | `MemorySources` |
//! | [`PodEvents`] | Kubernetes Events about this pod | CredentialKeeper | `kube_events` | `RecordedEvents` |
//! | [`NodeGuard`] | the node guard's socket | NodeSignaller, NodeWatcher | `guard` | `MemoryGuard` |
//! | [`NodeHost`] | the node's socket, `/proc` and pidfd signals | NodeWatcher, NodeSignaller | `process` | `MemoryNode` |
//! | [`PeerApi`] | the peer regions' API servers (through their kubeconfigs) | PeerWatcher | `kube_peer` | `MemoryPeers` |
//! | [`TicketApi`] | the quorum participants' API servers, each holding its forge ticket (ours through our client, the others through their kubeconfigs) | TicketKeeper | `kube_ticket` | `MemoryTickets` |
//! | [`ChainSource`] | the node's metrics endpoint (HTTP) and the leader schedule file | ChainWatcher | `node_chain` | `MemoryChain` |
//!
//! The ports are grouped by what they reach: `api.rs` (Kubernetes), `credentials.rs` (the
//! credential files), `node.rs` (the node and its guard), `prober.rs` (HTTP), `chain.rs` (the
//! node's tip and the leader schedule); every name is re-exported here.
//!
//! Each port owns its error type ([`ApiError`], [`ProbeFailed`], [`CredentialFileError`],
//! [`SourceWatchError`], [`GuardError`], [`DiscoveryError`], [`SignalError`], [`TipError`],
//! [`ScheduleFileError`]): an adapter maps its library's errors into it. Not behind a port: the
//! files the configuration names that are read once while the system is built, before any actor
//! runs (`SHELLEY_GENESIS`: an unusable one stops the start).

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

mod api;
mod chain;
mod credentials;
mod node;
mod prober;

pub use api::*;
pub use chain::*;
pub use credentials::*;
pub use node::*;
pub use prober::*;
