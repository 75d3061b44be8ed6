//! The running node's task: its state ([`Node`]), the socket's accept loop, and the loop through
//! its life (handler, replay, consensus, queued reloads, stalls, shutdown) as the module docs of
//! `node` tell it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    Accepting, Input, LOG_DISABLED, LOG_ENABLED, LOG_NOT_EFFECTIVE, LOG_RELOAD_ERROR, NodeBehaviour,
    NodeError, NodeOptions, Reading, ReloadOrder, SplitMix64, read_credentials,
};
use crate::timeline::{EventKind, ProcessId, TimelineEvent, TimelineWriter};

pub(super) struct Node {
    pub(super) opts: NodeOptions,
    pub(super) behaviour: NodeBehaviour,
    pub(super) process: ProcessId,
    pub(super) timeline: TimelineWriter,
    pub(super) forging: watch::Sender<bool>,
    pub(super) accepting: watch::Sender<Accepting>,
    pub(super) log: Arc<Mutex<Vec<String>>>,
    pub(super) rng: SplitMix64,
    /// The socket is bound only once the SIGHUP handler is installed: cardano-node opens its
    /// local socket long after its handler (after the ledger replay), so a sidecar that finds
    /// the socket may SIGHUP the node. Until then, this is set; then the accept loop runs here.
    pub(super) socket_late: bool,
    pub(super) late_accept: Option<JoinHandle<()>>,
    /// The node-to-node port's accept loop (`NodeBehaviour::listen_port`), from consensus start.
    pub(super) listen: Option<JoinHandle<()>>,
}

impl Node {
    pub(super) fn say(&self, severity: &str, msg: &str) {
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

pub(super) fn bind_socket(path: &Path, backlog: Option<u32>) -> std::io::Result<UnixListener> {
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

pub(super) async fn run(
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
    // SIGHUPs waiting for the reload under way to take effect (in order only).
    let mut queued: usize = 0;
    // Reloads under way: at most one in order, any number when concurrent.
    let mut inflight: Vec<Inflight> = Vec::new();
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
        if phase == Phase::Running && inflight.is_empty() && queued > 0 {
            queued -= 1;
            begin_reload(node, &mut inflight)?;
            continue;
        }
        let timer = match phase {
            Phase::BeforeHandler if !node.behaviour.external_handler => Some(handler_at),
            Phase::BeforeHandler => None,
            Phase::Replaying(end) => Some(end),
            Phase::Running => inflight.iter().map(|r| r.effect_at).min(),
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
                    // The reload due first (of equals, the earliest begun) takes effect.
                    let due = inflight
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, r)| r.effect_at)
                        .map(|(i, _)| i);
                    if let Some(i) = due {
                        let r = inflight.remove(i);
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
            (Input::Sighup, Phase::Running) if node.behaviour.reload_order == ReloadOrder::Concurrent => {
                let detail = match inflight.len() {
                    0 => String::new(),
                    n => format!("handled at once, beside {n} reload(s) under way"),
                };
                node.event(EventKind::Sighup, &detail)?;
                begin_reload(node, &mut inflight)?;
            }
            (Input::Sighup, Phase::Running) => {
                let ahead = queued + inflight.len();
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
                let dropped = queued + inflight.len();
                queued = 0;
                inflight.clear();
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

/// A reload begins: it reads the credential files now and takes effect after a latency drawn
/// now (at once when it is zero).
fn begin_reload(node: &mut Node, inflight: &mut Vec<Inflight>) -> Result<(), NodeError> {
    let reading = read_credentials(&node.opts);
    let took = node.behaviour.reload.draw(&mut node.rng);
    if took.is_zero() {
        return node.complete_reload(reading, took);
    }
    inflight.push(Inflight {
        reading,
        took,
        effect_at: Instant::now() + took,
    });
    Ok(())
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
