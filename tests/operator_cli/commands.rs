//! The operator's commands run as processes: `forge-manager ...` and `kubectl forge ...` with
//! their exit code and output (appended to `FORGE_OPERATOR_CAPTURE` when set), `status` until an
//! exit code, a running `status --watch` read line by line, and the status assertion.

use std::{
    io::Write as _,
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::{exe, regions::Regions};

/// A finished command: exit code and output.
pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `forge-manager ARGS` alone (no kubeconfig or context added), stdin closed.
pub(crate) fn forge_manager(args: &[&str]) -> Ran {
    ran(Command::new(exe())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("forge-manager runs"))
}

/// Appends `$ shown` and the output to the capture file, when asked for.
fn capture(shown: &str, r: &Ran) {
    let Ok(path) = std::env::var("FORGE_OPERATOR_CAPTURE") else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("capture file");
    let _ = writeln!(f, "$ {shown}\n{}{}(exit {})\n", r.stdout, r.stderr, r.code);
}

impl Regions {
    /// `forge-manager ARGS --kubeconfig K --context east,west,south`, stdin closed.
    pub(crate) fn forge(&self, args: &[&str]) -> Ran {
        let out = Command::new(exe())
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["--context", "east,west,south"])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("forge-manager runs");
        let r = ran(out);
        capture(
            &format!("forge-manager {} --context east,west,south", shell_words(args)),
            &r,
        );
        r
    }

    /// `kubectl forge ARGS` with the symlink on PATH and `KUBECONFIG` set, as an operator runs it.
    pub(crate) fn kubectl_forge(&self, args: &[&str]) -> Ran {
        let out = Command::new("kubectl")
            .arg("forge")
            .args(args)
            .env("PATH", self.path_with_plugin())
            .env("KUBECONFIG", self.kubeconfig())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl runs (installed by .ci/run)");
        let r = ran(out);
        capture(&format!("kubectl forge {}", shell_words(args)), &r);
        r
    }

    /// Runs `status` until its exit code is `code` (statuses follow the nodes within a few
    /// renewals), bounded; returns the last run.
    pub(crate) async fn status_until(&self, code: i32, within: Duration) -> Ran {
        let started = Instant::now();
        loop {
            let r = self.forge(&["status"]);
            if r.code == code || started.elapsed() >= within {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A running `forge-manager status --watch`: its stdout lines arrive on a channel; dropping
/// it kills the process (by its pid) and reaps it.
pub(crate) struct Watch {
    child: std::process::Child,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Watch {
    pub(crate) fn start(r: &Regions, interval: &str) -> Watch {
        let mut child = Command::new(exe())
            .args(["status", "--watch", "--interval", interval, "--kubeconfig"])
            .arg(r.kubeconfig())
            .args(["--context", "east,west,south"])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("status --watch starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that `want` accepts (bounded); the lines up to it are kept in `seen`.
    pub(crate) fn wait_line(&mut self, within: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if want(&line) {
                return Some(line);
            }
        }
    }

    /// Stops it; true when it was still running (a watch must not exit by itself).
    pub(crate) fn stop(&mut self) -> bool {
        let running = matches!(self.child.try_wait(), Ok(None));
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Arguments as a shell would need them (quoted when they hold a space).
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("{a:?}")
            } else {
                (*a).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

pub(crate) fn assert_status(r: &Ran, code: i32, verdict: &str, ctx: &str, logs: impl Fn() -> String) {
    assert!(
        r.code == code && first_line(&r.stdout).starts_with(verdict),
        "{ctx}: want exit {code} and {verdict:?}, got exit {}\n{}{}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        logs()
    );
}
