//! NodeWatcher: whether the local cardano-node is ready, and which process it is
//! (docs/architecture.md, "Actors"). It reports facts and decides nothing.
//!
//! Ready means: the node socket exists, accepts a connection (under a short timeout), and the
//! node process is identified, by the listener of that socket or else by its exact name, never
//! by a guess ([`NodeHost::discover_node`]). A node that accepts but cannot be identified is
//! reported *down*, with a warning: the manager could not stop it forging (no SIGHUP target), so
//! it must not contend. Only changes are reported: `Fact(NodeUp)`/`Fact(NodeDown)` to the
//! Decider and `NodeProcess` to the NodeSignaller. A restart (socket gone or refusing, the
//! process identity (PID + start time) changed, or the socket re-bound) is reported as
//! `NodeDown` then `NodeUp`, so the Decider re-establishes forging for the new process.
//!
//! A node is gone only when its process is: a socket that stops serving while the known process
//! lives is `NodeDown` for the Decider, but the NodeSignaller keeps the process as its target, so
//! the stop that follows reaches it and is confirmed. A node guard that does not answer in time
//! changes nothing (it may be stalled while its node forges).
//!
//! It polls (connect checks cannot be watched): one probe at a time, and while the node is up
//! the probe reads only `/proc/net/unix` and one `/proc/<pid>/stat` unless something changed.
//! The socket and `/proc` are the [`NodeHost`] port, the guard the [`NodeGuard`] port.

mod actor;

use std::{collections::VecDeque, path::PathBuf, sync::Arc, time::Duration};

use actix::{Recipient, dev::SendError};
use forge_core::{config::NodeSettings, decision::Event};
use tokio::time::Instant;

use crate::{
    messages::{Fact, NodeProcess},
    metrics::Metrics,
    ports::{GuardError, NodeGuard, NodeHost, ProcessIdentity, SocketState},
    supervisor::Restarts,
};

/// How often the node is probed by default: a node restart is noticed well within a second.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a connect to the node socket may take: a local Unix socket answers at once, so
/// anything slower means the node is not serving.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The flags with which cardano-node starts without forging although credentials are present.
pub const NON_PRODUCING_FLAGS: [&str; 2] = ["--start-as-non-producing-node", "--non-producing-node"];
/// Facts not yet accepted by the Decider's mailbox; beyond this the oldest are dropped (only the
/// latest state matters, and the Decider is then far behind anyway).
const OUTBOX_LIMIT: usize = 16;

/// What the NodeWatcher watches and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeWatcherSettings {
    /// The node socket.
    pub socket: PathBuf,
    /// The node's executable name (exact match; fallback when the socket listener is not visible).
    pub process_name: String,
    /// Time between probes.
    pub poll_interval: Duration,
    /// Budget of one connect to the socket.
    pub connect_timeout: Duration,
    /// The manager installs credentials before the node starts (`NODE_STARTS_NON_PRODUCING`):
    /// warn if the node was not started with a non-producing flag, since it would then forge.
    pub expect_non_producing_start: bool,
}

impl NodeWatcherSettings {
    /// Settings for `socket` and `process_name` with the default timings.
    pub fn new(socket: impl Into<PathBuf>, process_name: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            process_name: process_name.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            expect_non_producing_start: false,
        }
    }

    /// Settings from the validated node configuration, with the default timings.
    pub fn from_config(node: &NodeSettings) -> Self {
        Self {
            expect_non_producing_start: node.starts_non_producing,
            ..Self::new(&node.socket, &node.process_name)
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observation {
    /// Accepting, and the process is identified.
    Ready(Found),
    /// No socket file.
    NoSocket,
    /// The socket file exists but does not accept a connection.
    NotAccepting(String),
    /// The socket accepts but no node process is visible (or several, and none listens on it).
    ProcessInvisible(String),
    /// The socket is gone or refuses, but the node process we knew is still alive: the node is
    /// not serving (down for the Decider), yet it may still forge, so the NodeSignaller keeps its
    /// identity and a stop still reaches it (and waits for it), instead of "no node".
    NotServing {
        /// Why the socket does not serve.
        why: String,
        /// The live process.
        alive: ProcessIdentity,
    },
    /// Nothing can be said now (the node guard did not answer in time): nothing changes. A
    /// guard that does not answer is not a node that is gone.
    Unknown(String),
}

impl Observation {
    fn kind(&self) -> &'static str {
        match self {
            Observation::Ready(_) => "ready",
            Observation::NoSocket => "no_socket",
            Observation::NotAccepting(_) => "not_accepting",
            Observation::ProcessInvisible(_) => "process_invisible",
            Observation::NotServing { .. } => "not_serving",
            Observation::Unknown(_) => "unknown",
        }
    }
}

/// An identified node process and the listening socket inodes seen with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) identity: ProcessIdentity,
    /// Inodes of the listening sockets bound to the node socket path (empty if not visible).
    pub(crate) inodes: Vec<u64>,
    /// Whether the command line carries a non-producing flag; read once per new process, and
    /// only when the setting asks for it (`None` otherwise or if unreadable).
    pub(crate) non_producing_flag: Option<bool>,
}

