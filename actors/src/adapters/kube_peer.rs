//! The peer regions' API servers behind the [`PeerApi`] port: a fresh client from the peer's
//! own kubeconfig at every connect, addressing its CardanoForgeCluster and its Lease.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use futures::{FutureExt, future::BoxFuture};

use super::{kube::client, kube_object::NamedObject};
use crate::ports::{ApiError, PeerApi, PeerObjects};

/// How to reach one peer.
#[derive(Debug, Clone)]
struct Peer {
    kubeconfig: PathBuf,
}

/// The peers' API servers, by peer name (which also names its CardanoForgeCluster).
#[derive(Debug, Clone)]
pub struct KubePeers {
    peers: BTreeMap<String, Peer>,
    namespace: String,
    lease: String,
    timeout: Duration,
}

impl KubePeers {
    /// Peers `(name, kubeconfig)`, their objects in `namespace`, their Lease named `lease`,
    /// every call under `timeout`.
    pub fn new(
        peers: impl IntoIterator<Item = (String, PathBuf)>,
        namespace: &str,
        lease: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            peers: peers
                .into_iter()
                .map(|(name, kubeconfig)| (name, Peer { kubeconfig }))
                .collect(),
            namespace: namespace.to_owned(),
            lease: lease.to_owned(),
            timeout,
        }
    }
}

impl PeerApi for KubePeers {
    fn connect(&self, peer: &str) -> BoxFuture<'static, Result<PeerObjects, ApiError>> {
        let Some(Peer { kubeconfig }) = self.peers.get(peer).cloned() else {
            let e = ApiError::Transport(format!("no kubeconfig for peer region {peer:?}"));
            return futures::future::ready(Err(e)).boxed();
        };
        let (namespace, name, lease, timeout) = (
            self.namespace.clone(),
            peer.to_owned(),
            self.lease.clone(),
            self.timeout,
        );
        async move {
            let c = client(Some(&kubeconfig), timeout).await?;
            Ok(PeerObjects {
                cfc: Arc::new(NamedObject::new(c.clone(), &namespace, &name, timeout)),
                lease: Arc::new(NamedObject::new(c, &namespace, &lease, timeout)),
            })
        }
        .boxed()
    }
}
