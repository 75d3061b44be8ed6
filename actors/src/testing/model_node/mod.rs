//! [`ModelNode`]: a cardano-node under its node guard, in memory, for tests of the whole system
//! (and the actors benchmark). It joins three doubles of [`InMemory`] (the node's process and
//! socket, its guard, the credential files it reads) into what S1 and S2 are about: whether the
//! node forges.
//!
//! The node forges exactly as cardano-node does: it reads the credential files at its start
//! (unless started non-producing) and on every reload, and forges when they are all present. A
//! reload reaches it through its guard (`Reload`) or by SIGHUP to its PID. The guard keeps its
//! rules: a reload is refused without a permit while credential files exist, a `Revoke` fences
//! (removes the files and reloads the node), and every reconfiguration of the node (a SIGHUP by
//! PID too: the guard reads the node's output) is pushed to the subscribers as `observed`, so
//! stops are confirmed as in production. Its exit is pushed as
//! `exited`, then its guard goes (a guard exits with its node). Every change of forging is
//! recorded with its (tokio) instant, and an observer may be told at the instant it happens.

use std::{
    io,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_guard::protocol::{GuardState, Observation, Request};
use futures::{FutureExt, future::BoxFuture, stream::BoxStream};
use rustix::process::Signal;
use tokio::time::Instant;

use super::{InMemory, MemoryCredentials, MemoryGuard, MemoryNode};
use crate::{
    ports::{
        CredentialStore, DiscoveryError, GuardError, GuardReport, NodeGuard, NodeHost, ProcessIdentity,
        SignalError, SocketState,
    },
    system::Adapters,
};

/// Told every change of forging (`true`: the node starts forging), at the instant it happens.
pub type ForgingObserver = Arc<dyn Fn(bool) + Send + Sync>;

#[derive(Default)]
struct Model {
    forging: bool,
    changes: Vec<(Instant, bool)>,
    observer: Option<ForgingObserver>,
}

/// The node of one [`InMemory`] world under its guard. Cheap to clone; clones share the node.
#[derive(Clone)]
pub struct ModelNode {
    /// The node's process and socket.
    pub node: MemoryNode,
    /// Its guard.
    pub guard: MemoryGuard,
    /// The credential files it reads.
    pub credentials: MemoryCredentials,
    model: Arc<Mutex<Model>>,
}

impl ModelNode {
    /// The node of `world` (sharing its doubles). No node process runs yet, so no guard either.
    pub fn of(world: &InMemory) -> Self {
        world.guard.set_present(false);
        Self {
            node: world.node.clone(),
            guard: world.guard.clone(),
            credentials: world.credentials.clone(),
            model: Arc::default(),
        }
    }

    /// `world`'s adapters for `spawn_all` with this node behind the node and guard ports.
    pub fn adapters(&self, world: &InMemory, cfg: &forge_core::config::ValidConfig) -> Adapters {
        let mut adapters = world.adapters(cfg);
        adapters.node = Arc::new(self.clone());
        adapters.guard = Arc::new(self.clone());
        adapters
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Told every later change of forging, at its instant.
    pub fn observe(&self, observer: ForgingObserver) {
        self.lock().observer = Some(observer);
    }

    /// Whether the node forges now.
    pub fn forging(&self) -> bool {
        self.lock().forging
    }

    /// Every change of forging so far, with its instant.
    pub fn forging_changes(&self) -> Vec<(Instant, bool)> {
        self.lock().changes.clone()
    }

    fn set_forging(&self, forging: bool) {
        let observer = {
            let mut m = self.lock();
            if m.forging == forging {
                return;
            }
            m.forging = forging;
            m.changes.push((Instant::now(), forging));
            m.observer.clone()
        };
        if let Some(observe) = observer {
            observe(forging);
        }
    }

    fn files_present(&self) -> bool {
        !self.credentials.present().is_empty()
    }

    /// A node process starts as `pid` under a new guard: with `non_producing` it starts
    /// without forging (`--start-as-non-producing-node`), else it forges if the files are
    /// present now (as cardano-node reads them at its start).
    pub fn start(&self, pid: i32, non_producing: bool) -> ProcessIdentity {
        let args: &[&str] = if non_producing {
            &["cardano-node", "run", "--start-as-non-producing-node"]
        } else {
            &["cardano-node", "run"]
        };
        let identity = self.node.start(pid, args);
        let forging = !non_producing && self.files_present();
        self.guard.push(
            "started",
            GuardState {
                forging: forging.then_some(true),
                child_pid: u32::try_from(pid).unwrap_or_default(),
                ready: true,
                ..GuardState::default()
            },
        );
        self.guard.set_present(true);
        self.set_forging(forging);
        identity
    }

    /// A node process starts as `pid` under a new guard, forging from its start whatever the
    /// files are now: it was started without `--start-as-non-producing-node` while files were
    /// present, and read them then (they may be gone since).
    pub fn start_forging(&self, pid: i32) -> ProcessIdentity {
        let identity = self.start(pid, false);
        let state = GuardState {
            forging: Some(true),
            ..self.guard.state()
        };
        self.guard.push("started", state);
        self.set_forging(true);
        identity
    }

    /// The node process exits, and its guard with it (after pushing `exited`).
    pub fn exit(&self) {
        self.node.exit();
        self.set_forging(false);
        let state = GuardState {
            forging: Some(false),
            ..self.guard.state()
        };
        self.guard.push("exited", state);
        self.guard.set_present(false);
    }

    /// The guard fences on its own (its permit lapsed): the files go, the node reloads and
    /// stops forging, and `lapsed` is pushed.
    pub fn lapse(&self) {
        let _ = self.credentials.remove();
        self.set_forging(false);
        let state = GuardState {
            permit_ms: None,
            forging: Some(false),
            last: Some(Observation::Disabled),
            ..self.guard.state()
        };
        self.guard.push("lapsed", state);
    }

    /// The running node re-reads its files (a SIGHUP); returns whether it forges now.
    fn reloaded(&self) -> bool {
        let forging = self.node.process().is_some() && self.files_present();
        self.set_forging(forging);
        forging
    }

    /// The node reconfigured: its guard pushes the line it saw.
    fn observed(&self, forging: bool) {
        let state = GuardState {
            forging: Some(forging),
            last: Some(if forging {
                Observation::Enabled
            } else {
                Observation::Disabled
            }),
            ..self.guard.state()
        };
        self.guard.push("observed", state);
    }
}

impl NodeGuard for ModelNode {
    fn socket(&self) -> &Path {
        self.guard.socket()
    }

    fn present(&self) -> bool {
        self.guard.present()
    }

    fn request(&self, req: Request) -> BoxFuture<'static, Result<GuardState, GuardError>> {
        if req == Request::Reload
            && self.guard.present()
            && self.guard.state().permit_ms.is_none()
            && self.files_present()
        {
            let refused = GuardError::Refused {
                op: "reload",
                kind: "no_permit".into(),
                error: "no permit is held and memory/kes.skey exists".into(),
            };
            return futures::future::ready(Err(refused)).boxed();
        }
        let answer = self
            .guard
            .request(req)
            .now_or_never()
            .expect("the in-memory guard answers at once");
        if answer.is_ok() {
            match req {
                Request::Reload => {
                    let forging = self.reloaded();
                    self.observed(forging);
                }
                Request::Revoke => {
                    if self.files_present() {
                        let _ = self.credentials.remove();
                        let forging = self.reloaded();
                        self.observed(forging);
                    }
                }
                Request::Permit { .. } | Request::State | Request::Subscribe => {}
            }
        }
        let answer = answer.map(|_| self.guard.state());
        futures::future::ready(answer).boxed()
    }

    fn subscribe(&self) -> BoxFuture<'static, Result<BoxStream<'static, GuardReport>, GuardError>> {
        self.guard.subscribe()
    }
}

impl NodeHost for ModelNode {
    fn check_socket(&self, socket: &Path, timeout: Duration) -> BoxFuture<'static, SocketState> {
        self.node.check_socket(socket, timeout)
    }

    fn listening_socket_inodes(&self, socket: &Path) -> io::Result<Vec<u64>> {
        self.node.listening_socket_inodes(socket)
    }

    fn identity(&self, pid: i32) -> io::Result<ProcessIdentity> {
        self.node.identity(pid)
    }

    fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        self.node.discover_node(socket, name)
    }

    fn cmdline(&self, pid: i32) -> io::Result<Vec<String>> {
        self.node.cmdline(pid)
    }

    fn signal(&self, target: ProcessIdentity, signal: Signal) -> Result<(), SignalError> {
        self.node.signal(target, signal)?;
        if signal == Signal::HUP {
            // The guard reads the node's output, so it sees the reconfiguration whoever sent
            // the SIGHUP.
            let forging = self.reloaded();
            if self.guard.present() {
                self.observed(forging);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