impl Found {
    /// The same running node: same process, and the socket not re-bound (when visible).
    fn same_node(&self, other: &Found) -> bool {
        self.identity == other.identity
            && (self.inodes.is_empty() || other.inodes.is_empty() || self.inodes == other.inodes)
    }
}

/// Probes the node socket and process; see the module documentation.
pub struct NodeWatcher {
    pub(crate) settings: NodeWatcherSettings,
    pub(crate) host: Arc<dyn NodeHost>,
    /// The node guard: when the node process is not visible here (no shared process
    /// namespace) but its guard answers, the node is taken as identified through the guard.
    pub(crate) guard: Option<Arc<dyn NodeGuard>>,
    pub(crate) decider: Recipient<Fact>,
    pub(crate) signaller: Recipient<NodeProcess>,
    pub(crate) restarts: Restarts,
    /// Delay before probing again after a restart (the backoff).
    pub(crate) resume_after: Duration,
    /// A probe is running (one at a time).
    pub(crate) probing: bool,
    /// The node as last reported (`None`: down). Kept across restarts: reports are on changes.
    current: Option<Found>,
    /// Whether anything was reported yet (the first observation is always reported).
    initialised: bool,
    /// The kind of the last observation, so each reason for "down" is logged once.
    last_kind: Option<&'static str>,
    /// Facts the Decider's mailbox has not accepted yet, oldest first, with when they were seen.
    outbox: VecDeque<(Event, Instant)>,
    /// The node process the NodeSignaller has not accepted yet (a snapshot: only the latest).
    signaller_pending: Option<NodeProcess>,
}

