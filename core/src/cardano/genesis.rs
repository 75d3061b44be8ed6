//! A network's KES timing: from its Shelley genesis (`systemStart`, `slotLength`,
//! `slotsPerKESPeriod`, `maxKESEvolutions`) and the Byron era before it, which slot it is at a
//! given time, which KES period, and when an operational certificate stops being valid.
//!
//! Slot numbers count from the network's `systemStart` through the Byron era (slots of 20 s on
//! mainnet and preprod), then on in Shelley slots; a KES period is `slot / slotsPerKESPeriod`.
//! A certificate starting at period `s` is valid in periods `s .. s + maxKESEvolutions` (the
//! ledger's check): it has ended once the current period reaches `s + maxKESEvolutions`, at the
//! first slot of that period.
//!
//! Built in: mainnet (Shelley from epoch 208, slot 4 492 800), preprod (from epoch 4,
//! slot 86 400) and preview (no Byron era). A `SHELLEY_GENESIS` file gives the Shelley figures
//! of any network; the Byron era is then the built-in one of the named network, or none.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// Byron slots are 20 s on every public network.
const BYRON_SLOT_MILLIS: u64 = 20_000;
/// Byron epochs are `10 k` slots, 21 600 with `k = 2160`.
const BYRON_EPOCH_SLOTS: u64 = 21_600;

/// The Byron era before Shelley: how many slots, of what length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByronEra {
    /// Slots before the first Shelley slot.
    pub slots: u64,
    /// Length of a Byron slot in milliseconds.
    pub slot_millis: u64,
}

impl ByronEra {
    /// No Byron era: the network starts in Shelley (or later).
    pub const NONE: Self = Self {
        slots: 0,
        slot_millis: BYRON_SLOT_MILLIS,
    };

    /// `epochs` Byron epochs of 21 600 slots of 20 s.
    pub const fn epochs(epochs: u64) -> Self {
        Self {
            slots: epochs * BYRON_EPOCH_SLOTS,
            slot_millis: BYRON_SLOT_MILLIS,
        }
    }

    /// The built-in Byron era of a known network.
    pub fn of_network(network: &str) -> Option<Self> {
        match network {
            "mainnet" => Some(Self::epochs(208)),
            "preprod" => Some(Self::epochs(4)),
            "preview" => Some(Self::NONE),
            _ => None,
        }
    }
}

/// The KES timing of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KesSchedule {
    /// `systemStart`: the start of slot 0.
    pub system_start: Timestamp,
    /// The Byron era before Shelley.
    pub byron: ByronEra,
    /// `slotLength` in milliseconds.
    pub slot_millis: u64,
    /// `slotsPerKESPeriod`.
    pub slots_per_kes_period: u64,
    /// `maxKESEvolutions`: periods an operational certificate is valid for.
    pub max_kes_evolutions: u64,
}

/// Whether a certificate can be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KesState {
    /// Current period in `start .. start + maxKESEvolutions`.
    Valid,
    /// Current period before the certificate's start.
    NotYetValid,
    /// Current period at or after `start + maxKESEvolutions`.
    Expired,
}

impl KesState {
    /// Its name in `/status` (`valid`, `not_yet_valid`, `expired`: the serialised form).
    pub fn as_str(self) -> &'static str {
        match self {
            KesState::Valid => "valid",
            KesState::NotYetValid => "not_yet_valid",
            KesState::Expired => "expired",
        }
    }
}

/// A certificate's KES standing at one time. Public figures, safe to log and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KesStatus {
    /// The network's current KES period.
    pub current_period: u64,
    /// The period the certificate starts at.
    pub start_period: u64,
    /// The first period it is no longer valid in (`start + maxKESEvolutions`).
    pub end_period: u64,
    /// Periods left, the current one included (`end - current`, 0 once expired).
    pub remaining_periods: u64,
    /// When the certificate stops being valid (start of `end_period`).
    pub expires_at: Timestamp,
    /// Valid, not yet valid, or expired.
    pub state: KesState,
}

/// What is wrong with a Shelley genesis file: names the file and the field.
pub type GenesisError = super::FileError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShelleyGenesisJson {
    system_start: Option<String>,
    slot_length: Option<f64>,
    #[serde(rename = "slotsPerKESPeriod")]
    slots_per_kes_period: Option<u64>,
    #[serde(rename = "maxKESEvolutions")]
    max_kes_evolutions: Option<u64>,
}

impl KesSchedule {
    /// Mainnet: `systemStart` 2017-09-23T21:44:51Z, 208 Byron epochs, slots of 1 s, KES
    /// periods of 129 600 slots, 62 evolutions.
    pub fn mainnet() -> Self {
        Self::shelley_1s(1_506_203_091, ByronEra::epochs(208))
    }

    /// Preprod: `systemStart` 2022-06-01T00:00:00Z, 4 Byron epochs, otherwise as mainnet.
    pub fn preprod() -> Self {
        Self::shelley_1s(1_654_041_600, ByronEra::epochs(4))
    }

