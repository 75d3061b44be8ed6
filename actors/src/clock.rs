//! The one monotonic clock all actors share: [`Mono`] instants since a per-process origin, on
//! tokio's clock, so actor tests can run on virtual time (`tokio::time::pause`).

use forge_core::lease::Mono;
use tokio::time::Instant;

/// Maps tokio instants onto forge-core's [`Mono`]. Copy it into every actor: all of them must
/// share one origin for their instants to be comparable.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// The current monotonic instant.
    pub fn now(&self) -> Mono {
        self.mono_of(Instant::now())
    }

    /// The [`Mono`] of a tokio instant (the origin if it is earlier).
    pub fn mono_of(&self, at: Instant) -> Mono {
        let d = at.saturating_duration_since(self.origin);
        Mono::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a [`Mono`], for timers.
    pub fn instant_of(&self, at: Mono) -> Instant {
        self.origin + at.saturating_since(Mono::ZERO)
    }

    /// Wall-clock time, for override expiry and the times we write (never for lease expiry).
    pub fn wall(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn mono_instants_follow_virtual_time_and_round_trip() {
        let clock = Clock::new();
        let a = clock.now();
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        let b = clock.now();
        assert_eq!(b.saturating_since(a), std::time::Duration::from_secs(3));
        assert_eq!(clock.mono_of(clock.instant_of(b)), b);
    }
}
