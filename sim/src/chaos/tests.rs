//! The schedule, the gap bounds, the rotation and the judge.
use super::*;
use crate::timeline::{EventKind, TimelineEvent};
use crate::world::LeaseRecord;

#[test]
fn the_schedule_is_a_function_of_the_seed() {
    assert_eq!(plan(7, 1, 50), plan(7, 1, 50));
    assert_ne!(plan(7, 1, 50), plan(8, 1, 50));
}

#[test]
fn an_opening_sets_the_first_kinds_and_moves_nothing_else() {
    let opening = [FaultKind::LinkCut, FaultKind::WatchDrop, FaultKind::GuardKill];
    let free = plan(5, 2, 20);
    let opened = plan_opening(5, 2, &opening, 20);
    for (i, (a, b)) in free.iter().zip(&opened).enumerate() {
        match opening.get(i) {
            Some(kind) => assert_eq!(b.kind, *kind, "fault {i}"),
            None => assert_eq!(a, b, "fault {i} after the opening"),
        }
        assert_eq!(a.pause, b.pause, "fault {i}: the calm is drawn all the same");
    }
    for k in FaultKind::ALL {
        assert_eq!(FaultKind::from_name(k.name()), Some(k));
    }
    assert_eq!(FaultKind::from_name("meteor"), None);
}

#[test]
fn the_process_faults_are_the_kinds_that_hit_one_process() {
    let hits_a_process = |k: FaultKind| {
        ["sidecar_", "guard_", "node_"]
            .iter()
            .any(|p| k.name().starts_with(p))
    };
    let process: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| hits_a_process(*k))
        .collect();
    assert_eq!(FaultKind::PROCESS, process.as_slice());
}

#[test]
fn a_long_schedule_draws_every_kind() {
    let one: std::collections::BTreeSet<FaultKind> = plan(1, 1, 400).iter().map(|f| f.kind).collect();
    assert_eq!(one.len(), FaultKind::ALL.len() - 1, "{one:?}");
    assert!(!one.contains(&FaultKind::LinkCut), "no link to cut in one region");
    let two: std::collections::BTreeSet<FaultKind> = plan(1, 2, 400).iter().map(|f| f.kind).collect();
    assert_eq!(two.len(), FaultKind::ALL.len(), "{two:?}");
    for f in plan(3, 2, 400) {
        if let Target::Pod { region, index } = f.target {
            assert!(region < 2 && index < PODS, "{f:?}");
        }
    }
}

fn timings() -> Timings {
    Timings::of(&WorldOptions::realistic(PathBuf::from("x"), PODS), 1)
}

#[test]
fn gap_bounds_grow_with_what_the_fault_holds_up() {
    let t = timings();
    let f = |kind, hold_ms, slow_ms| FaultPlan {
        kind,
        target: Target::Leader { fallback: 0 },
        hold: Duration::from_millis(hold_ms),
        slow_start: Duration::from_millis(slow_ms),
        latency: (Duration::ZERO, Duration::ZERO),
        pause: Duration::ZERO,
    };
    // 4 s lease + 2 x 0.5 s retry + 1.5 s reload + 4 s allowance.
    let base = Duration::from_millis(10_500);
    assert_eq!(gap_bound(&f(FaultKind::SidecarKill, 3000, 0), &t), base);
    assert_eq!(gap_bound(&f(FaultKind::ApiBlackhole, 9000, 0), &t), base);
    assert_eq!(
        gap_bound(&f(FaultKind::GuardStop, 2000, 0), &t),
        base + Duration::from_secs(2)
    );
    // Restart delay 1 s + handler 150 ms + replay 300 ms + one more reload 1.5 s.
    assert_eq!(
        gap_bound(&f(FaultKind::NodeKill, 1000, 0), &t),
        base + Duration::from_millis(2950)
    );
    assert_eq!(
        gap_bound(&f(FaultKind::NodeSlowStart, 1000, 4000), &t),
        base + Duration::from_millis(6800)
    );
    let two = Timings { regions: 2, ..t };
    assert_eq!(
        gap_bound(&f(FaultKind::SidecarKill, 0, 0), &two),
        base + Duration::from_millis(4500)
    );
}

