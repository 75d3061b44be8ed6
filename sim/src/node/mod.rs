//! The cardano-node simulator: behaves like `cardano-node` 10.x for what forge-manager touches
//! (docs/architecture.md, "Test world"; cardano-node's `Run.hs`/`Shelley.hs` and its startup tracer).
//!
//! - Start: the three credential files must exist and be valid text envelopes, and the VRF key
//!   must have no "other" permission bit, even with `--start-as-non-producing-node`; otherwise
//!   the node refuses to start ([`NodeError`], exit code 1 in the CLI). The `start` line is
//!   written first, then the node listens on a Unix socket (a stale file is removed first) and
//!   holds connections open.
//! - Until its SIGHUP handler is installed ([`NodeBehaviour::handler_delay`], 0 by default), a
//!   SIGHUP kills the node, as the default action of an unhandled SIGHUP does: nothing more is
//!   written (there is no socket yet). Then a `handler_installed` line (only with a delay).
//!   The socket is bound only then, as cardano-node opens its local socket only long after
//!   installing its handler.
//! - A simulated ledger replay (`replay`, starting once the handler is installed) comes next: a
//!   SIGHUP during it is "not effective" and lost. After the replay a producing node begins
//!   forging with the keys it read at start.
//! - SIGHUP after the replay queues a reload; reloads run one at a time, in order. A reload reads
//!   the files when it begins, takes [`NodeBehaviour::reload`] (a value or a range drawn per
//!   reload from a seeded generator; 0 by default), then logs cardano-node's reconfiguration
//!   line and, just after it, takes effect: any file missing -> forging off; all present and
//!   valid -> forging on; present but invalid -> a reconfiguration error and the previous state
//!   kept. The `forging_on` line is written just before the effect and `forging_off` just after
//!   it, so the timeline never shows less forging than there was.
//!   With [`ReloadOrder::Concurrent`] (as cardano-node: every SIGHUP runs its handler in a
//!   thread of its own, with no lock) each SIGHUP begins its reload at once instead: it reads
//!   the files when it arrives and takes effect after its own draw, so a later SIGHUP can take
//!   effect before an earlier one, and the last effect wins (an early start can undo a stop).
//! - SIGTERM/SIGINT: with [`NodeBehaviour::stop_grace`] (0 by default) the node goes on forging
//!   that long after a `sigterm` line (its socket already closed with
//!   [`NodeBehaviour::close_socket_early`]), ignoring further SIGHUPs and dropping queued
//!   reloads; then `forging_off` if it was forging, then `exit`; the socket file is removed.
//! - A stall ([`NodeHandle::stall`], or `stall MS` on the control socket): for that long the node
//!   handles no signal and accepts no connection (the listen backlog fills; with
//!   [`NodeBehaviour::socket_backlog`] small, new connections are then refused), and forging stays
//!   as it was, as a hung node's would. Signals received meanwhile are handled afterwards.
//! - The chain tip: the metrics endpoint serves `cardano_node_metrics_slotNum_int`, mainnet's
//!   wall-clock slot rounded down to a multiple of 20 (a block every 20 s on average, so even a
//!   synced tip trails by up to 19 slots). `lag MS` on the control socket makes the tip run that
//!   far behind; `freeze` stops it where it is (a node that stopped adopting blocks falls
//!   further behind every second); `resume` brings it back in sync.
//! - Every event goes to the timeline file (docs/architecture.md, "Test world") with the node's PID and start time, and
//!   the node prints the log lines cardano-node prints (the node guard parses them). Key contents
//!   are never printed.
//!
//! The core runs in-process ([`NodeSim::start`], driven through a [`NodeHandle`]) so tests can run
//! several nodes in one process without real signals; the CLI (`forge-manager sim node`) maps
//! real signals onto the handle.

mod options;
mod task;
mod tip;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::creds::{OPCERT_TYPE, check_envelope};
use crate::timeline::{EventKind, ProcessId, TimelineError, TimelineEvent, TimelineWriter, unix_now_ns};
pub use options::{Latency, NodeBehaviour, NodeOptions, ReloadOrder, SplitMix64};
use task::{Node, bind_socket, run};
pub use tip::Tip;
use tip::{serve_metrics, serve_node_control};

/// Log line text (cardano-node's startup tracer) when forging becomes enabled.
pub const LOG_ENABLED: &str = "Performing block forging reconfiguration: Enabling block forging. To disable it please \
                               move/rename/remove the credentials files and then trigger reconfiguration via SIGHUP \
                               signal.";
/// Log line text when forging becomes disabled.
pub const LOG_DISABLED: &str = "Performing block forging reconfiguration: Disabling block forging, to enable it please \
                                make the credentials files available again and then re-trigger reconfiguration via \
                                SIGHUP signal.";
