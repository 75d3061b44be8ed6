//! The ChainWatcher on the in-memory [`MemoryChain`] (its HTTP client and file reads are tested
//! in `adapters::node_chain`): a tip that falls behind and one that cannot be read, a schedule
//! file rewritten while it runs. On virtual time; the wall-clock slot is the real one.
use std::sync::{Arc, Mutex};

use super::*;
use crate::testing::{MemoryChain, eventually, on_virtual_time, recorder};

const URL: &str = "http://node:12798/metrics";

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

/// How many readings reported `synced`.
fn readings(facts: &Arc<Mutex<Vec<Fact>>>, synced: bool) -> usize {
    let reading = Event::NodeSync { synced };
    facts
        .lock()
        .expect("facts")
        .iter()
        .filter(|f| f.event == reading)
        .count()
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

/// Starts a ChainWatcher with `settings` reading `chain`, its facts and `/status` figures
/// recorded, its metrics returned.
fn start(settings: ChainSettings, chain: &MemoryChain) -> (Arc<Mutex<Vec<Fact>>>, ChainMetrics, Sent) {
    let (fact, facts) = recorder::<Fact>();
    let (report, sent) = recorder::<StatusFigures>();
    let metrics = ChainMetrics::register(&Registry::new()).expect("metrics");
    ChainWatcher::new(
        settings,
        Arc::new(chain.clone()),
        fact,
        Some(metrics.clone()),
        report,
    )
    .start();
    (facts, metrics, sent)
}

#[test]
fn a_tip_falling_behind_and_an_unreadable_one_are_reported() {
    on_virtual_time(|| async {
        let schedule = KesSchedule::mainnet();
        let wall = schedule.slot_at(Timestamp::now());
        let chain = MemoryChain::default();
        chain.set_tip(wall);
        let (facts, metrics, report) = start(
            ChainSettings {
                metrics_url: Some(URL.into()),
                schedule: Some(schedule.clone()),
                ..every_50ms()
            },
            &chain,
        );
        eventually("synced reported", || syncs(&facts) == [true]).await;
        // Reported again at each reading (a node restart clears the Decider's sync state).
        eventually("synced reported repeatedly", || readings(&facts, true) >= 3).await;
        assert_eq!(metrics.synced.get(), 1);
        assert_eq!(
            chain.schedule_reads(),
            0,
            "no schedule file is read without LEADER_SCHEDULE"
        );
        // Ten minutes behind: not synced, with the lag in the gauge and the report.
        chain.set_tip(wall - 600);
        eventually("falling behind reported", || syncs(&facts) == [true, false]).await;
        assert!(metrics.lag.get() >= 600, "{}", metrics.lag.get());
        assert_eq!(metrics.synced.get(), 0);
        eventually("falling behind in the report", || {
            last(&report)
                .sync
                .is_some_and(|s| !s.synced && s.lag_slots >= 600)
        })
        .await;
        chain.set_tip(schedule.slot_at(Timestamp::now()));
        eventually("caught up", || syncs(&facts) == [true, false, true]).await;
        // An endpoint that fails is not synced, and says why.
        chain.tip_answers("HTTP/1.1 503 Service Unavailable");
        eventually("unreadable", || syncs(&facts) == [true, false, true, false]).await;
        assert_eq!(metrics.synced.get(), 0);
        eventually("the reason in the report", || {
            last(&report)
                .sync_error
                .is_some_and(|e| e == format!("{URL}: HTTP/1.1 503 Service Unavailable"))
        })
        .await;
        assert_eq!(last(&report).sync, None, "no figures from an unreadable tip");
    });
}

#[test]
fn without_the_networks_slots_the_tip_is_not_read_and_the_node_is_not_synced() {
    on_virtual_time(|| async {
        let chain = MemoryChain::default();
        chain.set_tip(1_000);
        let (facts, metrics, report) = start(
            ChainSettings {
                metrics_url: Some(URL.into()),
                ..every_50ms()
            },
            &chain,
        );
        eventually("not synced, repeatedly", || readings(&facts, false) >= 3).await;
        assert_eq!(syncs(&facts), [false]);
        assert_eq!(metrics.synced.get(), 0);
        assert_eq!(
            chain.tip_reads(),
            0,
            "a tip without the network's slots means nothing"
        );
        eventually("the reason in the report", || {
            last(&report)
                .sync_error
                .is_some_and(|e| e.contains("SHELLEY_GENESIS"))
        })
        .await;
    });
}

#[test]
fn the_schedule_is_read_again_when_the_file_changes_and_a_bad_one_holds_nothing() {
    on_virtual_time(|| async {
        let chain = MemoryChain::default();
        let path = PathBuf::from("/leader/leaderlog.json");
        let soon = Timestamp::now() + jiff::SignedDuration::from_secs(3_600);
        chain.write_schedule(
            format!(
                r#"{{"status":"ok","epoch":1,"assignedSlots":[{{"no":1,"slot":5,"slotInEpoch":5,"at":"{soon}"}}]}}"#
            )
            .as_bytes(),
        );
        let (facts, metrics, report) = start(
            ChainSettings {
                leader_schedule: Some(path.clone()),
                ..every_50ms()
            },
            &chain,
        );
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
        // An unchanged file is not read again (a second of readings).
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(chain.schedule_reads(), 1);
        assert_eq!(schedules().len(), 1);
        // cncli's error object: refused, reported as an empty schedule, the reason kept.
        chain.write_schedule(br#"{"status":"error","errorMessage":"database not synced"}"#);
        eventually("bad schedule", || schedules().len() == 2).await;
        assert_eq!(schedules()[1], Vec::<Timestamp>::new());
        assert_eq!(metrics.next_slot.get(), 0.0);
        assert_eq!(metrics.slots.get(), 0);
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
        // A file that goes away: an empty schedule, the reason naming the file.
        chain.remove_schedule();
        eventually("schedule gone", || schedules().len() == 3).await;
        eventually("the missing file in the report", || {
            last(&report)
                .schedule_error
                .is_some_and(|e| e.starts_with("/leader/leaderlog.json: "))
        })
        .await;
        assert!(syncs(&facts).is_empty(), "no tip is read without a URL");
        assert_eq!(chain.tip_reads(), 0);
    });
}
