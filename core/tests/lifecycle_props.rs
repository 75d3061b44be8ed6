//! Model-based property tests of the Decider's lifecycle (`core/src/decision/lifecycle/`): a
//! model world carries out its plans one command at a time, so plans are slow and facts,
//! timers and rotations arrive while they run; commands fail at random; the lease expires
//! unless renewed; the node restarts (booting non-producing where configured) and its guard
//! fences it. After every step the world checks who could forge:
//!
//! - a reload that finds credentials installed is sent only by a plan that means to forge (a
//!   standby never forges, whatever the boot credentials, re-asserts and rotations do);
//! - a plan that installs credentials to forge carries the renew deadline and is emitted before
//!   it (start_by), and the executor sends none of its commands past it, as the actor's does;
//! - the lease is never released while the node may forge (S2), also when a node process comes
//!   up forging while the plan that releases it runs (F12: the executor's hand-over gate is
//!   modelled as the actor's);
//! - an idle lifecycle (no plan in flight, no failed plan waiting) never leaves the node forging
//!   past the renew deadline (S1 with its stop plan);
//! - settled (no more failures, every timer fed), the node forges exactly when the decision in
//!   force does, and does whenever it should (L1); the shutdown plan ends in one `Exit`, and a
//!   confirmed one leaves nothing forging.
//!
//! The tests count the cases in which the model node forged, and those in which a node process
//! came up while a plan was about to give something up, so a model that never reaches these
//! states fails instead of passing vacuously.
use std::time::Duration;

use forge_core::config::LeaseTiming;
use forge_core::decision::{
    Command, DeciderConfig, Effect, Event, Finished, Input, Lifecycle, LifecycleConfig, Mono, Phase,
    ReloadReason, Run, State, Step, aborts,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

/// Cases per property: `PROPTEST_CASES` when set (for long soak runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wall_at(now: Mono) -> Timestamp {
    let base: Timestamp = "2025-06-01T12:00:00Z".parse().expect("valid time");
    base + SignedDuration::try_from(now.as_duration()).expect("small duration")
}

const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// One step of the world.
#[derive(Debug, Clone)]
enum Action {
    /// Carry out the next command of the plan in flight (a slow plan: one command a step).
    Progress,
    /// Time passes (timers due in between fire first).
    Advance(u64),
    NodeUp,
    /// A node process comes up forging with keys it read at its start, whatever the files are
    /// now: started without `--start-as-non-producing-node` while files were present, a stop
    /// reload lost in its replay (F12), at any point, also while a plan that stops forging or
    /// gives the lease up is in flight. With boot credentials only when they are present (the
    /// boot files, read by a node that was started without the non-producing flag).
    NodeUpForging,
    NodeDown,
    CredentialsValid,
    CredentialsInvalid,
    LeaseAcquired,
    LeaseRenewed,
    LeaseLost,
    /// The node guard fenced the node (permit lapsed).
    Fenced,
    Heartbeat,
    Rotated,
    Shutdown,
    /// Our next leader slot starts this many milliseconds from now (`LEADER_SCHEDULE`).
    Schedule(u64),
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => Just(Action::Progress),
        4 => (1u64..4_000).prop_map(Action::Advance),
        2 => Just(Action::NodeUp),
        1 => Just(Action::NodeUpForging),
        1 => Just(Action::NodeDown),
        2 => Just(Action::CredentialsValid),
        1 => Just(Action::CredentialsInvalid),
        3 => Just(Action::LeaseAcquired),
        3 => Just(Action::LeaseRenewed),
        1 => Just(Action::LeaseLost),
        1 => Just(Action::Fenced),
        2 => Just(Action::Heartbeat),
        1 => Just(Action::Rotated),
        1 => (0u64..30_000).prop_map(Action::Schedule),
    ]
}

/// The plan in flight as the world carries it out.
struct Running {
    run: Run,
    next: usize,
    status_written: Vec<(bool, Mono)>,
}