/// Log line text when a SIGHUP arrives during the replay.
pub const LOG_NOT_EFFECTIVE: &str = "Performing block forging reconfiguration: Changing block forging is not effective until consensus has started. ";
/// Prefix of the log line when the files are present but invalid.
pub const LOG_RELOAD_ERROR: &str = "Block forging reconfiguration error: ";

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A credential file is missing at start.
    #[error("missing credential file {0}: cannot start a block-producing node")]
    MissingCredential(PathBuf),
    /// The VRF key is readable or writable by others.
    #[error(
        "VRF signing key {path} has mode {mode:o}: it must have no \"other\" permissions (e.g. chmod 600)"
    )]
    VrfPermissions {
        /// The VRF key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A credential file is not a valid text envelope at start.
    #[error("invalid credential file: {0}")]
    InvalidCredential(#[source] crate::creds::CredentialError),
    /// Socket, metrics or file I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The timeline could not be written.
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    /// A SIGHUP arrived before the handler was installed: the default action killed the node.
    #[error("killed by SIGHUP: it arrived before the node installed its SIGHUP handler")]
    KilledBySighup,
}

impl NodeError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingCredential(_) => "missing_credential",
            Self::VrfPermissions { .. } => "vrf_permissions",
            Self::InvalidCredential(_) => "invalid_credential",
            Self::Io { .. } => "io",
            Self::Timeline(_) => "timeline",
            Self::KilledBySighup => "killed_by_sighup",
        }
    }
}

/// What the credential files say on a (re)read.
#[derive(Debug)]
enum Reading {
    /// All present and valid.
    Valid,
    /// At least one is missing.
    Missing(PathBuf),
    /// Present but unusable (bad envelope or VRF permissions); the message names the file.
    Invalid(String),
}

fn read_credentials(o: &NodeOptions) -> Reading {
    for p in [&o.kes, &o.vrf, &o.opcert] {
        if !p.exists() {
            return Reading::Missing(p.clone());
        }
    }
    if let Err(e) = check_vrf_mode(&o.vrf) {
        return Reading::Invalid(e.to_string());
    }
    for (p, ty) in [
        (&o.kes, "KesSigningKey"),
        (&o.vrf, "VrfSigningKey"),
        (&o.opcert, OPCERT_TYPE),
    ] {
        if let Err(e) = check_envelope(p, ty) {
            return Reading::Invalid(e.to_string());
        }
    }
    Reading::Valid
}

