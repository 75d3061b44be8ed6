//! The cardano-node simulator, in-process and as a process (`forge-sim node`), and the timeline
//! judge fed by real node timelines.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_sim::creds::{CredentialPaths, write_test_credentials};
use forge_sim::node::{
    LOG_DISABLED, LOG_ENABLED, LOG_NOT_EFFECTIVE, LOG_RELOAD_ERROR, NodeError, NodeOptions, NodeSim,
};
use forge_sim::timeline::{EventKind, judge, read_file, read_files};
use tempfile::TempDir;

const T: Duration = Duration::from_secs(5);

struct World {
    dir: TempDir,
    creds: CredentialPaths,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = write_test_credentials(dir.path(), 1, 0).expect("credentials");
        World { dir, creds }
    }

    fn opts(&self, name: &str) -> NodeOptions {
        NodeOptions {
            name: name.into(),
            socket: self.dir.path().join(format!("{name}.socket")),
            kes: self.creds.kes.clone(),
            vrf: self.creds.vrf.clone(),
            opcert: self.creds.opcert.clone(),
            timeline: self.timeline(),
            start_as_non_producing: true,
            replay: Duration::ZERO,
            metrics_port: None,
            echo_stdout: false,
        }
    }

    fn timeline(&self) -> PathBuf {
        self.dir.path().join("timeline.jsonl")
    }

    fn events(&self, node: &str) -> Vec<EventKind> {
        read_file(&self.timeline())
            .expect("timeline")
            .into_iter()
            .filter(|e| e.node == node)
            .map(|e| e.event)
            .collect()
    }

    fn remove_creds(&self) {
        for f in self.creds.all() {
            std::fs::remove_file(f).expect("remove");
        }
    }
}

use EventKind::*;

#[tokio::test]
async fn a_node_refuses_to_start_without_credential_files() {
    let w = World::new();
    std::fs::remove_file(&w.creds.opcert).expect("remove");
    let err = NodeSim::start(w.opts("n")).await.expect_err("must refuse");
    assert!(
        matches!(err, NodeError::MissingCredential(ref p) if p == &w.creds.opcert),
        "{err}"
    );
    assert!(
        !w.timeline().exists(),
        "no timeline events for a node that never started"
    );
}