struct World {
    life: Lifecycle,
    boot_credentials: bool,
    now: Mono,
    /// Failure probability of a command, in percent (0 once settling).
    fail_percent: u32,
    rng: u64,
    running: Option<Running>,
    /// Instants at which the actor would feed `Input::Timer` (retries).
    retries: Vec<Mono>,
    /// The decision timer (`next_wake` of the decision in force).
    wake: Option<Mono>,
    files: bool,
    node_up: bool,
    node_forging: bool,
    ever_forged: bool,
    exits: u32,
    exit_confirmed: Option<bool>,
    /// Whether the node forged when the lifecycle exited (a node process that comes up after
    /// the exit is no longer this process's to stop).
    forging_at_exit: bool,
    /// When the lifecycle asked every PeerWatcher to read now (`Effect::PollPeers`).
    polls: Vec<Mono>,
    /// A start-up reload found no node (no boot credentials): the NodeSignaller sends it to the
    /// first node process that appears (F7).
    startup_pending: bool,
    /// How often the hand-over gate stopped a plan (a node process came up during it).
    gated: u32,
}

impl World {
    fn new(boot_credentials: bool, fail_percent: u32, seed: u64) -> World {
        World::with_hold(boot_credentials, fail_percent, seed, Duration::ZERO)
    }

    fn with_hold(boot_credentials: bool, fail_percent: u32, seed: u64, shutdown_hold_max: Duration) -> World {
        let config = LifecycleConfig {
            boot_credentials,
            reassert_window: Duration::from_secs(20),
            reassert_every: Duration::from_secs(4),
            retry_after: Duration::from_secs(1),
            status_write_required: false,
            shutdown_hold_max,
        };
        let mut decider = DeciderConfig::single_cluster("c0");
        decider.lease = LeaseTiming {
            duration: Duration::from_secs(15),
            renew_deadline: RENEW_DEADLINE,
            retry_period: Duration::from_secs(2),
        };
        let mut w = World {
            life: Lifecycle::new(config, State::new(decider)),
            boot_credentials,
            now: Mono::from_millis(1_000),
            fail_percent,
            rng: seed | 1,
            running: None,
            retries: Vec::new(),
            wake: None,
            files: false,
            node_up: false,
            node_forging: false,
            ever_forged: false,
            exits: 0,
            exit_confirmed: None,
            forging_at_exit: false,
            polls: Vec::new(),
            startup_pending: false,
            gated: 0,
        };
        w.input(Input::Started).expect("start-up is valid");
        w
    }

    fn chance(&mut self, percent: u32) -> bool {
        // xorshift: deterministic per case.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) < u64::from(percent)
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let trace = std::env::var_os("LIFECYCLE_TRACE").is_some();
        if trace {
            eprintln!("{:?} input {input:?}", self.now);
        }
        let effects = self.life.handle(input, self.now, wall_at(self.now));
        if trace {
            eprintln!(
                "  effects {effects:?}\n  files {} up {} forging {}",
                self.files, self.node_up, self.node_forging
            );
        }
        for effect in effects {
            match effect {
                Effect::Run(run) => {
                    prop_assert!(self.running.is_none(), "two plans in flight");
                    self.check_run(&run)?;
                    self.running = Some(Running {
                        run,
                        next: 0,
                        status_written: Vec::new(),
                    });
                }
                Effect::Adopted { decision, .. } => self.wake = decision.next_wake,
                Effect::WakeAt(at) => self.retries.push(at),
                Effect::Exit { confirmed } => {
                    self.exits += 1;
                    self.exit_confirmed = Some(confirmed);
                    self.forging_at_exit = self.node_forging && self.node_up;
                }
                Effect::PollPeers => self.polls.push(self.now),
                Effect::Publish | Effect::Note(_) => {}
            }
        }
        self.check_state()
    }

    /// What must hold of a plan when it is emitted.
    fn check_run(&self, run: &Run) -> Result<(), TestCaseError> {
        let installs = run.commands.contains(&Command::Install);
        if installs && run.step != "boot_install" {
            let deadline = self.life.state().lease.deadline();
            prop_assert!(
                run.start_by.is_some() && run.start_by == deadline,
                "a forging install without the renew deadline: {run:?}"
            );
            prop_assert!(
                self.now < run.start_by.unwrap(),
                "a forging plan emitted past its deadline"
            );
        }
        if run.step == "boot_install" {
            prop_assert!(
                !self.life.current().forge,
                "boot credentials installed while forging"
            );
        }
        Ok(())
    }

