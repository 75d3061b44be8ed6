//! [`MemoryNode`]: the local cardano-node behind the [`NodeHost`] port, in memory: a socket that
//! accepts or not, one process with an identity and a command line, and the signals sent to it.

use std::{
    io,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use rustix::process::Signal;

use crate::ports::{DiscoveryError, NodeHost, ProcessIdentity, SignalError, SocketState};

#[derive(Default)]
struct Host {
    socket: Option<SocketState>,
    process: Option<ProcessIdentity>,
    cmdline: Vec<String>,
    visible: bool,
    starts: u64,
    signals: Vec<(ProcessIdentity, Signal)>,
}

/// One node process and its socket, in memory; no process at first. Cheap to clone; clones share
/// the node.
#[derive(Clone, Default)]
pub struct MemoryNode(Arc<Mutex<Host>>);

impl MemoryNode {
    /// No node yet (no socket, no process).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Host> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A node process starts as `pid` with `args` and serves its socket; returns its identity
    /// (a new start time each time, so a restart under the same PID is another process).
    pub fn start(&self, pid: i32, args: &[&str]) -> ProcessIdentity {
        let mut h = self.lock();
        h.starts += 1;
        let identity = ProcessIdentity {
            pid,
            start_time: 1_000 + h.starts,
        };
        h.process = Some(identity);
        h.cmdline = args.iter().map(|a| (*a).to_owned()).collect();
        h.socket = Some(SocketState::Accepting);
        h.visible = true;
        identity
    }

    /// The node process exits (its socket file stays behind, refusing connections).
    pub fn exit(&self) {
        let mut h = self.lock();
        h.process = None;
        h.socket = Some(SocketState::NotAccepting("connection refused".into()));
    }

    /// The socket now answers like this (`None`: no socket file).
    pub fn set_socket(&self, state: Option<SocketState>) {
        self.lock().socket = state;
    }

    /// Whether the process shows in this pod's process table (a shared process namespace).
    pub fn set_visible(&self, visible: bool) {
        self.lock().visible = visible;
    }

    /// The process running now.
    pub fn process(&self) -> Option<ProcessIdentity> {
        self.lock().process
    }

    /// Every signal delivered so far, in order.
    pub fn signals(&self) -> Vec<(ProcessIdentity, Signal)> {
        self.lock().signals.clone()
    }

    fn visible_process(&self) -> Option<ProcessIdentity> {
        let h = self.lock();
        h.process.filter(|_| h.visible)
    }
}

impl NodeHost for MemoryNode {
    fn check_socket(&self, _socket: &Path, _timeout: Duration) -> BoxFuture<'static, SocketState> {
        let state = self.lock().socket.clone().unwrap_or(SocketState::Absent);
        futures::future::ready(state).boxed()
    }

    fn listening_socket_inodes(&self, _socket: &Path) -> io::Result<Vec<u64>> {
        Ok(Vec::new())
    }

    fn identity(&self, pid: i32) -> io::Result<ProcessIdentity> {
        self.visible_process()
            .filter(|p| p.pid == pid)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such process"))
    }

    fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        self.visible_process().ok_or_else(|| DiscoveryError::NotFound {
            socket: socket.to_path_buf(),
            name: name.to_owned(),
        })
    }

    fn cmdline(&self, pid: i32) -> io::Result<Vec<String>> {
        self.identity(pid)?;
        Ok(self.lock().cmdline.clone())
    }

    fn signal(&self, target: ProcessIdentity, signal: Signal) -> Result<(), SignalError> {
        let mut h = self.lock();
        if h.process != Some(target) {
            return Err(SignalError::Gone { pid: target.pid });
        }
        h.signals.push((target, signal));
        Ok(())
    }
}
