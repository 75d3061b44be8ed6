//! The `forge-sim` binary as a process: its exit codes, SIGHUP and SIGTERM, the `timeline`
//! subcommand's verdict, the signal handler's delay, and the realism options with the control
//! socket.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_sim::timeline::EventKind::*;
use forge_sim::timeline::{TimelineEvent, read_file};

use crate::{T, World, control, ms_between};

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

#[test]
fn the_node_binary_dies_of_a_sighup_before_its_handler_and_survives_one_after() {
    use nix::sys::signal::Signal;
    use std::os::unix::process::ExitStatusExt;
    let w = World::new();
    let mut args = node_args(&w, "early");
    args.extend([
        "--start-as-non-producing-node".into(),
        "--handler-delay-ms".into(),
        "30000".into(),
    ]);
    let mut child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    // No socket before the handler is installed: the start line says the node is up.
    let started = || {
        read_file(&w.timeline())
            .is_ok_and(|events| events.iter().any(|e| e.node == "early" && e.event == Start))
    };
    wait_for("the start line", started);
    signal(&child, Signal::SIGHUP);
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(Signal::SIGHUP as i32), "{status:?}");
    assert_eq!(w.events("early"), vec![Start]);
    assert!(!w.opts("early").socket.exists());

    // With a short delay: a SIGHUP once the handler is in reloads.
    let mut args = node_args(&w, "later");
    args.extend([
        "--start-as-non-producing-node".into(),
        "--handler-delay-ms".into(),
        "300".into(),
    ]);
    let child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("handler_installed", || {
        w.events("later").contains(&HandlerInstalled)
    });
    signal(&child, Signal::SIGHUP);
    wait_for("forging_on", || w.events("later").contains(&ForgingOn));
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(
        w.events("later"),
        vec![Start, HandlerInstalled, Sighup, ForgingOn, ForgingOff, Exit]
    );
    let lines = w.lines("later");
    assert_eq!(lines[0].pid, out_pid(&lines), "every line carries the pid");
    assert!(ms_between(lines[0].t_unix_ns, lines[1].t_unix_ns) >= 300.0);
}

fn out_pid(lines: &[TimelineEvent]) -> u32 {
    let pid = lines[0].pid;
    assert!(pid > 0);
    assert!(
        lines
            .iter()
            .all(|e| e.pid == pid && e.proc_start_ns == lines[0].t_unix_ns)
    );
    pid
}

#[test]
fn the_node_binary_takes_the_realism_options_and_its_control_socket() {
    use nix::sys::signal::Signal;
    let w = World::new();
    let ctl = w.dir.path().join("bin.control");
    let mut args = node_args(&w, "bin");
    args.extend([
        "--start-as-non-producing-node".into(),
        "--reload-ms".into(),
        "150..250".into(),
        "--seed".into(),
        "42".into(),
        "--stop-grace-ms".into(),
        "300".into(),
        "--close-socket-early".into(),
        "--socket-backlog".into(),
        "2".into(),
        "--control".into(),
        ctl.display().to_string(),
    ]);
    let child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for("the control socket", || ctl.exists());
    signal(&child, Signal::SIGHUP);
    wait_for("forging_on", || w.events("bin").contains(&ForgingOn));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert_eq!(rt.block_on(control(&ctl, "stall 200")), "ok");
    wait_for("stall_end", || w.events("bin").contains(&StallEnd));
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(
        w.events("bin"),
        vec![
            Start,
            Sighup,
            ForgingOn,
            Stall,
            StallEnd,
            Sigterm,
            SocketClosed,
            ForgingOff,
            Exit
        ]
    );
    let lines = w.lines("bin");
    assert!(
        lines[0].detail.contains("reload 150..250 ms, seed 42"),
        "{}",
        lines[0].detail
    );
    let took = ms_between(w.at("bin", Sighup, 0), w.at("bin", ForgingOn, 0));
    assert!(took >= 150.0, "reload took {took} ms");
    assert!(ms_between(w.at("bin", Sigterm, 0), w.at("bin", ForgingOff, 0)) >= 300.0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Enabling block forging"), "{stdout}");
    assert!(!ctl.exists(), "the control socket is removed at the exit");
}

#[test]
fn the_node_binary_rejects_a_bad_reload_range_naming_the_option() {
    let w = World::new();
    let mut args = node_args(&w, "bad");
    args.extend(["--reload-ms".into(), "500..100".into()]);
    let out = Command::new(bin()).args(&args).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--reload-ms") && stderr.contains("ends before it starts"),
        "{stderr}"
    );
}
