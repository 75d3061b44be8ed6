//! The guard process: the child, the signals, the socket, the permit.
//!
//! Threads feed one loop (the only owner of the state) through a channel: a signal thread
//! (SIGTERM/SIGINT/SIGHUP/SIGQUIT caught by signal-hook's iterator, then forwarded to the child), a
//! waiter (the child's exit), two pass-through readers (stdout/stderr copied unchanged, each
//! line scanned), an acceptor and one thread per connection. The loop sleeps until the next
//! event or the permit's deadline, whichever comes first. No thread ever blocks the loop: pushes
//! to subscribers are written with a short timeout and a slow subscriber is dropped.
//!
//! The rules the loop enforces ("no permit, no forging"):
//! - A SIGHUP (a `reload` request or a forwarded signal) reaches the node only once it showed a
//!   sign of life (its first output line, or its socket listening): before its handler is
//!   installed a SIGHUP kills it.
//!   One asked for earlier is deferred and sent then (re-checked against the next rule).
//! - Without a permit, a SIGHUP is refused while any target credential file exists.
//! - A permit is an absolute CLOCK_MONOTONIC deadline; one already past on arrival is refused.
//! - A fence (lapse, `revoke`, or a re-fence) always removes the files and SIGHUPs the node, with
//!   or without a permit. If no file could be removed it escalates: SIGTERM, then SIGKILL.
//! - The node reporting "Enabling block forging" without a permit is re-fenced at once; credential
//!   files left present without a permit while consensus runs are removed after a grace.

use std::{
    ffi::OsString,
    io::{BufRead, BufReader, Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixListener, net::UnixStream, process::ExitStatusExt},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    time::{Duration, Instant},
};

use rustix::{
    fd::OwnedFd,
    process::{PidfdFlags, Signal},
};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::{
    monotonic_now_ns,
    protocol::{
        Answer, GuardState, MAX_LINE, MAX_TTL_MS, Observation, ProtocolError, Request, parse_request,
    },
    scan::scan,
};

/// A forwarded signal's name as the log says it.
fn name(sig: Signal) -> &'static str {
    match sig {
        Signal::TERM => "SIGTERM",
        Signal::INT => "SIGINT",
        Signal::HUP => "SIGHUP",
        Signal::QUIT => "SIGQUIT",
        _ => "a signal",
    }
}

/// `setpriv` (util-linux): sets PR_SET_PDEATHSIG in the child before it execs the command, so
/// the node dies with the guard even when the guard is SIGKILLed; no `unsafe` `pre_exec` here.
/// Where it is looked for: Debian's place, and the root of a Nix `buildEnv` image such as the
/// official cardano-node image (util-linux linked into `/bin`, no `/usr/bin`).
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

/// How long a push to a subscriber may block before that subscriber is dropped.
const PUSH_TIMEOUT: Duration = Duration::from_millis(100);

/// How long a connection waits for the loop's answer (the loop never blocks for long).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many connections at once; more are refused (a misbehaving peer cannot exhaust
/// the guard's threads).
const MAX_CONNECTIONS: usize = 32;

/// How often the files are looked at while no permit is held and consensus runs.
const FILE_POLL: Duration = Duration::from_millis(250);

/// cardano-node's flags that give it forging credentials at start.
const CREDENTIAL_FLAGS: &[&str] = &[
    "--shelley-kes-key",
    "--shelley-vrf-key",
    "--shelley-operational-certificate",
    "--byron-signing-key",
    "--byron-delegation-certificate",
    "--bulk-credentials-file",
];

/// cardano-node's flag to start without forging whatever credentials it has (and the older
/// spelling the sidecar also recognises).
const NON_PRODUCING_FLAGS: [&str; 2] = ["--start-as-non-producing-node", "--non-producing-node"];
/// The spelling named in messages.
const NON_PRODUCING_FLAG: &str = NON_PRODUCING_FLAGS[0];

