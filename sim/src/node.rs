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

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::creds::{OPCERT_TYPE, check_envelope};
use crate::timeline::{EventKind, ProcessId, TimelineError, TimelineEvent, TimelineWriter, unix_now_ns};

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

/// How the node behaves where cardano-node is slow or rough (all off by default: the node then
/// behaves as the simple simulator always did). See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeBehaviour {
    /// SIGHUP-to-effect latency of a reload, drawn per reload.
    pub reload: Latency,
    /// Seed of the generator the latencies are drawn from (the same seed, the same draws).
    pub seed: u64,
    /// Time from start until the SIGHUP handler is installed; a SIGHUP before kills the node.
    /// The replay begins after it.
    pub handler_delay: Duration,
    /// After SIGTERM/SIGINT, forging goes on this long before it stops and the node exits.
    pub stop_grace: Duration,
    /// Close the socket (and remove its file) at SIGTERM, before the grace, not at the exit.
    pub close_socket_early: bool,
    /// The listen backlog of the node socket (None: tokio's default, 1024). A small one makes a
    /// stalled node refuse connections soon.
    pub socket_backlog: Option<u32>,
    /// A Unix control socket taking one-line commands: `stall MS`, `lag MS`, `freeze`, `resume`
    /// (answered `ok`).
    pub control: Option<PathBuf>,
    /// The embedding process installs the real SIGHUP handler itself after `handler_delay` and
    /// then calls [`NodeHandle::handler_installed`] (the CLI does; in-process, leave it false).
    pub external_handler: bool,
    /// The chain tip starts this far behind the wall clock (see [`Tip`]).
    pub tip_lag: Duration,
    /// Listen on this TCP port (all addresses) once consensus has started, as cardano-node binds
    /// its node-to-node port only after the ledger replay (a readiness probe's target).
    pub listen_port: Option<u16>,
}

/// A latency: a fixed value or a range `[min, max]` drawn uniformly. Parsed from milliseconds,
/// `"300"` or `"100..500"` (both ends included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// The shortest.
    pub min: Duration,
    /// The longest.
    pub max: Duration,
}

impl Latency {
    /// Always `d`.
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// Between `min_ms` and `max_ms` milliseconds.
    pub fn range_ms(min_ms: u64, max_ms: u64) -> Self {
        Self {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    /// Whether it is always 0.
    pub fn is_zero(&self) -> bool {
        self.max.is_zero()
    }

    /// One draw from `rng`.
    pub fn draw(&self, rng: &mut SplitMix64) -> Duration {
        let (lo, hi) = (self.min.as_nanos() as u64, self.max.as_nanos() as u64);
        if hi <= lo {
            return self.min;
        }
        Duration::from_nanos(lo + rng.next_u64() % (hi - lo + 1))
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min.as_millis())
        } else {
            write!(f, "{}..{}", self.min.as_millis(), self.max.as_millis())
        }
    }
}

impl FromStr for Latency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ms = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not milliseconds: expected N or A..B, e.g. 300 or 100..500"))
        };
        let l = match s.split_once("..") {
            Some((a, b)) => Latency::range_ms(ms(a)?, ms(b)?),
            None => Latency::fixed(Duration::from_millis(ms(s)?)),
        };
        if l.min > l.max {
            return Err(format!("{s:?}: the range ends before it starts"));
        }
        Ok(l)
    }
}

/// SplitMix64: a small, seedable, reproducible generator (no cryptographic use).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
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

