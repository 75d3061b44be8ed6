//! The pool's leader schedule as cncli's `leaderlog` command writes it: a JSON object whose
//! `assignedSlots` lists `{ "no", "slot", "slotInEpoch", "at" }`, `at` being the slot's start
//! in RFC 3339 with an offset (`2024-03-26T21:01:47+00:00`, in the time zone cncli was given).
//! A failed run writes `{ "status": "error", "errorMessage": ... }` instead.
//!
//! Only `slot` and `at` are read; everything else (epoch, nonce, sigma, performance) is left
//! alone, so a newer cncli that adds fields still parses. Slots are public: the schedule is no
//! secret once the slot has passed, and it holds no key material.

use jiff::Timestamp;
use serde::Deserialize;

/// One of our leader slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
pub struct LeaderSlot {
    /// When the slot starts (`at`).
    pub at: Timestamp,
    /// The absolute slot number (`slot`).
    pub slot: u64,
}

/// What is wrong with a leader schedule file: names the file and the field.
pub type ScheduleError = super::FileError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaderLogJson {
    status: Option<String>,
    error_message: Option<String>,
    epoch: Option<u64>,
    assigned_slots: Option<Vec<SlotJson>>,
}

#[derive(Deserialize)]
struct SlotJson {
    slot: u64,
    at: String,
}

/// A parsed leader schedule: its epoch (when given) and its slots, sorted by time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderSchedule {
    /// `epoch`, when present.
    pub epoch: Option<u64>,
    /// `assignedSlots`, sorted by `at`.
    pub slots: Vec<LeaderSlot>,
}

impl LeaderSchedule {
    /// Parses cncli `leaderlog` output. `file` labels errors. A schedule whose `status` is not
    /// `ok` (cncli's error object), one without `assignedSlots`, or a slot whose `at` is not an
    /// RFC 3339 time is refused, naming the field.
    pub fn from_leaderlog_json(json: &[u8], file: &str) -> Result<LeaderSchedule, ScheduleError> {
        let err = |problem: String| ScheduleError {
            file: file.to_string(),
            problem,
        };
        let raw: LeaderLogJson = serde_json::from_slice(json)
            .map_err(|e| err(format!("not a cncli leaderlog JSON object: {e}")))?;
        if let Some(status) = raw.status.as_deref().filter(|s| *s != "ok") {
            let why = raw.error_message.as_deref().unwrap_or("no errorMessage");
            return Err(err(format!("status is {status:?}, not \"ok\": {why}")));
        }
        let Some(assigned) = raw.assigned_slots else {
            return Err(err("assignedSlots: missing".into()));
        };
        let mut slots = assigned
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.at.parse::<Timestamp>()
                    .map(|at| LeaderSlot { at, slot: s.slot })
                    .map_err(|e| {
                        err(format!(
                            "assignedSlots[{i}].at: not an RFC 3339 time, got {:?}: {e}",
                            s.at
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        slots.sort();
        slots.dedup();
        Ok(LeaderSchedule {
            epoch: raw.epoch,
            slots,
        })
    }

    /// The first slot that has not started before `now` (a slot starting at `now` counts).
    pub fn next_after(&self, now: Timestamp) -> Option<LeaderSlot> {
        self.slots.iter().find(|s| s.at >= now).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape cncli writes (fields as in its `LeaderLog` and `Slot` structs).
    const SAMPLE: &str = r#"{
      "status": "ok",
      "epoch": 512,
      "epochNonce": "5ee77854fe91cc243b8d5589de3192e795f162097dba7501f8d1b0d5d7546bd5",
      "consensus": "praos",
      "epochSlots": 2,
      "epochSlotsIdeal": 1.83,
      "maxPerformance": 109.29,
      "poolId": "00beef0a9be2f6d897ed24a613cf547bb20cd282a04edfc53d477114",
      "sigma": 0.0000847,
      "activeStake": 1907391239117,
      "totalActiveStake": 22518730447393542,
      "d": 0.0,
      "f": 0.05,
      "assignedSlots": [
        { "no": 2, "slot": 136223456, "slotInEpoch": 402656, "at": "2024-10-01T15:35:47+02:00" },
        { "no": 1, "slot": 136123456, "slotInEpoch": 302656, "at": "2024-09-30T09:49:07+00:00" }
      ]
    }"#;

    #[test]
    fn a_cncli_leaderlog_parses_to_sorted_slots_with_offsets_applied() {
        let s = LeaderSchedule::from_leaderlog_json(SAMPLE.as_bytes(), "leaderlog.json").expect("valid");
        assert_eq!(s.epoch, Some(512));
        assert_eq!(s.slots.len(), 2);
        assert_eq!(s.slots[0].slot, 136_123_456);
        assert_eq!(
            s.slots[0].at,
            "2024-09-30T09:49:07Z".parse::<Timestamp>().expect("ts")
        );
        // +02:00 is applied: 15:35:47 local is 13:35:47 UTC.
        assert_eq!(
            s.slots[1].at,
            "2024-10-01T13:35:47Z".parse::<Timestamp>().expect("ts")
        );
        // Mainnet: slot = POSIX time - 1 591 566 291 in the Shelley era.
        assert_eq!(
            s.slots[1].at.as_second() - 1_591_566_291,
            i64::try_from(s.slots[1].slot).expect("fits")
        );
        let at = |t: &str| t.parse::<Timestamp>().expect("ts");
        assert_eq!(
            s.next_after(at("2024-09-01T00:00:00Z")).map(|s| s.slot),
            Some(136_123_456)
        );
        assert_eq!(
            s.next_after(at("2024-09-30T09:49:07Z")).map(|s| s.slot),
            Some(136_123_456)
        );
        assert_eq!(
            s.next_after(at("2024-09-30T09:49:08Z")).map(|s| s.slot),
            Some(136_223_456)
        );
        assert_eq!(s.next_after(at("2024-11-01T00:00:00Z")), None);
    }

    #[test]
    fn an_empty_epoch_is_a_valid_schedule_without_slots() {
        let s = LeaderSchedule::from_leaderlog_json(br#"{"status":"ok","epoch":3,"assignedSlots":[]}"#, "f")
            .expect("valid");
        assert!(s.slots.is_empty());
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_file_and_field() {
        let e = |j: &str| {
            LeaderSchedule::from_leaderlog_json(j.as_bytes(), "/etc/leaderlog.json")
                .expect_err("refused")
                .to_string()
        };
        let m = e(r#"{"status":"error","errorMessage":"db not synced"}"#);
        assert!(
            m.contains("/etc/leaderlog.json") && m.contains("db not synced"),
            "{m}"
        );
        assert!(e(r#"{"status":"ok"}"#).contains("assignedSlots: missing"));
        let m = e(r#"{"assignedSlots":[{"slot":1,"at":"tomorrow"}]}"#);
        assert!(m.contains("assignedSlots[0].at"), "{m}");
        assert!(e("[1,2]").contains("not a cncli leaderlog"));
    }
}
