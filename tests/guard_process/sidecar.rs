//! The sidecar's side against a real guard: a node in another process namespace found through
//! its guard, and the permit the NodeSignaller grants.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use forge_sim::timeline::EventKind;

use crate::Rig;

/// Runs a NodeWatcher that sees no process at all here (an empty procfs: the node runs in
/// another container without a shared process namespace) and returns what it reported.
async fn watch_without_process_namespace(
    rig: &Rig,
    guard_socket: Option<PathBuf>,
) -> (Vec<forge_core::decision::Event>, Vec<Option<i32>>) {
    use actix::Actor;
    use forge_actors::{
        adapters::{guard::GuardClient, process::ProcFs},
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
    let settings = NodeWatcherSettings::new(rig.path("node.socket"), "cardano-node");
    let metrics =
        Metrics::register(&prometheus::Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let probe = Probe::start();
    let (processes, seen) = recorder::<NodeProcess>();
    let guard = guard_socket.map(|socket| GuardClient::new(socket, settings.connect_timeout));
    let watcher = NodeWatcher::new(
        settings,
        ProcFs::at(empty_proc.path()),
        probe.recipient(),
        processes,
        &metrics,
    );
    let _watcher = match guard {
        Some(guard) => watcher.with_guard(std::sync::Arc::new(guard)),
        None => watcher,
    }
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
    let rig = Rig::start();
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

/// The sidecar's side: the permit it grants for a starting reload ends at the lease's renew
/// deadline (an absolute instant on CLOCK_MONOTONIC, computed from that deadline), and a reload
/// the guard refuses is not sent by PID instead.
#[actix::test]
async fn the_sidecar_grants_a_permit_that_ends_at_the_lease_deadline() {
    use actix::Actor;
    use forge_actors::{
        adapters::{guard::GuardClient, process::ProcFs},
        clock::Clock,
        messages::{Fact, Reload},
        metrics::{Metrics, PodLabels},
        node_signaller::NodeSignaller,
    };
    use forge_core::decision::{Event, ReloadReason};
    let rig = Rig::start();
    let metrics =
        Metrics::register(&prometheus::Registry::new(), &PodLabels::default(), "test").expect("metrics");
    let clock = Clock::new();
    let signaller = NodeSignaller::new(ProcFs::default(), &metrics)
        .with_guard(
            std::sync::Arc::new(GuardClient::new(rig.socket(), Duration::from_secs(2))),
            clock,
        )
        .start();
    // A standby's reload with the files present: the guard refuses, nothing else signals.
    let r = signaller
        .send(Reload {
            reason: ReloadReason::Rotation,
        })
        .await
        .expect("send");
    assert_eq!(
        r.as_ref().map_err(|e| e.kind.as_str()),
        Err("guard_refused"),
        "{r:?}"
    );
    // More than the guard's reload room (2 s) ahead: the guard carries the start out.
    let deadline = clock.mono_of(tokio::time::Instant::now() + Duration::from_millis(3000));
    signaller
        .send(Fact::now(Event::LeaseAcquired { deadline }))
        .await
        .expect("send");
    let r = signaller
        .send(Reload {
            reason: ReloadReason::StartForging,
        })
        .await
        .expect("send");
    assert!(r.is_ok(), "{r:?}");
    let left = rig.state().permit_ms.expect("a permit");
    assert!(
        (1500..=3000).contains(&left),
        "permit_ms {left}: not the lease's deadline"
    );
    let t0 = Instant::now();
    while rig.forging() || rig.count(EventKind::ForgingOn) == 0 || !rig.log().contains("permit lapsed") {
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "no forging_on/off\n{}",
            rig.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Not renewed: the permit lapsed at the lease's deadline, the guard fenced.
    assert_eq!(rig.count(EventKind::Sighup), 2, "{:?}", rig.events());
}
