//! F24's follow-up reload, planned by the lifecycle: cardano-node handles every SIGHUP in a
//! thread of its own, so a stopping reload still under way when a start's SIGHUP arrives can
//! take effect after it and leave the node not forging. The NodeSignaller answers such a start
//! with the instant by which every earlier stopping reload has had its `STOP_GRACE`
//! (`Finished::undoable_until`); the lifecycle then plans one more reload.
//!
//! A small world of its own: plans are carried out whole in one step (each command fails at
//! random), the model NodeSignaller keeps when its stopping reloads (and the guard's fences) are
//! done and reports that instant for every reload that turns forging on. Checked after every
//! step:
//!
//! - a follow-up reload is planned only for a start reported undoable, never before the
//!   instant reported, never after a stop was planned since (nor a node restart), and only while
//!   the decision in force forges;
//! - every follow-up reload leaves at least the reload room before the renew deadline (F21);
//! - settled with the lease renewed, a follow-up owed is planned (L1: nothing else reloads the
//!   node).

use std::time::Duration;

use forge_core::decision::{
    Command, DeciderConfig, Effect, Event, Finished, Input, Lifecycle, Mono, Note, ReloadReason, Run, State,
};
use proptest::{prelude::*, strategy::ValueTree};

use super::model_world::{self, cases, wall_at};
use super::{RENEW_DEADLINE, STOP_GRACE};

/// One step of the world.
#[derive(Debug, Clone)]
enum Step {
    /// The plan in flight is carried out (its commands fail at random).
    Progress,
    /// Time passes (timers due in between fire first).
    Advance(u64),
    /// The lease is renewed (acquired when not held).
    Renew,
    LeaseLost,
    /// The node guard fenced the node: a stopping reload of its own.
    Fenced,
    /// The node process ends and another comes up.
    NodeRestart,
    Heartbeat,
    Rotated,
    CredentialsInvalid,
    CredentialsValid,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => Just(Step::Progress),
        5 => (1u64..3_000).prop_map(Step::Advance),
        4 => Just(Step::Renew),
        1 => Just(Step::LeaseLost),
        2 => Just(Step::Fenced),
        1 => Just(Step::NodeRestart),
        2 => Just(Step::Heartbeat),
        1 => Just(Step::Rotated),
        1 => Just(Step::CredentialsInvalid),
        2 => Just(Step::CredentialsValid),
    ]
}

struct Follow {
    life: Lifecycle,
    now: Mono,
    running: Option<Run>,
    /// Retries asked for (`Effect::WakeAt`) and the decision timer (`next_wake`).
    wakes: Vec<Mono>,
    wake: Option<Mono>,
    rng: u64,
    fail_percent: u32,
    /// The model NodeSignaller: when every stopping reload sent to the node process so far has
    /// had its `STOP_GRACE`.
    stops_done_by: Option<Mono>,
    /// The latest instant reported for a start, owed a follow-up: cleared by a stop planned, a
    /// new node process, or the follow-up planned.
    owed: Option<Mono>,
    /// Follow-up reloads planned.
    follow_ups: u32,
    /// Starts reported undoable.
    reported: u32,
    /// Follow-ups reported as deferred for lack of room (F21).
    deferred: u32,
}

fn stops(reason: ReloadReason) -> bool {
    !reason.turns_forging_on()
}

impl Follow {
    /// A leader forging: start-up done, node up, credentials valid, the lease acquired, the start
    /// carried out.
    fn leader(seed: u64, fail_percent: u32) -> Result<Follow, TestCaseError> {
        let config = model_world::lifecycle_config(STOP_GRACE);
        let mut decider = DeciderConfig::single_cluster("c0");
        decider.lease = model_world::lease_timing();
        let mut w = Follow {
            life: Lifecycle::new(config, State::new(decider)),
            now: Mono::from_millis(1_000),
            running: None,
            wakes: Vec::new(),
            wake: None,
            rng: seed | 1,
            fail_percent: 0,
            stops_done_by: None,
            owed: None,
            follow_ups: 0,
            reported: 0,
            deferred: 0,
        };
        w.input(Input::Started)?;
        w.progress()?;
        w.input(Input::Fact(Event::NodeUp))?;
        w.input(Input::Fact(Event::CredentialsValid))?;
        w.progress()?;
        w.renew()?;
        w.progress()?;
        prop_assert!(w.life.current().forge, "the leader forges");
        // The start-up reload may still have been under way: its follow-up first.
        w.advance(STOP_GRACE.as_millis() as u64 + 100)?;
        w.progress()?;
        prop_assert_eq!(w.owed, None);
        w.renew()?;
        (w.follow_ups, w.reported) = (0, 0);
        w.fail_percent = fail_percent;
        Ok(w)
    }