#[tokio::test]
async fn a_node_refuses_to_start_when_the_vrf_key_is_readable_by_others() {
    let w = World::new();
    std::fs::set_permissions(&w.creds.vrf, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = NodeSim::start(w.opts("n")).await.expect_err("must refuse");
    assert!(
        matches!(err, NodeError::VrfPermissions { mode: 0o644, .. }),
        "{err}"
    );
    // Group bits are fine, as in cardano-node.
    std::fs::set_permissions(&w.creds.vrf, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    NodeSim::start(w.opts("n"))
        .await
        .expect("starts")
        .stop()
        .await
        .expect("stops");
}

#[tokio::test]
async fn a_node_refuses_to_start_with_an_invalid_credential_file() {
    let w = World::new();
    std::fs::write(&w.creds.kes, "{}").expect("write");
    let err = NodeSim::start(w.opts("n")).await.expect_err("must refuse");
    assert_eq!(err.kind(), "invalid_credential");
}

#[tokio::test]
async fn a_producing_node_forges_at_once_and_stops_forging_on_exit() {
    let w = World::new();
    let mut o = w.opts("p");
    o.start_as_non_producing = false;
    let node = NodeSim::start(o).await.expect("start");
    let h = node.handle();
    assert!(h.wait_forging(true, T).await);
    assert!(h.log().iter().any(|l| l.contains(LOG_ENABLED)));
    node.stop().await.expect("stop");
    assert_eq!(w.events("p"), vec![Start, ForgingOn, ForgingOff, Exit]);
}

#[tokio::test]
async fn sighup_with_valid_files_enables_forging_and_with_files_removed_disables_it() {
    let w = World::new();
    let node = NodeSim::start(w.opts("n")).await.expect("start");
    let h = node.handle();
    assert!(!h.forging());
    h.sighup();
    assert!(h.wait_forging(true, T).await, "forging after SIGHUP");
    w.remove_creds();
    h.sighup();
    assert!(
        h.wait_forging(false, T).await,
        "not forging after SIGHUP without files"
    );
    assert!(h.log().iter().any(|l| l.contains(LOG_DISABLED)));
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("n"),
        vec![Start, Sighup, ForgingOn, Sighup, ForgingOff, Exit]
    );
}

#[tokio::test]
async fn an_invalid_file_on_sighup_is_a_reload_error_and_the_state_is_kept() {
    let w = World::new();
    let node = NodeSim::start(w.opts("n")).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    std::fs::write(&w.creds.vrf, "secret-garbage").expect("corrupt");
    std::fs::set_permissions(&w.creds.vrf, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    h.sighup();
    h.terminate();
    node.wait().await.expect("exit");
    let events = w.events("n");
    assert_eq!(
        events,
        vec![Start, Sighup, ForgingOn, Sighup, ReloadError, ForgingOff, Exit]
    );
    let log = h.log().join("\n");
    assert!(log.contains(LOG_RELOAD_ERROR));
    assert!(
        !log.contains("secret-garbage"),
        "key file contents must never be logged"
    );

    // And while not forging, an invalid file keeps it off.
    let w = World::new();
    let node = NodeSim::start(w.opts("m")).await.expect("start");
    let h = node.handle();
    std::fs::write(&w.creds.opcert, "{\"type\": 1}").expect("corrupt");
    h.sighup();
    node.stop().await.expect("stop");
    assert_eq!(w.events("m"), vec![Start, Sighup, ReloadError, Exit]);
}

#[tokio::test]
async fn a_vrf_key_made_world_readable_is_a_reload_error() {
    let w = World::new();
    let node = NodeSim::start(w.opts("n")).await.expect("start");
    std::fs::set_permissions(&w.creds.vrf, std::fs::Permissions::from_mode(0o604)).expect("chmod");
    node.handle().sighup();
    node.stop().await.expect("stop");
    assert_eq!(w.events("n"), vec![Start, Sighup, ReloadError, Exit]);
}

#[tokio::test]
async fn sighup_during_the_replay_is_not_effective_and_lost() {
    let w = World::new();
    let mut o = w.opts("r");
    o.replay = Duration::from_millis(1000);
    let started = Instant::now();
    let node = NodeSim::start(o).await.expect("start");
    let h = node.handle();
    h.sighup();
    // The lost SIGHUP never enables forging, even after the replay (1 s: margin for a busy CI).
    assert!(!h.wait_forging(true, Duration::from_millis(1300)).await);
    assert!(h.log().iter().any(|l| l.contains(LOG_NOT_EFFECTIVE)));
    assert!(
        h.log()
            .iter()
            .any(|l| l.contains("not effective until consensus has started"))
    );
    // After the replay a SIGHUP works.
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    assert!(started.elapsed() >= Duration::from_millis(1000));
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("r"),
        vec![Start, Sighup, NotEffective, Sighup, ForgingOn, ForgingOff, Exit]
    );
}

#[tokio::test]
async fn a_producing_node_forges_only_after_its_replay_even_if_its_files_vanished_meanwhile() {
    let w = World::new();
    let mut o = w.opts("p");
    o.start_as_non_producing = false;
    o.replay = Duration::from_millis(1000);
    let node = NodeSim::start(o).await.expect("start");
    let h = node.handle();
    assert!(!h.forging());
    w.remove_creds();
    h.sighup(); // lost: the node still forges with the keys it read at start
    assert!(h.wait_forging(true, T).await);
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("p"),
        vec![Start, Sighup, NotEffective, ForgingOn, ForgingOff, Exit]
    );
}

#[tokio::test]
async fn the_socket_accepts_connections_replaces_a_stale_file_and_is_removed_at_exit() {
    let w = World::new();
    let o = w.opts("s");
    std::fs::write(&o.socket, "stale").expect("stale file");
    let node = NodeSim::start(o.clone()).await.expect("start");
    let conn = tokio::net::UnixStream::connect(&o.socket).await.expect("connect");
    node.stop().await.expect("stop");
    assert!(!o.socket.exists());
    drop(conn);
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn the_metrics_endpoint_reports_the_forging_state() {
    let w = World::new();
    let mut o = w.opts("m");
    o.metrics_port = Some(0);
    let node = NodeSim::start(o).await.expect("start");
    let h = node.handle();
    let addr = h.metrics_addr().expect("metrics");
    assert!(
        scrape(addr)
            .await
            .contains("\ncardano_node_metrics_forging_enabled 0\n")
    );
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    let body = scrape(addr).await;
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("\ncardano_node_metrics_forging_enabled 1\n"),
        "{body}"
    );
    node.stop().await.expect("stop");
}