impl NodeWatcher {
    /// A watcher of the node on `host` that reports to `decider` and `signaller`.
    pub fn new(
        settings: NodeWatcherSettings,
        host: impl NodeHost,
        decider: Recipient<Fact>,
        signaller: Recipient<NodeProcess>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            settings,
            host: Arc::new(host),
            guard: None,
            decider,
            signaller,
            restarts: Restarts::new("node_watcher", Some(metrics.actor_restarts.clone())),
            resume_after: Duration::ZERO,
            probing: false,
            current: None,
            initialised: false,
            last_kind: None,
            outbox: VecDeque::new(),
            signaller_pending: None,
        }
    }

    /// Identifies the node through `guard` when its process is not visible here.
    pub fn with_guard(mut self, guard: Arc<dyn NodeGuard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The node as last seen, for the next probe's shortcut.
    pub(crate) fn known(&self) -> Option<Found> {
        self.current.clone()
    }

    /// Folds one probe's result in: logs what changed and queues the facts to report.
    pub(crate) fn observe(&mut self, obs: Observation) {
        self.log_change(&obs);
        let (next, alive) = match obs {
            Observation::Ready(found) => (Some(found), None),
            Observation::Unknown(_) => return,
            Observation::NotServing { alive, .. } => (None, Some(alive)),
            _ => (None, None),
        };
        let restarted = match (&self.current, &next) {
            (Some(a), Some(b)) => !a.same_node(b),
            (a, b) => a.is_some() != b.is_some(),
        };
        if self.initialised && !restarted {
            // Keep the freshest inodes (a listener may become visible later).
            self.current = next;
            return;
        }
        let now = Instant::now();
        if self.current.is_some() || (!self.initialised && next.is_none()) {
            self.queue(Event::NodeDown, now);
        }
        if let Some(found) = &next {
            self.check_start_flags(found);
            tracing::info!(
                actor = "node_watcher",
                pid = found.identity.pid,
                socket = %self.settings.socket.display(),
                "node is up"
            );
            self.queue(Event::NodeUp, now);
        }
        self.signaller_pending = Some(NodeProcess(next.as_ref().map(|f| f.identity).or(alive)));
        self.current = next;
        self.initialised = true;
    }

    fn log_change(&mut self, obs: &Observation) {
        let kind = obs.kind();
        if self.last_kind == Some(kind) {
            return;
        }
        self.last_kind = Some(kind);
        let socket = self.settings.socket.display();
        match obs {
            Observation::Ready(_) => {}
            Observation::NoSocket => {
                tracing::info!(actor = "node_watcher", socket = %socket, "node is down: no socket")
            }
            Observation::NotAccepting(why) => tracing::info!(
                actor = "node_watcher",
                socket = %socket,
                why = %why,
                "node is down: the socket does not accept connections"
            ),
            Observation::NotServing { why, alive } => tracing::warn!(
                actor = "node_watcher",
                socket = %socket,
                pid = alive.pid,
                why = %why,
                "node is down: its socket does not serve, but its process is alive and may still forge: a stop still goes to it"
            ),
            Observation::Unknown(why) => tracing::warn!(
                actor = "node_watcher",
                why = %why,
                "node state unknown: keeping the last one (a guard that does not answer is not a node that is gone)"
            ),
            Observation::ProcessInvisible(why) => tracing::warn!(
                actor = "node_watcher",
                socket = %socket,
                why = %why,
                "the node socket accepts connections but no node process is visible: this manager \
                 could not stop a forger (no SIGHUP target without a shared process namespace or \
                 the node guard), so the node is reported down and this pod does not contend"
            ),
        }
    }

    fn check_start_flags(&self, found: &Found) {
        if self.settings.expect_non_producing_start && found.non_producing_flag == Some(false) {
            tracing::warn!(
                actor = "node_watcher",
                pid = found.identity.pid,
                expected = ?NON_PRODUCING_FLAGS,
                "credentials are installed for a non-producing start, but the node's command line \
                 has neither non-producing flag: it would forge from its start"
            );
        }
    }

    fn queue(&mut self, event: Event, at: Instant) {
        if self.outbox.len() >= OUTBOX_LIMIT {
            tracing::warn!(
                actor = "node_watcher",
                "the Decider is not accepting facts: dropping the oldest"
            );
            self.outbox.pop_front();
        }
        self.outbox.push_back((event, at));
    }

    /// Delivers what is queued, the node process first (so a reload that follows `NodeUp` finds
    /// it). What a full mailbox refuses stays queued for the next probe (no `do_send`: docs/architecture.md, "Actors").
    pub(crate) fn flush(&mut self) {
        if let Some(msg) = self.signaller_pending.take() {
            match self.signaller.try_send(msg) {
                Ok(()) => {}
                Err(SendError::Full(msg)) => {
                    tracing::warn!(actor = "node_watcher", "NodeSignaller mailbox full: retrying");
                    self.signaller_pending = Some(msg);
                    // The Decider hears of the node only after: its next reload must find it.
                    return;
                }
                Err(SendError::Closed(_)) => {
                    tracing::error!(actor = "node_watcher", "NodeSignaller is gone")
                }
            }
        }
        while let Some((event, observed)) = self.outbox.pop_front() {
            match self.decider.try_send(Fact { event, observed }) {
                Ok(()) => {}
                Err(SendError::Full(fact)) => {
                    tracing::warn!(actor = "node_watcher", "Decider mailbox full: retrying");
                    self.outbox.push_front((fact.event, fact.observed));
                    break;
                }
                Err(SendError::Closed(_)) => {
                    tracing::error!(actor = "node_watcher", "Decider is gone");
                    self.outbox.clear();
                }
            }
        }
    }
}

