//! ChainWatcher: the node's place on the chain and the pool's leader schedule
//! (docs/cardano.md). It reports facts and decides nothing.
//!
//! - **Sync.** Every `SYNC_CHECK_INTERVAL` it reads the node's tip slot from its Prometheus
//!   endpoint (`cardano_node_metrics_slotNum_int`) and compares it with the wall-clock slot of
//!   the network ([`KesSchedule::sync_status`]): synced when the tip is at most
//!   `SYNC_TOLERANCE` behind. A tip that cannot be read counts as not synced (a node whose
//!   standing is unknown must not take over). Every reading goes to the Decider as
//!   `Fact(NodeSync { synced })` (a node restart clears its sync state, the next reading
//!   restores it); each change is logged with the figures and the reason.
//! - **Leader schedule.** It re-reads `LEADER_SCHEDULE` (cncli `leaderlog` JSON) whenever the
//!   file's size or modification time changes and sends the slot times as
//!   `Fact(LeaderScheduleChanged)`. A file that cannot be read or parsed is logged (naming the
//!   file and the field) and sent as an empty schedule, which holds nothing back.
//!
//! Metrics: `forge_manager_node_tip_slot`, `forge_manager_node_slot_lag`, `forge_manager_node_synced` (1, 0),
//! `cardano_leader_next_slot_timestamp_seconds` (0 when no slot is ahead) and
//! `forge_manager_leader_schedule_slots`. `/status` shows the same figures (`chain`).
//!
//! Both reads go through the [`ChainSource`] port (the HTTP client and the file reads are the
//! `node_chain` adapter's).

use std::{path::PathBuf, sync::Arc, time::Duration};

use actix::{Actor, AsyncContext, Context, Recipient, WrapFuture};
use forge_core::{
    cardano::{KesSchedule, LeaderSchedule, LeaderSlot},
    decision::Event,
};
use jiff::Timestamp;
use prometheus::{Gauge, IntGauge, Registry};

use crate::{
    messages::{Fact, StatusFigures},
    ports::{ChainSource, FileVersion},
};

/// What the ChainWatcher reads and how.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// The node's Prometheus endpoint (`None`: the tip is not read).
    pub metrics_url: Option<String>,
    /// How far behind still counts as synced.
    pub tolerance: Duration,
    /// Time between reads (tip and schedule).
    pub interval: Duration,
    /// The network's slots (needed to read the tip).
    pub schedule: Option<KesSchedule>,
    /// The cncli leaderlog file, when configured.
    pub leader_schedule: Option<PathBuf>,
}

/// What `/status` shows under `chain` (the document's type, in the core).
pub use forge_core::status::ChainReport;

/// The ChainWatcher's gauges.
#[derive(Clone)]
pub struct ChainMetrics {
    tip: IntGauge,
    lag: IntGauge,
    synced: IntGauge,
    next_slot: Gauge,
    slots: IntGauge,
}

impl ChainMetrics {
    /// Registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let tip = IntGauge::new(
            "forge_manager_node_tip_slot",
            "The slot of the local node's tip, as last read.",
        )?;
        let lag = IntGauge::new(
            "forge_manager_node_slot_lag",
            "Slots the local node's tip is behind the wall-clock slot (0 when at or ahead).",
        )?;
        let synced = IntGauge::new(
            "forge_manager_node_synced",
            "1 when the node's tip is within SYNC_TOLERANCE of the wall-clock slot, else 0 (also when it cannot be read).",
        )?;
        let next_slot = Gauge::new(
            "cardano_leader_next_slot_timestamp_seconds",
            "Unix time of our next leader slot from LEADER_SCHEDULE (0: none ahead).",
        )?;
        let slots = IntGauge::new(
            "forge_manager_leader_schedule_slots",
            "Leader slots in LEADER_SCHEDULE as last read (0 also when unreadable).",
        )?;
        for g in [&tip, &lag, &synced, &slots] {
            registry.register(Box::new(g.clone()))?;
        }
        registry.register(Box::new(next_slot.clone()))?;
        Ok(Self {
            tip,
            lag,
            synced,
            next_slot,
            slots,
        })
    }
}

/// The actor.
pub struct ChainWatcher {
    settings: ChainSettings,
    source: Arc<dyn ChainSource>,
    fact: Recipient<Fact>,
    metrics: Option<ChainMetrics>,
    report: Recipient<StatusFigures>,
}

impl ChainWatcher {
    /// A watcher reading through `source`, reporting to `fact`, sending its figures for
    /// `/status` to `report` (the Decider) whenever they change.
    pub fn new(
        settings: ChainSettings,
        source: Arc<dyn ChainSource>,
        fact: Recipient<Fact>,
        metrics: Option<ChainMetrics>,
        report: Recipient<StatusFigures>,
    ) -> Self {
        Self {
            settings,
            source,
            fact,
            metrics,
            report,
        }
    }
}

impl Actor for ChainWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let run = Run {
            settings: self.settings.clone(),
            source: self.source.clone(),
            fact: self.fact.clone(),
            metrics: self.metrics.clone(),
            to: self.report.clone(),
            report: ChainReport::default(),
            sent: None,
            synced: None,
            file: None,
            slots: Vec::new(),
        };
        ctx.spawn(run.run().into_actor(self));
    }
}