struct Node {
    opts: NodeOptions,
    behaviour: NodeBehaviour,
    process: ProcessId,
    timeline: TimelineWriter,
    forging: watch::Sender<bool>,
    accepting: watch::Sender<Accepting>,
    log: Arc<Mutex<Vec<String>>>,
    rng: SplitMix64,
    /// The socket is bound only once the SIGHUP handler is installed: cardano-node opens its
    /// local socket long after its handler (after the ledger replay), so a sidecar that finds
    /// the socket may SIGHUP the node. Until then, this is set; then the accept loop runs here.
    socket_late: bool,
    late_accept: Option<JoinHandle<()>>,
    /// The node-to-node port's accept loop (`NodeBehaviour::listen_port`), from consensus start.
    listen: Option<JoinHandle<()>>,
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
            .append(&TimelineEvent::now_for(&self.process, kind, detail))?;
        Ok(())
    }

    fn set_forging(&mut self, on: bool, detail: &str) -> Result<(), NodeError> {
        if *self.forging.borrow() == on {
            return Ok(());
        }
        // The recorded forging interval contains the real one: on is written before it takes
        // effect, off after.
        if on {
            self.event(EventKind::ForgingOn, detail)?;
            self.forging.send_replace(true);
        } else {
            self.forging.send_replace(false);
            self.event(EventKind::ForgingOff, detail)?;
        }
        Ok(())
    }

    /// The end of a reload that read `reading` and took `took`: the log line, then the effect.
    fn complete_reload(&mut self, reading: Reading, took: Duration) -> Result<(), NodeError> {
        let took = if took.is_zero() {
            String::new()
        } else {
            format!(" (reload took {} ms)", took.as_millis())
        };
        match reading {
            Reading::Valid => {
                self.say("Notice", LOG_ENABLED);
                self.set_forging(true, &format!("SIGHUP: credentials present and valid{took}"))
            }
            Reading::Missing(p) => {
                self.say("Notice", LOG_DISABLED);
                self.set_forging(false, &format!("SIGHUP: {} missing{took}", p.display()))
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
                self.event(EventKind::ReloadError, &format!("{why}; {kept}{took}"))
            }
        }
    }

    /// Closes the socket now: no more connections, held ones dropped, the file removed.
    fn close_socket(&mut self, detail: &str) -> Result<(), NodeError> {
        if *self.accepting.borrow() == Accepting::Closed {
            return Ok(());
        }
        self.accepting.send_replace(Accepting::Closed);
        let _ = std::fs::remove_file(&self.opts.socket);
        self.event(EventKind::SocketClosed, detail)
    }
}