    /// What must hold after every input.
    fn check_state(&self) -> Result<(), TestCaseError> {
        let idle = self.running.is_none() && self.life.in_flight().is_none();
        let waiting_retry = self.retries.iter().any(|t| *t > self.now);
        let lease_current = self.life.state().lease.is_current(self.now);
        if idle
            && !waiting_retry
            && self.node_forging
            && self.life.phase() == Phase::Running
            && !lease_current
        {
            return Err(TestCaseError::fail(format!(
                "idle with the node forging past the renew deadline at {:?}",
                self.now
            )));
        }
        Ok(())
    }

    /// Carries out the next command of the plan in flight, as the actor's executor does.
    fn progress(&mut self) -> Result<(), TestCaseError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        let Some(cmd) = running.run.commands.get(running.next).cloned() else {
            let finished = Finished {
                failed: None,
                status_written: running.status_written,
            };
            return self.input(Input::Finished(finished));
        };
        // The hand-over gate, as the actor's executor has it: nothing is given up once a new node
        // process came up during the plan.
        if let Some(gate) = running.run.hand_over
            && !gate.allows(running.next, self.life.node_process())
        {
            self.gated += 1;
            let finished = Finished {
                failed: Some(cmd),
                status_written: running.status_written,
            };
            return self.input(Input::Finished(finished));
        }
        running.next += 1;
        if std::env::var_os("LIFECYCLE_TRACE").is_some() {
            eprintln!("{:?} execute {cmd:?}", self.now);
        }
        let starts = match &cmd {
            Command::Install => true,
            Command::Reload { reason } => reason.turns_forging_on(),
            _ => false,
        };
        // The actor's executor sends nothing of a forging plan past its deadline.
        let past_deadline = running.run.start_by.is_some_and(|d| self.now >= d);
        let _ = starts;
        let fails = past_deadline || self.chance(self.fail_percent);
        let node_absent = matches!(cmd, Command::Reload { .. }) && !self.node_up;
        if !fails && !node_absent {
            self.apply(&cmd)?;
        }
        let failed = fails || node_absent;
        if node_absent
            && cmd
                == (Command::Reload {
                    reason: ReloadReason::Startup,
                })
            && !self.boot_credentials
        {
            self.startup_pending = true;
        }
        if failed && (past_deadline || aborts(&cmd, node_absent, running.run.status_write_required)) {
            let finished = Finished {
                failed: Some(cmd),
                status_written: running.status_written,
            };
            return self.input(Input::Finished(finished));
        }
        if let Command::WriteStatus(report) = &cmd
            && !failed
        {
            running.status_written.push((report.forging_enabled, self.now));
        }
        self.running = Some(running);
        Ok(())
    }

    /// A command's effect on the world.
    fn apply(&mut self, cmd: &Command) -> Result<(), TestCaseError> {
        match cmd {
            Command::Install => self.files = true,
            Command::Remove => self.files = false,
            Command::Reload { reason } => {
                if self.files {
                    let step = self.life.in_flight();
                    let means_to_forge = step.is_some_and(Step::forges);
                    prop_assert!(
                        means_to_forge,
                        "a {reason:?} reload with credentials installed by a plan that does not forge ({step:?})"
                    );
                }
                self.node_forging = self.files;
                self.ever_forged |= self.node_forging;
            }
            Command::Release => {
                prop_assert!(
                    !self.node_forging,
                    "the lease was released while the node may forge (S2)"
                );
            }
            Command::Contend(_) | Command::WriteStatus(_) => {}
        }
        Ok(())
    }

    /// Moves time forward by `ms`, firing due timers on the way.
    fn advance(&mut self, ms: u64) -> Result<(), TestCaseError> {
        let until = self.now + Duration::from_millis(ms);
        loop {
            let due = self
                .retries
                .iter()
                .copied()
                .chain(self.wake)
                .filter(|t| *t <= until)
                .min();
            let Some(at) = due else { break };
            self.now = self.now.max(at);
            self.retries.retain(|t| *t > at);
            if self.wake.is_some_and(|w| w <= at) {
                self.wake = None;
            }
            self.input(Input::Timer)?;
        }
        self.now = until;
        Ok(())
    }

    /// A new node process appeared: the NodeSignaller sends it a start-up reload that found no
    /// node earlier (F7).
    fn node_appeared(&mut self) {
        if std::mem::take(&mut self.startup_pending) {
            self.node_forging = self.files;
            self.ever_forged |= self.node_forging;
        }
    }

    fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
        let deadline = self.now + RENEW_DEADLINE;
        match action {
            Action::Progress => self.progress(),
            Action::Advance(ms) => self.advance(*ms),
            Action::NodeUp => {
                if !self.node_up {
                    self.node_up = true;
                    // A node that starts non-producing does not forge whatever files it finds.
                    self.node_forging = self.files && !self.boot_credentials;
                    self.ever_forged |= self.node_forging;
                    self.node_appeared();
                }
                self.input(Input::Fact(Event::NodeUp))
            }
            Action::NodeUpForging => {
                if !self.node_up {
                    self.node_up = true;
                    self.node_forging = !self.boot_credentials || self.files;
                    self.ever_forged |= self.node_forging;
                    self.node_appeared();
                }
                self.input(Input::Fact(Event::NodeUp))
            }
            Action::NodeDown => {
                self.node_up = false;
                self.node_forging = false;
                self.input(Input::Fact(Event::NodeDown))
            }
            Action::CredentialsValid => self.input(Input::Fact(Event::CredentialsValid)),
            Action::CredentialsInvalid => {
                self.input(Input::Fact(Event::CredentialsInvalid { why: "model".into() }))
            }
            Action::LeaseAcquired => self.input(Input::Fact(Event::LeaseAcquired { deadline })),
            Action::LeaseRenewed => self.input(Input::Fact(Event::LeaseRenewed { deadline })),
            Action::LeaseLost => self.input(Input::Fact(Event::LeaseLost { holder: None })),
            Action::Fenced => {
                self.node_forging = false;
                self.input(Input::Fact(Event::NodeFenced))
            }
            Action::Heartbeat => self.input(Input::Heartbeat),
            Action::Rotated => self.input(Input::Rotated),
            Action::Shutdown => self.input(Input::ShutdownRequested),
            Action::Schedule(ms) => {
                let slot = wall_at(self.now) + SignedDuration::from_millis(*ms as i64);
                self.input(Input::Fact(Event::LeaderScheduleChanged { slots: vec![slot] }))
            }
        }
    }

    /// Start-up done, node up, credentials valid, the lease acquired: the starting plan is
    /// emitted (not yet carried out).
    fn elect(&mut self) -> Result<(), TestCaseError> {
        use Action::*;
        for a in [
            Progress,
            Progress,
            Progress,
            NodeUp,
            CredentialsValid,
            Progress,
            Progress,
            LeaseAcquired,
        ] {
            self.act(&a)?;
        }
        Ok(())
    }

    /// No more failures: carry out every plan and fire every timer until nothing is left.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        self.fail_percent = 0;
        for _ in 0..200 {
            if self.running.is_some() {
                self.progress()?;
                continue;
            }
            if let Some(at) = self.retries.iter().copied().min() {
                let ms = at.saturating_since(self.now).as_millis() as u64;
                self.advance(ms)?;
                continue;
            }
            self.input(Input::Heartbeat)?;
            if self.running.is_none() {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("the lifecycle never settled"))
    }
}

