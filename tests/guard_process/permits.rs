//! The permit: a lapse or a revoke fences the node, bad or late requests and other UIDs change
//! nothing, a permit ends at its absolute deadline; the lapse's latency and the guard's RSS.

use std::{os::unix::fs::PermissionsExt, process::Command, time::Duration};

use forge_guard::protocol::Request;
use forge_sim::{process::rss_kib, timeline::EventKind};

use crate::{Rig, exe, permit};

#[test]
fn a_lapsed_permit_removes_the_credentials_and_stops_the_node_forging() {
    let rig = Rig::start();
    assert_eq!(rig.state().permit_ms, None, "the guard starts without a permit");
    // A start needs the reload room (2 s by default) left of its permit.
    rig.start_forging(2400);
    std::thread::sleep(Duration::from_millis(2000));
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
        let lapsed = forge_guard::logged_at(&rig.log(), "permit lapsed").expect("the lapse is logged");
        let off = rig.first_at(EventKind::ForgingOff).expect("forging_off");
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
