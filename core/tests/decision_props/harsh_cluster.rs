//! One cluster, several pods, one Lease, in a harsh world: leases expire unless renewed, lease
//! answers arrive late (in flight), reloads take up to 1.5 s (a stop counts only once the node is
//! seen not forging after it: the commands after a stopping reload wait for that), any command may
//! fail (the rest of its plan is then not carried out: claim and lease are kept), and each node
//! runs under a guard that fences it when its permit (the lease deadline) passes. S1 is checked
//! after every action; each property counts the cases in which anyone forged and fails when that
//! share is too small (a model where nobody ever forges would pass vacuously).

use std::time::Duration;

use forge_core::decision::{
    Command, DeciderConfig, Decision, Event, Mono, ReloadReason, State, apply, decide, plan, shutdown_plan,
};
use proptest::prelude::*;

use crate::{cases, count_forging, wall_at};

/// `LEASE_DURATION`, `RENEW_DEADLINE` and the slowest reload of the model.
const LEASE_MS: u64 = 4_000;
const RENEW_DEADLINE_MS: u64 = 2_000;
const RELOAD_MAX_MS: u64 = 1_500;

#[derive(Debug, Clone)]
enum PodAction {
    /// Pod i sends a lease request (acquire or renew); its answer is in flight.
    Try(usize),
    /// The oldest answer in flight to pod i arrives.
    Answer(usize),
    /// Pod i's next Install, Remove or Reload fails.
    FailNext(usize),
    /// Pod i's node goes down or comes back.
    Node(usize, bool),
    /// Pod i's source credentials turn invalid or valid again.
    Creds(usize, bool),
    /// Pod i's sidecar gets SIGTERM: it carries out its shutdown plan and takes no part after.
    Shutdown(usize),
    /// Every pod sends a lease request and all answers in flight arrive at once (a standby
    /// takes a released Lease without delay).
    Rush,
    /// Time passes; reloads due complete, permits due lapse; every pod re-decides.
    Advance(u64),
}

fn pod_action_strategy(n: usize) -> impl Strategy<Value = PodAction> {
    prop_oneof![
        5 => (0..n).prop_map(PodAction::Try),
        8 => (0..n).prop_map(PodAction::Answer),
        1 => (0..n).prop_map(PodAction::FailNext),
        1 => (0..n, prop_oneof![1 => Just(false), 3 => Just(true)]).prop_map(|(i, up)| PodAction::Node(i, up)),
        1 => (0..n, prop_oneof![1 => Just(false), 3 => Just(true)]).prop_map(|(i, ok)| PodAction::Creds(i, ok)),
        1 => (0..n).prop_map(PodAction::Shutdown),
        2 => Just(PodAction::Rush),
        4 => prop_oneof![3 => 0u64..300, 1 => 0u64..2_500].prop_map(PodAction::Advance),
    ]
}

/// A lease answer in flight: what the server did, and when the request was sent.
#[derive(Debug, Clone)]
enum LeaseAnswer {
    Held { sent_at: Mono },
    Lost,
}

#[derive(Debug)]
struct Pod {
    state: State,
    prev: Decision,
    contend: bool,
    /// The target files exist.
    files: bool,
    /// The node forges now.
    forging: bool,
    node_up: bool,
    /// A reload in progress: when it takes effect (forging then follows `files`).
    reload_done_at: Option<Mono>,
    /// The rest of a plan waiting for the node to be seen not forging after a stopping reload.
    blocked: Option<(Vec<Command>, bool)>,
    /// The guard's permit: the node may forge until then.
    permit: Option<Mono>,
    fail_next: bool,
    in_flight: std::collections::VecDeque<LeaseAnswer>,
    /// Shut down: its Decider no longer runs (its node and guard do).
    gone: bool,
}

struct Cluster {
    pods: Vec<Pod>,
    /// The Lease on the server: holder and its last renewal.
    holder: Option<usize>,
    renewed_at: Mono,
    now: Mono,
    reload_ms: Vec<u64>,
    reload_draw: usize,
    ever_forged: bool,
}