/// One probe: socket, connect, then the process (blocking `/proc` reads off the actor's thread).
/// `known` is the node as last seen: if its process is alive and the socket still the same, the
/// full `/proc` scan is skipped.
pub(crate) async fn probe(
    settings: NodeWatcherSettings,
    host: Arc<dyn NodeHost>,
    guard: Option<Arc<dyn NodeGuard>>,
    known: Option<Found>,
) -> Result<Observation, tokio::task::JoinError> {
    let socket_down = match host
        .check_socket(&settings.socket, settings.connect_timeout)
        .await
    {
        SocketState::Accepting => None,
        SocketState::Absent => Some(Observation::NoSocket),
        SocketState::NotAccepting(why) => Some(Observation::NotAccepting(why)),
    };
    // A node that does not serve may still forge while its process lives (stalled, or shutting
    // down with its socket closed first, or no longer listening on it): keep it addressable.
    let known_identity = known.as_ref().map(|k| k.identity);
    let alive = {
        let host = host.clone();
        move || known_identity.filter(|id| id.start_time != 0 && host.identity(id.pid).ok() == Some(*id))
    };
    if let Some(down) = socket_down {
        return Ok(match (down, alive()) {
            (Observation::NoSocket, Some(alive)) => Observation::NotServing {
                why: "no socket".into(),
                alive,
            },
            (Observation::NotAccepting(why), Some(alive)) => Observation::NotServing { why, alive },
            (down, _) => down,
        });
    }
    let seen = tokio::task::spawn_blocking(move || identify(&settings, &*host, known)).await?;
    let seen = match (seen, guard) {
        (Observation::ProcessInvisible(why), Some(guard)) if guard.present() => {
            through_guard(&*guard, why).await
        }
        (seen, _) => seen,
    };
    // The socket accepts, but no process we can see listens on it, while the one we knew lives.
    Ok(match seen {
        Observation::ProcessInvisible(why) => match alive() {
            Some(alive) => Observation::NotServing { why, alive },
            None => Observation::ProcessInvisible(why),
        },
        seen => seen,
    })
}

/// The node as its guard reports it, when its process is not visible here (no shared process
/// namespace): the guard is its parent, fences it and reloads it, so this pod can stop a forger.
/// The PID is the guard's view (another PID namespace): its start time is unknown (0), so
/// [`NodeHost::signal`] can never hit a process of ours by that number.
async fn through_guard(guard: &dyn NodeGuard, invisible: String) -> Observation {
    let state = match guard.request(forge_guard::protocol::Request::State).await {
        Ok(state) => state,
        // Stalled (SIGSTOP, CPU throttling): the node behind it may be forging.
        Err(GuardError::Timeout { .. }) => {
            return Observation::Unknown("the node guard did not answer its state request in time".into());
        }
        Err(_) => return Observation::ProcessInvisible(invisible),
    };
    match i32::try_from(state.child_pid) {
        Ok(pid) => Observation::Ready(Found {
            identity: ProcessIdentity { pid, start_time: 0 },
            inodes: Vec::new(),
            non_producing_flag: None,
        }),
        Err(_) => Observation::ProcessInvisible(invisible),
    }
}

fn identify(settings: &NodeWatcherSettings, procfs: &dyn NodeHost, known: Option<Found>) -> Observation {
    let inodes = procfs
        .listening_socket_inodes(&settings.socket)
        .unwrap_or_default();
    if let Some(k) = known
        && k.inodes == inodes
        && procfs.identity(k.identity.pid).ok() == Some(k.identity)
    {
        return Observation::Ready(k);
    }
    match procfs.discover_node(&settings.socket, &settings.process_name) {
        Ok(identity) => {
            let non_producing_flag = settings
                .expect_non_producing_start
                .then(|| procfs.cmdline(identity.pid).ok())
                .flatten()
                .map(|args| args.iter().any(|a| NON_PRODUCING_FLAGS.contains(&a.as_str())));
            Observation::Ready(Found {
                identity,
                inodes,
                non_producing_flag,
            })
        }
        Err(e) => Observation::ProcessInvisible(e.to_string()),
    }
}
