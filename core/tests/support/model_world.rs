//! What the model worlds of the lifecycle's property tests (`lifecycle_props`,
//! `quorum_gate_props`) share: how many cases to run, the model's lease and lifecycle settings,
//! the wall clock a monotonic instant maps to, the Decider actor's timers, and the two ways such
//! a world moves forward (time passing, and settling). Each test directory includes this file
//! with `#[path]`.
use std::time::Duration;

use forge_core::config::LeaseTiming;
use forge_core::decision::{Command, Finished, Input, LifecycleConfig, Mono, Run};
use jiff::{SignedDuration, Timestamp};
use proptest::test_runner::TestCaseError;

/// Cases per property: `PROPTEST_CASES` when set (for long soak runs), else `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The renew deadline of the model's lease.
pub(crate) const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// The model's lease timing: 15 s duration, [`RENEW_DEADLINE`], a renewal every 2 s.
pub(crate) fn lease_timing() -> LeaseTiming {
    LeaseTiming {
        duration: Duration::from_secs(15),
        renew_deadline: RENEW_DEADLINE,
        retry_period: Duration::from_secs(2),
    }
}

/// The model's lifecycle settings: a re-assert every 4 s in the node's first 20 s, a failed plan
/// retried after 1 s, and `reload_room` left before the deadline when a reload that does not
/// stop forging is planned (F21); no boot credentials, no status write required, no shutdown
/// hold (a world that models one of these sets it).
pub(crate) fn lifecycle_config(reload_room: Duration) -> LifecycleConfig {
    LifecycleConfig {
        boot_credentials: false,
        reassert_window: Duration::from_secs(20),
        reassert_every: Duration::from_secs(4),
        retry_after: Duration::from_secs(1),
        status_write_required: false,
        shutdown_hold_max: Duration::ZERO,
        reload_room,
    }
}

/// The wall-clock time of a monotonic instant (the model's clocks never drift apart).
pub(crate) fn wall_at(now: Mono) -> Timestamp {
    let base: Timestamp = "2025-06-01T12:00:00Z".parse().expect("valid time");
    base + SignedDuration::try_from(now.as_duration()).expect("small duration")
}

/// The plan in flight as a model world carries it out, one command at a time.
pub(crate) struct Running {
    pub(crate) run: Run,
    /// The index of the next command to carry out.
    pub(crate) next: usize,
    /// The status writes that went through: (`forgingEnabled` written, when).
    pub(crate) status_written: Vec<(bool, Mono)>,
}

impl Running {
    pub(crate) fn new(run: Run) -> Running {
        Running {
            run,
            next: 0,
            status_written: Vec::new(),
        }
    }

    /// What follows a command carried out (`failed` or not): a failure that `aborts` the plan
    /// ends it (`Err`, with the input that tells the lifecycle); otherwise the plan goes on,
    /// with a status write that went through noted.
    pub(crate) fn went_on(
        mut self,
        cmd: Command,
        failed: bool,
        aborts: bool,
        now: Mono,
    ) -> Result<Running, Box<Input>> {
        if failed && aborts {
            return Err(Box::new(self.finished(Some(cmd))));
        }
        if let Command::WriteStatus(report) = &cmd
            && !failed
        {
            self.status_written.push((report.forging_enabled, now));
        }
        Ok(self)
    }

    /// The plan's end as the lifecycle learns it; `failed` names the command it ended on.
    pub(crate) fn finished(self, failed: Option<Command>) -> Input {
        Input::Finished(Finished {
            failed,
            status_written: self.status_written,
            undoable_until: None,
        })
    }
}

/// Whether an event of probability `percent` happens, by the xorshift generator `rng`
/// (deterministic per case; `rng` must not be 0).
pub(crate) fn chance(rng: &mut u64, percent: u32) -> bool {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    (*rng % 100) < u64::from(percent)
}

/// The timers the Decider actor keeps for its lifecycle, each of which feeds it `Input::Timer`.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Instants of the retries asked for (`Effect::WakeAt`).
    retries: Vec<Mono>,
    /// The decision timer (`next_wake` of the decision in force).
    wake: Option<Mono>,
}

impl Timers {
    pub(crate) fn retry_at(&mut self, at: Mono) {
        self.retries.push(at);
    }

    pub(crate) fn set_wake(&mut self, wake: Option<Mono>) {
        self.wake = wake;
    }

    /// Whether a retry is still to come after `now`.
    pub(crate) fn retry_pending(&self, now: Mono) -> bool {
        self.retries.iter().any(|t| *t > now)
    }

    /// The earliest timer due at or before `until`, taken off with every other one due then.
    fn take_due(&mut self, until: Mono) -> Option<Mono> {
        let at = self
            .retries
            .iter()
            .copied()
            .chain(self.wake)
            .filter(|t| *t <= until)
            .min()?;
        self.retries.retain(|t| *t > at);
        if self.wake.is_some_and(|w| w <= at) {
            self.wake = None;
        }
        Some(at)
    }
}

/// A model world: a lifecycle under test, its clock and timers, and the plan it carries out one
/// command at a time.
pub(crate) trait ModelWorld {
    /// The world's current instant and its timers.
    fn clock(&mut self) -> (&mut Mono, &mut Timers);
    /// Feeds the lifecycle one input and checks the world afterwards.
    fn feed(&mut self, input: Input) -> Result<(), TestCaseError>;
    /// Whether a plan is in flight.
    fn in_flight(&self) -> bool;
    /// Carries out the next command of the plan in flight.
    fn step(&mut self) -> Result<(), TestCaseError>;
    /// Commands stop failing from now on.
    fn stop_failing(&mut self);
}

/// Moves time forward by `ms`, firing due timers on the way.
pub(crate) fn advance(world: &mut impl ModelWorld, ms: u64) -> Result<(), TestCaseError> {
    let until = *world.clock().0 + Duration::from_millis(ms);
    loop {
        let (now, timers) = world.clock();
        let Some(at) = timers.take_due(until) else { break };
        *now = (*now).max(at);
        world.feed(Input::Timer)?;
    }
    *world.clock().0 = until;
    Ok(())
}

/// No more failures: carry out every plan and fire every retry until nothing is left.
pub(crate) fn settle(world: &mut impl ModelWorld) -> Result<(), TestCaseError> {
    world.stop_failing();
    for _ in 0..200 {
        if world.in_flight() {
            world.step()?;
            continue;
        }
        let (now, timers) = world.clock();
        if let Some(at) = timers.retries.iter().copied().min() {
            let ms = at.saturating_since(*now).as_millis() as u64;
            advance(world, ms)?;
            continue;
        }
        world.feed(Input::Heartbeat)?;
        if !world.in_flight() {
            return Ok(());
        }
    }
    Err(TestCaseError::fail("the lifecycle never settled"))
}

/// Implements [`ModelWorld`] for a world with the fields `now`, `timers`, `running` and
/// `fail_percent` and the methods `input` and `progress`.
macro_rules! model_world {
    ($world:ty) => {
        impl $crate::model_world::ModelWorld for $world {
            fn clock(&mut self) -> (&mut Mono, &mut $crate::model_world::Timers) {
                (&mut self.now, &mut self.timers)
            }

            fn feed(&mut self, input: Input) -> Result<(), TestCaseError> {
                self.input(input)
            }

            fn in_flight(&self) -> bool {
                self.running.is_some()
            }

            fn step(&mut self) -> Result<(), TestCaseError> {
                self.progress()
            }

            fn stop_failing(&mut self) {
                self.fail_percent = 0;
            }
        }
    };
}
pub(crate) use model_world;
