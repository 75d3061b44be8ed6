//! The node guard as a process, with the node simulator as its child and no API server:
//! permit lapse and revoke fence the node, the protocol refuses garbage, oversized lines, late
//! permits and other UIDs without changing anything, signals are forwarded, and a SIGKILLed
//! guard takes its node along. "No permit, no forging": a SIGHUP waits for the node to be able
//! to take it, a reload without a permit is refused while credentials exist, forging without a
//! permit is re-fenced, a node that would forge from its start is not started, and a fence that
//! can remove nothing terminates the node. Also measures the time from the permit's lapse to the
//! node's `forging_off` (median of several runs) and the guard's RSS.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use forge_guard::protocol::{Answer, Request};
use forge_sim::{
    creds::write_test_credentials,
    process::{is_alive, rss_kib, spawn_tied, terminate, tied_command},
    timeline::{EventKind, TimelineEvent, read_file},
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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
            .arg(format!(
                "{},{},{}",
                t.join("kes.skey").display(),
                t.join("vrf.skey").display(),
                t.join("node.cert").display()
            ))
            .args(&o.guard_args)
            .arg("--");
        if let Some(gate) = o.gate {
            cmd.args([
                "/bin/sh",
                "-c",
                r#"while [ ! -e "$0" ]; do sleep 0.01; done; exec "$@""#,
            ])
            .arg(d.join(gate));
        }
        cmd.arg(exe())
            .args(["sim", "node", "--name", "n0"])
            .arg("--socket")
            .arg(d.join("node.socket"))
            .arg("--kes")
            .arg(t.join("kes.skey"))
            .arg("--vrf")
            .arg(t.join("vrf.skey"))
            .arg("--opcert")
            .arg(t.join("node.cert"))
            .arg("--timeline")
            .arg(d.join("timeline.jsonl"))
            .arg("--replay-ms")
            .arg(o.replay_ms.to_string());
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

/// The `t_unix_ns` of the guard's log line containing `what`.
fn logged_at(log: &str, what: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split("t_unix_ns=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

#[test]
fn a_lapsed_permit_removes_the_credentials_and_stops_the_node_forging() {
    let rig = Rig::start();
    assert_eq!(rig.state().permit_ms, None, "the guard starts without a permit");
    rig.start_forging(1000);
    std::thread::sleep(Duration::from_millis(600));
    // Renewed in time: still forging.
    let a = rig.ask(permit(1000));
    assert!(a.ok, "{a:?}");
    assert!(a.state.expect("state").permit_ms.is_some_and(|ms| ms <= 1000));
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        rig.forging(),
        "fenced although the permit was renewed\n{}",
        rig.log()
    );
    // Not renewed: the guard fences on its own.
    let took = rig.wait(Duration::from_secs(3), "forging_off after the lapse", || {
        !rig.forging()
    });
    eprintln!("fenced {took:?} after the last check");
    for t in rig.targets() {
        assert!(!t.exists(), "{} left behind", t.display());
    }
    assert_eq!(rig.state().permit_ms, None);
    rig.wait(Duration::from_secs(2), "the guard sees the node stop", || {
        rig.state().forging == Some(false)
    });
    assert!(rig.log().contains("permit lapsed"), "{}", rig.log());
}

#[test]
fn a_revoked_permit_fences_at_once_and_reload_signals_the_node() {
    let rig = Rig::start();
    // Non-producing: a reload with the files present enables forging (the sidecar's job).
    rig.start_forging(10_000);
    rig.wait(Duration::from_secs(2), "the guard reports forging", || {
        rig.state().forging == Some(true)
    });
    let a = rig.ask(Request::Revoke);
    assert!(a.ok && a.state.expect("state").permit_ms.is_none());
    rig.wait(Duration::from_secs(2), "forging_off after revoke", || {
        !rig.forging()
    });
    assert!(rig.targets().iter().all(|t| !t.exists()));
}

#[test]
fn garbage_oversized_late_and_unknown_requests_get_errors_and_change_nothing() {
    let rig = Rig::start();
    rig.start_forging(60_000);
    let before = rig.state();
    let bad: Vec<Vec<u8>> = vec![
        b"garbage\n".to_vec(),
        b"{\"v\":3,\"op\":\"revoke\"}\n".to_vec(),
        b"{\"v\":2,\"op\":\"grant\",\"deadline_mono_ns\":1}\n".to_vec(),
        // Version 1's relative permit is no longer accepted.
        b"{\"v\":1,\"op\":\"permit\",\"ttl_ms\":99999999}\n".to_vec(),
        // A deadline already past, and one far beyond the longest permit.
        b"{\"v\":2,\"op\":\"permit\",\"deadline_mono_ns\":1}\n".to_vec(),
        format!(
            "{{\"v\":2,\"op\":\"permit\",\"deadline_mono_ns\":{}}}\n",
            forge_guard::monotonic_now_ns() + 3_600_000_000_000
        )
        .into_bytes(),
        b"{\"v\":2,\"op\":\"revoke\",\"now\":true}\n".to_vec(),
        b"\xff\xfe\n".to_vec(),
    ];
    let answers = rig.send_raw(&bad);
    assert_eq!(answers.len(), bad.len(), "one answer per line, connection kept");
    for a in &answers {
        assert!(!a.ok && a.kind.is_some() && a.error.is_some(), "{a:?}");
    }
    assert_eq!(answers[4].kind.as_deref(), Some("expired"), "{:?}", answers[4]);
    // A line over 4 KiB: an error, then the connection is closed.
    let mut long = vec![b'{'; 5000];
    long.push(b'\n');
    let answers = rig.send_raw(&[long, Request::Revoke.to_line().into_bytes()]);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].kind.as_deref(), Some("too_long"));
    let after = rig.state();
    assert!(
        after.permit_ms.is_some_and(|ms| ms > 50_000),
        "the permit survived unchanged: {after:?}"
    );
    assert_eq!(after.forging, before.forging);
    assert!(rig.forging(), "the node still forges");
    assert!(rig.targets().iter().all(|t| t.exists()));
}

