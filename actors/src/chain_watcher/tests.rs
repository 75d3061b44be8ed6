//! The ChainWatcher against a real HTTP endpoint serving a tip that can fall behind, and a real
//! schedule file rewritten while it runs.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::testing::{eventually, recorder};

/// Serves `cardano_node_metrics_slotNum_int` with the value in `tip` (`u64::MAX`: answers 503).
async fn serve_tip(tip: Arc<AtomicU64>) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/metrics", l.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).await;
            let answer = match tip.load(Ordering::SeqCst) {
                u64::MAX => "HTTP/1.1 503 Service Unavailable\r\n\r\n".to_string(),
                t => format!("HTTP/1.1 200 OK\r\n\r\n{SLOT_METRIC} {t}\n"),
            };
            let _ = c.write_all(answer.as_bytes()).await;
        }
    });
    (url, task)
}

/// The sync states reported, repeats folded (every reading is reported).
fn syncs(facts: &Arc<Mutex<Vec<Fact>>>) -> Vec<bool> {
    let mut all: Vec<bool> = facts
        .lock()
        .expect("facts")
        .iter()
        .filter_map(|f| match f.event {
            Event::NodeSync { synced } => Some(synced),
            _ => None,
        })
        .collect();
    all.dedup();
    all
}

/// A ChainWatcher reading every 50 ms with a minute's tolerance, from nothing (set what it
/// reads with `..every_50ms()`).
fn every_50ms() -> ChainSettings {
    ChainSettings {
        metrics_url: None,
        tolerance: Duration::from_secs(60),
        interval: Duration::from_millis(50),
        schedule: None,
        leader_schedule: None,
    }
}

/// What the ChainWatcher sent for `/status`.
type Sent = Arc<Mutex<Vec<StatusFigures>>>;

/// The chain reports sent for `/status`, in order.
fn reports(sent: &Sent) -> Vec<ChainReport> {
    sent.lock()
        .expect("figures")
        .iter()
        .map(|f| match f {
            StatusFigures::Chain(r) => r.clone(),
            other => panic!("the ChainWatcher sent {other:?}"),
        })
        .collect()
}

/// The chain report last sent (the default before any).
fn last(sent: &Sent) -> ChainReport {
    reports(sent).pop().unwrap_or_default()
}

/// Starts a ChainWatcher with `settings`, its facts and `/status` figures recorded, its metrics
/// returned.
fn start(settings: ChainSettings) -> (Arc<Mutex<Vec<Fact>>>, ChainMetrics, Sent) {
    let (fact, facts) = recorder::<Fact>();
    let (report, sent) = recorder::<StatusFigures>();
    let metrics = ChainMetrics::register(&Registry::new()).expect("metrics");
    ChainWatcher::new(settings, fact, Some(metrics.clone()), report).start();
    (facts, metrics, sent)
}

#[actix::test]
async fn a_tip_falling_behind_and_an_unreadable_one_are_reported() {
    let schedule = KesSchedule::mainnet();
    let wall = schedule.slot_at(Timestamp::now());
    let tip = Arc::new(AtomicU64::new(wall));
    let (url, server) = serve_tip(tip.clone()).await;
    let (facts, metrics, report) = start(ChainSettings {
        metrics_url: Some(url),
        schedule: Some(schedule.clone()),
        ..every_50ms()
    });
    eventually("synced reported", || syncs(&facts) == [true]).await;
    // Reported again at each reading (a node restart clears the Decider's sync state).
    eventually("synced reported repeatedly", || {
        facts
            .lock()
            .expect("facts")
            .iter()
            .filter(|f| f.event == Event::NodeSync { synced: true })
            .count()
            >= 3
    })
    .await;
    assert_eq!(metrics.synced.get(), 1);
    // Ten minutes behind: not synced, with the lag in the gauge and the report.
    tip.store(wall - 600, Ordering::SeqCst);
    eventually("falling behind reported", || syncs(&facts) == [true, false]).await;
    assert!(metrics.lag.get() >= 600, "{}", metrics.lag.get());
    assert_eq!(metrics.synced.get(), 0);
    eventually("falling behind in the report", || {
        last(&report)
            .sync
            .is_some_and(|s| !s.synced && s.lag_slots >= 600)
    })
    .await;
    tip.store(schedule.slot_at(Timestamp::now()), Ordering::SeqCst);
    eventually("caught up", || syncs(&facts) == [true, false, true]).await;
    // An endpoint that fails is not synced, and says why.
    tip.store(u64::MAX, Ordering::SeqCst);
    eventually("unreadable", || syncs(&facts) == [true, false, true, false]).await;
    eventually("the reason in the report", || {
        last(&report)
            .sync_error
            .as_deref()
            .is_some_and(|e| e.contains("503"))
    })
    .await;
    server.abort();
}

#[actix::test]
async fn the_schedule_is_read_again_when_the_file_changes_and_a_bad_one_holds_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("leaderlog.json");
    let soon = Timestamp::now() + jiff::SignedDuration::from_secs(3_600);
    let write = |json: String| std::fs::write(&path, json).expect("write");
    write(format!(
        r#"{{"status":"ok","epoch":1,"assignedSlots":[{{"no":1,"slot":5,"slotInEpoch":5,"at":"{soon}"}}]}}"#
    ));
    let (facts, metrics, report) = start(ChainSettings {
        leader_schedule: Some(path.clone()),
        ..every_50ms()
    });
    let schedules = || {
        facts
            .lock()
            .expect("facts")
            .iter()
            .filter_map(|f| match &f.event {
                Event::LeaderScheduleChanged { slots } => Some(slots.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually("schedule read", || schedules() == [vec![soon]]).await;
    eventually("schedule in the report", || reports(&report).len() == 1).await;
    let first = last(&report);
    assert_eq!(first.schedule_slots, 1, "{first:?}");
    assert_eq!(first.next_leader_slot.map(|s| s.at), Some(soon), "{first:?}");
    assert_eq!(metrics.next_slot.get(), soon.as_millisecond() as f64 / 1000.0);
    assert_eq!(metrics.slots.get(), 1);
    // cncli's error object: refused, reported as an empty schedule, the reason kept.
    write(r#"{"status":"error","errorMessage":"database not synced"}"#.into());
    eventually("bad schedule", || schedules().len() == 2).await;
    assert_eq!(schedules()[1], Vec::<Timestamp>::new());
    assert_eq!(metrics.next_slot.get(), 0.0);
    eventually("the refusal in the report", || reports(&report).len() == 2).await;
    // Sent when the figures change only: the file read, then refused (none for the
    // unchanged readings between).
    let sent = reports(&report);
    assert_eq!(sent[0], first);
    let r = sent[1].clone();
    assert_eq!(r.schedule_slots, 0, "{r:?}");
    assert!(
        r.schedule_error
            .as_deref()
            .is_some_and(|e| e.contains("database not synced") && e.contains("leaderlog.json")),
        "{r:?}"
    );
    assert!(syncs(&facts).is_empty(), "no tip is read without a URL");
}
