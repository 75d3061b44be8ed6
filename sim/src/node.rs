//! The cardano-node simulator: behaves like `cardano-node` 10.x for what forge-manager touches
//! (DESIGN.md section 11; cardano-node's `Run.hs`/`Shelley.hs` and its startup tracer).
//!
//! - Start: the three credential files must exist and be valid text envelopes, and the VRF key
//!   must have no "other" permission bit, even with `--start-as-non-producing-node`; otherwise
//!   the node refuses to start ([`NodeError`], exit code 1 in the CLI).
//! - It listens on a Unix socket (a stale file is removed first) and holds connections open.
//! - A simulated ledger replay (`replay`) comes first: a SIGHUP during it is "not effective" and
//!   lost. After the replay a producing node begins forging with the keys it read at start.
//! - SIGHUP after the replay re-reads the files: any missing -> forging off; all present and valid
//!   -> forging on; present but invalid -> a reconfiguration error and the previous state kept.
//! - SIGTERM/SIGINT: `forging_off` if it was forging, then `exit`; the socket file is removed.
//! - Every event goes to the timeline file (section 13), and the node prints the log lines
//!   cardano-node prints (the node guard parses them). Key contents are never printed.
//!
//! The core runs in-process ([`NodeSim::start`], driven through a [`NodeHandle`]) so tests can run
//! several nodes in one process without real signals; the CLI (`forge-manager sim node`) maps
//! real signals onto the handle.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::creds::{OPCERT_TYPE, check_envelope};
use crate::timeline::{EventKind, TimelineError, TimelineEvent, TimelineWriter};

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

/// How to run one simulated node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's name in the timeline and log lines.
    pub name: String,
    /// The node socket path.
    pub socket: PathBuf,
    /// `--shelley-kes-key`.
    pub kes: PathBuf,
    /// `--shelley-vrf-key`.
    pub vrf: PathBuf,
    /// `--shelley-operational-certificate`.
    pub opcert: PathBuf,
    /// Timeline file (JSON lines, appended).
    pub timeline: PathBuf,
    /// `--start-as-non-producing-node`.
    pub start_as_non_producing: bool,
    /// Simulated ledger replay time, during which SIGHUP is lost.
    pub replay: Duration,
    /// Serve `cardano_node_metrics_forging_enabled` on 127.0.0.1 at this port (0: a free port).
    pub metrics_port: Option<u16>,
    /// Also print log lines on stdout (the CLI does; in-process tests read [`NodeHandle::log`]).
    pub echo_stdout: bool,
}

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
}

/// Drives a running [`NodeSim`] (cloneable): the in-process stand-in for signals.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    tx: mpsc::UnboundedSender<Input>,
    forging: watch::Receiver<bool>,
    log: Arc<Mutex<Vec<String>>>,
    metrics: Option<SocketAddr>,
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
}

/// A running simulated node.
#[derive(Debug)]
pub struct NodeSim {
    handle: NodeHandle,
    task: JoinHandle<Result<(), NodeError>>,
}

struct Node {
    opts: NodeOptions,
    timeline: TimelineWriter,
    forging: watch::Sender<bool>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn say(&self, severity: &str, msg: &str) {
        let ts = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S%.2f UTC");
        let line = format!(
            "[{}:cardano.node.StartupInfo:{severity}:5] [{ts}] {msg}",
            self.opts.name
        );
        if self.opts.echo_stdout {
            use std::io::Write;
            // A closed stdout (the reader went away) must not kill the node.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if let Ok(mut l) = self.log.lock() {
            l.push(line);
        }
    }

    fn event(&mut self, kind: EventKind, detail: &str) -> Result<(), NodeError> {
        self.timeline
            .append(&TimelineEvent::now(&self.opts.name, kind, detail))?;
        Ok(())
    }

    fn set_forging(&mut self, on: bool, detail: &str) -> Result<(), NodeError> {
        if *self.forging.borrow() == on {
            return Ok(());
        }
        // Timeline first: the instant we record is no later than the instant it takes effect.
        self.event(
            if on {
                EventKind::ForgingOn
            } else {
                EventKind::ForgingOff
            },
            detail,
        )?;
        self.forging.send_replace(on);
        Ok(())
    }

    fn reload(&mut self) -> Result<(), NodeError> {
        match read_credentials(&self.opts) {
            Reading::Valid => {
                self.say("Notice", LOG_ENABLED);
                self.set_forging(true, "SIGHUP: credentials present and valid")
            }
            Reading::Missing(p) => {
                self.say("Notice", LOG_DISABLED);
                self.set_forging(false, &format!("SIGHUP: {} missing", p.display()))
            }
            Reading::Invalid(why) => {
                self.say(
                    "Error",
                    &format!("{LOG_RELOAD_ERROR}{why}\nBlock forging is not reconfigured."),
                );
                let kept = if *self.forging.borrow() {
                    "forging kept on"
                } else {
                    "forging kept off"
                };
                self.event(EventKind::ReloadError, &format!("{why}; {kept}"))
            }
        }
    }
}

