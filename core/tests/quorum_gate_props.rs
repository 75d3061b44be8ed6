//! Property tests of quorum mode's gate in the Decider's lifecycle (docs/quorum.md): a model
//! world carries out plans one command at a time (slow, failing at random) while the
//! TicketKeeper's standing changes under it (majorities won, renewed, lost), the local lease
//! comes and goes, and a better peer appears and leaves. After every step it checks:
//!
//! - a plan that installs credentials to forge is emitted only while a majority is held with
//!   its forge deadline ahead, and carries a `start_by` no later than that deadline;
//! - an idle lifecycle (no plan in flight, no retry pending) never leaves the node forging
//!   without a majority whose deadline is ahead (losing it stops forging before the deadline:
//!   the decision wakes at the deadline);
//! - the tickets are released (the keeper's `Want::Release`) only while the node is confirmed
//!   stopped: no credentials installed, nothing forging.
//!
//! Settled, a region that should forge and holds a majority forges (L1), and a region that should
//! yield to a better peer stops and then releases. The tests count the histories that forged
//! and the ones that released, so a model that never gets there fails.
use std::time::Duration;

use forge_core::config::LeaseTiming;
use forge_core::crd::{CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, NetworkSpec};
use forge_core::decision::{
    Command, DeciderConfig, Effect, Event, Finished, Input, Lifecycle, LifecycleConfig, Mono, Phase, Run,
    State, aborts,
};
use forge_core::quorum::{Standing, Want, standing, want};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const PEER: &str = "c1";
const RENEW_DEADLINE: Duration = Duration::from_secs(10);

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

fn spec(state: ForgeState) -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec::new(state, 2, "r", NetworkSpec::new("preview", 2))
}

#[derive(Debug, Clone)]
enum Action {
    Progress,
    Advance(u64),
    NodeUp,
    NodeDown,
    LeaseRenewed,
    LeaseLost,
    /// The keeper reports `held` of 3 tickets, each with a deadline this many ms ahead.
    Tickets(usize, u64),
    /// A better peer (priority 1) is seen, reachable and contending.
    BetterPeer,
    /// The peer's API server stops answering.
    PeerGone,
    Spec(ForgeState),
    Heartbeat,
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => Just(Action::Progress),
        4 => (1u64..6_000).prop_map(Action::Advance),
        1 => Just(Action::NodeUp),
        1 => Just(Action::NodeDown),
        3 => Just(Action::LeaseRenewed),
        1 => Just(Action::LeaseLost),
        5 => (0usize..=3, 1u64..12_000).prop_map(|(h, ms)| Action::Tickets(h, ms)),
        1 => Just(Action::BetterPeer),
        1 => Just(Action::PeerGone),
        1 => prop_oneof![
            Just(ForgeState::Enabled),
            Just(ForgeState::PriorityBased),
            Just(ForgeState::Disabled)
        ]
        .prop_map(Action::Spec),
        2 => Just(Action::Heartbeat),
    ]
}

struct Running {
    run: Run,
    next: usize,
    status_written: Vec<(bool, Mono)>,
}

struct World {
    life: Lifecycle,
    now: Mono,
    fail_percent: u32,
    rng: u64,
    running: Option<Running>,
    retries: Vec<Mono>,
    wake: Option<Mono>,
    files: bool,
    node_up: bool,
    node_forging: bool,
    ever_forged: bool,
    ever_released: bool,
}

impl World {
    fn new(fail_percent: u32, seed: u64) -> Result<World, TestCaseError> {
        World::with_glass(fail_percent, seed, false)
    }

