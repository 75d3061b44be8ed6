//! A fleet of pods for system tests of the Decider: per pod the real Decider and the real
//! LeaseElector (under a `Supervisor`), all sharing one [`MemoryLeases`] store, with in-memory
//! stand-ins for the CredentialKeeper, the NodeSignaller and the ClusterWatcher, and a fake
//! cardano-node per pod.
//!
//! The fake node models what S1 and S2 are about: `files` follows `Install`/`Remove`, and
//! `forging` follows the last `Reload` given the files (a node that starts with the files
//! present forges from the start, unless it starts non-producing). Every command, node event,
//! forging change and lease-holder change lands in one ordered log with its virtual time, and
//! the invariants are checked *at the instant* each change happens:
//!
//! - S1: never two fake nodes forging at once;
//! - S2: when a pod's `Install` arrives, no other node forges (boot credentials for a node that
//!   is down and starts non-producing excepted); when the Lease passes to a pod
//!   (its write lands), no other node forges; when a pod's release lands, its node does not
//!   forge.
//!
//! A violation is recorded (an actor must not panic) and [`Fleet::assert_safe`] reports it.
#![allow(dead_code)] // each test binary uses a different part of the harness

mod model;
mod pod;
mod stand_ins;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_actors::{clock::Clock, decider::DeciderSettings, testing::MemoryLeases};
use forge_core::{config::LeaseTiming, decision::ReloadReason, lease::Mono};
use tokio::time::Instant;

pub use pod::Pod;

pub use forge_actors::testing::on_virtual_time;

/// Short timings: lease 3 s, renew deadline 2 s, retry period 0.5 s.
pub fn timing() -> LeaseTiming {
    LeaseTiming {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

/// What a pod is started with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodOptions {
    /// `DeciderSettings::boot_credentials`; the fake node then starts non-producing.
    pub boot_credentials: bool,
    /// `DeciderSettings::status_write_required` (cluster management: the claim must be
    /// written, and a failed status write stops a plan).
    pub status_write_required: bool,
}

/// The Decider settings of the tests (production shapes, short timings).
pub fn settings(pod: &str, options: PodOptions) -> DeciderSettings {
    let t = timing();
    DeciderSettings {
        pod: pod.to_string(),
        heartbeat: t.retry_period,
        retry_after: t.retry_period,
        status_write_required: options.status_write_required,
        boot_credentials: options.boot_credentials,
        reassert_window: Duration::from_secs(2),
        reassert_every: Duration::from_secs(1),
        shutdown_hold_max: Duration::ZERO,
    }
}

/// One line of the log: a command as its recipient got it, or something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    /// CredentialKeeper stand-in got `Install`.
    Install,
    /// CredentialKeeper stand-in got `Remove`.
    Remove,
    /// NodeSignaller stand-in got `Reload`.
    Reload(ReloadReason),
    /// ClusterWatcher stand-in got `WriteStatus` with this `forgingEnabled`.
    WriteStatus(bool),
    /// The LeaseElector got `Contend`.
    Contend(bool),
    /// The LeaseElector got `Release`.
    Release,
    /// The test started the pod's node process.
    NodeUp,
    /// The test stopped the pod's node process.
    NodeDown,
    /// The fake node started or stopped forging.
    Forging(bool),
    /// A write of this pod's elector changed the Lease holder (`None`: released).
    Holder(Option<String>),
}

impl Did {
    /// A command from the Decider (not an event of the world).
    pub fn is_command(&self) -> bool {
        !matches!(
            self,
            Did::NodeUp | Did::NodeDown | Did::Forging(_) | Did::Holder(_)
        )
    }

    /// A command to the CredentialKeeper or NodeSignaller (what touches the node).
    pub fn touches_node(&self) -> bool {
        matches!(self, Did::Install | Did::Remove | Did::Reload(_))
    }

