//! The cardano-node simulator, in-process and as a process (`forge-sim node`), and the timeline
//! judge fed by real node timelines.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_sim::creds::{CredentialPaths, write_test_credentials};
use forge_sim::node::{
    LOG_DISABLED, LOG_ENABLED, LOG_NOT_EFFECTIVE, LOG_RELOAD_ERROR, Latency, NodeBehaviour, NodeError,
    NodeOptions, NodeSim,
};
use forge_sim::timeline::{EventKind, TimelineEvent, Window, judge, judge_window, read_file, read_files};
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
        self.lines(node).into_iter().map(|e| e.event).collect()
    }

    fn lines(&self, node: &str) -> Vec<TimelineEvent> {
        read_file(&self.timeline())
            .expect("timeline")
            .into_iter()
            .filter(|e| e.node == node)
            .collect()
    }

    /// The time of the `n`-th (0-based) event of `kind` of `node`, in ns.
    fn at(&self, node: &str, kind: EventKind, n: usize) -> u64 {
        self.lines(node)
            .iter()
            .filter(|e| e.event == kind)
            .nth(n)
            .unwrap_or_else(|| panic!("no {kind:?} #{n} of {node}: {:?}", self.events(node)))
            .t_unix_ns
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

fn served_tip(body: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix("cardano_node_metrics_slotNum_int "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tip in {body}"))
}

#[tokio::test]
async fn the_tip_follows_mainnet_slots_and_can_lag_freeze_and_resume() {
    let w = World::new();
    let mut o = w.opts("tip");
    o.metrics_port = Some(0);
    let path = w.dir.path().join("tip.control");
    let b = NodeBehaviour {
        control: Some(path.clone()),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o, b).await.expect("start");
    let addr = node.handle().metrics_addr().expect("metrics");
    let wall = || forge_core::cardano::KesSchedule::mainnet().slot_at(jiff::Timestamp::now());
    let tip = served_tip(&scrape(addr).await);
    assert!(
        wall() - tip < 25,
        "in sync within a block: tip {tip}, wall {}",
        wall()
    );
    assert_eq!(tip % 20, 0, "block-granular");
    assert_eq!(control(&path, "lag 600000").await, "ok");
    let lag = wall() - served_tip(&scrape(addr).await);
    assert!((600..625).contains(&lag), "ten minutes behind: {lag}");
    assert_eq!(control(&path, "freeze").await, "ok");
    let frozen = served_tip(&scrape(addr).await);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        served_tip(&scrape(addr).await),
        frozen,
        "a frozen tip does not move"
    );
    assert_eq!(control(&path, "resume").await, "ok");
    assert!(wall() - served_tip(&scrape(addr).await) < 25);
    assert!(
        control(&path, "lag soon")
            .await
            .starts_with("error: lag takes milliseconds")
    );
    assert!(control(&path, "rewind").await.contains("lag MS, freeze, resume"));
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
    let v = judge_window(&events, Window::default()).expect("judged");
    assert!(v.overlap_ms >= 50.0 && v.overlap_ms < 2000.0, "{v:?}");
    assert_eq!(v.forgers, vec!["a", "b"]);
    assert_eq!(v.transitions, 4);
    // b forges until its shutdown; only its own forging_off -> exit interval is a gap.
    assert!(v.max_gap_ms < 5.0, "{v:?}");
}

/// Waits (bounded, without blocking the runtime) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ms_between(a_ns: u64, b_ns: u64) -> f64 {
    (b_ns as f64 - a_ns as f64) / 1e6
}

