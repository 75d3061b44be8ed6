//! Finding the cardano-node process and signalling it, through `/proc` (reference layout: a
//! shared process namespace; the node guard makes this unnecessary later).
//!
//! Discovery prefers the process that *listens on the node socket*: the socket's inode from
//! `/proc/net/unix`, then the `/proc/<pid>/fd` entry that holds it. That is what keeps each
//! manager to its own node when several nodes run on one host (tests do). Failing that, an
//! exact match of the executable's file name or `comm`, never a substring of an argument (the
//! reference signalled the first process whose arguments merely contained "cardano-node").
//!
//! Every process is identified by PID *and* start time, and signals go through a pidfd opened
//! before the start time is checked again, so a reused PID is never signalled (S1: a SIGHUP to
//! the wrong process would leave the real forger untouched).

use std::{
    fs,
    io::{self, ErrorKind},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::ports::{NodeHost, SocketState};

/// The port's types under the names this adapter has always used.
pub use crate::ports::{DiscoveryError, ProcessIdentity, SignalError};

/// A view of a procfs mount (normally `/proc`).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/proc"),
        }
    }
}

/// Flag of a listening socket in `/proc/net/unix` (`__SO_ACCEPTCON`).
const SO_ACCEPTCON: u32 = 0x0001_0000;

impl ProcFs {
    /// A procfs mounted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Inodes of the listening Unix sockets bound to `socket` (`/proc/net/unix`).
    pub fn listening_socket_inodes(&self, socket: &Path) -> io::Result<Vec<u64>> {
        let table = fs::read_to_string(self.root.join("net/unix"))?;
        let wanted = socket.as_os_str().to_string_lossy();
        Ok(table
            .lines()
            .skip(1)
            .filter_map(|line| {
                // Num RefCount Protocol Flags Type St Inode [Path]
                let cols: Vec<&str> = line.split_whitespace().collect();
                let flags = u32::from_str_radix(cols.get(3)?, 16).ok()?;
                let inode = cols.get(6)?.parse::<u64>().ok()?;
                let path = cols.get(7)?;
                (flags & SO_ACCEPTCON != 0 && *path == wanted).then_some(inode)
            })
            .collect())
    }

    /// PIDs with a file descriptor on socket `inode`.
    pub fn pids_holding_socket(&self, inode: u64) -> Vec<i32> {
        let target = format!("socket:[{inode}]");
        self.pids()
            .into_iter()
            .filter(|pid| {
                let Ok(fds) = fs::read_dir(self.root.join(pid.to_string()).join("fd")) else {
                    return false;
                };
                fds.filter_map(Result::ok).any(|fd| {
                    fs::read_link(fd.path())
                        .map(|l| l.as_os_str() == target.as_str())
                        .unwrap_or(false)
                })
            })
            .collect()
    }