fn bind_socket(path: &Path, backlog: Option<u32>) -> std::io::Result<UnixListener> {
    let Some(backlog) = backlog else {
        return UnixListener::bind(path);
    };
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType, bind, listen, socket};
    let fd = socket(AddressFamily::UNIX, SocketType::STREAM, None)?;
    bind(&fd, &SocketAddrUnix::new(path)?)?;
    listen(&fd, i32::try_from(backlog).unwrap_or(i32::MAX))?;
    let std = std::os::unix::net::UnixListener::from(fd);
    std.set_nonblocking(true)?;
    UnixListener::from_std(std)
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
                ", reload {} ms, seed {}, handler after {} ms, stop grace {} ms{}",
                b.reload,
                b.seed,
                b.handler_delay.as_millis(),
                b.stop_grace.as_millis(),
                if b.close_socket_early {
                    ", socket closed at SIGTERM"
                } else {
                    ""
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

async fn run(
    mut node: Node,
    socket: Option<UnixListener>,
    accepting: watch::Receiver<Accepting>,
    tasks: Vec<JoinHandle<()>>,
    mut rx: mpsc::UnboundedReceiver<Input>,
    mut stall_rx: mpsc::UnboundedReceiver<Duration>,
) -> Result<(), NodeError> {
    let accept_task = socket.map(|socket| tokio::spawn(accept_loop(socket, accepting)));
    let result = run_loop(&mut node, &mut rx, &mut stall_rx).await;
    for t in accept_task
        .into_iter()
        .chain(node.late_accept.take())
        .chain(node.listen.take())
    {
        t.abort();
    }
    for t in tasks {
        t.abort();
    }
    if let Some(c) = &node.behaviour.control {
        let _ = std::fs::remove_file(c);
    }
    // A process killed by a signal leaves its socket file behind; an exit removes it.
    if !matches!(result, Err(NodeError::KilledBySighup)) {
        let _ = std::fs::remove_file(&node.opts.socket);
    }
    result
}

async fn accept_loop(socket: UnixListener, mut accepting: watch::Receiver<Accepting>) {
    // Dropping the set (when this task ends or is aborted) closes every held connection.
    let mut held = tokio::task::JoinSet::new();
    loop {
        let state = *accepting.borrow_and_update();
        match state {
            Accepting::Closed => return,
            Accepting::Paused => {
                // Hung: connections wait in the backlog, unanswered.
                if accepting.changed().await.is_err() {
                    return;
                }
            }
            Accepting::Yes => {
                tokio::select! {
                    accepted = socket.accept() => {
                        let Ok((mut conn, _)) = accepted else { return };
                        // Hold the connection until the client closes it (or the node exits).
                        held.spawn(async move {
                            let mut buf = [0u8; 1024];
                            while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                        });
                        while held.try_join_next().is_some() {}
                    }
                    changed = accepting.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Where the node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// SIGHUP still kills it.
    BeforeHandler,
    /// Replaying the ledger until then: SIGHUP is not effective.
    Replaying(Instant),
    /// Consensus runs: SIGHUP reloads.
    Running,
    /// SIGTERM received: forging on until then.
    Stopping(Instant),
}

/// A reload under way: it read `reading` and takes effect at `effect_at`.
struct Inflight {
    reading: Reading,
    took: Duration,
    effect_at: Instant,
}

async fn run_loop(
    node: &mut Node,
    rx: &mut mpsc::UnboundedReceiver<Input>,
    stall_rx: &mut mpsc::UnboundedReceiver<Duration>,
) -> Result<(), NodeError> {
    let started = Instant::now();
    let mut phase = Phase::BeforeHandler;
    let handler_at = started + node.behaviour.handler_delay;
    // SIGHUPs waiting for the reload under way to take effect.
    let mut queued: usize = 0;
    let mut inflight: Option<Inflight> = None;
    let mut stalled_until: Option<Instant> = None;
    let mut stall_open = true;
    if node.behaviour.handler_delay.is_zero() && !node.behaviour.external_handler {
        phase = handler_installed(node, false)?;
    }
    loop {
        // A hung node does nothing but wait for the end of its stall.
        if let Some(until) = stalled_until {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {
                    stalled_until = None;
                    if *node.accepting.borrow() == Accepting::Paused {
                        node.accepting.send_replace(Accepting::Yes);
                    }
                    node.event(EventKind::StallEnd, "responsive again")?;
                }
                d = stall_rx.recv(), if stall_open => match d {
                    Some(d) => stalled_until = Some(until.max(Instant::now() + d)),
                    None => stall_open = false,
                },
            }
            continue;
        }
        // The next queued reload begins once the previous one took effect.
        if phase == Phase::Running && inflight.is_none() && queued > 0 {
            queued -= 1;
            let reading = read_credentials(&node.opts);
            let took = node.behaviour.reload.draw(&mut node.rng);
            if took.is_zero() {
                node.complete_reload(reading, took)?;
            } else {
                inflight = Some(Inflight {
                    reading,
                    took,
                    effect_at: Instant::now() + took,
                });
            }
            continue;
        }
        let timer = match phase {
            Phase::BeforeHandler if !node.behaviour.external_handler => Some(handler_at),
            Phase::BeforeHandler => None,
            Phase::Replaying(end) => Some(end),
            Phase::Running => inflight.as_ref().map(|r| r.effect_at),
            Phase::Stopping(end) => Some(end),
        };
        let input = tokio::select! {
            () = sleep_until_some(timer) => None,
            input = rx.recv() => Some(input.unwrap_or(Input::Terminate)),
            d = stall_rx.recv(), if stall_open => {
                match d {
                    Some(d) => {
                        node.event(
                            EventKind::Stall,
                            &format!("hung for {} ms: no signal handled, no connection accepted, forging as it was", d.as_millis()),
                        )?;
                        if *node.accepting.borrow() == Accepting::Yes {
                            node.accepting.send_replace(Accepting::Paused);
                        }
                        stalled_until = Some(Instant::now() + d);
                    }
                    None => stall_open = false,
                }
                continue;
            }
        };
        let Some(input) = input else {
            // A timer of the current phase fired.
            match phase {
                Phase::BeforeHandler => phase = handler_installed(node, true)?,
                Phase::Replaying(_) => {
                    phase = Phase::Running;
                    consensus_started(node)?;
                }
                Phase::Running => {
                    if let Some(r) = inflight.take() {
                        node.complete_reload(r.reading, r.took)?;
                    }
                }
                Phase::Stopping(_) => return exit(node),
            }
            continue;
        };
        match (input, phase) {
            (Input::HandlerInstalled, Phase::BeforeHandler) => {
                phase = handler_installed(node, !node.behaviour.handler_delay.is_zero())?;
            }
            (Input::HandlerInstalled, _) => {}
            (Input::Sighup, Phase::BeforeHandler) => {
                // The default action of SIGHUP: the process dies, writing nothing.
                node.accepting.send_replace(Accepting::Closed);
                return Err(NodeError::KilledBySighup);
            }
            (Input::Sighup, Phase::Replaying(_)) => {
                node.event(EventKind::Sighup, "during replay")?;
                node.say("Notice", LOG_NOT_EFFECTIVE);
                node.event(EventKind::NotEffective, "SIGHUP during ledger replay is lost")?;
            }
            (Input::Sighup, Phase::Running) => {
                let ahead = queued + usize::from(inflight.is_some());
                let detail = if ahead == 0 {
                    String::new()
                } else {
                    format!("queued behind {ahead} reload(s)")
                };
                node.event(EventKind::Sighup, &detail)?;
                queued += 1;
            }
            (Input::Sighup, Phase::Stopping(_)) => {
                node.event(EventKind::Sighup, "during shutdown: ignored")?;
            }
            (Input::Terminate, Phase::Stopping(_)) => {}
            (Input::Terminate, _) => {
                node.say("Notice", "Shutting down");
                let b = &node.behaviour;
                if b.stop_grace.is_zero() && !b.close_socket_early {
                    return exit(node);
                }
                let (grace, early) = (b.stop_grace, b.close_socket_early);
                let dropped = queued + usize::from(inflight.is_some());
                queued = 0;
                inflight = None;
                node.event(
                    EventKind::Sigterm,
                    &format!(
                        "shutdown: forging as it is for {} ms more; {dropped} reload(s) dropped",
                        grace.as_millis()
                    ),
                )?;
                if early {
                    node.close_socket("closed at SIGTERM, before forging stops")?;
                }
                phase = Phase::Stopping(Instant::now() + grace);
            }
        }
    }
}

async fn sleep_until_some(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The SIGHUP handler is in place: the replay begins.
fn handler_installed(node: &mut Node, record: bool) -> Result<Phase, NodeError> {
    if record {
        node.event(EventKind::HandlerInstalled, "SIGHUP handler installed")?;
    }
    if std::mem::take(&mut node.socket_late) {
        let socket = bind_socket(&node.opts.socket, node.behaviour.socket_backlog).map_err(|source| {
            NodeError::Io {
                what: format!("binding {}", node.opts.socket.display()),
                source,
            }
        })?;
        node.late_accept = Some(tokio::spawn(accept_loop(socket, node.accepting.subscribe())));
    }
    let replay = node.opts.replay;
    if replay.is_zero() {
        consensus_started(node)?;
        return Ok(Phase::Running);
    }
    node.say(
        "Info",
        &format!("Replaying ledger ({} ms simulated)", replay.as_millis()),
    );
    Ok(Phase::Replaying(Instant::now() + replay))
}

/// The end of the shutdown: forging off, socket closed, `exit`.
fn exit(node: &mut Node) -> Result<(), NodeError> {
    node.set_forging(false, "shutdown")?;
    node.close_socket_quietly();
    node.event(EventKind::Exit, "clean shutdown")
}

impl Node {
    /// Closes the socket at the exit (no timeline line: the `exit` says it).
    fn close_socket_quietly(&mut self) {
        if *self.accepting.borrow() != Accepting::Closed {
            self.accepting.send_replace(Accepting::Closed);
        }
    }
}

/// The end of the replay: a producing node starts forging with the credentials read at start.
fn consensus_started(node: &mut Node) -> Result<(), NodeError> {
    node.say("Notice", "Chain extended, consensus started");
    if let Some(port) = node.behaviour.listen_port {
        let l = std::net::TcpListener::bind(("0.0.0.0", port))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|source| NodeError::Io {
                what: format!("binding the node port {port}"),
                source,
            })?;
        node.say("Info", &format!("listening on node port {port}"));
        // Connections are accepted and dropped: only a readiness probe connects.
        node.listen = Some(tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                drop(conn);
            }
        }));
    }
    if !node.opts.start_as_non_producing {
        node.say("Notice", LOG_ENABLED);
        node.set_forging(true, "started as a block producer")?;
    }
    Ok(())
}

/// The simulated chain tip (module docs): in sync, a fixed lag behind, or frozen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tip {
    /// How far behind the wall clock the tip runs.
    pub lag: Duration,
    /// Where the tip stopped, when frozen.
    pub frozen: Option<u64>,
}