fn check_vrf_mode(vrf: &Path) -> Result<(), NodeError> {
    let meta = std::fs::metadata(vrf).map_err(|source| NodeError::Io {
        what: format!("stat {}", vrf.display()),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(NodeError::VrfPermissions {
            path: vrf.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// What the handle sends to the node.
#[derive(Debug, Clone, Copy)]
enum Input {
    Sighup,
    Terminate,
    HandlerInstalled,
}

/// What the accept loop should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Yes,
    Paused,
    Closed,
}

/// Drives a running [`NodeSim`] (cloneable): the in-process stand-in for signals.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    tx: mpsc::UnboundedSender<Input>,
    stall: mpsc::UnboundedSender<Duration>,
    forging: watch::Receiver<bool>,
    log: Arc<Mutex<Vec<String>>>,
    metrics: Option<SocketAddr>,
    process: ProcessId,
}

impl NodeHandle {
    /// As `kill -HUP`.
    pub fn sighup(&self) {
        let _ = self.tx.send(Input::Sighup);
    }

    /// As `kill -TERM`.
    pub fn terminate(&self) {
        let _ = self.tx.send(Input::Terminate);
    }

    /// The embedding process has installed the real SIGHUP handler (with
    /// [`NodeBehaviour::external_handler`]).
    pub fn handler_installed(&self) {
        let _ = self.tx.send(Input::HandlerInstalled);
    }

    /// Hangs the node for `d` (see the module docs); a stall during a stall extends it.
    pub fn stall(&self, d: Duration) {
        let _ = self.stall.send(d);
    }

    /// Whether the node forges now.
    pub fn forging(&self) -> bool {
        *self.forging.borrow()
    }

    /// Waits until the forging state equals `want`; false on timeout (or if the node ended).
    pub async fn wait_forging(&self, want: bool, timeout: Duration) -> bool {
        let mut rx = self.forging.clone();
        tokio::time::timeout(timeout, rx.wait_for(|f| *f == want))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The log lines printed so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Where the metrics endpoint listens, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The identity written on each of its timeline lines.
    pub fn process(&self) -> &ProcessId {
        &self.process
    }
}

/// A running simulated node.
#[derive(Debug)]
pub struct NodeSim {
    handle: NodeHandle,
    task: JoinHandle<Result<(), NodeError>>,
}

impl NodeSim {
    /// Starts a node with the default behaviour (see [`NodeSim::start_with`]).
    pub async fn start(opts: NodeOptions) -> Result<NodeSim, NodeError> {
        Self::start_with(opts, NodeBehaviour::default()).await
    }

    /// Checks the credentials, writes `start`, binds the socket (and metrics, and the control
    /// socket), and runs the node in a task. Errors here are the node refusing to start.
    pub async fn start_with(opts: NodeOptions, behaviour: NodeBehaviour) -> Result<NodeSim, NodeError> {
        for p in [&opts.kes, &opts.vrf, &opts.opcert] {
            if !p.exists() {
                return Err(NodeError::MissingCredential(p.clone()));
            }
        }
        check_vrf_mode(&opts.vrf)?;
        for (p, ty) in [
            (&opts.kes, "KesSigningKey"),
            (&opts.vrf, "VrfSigningKey"),
            (&opts.opcert, OPCERT_TYPE),
        ] {
            check_envelope(p, ty).map_err(NodeError::InvalidCredential)?;
        }

        let process = ProcessId {
            node: opts.name.clone(),
            pid: std::process::id(),
            proc_start_ns: unix_now_ns(),
        };
        let (forging_tx, forging_rx) = watch::channel(false);
        let (accepting_tx, accepting_rx) = watch::channel(Accepting::Yes);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut node = Node {
            timeline: TimelineWriter::open(&opts.timeline)?,
            rng: SplitMix64::new(behaviour.seed),
            socket_late: false,
            late_accept: None,
            listen: None,
            opts,
            behaviour,
            process: process.clone(),
            forging: forging_tx,
            accepting: accepting_tx,
            log: log.clone(),
        };
        let mode = if node.opts.start_as_non_producing {
            "non-producing"
        } else {
            "block-producing"
        };
        let b = &node.behaviour;
        let mut detail = format!("{mode}, replay {} ms", node.opts.replay.as_millis());
        if b != &NodeBehaviour::default() {
            detail.push_str(&format!(
                ", reload {} ms, seed {}, handler after {} ms, stop grace {} ms{}{}",
                b.reload,
                b.seed,
                b.handler_delay.as_millis(),
                b.stop_grace.as_millis(),
                if b.close_socket_early {
                    ", socket closed at SIGTERM"
                } else {
                    ""
                },
                match b.reload_order {
                    ReloadOrder::InOrder => "",
                    ReloadOrder::Concurrent => ", reloads handled concurrently",
                }
            ));
        }
        // The process exists before it listens: `start` comes first.
        node.timeline.append(&TimelineEvent {
            t_unix_ns: process.proc_start_ns,
            ..TimelineEvent::now_for(&process, EventKind::Start, detail)
        })?;

        let io = |what: String| move |source| NodeError::Io { what, source };
        let opts = &node.opts;
        if opts.socket.exists() {
            std::fs::remove_file(&opts.socket)
                .map_err(io(format!("removing stale {}", opts.socket.display())))?;
        }
        node.socket_late = !node.behaviour.handler_delay.is_zero() || node.behaviour.external_handler;
        let socket = if node.socket_late {
            None
        } else {
            Some(
                bind_socket(&opts.socket, node.behaviour.socket_backlog)
                    .map_err(io(format!("binding {}", opts.socket.display())))?,
            )
        };
        let mut tasks = Vec::new();
        let tip = Arc::new(Mutex::new(Tip {
            lag: node.behaviour.tip_lag,
            frozen: None,
        }));
        let metrics = match opts.metrics_port {
            Some(port) => {
                let l = TcpListener::bind(("127.0.0.1", port))
                    .await
                    .map_err(io(format!("binding metrics port {port}")))?;
                let addr = l.local_addr().map_err(io("metrics local_addr".into()))?;
                tasks.push(tokio::spawn(serve_metrics(l, forging_rx.clone(), tip.clone())));
                Some(addr)
            }
            None => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (stall_tx, stall_rx) = mpsc::unbounded_channel();
        if let Some(path) = &node.behaviour.control {
            if path.exists() {
                std::fs::remove_file(path).map_err(io(format!("removing stale {}", path.display())))?;
            }
            let l = UnixListener::bind(path).map_err(io(format!("binding {}", path.display())))?;
            tasks.push(tokio::spawn(serve_node_control(l, stall_tx.clone(), tip.clone())));
        }
        node.say("Notice", &format!("Starting cardano-node simulator ({mode})"));
        if let Some(a) = metrics {
            node.say("Info", &format!("metrics: {a}"));
        }

        let task = tokio::spawn(run(node, socket, accepting_rx, tasks, rx, stall_rx));
        Ok(NodeSim {
            handle: NodeHandle {
                tx,
                stall: stall_tx,
                forging: forging_rx,
                log,
                metrics,
                process,
            },
            task,
        })
    }

    /// A handle to signal and observe the node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Waits for the node to exit (after [`NodeHandle::terminate`]); a node killed by an early
    /// SIGHUP ends with [`NodeError::KilledBySighup`].
    pub async fn wait(self) -> Result<(), NodeError> {
        self.task.await.unwrap_or_else(|e| {
            Err(NodeError::Io {
                what: "node task".into(),
                source: std::io::Error::other(e),
            })
        })
    }

    /// Terminates the node and waits for its exit.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.handle.terminate();
        self.wait().await
    }
}

#[cfg(test)]
mod tests;
