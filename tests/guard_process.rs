//! The node guard as a process, with the node simulator as its child and no API server:
//! permit lapse and revoke fence the node, the protocol refuses garbage, oversized lines and
//! other UIDs without changing anything, signals are forwarded, and a SIGKILLed guard takes
//! its node along. Also measures the time from the permit's lapse to the node's `forging_off`
//! (median of several runs) and the guard's RSS.

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

/// One guard + node simulator in a temporary directory.
struct Rig {
    dir: tempfile::TempDir,
    guard: Option<Child>,
}

impl Rig {
    /// Starts the guard around a node simulator that forges from its start (a producing node,
    /// no replay) unless `non_producing`.
    fn start(non_producing: bool, replay_ms: u64) -> Rig {
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
            .arg("--")
            .arg(exe())
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
            .arg(replay_ms.to_string());
        if non_producing {
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
        };
        rig.wait(
            Duration::from_secs(10),
            "the guard's socket and the node's socket",
            || {
                UnixStream::connect(rig.socket()).is_ok()
                    && UnixStream::connect(rig.path("node.socket")).is_ok()
            },
        );
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

    /// The node's PID, as the guard reports it.
    fn node_pid(&self) -> u32 {
        self.ask(Request::State).state.expect("state").child_pid
    }

    fn ask(&self, req: Request) -> Answer {
        let answers = self.send_raw(&[req.to_line().into_bytes()]);
        answers.into_iter().next().expect("an answer")
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
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            terminate(&mut g, Duration::from_secs(3));
        }
    }
}

fn permit(ms: u64) -> Request {
    Request::Permit {
        ttl: Duration::from_millis(ms),
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
    let rig = Rig::start(false, 0);
    rig.wait(Duration::from_secs(5), "node forging at start", || rig.forging());
    let s = rig.ask(Request::State).state.expect("state");
    assert_eq!(s.permit_ms, None, "the guard starts without a permit");
    let a = rig.ask(permit(300));
    assert!(a.ok, "{a:?}");
    assert!(a.state.expect("state").permit_ms.is_some_and(|ms| ms <= 300));
    // Renewed in time: still forging.
    std::thread::sleep(Duration::from_millis(200));
    assert!(rig.ask(permit(300)).ok);
    std::thread::sleep(Duration::from_millis(200));
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
    let s = rig.ask(Request::State).state.expect("state");
    assert_eq!(s.permit_ms, None);
    rig.wait(Duration::from_secs(2), "the guard sees the node stop", || {
        rig.ask(Request::State)
            .state
            .is_some_and(|s| s.forging == Some(false))
    });
    assert!(rig.log().contains("permit lapsed"), "{}", rig.log());
}

#[test]
fn a_revoked_permit_fences_at_once_and_reload_signals_the_node() {
    let rig = Rig::start(true, 0);
    // Non-producing: a reload with the files present enables forging (the sidecar's job).
    assert!(rig.ask(permit(10_000)).ok);
    let a = rig.ask(Request::Reload);
    assert!(a.ok, "{a:?}");
    rig.wait(Duration::from_secs(3), "forging after reload", || rig.forging());
    rig.wait(Duration::from_secs(2), "the guard reports forging", || {
        rig.ask(Request::State)
            .state
            .is_some_and(|s| s.forging == Some(true))
    });
    let a = rig.ask(Request::Revoke);
    assert!(a.ok && a.state.expect("state").permit_ms.is_none());
    rig.wait(Duration::from_secs(2), "forging_off after revoke", || {
        !rig.forging()
    });
    assert!(rig.targets().iter().all(|t| !t.exists()));
}

#[test]
fn garbage_oversized_and_unknown_requests_get_errors_and_change_nothing() {
    let rig = Rig::start(false, 0);
    assert!(rig.ask(permit(60_000)).ok);
    let before = rig.ask(Request::State).state.expect("state");
    let bad: Vec<Vec<u8>> = vec![
        b"garbage\n".to_vec(),
        b"{\"v\":2,\"op\":\"revoke\"}\n".to_vec(),
        b"{\"v\":1,\"op\":\"grant\",\"ttl_ms\":1}\n".to_vec(),
        b"{\"v\":1,\"op\":\"permit\",\"ttl_ms\":99999999}\n".to_vec(),
        b"{\"v\":1,\"op\":\"revoke\",\"now\":true}\n".to_vec(),
        b"\xff\xfe\n".to_vec(),
    ];
    let answers = rig.send_raw(&bad);
    assert_eq!(answers.len(), bad.len(), "one answer per line, connection kept");
    for a in &answers {
        assert!(!a.ok && a.kind.is_some() && a.error.is_some(), "{a:?}");
    }
    // A line over 4 KiB: an error, then the connection is closed.
    let mut long = vec![b'{'; 5000];
    long.push(b'\n');
    let answers = rig.send_raw(&[long, Request::Revoke.to_line().into_bytes()]);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].kind.as_deref(), Some("too_long"));
    let after = rig.ask(Request::State).state.expect("state");
    assert!(after.permit_ms.is_some(), "the permit survived: {after:?}");
    assert_eq!(after.forging, before.forging);
    assert!(rig.forging(), "the node still forges");
    assert!(rig.targets().iter().all(|t| t.exists()));
}

