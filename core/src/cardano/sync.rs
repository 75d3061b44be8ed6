//! How far a node's tip is behind the network's wall-clock slot: the pure half of sync-aware
//! election. A node whose tip slot is more than a tolerance behind the slot of `now` is not
//! synced; one ahead of it (clock skew) counts as synced with no lag.
//!
//! The tip slot comes from the node (its `cardano_node_metrics_slotNum_int` metric, or a local
//! chain-sync query); the result feeds the decision engine's `NodeSync` event.

use std::time::Duration;

use jiff::Timestamp;

use super::KesSchedule;

/// A node's sync standing at one time. Public figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncStatus {
    /// The node's tip slot.
    pub tip_slot: u64,
    /// The network's slot at `now`.
    pub wall_slot: u64,
    /// How many slots the tip is behind (0 when at or ahead of the wall-clock slot).
    pub lag_slots: u64,
    /// Whether the lag is within the tolerance.
    pub synced: bool,
}

impl KesSchedule {
    /// The sync standing of a node at `tip_slot` at `now`: synced when its tip is at most
    /// `tolerance` (wall time, converted with the current slot length) behind.
    pub fn sync_status(&self, tip_slot: u64, now: Timestamp, tolerance: Duration) -> SyncStatus {
        let wall_slot = self.slot_at(now);
        let lag_slots = wall_slot.saturating_sub(tip_slot);
        let tolerance_slots =
            u64::try_from(tolerance.as_millis() / u128::from(self.slot_millis)).unwrap_or(u64::MAX);
        SyncStatus {
            tip_slot,
            wall_slot,
            lag_slots,
            synced: lag_slots <= tolerance_slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mainnet_tip_within_the_tolerance_is_synced_and_one_behind_it_is_not() {
        let m = KesSchedule::mainnet();
        let now: Timestamp = "2026-11-30T00:00:00Z".parse().expect("ts");
        // Slot = POSIX time - 1 591 566 291 on mainnet.
        let wall = 1_795_996_800 - 1_591_566_291;
        let tolerance = Duration::from_secs(120);
        let at = |tip: u64| m.sync_status(tip, now, tolerance);
        assert_eq!(at(wall).wall_slot, wall);
        assert_eq!((at(wall).lag_slots, at(wall).synced), (0, true));
        assert_eq!((at(wall - 120).lag_slots, at(wall - 120).synced), (120, true));
        assert_eq!((at(wall - 121).lag_slots, at(wall - 121).synced), (121, false));
        // A tip ahead of our clock (skew) is synced with no lag.
        assert_eq!((at(wall + 5).lag_slots, at(wall + 5).synced), (0, true));
        // A node still replaying Byron is far behind.
        assert!(!at(4_000_000).synced);
    }

    #[test]
    fn the_tolerance_is_converted_with_the_slot_length() {
        let g = br#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":0.2,"slotsPerKESPeriod":600,"maxKESEvolutions":10}"#;
        let s = KesSchedule::from_shelley_genesis(g, "g", super::super::ByronEra::NONE).expect("valid");
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().expect("ts");
        // 60 s of 0.2 s slots: slot 300; a 10 s tolerance is 50 slots.
        let st = s.sync_status(250, now, Duration::from_secs(10));
        assert_eq!((st.wall_slot, st.lag_slots, st.synced), (300, 50, true));
        assert!(!s.sync_status(249, now, Duration::from_secs(10)).synced);
    }
}