impl actix::Supervised for ChainWatcher {}

struct Run {
    settings: ChainSettings,
    source: Arc<dyn ChainSource>,
    fact: Recipient<Fact>,
    metrics: Option<ChainMetrics>,
    /// Where the figures go for `/status` (the Decider).
    to: Recipient<StatusFigures>,
    /// The figures now, and as last sent.
    report: ChainReport,
    sent: Option<ChainReport>,
    /// The last sync state and whether the tip was readable (a change of either is logged).
    synced: Option<(bool, bool)>,
    /// The schedule file's version as last read (`None`: not read yet).
    file: Option<Option<FileVersion>>,
    slots: Vec<LeaderSlot>,
}

impl Run {
    async fn run(mut self) {
        loop {
            if self.settings.leader_schedule.is_some() {
                self.check_schedule();
            }
            if self.settings.metrics_url.is_some() {
                self.check_sync().await;
            }
            if self.sent.as_ref() != Some(&self.report) {
                self.to.do_send(StatusFigures::Chain(self.report.clone()));
                self.sent = Some(self.report.clone());
            }
            tokio::time::sleep(self.settings.interval).await;
        }
    }

    /// Reads the tip, reports a change of sync state.
    async fn check_sync(&mut self) {
        let Some(url) = self.settings.metrics_url.clone() else {
            return;
        };
        let timeout = self
            .settings
            .interval
            .clamp(Duration::from_millis(200), Duration::from_secs(5));
        let reading = match &self.settings.schedule {
            None => Err("the network's slots are unknown (set SHELLEY_GENESIS)".to_string()),
            Some(schedule) => self
                .source
                .tip(&url, timeout)
                .await
                .map_err(|e| e.to_string())
                .map(|tip| schedule.sync_status(tip, Timestamp::now(), self.settings.tolerance)),
        };
        let tolerance_s = self.settings.tolerance.as_secs_f64();
        let synced = reading.as_ref().is_ok_and(|s| s.synced);
        if let Some(m) = &self.metrics {
            m.synced.set(i64::from(synced));
            if let Ok(s) = &reading {
                m.tip.set(i64::try_from(s.tip_slot).unwrap_or(i64::MAX));
                m.lag.set(i64::try_from(s.lag_slots).unwrap_or(i64::MAX));
            }
        }
        let standing = (synced, reading.is_ok());
        if self.synced != Some(standing) {
            match &reading {
                Ok(s) if s.synced => tracing::info!(
                    tip_slot = s.tip_slot,
                    wall_slot = s.wall_slot,
                    lag_slots = s.lag_slots,
                    tolerance_s,
                    "node synced: its tip is within the tolerance of the wall-clock slot"
                ),
                Ok(s) => tracing::warn!(
                    tip_slot = s.tip_slot,
                    wall_slot = s.wall_slot,
                    lag_slots = s.lag_slots,
                    tolerance_s,
                    "node not synced: its tip is behind the wall-clock slot by more than the tolerance"
                ),
                Err(why) => tracing::warn!(%why, "node not synced: its tip cannot be read"),
            }
            self.synced = Some(standing);
        }
        // Every reading, not only changes: a node restart (`NodeDown`) clears the Decider's
        // sync state, and the next reading must restore it.
        self.fact.do_send(Fact::now(Event::NodeSync { synced }));
        self.report.sync = reading.as_ref().ok().copied();
        self.report.sync_error = reading.err();
    }

    /// Re-reads the schedule file when it changed; refreshes the next slot.
    fn check_schedule(&mut self) {
        let Some(path) = self.settings.leader_schedule.clone() else {
            return;
        };
        let version = self.source.schedule_version(&path);
        if self.file != Some(version) {
            self.file = Some(version);
            let label = path.display().to_string();
            let parsed = self
                .source
                .read_schedule(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    LeaderSchedule::from_leaderlog_json(&bytes, &label).map_err(|e| e.to_string())
                });
            let error = match parsed {
                Ok(s) => {
                    tracing::info!(
                        file = %label,
                        epoch = ?s.epoch,
                        slots = s.slots.len(),
                        "leader schedule read"
                    );
                    self.slots = s.slots;
                    None
                }
                Err(why) => {
                    tracing::warn!(%why, "leader schedule unusable: no planned handover is held");
                    self.slots.clear();
                    Some(why)
                }
            };
            self.fact.do_send(Fact::now(Event::LeaderScheduleChanged {
                slots: self.slots.iter().map(|s| s.at).collect(),
            }));
            self.report.schedule_slots = self.slots.len();
            self.report.schedule_error = error;
        }
        let next = self.slots.iter().find(|s| s.at >= Timestamp::now()).copied();
        if let Some(m) = &self.metrics {
            m.slots.set(i64::try_from(self.slots.len()).unwrap_or(i64::MAX));
            m.next_slot
                .set(next.map_or(0.0, |s| s.at.as_millisecond() as f64 / 1000.0));
        }
        self.report.next_leader_slot = next;
    }
}

#[cfg(test)]
mod tests;