impl NodeSim {
    /// Checks the credentials, binds the socket (and metrics), writes `start`, and runs the node
    /// in a task. Errors here are the node refusing to start.
    pub async fn start(opts: NodeOptions) -> Result<NodeSim, NodeError> {
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

        let io = |what: String| move |source| NodeError::Io { what, source };
        if opts.socket.exists() {
            std::fs::remove_file(&opts.socket)
                .map_err(io(format!("removing stale {}", opts.socket.display())))?;
        }
        let socket =
            UnixListener::bind(&opts.socket).map_err(io(format!("binding {}", opts.socket.display())))?;
        let (forging_tx, forging_rx) = watch::channel(false);
        let mut metrics_task = None;
        let metrics = match opts.metrics_port {
            Some(port) => {
                let l = TcpListener::bind(("127.0.0.1", port))
                    .await
                    .map_err(io(format!("binding metrics port {port}")))?;
                let addr = l.local_addr().map_err(io("metrics local_addr".into()))?;
                metrics_task = Some(tokio::spawn(serve_metrics(l, forging_rx.clone())));
                Some(addr)
            }
            None => None,
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut node = Node {
            timeline: TimelineWriter::open(&opts.timeline)?,
            opts,
            forging: forging_tx,
            log: log.clone(),
        };
        let mode = if node.opts.start_as_non_producing {
            "non-producing"
        } else {
            "block-producing"
        };
        node.event(
            EventKind::Start,
            &format!("{mode}, replay {} ms", node.opts.replay.as_millis()),
        )?;
        node.say("Notice", &format!("Starting cardano-node simulator ({mode})"));
        if let Some(a) = metrics {
            node.say("Info", &format!("metrics: {a}"));
        }

        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(node, socket, metrics_task, rx));
        Ok(NodeSim {
            handle: NodeHandle {
                tx,
                forging: forging_rx,
                log,
                metrics,
            },
            task,
        })
    }

    /// A handle to signal and observe the node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Waits for the node to exit (after [`NodeHandle::terminate`]).
    pub async fn wait(self) -> Result<(), NodeError> {
        self.task.await.unwrap_or_else(|e| {
            Err(NodeError::Io {
                what: "node task".into(),
                source: std::io::Error::other(e),
            })
        })
    }

    /// Terminates the node and waits for its clean exit.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.handle.terminate();
        self.wait().await
    }
}

async fn run(
    mut node: Node,
    socket: UnixListener,
    metrics_task: Option<JoinHandle<()>>,
    mut rx: mpsc::UnboundedReceiver<Input>,
) -> Result<(), NodeError> {
    let accept_task = tokio::spawn(async move {
        // Dropping the set (when this task is aborted) closes every held connection.
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut conn, _)) = socket.accept().await {
            // Hold the connection until the client closes it (or the node exits).
            held.spawn(async move {
                let mut buf = [0u8; 1024];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            });
            while held.try_join_next().is_some() {}
        }
    });
    let result = run_loop(&mut node, &mut rx).await;
    accept_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    let _ = std::fs::remove_file(&node.opts.socket);
    result
}

async fn run_loop(node: &mut Node, rx: &mut mpsc::UnboundedReceiver<Input>) -> Result<(), NodeError> {
    let replay_end = tokio::time::Instant::now() + node.opts.replay;
    let mut replaying = !node.opts.replay.is_zero();
    if replaying {
        node.say(
            "Info",
            &format!("Replaying ledger ({} ms simulated)", node.opts.replay.as_millis()),
        );
    }
    if !replaying {
        consensus_started(node)?;
    }
    loop {
        let input = tokio::select! {
            _ = tokio::time::sleep_until(replay_end), if replaying => {
                replaying = false;
                consensus_started(node)?;
                continue;
            }
            input = rx.recv() => input.unwrap_or(Input::Terminate),
        };
        match input {
            Input::Sighup => {
                node.event(EventKind::Sighup, if replaying { "during replay" } else { "" })?;
                if replaying {
                    node.say("Notice", LOG_NOT_EFFECTIVE);
                    node.event(EventKind::NotEffective, "SIGHUP during ledger replay is lost")?;
                } else {
                    node.reload()?;
                }
            }
            Input::Terminate => {
                node.say("Notice", "Shutting down");
                node.set_forging(false, "shutdown")?;
                node.event(EventKind::Exit, "clean shutdown")?;
                return Ok(());
            }
        }
    }
}

/// The end of the replay: a producing node starts forging with the credentials read at start.
fn consensus_started(node: &mut Node) -> Result<(), NodeError> {
    node.say("Notice", "Chain extended, consensus started");
    if !node.opts.start_as_non_producing {
        node.say("Notice", LOG_ENABLED);
        node.set_forging(true, "started as a block producer")?;
    }
    Ok(())
}

async fn serve_metrics(listener: TcpListener, forging: watch::Receiver<bool>) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let forging = forging.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the request head (bounded), then answer and close.
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let path_ok = req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ");
            let (status, body) = if path_ok {
                let v = u8::from(*forging.borrow());
                (
                    "200 OK",
                    format!(
                        "# TYPE cardano_node_metrics_forging_enabled gauge\ncardano_node_metrics_forging_enabled {v}\n"
                    ),
                )
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}
