//! The reload room (`--reload-room-ms`, the node's `STOP_GRACE`): the node may take that long to
//! act on a SIGHUP, each in a thread of its own, so a reload that enables forging must not be
//! carried out with less than that left of the permit (it could take effect after the fence at
//! the permit's end), and a fence that follows one by less than that must be repeated once the
//! enabling reload has had it.

use std::time::Duration;

use forge_guard::protocol::{PERMIT_ENDING, Request};
use forge_sim::{
    node::{Latency, SplitMix64},
    timeline::EventKind,
};

use crate::{Rig, RigOptions, exe, permit};

#[test]
fn a_start_with_less_than_the_reload_room_left_of_its_permit_is_refused_and_the_node_does_not_forge() {
    let rig = Rig::start();
    // The default room is 2 s (the sidecar's default STOP_GRACE).
    assert!(rig.ask(permit(1500)).ok);
    let a = rig.ask(Request::Reload);
    assert!(!a.ok, "a start with 1.5 s of permit left was carried out: {a:?}");
    assert_eq!(a.kind.as_deref(), Some(PERMIT_ENDING), "{a:?}");
    let error = a.error.unwrap_or_default();
    assert!(
        error.contains("ms left of the permit") && error.contains("2000 ms"),
        "{error}"
    );
    let log = rig.log();
    assert!(
        log.contains("a reload request refused: it would enable forging with")
            && log.contains("less than the reload room (2000 ms)")
            && log.contains("refused so far: 1"),
        "{log}"
    );
    // The permit runs out: the node never forged (its reloads are instant here, so a SIGHUP
    // would have shown at once).
    rig.wait(Duration::from_secs(5), "the permit lapses", || {
        rig.log().contains("permit lapsed")
    });
    assert_eq!(rig.count(EventKind::ForgingOn), 0, "{:?}", rig.events());
    assert_eq!(rig.state().forging, Some(false));

    // With enough permit left the start is carried out.
    std::fs::create_dir_all(rig.path("target")).expect("mkdir");
    forge_sim::creds::write_test_credentials(&rig.path("target"), 1, 0).expect("credentials");
    rig.start_forging(5000);

    // A stopping reload (the files removed first, as the sidecar's stop does) is never refused,
    // however little of the permit is left.
    assert!(rig.ask(permit(300)).ok);
    for t in rig.targets() {
        std::fs::remove_file(t).expect("remove");
    }
    let a = rig.ask(Request::Reload);
    assert!(a.ok, "a stopping reload was refused: {a:?}");
    rig.wait(
        Duration::from_secs(2),
        "forging_off after the stopping reload",
        || !rig.forging(),
    );
}

#[test]
fn the_reload_room_is_the_guards_option_and_zero_disables_it() {
    let rig = Rig::launch(RigOptions {
        guard_args: vec!["--reload-room-ms".into(), "300".into()],
        ..RigOptions::default()
    });
    rig.start_forging(1000);
    // A rotation (the files present, the node forging) with less than 300 ms left: refused,
    // and nothing changes.
    assert!(rig.ask(permit(250)).ok);
    let a = rig.ask(Request::Reload);
    assert_eq!(a.kind.as_deref(), Some(PERMIT_ENDING), "{a:?}");
    assert!(rig.forging());
    assert_eq!(rig.count(EventKind::ForgingOn), 1);
    drop(rig);

    let rig = Rig::launch(RigOptions {
        guard_args: vec!["--reload-room-ms".into(), "0".into()],
        ..RigOptions::default()
    });
    rig.start_forging(200);
}

#[test]
fn a_bad_reload_room_is_refused_naming_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |value: &str, env: bool| {
        let mut cmd = std::process::Command::new(exe());
        cmd.arg("guard")
            .arg("--socket")
            .arg(dir.path().join("guard.sock"))
            .args(["--targets", "/nonexistent/a,/nonexistent/b,/nonexistent/c"]);
        if env {
            cmd.env("GUARD_RELOAD_ROOM_MS", value);
        } else {
            cmd.args(["--reload-room-ms", value]);
        }
        let out = cmd.args(["--", "true"]).output().expect("run the guard");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (value, env, says) in [
        ("2s", false, "--reload-room-ms"),
        ("-1", true, "--reload-room-ms"),
        (
            "700000",
            false,
            "--reload-room-ms (GUARD_RELOAD_ROOM_MS) is 700000 ms: at most 600000 ms",
        ),
    ] {
        let (code, stderr) = run(value, env);
        assert_eq!(code, Some(2), "{value}: {stderr}");
        assert!(stderr.contains(says), "{value}: {stderr}");
    }
    assert!(!dir.path().join("guard.sock").exists(), "no guard ran");
}

