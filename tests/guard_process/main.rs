//! The node guard as a process, with the node simulator as its child and no API server:
//! permit lapse and revoke fence the node, the protocol refuses garbage, oversized lines, late
//! permits and other UIDs without changing anything, signals are forwarded, and a SIGKILLed
//! guard takes its node along. "No permit, no forging": a SIGHUP waits for the node to be able
//! to take it, a reload without a permit is refused while credentials exist, forging without a
//! permit is re-fenced, a node that would forge from its start is not started, and a fence that
//! can remove nothing terminates the node. Also measures the time from the permit's lapse to the
//! node's `forging_off` (median of several runs) and the guard's RSS.
//!
//! This file holds the [`Rig`] the tests share (a guard and its node simulator in a temporary
//! directory) and its helpers; the tests are in [`permits`] (lapse, revoke, refused requests,
//! absolute deadlines, other UIDs, the lapse's latency and the guard's RSS), [`reload_room`]
//! (enabling reloads too close to the permit's end, a fence while one is under way), [`node`] (signals,
//! subscribers, reloads and stops before the node is ready), [`no_permit`] (what the guard does
//! when no permit is held) and [`sidecar`] (the NodeWatcher and the NodeSignaller talking to a
//! real guard).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use forge_guard::protocol::{Answer, Request};
use forge_sim::{
    creds::{guard_targets, node_flags, write_test_credentials},
    process::{spawn_tied, terminate, tied_command},
    timeline::{EventKind, TimelineEvent, read_file},
};

mod no_permit;
mod node;
mod permits;
mod reload_room;
mod sidecar;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

/// How a [`Rig`] starts.
#[derive(Default)]
struct RigOptions {
    /// The node simulator starts as a block producer (it forges from its start).
    producing: bool,
    replay_ms: u64,
    /// The node only starts once this file (in the rig's directory) exists: until then its
    /// process is a shell without a SIGHUP handler.
    gate: Option<&'static str>,
    /// Extra arguments to `forge-manager guard`.
    guard_args: Vec<String>,
    /// Extra arguments to the node simulator (`forge-manager sim node`).
    node_args: Vec<String>,
    /// The node's output goes to /dev/null: the guard sees none of its lines (a node that logs
    /// to files only) and learns that it is ready from its socket (`--node-socket`).
    silent: bool,
}

/// One guard + node simulator in a temporary directory.
struct Rig {
    dir: tempfile::TempDir,
    guard: Option<Child>,
    /// Files made immutable (chattr +i) by a test: made mutable again before the directory goes.
    immutable: Vec<PathBuf>,
}

impl Rig {
    /// Starts the guard around a non-producing node simulator without replay; returns once
    /// both sockets accept.
    fn start() -> Rig {
        Self::launch(RigOptions::default())
    }