impl Cluster {
    fn new(n: usize, reload_ms: Vec<u64>) -> Cluster {
        let pods = (0..n)
            .map(|i| Pod {
                state: [Event::NodeUp, Event::CredentialsValid]
                    .into_iter()
                    .fold(State::new(DeciderConfig::single_cluster(format!("p{i}"))), apply),
                prev: Decision::initial(),
                contend: false,
                files: false,
                forging: false,
                node_up: true,
                reload_done_at: None,
                blocked: None,
                permit: None,
                fail_next: false,
                in_flight: Default::default(),
                gone: false,
            })
            .collect();
        let mut c = Cluster {
            pods,
            holder: None,
            renewed_at: Mono::ZERO,
            now: Mono::from_millis(10_000),
            reload_ms,
            reload_draw: 0,
            ever_forged: false,
        };
        for i in 0..n {
            c.step(i);
        }
        c
    }

    fn feed(&mut self, i: usize, e: Event) {
        let p = &mut self.pods[i];
        p.state = apply(
            std::mem::replace(&mut p.state, State::new(DeciderConfig::single_cluster("x"))),
            e,
        );
    }

    fn reload_latency(&mut self) -> Duration {
        let ms = self.reload_ms[self.reload_draw % self.reload_ms.len()];
        self.reload_draw += 1;
        Duration::from_millis(ms)
    }

    /// Carries out `cmds` in order; a stopping reload blocks the rest until the node is seen
    /// not forging; a failed command abandons the rest (and the decision is not committed).
    /// Returns whether the plan ran to its end.
    fn carry_out(&mut self, i: usize, cmds: Vec<Command>) -> bool {
        let mut it = cmds.into_iter();
        while let Some(c) = it.next() {
            let fallible = matches!(c, Command::Install | Command::Remove | Command::Reload { .. });
            if fallible && std::mem::take(&mut self.pods[i].fail_next) {
                return false;
            }
            match c {
                Command::Install => self.pods[i].files = true,
                Command::Remove => self.pods[i].files = false,
                Command::Reload { reason } => {
                    let stopping = matches!(reason, ReloadReason::StopForging | ReloadReason::Shutdown);
                    if reason == ReloadReason::StartForging {
                        // The permit is granted up to the lease's deadline.
                        self.pods[i].permit = self.pods[i].state.lease.deadline();
                    }
                    if self.pods[i].node_up {
                        let done = self.now + self.reload_latency();
                        self.pods[i].reload_done_at = Some(done);
                        if stopping && self.pods[i].forging {
                            self.pods[i].blocked = Some((it.collect(), true));
                            return false;
                        }
                    }
                }
                Command::Contend(b) => self.pods[i].contend = b,
                Command::Release => {
                    if self.holder == Some(i) {
                        self.holder = None;
                    }
                    // As the LeaseElector does: a write that lands while a release waits is not
                    // a tenure (the release follows it); its answer says the Lease is gone.
                    for answer in &mut self.pods[i].in_flight {
                        *answer = LeaseAnswer::Lost;
                    }
                    self.feed(i, Event::LeaseLost { holder: None });
                }
                Command::WriteStatus(_) => {}
            }
        }
        true
    }

    /// Pod i's Decider: unless a plan waits for a stop to be confirmed, decide, carry out the
    /// plan, commit if it ran to its end.
    fn step(&mut self, i: usize) {
        if self.pods[i].blocked.is_some() || self.pods[i].gone {
            return;
        }
        for _ in 0..4 {
            let now = self.now;
            let d = decide(&self.pods[i].state, now, wall_at(now));
            let cmds = plan(&self.pods[i].prev, &d);
            let released = cmds.contains(&Command::Release);
            if !self.carry_out(i, cmds) {
                if self.pods[i].blocked.is_some() {
                    // Committed once the stop is confirmed.
                    self.pods[i].blocked.as_mut().expect("blocked").1 = d.forge;
                    self.pods[i].prev = d;
                }
                return;
            }
            self.feed(i, Event::Committed { forge: d.forge });
            self.pods[i].prev = d;
            if !released {
                return;
            }
        }
    }