#[tokio::test]
async fn the_judge_reports_a_deliberate_overlap_between_two_nodes() {
    let wa = World::new();
    let wb = World::new();
    let a = NodeSim::start(wa.opts("a")).await.expect("start a");
    let b = NodeSim::start(wb.opts("b")).await.expect("start b");
    a.handle().sighup();
    assert!(a.handle().wait_forging(true, T).await);
    // Break S1 on purpose: b starts forging while a still forges.
    b.handle().sighup();
    assert!(b.handle().wait_forging(true, T).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    wa.remove_creds();
    a.handle().sighup();
    assert!(a.handle().wait_forging(false, T).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");

    let events = read_files(&[wa.timeline(), wb.timeline()]).expect("timelines");
    let v = judge(&events);
    assert!(v.overlap_ms >= 50.0 && v.overlap_ms < 2000.0, "{v:?}");
    assert_eq!(v.forgers, vec!["a", "b"]);
    assert_eq!(v.transitions, 4);
    // b forges until its shutdown; only its own forging_off -> exit interval is a gap.
    assert!(v.max_gap_ms < 5.0, "{v:?}");
}

// --- the `forge-sim` binary as a process -----------------------------------------------------

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_forge-sim")
}

fn node_args(w: &World, name: &str) -> Vec<String> {
    let o = w.opts(name);
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "node".into(),
        "--name".into(),
        name.into(),
        "--socket".into(),
        s(&o.socket),
        "--kes".into(),
        s(&o.kes),
        "--vrf".into(),
        s(&o.vrf),
        "--opcert".into(),
        s(&o.opcert),
        "--timeline".into(),
        s(&o.timeline),
    ]
}

fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).expect("kill");
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_node_binary_exits_with_code_1_when_the_vrf_key_is_world_readable() {
    let w = World::new();
    std::fs::set_permissions(&w.creds.vrf, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(bin())
        .args(node_args(&w, "x"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("VRF signing key") && stderr.contains("644"),
        "{stderr}"
    );
}

#[test]
fn the_node_binary_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    use nix::sys::signal::Signal;
    let w = World::new();
    let mut args = node_args(&w, "proc");
    args.push("--start-as-non-producing-node".into());
    let child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let socket = w.opts("proc").socket;
    wait_for("the node socket", || socket.exists());
    signal(&child, Signal::SIGHUP);
    wait_for("forging_on", || {
        w.timeline().exists() && w.events("proc").contains(&ForgingOn)
    });
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Enabling block forging"), "{stdout}");
    assert_eq!(w.events("proc"), vec![Start, Sighup, ForgingOn, ForgingOff, Exit]);
    assert!(!socket.exists());
}

#[test]
fn the_timeline_subcommand_prints_the_verdict_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("t.jsonl");
    std::fs::write(
        &p,
        "{\"t_unix_ns\":0,\"node\":\"a\",\"event\":\"start\",\"detail\":\"\"}\n\
         {\"t_unix_ns\":0,\"node\":\"a\",\"event\":\"forging_on\",\"detail\":\"\"}\n\
         {\"t_unix_ns\":2000000,\"node\":\"b\",\"event\":\"forging_on\",\"detail\":\"\"}\n\
         {\"t_unix_ns\":5000000,\"node\":\"a\",\"event\":\"exit\",\"detail\":\"\"}\n",
    )
    .expect("write");
    let out = Command::new(bin()).arg("timeline").arg(&p).output().expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["overlap_ms"], 3.0, "{v}");
    assert_eq!(v["max_forgers"], 2, "{v}");
    assert_eq!(v["max_gap_ms"], 0.0, "{v}");
    assert_eq!(v["transitions"], 2, "{v}");
    assert_eq!(v["forgers"], serde_json::json!(["a", "b"]), "{v}");
    assert_eq!(v["forging_at_end"], serde_json::json!(["b"]), "{v}");
    // A window: until 10 ms, b forges on alone.
    let out = Command::new(bin())
        .arg("timeline")
        .arg(&p)
        .args(["--from-ns", "1000000", "--until-ns", "10000000"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["forging_ms"], serde_json::json!({"a": 4.0, "b": 8.0}), "{v}");
}

#[test]
fn the_timeline_subcommand_fails_on_a_timeline_where_no_node_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("t.jsonl");
    std::fs::write(&p, "").expect("write");
    let out = Command::new(bin()).arg("timeline").arg(&p).output().expect("run");
    assert!(!out.status.success(), "an empty timeline must not pass");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no node ever started"), "{stderr}");
    assert!(out.stdout.is_empty());
}