/// Blocks come every 20 slots on average (mainnet's active slot coefficient of 1/20).
const BLOCK_SLOTS: u64 = 20;

impl Tip {
    /// The tip slot at wall time `now`.
    pub fn slot(&self, now: jiff::Timestamp) -> u64 {
        self.frozen.unwrap_or_else(|| {
            let then = now - jiff::SignedDuration::try_from(self.lag).unwrap_or_default();
            forge_core::cardano::KesSchedule::mainnet().slot_at(then) / BLOCK_SLOTS * BLOCK_SLOTS
        })
    }

    /// Applies a control command (`lag MS`, `freeze`, `resume`); `None` if it is not one.
    fn command(&mut self, words: &[&str]) -> Option<Result<(), String>> {
        match words {
            ["lag", ms] => Some(match ms.parse::<u64>() {
                Ok(ms) => {
                    *self = Tip {
                        lag: Duration::from_millis(ms),
                        frozen: None,
                    };
                    Ok(())
                }
                Err(_) => Err(format!("lag takes milliseconds, not {ms:?}")),
            }),
            ["freeze"] => {
                self.frozen = Some(self.slot(jiff::Timestamp::now()));
                Some(Ok(()))
            }
            ["resume"] => {
                *self = Tip::default();
                Some(Ok(()))
            }
            _ => None,
        }
    }
}

