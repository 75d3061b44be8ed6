//! [`MemoryPeers`]: the peer regions' API servers behind the [`PeerApi`] port, in memory: each
//! peer's CardanoForgeCluster and Lease as [`MemoryObject`]s, and peers that cannot be reached.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

use forge_core::crd::CardanoForgeCluster;
use futures::{FutureExt, future::BoxFuture};
use k8s_openapi::api::coordination::v1::Lease;

use super::MemoryObject;
use crate::ports::{ApiError, PeerApi, PeerObjects};

struct Peer {
    cfc: MemoryObject<CardanoForgeCluster>,
    lease: MemoryObject<Lease>,
    reachable: bool,
}

/// Peer regions in memory, none at first; a peer not added is unreachable. Cheap to clone;
/// clones share the peers.
#[derive(Clone, Default)]
pub struct MemoryPeers(Arc<Mutex<BTreeMap<String, Peer>>>);

impl MemoryPeers {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Peer>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Peer `name` (reachable), with its CardanoForgeCluster (named `name`) and its Lease (named
    /// `lease`), both absent until the test writes them.
    pub fn add(&self, name: &str, lease: &str) -> (MemoryObject<CardanoForgeCluster>, MemoryObject<Lease>) {
        let peer = Peer {
            cfc: MemoryObject::new(name),
            lease: MemoryObject::new(lease),
            reachable: true,
        };
        let objects = (peer.cfc.clone(), peer.lease.clone());
        self.lock().insert(name.to_owned(), peer);
        objects
    }

    /// Whether peer `name`'s API server can be reached (new connections only).
    pub fn set_reachable(&self, name: &str, reachable: bool) {
        if let Some(p) = self.lock().get_mut(name) {
            p.reachable = reachable;
        }
    }
}

impl PeerApi for MemoryPeers {
    fn connect(&self, peer: &str) -> BoxFuture<'static, Result<PeerObjects, ApiError>> {
        let answer = match self.lock().get(peer) {
            Some(p) if p.reachable => Ok(PeerObjects {
                cfc: Arc::new(p.cfc.clone()),
                lease: Arc::new(p.lease.clone()),
            }),
            _ => Err(ApiError::Transport(format!("peer region {peer:?} unreachable"))),
        };
        futures::future::ready(answer).boxed()
    }
}