    fn launch(o: RigOptions) -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("forge-guard-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("target")).expect("mkdir");
        write_test_credentials(&d.join("target"), 1, 0).expect("credentials");
        let t = d.join("target");
        let mut cmd = tied_command(&exe());
        cmd.arg("guard")
            .arg("--socket")
            .arg(d.join("guard.sock"))
            .arg("--targets")
            .arg(guard_targets(&t))
            .args(&o.guard_args);
        if o.silent {
            cmd.arg("--node-socket").arg(d.join("node.socket"));
        }
        cmd.arg("--");
        if let Some(gate) = o.gate {
            cmd.args([
                "/bin/sh",
                "-c",
                r#"while [ ! -e "$0" ]; do sleep 0.01; done; exec "$@""#,
            ])
            .arg(d.join(gate));
        }
        if o.silent {
            cmd.args(["/bin/sh", "-c", r#"exec "$@" >/dev/null 2>&1"#, "sh"]);
        }
        cmd.arg(exe())
            .args(["sim", "node", "--name", "n0"])
            .arg("--socket")
            .arg(d.join("node.socket"))
            .args(node_flags(&t))
            .arg("--timeline")
            .arg(d.join("timeline.jsonl"))
            .arg("--replay-ms")
            .arg(o.replay_ms.to_string())
            .args(&o.node_args);
        if !o.producing {
            cmd.arg("--start-as-non-producing-node");
        }
        let log = std::fs::File::create(d.join("guard.log")).expect("log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let guard = spawn_tied(cmd).expect("spawn guard");
        let rig = Rig {
            dir,
            guard: Some(guard),
            immutable: Vec::new(),
        };
        let node_too = o.gate.is_none();
        rig.wait(
            Duration::from_secs(10),
            "the guard's socket (and the node's)",
            || {
                UnixStream::connect(rig.socket()).is_ok()
                    && (!node_too || UnixStream::connect(rig.path("node.socket")).is_ok())
            },
        );
        if node_too {
            // The node printed its first line: the guard may SIGHUP it.
            rig.wait(Duration::from_secs(5), "the guard sees the node ready", || {
                rig.state().ready
            });
        }
        rig
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("guard.sock")
    }

    /// Subscribes to the guard: the reader of its first answer and of the lines it pushes
    /// afterwards (a 5 s read timeout).
    fn subscribe(&self) -> BufReader<UnixStream> {
        let conn = UnixStream::connect(self.socket()).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (&conn)
            .write_all(Request::Subscribe.to_line().as_bytes())
            .expect("subscribe");
        BufReader::new(conn)
    }

    fn targets(&self) -> Vec<PathBuf> {
        ["kes.skey", "vrf.skey", "node.cert"]
            .iter()
            .map(|f| self.path("target").join(f))
            .collect()
    }

    fn events(&self) -> Vec<TimelineEvent> {
        read_file(&self.path("timeline.jsonl")).unwrap_or_default()
    }

    fn count(&self, kind: EventKind) -> usize {
        self.events().iter().filter(|e| e.event == kind).count()
    }

    /// When the node first logged `kind` (unix ns), if it did.
    fn first_at(&self, kind: EventKind) -> Option<u64> {
        self.events()
            .iter()
            .find(|e| e.event == kind)
            .map(|e| e.t_unix_ns)
    }

    /// When the node last logged `kind` (unix ns), if it did.
    fn last_at(&self, kind: EventKind) -> Option<u64> {
        self.events()
            .iter()
            .rfind(|e| e.event == kind)
            .map(|e| e.t_unix_ns)
    }

    fn forging(&self) -> bool {
        self.events()
            .iter()
            .rfind(|e| {
                matches!(
                    e.event,
                    EventKind::ForgingOn | EventKind::ForgingOff | EventKind::Exit
                )
            })
            .is_some_and(|e| e.event == EventKind::ForgingOn)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("guard.log")).unwrap_or_default()
    }

    fn guard_pid(&self) -> u32 {
        self.guard.as_ref().expect("guard running").id()
    }

    fn state(&self) -> forge_guard::protocol::GuardState {
        self.ask(Request::State).state.expect("state")
    }

    /// The node's PID, as the guard reports it.
    fn node_pid(&self) -> u32 {
        self.state().child_pid
    }

    fn ask(&self, req: Request) -> Answer {
        let answers = self.send_raw(&[req.to_line().into_bytes()]);
        answers.into_iter().next().expect("an answer")
    }

    /// A permit, then a reload: the node forges (as the sidecar starts it).
    fn start_forging(&self, permit_ms: u64) {
        let a = self.ask(permit(permit_ms));
        assert!(a.ok, "{a:?}");
        let a = self.ask(Request::Reload);
        assert!(a.ok, "{a:?}");
        self.wait(Duration::from_secs(5), "forging after permit and reload", || {
            self.forging()
        });
    }

    /// Sends raw lines on one connection; returns the answers read (one per line, or fewer
    /// when the guard closed the connection).
    fn send_raw(&self, lines: &[Vec<u8>]) -> Vec<Answer> {
        let conn = UnixStream::connect(self.socket()).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut w = conn.try_clone().expect("clone");
        let mut r = BufReader::new(conn);
        let mut answers = Vec::new();
        for line in lines {
            if w.write_all(line).is_err() {
                break;
            }
            let mut a = String::new();
            if r.read_line(&mut a).unwrap_or(0) == 0 {
                break;
            }
            answers.push(Answer::parse(&a).unwrap_or_else(|e| panic!("bad answer {a:?}: {e}")));
        }
        answers
    }

    fn wait(&self, within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
        let t0 = Instant::now();
        while !check() {
            assert!(
                t0.elapsed() < within,
                "{what}: not within {within:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    }

    /// Waits for the guard to exit; returns its exit code.
    fn exited(&mut self, within: Duration) -> Option<i32> {
        let mut guard = self.guard.take().expect("guard running");
        let t0 = Instant::now();
        loop {
            if let Some(s) = guard.try_wait().expect("wait") {
                return s.code();
            }
            if t0.elapsed() > within {
                self.guard = Some(guard);
                panic!("the guard did not exit within {within:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Makes `files` impossible to remove: immutable as root (a read-only directory does not
    /// stop root), else a read-only target directory. False if neither works here.
    fn make_unremovable(&mut self, files: &[PathBuf]) -> bool {
        if rustix::process::getuid().is_root() {
            for f in files {
                let ok = Command::new("chattr")
                    .arg("+i")
                    .arg(f)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return false;
                }
                self.immutable.push(f.clone());
            }
            true
        } else {
            files.len() == self.targets().len()
                && std::fs::set_permissions(self.path("target"), std::fs::Permissions::from_mode(0o555))
                    .is_ok()
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            terminate(&mut g, Duration::from_secs(3));
        }
        for f in &self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(f).status();
        }
        let _ = std::fs::set_permissions(self.path("target"), std::fs::Permissions::from_mode(0o755));
    }
}

/// A permit that ends `ms` from now.
fn permit(ms: u64) -> Request {
    Request::Permit {
        deadline_mono_ns: forge_guard::monotonic_now_ns() + ms * 1_000_000,
    }
}
