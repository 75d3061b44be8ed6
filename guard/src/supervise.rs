//! The guard process: the child, the signals, the socket, the permit.
//!
//! Threads feed one loop (the only owner of the state) through a channel: a signal thread
//! (SIGTERM/SIGINT/SIGHUP/SIGQUIT are blocked and waited for, then forwarded to the child), a
//! waiter (the child's exit), two pass-through readers (stdout/stderr copied unchanged, each
//! line scanned), an acceptor and one thread per connection. The loop sleeps until the next
//! event or the permit's deadline, whichever comes first. No thread ever blocks the loop: pushes
//! to subscribers are written with a short timeout and a slow subscriber is dropped.

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

use nix::sys::signal::{SigSet, Signal};
use rustix::{fd::OwnedFd, process::PidfdFlags};

use crate::{
    protocol::{Answer, GuardState, MAX_LINE, Observation, ProtocolError, Request, parse_request},
    scan::scan,
};

/// `setpriv` (util-linux): sets PR_SET_PDEATHSIG in the child before it execs the command, so
/// the node dies with the guard even when the guard is SIGKILLed; no `unsafe` `pre_exec` here.
const SETPRIV: &str = "/usr/bin/setpriv";

/// How long a push to a subscriber may block before that subscriber is dropped.
const PUSH_TIMEOUT: Duration = Duration::from_millis(100);

/// How long a connection waits for the loop's answer (the loop never blocks for long).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many connections at once; more are refused (a misbehaving peer cannot exhaust
/// the guard's threads).
const MAX_CONNECTIONS: usize = 32;

/// How to run the guard.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// The Unix socket the sidecar talks to.
    pub socket: PathBuf,
    /// The target credential files to remove when the permit lapses or is revoked.
    pub targets: Vec<PathBuf>,
    /// The node's command line.
    pub command: Vec<OsString>,
}

/// Why the guard could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
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
    Signals(nix::Error),
}

enum Event {
    Signal(Signal),
    ChildExited(std::io::Result<ExitStatus>),
    Observed(Observation),
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
/// Must be called before any other thread exists: the forwarded signals are blocked in the
/// calling thread (once the child is forked) and every thread it starts inherits that mask, so
/// they are only ever taken by the signal thread's `sigwait`.
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
    let mut forwarded = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
        forwarded.add(s);
    }
    let listener = bind(&opts.socket)?;
    // Forked before the signals are blocked: a child inherits its parent thread's signal mask
    // (through exec too), and the node must receive SIGHUP and SIGTERM. A signal arriving
    // between the two lines ends the guard, and PR_SET_PDEATHSIG the child: safe.
    let mut child = spawn(&opts.command)?;
    forwarded.thread_block().map_err(GuardError::Signals)?;
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
            while let Ok(sig) = forwarded.wait() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        }
    });
    spawn_thread("acceptor", {
        let tx = tx.clone();
        move || accept(listener, tx)
    });
    drop(tx);

    let mut guard = Guard {
        targets: opts.targets,
        pid,
        pidfd,
        permit: None,
        forging: None,
        last: None,
        reload_lost: false,
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
    let mut cmd = if std::path::Path::new(SETPRIV).exists() {
        let mut c = Command::new(SETPRIV);
        c.arg("--pdeathsig").arg("KILL").arg("--").args(command);
        c
    } else {
        log(format_args!(
            "warning: {SETPRIV} not found: the node will not die with the guard if the guard is killed"
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
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut out = to();
            let _ = out.write_all(&line);
            let _ = out.flush();
            if let Some(obs) = scan(&String::from_utf8_lossy(&line)) {
                let _ = tx.send(Event::Observed(obs));
            }
        }
    })
}