/// How to run the guard.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// The Unix socket the sidecar talks to.
    pub socket: PathBuf,
    /// The target credential files to remove when the permit lapses or is revoked.
    pub targets: Vec<PathBuf>,
    /// The node's command line.
    pub command: Vec<OsString>,
    /// Start the node even if it has credential flags without `--start-as-non-producing-node`
    /// (it then forges from its start, without a permit).
    pub allow_producing_start: bool,
    /// A fence that could remove no credential file terminates the node: SIGTERM, then SIGKILL
    /// after this.
    pub kill_after: Duration,
    /// The node's socket: the node counts as ready for SIGHUP once it listens there (as well
    /// as after its first output line). Default: the command's `--socket-path`.
    pub node_socket: Option<PathBuf>,
    /// Credential files present without a permit while consensus runs are removed (and the node
    /// reloaded) after this: longer than a starting plan takes from writing the files to asking
    /// for the permit (the CLI's default is 10 s).
    pub unpermitted_grace: Duration,
}

/// Why the guard could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// The node's command would forge from its start (see [`check_start_flags`]).
    #[error("{0}")]
    ProducingStart(String),
    /// The child could not be started.
    #[error("starting {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The socket could not be bound.
    #[error("binding {path}: {source}")]
    Bind {
        /// The socket path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Signals could not be set up.
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// The signals forwarded to the node.
const FORWARDED: [std::ffi::c_int; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];

enum Event {
    Signal(Signal),
    ChildExited(std::io::Result<ExitStatus>),
    /// A line of the node's output: the first one, or a recognised one.
    Output(Option<Observation>),
    /// The node's socket accepted a connection.
    Listening,
    Request(Request, Sender<Answer>),
    Subscribe(UnixStream, Sender<Answer>),
}

fn log(msg: std::fmt::Arguments<'_>) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // stderr is the node container's log; a closed stderr must not stop the guard.
    let _ = writeln!(std::io::stderr().lock(), "forge-guard: t_unix_ns={ts} {msg}");
}

/// Runs the guard until its child exits; returns the exit code to exit with (the child's, or
/// 128 + the signal that ended it).
///
/// SIGTERM, SIGINT, SIGHUP and SIGQUIT get signal-hook's handler for as long as the process
/// lives (the caller is the process: `forge-manager guard`).
pub fn run(opts: GuardOptions) -> Result<i32, GuardError> {
    if opts.command.is_empty() {
        return Err(GuardError::Usage(
            "no command given (forge-manager guard -- CMD ARGS...)".into(),
        ));
    }
    if opts.targets.is_empty() {
        return Err(GuardError::Usage(
            "no target credential files (--targets KES,VRF,OPCERT or TARGET_KES_KEY, TARGET_VRF_KEY, \
             TARGET_OP_CERT): the guard could not fence the node"
                .into(),
        ));
    }
    if !opts.allow_producing_start {
        check_start_flags(&opts.command).map_err(GuardError::ProducingStart)?;
    }
    // The handlers first: a signal arriving while the child starts waits in signal-hook's pipe
    // and is forwarded once the loop runs. The child gets the default dispositions back at exec
    // (handlers do not survive it) and an unblocked mask, so the node handles SIGHUP and
    // SIGTERM itself.
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED).map_err(GuardError::Signals)?;
    let listener = bind(&opts.socket)?;
    let mut child = spawn(&opts.command).inspect_err(|_| {
        // No node: no socket either (an absent socket tells the sidecar no node runs).
        let _ = std::fs::remove_file(&opts.socket);
    })?;
    let pid = child.id();
    // Opened while the child is certainly not reaped (only the waiter below reaps it), so this
    // descriptor names our child and nothing else, even after PID reuse.
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
    if pidfd.is_none() {
        log(format_args!(
            "warning: no pidfd for the child (PID {pid}); signalling by PID"
        ));
    }
    log(format_args!(
        "started {:?} as PID {pid}; socket {}; no permit (the node must not forge until the sidecar grants one)",
        opts.command,
        opts.socket.display()
    ));

    let (tx, rx) = mpsc::channel::<Event>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(pass_through(out, std::io::stdout, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(pass_through(err, std::io::stderr, tx.clone()));
    }
    spawn_thread("waiter", {
        let tx = tx.clone();
        move || {
            let status = child.wait();
            let _ = tx.send(Event::ChildExited(status));
        }
    });
    spawn_thread("signals", {
        let tx = tx.clone();
        move || {
            for raw in signals.forever() {
                let Some(sig) = Signal::from_named_raw(raw) else {
                    continue;
                };
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        }
    });
    if let Some(socket) = opts.node_socket.clone().or_else(|| socket_path_of(&opts.command)) {
        spawn_thread("node-socket", {
            let tx = tx.clone();
            move || watch_node_socket(&socket, &tx)
        });
    }
    spawn_thread("acceptor", {
        let tx = tx.clone();
        move || accept(listener, tx)
    });
    drop(tx);

    let non_producing = opts
        .command
        .iter()
        .any(|a| NON_PRODUCING_FLAGS.iter().any(|f| a == *f));
    let mut guard = Guard {
        targets: opts.targets,
        pid,
        pidfd,
        permit: None,
        // A node started non-producing does not forge until a reload after consensus starts.
        forging: non_producing.then_some(false),
        last: None,
        reload_lost: false,
        ready: false,
        pending_reload: false,
        pending_fence: false,
        consensus: false,
        unpermitted_since: None,
        unpermitted_grace: opts.unpermitted_grace,
        kill_at: None,
        kill_after: opts.kill_after,
        subscribers: Vec::new(),
    };
    let status = guard.serve(&rx);
    // Let the readers copy the child's last lines (bounded: a grandchild may hold the pipes).
    let until = Instant::now() + Duration::from_millis(500);
    for r in readers {
        while !r.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = std::fs::remove_file(&opts.socket);
    let code = match status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(e) => {
            log(format_args!("waiting for the child failed: {e}"));
            1
        }
    };
    log(format_args!("child exited; exiting with {code}"));
    Ok(code)
}

/// Refuses a node command that gives cardano-node forging credentials (`--shelley-kes-key`
/// etc.) without `--start-as-non-producing-node`: such a node forges from the end of its replay,
/// with no permit and before the sidecar can tell it anything (S1). Only the command line the
/// guard runs is seen: a wrapper script's own flags are not.
pub fn check_start_flags(command: &[OsString]) -> Result<(), String> {
    let args: Vec<String> = command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if args.iter().any(|a| NON_PRODUCING_FLAGS.contains(&a.as_str())) {
        return Ok(());
    }
    let credential = args.iter().find_map(|a| {
        CREDENTIAL_FLAGS
            .iter()
            .find(|f| a == *f || a.strip_prefix(*f).is_some_and(|rest| rest.starts_with('=')))
    });
    match credential {
        None => Ok(()),
        Some(flag) => Err(format!(
            "refusing to start the node: its command sets {flag} but not {NON_PRODUCING_FLAG}, so it \
             would forge from its start without a permit; add {NON_PRODUCING_FLAG} to the node's \
             command, or start the guard with --allow-producing-start \
             (GUARD_ALLOW_PRODUCING_START=true) if that is really wanted"
        )),
    }
}

/// cardano-node's `--socket-path` in `command`, if given there.
fn socket_path_of(command: &[OsString]) -> Option<PathBuf> {
    let args: Vec<&OsString> = command.iter().collect();
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_string_lossy();
        if a == "--socket-path" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            a.strip_prefix("--socket-path=").map(PathBuf::from)
        }
    })
}

