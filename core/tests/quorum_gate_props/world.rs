//! The model world of the quorum gate's properties: a Decider lifecycle in quorum mode whose
//! plans are carried out one command at a time (slow, failing at random), a node that starts and
//! stops forging as those commands say, the TicketKeeper's standing, the local lease and a peer,
//! all driven by [`Action`]s. After every step it checks the gate's invariants (see the crate
//! docs) and fails the case on the first violation.
use std::time::Duration;

use forge_core::crd::{CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, NetworkSpec};
use forge_core::decision::{
    Command, DeciderConfig, Effect, Event, Input, Lifecycle, LifecycleConfig, Mono, Phase, Run, State, aborts,
};
use forge_core::quorum::{Standing, Want, standing, want};
use proptest::prelude::*;

pub(crate) use crate::model_world::wall_at;
use crate::model_world::{self, RENEW_DEADLINE, Running, Timers};

const PEER: &str = "c1";

pub(crate) fn spec(state: ForgeState) -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec::new(state, 2, "r", NetworkSpec::new("preview", 2))
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
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

pub(crate) fn action_strategy() -> impl Strategy<Value = Action> {
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

/// The room a reload that does not stop forging leaves before the forge deadline (F21).
const RELOAD_ROOM: Duration = Duration::from_secs(2);

pub(crate) struct World {
    pub(crate) life: Lifecycle,
    pub(crate) now: Mono,
    fail_percent: u32,
    rng: u64,
    pub(crate) running: Option<Running>,
    timers: Timers,
    pub(crate) files: bool,
    node_up: bool,
    pub(crate) node_forging: bool,
    pub(crate) ever_forged: bool,
    pub(crate) ever_released: bool,
}

impl World {
    pub(crate) fn new(fail_percent: u32, seed: u64) -> Result<World, TestCaseError> {
        World::with_glass(fail_percent, seed, false)
    }

    pub(crate) fn with_glass(fail_percent: u32, seed: u64, glass: bool) -> Result<World, TestCaseError> {
        let config = LifecycleConfig {
            status_write_required: true,
            // F21: the room is checked against the forge deadline below.
            ..model_world::lifecycle_config(RELOAD_ROOM)
        };
        let mut decider = DeciderConfig::multi_cluster("c0", [PEER]);
        decider.quorum = true;
        decider.quorum_break_glass = glass;
        decider.lease = model_world::lease_timing();
        let mut w = World {
            life: Lifecycle::new(config, State::new(decider)),
            now: Mono::from_millis(1_000),
            fail_percent,
            rng: seed | 1,
            running: None,
            timers: Timers::default(),
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

    pub(crate) fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let effects = self.life.handle(input, self.now, wall_at(self.now));
        for effect in effects {
            match effect {
                Effect::Run(run) => {
                    prop_assert!(self.running.is_none(), "two plans in flight");
                    self.check_run(&run)?;
                    self.running = Some(Running::new(run));
                }
                Effect::Adopted { decision, .. } => self.timers.set_wake(decision.next_wake),
                Effect::WakeAt(at) => self.timers.retry_at(at),
                Effect::Exit { .. } | Effect::PollPeers | Effect::Publish | Effect::Note(_) => {}
            }
        }
        self.check_state()
    }

    fn check_run(&self, run: &Run) -> Result<(), TestCaseError> {
        let glass = self.life.state().config.quorum_break_glass;
        // F21: a reload that does not stop forging leaves the stop at the forge deadline (the
        // earlier of the renew deadline and the tickets' majority) room to wait for it.
        let reloads_on = run
            .commands
            .iter()
            .any(|c| matches!(c, Command::Reload { reason } if reason.turns_forging_on()));
        if reloads_on {
            let state = self.life.state();
            let deadline = match (
                state.lease.deadline(),
                state.tickets.as_ref().and_then(|t| t.until),
            ) {
                (Some(lease), Some(tickets)) => Some(lease.min(tickets)),
                (lease, _) => lease,
            };
            prop_assert!(
                deadline.is_some_and(|d| d.saturating_since(self.now) >= RELOAD_ROOM),
                "a non-stopping reload planned at {:?} with the forge deadline at {deadline:?}: {run:?}",
                self.now
            );
        }
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
        let waiting_retry = self.timers.retry_pending(self.now);
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
            return self.input(running.finished(None));
        };
        running.next += 1;
        let past_deadline = running.run.start_by.is_some_and(|d| self.now >= d);
        let fails = past_deadline || model_world::chance(&mut self.rng, self.fail_percent);
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
        let ends = past_deadline || aborts(&cmd, node_absent, running.run.status_write_required);
        match running.went_on(cmd, failed, ends, self.now) {
            Ok(running) => self.running = Some(running),
            Err(end) => return self.input(*end),
        }
        Ok(())
    }

    fn progress_all(&mut self) -> Result<(), TestCaseError> {
        while self.running.is_some() {
            self.progress()?;
        }
        Ok(())
    }

    pub(crate) fn advance(&mut self, ms: u64) -> Result<(), TestCaseError> {
        model_world::advance(self, ms)
    }

    pub(crate) fn tickets(&mut self, held: usize, ahead_ms: u64) -> Result<(), TestCaseError> {
        let d = Some(self.now + Duration::from_millis(ahead_ms));
        let deadlines = (0..3).map(|i| if i < held { d } else { None });
        let standing: Standing = standing(deadlines, self.now);
        self.input(Input::Fact(Event::TicketsChanged { standing }))
    }

    pub(crate) fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
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
    pub(crate) fn settle(&mut self) -> Result<(), TestCaseError> {
        model_world::settle(self)
    }

    /// The region should forge again: lease and majority fresh, spec priority-based, peer gone.
    pub(crate) fn make_winner(&mut self) -> Result<(), TestCaseError> {
        self.act(&Action::Spec(ForgeState::PriorityBased))?;
        self.act(&Action::PeerGone)?;
        if !self.node_up {
            self.act(&Action::NodeUp)?;
        }
        self.act(&Action::LeaseRenewed)?;
        self.tickets(2, 9_000)
    }
}

model_world::model_world!(World);