/// What must hold once a history settled (no failures left, every plan carried out).
fn check_settled(w: &World) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        w.node_forging,
        w.life.current().forge && w.node_up,
        "settled, the node forges exactly as decided"
    );
    let should = w.life.next_decision(w.now, wall_at(w.now)).forge;
    prop_assert_eq!(
        w.life.current().forge,
        should,
        "settled, the decision in force is the current one"
    );
    if w.boot_credentials && !w.life.current().forge {
        prop_assert_eq!(
            w.files,
            !w.node_up,
            "boot credentials present exactly while the node is down"
        );
    }
    if !w.boot_credentials && !w.life.current().forge {
        prop_assert!(!w.files, "a standby keeps no credentials");
    }
    Ok(())
}

/// Every step of a generated history keeps the invariants (module docs); settled, the node
/// forges exactly as the decision in force says, and whenever it may. Counts the histories in
/// which the node forged and fails when too few did (a vacuous model).
#[test]
fn slow_failing_plans_never_let_a_standby_forge() {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(400))
    };
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let forged = std::cell::Cell::new(0u32);
    let with_failures = std::cell::Cell::new(0u32);
    let gated = std::cell::Cell::new(0u32);
    let strategy = (
        any::<bool>(),
        prop_oneof![Just(0u32), 1u32..30],
        any::<u64>(),
        prop::collection::vec(action_strategy(), 1..120),
    );
    let result = runner.run(&strategy, |(boot_credentials, fail_percent, seed, actions)| {
        let mut w = World::new(boot_credentials, fail_percent, seed);
        for a in &actions {
            w.act(a)?;
        }
        w.settle()?;
        if w.gated > 0 {
            gated.set(gated.get() + 1);
        }
        if w.ever_forged {
            forged.set(forged.get() + 1);
            if fail_percent > 0 {
                with_failures.set(with_failures.get() + 1);
            }
        }
        check_settled(&w)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (forged, with_failures, gated) = (forged.get(), with_failures.get(), gated.get());
    println!(
        "lifecycle model: {} cases (shrinking runs not counted), the node forged in {forged}, \
         {with_failures} of them with failing commands; in {gated} a node process came up during a \
         plan that was to give something up",
        config.cases
    );
    assert!(
        gated > 0,
        "no history had a node process come up before a hand-over (F12)"
    );
    assert!(
        forged * 5 >= config.cases,
        "only {forged} of {} histories ever forged: the model is too weak to test anything",
        config.cases
    );
    assert!(with_failures > 0, "no forging history had failing commands");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(400)))]

    /// SIGTERM at any point: exactly one `Exit`; a confirmed shutdown leaves nothing forging and
    /// released the lease only after the node stopped (checked by the world at the release).
    #[test]
    fn shutdown_at_any_point_ends_once_and_confirmed_means_stopped(
        boot_credentials in any::<bool>(),
        fail_percent in prop_oneof![Just(0u32), 1u32..30],
        seed in any::<u64>(),
        before in prop::collection::vec(action_strategy(), 0..80),
        after in prop::collection::vec(action_strategy(), 0..20),
    ) {
        // SIGTERM may be held for a leader slot (up to 20 s) here.
        let mut w = World::with_hold(boot_credentials, fail_percent, seed, Duration::from_secs(20));
        for a in &before {
            w.act(a)?;
        }
        w.act(&Action::Shutdown)?;
        for a in &after {
            w.act(a)?;
        }
        w.settle()?;
        prop_assert_eq!(w.exits, 1, "one exit");
        prop_assert_eq!(w.life.phase(), Phase::Stopped);
        if w.exit_confirmed == Some(true) {
            prop_assert!(!w.files, "a confirmed shutdown removed the credentials");
            prop_assert!(!w.forging_at_exit, "a confirmed shutdown left the node forging");
        }
    }
}