/// The permit's end is where the sender put it, however late the request arrives: a request
/// delayed past its deadline is refused, one delayed less keeps its absolute end (a relative
/// TTL would have been stretched by the delay).
#[test]
fn a_permit_ends_at_its_absolute_deadline_however_late_it_arrives() {
    let rig = Rig::start();
    let late = permit(300);
    std::thread::sleep(Duration::from_millis(500));
    let a = rig.ask(late);
    assert!(!a.ok, "{a:?}");
    assert_eq!(a.kind.as_deref(), Some("expired"));
    assert_eq!(rig.state().permit_ms, None);
    assert!(
        rig.log().contains("permit refused: its deadline passed"),
        "{}",
        rig.log()
    );

    let delayed = permit(2000);
    std::thread::sleep(Duration::from_millis(800));
    let a = rig.ask(delayed);
    assert!(a.ok, "{a:?}");
    let left = a.state.expect("state").permit_ms.expect("a permit");
    assert!(
        left <= 1200,
        "the permit ends {left} ms after arrival, not by its deadline"
    );
}

#[test]
fn a_peer_with_another_uid_is_refused() {
    if !rustix::process::getuid().is_root() {
        eprintln!("SKIPPED a_peer_with_another_uid_is_refused: needs root to run a client as another UID");
        return;
    }
    let rig = Rig::start();
    rig.start_forging(60_000);
    // Let UID 65534 reach the socket at all: the file mode (0600) would refuse it before the
    // guard's own SO_PEERCRED check, which is what this test is about.
    std::fs::set_permissions(rig.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(rig.socket(), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    // A copy of the binary that UID 65534 may execute.
    let bin = rig.path("forge-manager");
    std::fs::copy(exe(), &bin).expect("copy");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("guard-ctl")
        .arg("--socket")
        .arg(rig.socket())
        .arg(r#"{"v":2,"op":"revoke"}"#)
        .output()
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("other UID: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(stdout.contains("peer_uid"), "{stdout}");
    assert!(
        rig.log().contains("refused a connection from UID 65534"),
        "{}",
        rig.log()
    );
    let s = rig.state();
    assert!(s.permit_ms.is_some(), "the permit survived: {s:?}");
    assert!(rig.forging());
    assert!(rig.targets().iter().all(|t| t.exists()));
}

#[test]
fn a_sigkilled_guard_takes_its_node_along() {
    let mut rig = Rig::start();
    let node = rig.node_pid();
    assert!(is_alive(node));
    let mut guard = rig.guard.take().expect("guard");
    let _ = kill(Pid::from_raw(guard.id() as i32), Signal::SIGKILL);
    let _ = guard.wait();
    rig.wait(Duration::from_secs(2), "the node dies with its guard", || {
        !is_alive(node)
    });
}

#[test]
fn sigterm_is_forwarded_and_the_guard_exits_with_the_node() {
    let mut rig = Rig::start();
    rig.start_forging(60_000);
    let pid = rig.guard_pid();
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let code = rig.exited(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", rig.log());
    let events = rig.events();
    assert!(
        events.iter().any(|e| e.event == EventKind::Exit),
        "the node exited cleanly: {events:?}"
    );
    assert!(!rig.socket().exists(), "the guard removes its socket");
}

/// When the kubelet stops a pod, the node (under its guard) and the sidecar get SIGTERM at once:
/// the node's exit reaches the sidecar's subscription as `exited` (forging false) before the
/// guard's socket goes, so the sidecar can take its stop as done and release the lease.
#[test]
fn a_subscriber_learns_that_the_node_exited() {
    let mut rig = Rig::start();
    rig.start_forging(60_000);
    let conn = UnixStream::connect(rig.socket()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    w.write_all(Request::Subscribe.to_line().as_bytes())
        .expect("subscribe");
    let mut first = String::new();
    r.read_line(&mut first).expect("the subscription's answer");
    assert_eq!(
        Answer::parse(&first)
            .expect("answer")
            .state
            .and_then(|s| s.forging),
        Some(true),
        "{first}"
    );
    let _ = kill(Pid::from_raw(rig.guard_pid() as i32), Signal::SIGTERM);
    let exited = loop {
        let mut l = String::new();
        let n = r.read_line(&mut l).expect("a line before the socket closes");
        assert!(
            n > 0,
            "the subscription ended without an `exited` event: {}",
            rig.log()
        );
        let a = Answer::parse(&l).expect("answer");
        if a.event.as_deref() == Some("exited") {
            break a;
        }
    };
    assert_eq!(exited.state.and_then(|s| s.forging), Some(false));
    assert_eq!(rig.exited(Duration::from_secs(5)), Some(0), "{}", rig.log());
}

#[test]
fn subscribers_get_the_nodes_reconfiguration_lines_pushed() {
    let rig = Rig::launch(RigOptions {
        replay_ms: 600,
        ..RigOptions::default()
    });
    let conn = UnixStream::connect(rig.socket()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    w.write_all(Request::Subscribe.to_line().as_bytes())
        .expect("subscribe");
    let mut next = || loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("a line");
        let a = Answer::parse(&l).expect("answer");
        if a.event.as_deref() != Some("ready") {
            return a;
        }
    };
    assert!(next().ok);
    // A reload during the replay is lost, and the guard says so.
    assert!(rig.ask(permit(10_000)).ok);
    assert_eq!(next().event.as_deref(), Some("permit"));
    assert!(rig.ask(Request::Reload).ok);
    let a = next();
    let s = a.state.expect("state");
    assert_eq!(a.event.as_deref(), Some("observed"));
    assert!(s.reload_lost, "{s:?}");
    // After the replay the node says consensus runs; a reload now takes effect.
    let a = next();
    assert_eq!(
        a.state.as_ref().and_then(|s| s.last),
        Some(forge_guard::protocol::Observation::ChainExtended)
    );
    assert!(rig.ask(Request::Reload).ok);
    let s = next().state.expect("state");
    assert_eq!(s.forging, Some(true));
    assert!(!s.reload_lost);
}

/// Before the node has a SIGHUP handler (here: a shell waiting for a gate, then exec'ing the
/// node), a SIGHUP would kill it. The guard defers the reload and sends it once the node has
/// printed its first line.
#[test]
fn a_reload_before_the_node_is_ready_is_deferred_until_it_is() {
    let rig = Rig::launch(RigOptions {
        gate: Some("go"),
        ..RigOptions::default()
    });
    let s = rig.state();
    assert!(!s.ready, "{s:?}");
    assert_eq!(
        s.forging,
        Some(false),
        "started non-producing: known not to forge"
    );
    let node = s.child_pid;
    assert!(rig.ask(permit(30_000)).ok);
    let a = rig.ask(Request::Reload);
    assert!(a.ok, "{a:?}");
    let s = a.state.expect("state");
    assert!(s.hup_pending && !s.ready, "{s:?}");
    // A forwarded SIGHUP (kubectl, a runtime) is held back the same way.
    let _ = kill(Pid::from_raw(rig.guard_pid() as i32), Signal::SIGHUP);
    rig.wait(Duration::from_secs(3), "the guard takes the SIGHUP", || {
        rig.log().contains("SIGHUP received")
    });
    assert!(
        rig.state().hup_pending,
        "handled in order: the SIGHUP is behind this state"
    );
    assert!(
        is_alive(node),
        "the SIGHUP reached the node before it could take it\n{}",
        rig.log()
    );
    assert!(rig.log().contains("deferred"), "{}", rig.log());
    std::fs::write(rig.path("go"), b"").expect("gate");
    rig.wait(
        Duration::from_secs(5),
        "the deferred reload makes the node forge",
        || rig.forging(),
    );
    let s = rig.state();
    assert!(s.ready && !s.hup_pending, "{s:?}");
    assert_eq!(s.child_pid, node, "the same process");
    assert_eq!(
        rig.count(EventKind::Sighup),
        1,
        "one SIGHUP for the deferred reload(s)"
    );
}

/// A node that prints nothing (it logs to files only) is ready once its socket listens.
#[test]
fn a_silent_node_is_ready_once_its_socket_listens() {
    if Command::new("python3").arg("-c").arg("").status().is_err() {
        eprintln!("SKIPPED a_silent_node_is_ready_once_its_socket_listens: needs python3 as a silent node");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("kes.skey"), b"x").expect("target");
    // No handler and no socket until the gate opens; then a SIGHUP handler, then the socket.
    let node = r#"
import os, signal, socket, sys, time
d = sys.argv[1]
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.01)
signal.signal(signal.SIGHUP, lambda *a: open(os.path.join(d, "hup"), "a").write("x"))
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(d, "node.socket"))
s.listen(8)
while True:
    time.sleep(1)
"#;
    let mut cmd = tied_command(&exe());
    cmd.arg("guard")
        .arg("--socket")
        .arg(d.join("guard.sock"))
        .arg("--targets")
        .arg(d.join("kes.skey"))
        .arg("--node-socket")
        .arg(d.join("node.socket"))
        .args(["--", "python3", "-c", node])
        .arg(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut guard = spawn_tied(cmd).expect("guard");
    let t0 = Instant::now();
    while UnixStream::connect(d.join("guard.sock")).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no guard socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ask = |req: Request| {
        let conn = UnixStream::connect(d.join("guard.sock")).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        (&conn).write_all(req.to_line().as_bytes()).expect("write");
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).expect("read");
        Answer::parse(&line).expect("answer")
    };
    assert!(ask(permit(30_000)).ok);
    let a = ask(Request::Reload);
    assert!(a.state.is_some_and(|s| s.hup_pending && !s.ready), "deferred");
    std::fs::write(d.join("go"), b"").expect("gate");
    let t0 = Instant::now();
    while !d.join("hup").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the deferred SIGHUP never came: {:?}",
            ask(Request::State)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        ask(Request::State)
            .state
            .is_some_and(|s| s.ready && !s.hup_pending)
    );
    assert!(guard.try_wait().expect("wait").is_none(), "the node survived");
    terminate(&mut guard, Duration::from_secs(3));
}

/// A stop before the node is ready: the fence removes the files at once and its SIGHUP waits;
/// the node (which needs its files to boot) never forges.
#[test]
fn a_stop_before_the_node_is_ready_is_safe() {
    let mut rig = Rig::launch(RigOptions {
        gate: Some("go"),
        ..RigOptions::default()
    });
    assert!(rig.ask(permit(30_000)).ok);
    assert!(rig.ask(Request::Reload).ok);
    let a = rig.ask(Request::Revoke);
    let s = a.state.expect("state");
    assert!(s.permit_ms.is_none() && s.hup_pending, "{s:?}");
    assert!(rig.targets().iter().all(|t| !t.exists()));
    std::fs::write(rig.path("go"), b"").expect("gate");
    // The simulator refuses to start without its files, as cardano-node does.
    let code = rig.exited(Duration::from_secs(5));
    assert_ne!(code, Some(0), "{}", rig.log());
    assert_eq!(rig.count(EventKind::ForgingOn), 0, "{:?}", rig.events());
}

/// A fence before the node is ready, then boot credentials written (the sidecar provides them
/// while the node is down): the fence's deferred SIGHUP is not sent once the node is ready, as
/// it would make the node read them without a permit.
#[test]
fn a_deferred_fence_does_not_make_the_node_read_boot_credentials() {
    let rig = Rig::launch(RigOptions {
        gate: Some("go"),
        ..RigOptions::default()
    });
    assert!(rig.ask(Request::Revoke).ok);
    assert!(rig.state().hup_pending);
    write_test_credentials(&rig.path("target"), 1, 0).expect("boot credentials");
    std::fs::write(rig.path("go"), b"").expect("gate");
    rig.wait(Duration::from_secs(5), "the node ready", || rig.state().ready);
    assert!(!rig.state().hup_pending);
    assert!(
        rig.log().contains("the deferred fence SIGHUP dropped"),
        "{}",
        rig.log()
    );
    assert_eq!(rig.count(EventKind::Sighup), 0, "{:?}", rig.events());
    assert!(rig.targets().iter().all(|t| t.exists()), "boot credentials kept");
}

/// Every legitimate reload has a permit or follows the files' removal; any other would make a
/// standby forge.
#[test]
fn a_reload_without_a_permit_is_refused_while_credentials_exist() {
    let rig = Rig::start();
    let a = rig.send_raw(&[b"{\"v\":1,\"op\":\"reload\"}\n".to_vec()]);
    let a = a.first().expect("an answer");
    assert!(!a.ok, "{a:?}");
    assert_eq!(a.kind.as_deref(), Some("no_permit"), "{a:?}");
    assert!(
        a.error.as_deref().is_some_and(|e| e.contains("kes.skey")),
        "{a:?}"
    );
    // Files removed: the reload is allowed (the node stays off).
    for t in rig.targets() {
        std::fs::remove_file(t).expect("rm");
    }
    assert!(rig.ask(Request::Reload).ok);
    rig.wait(Duration::from_secs(3), "the allowed SIGHUP", || {
        rig.count(EventKind::Sighup) == 1
    });
    assert_eq!(rig.count(EventKind::ForgingOn), 0, "{:?}", rig.events());
    assert!(rig.log().contains("refused: no permit"), "{}", rig.log());
}

/// Forging without a permit (here: a SIGHUP from outside the guard with the files present) is
/// fenced as soon as the node reports it.
#[test]
fn forging_without_a_permit_is_refenced() {
    let rig = Rig::start();
    let _ = kill(Pid::from_raw(rig.node_pid() as i32), Signal::SIGHUP);
    rig.wait(Duration::from_secs(3), "the node forges (outside SIGHUP)", || {
        rig.count(EventKind::ForgingOn) == 1
    });
    rig.wait(Duration::from_secs(3), "re-fenced, and why logged", || {
        !rig.forging()
            && rig
                .log()
                .contains("permit refenced: the node reports forging without a permit")
    });
    assert!(rig.targets().iter().all(|t| !t.exists()));
}

/// Credential files left present without a permit once consensus runs are removed after the
/// grace (and the node reloaded, harmlessly).
#[test]
fn credentials_left_without_a_permit_are_removed_after_the_grace() {
    let rig = Rig::launch(RigOptions {
        guard_args: vec!["--unpermitted-grace-ms".into(), "300".into()],
        ..RigOptions::default()
    });
    rig.wait(
        Duration::from_secs(3),
        "the files removed, and why logged",
        || rig.targets().iter().all(|t| !t.exists()) && rig.log().contains("present without a permit"),
    );
    assert_eq!(rig.count(EventKind::ForgingOn), 0);
    // With a permit they stay.
    write_test_credentials(&rig.path("target"), 1, 0).expect("credentials");
    assert!(rig.ask(permit(5_000)).ok);
    std::thread::sleep(Duration::from_millis(800));
    assert!(rig.targets().iter().all(|t| t.exists()));
}

/// A node whose command gives it credentials without `--start-as-non-producing-node` would
/// forge from its start: not started, exit code 2, the reason names the flags.
#[test]
fn a_node_that_would_forge_from_its_start_is_not_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("started");
    let run = |extra: &[&str]| {
        Command::new(exe())
            .arg("guard")
            .arg("--socket")
            .arg(dir.path().join("guard.sock"))
            .arg("--targets")
            .arg(dir.path().join("kes.skey"))
            .args(extra)
            .args(["--", "/bin/sh", "-c", r#"touch "$0""#])
            .arg(&marker)
            .args(["--shelley-kes-key", "kes.skey"])
            .env_remove("GUARD_ALLOW_PRODUCING_START")
            .output()
            .expect("guard")
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--shelley-kes-key") && stderr.contains("--start-as-non-producing-node"),
        "{stderr}"
    );
    assert!(!marker.exists(), "the node was started");
    let out = run(&["--allow-producing-start"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists(), "allowed explicitly: started");
}

/// A fence that can remove no credential file would only make the node re-read them: the
/// guard terminates the node instead. If one file goes, a SIGHUP suffices.
#[test]
fn a_fence_that_cannot_remove_the_credentials_terminates_the_node() {
    let mut rig = Rig::launch(RigOptions {
        guard_args: vec!["--kill-after-ms".into(), "1000".into()],
        ..RigOptions::default()
    });
    rig.start_forging(60_000);
    let node = rig.node_pid();
    let targets = rig.targets();
    if !rig.make_unremovable(&targets) {
        eprintln!(
            "SKIPPED a_fence_that_cannot_remove_the_credentials_terminates_the_node: cannot make files unremovable here"
        );
        return;
    }
    assert!(rig.ask(permit(200)).ok);
    let code = rig.exited(Duration::from_secs(5));
    assert!(!is_alive(node));
    let log = rig.log();
    assert!(log.contains("NO credential file could be removed"), "{log}");
    assert!(log.contains("escalating: SIGTERM now"), "{log}");
    assert_eq!(code, Some(0), "the node exited on SIGTERM (cleanly)\n{log}");
    assert!(!rig.forging(), "{:?}", rig.events());
}

#[test]
fn a_fence_that_removes_some_credentials_still_reloads_the_node() {
    if !rustix::process::getuid().is_root() {
        eprintln!(
            "SKIPPED a_fence_that_removes_some_credentials_still_reloads_the_node: needs root (chattr)"
        );
        return;
    }
    let mut rig = Rig::start();
    rig.start_forging(60_000);
    let kes = rig.targets()[0].clone();
    if !rig.make_unremovable(std::slice::from_ref(&kes)) {
        eprintln!("SKIPPED: chattr +i does not work here");
        return;
    }
    assert!(rig.ask(Request::Revoke).ok);
    rig.wait(Duration::from_secs(3), "forging_off", || !rig.forging());
    assert!(kes.exists() && is_alive(rig.node_pid()));
    let log = rig.log();
    assert!(
        log.contains("removal failed") && log.contains("node reloaded: true"),
        "{log}"
    );
}

/// The fail-safe (and any caller) may remove the files itself and then revoke: the guard
/// reloads the node whether or not it held a permit.
#[test]
fn a_revoke_without_a_permit_still_fences() {
    let rig = Rig::start();
    assert!(rig.ask(Request::Revoke).ok);
    rig.wait(Duration::from_secs(3), "a SIGHUP", || {
        rig.count(EventKind::Sighup) == 1
    });
    assert!(rig.targets().iter().all(|t| !t.exists()));
    assert!(rig.log().contains("no permit was held"), "{}", rig.log());
}

/// The time from the permit's lapse (the guard's own log line) to the node's `forging_off` in
/// its timeline, median of several runs; and the guard's resident memory.
#[test]
fn lapse_to_forging_off_latency_and_guard_rss() {
    let mut lapse_ms = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..7 {
        let rig = Rig::start();
        rig.start_forging(60_000);
        rss.extend(rss_kib(rig.guard_pid()));
        assert!(rig.ask(permit(100)).ok);
        rig.wait(Duration::from_secs(3), "forging_off", || !rig.forging());
        let lapsed = logged_at(&rig.log(), "permit lapsed").expect("the lapse is logged");
        let off = rig
            .events()
            .iter()
            .find(|e| e.event == EventKind::ForgingOff)
            .map(|e| e.t_unix_ns)
            .expect("forging_off");
        lapse_ms.push((off.saturating_sub(lapsed)) as f64 / 1e6);
    }
    lapse_ms.sort_by(f64::total_cmp);
    rss.sort_unstable();
    let median = lapse_ms[lapse_ms.len() / 2];
    eprintln!(
        "permit lapse -> forging_off: median {median:.2} ms (runs {lapse_ms:.2?}); guard RSS median {} KiB (max {} KiB)",
        rss[rss.len() / 2],
        rss.last().copied().unwrap_or(0)
    );
    assert!(median < 100.0, "lapse to forging_off took {median} ms");
}

/// Runs a NodeWatcher that sees no process at all here (an empty procfs: the node runs in
/// another container without a shared process namespace) and returns what it reported.
async fn watch_without_process_namespace(
    rig: &Rig,
    guard_socket: Option<PathBuf>,
) -> (Vec<forge_core::decision::Event>, Vec<Option<i32>>) {
    use actix::Actor;
    use forge_actors::{
        adapters::{guard::GuardClient, process::ProcFs},
        messages::NodeProcess,
        metrics::{Metrics, PodLabels},
        node_watcher::{NodeWatcher, NodeWatcherSettings},
        testing::{Probe, recorder},
    };
    let empty_proc = tempfile::tempdir().expect("empty procfs");
    std::fs::create_dir_all(empty_proc.path().join("net")).expect("net");
    std::fs::write(
        empty_proc.path().join("net/unix"),
        "Num RefCount Protocol Flags Type St Inode Path\n",
    )
    .expect("net/unix");
    let settings = NodeWatcherSettings::new(rig.path("node.socket"), "cardano-node");
    let metrics =
        Metrics::register(&prometheus::Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let probe = Probe::start();
    let (processes, seen) = recorder::<NodeProcess>();
    let guard = guard_socket.map(|socket| GuardClient::new(socket, settings.connect_timeout));
    let watcher = NodeWatcher::new(
        settings,
        ProcFs::at(empty_proc.path()),
        probe.recipient(),
        processes,
        &metrics,
    );
    let _watcher = match guard {
        Some(guard) => watcher.with_guard(std::sync::Arc::new(guard)),
        None => watcher,
    }
    .start();
    let t0 = Instant::now();
    while probe.events().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reported = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|p| p.0.map(|id| id.pid))
        .collect();
    (probe.events(), reported)
}

#[actix::test]
async fn a_node_in_another_process_namespace_is_found_through_its_guard() {
    use forge_core::decision::Event;
    let rig = Rig::start();
    let (events, processes) = watch_without_process_namespace(&rig, Some(rig.socket())).await;
    assert_eq!(events, vec![Event::NodeUp], "found through the guard");
    let pid = i32::try_from(rig.node_pid()).expect("pid");
    assert_eq!(
        processes.last().copied().flatten(),
        Some(pid),
        "the guard's child is the node"
    );

    // Without a guard, the same invisible node is reported down: nothing could stop it forging.
    let (events, _) = watch_without_process_namespace(&rig, None).await;
    assert_eq!(events, vec![Event::NodeDown]);
}

/// The sidecar's side: the permit it grants for a starting reload ends at the lease's renew
/// deadline (an absolute instant on CLOCK_MONOTONIC, computed from that deadline), and a reload
/// the guard refuses is not sent by PID instead.
#[actix::test]
async fn the_sidecar_grants_a_permit_that_ends_at_the_lease_deadline() {
    use actix::Actor;
    use forge_actors::{
        adapters::{guard::GuardClient, process::ProcFs},
        clock::Clock,
        messages::{Fact, Reload},
        metrics::{Metrics, PodLabels},
        node_signaller::NodeSignaller,
    };
    use forge_core::decision::{Event, ReloadReason};
    let rig = Rig::start();
    let metrics =
        Metrics::register(&prometheus::Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let signaller = NodeSignaller::new(ProcFs::default(), &metrics)
        .with_guard(
            std::sync::Arc::new(GuardClient::new(rig.socket(), Duration::from_secs(2))),
            clock,
        )
        .start();
    // A standby's reload with the files present: the guard refuses, nothing else signals.
    let r = signaller
        .send(Reload {
            reason: ReloadReason::Rotation,
        })
        .await
        .expect("send");
    assert_eq!(
        r.as_ref().map_err(|e| e.kind.as_str()),
        Err("guard_refused"),
        "{r:?}"
    );
    let deadline = clock.mono_of(tokio::time::Instant::now() + Duration::from_millis(2000));
    signaller
        .send(Fact::now(Event::LeaseAcquired { deadline }))
        .await
        .expect("send");
    let r = signaller
        .send(Reload {
            reason: ReloadReason::StartForging,
        })
        .await
        .expect("send");
    assert!(r.is_ok(), "{r:?}");
    let left = rig.state().permit_ms.expect("a permit");
    assert!(
        (1000..=2000).contains(&left),
        "permit_ms {left}: not the lease's deadline"
    );
    let t0 = Instant::now();
    while rig.forging() || rig.count(EventKind::ForgingOn) == 0 || !rig.log().contains("permit lapsed") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no forging_on/off\n{}",
            rig.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Not renewed: the permit lapsed at the lease's deadline, the guard fenced.
    assert_eq!(rig.count(EventKind::Sighup), 2, "{:?}", rig.events());
}