/// The node's control socket: one-line commands, `stall MS` and the tip's `lag MS`, `freeze`,
/// `resume` (answered `ok` or `error: ...`).
async fn serve_node_control(
    listener: UnixListener,
    stall: mpsc::UnboundedSender<Duration>,
    tip: Arc<Mutex<Tip>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let stall = stall.clone();
        let tip = tip.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["stall", ms] => match ms.parse::<u64>() {
                        Ok(ms) => {
                            let _ = stall.send(Duration::from_millis(ms));
                            "ok".to_owned()
                        }
                        Err(_) => format!("error: stall takes milliseconds, not {ms:?}"),
                    },
                    words => match tip.lock().unwrap_or_else(|p| p.into_inner()).command(words) {
                        Some(Ok(())) => "ok".to_owned(),
                        Some(Err(e)) => format!("error: {e}"),
                        None => format!(
                            "error: unknown command {line:?} (expected: stall MS, lag MS, freeze, resume)"
                        ),
                    },
                };
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn serve_metrics(listener: TcpListener, forging: watch::Receiver<bool>, tip: Arc<Mutex<Tip>>) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let forging = forging.clone();
        let tip = tip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slot(jiff::Timestamp::now());
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
                        "# TYPE cardano_node_metrics_forging_enabled gauge\ncardano_node_metrics_forging_enabled {v}\n\
                         # TYPE cardano_node_metrics_slotNum_int gauge\ncardano_node_metrics_slotNum_int {tip}\n\
                         # TYPE cardano_node_metrics_blockNum_int gauge\ncardano_node_metrics_blockNum_int {}\n",
                        tip / BLOCK_SLOTS
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