    fn chance(&mut self, percent: u32) -> bool {
        model_world::chance(&mut self.rng, percent)
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let trace = std::env::var_os("LIFECYCLE_TRACE").is_some();
        if trace {
            eprintln!("{:?} input {input:?}", self.now);
        }
        let effects = self.life.handle(input, self.now, wall_at(self.now));
        if trace {
            eprintln!("  effects {effects:?}");
        }
        for effect in effects {
            match effect {
                Effect::Run(run) => {
                    prop_assert!(self.running.is_none(), "two plans in flight");
                    self.check_run(&run)?;
                    self.running = Some(run);
                }
                Effect::Adopted { decision, .. } => self.wake = decision.next_wake,
                Effect::WakeAt(at) => self.wakes.push(at),
                Effect::Note(Note::ReloadDeferred {
                    step: "follow_up", ..
                }) => self.deferred += 1,
                Effect::Note(_) | Effect::Publish | Effect::PollPeers | Effect::Exit { .. } => {}
            }
        }
        Ok(())
    }

    /// What must hold of a plan when it is emitted.
    fn check_run(&mut self, run: &Run) -> Result<(), TestCaseError> {
        let reasons: Vec<ReloadReason> = run
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Reload { reason } => Some(*reason),
                _ => None,
            })
            .collect();
        if reasons.contains(&ReloadReason::FollowUp) {
            self.follow_ups += 1;
            let owed = self.owed.take();
            prop_assert!(
                owed.is_some(),
                "a follow-up reload at {:?} without a start reported undoable since the last stop",
                self.now
            );
            prop_assert!(
                owed.is_some_and(|t| self.now >= t),
                "a follow-up reload at {:?} before the instant reported ({owed:?})",
                self.now
            );
            prop_assert!(self.life.current().forge, "a follow-up reload while not forging");
            let left = self
                .life
                .state()
                .lease
                .deadline()
                .map_or(Duration::ZERO, |d| d.saturating_since(self.now));
            prop_assert!(
                left >= STOP_GRACE,
                "a follow-up reload with {left:?} left before the renew deadline (room {STOP_GRACE:?})"
            );
        }
        if reasons.iter().any(|r| stops(*r)) {
            // A stop: whatever a follow-up would have restored it ends.
            self.owed = None;
        }
        Ok(())
    }

    /// Carries out the plan in flight, each command failing at random; a reload that turns
    /// forging on is answered with the model signaller's instant, a stopping one sets it.
    fn progress(&mut self) -> Result<(), TestCaseError> {
        let Some(run) = self.running.take() else {
            return Ok(());
        };
        let mut failed = None;
        let mut undoable_until = None;
        for cmd in run.commands {
            if self.chance(self.fail_percent) {
                failed = Some(cmd);
                break;
            }
            if let Command::Reload { reason } = cmd {
                if stops(reason) {
                    let done = self.now + STOP_GRACE;
                    self.stops_done_by = Some(self.stops_done_by.map_or(done, |t| t.max(done)));
                } else if let Some(at) = self.stops_done_by.filter(|t| *t > self.now) {
                    undoable_until = Some(at);
                }
            }
        }
        if let Some(at) = undoable_until {
            self.reported += 1;
            self.owed = Some(self.owed.map_or(at, |t| t.max(at)));
        }
        self.input(Input::Finished(Finished {
            failed,
            status_written: Vec::new(),
            undoable_until,
        }))
    }

    fn renew(&mut self) -> Result<(), TestCaseError> {
        let deadline = self.now + RENEW_DEADLINE;
        let event = if self.life.state().lease.deadline().is_some() {
            Event::LeaseRenewed { deadline }
        } else {
            Event::LeaseAcquired { deadline }
        };
        self.input(Input::Fact(event))
    }

    /// Moves time forward by `ms`, firing due timers on the way.
    fn advance(&mut self, ms: u64) -> Result<(), TestCaseError> {
        let until = self.now + Duration::from_millis(ms);
        while let Some(at) = self
            .wakes
            .iter()
            .copied()
            .chain(self.wake)
            .filter(|t| *t <= until)
            .min()
        {
            self.wakes.retain(|t| *t > at);
            if self.wake.is_some_and(|w| w <= at) {
                self.wake = None;
            }
            self.now = self.now.max(at);
            self.input(Input::Timer)?;
        }
        self.now = until;
        Ok(())
    }

    fn act(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Progress => self.progress(),
            Step::Advance(ms) => self.advance(*ms),
            Step::Renew => self.renew(),
            Step::LeaseLost => self.input(Input::Fact(Event::LeaseLost { holder: None })),
            Step::Fenced => {
                let done = self.now + STOP_GRACE;
                self.stops_done_by = Some(self.stops_done_by.map_or(done, |t| t.max(done)));
                self.input(Input::Fact(Event::NodeFenced))
            }
            Step::NodeRestart => {
                // Nothing is queued in the new process; the old one's follow-up is owed no more.
                self.stops_done_by = None;
                self.owed = None;
                self.input(Input::Fact(Event::NodeDown))?;
                self.input(Input::Fact(Event::NodeUp))
            }
            Step::Heartbeat => self.input(Input::Heartbeat),
            Step::Rotated => self.input(Input::Rotated),
            Step::CredentialsInvalid => {
                self.input(Input::Fact(Event::CredentialsInvalid { why: "model".into() }))
            }
            Step::CredentialsValid => self.input(Input::Fact(Event::CredentialsValid)),
        }
    }

    /// No more failures, the lease renewed every second and the credentials valid, for 20 s: a
    /// follow-up still owed must have been planned by then.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        self.fail_percent = 0;
        self.input(Input::Fact(Event::CredentialsValid))?;
        for _ in 0..20 {
            self.progress()?;
            self.renew()?;
            self.progress()?;
            self.advance(1_000)?;
            self.input(Input::Heartbeat)?;
            self.progress()?;
        }
        prop_assert!(
            self.owed.is_none(),
            "settled, the follow-up owed since {:?} was never planned (now {:?}, forging {})",
            self.owed,
            self.now,
            self.life.current().forge
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Random histories: every follow-up reload is owed, due and leaves the room; settled,
    /// none owed is left unplanned.
    #[test]
    fn a_start_reported_undoable_is_reloaded_once_more_after_it_never_after_a_stop(
        seed in any::<u64>(),
        fail_percent in prop_oneof![Just(0u32), 1u32..25],
        steps in proptest::collection::vec(step_strategy(), 1..60),
    ) {
        let mut w = Follow::leader(seed, fail_percent)?;
        for step in &steps {
            w.act(step)?;
        }
        w.settle()?;
    }
}