#[test]
fn rotation_swaps_the_whole_set_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::creds::write_test_credentials(dir.path(), 1, 0).expect("creds");
    let before = std::fs::read(dir.path().join("node.cert")).expect("cert");
    rotate(dir.path(), 2).expect("rotate");
    let after = std::fs::read(dir.path().join("node.cert")).expect("cert");
    assert_ne!(before, after, "a new certificate");
    assert!(
        std::fs::symlink_metadata(dir.path().join("kes.skey"))
            .expect("kes")
            .file_type()
            .is_symlink()
    );
    rotate(dir.path(), 3).expect("rotate again");
    assert!(!dir.path().join("..v2").exists(), "the old version is removed");
    for f in ["kes.skey", "vrf.skey", "node.cert"] {
        assert!(
            std::fs::read(dir.path().join(f)).is_ok(),
            "{f} readable through ..data"
        );
    }
}

fn ev(t_ms: u64, node: &str, kind: EventKind) -> TimelineEvent {
    TimelineEvent {
        t_unix_ns: t_ms * 1_000_000,
        pid: 1,
        proc_start_ns: 1,
        ..TimelineEvent::now(node, kind, "")
    }
}

fn report_with(steps: Vec<(u64, FaultKind, f64)>) -> ChaosReport {
    ChaosReport::unjudged(
        1,
        1,
        0.0,
        timings(),
        steps
            .into_iter()
            .enumerate()
            .map(|(n, (t_ms, kind, bound_ms))| Step {
                n: n + 1,
                plan: FaultPlan {
                    kind,
                    target: Target::Leader { fallback: 0 },
                    hold: Duration::ZERO,
                    slow_start: Duration::ZERO,
                    latency: (Duration::ZERO, Duration::ZERO),
                    pause: Duration::ZERO,
                },
                hit: "a".into(),
                injected: true,
                hit_forger: true,
                t_unix_ns: t_ms * 1_000_000,
                bound_ms,
                max_gap_ms: 0.0,
                overlap_ms: 0.0,
                recovered_ms: Some(0.0),
                late_boots: 0,
            })
            .collect(),
        Vec::new(),
    )
}

fn held(holder: &str, from_ms: u64) -> LeaseRecord {
    LeaseRecord {
        lease: "l".into(),
        holder: holder.into(),
        acquire_unix_ns: from_ms * 1_000_000,
        observed_unix_ns: from_ms * 1_000_000,
    }
}

#[test]
fn the_judge_attributes_each_gap_to_the_fault_before_it() {
    let events = [
        ev(0, "a", EventKind::Start),
        ev(0, "b", EventKind::Start),
        ev(100, "a", EventKind::ForgingOn),
        ev(1000, "a", EventKind::ForgingOff), // fault 1 at 900: gap 1000..3000
        ev(3000, "b", EventKind::ForgingOn),
        ev(5000, "b", EventKind::ForgingOff), // fault 2 at 4000: gap 5000..5500
        ev(5500, "a", EventKind::ForgingOn),
        ev(9000, "a", EventKind::Exit),
        ev(9000, "b", EventKind::Exit),
    ];
    let leases = [held("a", 50), held("b", 2900), held("a", 5400)];
    let mut r = report_with(vec![
        (900, FaultKind::SidecarKill, 2500.0),
        (4000, FaultKind::NodeKill, 400.0),
    ]);
    judge(&mut r, &events, &leases, 8_000_000_000, u64::MAX);
    assert_eq!(r.steps[0].max_gap_ms, 2000.0);
    assert_eq!(r.steps[1].max_gap_ms, 500.0);
    assert_eq!(r.longest_gap_ms, 2000.0);
    assert_eq!(r.overlap_ms, 0.0);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].contains("#2 node_kill"), "{:?}", r.violations);
    assert!(!r.passed());
}

#[test]
fn overlap_and_forging_without_a_lease_fail_the_verdict() {
    let events = [
        ev(0, "a", EventKind::Start),
        ev(0, "b", EventKind::Start),
        ev(100, "a", EventKind::ForgingOn),
        ev(200, "b", EventKind::ForgingOn), // b never held the lease
        ev(300, "a", EventKind::ForgingOff),
    ];
    let mut r = report_with(vec![(150, FaultKind::WatchDrop, 10_000.0)]);
    judge(&mut r, &events, &[held("a", 50)], 400_000_000, u64::MAX);
    assert_eq!(r.overlap_ms, 100.0);
    assert_eq!(r.forging_without_lease, 1);
    assert!(
        r.violations.iter().any(|v| v.starts_with("S1: 100.000 ms")),
        "{:?}",
        r.violations
    );
    assert!(
        r.violations.iter().any(|v| v.contains("held no Lease")),
        "{:?}",
        r.violations
    );
}

#[test]
fn an_empty_timeline_fails_the_verdict() {
    let mut r = report_with(vec![]);
    judge(&mut r, &[], &[], 1, u64::MAX);
    assert!(!r.passed());
    assert!(r.violations[0].contains("no verdict"), "{:?}", r.violations);
}