    /// All numeric entries of the procfs root.
    pub fn pids(&self) -> Vec<i32> {
        fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The identity of a live process.
    pub fn identity(&self, pid: i32) -> io::Result<ProcessIdentity> {
        let stat = fs::read_to_string(self.root.join(pid.to_string()).join("stat"))?;
        // `comm` (field 2) may contain spaces and parentheses: parse after the last ')'.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "malformed stat"))?;
        // After ')' come field 3 (state) onwards; starttime is field 22, i.e. index 19 here.
        // A zombie (exited, not yet reaped) runs nothing: it is not a live process.
        if matches!(after.split_whitespace().next(), Some("Z" | "X" | "x")) {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                "the process has exited (zombie)",
            ));
        }
        let start_time = after
            .split_whitespace()
            .nth(19)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "no start time in stat"))?;
        Ok(ProcessIdentity { pid, start_time })
    }

    /// The command line of a process, split at NULs.
    pub fn cmdline(&self, pid: i32) -> io::Result<Vec<String>> {
        let raw = fs::read(self.root.join(pid.to_string()).join("cmdline"))?;
        Ok(raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }

    /// Processes whose executable file name or `comm` equals `name` exactly. `comm` is cut to
    /// 15 bytes by the kernel, so it is compared with the name cut the same way.
    pub fn find_by_name(&self, name: &str) -> Vec<ProcessIdentity> {
        let comm_name: String = name.chars().take(15).collect();
        self.pids()
            .into_iter()
            .filter(|pid| {
                let dir = self.root.join(pid.to_string());
                let exe_matches = fs::read_link(dir.join("exe"))
                    .ok()
                    .and_then(|p| p.file_name().map(|f| f.to_string_lossy() == name))
                    .unwrap_or(false);
                exe_matches
                    || fs::read_to_string(dir.join("comm"))
                        .map(|c| c.trim_end() == comm_name)
                        .unwrap_or(false)
            })
            .filter_map(|pid| self.identity(pid).ok())
            .collect()
    }

    /// Finds the node: the process listening on `socket` if any, else the only process named
    /// `name`. Never a guess between several.
    pub fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        let by_socket: Vec<ProcessIdentity> = self
            .listening_socket_inodes(socket)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|inode| self.pids_holding_socket(inode))
            .filter_map(|pid| self.identity(pid).ok())
            .collect();
        // A listener shared with a child (fork after bind) is held by several PIDs: prefer the
        // one whose name matches, else the oldest (the one that bound it).
        if let Some(found) = by_socket
            .iter()
            .find(|p| self.find_by_name(name).contains(p))
            .or_else(|| by_socket.iter().min_by_key(|p| p.start_time))
        {
            return Ok(*found);
        }
        let by_name = self.find_by_name(name);
        match by_name.as_slice() {
            [one] => Ok(*one),
            [] => Err(DiscoveryError::NotFound {
                socket: socket.to_path_buf(),
                name: name.to_string(),
            }),
            many => Err(DiscoveryError::Ambiguous {
                socket: socket.to_path_buf(),
                name: name.to_string(),
                count: many.len(),
            }),
        }
    }

    /// Sends `signal` to `target` only if the PID still names the same process: a pidfd pins
    /// the process first, then the start time is compared, then the signal goes via the pidfd.
    pub fn signal(&self, target: ProcessIdentity, signal: Signal) -> Result<(), SignalError> {
        let pid = target.pid;
        let pidfd: OwnedFd = Pid::from_raw(pid)
            .ok_or(SignalError::Gone { pid })
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()).map_err(|e| map_errno(pid, e)))?;
        match self.identity(pid) {
            Ok(now) if now == target => {}
            _ => return Err(SignalError::Gone { pid }),
        }
        pidfd_send_signal(&pidfd, signal).map_err(|e| map_errno(pid, e))
    }
}

/// Whether `socket` accepts a connection within `timeout` (closed again at once).
pub async fn check_socket(socket: &Path, timeout: Duration) -> SocketState {
    match tokio::fs::symlink_metadata(socket).await {
        Ok(_) => match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(socket)).await {
            Ok(Ok(stream)) => {
                drop(stream);
                SocketState::Accepting
            }
            Ok(Err(e)) => SocketState::NotAccepting(e.to_string()),
            Err(_) => {
                SocketState::NotAccepting(format!("connect timed out after {} ms", timeout.as_millis()))
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => SocketState::Absent,
        Err(e) => SocketState::NotAccepting(format!("cannot stat the socket: {e}")),
    }
}

/// The node through the real socket, this procfs and pidfd signals, behind the [`NodeHost`]
/// port.
impl NodeHost for ProcFs {
    fn check_socket(&self, socket: &Path, timeout: Duration) -> BoxFuture<'static, SocketState> {
        let socket = socket.to_path_buf();
        async move { check_socket(&socket, timeout).await }.boxed()
    }

    fn listening_socket_inodes(&self, socket: &Path) -> io::Result<Vec<u64>> {
        ProcFs::listening_socket_inodes(self, socket)
    }

    fn identity(&self, pid: i32) -> io::Result<ProcessIdentity> {
        ProcFs::identity(self, pid)
    }

    fn discover_node(&self, socket: &Path, name: &str) -> Result<ProcessIdentity, DiscoveryError> {
        ProcFs::discover_node(self, socket, name)
    }

    fn cmdline(&self, pid: i32) -> io::Result<Vec<String>> {
        ProcFs::cmdline(self, pid)
    }

    fn signal(&self, target: ProcessIdentity, signal: Signal) -> Result<(), SignalError> {
        ProcFs::signal(self, target, signal)
    }
}