    /// Reloads due take effect; permits due lapse (the guard fences: files removed, reload).
    fn tick(&mut self) {
        for i in 0..self.pods.len() {
            if let Some(permit) = self.pods[i].permit
                && self.now >= permit
            {
                self.pods[i].permit = None;
                self.pods[i].files = false;
                if self.pods[i].forging && self.pods[i].reload_done_at.is_none() {
                    let done = self.now + self.reload_latency();
                    self.pods[i].reload_done_at = Some(done);
                }
                self.feed(i, Event::NodeFenced);
            }
            if let Some(done) = self.pods[i].reload_done_at
                && self.now >= done
            {
                self.pods[i].reload_done_at = None;
                let p = &mut self.pods[i];
                p.forging = p.node_up && p.files && p.permit.is_some_and(|d| self.now < d);
                if !p.forging
                    && let Some((rest, forge)) = p.blocked.take()
                {
                    // The stop is confirmed: the rest of the plan.
                    if self.carry_out(i, rest) {
                        self.feed(i, Event::Committed { forge });
                    }
                }
            }
        }
        self.ever_forged |= self.pods.iter().any(|p| p.forging);
    }

    fn act(&mut self, a: &PodAction) {
        self.now = self.now + Duration::from_millis(1);
        match *a {
            PodAction::Try(i) => {
                // A pod that does not contend only reads: it is told someone else holds it.
                let vacant =
                    self.holder.is_none() || self.now >= self.renewed_at + Duration::from_millis(LEASE_MS);
                let answer = if self.pods[i].contend && (self.holder == Some(i) || vacant) {
                    self.holder = Some(i);
                    self.renewed_at = self.now;
                    LeaseAnswer::Held { sent_at: self.now }
                } else {
                    LeaseAnswer::Lost
                };
                self.pods[i].in_flight.push_back(answer);
            }
            PodAction::Answer(i) if !self.pods[i].gone => {
                if let Some(answer) = self.pods[i].in_flight.pop_front() {
                    let e = match answer {
                        // The deadline counts from when the request was sent.
                        LeaseAnswer::Held { sent_at } => Event::LeaseRenewed {
                            deadline: sent_at + Duration::from_millis(RENEW_DEADLINE_MS),
                        },
                        LeaseAnswer::Lost => Event::LeaseLost {
                            holder: Some("other".into()),
                        },
                    };
                    let e = match (e, self.pods[i].state.lease.deadline().is_none()) {
                        (Event::LeaseRenewed { deadline }, true) => Event::LeaseAcquired { deadline },
                        (e, _) => e,
                    };
                    self.feed(i, e);
                    self.step(i);
                }
            }
            PodAction::FailNext(i) => self.pods[i].fail_next = true,
            PodAction::Creds(i, ok) => {
                self.feed(
                    i,
                    if ok {
                        Event::CredentialsValid
                    } else {
                        Event::CredentialsInvalid { why: "bad".into() }
                    },
                );
                self.step(i);
            }
            PodAction::Shutdown(i) => {
                if !self.pods[i].gone && self.pods[i].blocked.is_none() {
                    let cmds = shutdown_plan(&self.pods[i].prev);
                    self.carry_out(i, cmds);
                    self.pods[i].contend = false;
                    self.pods[i].gone = true;
                }
            }
            PodAction::Answer(_) => {}
            PodAction::Rush => {
                for i in 0..self.pods.len() {
                    self.act(&PodAction::Try(i));
                }
                for i in 0..self.pods.len() {
                    while !self.pods[i].in_flight.is_empty() && !self.pods[i].gone {
                        self.act(&PodAction::Answer(i));
                    }
                }
            }
            PodAction::Node(i, up) => {
                let p = &mut self.pods[i];
                if !up {
                    p.forging = false;
                    p.reload_done_at = None;
                }
                p.node_up = up;
                self.feed(i, if up { Event::NodeUp } else { Event::NodeDown });
                self.tick();
                self.step(i);
            }
            PodAction::Advance(ms) => {
                let end = self.now + Duration::from_millis(ms);
                while self.now < end {
                    self.now = (self.now + Duration::from_millis(50)).min(end);
                    self.tick();
                    for i in 0..self.pods.len() {
                        self.step(i);
                    }
                }
            }
        }
        self.tick();
    }