    fn key(&self) -> &'static str {
        match self {
            Did::Install => "install",
            Did::Remove => "remove",
            Did::Reload(_) => "reload",
            Did::WriteStatus(_) => "write_status",
            Did::Contend(_) => "contend",
            Did::Release => "release",
            Did::NodeUp => "node_up",
            Did::NodeDown => "node_down",
            Did::Forging(_) => "forging",
            Did::Holder(_) => "holder",
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the log (total order, finer than virtual time).
    pub seq: usize,
    /// Virtual time.
    pub at: Instant,
    /// Which pod.
    pub pod: String,
    /// What.
    pub did: Did,
    /// For commands: whether the stand-in answered `Ok`.
    pub ok: bool,
}

/// The fake cardano-node of one pod.
#[derive(Debug, Clone, Default)]
pub struct FakeNode {
    /// The node process runs.
    pub up: bool,
    /// The credential files are installed.
    pub files: bool,
    /// Block forging is enabled.
    pub forging: bool,
    /// It starts non-producing whatever the files (boot credentials).
    pub starts_non_producing: bool,
    /// The source credentials are valid (else `Install` is refused, as the keeper refuses).
    pub sources_valid: bool,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, FakeNode>,
    log: Vec<Entry>,
    violations: Vec<String>,
    holder: Option<String>,
    /// Scripted failures: (pod, command key) -> how many of the next ones fail.
    fail_next: BTreeMap<(String, &'static str), u32>,
    /// The next command of a kind to a pod is answered only after this long (a slow disk, a
    /// slow API server); it takes effect at the answer.
    delay_next: BTreeMap<(String, &'static str), Duration>,
}

/// The shared world: fake nodes, log, invariants. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Mutex<Inner>>,
    /// The Lease store all pods share.
    pub store: MemoryLeases,
    /// The clock all pods share (one virtual time).
    pub clock: Clock,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    /// An empty fleet (call inside the System).
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            store: MemoryLeases::new(),
            clock: Clock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // === reading the world ===

    /// The fake node of `pod` now.
    pub fn node(&self, pod: &str) -> FakeNode {
        self.lock().nodes[pod].clone()
    }

    /// The pods whose nodes forge now.
    pub fn forgers(&self) -> Vec<String> {
        Self::forgers_of(&self.lock())
    }

    /// The log so far.
    pub fn log(&self) -> Vec<Entry> {
        self.lock().log.clone()
    }

    /// The log position now (to look at what comes after).
    pub fn mark(&self) -> usize {
        self.lock().log.len()
    }

    /// `pod`'s log entries from `mark` on.
    pub fn entries_since(&self, pod: &str, mark: usize) -> Vec<Entry> {
        self.lock().log[mark..]
            .iter()
            .filter(|e| e.pod == pod)
            .cloned()
            .collect()
    }

    /// The commands `pod` got from `mark` on, in order.
    pub fn commands_since(&self, pod: &str, mark: usize) -> Vec<Did> {
        self.entries_since(pod, mark)
            .into_iter()
            .filter(|e| e.did.is_command())
            .map(|e| e.did)
            .collect()
    }

    /// The first entry from `mark` on (of any pod when `pod` is `None`) matching `pred`.
    pub fn first_since(&self, mark: usize, pod: Option<&str>, pred: impl Fn(&Did) -> bool) -> Option<Entry> {
        self.lock().log[mark..]
            .iter()
            .find(|e| pod.is_none_or(|p| e.pod == p) && pred(&e.did))
            .cloned()
    }

    /// Virtual time now on the shared clock.
    pub fn now(&self) -> Mono {
        self.clock.now()
    }

    /// Sleeps `ms` of virtual time (everything due before runs first).
    pub async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// S1 and S2 held at every instant so far; panics with the violations and the log.
    pub fn assert_safe(&self) {
        let inner = self.lock();
        if inner.violations.is_empty() {
            return;
        }
        let mut report = String::new();
        for e in &inner.log {
            report.push_str(&format!(
                "  #{:<4} {:>9?} {:<6} {:?}{}\n",
                e.seq,
                self.clock.mono_of(e.at),
                e.pod,
                e.did,
                if e.ok { "" } else { "  (failed)" }
            ));
        }
        panic!("invariants violated: {:#?}\nlog:\n{report}", inner.violations);
    }

    /// Prints the log (for debugging a test).
    pub fn dump(&self) {
        for e in self.log() {
            eprintln!(
                "#{:<4} {:>9?} {:<6} {:?}{}",
                e.seq,
                self.clock.mono_of(e.at),
                e.pod,
                e.did,
                if e.ok { "" } else { "  (failed)" }
            );
        }
    }

    /// Sleeps in `step_ms` steps for `total_ms`, asserting S1/S2 after each step and that at
    /// most one node forges at each step boundary.
    pub async fn run_checked(&self, total_ms: u64, step_ms: u64) {
        let mut left = total_ms;
        while left > 0 {
            let step = step_ms.min(left);
            self.sleep_ms(step).await;
            left -= step;
            self.assert_safe();
            assert!(self.forgers().len() <= 1, "S1: {:?}", self.forgers());
        }
    }
}