fn map_errno(pid: i32, e: rustix::io::Errno) -> SignalError {
    if e == rustix::io::Errno::SRCH {
        SignalError::Gone { pid }
    } else {
        SignalError::Failed {
            pid,
            source: e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::{net::UnixListener, process::ExitStatusExt},
        process::{Child, Command},
    };

    use super::*;

    /// A child process with a unique executable name (a copy of `sleep`), killed on drop.
    struct NamedChild(Child);

    impl NamedChild {
        fn spawn(dir: &Path, name: &str) -> Self {
            let exe = dir.join(name);
            fs::copy("/bin/sleep", &exe).expect("copy sleep");
            NamedChild(Command::new(&exe).arg("30").spawn().expect("spawn"))
        }
        fn pid(&self) -> i32 {
            self.0.id() as i32
        }
    }

    impl Drop for NamedChild {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn the_process_listening_on_the_node_socket_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("node.socket");
        let _listener = UnixListener::bind(&socket).expect("bind");
        let found = ProcFs::default()
            .discover_node(&socket, "no-such-process-name")
            .expect("found");
        assert_eq!(found.pid, std::process::id() as i32);
    }

    #[test]
    fn a_process_is_found_by_exact_name_but_not_by_substring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = NamedChild::spawn(dir.path(), "fm-test-node-a1");
        let proc = ProcFs::default();
        let socket = dir.path().join("absent.socket");
        // Wait (bounded) for the exec to complete so exe/comm show the new name.
        let found = (0..200)
            .find_map(|_| {
                proc.discover_node(&socket, "fm-test-node-a1").ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                })
            })
            .expect("found by name");
        assert_eq!(found.pid, child.pid());
        let err = proc
            .discover_node(&socket, "fm-test-node")
            .expect_err("a prefix is not a match");
        assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err}");
    }

    #[test]
    fn two_processes_with_the_same_name_are_not_guessed_between() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = tempfile::tempdir_in(dir.path()).expect("a");
        let b = tempfile::tempdir_in(dir.path()).expect("b");
        let _one = NamedChild::spawn(a.path(), "fm-test-twin");
        let _two = NamedChild::spawn(b.path(), "fm-test-twin");
        let proc = ProcFs::default();
        let socket = dir.path().join("absent.socket");
        let err = (0..200)
            .find_map(|_| match proc.discover_node(&socket, "fm-test-twin") {
                Err(e @ DiscoveryError::Ambiguous { .. }) => Some(e),
                _ => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
            })
            .expect("ambiguous");
        assert!(err.to_string().contains("refusing to guess"));
    }

    #[test]
    fn a_signal_reaches_the_identified_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = NamedChild::spawn(dir.path(), "fm-test-hup");
        let proc = ProcFs::default();
        let id = proc.identity(child.pid()).expect("identity");
        proc.signal(id, Signal::HUP).expect("delivered");
        let status = child.0.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc_sighup()));
    }

    #[test]
    fn a_stale_identity_is_never_signalled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = NamedChild::spawn(dir.path(), "fm-test-stale");
        let proc = ProcFs::default();
        let mut id = proc.identity(child.pid()).expect("identity");
        id.start_time += 1; // the PID now "belongs" to another process
        let err = proc.signal(id, Signal::HUP).expect_err("refused");
        assert!(matches!(err, SignalError::Gone { .. }));
        assert!(
            child.0.try_wait().expect("try_wait").is_none(),
            "the process must be untouched"
        );
    }

    #[test]
    fn a_process_that_exited_is_reported_gone() {
        // A live process (a zombie has no identity: it no longer runs), then its end.
        let mut child = Command::new("sleep").arg("30").spawn().expect("spawn");
        let id = ProcFs::default()
            .identity(child.id() as i32)
            .expect("identity while it runs");
        child.kill().expect("kill");
        child.wait().expect("wait");
        let err = ProcFs::default().signal(id, Signal::HUP).expect_err("gone");
        assert_eq!(err.kind(), "gone");
    }

    #[test]
    fn the_command_line_is_split_into_arguments() {
        let args = ProcFs::default()
            .cmdline(std::process::id() as i32)
            .expect("cmdline");
        assert!(!args.is_empty());
    }

    fn libc_sighup() -> i32 {
        Signal::HUP.as_raw()
    }
}