#[test]
fn a_peer_with_another_uid_is_refused() {
    if !rustix::process::getuid().is_root() {
        eprintln!("SKIPPED a_peer_with_another_uid_is_refused: needs root to run a client as another UID");
        return;
    }
    let rig = Rig::start(false, 0);
    assert!(rig.ask(permit(60_000)).ok);
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
        .arg(r#"{"v":1,"op":"revoke"}"#)
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
    let s = rig.ask(Request::State).state.expect("state");
    assert!(s.permit_ms.is_some(), "the permit survived: {s:?}");
    assert!(rig.forging());
    assert!(rig.targets().iter().all(|t| t.exists()));
}

#[test]
fn a_sigkilled_guard_takes_its_node_along() {
    let mut rig = Rig::start(false, 0);
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
    let mut rig = Rig::start(false, 0);
    rig.wait(Duration::from_secs(5), "forging", || rig.forging());
    let mut guard = rig.guard.take().expect("guard");
    let _ = kill(Pid::from_raw(guard.id() as i32), Signal::SIGTERM);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = guard.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "guard did not exit\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "{}", rig.log());
    let events = rig.events();
    assert!(
        events.iter().any(|e| e.event == EventKind::Exit),
        "the node exited cleanly: {events:?}"
    );
    assert!(!rig.socket().exists(), "the guard removes its socket");
}

#[test]
fn subscribers_get_the_nodes_reconfiguration_lines_pushed() {
    let rig = Rig::start(true, 600);
    let conn = UnixStream::connect(rig.socket()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    w.write_all(Request::Subscribe.to_line().as_bytes())
        .expect("subscribe");
    let mut next = || {
        let mut l = String::new();
        r.read_line(&mut l).expect("a line");
        Answer::parse(&l).expect("answer")
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

/// The time from the permit's lapse (the guard's own log line) to the node's `forging_off` in
/// its timeline, median of several runs; and the guard's resident memory.
#[test]
fn lapse_to_forging_off_latency_and_guard_rss() {
    let mut lapse_ms = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..7 {
        let rig = Rig::start(false, 0);
        rig.wait(Duration::from_secs(5), "forging", || rig.forging());
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
        adapters::process::ProcFs,
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
    let settings = NodeWatcherSettings {
        guard_socket,
        ..NodeWatcherSettings::new(rig.path("node.socket"), "cardano-node")
    };
    let metrics =
        Metrics::register(&prometheus::Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let probe = Probe::start();
    let (processes, seen) = recorder::<NodeProcess>();
    let _watcher = NodeWatcher::new(
        settings,
        ProcFs::at(empty_proc.path()),
        probe.recipient(),
        processes,
        &metrics,
    )
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
    let rig = Rig::start(true, 0);
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
