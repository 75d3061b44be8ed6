//! Configuration model and its pure validation (filled in by the config work).
use std::time::Duration;

/// Lease timing, client-go semantics (DESIGN.md section 6): `duration > renew_deadline >
/// retry_period * 1.2` once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease is valid after its last renewal (`LEASE_DURATION`).
    pub duration: Duration,
    /// A leader that has not renewed for this long stops forging and gives up.
    pub renew_deadline: Duration,
    /// How often candidates retry and leaders renew.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}