    fn forgers(&self) -> Vec<usize> {
        (0..self.pods.len()).filter(|i| self.pods[*i].forging).collect()
    }
}

/// Runs `cases` generated histories, checking S1 after every action; returns how many had a
/// forger at some point.
fn run_harsh_cluster(cases: u32) -> (u32, u32) {
    let strategy =
        (2usize..=3, proptest::collection::vec(0u64..=RELOAD_MAX_MS, 1..8)).prop_flat_map(|(n, reloads)| {
            (
                Just(n),
                Just(reloads),
                proptest::collection::vec(pod_action_strategy(n), 1..200),
            )
        });
    count_forging(cases, strategy, |(n, reloads, actions)| {
        let mut c = Cluster::new(n, reloads);
        for a in &actions {
            c.act(a);
            prop_assert!(
                c.forgers().len() <= 1,
                "two pods forge at once {:?} after {:?} at {:?}",
                c.forgers(),
                a,
                c.now
            );
        }
        Ok(c.ever_forged)
    })
}

#[test]
fn a_harsh_cluster_never_has_two_forgers_and_often_has_one() {
    let (forged, total) = run_harsh_cluster(cases(256));
    eprintln!("harsh single-cluster model: {forged} of {total} cases had a forger");
    assert!(total > 0);
    assert!(
        f64::from(forged) >= 0.3 * f64::from(total),
        "only {forged} of {total} cases had a forger: the model is too harsh to test anything"
    );
}

/// A release while the answer to an acquisition is in flight: the LeaseElector does not report
/// that answer as a tenure (the release follows the write), so the pod does not forge on it
/// while another pod takes the released Lease (a 20,000-case run found the model delivering it
/// as an acquisition: two forgers).
#[test]
fn an_acquisition_answered_after_a_release_is_not_a_tenure() {
    let mut c = Cluster::new(2, vec![0]);
    for a in [
        PodAction::Try(1),
        PodAction::Node(1, false),
        PodAction::Try(0),
        PodAction::Answer(0),
        PodAction::Node(1, true),
        PodAction::Answer(1),
    ] {
        c.act(&a);
        assert!(c.forgers().len() <= 1, "overlap {:?} after {a:?}", c.forgers());
    }
    assert_eq!(c.forgers(), vec![0], "p0 holds the Lease and forges");
}

/// The scripted handover in the harsh model: the forger shuts down while its stopping reload
/// takes 1.5 s; the standby acquires the released Lease at once and reloads in 20 ms. Its
/// release must wait for the old node to be seen not forging.
#[test]
fn a_shutdown_hands_over_only_after_the_slow_stop_is_confirmed() {
    let mut c = Cluster::new(2, vec![20]);
    for a in [PodAction::Try(0), PodAction::Answer(0), PodAction::Advance(100)] {
        c.act(&a);
    }
    assert_eq!(c.forgers(), vec![0], "p0 forges");
    c.reload_ms = vec![1_500, 20];
    c.reload_draw = 0;
    c.act(&PodAction::Shutdown(0));
    assert_eq!(c.forgers(), vec![0], "p0 forges on until its reload takes effect");
    assert_eq!(c.holder, Some(0), "the Lease is kept until the stop is confirmed");
    for a in [PodAction::Try(1), PodAction::Answer(1), PodAction::Advance(100)] {
        c.act(&a);
        assert!(c.forgers().len() <= 1, "overlap {:?} after {a:?}", c.forgers());
    }
    c.act(&PodAction::Advance(1_500));
    assert_eq!(c.holder, None, "released once the stop was confirmed");
    for a in [PodAction::Try(1), PodAction::Answer(1), PodAction::Advance(200)] {
        c.act(&a);
        assert!(c.forgers().len() <= 1, "overlap {:?} after {a:?}", c.forgers());
    }
    assert_eq!(c.forgers(), vec![1], "p1 took over");
}
