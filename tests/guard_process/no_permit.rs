//! No permit, no forging: refused reloads, re-fences, credentials removed after the grace, a
//! node that would forge from its start, fences that cannot remove everything.

use std::{process::Command, time::Duration};

use forge_guard::protocol::Request;
use forge_sim::{creds::write_test_credentials, process::is_alive, timeline::EventKind};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Rig, RigOptions, exe, permit};

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
