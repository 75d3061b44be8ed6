//! The node under its guard: signals, subscribers to its exit and reconfiguration lines, and
//! reloads, stops and fences before it is ready.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use forge_guard::protocol::{Answer, Request};
use forge_sim::{
    creds::write_test_credentials,
    process::{is_alive, spawn_tied, terminate, tied_command},
    timeline::EventKind,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Rig, RigOptions, exe, permit};

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
    let mut r = rig.subscribe();
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
    let mut r = rig.subscribe();
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