    fn with_glass(fail_percent: u32, seed: u64, glass: bool) -> Result<World, TestCaseError> {
        let config = LifecycleConfig {
            boot_credentials: false,
            reassert_window: Duration::from_secs(20),
            reassert_every: Duration::from_secs(4),
            retry_after: Duration::from_secs(1),
            status_write_required: true,
            shutdown_hold_max: Duration::ZERO,
        };
        let mut decider = DeciderConfig::multi_cluster("c0", [PEER]);
        decider.quorum = true;
        decider.quorum_break_glass = glass;
        decider.lease = LeaseTiming {
            duration: Duration::from_secs(15),
            renew_deadline: RENEW_DEADLINE,
            retry_period: Duration::from_secs(2),
        };
        let mut w = World {
            life: Lifecycle::new(config, State::new(decider)),
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
            ever_released: false,
        };
        w.input(Input::Started)?;
        w.progress_all()?;
        for e in [
            Event::NodeUp,
            Event::CredentialsValid,
            Event::ClusterSpecChanged {
                spec: Box::new(spec(ForgeState::PriorityBased)),
                generation: Some(1),
            },
            Event::PeerUnreachable {
                cluster: PEER.into(),
                at: Mono::from_millis(1_000),
            },
            Event::LeaseAcquired {
                deadline: Mono::from_millis(1_000) + RENEW_DEADLINE,
            },
        ] {
            if e == Event::NodeUp {
                w.node_up = true;
            }
            w.input(Input::Fact(e))?;
        }
        Ok(w)
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) < u64::from(percent)
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let effects = self.life.handle(input, self.now, wall_at(self.now));
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
                Effect::Exit { .. } | Effect::PollPeers | Effect::Publish | Effect::Note(_) => {}
            }
        }
        self.check_state()
    }

    fn check_run(&self, run: &Run) -> Result<(), TestCaseError> {
        let glass = self.life.state().config.quorum_break_glass;
        if run.commands.contains(&Command::Install) && !glass {
            let until = self.life.state().majority_until(self.now);
            prop_assert!(
                until.is_some(),
                "a forging plan without a majority whose deadline is ahead: {run:?} at {:?}, tickets {:?}",
                self.now,
                self.life.state().tickets
            );
            prop_assert!(
                run.start_by.is_some_and(|s| s <= until.unwrap()),
                "a forging plan whose start_by outlives the forge deadline: {run:?}"
            );
        }
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), TestCaseError> {
        let idle = self.running.is_none() && self.life.in_flight().is_none();
        let waiting_retry = self.retries.iter().any(|t| *t > self.now);
        if idle
            && !waiting_retry
            && self.node_forging
            && self.life.phase() == Phase::Running
            && !self.life.state().config.quorum_break_glass
            && self.life.state().majority_until(self.now).is_none()
        {
            return Err(TestCaseError::fail(format!(
                "idle with the node forging and no majority at {:?} (tickets {:?})",
                self.now,
                self.life.state().tickets
            )));
        }
        if want(self.life.ticket_intent(self.now, wall_at(self.now))) == Want::Release {
            prop_assert!(
                !self.node_forging && !self.files,
                "tickets released while the node may forge (files {}, forging {})",
                self.files,
                self.node_forging
            );
            self.ever_released = true;
        }
        Ok(())
    }

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
        running.next += 1;
        let past_deadline = running.run.start_by.is_some_and(|d| self.now >= d);
        let fails = past_deadline || self.chance(self.fail_percent);
        let node_absent = matches!(cmd, Command::Reload { .. }) && !self.node_up;
        if !fails && !node_absent {
            match &cmd {
                Command::Install => self.files = true,
                Command::Remove => self.files = false,
                Command::Reload { .. } => {
                    self.node_forging = self.files;
                    self.ever_forged |= self.node_forging;
                }
                Command::Release | Command::Contend(_) | Command::WriteStatus(_) => {}
            }
        }
        let failed = fails || node_absent;
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

    fn progress_all(&mut self) -> Result<(), TestCaseError> {
        while self.running.is_some() {
            self.progress()?;
        }
        Ok(())
    }

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

    fn tickets(&mut self, held: usize, ahead_ms: u64) -> Result<(), TestCaseError> {
        let d = Some(self.now + Duration::from_millis(ahead_ms));
        let deadlines = (0..3).map(|i| if i < held { d } else { None });
        let standing: Standing = standing(deadlines, self.now);
        self.input(Input::Fact(Event::TicketsChanged { standing }))
    }

    fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Progress => self.progress(),
            Action::Advance(ms) => self.advance(*ms),
            Action::NodeUp => {
                if !self.node_up {
                    self.node_up = true;
                    self.node_forging = self.files;
                    self.ever_forged |= self.node_forging;
                }
                self.input(Input::Fact(Event::NodeUp))
            }
            Action::NodeDown => {
                self.node_up = false;
                self.node_forging = false;
                self.input(Input::Fact(Event::NodeDown))
            }
            Action::LeaseRenewed => {
                let deadline = self.now + RENEW_DEADLINE;
                self.input(Input::Fact(Event::LeaseAcquired { deadline }))
            }
            Action::LeaseLost => self.input(Input::Fact(Event::LeaseLost { holder: None })),
            Action::Tickets(held, ms) => self.tickets(*held, *ms),
            Action::BetterPeer => {
                let status = CardanoForgeClusterStatus {
                    effective_state: Some(ForgeState::PriorityBased),
                    effective_priority: Some(1),
                    forging_enabled: Some(false),
                    reason: Some("awaiting_majority".into()),
                    ..CardanoForgeClusterStatus::default()
                };
                self.input(Input::Fact(Event::PeerObserved {
                    cluster: PEER.into(),
                    status: Some(Box::new(status)),
                    generation: Some(1),
                    read_at: self.now,
                }))
            }
            Action::PeerGone => self.input(Input::Fact(Event::PeerUnreachable {
                cluster: PEER.into(),
                at: self.now,
            })),
            Action::Spec(state) => self.input(Input::Fact(Event::ClusterSpecChanged {
                spec: Box::new(spec(*state)),
                generation: Some(1),
            })),
            Action::Heartbeat => self.input(Input::Heartbeat),
        }
    }

    /// No more failures: carry out every plan and fire every retry until nothing is left.
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

    /// The region should forge again: lease and majority fresh, spec priority-based, peer gone.
    fn make_winner(&mut self) -> Result<(), TestCaseError> {
        self.act(&Action::Spec(ForgeState::PriorityBased))?;
        self.act(&Action::PeerGone)?;
        if !self.node_up {
            self.act(&Action::NodeUp)?;
        }
        self.act(&Action::LeaseRenewed)?;
        self.tickets(2, 9_000)
    }
}