/// Reports once when the node's socket accepts a connection (a sign of life for a node that
/// prints nothing on its stdout/stderr, e.g. one that logs to files only).
fn watch_node_socket(socket: &std::path::Path, tx: &Sender<Event>) {
    loop {
        if UnixStream::connect(socket).is_ok() {
            let _ = tx.send(Event::Listening);
            return;
        }
        std::thread::sleep(FILE_POLL);
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(format!("guard-{name}")).spawn(f) {
        log(format_args!("cannot start the {name} thread: {e}"));
    }
}

fn bind(path: &std::path::Path) -> Result<UnixListener, GuardError> {
    let err = |source| GuardError::Bind {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // A stale socket from a previous guard (same pod, container restart).
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    // Only our UID may even connect (SO_PEERCRED is checked as well, on every connection).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

fn spawn(command: &[OsString]) -> Result<Child, GuardError> {
    let setpriv = SETPRIV.iter().find(|p| std::path::Path::new(p).exists());
    let mut cmd = if let Some(setpriv) = setpriv {
        let mut c = Command::new(setpriv);
        c.arg("--pdeathsig").arg("KILL").arg("--").args(command);
        c
    } else {
        log(format_args!(
            "warning: setpriv not found ({}): the node will not die with the guard if the guard is killed",
            SETPRIV.join(", ")
        ));
        let mut c = Command::new(&command[0]);
        c.args(&command[1..]);
        c
    };
    // Its own process group: a terminal's Ctrl-C reaches the guard, which forwards it once.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().map_err(|source| GuardError::Spawn {
        command: format!("{command:?}"),
        source,
    })
}

/// Copies the child's output unchanged, line by line, and scans each line.
fn pass_through<W: Write + 'static>(
    from: impl Read + Send + 'static,
    to: fn() -> W,
    tx: Sender<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, from);
        let mut line = Vec::with_capacity(1024);
        let mut first = true;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut out = to();
            let _ = out.write_all(&line);
            let _ = out.flush();
            let obs = scan(&String::from_utf8_lossy(&line));
            if obs.is_some() || std::mem::take(&mut first) {
                let _ = tx.send(Event::Output(obs));
            }
        }
    })
}