/// The properties reach what they are about: over many histories, starts are reported
/// undoable and follow-ups are planned (the deferrals are the scenario's below).
#[test]
fn the_follow_up_histories_reach_reports_and_follow_ups() {
    let (mut reported, mut follow_ups, mut deferred) = (0, 0, 0);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (any::<u64>(), proptest::collection::vec(step_strategy(), 1..60));
    for _ in 0..300 {
        let (seed, steps) = strategy.new_tree(&mut runner).expect("a case").current();
        let mut w = Follow::leader(seed, 5).expect("a leader");
        for step in &steps {
            w.act(step).expect("valid");
        }
        w.settle().expect("settles");
        reported += w.reported;
        follow_ups += w.follow_ups;
        deferred += w.deferred;
    }
    assert!(
        reported > 20 && follow_ups > 20,
        "reported {reported}, follow-ups {follow_ups}, deferred {deferred}"
    );
}

/// A fence right before a start, the start answered undoable until the fence is done: the
/// follow-up is planned then (its timer), and not before.
#[test]
fn a_start_after_the_guards_fence_is_followed_by_a_reload_when_the_fence_is_done() {
    let mut w = Follow::leader(1, 0).expect("a leader");
    w.act(&Step::Fenced).expect("fenced");
    let restart = w.running.clone().expect("the fenced node is started again");
    assert!(restart.commands.contains(&Command::Reload {
        reason: ReloadReason::StartForging
    }));
    w.advance(100).expect("time passes");
    w.progress().expect("the start is carried out");
    let due = w.owed.expect("reported undoable until the fence is done");
    assert!(w.running.is_none(), "nothing before the fence is done");
    w.advance(due.saturating_since(w.now).as_millis() as u64 - 1)
        .expect("time passes");
    assert!(w.running.is_none(), "no follow-up before the instant reported");
    w.advance(2).expect("time passes");
    let follow_up = w
        .running
        .clone()
        .expect("the follow-up is planned at the instant");
    assert_eq!(
        follow_up.commands,
        [Command::Reload {
            reason: ReloadReason::FollowUp
        }]
    );
    assert_eq!(w.follow_ups, 1);
    w.progress().expect("sent");
    w.advance(5_000).expect("time passes");
    assert_eq!(w.follow_ups, 1, "once");
}

