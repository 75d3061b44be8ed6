//! A node's life in-process: it refuses to start without valid credential files, a producing
//! node forges at once, SIGHUP enables and disables forging as the files say (an invalid file is
//! a reload error and the state is kept), SIGHUP during the replay is lost, and the socket.
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use forge_sim::node::{LOG_DISABLED, LOG_ENABLED, LOG_NOT_EFFECTIVE, LOG_RELOAD_ERROR, NodeError, NodeSim};
use forge_sim::timeline::EventKind::*;

use crate::{T, World};

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