/// A seed for the node simulator's reload latencies (20..1500 ms, drawn per SIGHUP in order)
/// whose first reload is slow (at least 1 s: the start) and second fast (at most 150 ms: the
/// fence), so that the start takes effect after the fence.
fn seed_for_a_late_start() -> u64 {
    let latency = Latency::range_ms(20, 1500);
    (1..)
        .find(|s| {
            let mut rng = SplitMix64::new(*s);
            latency.draw(&mut rng) >= Duration::from_millis(1000)
                && latency.draw(&mut rng) <= Duration::from_millis(150)
        })
        .expect("a seed")
}

/// A start, then a fence while it is under way; the start takes effect after the fence's
/// reload.
fn late_start(silent: bool) -> (Rig, u64) {
    let seed = seed_for_a_late_start();
    let rig = Rig::launch(RigOptions {
        node_args: vec![
            "--reload-ms".into(),
            "20..1500".into(),
            "--reload-order".into(),
            "concurrent".into(),
            "--seed".into(),
            seed.to_string(),
        ],
        silent,
        ..RigOptions::default()
    });
    assert!(rig.ask(permit(10_000)).ok);
    assert!(rig.ask(Request::Reload).ok, "the start");
    // The node read the files for the start (at its SIGHUP, written just before): the fence
    // now, while that reload is under way.
    rig.wait(
        Duration::from_secs(2),
        "the node takes the start's SIGHUP",
        || rig.count(EventKind::Sighup) == 1,
    );
    assert!(rig.ask(Request::Revoke).ok, "the fence");
    let fenced = forge_guard::logged_at(&rig.log(), "permit revoked").expect("the fence is logged");
    rig.wait(Duration::from_secs(3), "the start taking effect", || {
        rig.count(EventKind::ForgingOn) == 1
    });
    let on = rig.first_at(EventKind::ForgingOn).expect("forging_on");
    assert!(
        on > fenced,
        "the start took effect before the fence: the race was not set up"
    );
    (rig, on)
}

/// The guard does not see the node's lines (it logs to files only): nothing tells it that the
/// start took effect after its fence. It reloads the node once more when the start has had the
/// reload room. Without that the node forges on without a permit.
#[test]
fn a_fence_while_a_start_is_under_way_is_repeated_once_the_start_had_the_reload_room() {
    let (rig, on) = late_start(true);
    // The start was sent just before the fence: once more at its SIGHUP + 2 s, taking effect
    // within the slowest reload (1.5 s) after that.
    rig.wait(
        Duration::from_secs(6),
        "forging_off after the repeated fence reload",
        || !rig.forging(),
    );
    let off = rig.last_at(EventKind::ForgingOff).expect("forging_off");
    let log = rig.log();
    assert!(
        log.contains("an enabling reload was sent")
            && log.contains("the node is reloaded once more without credentials"),
        "{log}"
    );
    assert!(rig.targets().iter().all(|t| !t.exists()));
    assert_eq!(rig.state().permit_ms, None);
    eprintln!(
        "silent node: forging without a permit for {:.0} ms after the late start",
        (off - on) as f64 / 1e6
    );
}

/// The node's lines reach the guard: its "Enabling block forging" after the fence is re-fenced
/// at once.
#[test]
fn a_start_that_takes_effect_after_the_fence_is_refenced_on_its_enabling_line() {
    let (rig, on) = late_start(false);
    rig.wait(Duration::from_secs(4), "forging_off after the re-fence", || {
        !rig.forging()
    });
    let off = rig.last_at(EventKind::ForgingOff).expect("forging_off");
    assert!(
        rig.log()
            .contains("permit refenced: the node reports forging without a permit"),
        "{}",
        rig.log()
    );
    eprintln!(
        "node seen by the guard: forging without a permit for {:.0} ms after the late start",
        (off - on) as f64 / 1e6
    );
}
