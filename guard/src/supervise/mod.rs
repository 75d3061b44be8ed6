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
//! - A SIGHUP that would enable forging (a permit held, every target file present) is refused
//!   with less than the reload room (`--reload-room-ms`, the node's `STOP_GRACE`) left of the
//!   permit: the node may act on it that late, after the fence at the permit's end. A stopping
//!   SIGHUP (a file missing) and the fence's own are never refused.
//! - The node reporting "Enabling block forging" without a permit is re-fenced at once; credential
//!   files left present without a permit while consensus runs are removed after a grace. A fence
//!   that follows an enabling SIGHUP by less than the reload room reloads the node once more
//!   when that SIGHUP has had the room (for a node whose lines the guard does not see).

mod guard;
mod threads;

use std::{
    ffi::OsString,
    io::Write,
    os::unix::{net::UnixStream, process::ExitStatusExt},
    path::PathBuf,
    process::ExitStatus,
    sync::mpsc::{self, Sender},
    time::{Duration, Instant},
};

use rustix::process::{PidfdFlags, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::protocol::{Answer, Observation, Request};
use guard::Guard;
use threads::{accept, bind, pass_through, spawn, spawn_thread, watch_node_socket};

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
    /// The longest a reload may take in the node (the sidecar's `STOP_GRACE`): a reload that
    /// would enable forging is refused with less than this left of the permit, and a fence that
    /// follows an enabling reload by less than this reloads the node once more when that reload
    /// has had it. Zero disables both. At most [`MAX_RELOAD_ROOM`].
    pub reload_room: Duration,
}

/// The longest reload room accepted: more than any permit could leave refuses every start.
pub const MAX_RELOAD_ROOM: Duration = Duration::from_millis(crate::protocol::MAX_TTL_MS);

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
    let _ = writeln!(std::io::stderr().lock(), "{}{ts} {msg}", crate::LOG_PREFIX);
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
    if opts.reload_room > MAX_RELOAD_ROOM {
        return Err(GuardError::Usage(format!(
            "--reload-room-ms (GUARD_RELOAD_ROOM_MS) is {} ms: at most {} ms (the longest permit); it is \
             the longest a reload may take in the node, the sidecar's STOP_GRACE (0 disables the rule)",
            opts.reload_room.as_millis(),
            MAX_RELOAD_ROOM.as_millis()
        )));
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
        "started {:?} as PID {pid}; socket {}; reload room {} ms; no permit (the node must not forge until the \
         sidecar grants one)",
        opts.command,
        opts.socket.display(),
        opts.reload_room.as_millis()
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
        reload_room: opts.reload_room,
        enabling_sent: None,
        recheck_at: None,
        refused_late: 0,
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
