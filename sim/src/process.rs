//! Child processes that cannot outlive the test process that started them.
//!
//! Every child is started through `setpriv --pdeathsig KILL` (util-linux, essential on Debian),
//! so the kernel kills it when its parent *thread* ends. Because that signal follows the thread
//! that forked, all children are forked by one spawner thread that lives as long as the process:
//! a test thread or a tokio worker that ends early therefore never takes its children along,
//! while a test process that dies (panic, SIGKILL, `exit`) always does. Children also get their
//! own process group, so a terminal's Ctrl-C reaches only us and we stop them in order.
//!
//! This module never uses `unsafe` (no `pre_exec`); that is why it goes through `setpriv`.
//! Short commands that a test waits for (`kubectl apply -f -`) run through [`output_with_stdin`].

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where `setpriv` lives on Debian.
const SETPRIV: &str = "/usr/bin/setpriv";

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        // The thread ends only with the process (the sender lives in this static).
        let spawned = std::thread::Builder::new()
            .name("forge-sim-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            // Without a spawner every spawn below reports this error.
            eprintln!("forge-sim: cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    })
}

/// Builds a command for `program` that dies with this process (see the module docs).
pub fn tied_command(program: &Path) -> Command {
    let mut cmd = if Path::new(SETPRIV).exists() {
        let mut c = Command::new(SETPRIV);
        c.arg("--pdeathsig").arg("KILL").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    };
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}

/// Spawns `cmd` (made by [`tied_command`]) from the long-lived spawner thread.
pub fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    let (tx, rx) = channel();
    {
        let guard = spawner()
            .lock()
            .map_err(|_| std::io::Error::other("spawner lock poisoned"))?;
        guard
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    }
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// Runs `cmd` to its end with `stdin` written to its standard input (`None`: it reads nothing)
/// and returns what it printed and how it exited.
pub fn output_with_stdin(cmd: &mut Command, stdin: Option<&str>) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes())?;
    }
    child.wait_with_output()
}

/// Sends SIGTERM, waits up to `grace` for the child to exit, then SIGKILLs it and reaps it.
/// Returns true if it exited within the grace period.
pub fn terminate(child: &mut Child, grace: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// True while a process with this PID exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The resident set size of a process in KiB (`VmRSS` of `/proc/PID/status`), if it exists.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tied_child_is_terminated_and_reaped() {
        let mut cmd = tied_command(Path::new("/bin/sleep"));
        cmd.arg("30");
        let mut child = spawn_tied(cmd).expect("spawn");
        let pid = child.id();
        assert!(is_alive(pid));
        assert!(terminate(&mut child, Duration::from_secs(2)));
        assert!(!is_alive(pid));
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed_after_the_grace_period() {
        use std::io::BufRead;
        let mut cmd = tied_command(Path::new("/bin/sh"));
        cmd.arg("-c")
            .arg("trap '' TERM; echo trapped; while :; do sleep 0.05; done")
            .stdout(Stdio::piped());
        let mut child = spawn_tied(cmd).expect("spawn");
        // The child says when SIGTERM is ignored; a signal before that would end it at once.
        let mut said = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout.read_line(&mut said).expect("read the child's line");
        assert_eq!(said, "trapped\n");
        let start = Instant::now();
        assert!(!terminate(&mut child, Duration::from_millis(200)));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!is_alive(child.id()));
    }

    #[test]
    fn rss_of_this_process_is_known() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