/// F21: due with less than the room left before the renew deadline, the follow-up waits for
/// the renewal; without one, the stop at the deadline drops it (the node stops anyway).
#[test]
fn a_follow_up_too_close_to_the_renew_deadline_waits_for_the_renewal_or_is_dropped_by_the_stop() {
    for renewal in [true, false] {
        let mut w = Follow::leader(1, 0).expect("a leader");
        let deadline = w.life.state().lease.deadline().expect("held");
        // The fence and the start 1 s before the room runs out: the follow-up falls due 1 s
        // inside it.
        let to = deadline.saturating_since(w.now) - STOP_GRACE - Duration::from_secs(1);
        w.advance(to.as_millis() as u64).expect("time passes");
        w.act(&Step::Fenced).expect("fenced");
        w.progress().expect("the start is carried out");
        assert!(w.owed.is_some(), "reported undoable");
        w.advance(STOP_GRACE.as_millis() as u64 + 100)
            .expect("time passes");
        assert!(
            w.running.is_none(),
            "no follow-up inside the room: {:?} at {:?}, deadline {deadline:?}",
            w.running,
            w.now
        );
        assert_eq!(w.deferred, 1, "the deferral is reported");
        w.input(Input::Heartbeat).expect("a heartbeat");
        assert_eq!(w.deferred, 1, "reported once");
        if renewal {
            w.renew().expect("renewed");
            // The renewal leaves room: the follow-up goes (after a re-assert the node's start-up
            // window deferred too, if any).
            for _ in 0..3 {
                if w.follow_ups == 1 {
                    break;
                }
                w.progress().expect("carried out");
            }
            assert_eq!(w.follow_ups, 1, "the renewal left room, and no follow-up went");
        } else {
            w.advance(deadline.saturating_since(w.now).as_millis() as u64 + 10)
                .expect("the deadline passes");
            let stop = w.running.clone().expect("the stop at the deadline");
            assert!(
                stop.commands.contains(&Command::Reload {
                    reason: ReloadReason::StopForging
                }),
                "{stop:?}"
            );
            assert_eq!(w.owed, None, "the stop ends the follow-up");
            w.progress().expect("stopped");
            w.advance(5_000).expect("time passes");
            assert_eq!(w.follow_ups, 0, "never after the stop");
        }
    }
}

/// A stop planned after a start reported undoable drops its follow-up, also when a new start
/// follows (that one is reported on its own).
#[test]
fn a_stop_drops_the_follow_up_of_the_start_before_it() {
    let mut w = Follow::leader(1, 0).expect("a leader");
    w.act(&Step::Fenced).expect("fenced");
    w.progress().expect("the start is carried out");
    assert!(w.owed.is_some());
    w.act(&Step::LeaseLost).expect("lost");
    let stop = w.running.clone().expect("the stop");
    assert!(stop.commands.contains(&Command::Reload {
        reason: ReloadReason::StopForging
    }));
    w.progress().expect("stopped");
    w.advance(5_000).expect("time passes");
    assert_eq!(w.follow_ups, 0, "no follow-up after the stop");
}