fn accept(listener: UnixListener, tx: Sender<Event>) {
    let open = Arc::new(AtomicUsize::new(0));
    let me = rustix::process::getuid();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // nix, not rustix: a peer in another PID namespace (the sidecar container next to the
        // node's, without shareProcessNamespace) has PID 0 here, which rustix's UCred refuses.
        match nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials) {
            Ok(cred) if cred.uid() == me.as_raw() => {}
            Ok(cred) => {
                log(format_args!(
                    "refused a connection from UID {} (PID {}): only UID {} may talk to the guard",
                    cred.uid(),
                    cred.pid(),
                    me.as_raw()
                ));
                let _ = conn.set_write_timeout(Some(PUSH_TIMEOUT));
                let _ = conn.write_all(
                    Answer::error("peer_uid", format!("UID {} is not this guard's UID", cred.uid()))
                        .to_line()
                        .as_bytes(),
                );
                continue;
            }
            Err(e) => {
                log(format_args!("refused a connection: SO_PEERCRED failed: {e}"));
                continue;
            }
        }
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = conn.write_all(Answer::error("busy", "too many connections").to_line().as_bytes());
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (tx, open) = (tx.clone(), open.clone());
        spawn_thread("conn", move || {
            connection(conn, &tx);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Reads request lines, hands each to the loop, writes its answer. A line over [`MAX_LINE`]
/// is answered with an error and the connection closed (there is no way to resynchronise).
fn connection(conn: UnixStream, tx: &Sender<Event>) {
    let Ok(read_half) = conn.try_clone() else { return };
    let mut writer = conn;
    let _ = writer.set_write_timeout(Some(ANSWER_TIMEOUT));
    let mut reader = BufReader::new(read_half.take(u64::MAX));
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let limit = (MAX_LINE + 2) as u64;
        reader.get_mut().set_limit(limit);
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let complete = line.last() == Some(&b'\n');
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.len() > MAX_LINE || (!complete && line.len() >= MAX_LINE) {
            let e = ProtocolError::TooLong;
            log(format_args!("refused a request: {e}"));
            let _ = writer.write_all(Answer::error(e.kind(), e).to_line().as_bytes());
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = match parse_request(&line) {
            Err(e) => {
                log(format_args!("refused a request: {e}"));
                Answer::error(e.kind(), e)
            }
            Ok(req) => {
                let (reply_tx, reply_rx) = mpsc::channel();
                let event = match (req, writer.try_clone()) {
                    (Request::Subscribe, Ok(w)) => Event::Subscribe(w, reply_tx),
                    (Request::Subscribe, Err(_)) => return,
                    (req, _) => Event::Request(req, reply_tx),
                };
                if tx.send(event).is_err() {
                    return;
                }
                match reply_rx.recv_timeout(ANSWER_TIMEOUT) {
                    Ok(a) => a,
                    Err(_) => Answer::error("internal", "no answer from the guard loop"),
                }
            }
        };
        if writer.write_all(answer.to_line().as_bytes()).is_err() {
            return;
        }
    }
}

/// What became of a SIGHUP the guard was asked for.
enum Hup {
    /// Delivered.
    Sent,
    /// The node cannot take one yet: sent once it can.
    Deferred,
    /// Refused: no permit while this credential file exists.
    Refused(PathBuf),
    /// The kernel refused (the node is gone).
    Failed,
}

struct Guard {
    targets: Vec<PathBuf>,
    pid: u32,
    pidfd: Option<OwnedFd>,
    /// The permit's deadline, nanoseconds of CLOCK_MONOTONIC.
    permit: Option<u64>,
    forging: Option<bool>,
    last: Option<Observation>,
    reload_lost: bool,
    /// The node showed a sign of life: a SIGHUP no longer kills it.
    ready: bool,
    /// A reload was asked for before the node was ready.
    pending_reload: bool,
    /// A fence's SIGHUP waits for the node to be ready.
    pending_fence: bool,
    /// Consensus runs (a chain extension or a reconfiguration line was seen): a SIGHUP now
    /// takes effect.
    consensus: bool,
    /// Since when credential files have been present without a permit while consensus runs.
    unpermitted_since: Option<u64>,
    /// How long credential files may stay present without a permit before the guard removes
    /// them.
    unpermitted_grace: Duration,
    /// An escalation is under way: SIGKILL at this instant (CLOCK_MONOTONIC ns).
    kill_at: Option<u64>,
    /// SIGTERM to SIGKILL, when a fence could remove nothing.
    kill_after: Duration,
    subscribers: Vec<UnixStream>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms_of_ns(n: u64) -> u64 {
    n / 1_000_000
}

impl Guard {
    fn serve(&mut self, rx: &Receiver<Event>) -> std::io::Result<ExitStatus> {
        loop {
            let now = monotonic_now_ns();
            if self.permit.is_some_and(|d| now >= d) {
                self.fence("lapsed", "the permit lapsed (no renewal from the sidecar)");
                continue;
            }
            if self.kill_at.is_some_and(|k| now >= k) {
                self.kill_at = None;
                log(format_args!(
                    "escalation: the node has not exited {} ms after SIGTERM: SIGKILL",
                    self.kill_after.as_millis()
                ));
                self.signal(Signal::KILL);
                continue;
            }
            self.check_unpermitted(now);
            let poll = self.polling().then(|| now.saturating_add(ns(FILE_POLL)));
            let wake = [self.permit, self.kill_at, poll].into_iter().flatten().min();
            let event = match wake {
                Some(at) => match rx.recv_timeout(Duration::from_nanos(at.saturating_sub(now))) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(std::io::Error::other("all event sources ended"));
                    }
                },
                None => match rx.recv() {
                    Ok(e) => e,
                    Err(_) => return Err(std::io::Error::other("all event sources ended")),
                },
            };
            match event {
                Event::ChildExited(status) => {
                    // An exited node forges no more: subscribers waiting for a stop (the sidecar
                    // at its own shutdown, when the kubelet stops both containers at once) learn
                    // it before this guard's socket goes away.
                    self.forging = Some(false);
                    self.push("exited");
                    return status;
                }
                Event::Signal(Signal::HUP) => {
                    log(format_args!(
                        "SIGHUP received: forwarding it to the node (same rules as a reload request)"
                    ));
                    self.reload("a forwarded SIGHUP");
                }
                Event::Signal(sig) => {
                    log(format_args!("{} received: forwarding it to the node", name(sig)));
                    self.signal(sig);
                }
                Event::Listening => {
                    if !self.ready {
                        self.become_ready("its socket listens");
                    }
                }
                Event::Output(obs) => {
                    if !self.ready {
                        self.become_ready(if obs == Some(Observation::NotEffective) {
                            "it reported a reload as not effective"
                        } else {
                            "its first output line"
                        });
                    }
                    if let Some(obs) = obs {
                        self.observed(obs);
                    }
                }
                Event::Request(req, reply) => {
                    let answer = self.request(req);
                    let _ = reply.send(answer);
                }
                Event::Subscribe(stream, reply) => {
                    let _ = stream.set_write_timeout(Some(PUSH_TIMEOUT));
                    self.subscribers.push(stream);
                    let _ = reply.send(Answer::ok(self.state()));
                }
            }
        }
    }

    fn state(&self) -> GuardState {
        let now = monotonic_now_ns();
        GuardState {
            permit_ms: self.permit.map(|d| ms_of_ns(d.saturating_sub(now))),
            forging: self.forging,
            last: self.last,
            reload_lost: self.reload_lost,
            child_pid: self.pid,
            ready: self.ready,
            hup_pending: self.pending_reload || self.pending_fence,
        }
    }

    fn request(&mut self, req: Request) -> Answer {
        match req {
            Request::Permit { deadline_mono_ns } => {
                let now = monotonic_now_ns();
                if deadline_mono_ns <= now {
                    let late = ms_of_ns(now - deadline_mono_ns);
                    log(format_args!(
                        "permit refused: its deadline passed {late} ms before it arrived (a stalled sender); \
                         the node stays without one"
                    ));
                    return Answer::error(
                        "expired",
                        format!("the permit's deadline passed {late} ms before it arrived: not granted"),
                    );
                }
                let ahead = ms_of_ns(deadline_mono_ns - now);
                if ahead > MAX_TTL_MS {
                    log(format_args!(
                        "permit refused: its deadline is {ahead} ms ahead (at most {MAX_TTL_MS})"
                    ));
                    return Answer::error(
                        "field",
                        format!(
                            "deadline_mono_ns is {ahead} ms ahead of this guard's CLOCK_MONOTONIC; at most \
                             {MAX_TTL_MS} ms (is the sender on another clock?)"
                        ),
                    );
                }
                let had = self.permit.is_some();
                // Exactly what we were told, on the kernel's clock: never more.
                self.permit = Some(deadline_mono_ns);
                if !had {
                    log(format_args!("permit granted for {ahead} ms"));
                    self.push("permit");
                }
                Answer::ok(self.state())
            }
            Request::Revoke => {
                let why = if self.permit.is_some() {
                    "the sidecar revoked the permit"
                } else {
                    "the sidecar asked for a fence (no permit was held)"
                };
                self.fence("revoked", why);
                Answer::ok(self.state())
            }
            Request::Reload => match self.reload("a reload request") {
                Hup::Sent | Hup::Deferred => Answer::ok(self.state()),
                Hup::Refused(t) => Answer::error(
                    "no_permit",
                    format!(
                        "refusing to SIGHUP the node: no permit is held and {} exists (the node would start \
                         forging); grant a permit first, or remove the credential files",
                        t.display()
                    ),
                ),
                Hup::Failed => Answer::error("signal_failed", "SIGHUP could not be delivered to the node"),
            },
            Request::State | Request::Subscribe => Answer::ok(self.state()),
        }
    }

    /// The first target file that exists, if any.
    fn present_target(&self) -> Option<PathBuf> {
        self.targets.iter().find(|t| t.exists()).cloned()
    }

    /// A SIGHUP someone asked for (a reload request or a forwarded signal), under the rules:
    /// deferred until the node is ready; refused without a permit while a credential file
    /// exists (every legitimate reload has a permit, or follows the files' removal).
    fn reload(&mut self, what: &str) -> Hup {
        if !self.ready {
            if !self.pending_reload {
                log(format_args!(
                    "{what} before the node showed a sign of life: deferred (a SIGHUP now would kill it; \
                     it starts without forging)"
                ));
            }
            self.pending_reload = true;
            return Hup::Deferred;
        }
        if self.permit.is_none()
            && let Some(t) = self.present_target()
        {
            log(format_args!(
                "{what} refused: no permit and {} exists (a SIGHUP would make the node forge)",
                t.display()
            ));
            return Hup::Refused(t);
        }
        if self.signal(Signal::HUP) {
            Hup::Sent
        } else {
            Hup::Failed
        }
    }

    /// The node showed a sign of life: deliver what was deferred.
    fn become_ready(&mut self, sign: &str) {
        self.ready = true;
        log(format_args!("the node is ready for SIGHUP ({sign})"));
        // A deferred fence's SIGHUP is held to the reload rule as well: files written since
        // the fence (boot credentials) must not be read without a permit. A node that forges
        // anyway (it was allowed a producing start) is re-fenced on its "Enabling" line.
        let fence = std::mem::take(&mut self.pending_fence);
        if std::mem::take(&mut self.pending_reload) || fence {
            let what = if fence {
                "the deferred fence SIGHUP"
            } else {
                "the deferred reload"
            };
            let outcome = match self.reload(what) {
                Hup::Sent => "sent",
                Hup::Deferred => "deferred",
                Hup::Refused(_) => "dropped (the node started without forging and stays so)",
                Hup::Failed => "not delivered",
            };
            log(format_args!("{what} {outcome}"));
        }
        self.push("ready");
    }

    /// The fence: no permit, no credentials, and the node told so (S3). Always carried out,
    /// with or without a permit. If no credential file could be removed, a SIGHUP would only
    /// make the node re-read them: the guard escalates instead (SIGTERM, then SIGKILL), unless
    /// the node is known not to forge.
    fn fence(&mut self, event: &str, why: &str) {
        self.permit = None;
        self.unpermitted_since = None;
        let mut failures = Vec::new();
        let mut present = 0;
        for t in &self.targets {
            match std::fs::remove_file(t) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failures.push(format!("{}: {e}", t.display()));
                    if t.exists() {
                        present += 1;
                    }
                }
            }
        }
        let failed = if failures.is_empty() {
            String::new()
        } else {
            format!(" (removal failed: {})", failures.join("; "))
        };
        if present < self.targets.len() {
            // At least one file is gone: on a SIGHUP the node disables forging.
            let reloaded = if self.ready {
                self.signal(Signal::HUP).to_string()
            } else {
                self.pending_fence = true;
                "deferred until the node is ready".to_string()
            };
            log(format_args!(
                "permit {event}: {why}; credentials removed{failed}; node reloaded: {reloaded}"
            ));
        } else if self.forging == Some(false) {
            log(format_args!(
                "permit {event}: {why}; NO credential file could be removed{failed}; the node reports not \
                 forging and is not reloaded (it would read them); it is not terminated"
            ));
        } else {
            log(format_args!(
                "permit {event}: {why}; NO credential file could be removed{failed}; the node may forge: \
                 escalating: SIGTERM now, SIGKILL in {} ms",
                self.kill_after.as_millis()
            ));
            self.signal(Signal::TERM);
            if self.kill_at.is_none() {
                self.kill_at = Some(monotonic_now_ns().saturating_add(ns(self.kill_after)));
            }
            self.push("escalated");
        }
        self.push(event);
    }

    /// Whether the loop must wake up to look at the files.
    fn polling(&self) -> bool {
        self.permit.is_none() && self.consensus && self.kill_at.is_none()
    }

    /// Credential files present without a permit while consensus runs, for longer than the
    /// grace (a starting plan writes them just before it asks for the permit): removed.
    fn check_unpermitted(&mut self, now: u64) {
        if !self.polling() {
            self.unpermitted_since = None;
            return;
        }
        let Some(t) = self.present_target() else {
            self.unpermitted_since = None;
            return;
        };
        let since = *self.unpermitted_since.get_or_insert(now);
        if now.saturating_sub(since) >= ns(self.unpermitted_grace) {
            let why = format!(
                "{} present without a permit for {} ms while consensus runs",
                t.display(),
                self.unpermitted_grace.as_millis()
            );
            self.fence("refenced", &why);
        }
    }

    fn signal(&self, sig: Signal) -> bool {
        let r = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, sig),
            None => match rustix::process::Pid::from_raw(self.pid as i32) {
                Some(p) => rustix::process::kill_process(p, sig),
                None => return false,
            },
        };
        if let Err(e) = &r {
            log(format_args!("signal {sig:?} to the node failed: {e}"));
        }
        r.is_ok()
    }

    fn observed(&mut self, obs: Observation) {
        self.last = Some(obs);
        match obs {
            Observation::Enabled => {
                self.forging = Some(true);
                self.reload_lost = false;
                self.consensus = true;
            }
            Observation::Disabled => {
                self.forging = Some(false);
                self.reload_lost = false;
                self.consensus = true;
            }
            Observation::ReloadError => self.reload_lost = false,
            Observation::NotEffective => self.reload_lost = true,
            Observation::ChainExtended => self.consensus = true,
        }
        if obs == Observation::ChainExtended && !self.reload_lost {
            return; // frequent on a real node, and says nothing new
        }
        self.push("observed");
        if obs == Observation::Enabled && self.permit.is_none() {
            self.fence("refenced", "the node reports forging without a permit");
        }
    }

    fn push(&mut self, event: &str) {
        if self.subscribers.is_empty() {
            return;
        }
        let line = Answer::event(event, self.state()).to_line();
        self.subscribers
            .retain_mut(|s| s.write_all(line.as_bytes()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_node_socket_is_found_in_the_command() {
        assert_eq!(
            socket_path_of(&args(&[
                "cardano-node",
                "run",
                "--socket-path",
                "/ipc/node.socket"
            ])),
            Some(PathBuf::from("/ipc/node.socket"))
        );
        assert_eq!(
            socket_path_of(&args(&["cardano-node", "run", "--socket-path=/s"])),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(socket_path_of(&args(&["cardano-node", "run"])), None);
    }

    #[test]
    fn a_node_with_credentials_must_start_non_producing() {
        let e = check_start_flags(&args(&["cardano-node", "run", "--shelley-kes-key", "k"]))
            .expect_err("producing");
        assert!(
            e.contains("--shelley-kes-key") && e.contains("--start-as-non-producing-node"),
            "{e}"
        );
        let e = check_start_flags(&args(&[
            "cardano-node",
            "run",
            "--shelley-operational-certificate=c",
        ]))
        .expect_err("producing, --flag=value");
        assert!(e.contains("--shelley-operational-certificate"), "{e}");
        for ok in [
            &[
                "cardano-node",
                "run",
                "--shelley-kes-key",
                "k",
                "--start-as-non-producing-node",
            ][..],
            &["cardano-node", "run", "--config", "c.json"],
            &["sh", "-c", "exec cardano-node run --shelley-kes-key k"],
        ] {
            assert_eq!(check_start_flags(&args(ok)), Ok(()), "{ok:?}");
        }
    }
}
