//! A TCP fault proxy for one client in front of one upstream (an API server, fake or real): the
//! only fault mechanism that works with the real kube-apiserver (docs/architecture.md, "Test
//! world").
//!
//! The mode is switched at run time through a cloneable [`ProxyHandle`], or from a shell through
//! a Unix control socket ([`serve_control`], one-line commands). Modes:
//!
//! - [`ProxyMode::Pass`]: forward bytes both ways.
//! - [`ProxyMode::Latency`]: forward each chunk `up` (client to upstream) or `down` (upstream to
//!   client) later than it arrived; throughput is not reduced, only delayed.
//! - [`ProxyMode::Blackhole`]: new connections are accepted but not connected upstream, and open
//!   connections stop forwarding in both directions, so requests hang (a partition). Nothing is
//!   dropped: when the mode changes back, held bytes flow again, as TCP retransmission would do.
//! - [`ProxyMode::BlackholeUp`] / [`ProxyMode::BlackholeDown`]: one direction only. With
//!   `BlackholeDown` requests reach the upstream and are served, but the answers are held (what
//!   an established TCP connection does when only the return path fails: the server receives
//!   and acts, the client hears nothing); with `BlackholeUp` requests are held and nothing
//!   comes back. New connections are connected upstream in both; held bytes flow again later.
//! - [`ProxyMode::Refuse`]: the listening socket is closed, so new connections get a real
//!   `ECONNREFUSED`; open connections keep passing. Leaving the mode binds the same address again.
//! - [`ProxyHandle::reset`] (an action, not a mode): closes every open connection at once with a
//!   TCP RST (kills watches), then the proxy keeps going in its current mode.
//!
//! Loopback only in tests. Not part of the sidecar.
//!
//! The modes, counters, errors, [`ProxyHandle`] and [`FaultProxy`] are here; `forward` accepts
//! and forwards the connections, and `control` parses and serves the one-line commands.

mod control;
mod forward;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use control::{Command, parse_command, serve_control};

use forward::accept_loop;

/// How the proxy treats traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// Delay each direction by its own amount.
    Latency {
        /// Client to upstream.
        up: Duration,
        /// Upstream to client.
        down: Duration,
    },
    /// Accept, but forward nothing (requests hang).
    Blackhole,
    /// Hold what the client sends; forward what the upstream sends.
    BlackholeUp,
    /// Forward what the client sends; hold what the upstream sends (requests land, answers are
    /// lost to the client).
    BlackholeDown,
    /// Stop listening: new connections are refused.
    Refuse,
}

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections closed by [`ProxyHandle::reset`].
    pub reset: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_up: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_down: u64,
}

/// Errors of the proxy and its control socket.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Binding or accepting failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// A control command could not be parsed.
    #[error(
        "bad command {0:?}: expected pass | latency UP_MS DOWN_MS | blackhole [up|down] | reset | refuse | stats"
    )]
    BadCommand(String),
}

impl ProxyError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::BadCommand(_) => "bad_command",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    reset: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    listen: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    /// Bumped by reset (and at shutdown): every connection older than the bump closes.
    epoch: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
}

/// Controls a running [`FaultProxy`]; cheap to clone, usable from any task or thread.
#[derive(Debug, Clone)]
pub struct ProxyHandle(Arc<Shared>);

impl ProxyHandle {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.listen
    }

    /// The upstream address.
    pub fn upstream(&self) -> SocketAddr {
        self.0.upstream
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.0.mode.borrow()
    }

    /// Switches the mode; takes effect at once for new and open connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.0.mode.send_replace(mode);
    }

    /// Shorthand for [`ProxyMode::Pass`].
    pub fn pass(&self) {
        self.set_mode(ProxyMode::Pass);
    }

    /// Shorthand for [`ProxyMode::Latency`].
    pub fn latency(&self, up: Duration, down: Duration) {
        self.set_mode(ProxyMode::Latency { up, down });
    }

    /// Shorthand for [`ProxyMode::Blackhole`].
    pub fn blackhole(&self) {
        self.set_mode(ProxyMode::Blackhole);
    }

    /// Shorthand for [`ProxyMode::Refuse`].
    pub fn refuse(&self) {
        self.set_mode(ProxyMode::Refuse);
    }

    /// Closes every open connection now with a TCP RST; the mode is unchanged.
    pub fn reset(&self) {
        self.0.epoch.send_modify(|e| *e += 1);
    }

    /// The counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.0.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Runs a one-line control command (see [`parse_command`]) and returns the reply line.
    pub fn command(&self, line: &str) -> Result<String, ProxyError> {
        match parse_command(line)? {
            Command::Mode(m) => self.set_mode(m),
            Command::Reset => self.reset(),
            Command::Stats => return Ok(serde_json::to_string(&self.stats()).unwrap_or_default()),
        }
        Ok("ok".into())
    }
}

/// A running proxy. Dropping it (or [`FaultProxy::stop`]) stops listening and closes every
/// connection.
#[derive(Debug)]
pub struct FaultProxy {
    handle: ProxyHandle,
    task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `listen` (use port 0 for a free port) in front of `upstream`, in `Pass` mode.
    pub async fn start(upstream: SocketAddr, listen: SocketAddr) -> Result<FaultProxy, ProxyError> {
        let listener = TcpListener::bind(listen).await.map_err(|source| ProxyError::Io {
            what: format!("binding {listen}"),
            source,
        })?;
        let listen = listener.local_addr().map_err(|source| ProxyError::Io {
            what: "local_addr".into(),
            source,
        })?;
        let handle = ProxyHandle(Arc::new(Shared {
            upstream,
            listen,
            mode: watch::Sender::new(ProxyMode::Pass),
            epoch: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            counters: Counters::default(),
        }));
        let task = tokio::spawn(accept_loop(listener, handle.clone()));
        Ok(FaultProxy {
            handle,
            task: Some(task),
        })
    }

    /// Listens on a free port of 127.0.0.1.
    pub async fn start_local(upstream: SocketAddr) -> Result<FaultProxy, ProxyError> {
        Self::start(upstream, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A handle to switch modes and read counters.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Stops listening, closes all connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    fn signal_stop(&self) {
        self.handle.0.shutdown.send_replace(true);
        self.handle.0.epoch.send_modify(|e| *e += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