#[tokio::test]
async fn a_sighup_before_the_handler_is_installed_kills_the_node_silently() {
    let w = World::new();
    let o = w.opts("early");
    let b = NodeBehaviour {
        handler_delay: Duration::from_secs(30),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    node.handle().sighup();
    let err = tokio::time::timeout(T, node.wait())
        .await
        .expect("the node died at once")
        .expect_err("killed");
    assert!(matches!(err, NodeError::KilledBySighup), "{err}");
    // A killed process writes nothing more, and it had not bound its socket yet (that comes
    // only once the handler is installed).
    assert_eq!(w.events("early"), vec![Start]);
    assert!(!o.socket.exists());
}

#[tokio::test]
async fn the_replay_begins_once_the_handler_is_installed() {
    let w = World::new();
    let mut o = w.opts("late");
    o.replay = Duration::from_millis(300);
    let b = NodeBehaviour {
        handler_delay: Duration::from_millis(200),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o, b).await.expect("start");
    let h = node.handle();
    // A SIGHUP once the handler is in, and until the replay ends, is not effective.
    wait_until("handler_installed", || {
        w.events("late").contains(&HandlerInstalled)
    })
    .await;
    h.sighup();
    wait_until("not_effective", || w.events("late").contains(&NotEffective)).await;
    let installed = w.at("late", HandlerInstalled, 0);
    let start = w.at("late", Start, 0);
    assert!(ms_between(start, installed) >= 200.0);
    // The replay ends 300 ms after the handler came in; then a SIGHUP works.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut on = false;
    for _ in 0..20 {
        h.sighup();
        if h.wait_forging(true, Duration::from_millis(250)).await {
            on = true;
            break;
        }
    }
    assert!(on, "forging after the replay: {:?}", w.events("late"));
    node.stop().await.expect("stop");
    let lost = w.at("late", NotEffective, 0);
    assert!(ms_between(installed, w.at("late", ForgingOn, 0)) >= 300.0);
    assert!(lost >= installed);
}

#[tokio::test]
async fn reloads_take_their_drawn_latency_and_take_effect_one_after_another_in_order() {
    let w = World::new();
    let b = NodeBehaviour {
        reload: "200..400".parse().expect("range"),
        seed: 7,
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(w.opts("slow"), b.clone())
        .await
        .expect("start");
    let h = node.handle();
    h.sighup(); // files present: on
    wait_until("the first sighup", || w.events("slow").contains(&Sighup)).await;
    w.remove_creds();
    h.sighup(); // during the first reload: queued, then off
    assert!(h.wait_forging(true, T).await);
    // The log line comes before the effect.
    assert!(h.log().iter().any(|l| l.contains(LOG_ENABLED)));
    wait_until("forging_off", || w.events("slow").contains(&ForgingOff)).await;
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("slow"),
        vec![Start, Sighup, Sighup, ForgingOn, ForgingOff, Exit]
    );
    let (hup, on, off) = (
        w.at("slow", Sighup, 0),
        w.at("slow", ForgingOn, 0),
        w.at("slow", ForgingOff, 0),
    );
    let first = ms_between(hup, on);
    let second = ms_between(on, off);
    // Lower bounds are exact; upper bounds leave room for a loaded machine.
    assert!((200.0..1400.0).contains(&first), "first reload took {first} ms");
    assert!(
        (200.0..1400.0).contains(&second),
        "the second reload began only after the first took effect, then took {second} ms"
    );
    let lines = w.lines("slow");
    let details: Vec<&str> = lines
        .iter()
        .filter(|e| matches!(e.event, ForgingOn | ForgingOff))
        .map(|e| e.detail.as_str())
        .collect();
    assert!(details[0].contains("reload took"), "{details:?}");
    assert!(lines[2].detail.contains("queued behind 1"), "{:?}", lines[2]);

    // The same seed draws the same latencies.
    let w2 = World::new();
    let node = NodeSim::start_with(w2.opts("slow"), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    wait_until("the first sighup", || w2.events("slow").contains(&Sighup)).await;
    w2.remove_creds();
    h.sighup();
    wait_until("forging_off", || w2.events("slow").contains(&ForgingOff)).await;
    node.stop().await.expect("stop");
    let details2: Vec<String> = w2
        .lines("slow")
        .iter()
        .filter(|e| matches!(e.event, ForgingOn | ForgingOff))
        .map(|e| e.detail.replace(&w2.dir.path().display().to_string(), "DIR"))
        .collect();
    let details: Vec<String> = details
        .iter()
        .map(|d| d.replace(&w.dir.path().display().to_string(), "DIR"))
        .collect();
    assert_eq!(details, details2);
}

#[test]
fn a_latency_range_parses_and_draws_within_it_reproducibly() {
    let l: Latency = "100..300".parse().expect("range");
    assert_eq!(l, Latency::range_ms(100, 300));
    assert_eq!(
        "250".parse::<Latency>(),
        Ok(Latency::fixed(Duration::from_millis(250)))
    );
    assert!("300..100".parse::<Latency>().is_err());
    let err = "fast".parse::<Latency>().expect_err("not a number");
    assert!(err.contains("milliseconds"), "{err}");
    let draws = |seed| {
        let mut rng = forge_sim::node::SplitMix64::new(seed);
        (0..50).map(|_| l.draw(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));
    assert!(
        draws(3)
            .iter()
            .all(|d| (Duration::from_millis(100)..=Duration::from_millis(300)).contains(d))
    );
    // Spread over the range, not stuck at one end.
    let d = draws(4);
    assert!(d.iter().any(|d| *d < Duration::from_millis(150)));
    assert!(d.iter().any(|d| *d > Duration::from_millis(250)));
}

#[tokio::test]
async fn the_node_forges_on_through_its_stop_grace_after_sigterm() {
    let w = World::new();
    let o = w.opts("grace");
    let b = NodeBehaviour {
        stop_grace: Duration::from_millis(600),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    h.terminate();
    wait_until("sigterm", || w.events("grace").contains(&Sigterm)).await;
    // A stop reload during the grace changes nothing.
    w.remove_creds();
    h.sighup();
    // While forging, the socket still accepts (it closes only at the exit).
    let conn = tokio::net::UnixStream::connect(&o.socket).await;
    if conn.is_err() {
        assert!(
            w.events("grace").contains(&ForgingOff),
            "the socket went away while the node still forged"
        );
    }
    node.wait().await.expect("exit");
    assert_eq!(
        w.events("grace"),
        vec![Start, Sighup, ForgingOn, Sigterm, Sighup, ForgingOff, Exit]
    );
    let lines = w.lines("grace");
    assert!(lines[4].detail.contains("ignored"), "{:?}", lines[4]);
    assert_eq!(lines[5].detail, "shutdown");
    let grace = ms_between(w.at("grace", Sigterm, 0), w.at("grace", ForgingOff, 0));
    assert!(
        (600.0..2000.0).contains(&grace),
        "forged {grace} ms after SIGTERM"
    );
    assert!(!o.socket.exists());
}

#[tokio::test]
async fn with_an_early_socket_close_the_node_forges_with_its_socket_gone() {
    let w = World::new();
    let o = w.opts("early-close");
    let b = NodeBehaviour {
        stop_grace: Duration::from_millis(500),
        close_socket_early: true,
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    let held = tokio::net::UnixStream::connect(&o.socket).await.expect("connect");
    h.terminate();
    wait_until("socket_closed", || {
        w.events("early-close").contains(&SocketClosed)
    })
    .await;
    // From the close on, nobody can connect, although the node forges on.
    assert!(tokio::net::UnixStream::connect(&o.socket).await.is_err());
    assert!(!o.socket.exists());
    // A held connection is closed too (EOF).
    let mut held = held;
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(T, tokio::io::AsyncReadExt::read(&mut held, &mut buf))
        .await
        .expect("closed promptly");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    node.wait().await.expect("exit");
    assert_eq!(
        w.events("early-close"),
        vec![Start, Sighup, ForgingOn, Sigterm, SocketClosed, ForgingOff, Exit]
    );
    let gone_ms = ms_between(
        w.at("early-close", SocketClosed, 0),
        w.at("early-close", ForgingOff, 0),
    );
    assert!(gone_ms >= 500.0, "forged {gone_ms} ms with the socket gone");
}

/// Sends one line on a control socket and returns the answer.
async fn control(path: &Path, line: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let s = tokio::net::UnixStream::connect(path)
        .await
        .expect("control connect");
    let (r, mut wr) = s.into_split();
    wr.write_all(format!("{line}\n").as_bytes()).await.expect("send");
    let mut answer = String::new();
    tokio::io::BufReader::new(r)
        .read_line(&mut answer)
        .await
        .expect("answer");
    answer.trim().to_owned()
}

#[tokio::test]
async fn a_stalled_node_handles_no_reload_and_accepts_no_connection_until_the_stall_ends() {
    let w = World::new();
    let o = w.opts("hung");
    let ctl = w.dir.path().join("hung.control");
    let b = NodeBehaviour {
        socket_backlog: Some(1),
        control: Some(ctl.clone()),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    assert!(control(&ctl, "stall soon").await.starts_with("error:"));
    assert!(control(&ctl, "reboot").await.starts_with("error:"));
    assert_eq!(control(&ctl, "stall 1500").await, "ok");
    wait_until("stall", || w.events("hung").contains(&Stall)).await;
    w.remove_creds();
    h.sighup();
    // The backlog (1) fills: connections wait unanswered, then new ones are refused.
    let mut pending = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        match tokio::net::UnixStream::connect(&o.socket).await {
            Ok(c) => pending.push(c),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a hung node's full backlog refuses connections");
    if !w.events("hung").contains(&StallEnd) {
        assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock, "{refused}");
        assert!(h.forging(), "a hung node forges on");
    }
    assert!(
        h.wait_forging(false, T).await,
        "the reload is handled after the stall"
    );
    // Responsive again: it accepts.
    drop(pending);
    let mut accepted = false;
    for _ in 0..50 {
        if tokio::net::UnixStream::connect(&o.socket).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted, "connections accepted again after the stall");
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("hung"),
        vec![
            Start, Sighup, ForgingOn, Stall, StallEnd, Sighup, ForgingOff, Exit
        ]
    );
    let stalled = ms_between(w.at("hung", Stall, 0), w.at("hung", StallEnd, 0));
    assert!((1500.0..3000.0).contains(&stalled), "stalled {stalled} ms");
    assert!(w.at("hung", ForgingOff, 0) >= w.at("hung", StallEnd, 0));
}

#[tokio::test]
async fn the_judge_tells_apart_two_processes_with_one_name() {
    // Two node processes called "twin" write to one timeline and forge at once: the old
    // name-only judge saw one forger; it is two.
    let w = World::new();
    let a = NodeSim::start(w.opts("twin")).await.expect("start a");
    let mut ob = w.opts("twin");
    ob.socket = w.dir.path().join("twin-b.socket");
    let b = NodeSim::start(ob).await.expect("start b");
    a.handle().sighup();
    assert!(a.handle().wait_forging(true, T).await);
    b.handle().sighup();
    assert!(b.handle().wait_forging(true, T).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    let events = read_file(&w.timeline()).expect("timeline");
    let v = judge_window(&events, Window::default()).expect("judged");
    assert!(v.overlap_ms >= 30.0, "{v:?}");
    assert_eq!(v.max_forgers, 2);
    assert_eq!(v.forgers, vec!["twin"]);
    assert_eq!(v.processes.len(), 2, "{v:?}");
    assert!(v.processes.iter().all(|p| p.started && p.exited));
}

#[tokio::test]
async fn a_live_verdict_counts_an_overlap_still_open_when_it_is_taken() {
    let wa = World::new();
    let wb = World::new();
    let a = NodeSim::start(wa.opts("a")).await.expect("start a");
    let b = NodeSim::start(wb.opts("b")).await.expect("start b");
    a.handle().sighup();
    assert!(a.handle().wait_forging(true, T).await);
    b.handle().sighup();
    assert!(b.handle().wait_forging(true, T).await);
    // b's forging_on is the last event; the overlap it opened runs until the verdict.
    tokio::time::sleep(Duration::from_millis(40)).await;
    let v = judge(&read_files(&[wa.timeline(), wb.timeline()]).expect("timelines"));
    assert!(v.overlap_ms >= 40.0, "{v:?}");
    assert_eq!(v.forging_at_end, vec!["a", "b"]);
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
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
