//! The model world's steps: inputs to the lifecycle, the commands it carries out (failing at random),
//! time, node restarts and the checks after every step.

use std::time::Duration;

use forge_core::decision::{
    Command, DeciderConfig, Effect, Event, Input, Lifecycle, LifecycleConfig, Mono, Note, Phase,
    ReloadReason, Run, State, Step, aborts,
};
use jiff::SignedDuration;
use proptest::prelude::*;

use super::model_world::{self, Timers};
use super::{Action, RENEW_DEADLINE, Running, STOP_GRACE, World, wall_at};

impl World {
    pub(super) fn new(boot_credentials: bool, fail_percent: u32, seed: u64) -> World {
        World::with_hold(boot_credentials, fail_percent, seed, Duration::ZERO)
    }

    pub(super) fn with_hold(
        boot_credentials: bool,
        fail_percent: u32,
        seed: u64,
        shutdown_hold_max: Duration,
    ) -> World {
        let config = LifecycleConfig {
            boot_credentials,
            shutdown_hold_max,
            ..model_world::lifecycle_config(STOP_GRACE)
        };
        let mut decider = DeciderConfig::single_cluster("c0");
        decider.lease = model_world::lease_timing();
        let mut w = World {
            life: Lifecycle::new(config, State::new(decider)),
            boot_credentials,
            now: Mono::from_millis(1_000),
            fail_percent,
            rng: seed | 1,
            running: None,
            timers: Timers::default(),
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
            deferred: 0,
        };
        w.input(Input::Started).expect("start-up is valid");
        w
    }

    pub(super) fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
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
                    self.running = Some(Running::new(run));
                }
                Effect::Adopted { decision, .. } => self.timers.set_wake(decision.next_wake),
                Effect::WakeAt(at) => self.timers.retry_at(at),
                Effect::Exit { confirmed } => {
                    self.exits += 1;
                    self.exit_confirmed = Some(confirmed);
                    self.forging_at_exit = self.node_forging && self.node_up;
                }
                Effect::PollPeers => self.polls.push(self.now),
                Effect::Note(Note::ReloadDeferred { .. }) => self.deferred += 1,
                Effect::Publish | Effect::Note(_) => {}
            }
        }
        self.check_state()
    }

    /// What must hold of a plan when it is emitted.
    pub(super) fn check_run(&self, run: &Run) -> Result<(), TestCaseError> {
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
        // F21: a reload that does not stop forging leaves the stop at the deadline room to wait
        // for it (the NodeSignaller sends a stop only once every earlier reload has had its
        // STOP_GRACE).
        let reloads_on = run
            .commands
            .iter()
            .any(|c| matches!(c, Command::Reload { reason } if reason.turns_forging_on()));
        if reloads_on {
            let deadline = self.life.state().lease.deadline();
            prop_assert!(
                deadline.is_some_and(|d| d.saturating_since(self.now) >= STOP_GRACE),
                "a {} plan with a reload that does not stop forging, planned at {:?} with the renew \
                 deadline at {deadline:?} (less than STOP_GRACE {STOP_GRACE:?} left): {run:?}",
                run.step,
                self.now
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
    pub(super) fn check_state(&self) -> Result<(), TestCaseError> {
        let idle = self.running.is_none() && self.life.in_flight().is_none();
        let waiting_retry = self.timers.retry_pending(self.now);
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
    pub(super) fn progress(&mut self) -> Result<(), TestCaseError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        let Some(cmd) = running.run.commands.get(running.next).cloned() else {
            return self.input(running.finished(None));
        };
        // The hand-over gate, as the actor's executor has it: nothing is given up once a new node
        // process came up during the plan.
        if let Some(gate) = running.run.hand_over
            && !gate.allows(running.next, self.life.node_process())
        {
            self.gated += 1;
            return self.input(running.finished(Some(cmd)));
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
        let fails = past_deadline || model_world::chance(&mut self.rng, self.fail_percent);
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
        let ends = past_deadline || aborts(&cmd, node_absent, running.run.status_write_required);
        match running.went_on(cmd, failed, ends, self.now) {
            Ok(running) => self.running = Some(running),
            Err(end) => return self.input(*end),
        }
        Ok(())
    }

    /// A command's effect on the world.
    pub(super) fn apply(&mut self, cmd: &Command) -> Result<(), TestCaseError> {
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
    pub(super) fn advance(&mut self, ms: u64) -> Result<(), TestCaseError> {
        model_world::advance(self, ms)
    }

    /// A new node process appeared: the NodeSignaller sends it a start-up reload that found no
    /// node earlier (F7).
    pub(super) fn node_appeared(&mut self) {
        if std::mem::take(&mut self.startup_pending) {
            self.node_forging = self.files;
            self.ever_forged |= self.node_forging;
        }
    }

    pub(super) fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
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
    pub(super) fn elect(&mut self) -> Result<(), TestCaseError> {
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
    pub(super) fn settle(&mut self) -> Result<(), TestCaseError> {
        model_world::settle(self)
    }
}

model_world::model_world!(World);
