//! The threads that feed the loop: the node's start (under `setpriv`), the pass-through
//! readers of its output, the watcher of its socket, the guard's own socket (its acceptor, the
//! peer's UID check) and one thread per connection reading request lines.

use std::{
    ffi::OsString,
    io::{BufRead, BufReader, Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixListener, net::UnixStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Sender},
    },
};

use super::{ANSWER_TIMEOUT, Event, FILE_POLL, GuardError, MAX_CONNECTIONS, PUSH_TIMEOUT, SETPRIV, log};
use crate::{
    protocol::{Answer, MAX_LINE, ProtocolError, Request, parse_request},
    scan::scan,
};

/// Reports once when the node's socket accepts a connection (a sign of life for a node that
/// prints nothing on its stdout/stderr, e.g. one that logs to files only).
pub(super) fn watch_node_socket(socket: &std::path::Path, tx: &Sender<Event>) {
    loop {
        if UnixStream::connect(socket).is_ok() {
            let _ = tx.send(Event::Listening);
            return;
        }
        std::thread::sleep(FILE_POLL);
    }
}

pub(super) fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(format!("guard-{name}")).spawn(f) {
        log(format_args!("cannot start the {name} thread: {e}"));
    }
}

pub(super) fn bind(path: &std::path::Path) -> Result<UnixListener, GuardError> {
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

pub(super) fn spawn(command: &[OsString]) -> Result<Child, GuardError> {
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
pub(super) fn pass_through<W: Write + 'static>(
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

pub(super) fn accept(listener: UnixListener, tx: Sender<Event>) {
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