    /// Preview: `systemStart` 2022-10-25T00:00:00Z, no Byron era, otherwise as mainnet.
    pub fn preview() -> Self {
        Self::shelley_1s(1_666_656_000, ByronEra::NONE)
    }

    fn shelley_1s(system_start_unix: i64, byron: ByronEra) -> Self {
        Self {
            system_start: Timestamp::from_second(system_start_unix).unwrap_or(Timestamp::UNIX_EPOCH),
            byron,
            slot_millis: 1_000,
            slots_per_kes_period: 129_600,
            max_kes_evolutions: 62,
        }
    }

    /// The built-in schedule of `mainnet`, `preprod` or `preview`.
    pub fn builtin(network: &str) -> Option<Self> {
        match network {
            "mainnet" => Some(Self::mainnet()),
            "preprod" => Some(Self::preprod()),
            "preview" => Some(Self::preview()),
            _ => None,
        }
    }

    /// Reads a Shelley genesis file (`file` labels it in errors) with `byron` before it.
    pub fn from_shelley_genesis(json: &[u8], file: &str, byron: ByronEra) -> Result<Self, GenesisError> {
        let err = |problem: String| GenesisError {
            file: file.to_owned(),
            problem,
        };
        let g: ShelleyGenesisJson = serde_json::from_slice(json).map_err(|e| {
            err(format!(
                "not a Shelley genesis JSON object (error at line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let missing = |field: &str| err(format!("no `{field}`"));
        let start_text = g.system_start.ok_or_else(|| missing("systemStart"))?;
        let system_start: Timestamp = start_text
            .parse()
            .map_err(|_| err(format!("`systemStart` {start_text:?} is not an RFC 3339 time")))?;
        let slot_length = g.slot_length.ok_or_else(|| missing("slotLength"))?;
        let slot_millis = (slot_length * 1000.0).round();
        if !(1.0..=3_600_000.0).contains(&slot_millis) {
            return Err(err(format!(
                "`slotLength` must be between 0.001 and 3600 seconds, got {slot_length}"
            )));
        }
        let slots_per_kes_period = g
            .slots_per_kes_period
            .filter(|n| *n > 0)
            .ok_or_else(|| err("`slotsPerKESPeriod` must be a positive integer".to_owned()))?;
        let max_kes_evolutions = g
            .max_kes_evolutions
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| err("`maxKESEvolutions` must be an integer in 1..=64 (Sum6KES)".to_owned()))?;
        Ok(Self {
            system_start,
            byron,
            slot_millis: slot_millis as u64,
            slots_per_kes_period,
            max_kes_evolutions,
        })
    }

    /// The start of the first Shelley slot.
    pub fn shelley_start(&self) -> Timestamp {
        add_millis(
            self.system_start,
            u128::from(self.byron.slots) * u128::from(self.byron.slot_millis),
        )
    }

    /// The slot at `t` (0 before `systemStart`).
    pub fn slot_at(&self, t: Timestamp) -> u64 {
        let since = |from: Timestamp| {
            u128::try_from(t.as_millisecond().saturating_sub(from.as_millisecond())).unwrap_or(0)
        };
        let shelley_start = self.shelley_start();
        let slot = if t < shelley_start {
            since(self.system_start) / u128::from(self.byron.slot_millis)
        } else {
            u128::from(self.byron.slots) + since(shelley_start) / u128::from(self.slot_millis)
        };
        u64::try_from(slot).unwrap_or(u64::MAX)
    }

    /// The start of `slot`.
    pub fn slot_start(&self, slot: u64) -> Timestamp {
        if slot < self.byron.slots {
            add_millis(
                self.system_start,
                u128::from(slot) * u128::from(self.byron.slot_millis),
            )
        } else {
            add_millis(
                self.shelley_start(),
                u128::from(slot - self.byron.slots) * u128::from(self.slot_millis),
            )
        }
    }

    /// The KES period at `t`.
    pub fn kes_period_at(&self, t: Timestamp) -> u64 {
        self.slot_at(t) / self.slots_per_kes_period
    }

    /// The start of KES period `period`.
    pub fn kes_period_start(&self, period: u64) -> Timestamp {
        self.slot_start(period.saturating_mul(self.slots_per_kes_period))
    }

    /// The standing at `now` of a certificate starting at KES period `start`.
    pub fn status(&self, start: u64, now: Timestamp) -> KesStatus {
        let current_period = self.kes_period_at(now);
        let end_period = start.saturating_add(self.max_kes_evolutions);
        let state = if current_period < start {
            KesState::NotYetValid
        } else if current_period >= end_period {
            KesState::Expired
        } else {
            KesState::Valid
        };
        KesStatus {
            current_period,
            start_period: start,
            end_period,
            remaining_periods: end_period.saturating_sub(current_period),
            expires_at: self.kes_period_start(end_period),
            state,
        }
    }
}

/// `t + millis`, saturating at jiff's maximum.
fn add_millis(t: Timestamp, millis: u128) -> Timestamp {
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    t.checked_add(SignedDuration::from_millis(millis))
        .unwrap_or(Timestamp::MAX)
}