/// Random histories keep the gate's invariants at every step; settled as the winner with a
/// fresh majority, the node forges; then, a better peer appears: the node stops and only then
/// the tickets are released.
#[test]
fn forging_needs_a_current_majority_and_release_follows_a_confirmed_stop() {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(400))
    };
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let forged = std::cell::Cell::new(0u32);
    let released = std::cell::Cell::new(0u32);
    let strategy = (
        prop_oneof![Just(0u32), 1u32..30],
        any::<u64>(),
        prop::collection::vec(action_strategy(), 1..120),
    );
    let result = runner.run(&strategy, |(fail_percent, seed, actions)| {
        let mut w = World::new(fail_percent, seed)?;
        for a in &actions {
            w.act(a)?;
        }
        w.settle()?;
        if w.ever_forged {
            forged.set(forged.get() + 1);
        }
        // L1: the winner with a fresh majority forges.
        w.make_winner()?;
        w.settle()?;
        prop_assert!(
            w.life.current().forge && w.node_forging,
            "settled winner with a majority does not forge: {:?}",
            w.life.current().reason
        );
        // Yield: a better peer appears; we stop, confirmed, then release.
        w.act(&Action::BetterPeer)?;
        let intent = w.life.ticket_intent(w.now, wall_at(w.now));
        prop_assert!(
            want(intent) != Want::Release,
            "release before the stop was confirmed"
        );
        w.settle()?;
        prop_assert!(!w.life.current().forge && !w.node_forging && !w.files);
        prop_assert_eq!(
            want(w.life.ticket_intent(w.now, wall_at(w.now))),
            Want::Release,
            "the yielding region releases once stopped"
        );
        if w.ever_released {
            released.set(released.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (forged, released) = (forged.get(), released.get());
    println!(
        "quorum gate model: {} cases, forged during the random history in {forged}, released in {released}",
        config.cases
    );
    assert!(
        forged * 10 >= config.cases,
        "only {forged} of {} random histories forged: the model is too weak",
        config.cases
    );
    assert_eq!(released, config.cases, "every case ends with a release");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(200)))]

    /// A forging winner whose majority is not renewed stops at the forge deadline: the stop plan
    /// is emitted at the deadline's wake-up, without any other input, and the decision in force
    /// stops once it ran; the local lease stays current all along.
    #[test]
    fn losing_the_majority_stops_at_the_forge_deadline(ahead_ms in 500u64..8_000, seed in any::<u64>()) {
        let mut w = World::new(0, seed)?;
        w.make_winner()?;
        w.settle()?;
        prop_assert!(w.life.current().forge);
        // The keeper now holds a majority only until `ahead_ms`, and renews nothing.
        w.tickets(2, ahead_ms)?;
        let deadline = w.now + Duration::from_millis(ahead_ms);
        w.settle()?;
        prop_assert!(w.life.current().forge, "forging stopped while the majority held");
        // The lease stays current; only the forge deadline passes.
        w.act(&Action::LeaseRenewed)?;
        w.advance(ahead_ms)?;
        prop_assert!(w.running.is_some(), "no stop plan at the forge deadline");
        prop_assert!(w.now >= deadline);
        w.settle()?;
        prop_assert!(!w.life.current().forge && !w.node_forging);
        prop_assert_eq!(
            w.life.current().reason.as_str(),
            "awaiting_majority"
        );
    }
}

/// Break glass: with `QUORUM_BREAK_GLASS` an override forcing `Enabled` forges without a
/// majority (the peer long unreachable); without it, the same region waits for the majority.
#[test]
fn break_glass_skips_the_majority_only_for_a_forced_enabled() {
    use forge_core::crd::OverrideSpec;
    for glass in [false, true] {
        let mut w = World::with_glass(0, 7, glass).expect("world");
        w.settle().expect("settle");
        let mut s = spec(ForgeState::PriorityBased);
        s.override_ = Some(OverrideSpec {
            enabled: true,
            reason: None,
            expires_at: None,
            force_state: Some(ForgeState::Enabled),
            force_priority: None,
        });
        w.input(Input::Fact(Event::ClusterSpecChanged {
            spec: Box::new(s),
            generation: Some(1),
        }))
        .expect("spec");
        // The peer has been unreachable for longer than its lease: an Enabled override skips it.
        w.advance(20_000).expect("advance");
        w.act(&Action::PeerGone).expect("peer");
        w.act(&Action::LeaseRenewed).expect("lease");
        w.settle().expect("settle");
        assert_eq!(
            w.life.current().forge,
            glass,
            "glass {glass}: {:?}",
            w.life.current().reason
        );
        if !glass {
            assert_eq!(w.life.current().reason.as_str(), "awaiting_majority");
        }
    }
}