fn accept(listener: UnixListener, tx: Sender<Event>) {
    let open = Arc::new(AtomicUsize::new(0));
    let me = rustix::process::getuid();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        match rustix::net::sockopt::socket_peercred(&conn) {
            Ok(cred) if cred.uid == me => {}
            Ok(cred) => {
                log(format_args!(
                    "refused a connection from UID {} (PID {}): only UID {} may talk to the guard",
                    cred.uid.as_raw(),
                    cred.pid.as_raw_nonzero(),
                    me.as_raw()
                ));
                let _ = conn.set_write_timeout(Some(PUSH_TIMEOUT));
                let _ = conn.write_all(
                    Answer::error(
                        "peer_uid",
                        format!("UID {} is not this guard's UID", cred.uid.as_raw()),
                    )
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

struct Guard {
    targets: Vec<PathBuf>,
    pid: u32,
    pidfd: Option<OwnedFd>,
    /// The permit's deadline on CLOCK_MONOTONIC (`Instant`).
    permit: Option<Instant>,
    forging: Option<bool>,
    last: Option<Observation>,
    reload_lost: bool,
    subscribers: Vec<UnixStream>,
}

impl Guard {
    fn serve(&mut self, rx: &Receiver<Event>) -> std::io::Result<ExitStatus> {
        loop {
            let event = match self.permit {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.fence("lapsed", "the permit lapsed (no renewal from the sidecar)");
                        continue;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(e) => e,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => {
                            return Err(std::io::Error::other("all event sources ended"));
                        }
                    }
                }
                None => match rx.recv() {
                    Ok(e) => e,
                    Err(_) => return Err(std::io::Error::other("all event sources ended")),
                },
            };
            match event {
                Event::ChildExited(status) => return status,
                Event::Signal(sig) => {
                    log(format_args!("{sig} received: forwarding it to the node"));
                    if let Some(sig) = rustix::process::Signal::from_named_raw(sig as i32) {
                        self.signal(sig);
                    }
                }
                Event::Observed(obs) => self.observed(obs),
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
        GuardState {
            permit_ms: self.permit.map(|d| {
                u64::try_from(d.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(u64::MAX)
            }),
            forging: self.forging,
            last: self.last,
            reload_lost: self.reload_lost,
            child_pid: self.pid,
        }
    }

    fn request(&mut self, req: Request) -> Answer {
        match req {
            Request::Permit { ttl } => {
                let had = self.permit.is_some();
                // Exactly what we were told, from now on our own clock: never more.
                self.permit = Some(Instant::now() + ttl);
                if !had {
                    log(format_args!("permit granted for {} ms", ttl.as_millis()));
                    self.push("permit");
                }
                Answer::ok(self.state())
            }
            Request::Revoke => {
                if self.permit.is_some() {
                    self.fence("revoked", "the sidecar revoked the permit");
                }
                Answer::ok(self.state())
            }
            Request::Reload => {
                if self.signal(rustix::process::Signal::HUP) {
                    Answer::ok(self.state())
                } else {
                    Answer::error("signal_failed", "SIGHUP could not be delivered to the node")
                }
            }
            Request::State | Request::Subscribe => Answer::ok(self.state()),
        }
    }

    /// The fence: no permit, no credentials, and the node told so (S3).
    fn fence(&mut self, event: &str, why: &str) {
        self.permit = None;
        let mut failures = Vec::new();
        for t in &self.targets {
            match std::fs::remove_file(t) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => failures.push(format!("{}: {e}", t.display())),
            }
        }
        let signalled = self.signal(rustix::process::Signal::HUP);
        log(format_args!(
            "permit {event}: {why}; credentials removed{}; node reloaded: {signalled}",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" (failed: {})", failures.join("; "))
            }
        ));
        self.push(event);
    }

    fn signal(&self, sig: rustix::process::Signal) -> bool {
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
            }
            Observation::Disabled => {
                self.forging = Some(false);
                self.reload_lost = false;
            }
            Observation::ReloadError => self.reload_lost = false,
            Observation::NotEffective => self.reload_lost = true,
            Observation::ChainExtended => {}
        }
        if obs == Observation::ChainExtended && !self.reload_lost {
            return; // frequent on a real node, and says nothing new
        }
        self.push("observed");
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