/// Histories the properties found against the first version of the lifecycle (each failed
/// there): the world's checks and the settled checks must hold for every one.
#[test]
fn histories_found_by_the_properties_stay_fixed() {
    use Action::*;
    let cases: Vec<(&str, bool, u32, u64, Vec<Action>)> = vec![
        (
            // A re-assert in flight when the guard fences, then the credentials turn invalid:
            // the stop plan must remove and reload before releasing (it planned from a
            // "not forging" decision and released the lease with the node forging).
            "fence during a re-assert, then stop",
            false,
            0,
            0,
            vec![
                NodeUp,
                LeaseAcquired,
                CredentialsValid,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Heartbeat,
                Fenced,
                CredentialsInvalid,
                Progress,
                Progress,
                Progress,
                Shutdown,
            ],
        ),
        (
            // A start fails, then its undo fails: the credentials stayed on a standby for good.
            "failed undo of a failed start",
            false,
            14,
            2074193637290618164,
            vec![
                Progress,
                Progress,
                NodeUp,
                LeaseAcquired,
                Progress,
                NodeDown,
                Progress,
                Progress,
                Advance(1),
                NodeUp,
                Progress,
                CredentialsValid,
                Progress,
                Progress,
                Progress,
                Progress,
                NodeDown,
                Progress,
                Progress,
                Progress,
                NodeDown,
                Progress,
            ],
        ),
        (
            // Removing the boot credentials of a node that came up fails: never retried.
            "failed boot-credential removal",
            true,
            10,
            2717986474858277054,
            vec![
                LeaseAcquired,
                NodeUp,
                Progress,
                Progress,
                Progress,
                LeaseLost,
                CredentialsValid,
                Progress,
                Progress,
                NodeDown,
                LeaseAcquired,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                NodeUp,
                Progress,
                Progress,
                Progress,
                CredentialsInvalid,
            ],
        ),
        (
            // A stop fails after removing the credentials; the lease comes back: the decision in
            // force said "forging" with nothing installed (L1).
            "half-failed stop, then leader again",
            true,
            23,
            16685361556088724732,
            vec![
                Progress,
                Progress,
                LeaseAcquired,
                Progress,
                Progress,
                Progress,
                CredentialsValid,
                Progress,
                NodeUp,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Progress,
                Fenced,
                Rotated,
                Progress,
                Progress,
                Progress,
                Progress,
                Advance(470),
                Advance(530),
                LeaseLost,
                Progress,
                Progress,
                Progress,
                LeaseAcquired,
                Progress,
                Progress,
            ],
        ),
        (
            // The guard fences the node while the starting plan is still in flight: the fence
            // was ignored and the plan adopted "forging" (L1).
            "fence while a start is in flight",
            false,
            0,
            0,
            vec![
                NodeUp,
                Progress,
                Progress,
                Progress,
                Advance(1206),
                CredentialsValid,
                Advance(3991),
                Advance(3263),
                Advance(3000),
                CredentialsValid,
                Progress,
                Progress,
                LeaseAcquired,
                Advance(2613),
                Progress,
                Progress,
                Progress,
                Advance(3210),
                Advance(1223),
                Fenced,
                Advance(1495),
            ],
        ),
    ];
    let mut failed = Vec::new();
    for (name, boot, fail_percent, seed, actions) in cases {
        let mut w = World::new(boot, fail_percent, seed);
        let run = (|| {
            for a in &actions {
                w.act(a)?;
            }
            w.settle()?;
            check_settled(&w)
        })();
        if let Err(e) = run {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A status write sent in one lease tenure confirms no claim in the next: the plan that carried
/// it spanned a loss and a new acquisition.
#[test]
fn a_status_write_from_an_earlier_tenure_confirms_no_claim() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    let plan = w
        .running
        .as_ref()
        .expect("the starting plan runs")
        .run
        .commands
        .clone();
    assert!(
        matches!(plan.first(), Some(Command::WriteStatus(r)) if r.forging_enabled),
        "the claim comes first: {plan:?}"
    );
    w.act(&Progress).expect("the claim is written in this tenure");
    w.act(&LeaseLost).expect("lost");
    w.act(&LeaseAcquired).expect("a new tenure");
    while w.running.as_ref().is_some_and(|r| r.run.commands == plan) {
        w.act(&Progress).expect("the rest of the plan");
    }
    assert_eq!(
        w.life.state().own.claim_at,
        None,
        "the old tenure's write confirmed the new tenure's claim"
    );
}

/// F12: a node process that comes up forging while we are a standby (started producing with
/// files present then) is reloaded once up, with the credential targets absent, and stops; a
/// reload that fails is retried after the hold.
#[test]
fn a_new_node_process_that_forges_while_we_are_a_standby_is_reloaded() {
    use Action::*;
    for fail_first in [false, true] {
        let mut w = World::new(false, 0, 1);
        for a in [Progress, Progress, Progress, NodeUp, NodeDown] {
            w.act(&a).expect("valid steps");
        }
        assert!(w.running.is_none() && !w.life.current().forge, "an idle standby");
        w.act(&NodeUpForging).expect("a producing node restarts");
        assert!(w.node_forging, "the model's node forges from its start");
        let run = w.running.as_ref().expect("a plan for the new node").run.clone();
        assert_eq!(run.step, "standby_reload");
        assert_eq!(
            run.commands,
            vec![Command::Reload {
                reason: ReloadReason::Startup
            }]
        );
        if fail_first {
            w.fail_percent = 100;
            w.act(&Progress).expect("the reload fails");
            w.fail_percent = 0;
            assert!(w.node_forging && w.running.is_none(), "held after the failure");
            w.act(&Advance(2_000)).expect("the hold ends");
            assert_eq!(
                w.running.as_ref().map(|r| r.run.step),
                Some("standby_reload"),
                "retried after the hold"
            );
        }
        w.settle().expect("settles");
        assert!(!w.node_forging, "the new node was told there are no credentials");
        check_settled(&w).expect("settled");
    }
}

/// L1-c: evidence about a peer counts only when read after our claim was confirmed; the
/// confirmation itself asks every PeerWatcher to read at once, instead of leaving the start to
/// wait up to a poll period.
#[test]
fn a_confirmed_claim_asks_the_peers_to_be_read_at_once() {
    use Action::*;
    let mut w = World::new(false, 0, 1);
    w.elect().expect("valid steps");
    assert!(w.polls.is_empty(), "no claim confirmed yet: {:?}", w.polls);
    while w.running.is_some() {
        w.act(&Progress).expect("the starting plan");
    }
    assert!(w.life.state().own.claim_at.is_some(), "the claim is confirmed");
    assert_eq!(w.polls, vec![w.now], "peers read at the confirmation");
}

/// SIGTERM a few seconds before one of our leader slots: the shutdown plan waits until the slot
/// has ended, unless the hold is longer than allowed, and never past a stop the decision itself
/// calls for (here: the lease lost).
#[test]
fn a_sigterm_just_before_our_leader_slot_waits_for_the_slot_unless_a_stop_is_due() {
    use Action::*;
    let forging_world = |hold_max_s: u64| {
        let mut w = World::with_hold(false, 0, 3, Duration::from_secs(hold_max_s));
        w.elect().expect("valid steps");
        w.settle().expect("settles");
        assert!(w.node_forging, "the leader forges");
        // One of our slots starts in 5 s (slots last 1 s).
        let slot = wall_at(w.now) + SignedDuration::from_secs(5);
        w.input(Input::Fact(Event::LeaderScheduleChanged { slots: vec![slot] }))
            .expect("schedule");
        w
    };
    let shutdown_plan_started = |w: &World| w.running.as_ref().is_some_and(|r| r.run.step == "shutdown");

    // Held: nothing is sent until the slot has ended (6 s), then the shutdown plan runs.
    let mut w = forging_world(20);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(!shutdown_plan_started(&w), "held for the slot");
    w.act(&LeaseRenewed).expect("renewed");
    w.act(&Advance(5_500)).expect("in the slot");
    assert!(
        !shutdown_plan_started(&w) && w.node_forging,
        "still forging through the slot"
    );
    w.act(&LeaseRenewed).expect("renewed");
    w.act(&Advance(600)).expect("the slot has ended");
    assert!(
        shutdown_plan_started(&w),
        "the shutdown runs once the slot has passed"
    );
    w.settle().expect("settles");
    assert_eq!((w.exits, w.node_forging), (1, false));

    // A hold longer than allowed: no hold.
    let mut w = forging_world(3);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(shutdown_plan_started(&w), "not held past the allowed wait");

    // The lease is lost during the hold: the stop is not held.
    let mut w = forging_world(20);
    w.act(&Shutdown).expect("SIGTERM");
    assert!(!shutdown_plan_started(&w));
    w.act(&LeaseLost).expect("lost");
    assert!(shutdown_plan_started(&w), "a lost lease ends the hold at once");
}

/// The generated histories are not vacuous: a fair share of them made the node forge.
#[test]
fn the_models_reach_forging() {
    // Runs after (or alongside) the property above in the same binary; run it on its own to be
    // sure of the order: the counts are printed either way.
    let mut w = World::new(false, 0, 7);
    for a in [
        Action::NodeUp,
        Action::CredentialsValid,
        Action::LeaseAcquired,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
        Action::Progress,
    ] {
        w.act(&a).expect("valid step");
    }
    w.settle().expect("settles");
    assert!(
        w.node_forging,
        "node up, credentials valid, lease held: the node forges"
    );
    // Past the renew deadline with no renewal the stop plan runs at the timer.
    w.advance(RENEW_DEADLINE.as_millis() as u64 + 1).expect("timer");
    w.settle().expect("settles");
    assert!(!w.node_forging, "past the renew deadline the node stopped");
}

/// F12 during a stop: the leader's stop plan has removed the credentials and sent its reload to
/// the old process, which is gone; a new node process comes up forging with the keys it read at
/// its start. Nothing is given up (claim, contention, lease) until that process has been
/// reloaded too; the world checks at the release that the node does not forge. The same for the
/// shutdown plan, and for a new process seen only after the shutdown's release (it is told
/// before the process exits).
#[test]
fn a_node_process_that_comes_up_forging_during_a_stop_is_stopped_before_the_hand_over() {
    use Action::*;
    let forging = || {
        let mut w = World::new(false, 0, 5);
        w.elect().expect("valid steps");
        w.settle().expect("settles");
        assert!(w.node_forging, "the leader forges");
        w
    };
    let step = |w: &World| w.running.as_ref().map(|r| r.run.step);
    let reloads = |w: &World| {
        w.running.as_ref().map_or(0, |r| {
            r.run
                .commands
                .iter()
                .filter(|c| matches!(c, Command::Reload { .. }))
                .count()
        })
    };

    for stop in [CredentialsInvalid, Shutdown] {
        let mut w = forging();
        w.act(&stop).expect("the stop starts");
        let plan = w.running.as_ref().expect("a stop plan").run.clone();
        assert!(plan.commands.contains(&Command::Release), "{plan:?}");
        w.act(&Progress).expect("Remove");
        w.act(&NodeDown).expect("the old process is gone");
        w.act(&Progress).expect("its reload finds no node");
        w.act(&NodeUpForging)
            .expect("a new process forges from its start");
        assert!(w.node_forging);
        // The gate: the next command would give something up; the plan stops and the stop is
        // planned again for the new process (every command checked by the world).
        while w.running.as_ref().is_some_and(|r| r.run == plan) {
            w.act(&Progress).expect("nothing given up");
        }
        assert_eq!(w.gated, 1, "{stop:?}: the hand-over gate stopped the plan");
        assert_eq!(step(&w), Some(plan.step), "{stop:?}: the stop again");
        assert_eq!(reloads(&w), 1, "{stop:?}: it reloads the new process");
        w.settle().expect("no release while the new process forges");
        assert!(!w.node_forging, "{stop:?}: the new process was told");
        if matches!(stop, Shutdown) {
            assert_eq!((w.exits, w.exit_confirmed), (1, Some(true)));
        }
    }

    // After the shutdown's release, before it exits: the new process is reloaded first.
    let mut w = forging();
    w.act(&Shutdown).expect("SIGTERM");
    let plan = w.running.as_ref().expect("the shutdown plan").run.clone();
    for _ in &plan.commands {
        w.act(&Progress).expect("every command sent");
    }
    w.act(&NodeDown).expect("gone");
    w.act(&NodeUpForging).expect("a new process after the release");
    w.act(&Progress).expect("the plan's end reported");
    assert_eq!(w.exits, 0, "not exited with a forging node seen");
    assert_eq!(
        w.running.as_ref().map(|r| r.run.commands.clone()),
        Some(vec![
            Command::Remove,
            Command::Reload {
                reason: ReloadReason::Shutdown
            }
        ])
    );
    w.settle().expect("settles");
    assert_eq!((w.exits, w.node_forging), (1, false));
}

/// Quorum mode releases the forge tickets once the lifecycle counts the node as stopped
/// (`ticket_intent().stopped`, after the stop is adopted). A node process that comes up forging
/// after the stop plan's last command went out, before its end is reported, has had no reload
/// of it: the stop runs again for that process, and until it is done the node does not count
/// as stopped (the tickets stay held).
#[test]
fn a_node_process_that_comes_up_forging_as_a_stop_ends_keeps_the_node_from_counting_as_stopped() {
    use Action::*;
    let mut w = World::new(false, 0, 5);
    w.elect().expect("valid steps");
    w.settle().expect("settles");
    assert!(w.node_forging, "the leader forges");
    let stopped = |w: &World| w.life.ticket_intent(w.now, wall_at(w.now)).stopped;
    assert!(!stopped(&w));
    w.act(&CredentialsInvalid).expect("the stop starts");
    let plan = w.running.as_ref().expect("a stop plan").run.clone();
    for _ in 0..plan.commands.len() {
        w.act(&Progress).expect("every command of the stop");
    }
    assert!(!w.node_forging, "the old process was told");
    w.act(&NodeDown).expect("the old process is gone");
    w.act(&NodeUpForging)
        .expect("a new process forges from its start");
    w.act(&Progress).expect("the stop plan's end is reported");
    assert!(w.node_forging);
    assert!(
        !stopped(&w),
        "the node counts as stopped (quorum mode would release the tickets) while a process that came up during the stop forges"
    );
    let again = w.running.as_ref().expect("the stop again").run.clone();
    assert!(
        again.commands.iter().any(|c| matches!(c, Command::Reload { .. })),
        "{again:?}"
    );
    w.settle().expect("settles");
    assert!(!w.node_forging, "the new process was told");
    assert!(stopped(&w), "stopped once the new process was told");
}
