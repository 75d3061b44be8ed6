//! A fleet of pods for system tests: per pod the whole actor system as the sidecar builds it
//! (`forge_actors::system::spawn_all`) on its in-memory adapters (`testing::InMemory`), all
//! pods of one cluster sharing, as in production, one Lease, one CardanoLeader and one
//! CardanoForgeCluster ([`MemoryCluster`]) and one clock, each with its cardano-node under its
//! guard (`testing::ModelNode`: the node forges exactly when it last read its credential files
//! present).
//!
//! The test acts on the world only: it starts and stops node processes, publishes source
//! credentials (valid, corrupt, rotated), lets the guard fence, scripts faults on the ports
//! (API outages and 409s on a Lease client, failing or slow credential writes, slow reloads,
//! slow status writes) and sends SIGTERM (`Shutdown`, as the binary's signal handler does). The
//! facts reach the Deciders as in production: from the NodeWatcher's polls, the
//! CredentialKeeper's validation, the guard's reports and the LeaseElector's watch.
//!
//! What the test reads is what reached a port, in one ordered log with its virtual time
//! ([`Did`]): the CredentialKeeper's installs and removals at the credential store, the
//! NodeSignaller's requests at the node guard (a reload carries no reason there), the
//! StatusWriter's CardanoLeader writes, the Lease holder after each of a pod's writes, and the
//! node's forging. Why a reload was sent is read where an operator reads it: the
//! `cardano_sighup_signals_total{reason}` counter ([`Pod::reloads`]). The invariants are checked
//! *at the instant* each change happens:
//!
//! - S1: never two nodes forging at once;
//! - S2: when a pod's CredentialKeeper installs, no other node forges (boot credentials for a
//!   node that is down and starts non-producing excepted); when the Lease passes to a pod (its
//!   write lands), no other node forges; when a pod's release lands, its node does not forge.
//!
//! A violation is recorded (an actor must not panic) and [`Fleet::assert_safe`] reports it.
#![allow(dead_code)] // each test binary uses a different part of the harness

mod model;
mod pod;
mod taps;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use forge_actors::{
    clock::Clock,
    testing::{MemoryCluster, MemoryLeases, config},
};
use forge_core::{config::LeaseTiming, lease::Mono};
use tokio::time::Instant;

#[allow(unused_imports)] // as the module: each test binary uses a different part
pub use pod::Pod;

pub use forge_actors::testing::on_virtual_time;

/// The cluster of every pod of the fleet (`CLUSTER_IDENTIFIER`, as the chart sets it for the
/// pods of a region): they share its CardanoForgeCluster.
pub const CLUSTER: &str = "region-a";

/// The configuration of [`timing`] (LEASE_DURATION and RENEW_DEADLINE take whole seconds), with
/// API calls timing out after 0.5 s.
pub const TIMING_KEYS: [(&str, &str); 4] = [
    ("LEASE_DURATION", "3"),
    ("RENEW_DEADLINE", "2"),
    ("RETRY_PERIOD", "500ms"),
    ("API_TIMEOUT", "500ms"),
];

/// Short timings: lease 3 s, renew deadline 2 s, retry period 0.5 s.
pub fn timing() -> LeaseTiming {
    LeaseTiming {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

/// How often the NodeWatcher polls the node (its default): a node's start or exit reaches the
/// Decider within this.
pub const NODE_POLL: Duration = forge_actors::node_watcher::DEFAULT_POLL_INTERVAL;

/// What a pod is started with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodOptions {
    /// `NODE_STARTS_NON_PRODUCING`: boot credentials; the node then starts non-producing.
    pub boot_credentials: bool,
    /// `ENABLE_CLUSTER_MANAGEMENT` (the claim must be written to the CardanoForgeCluster, and a
    /// failed write stops a plan).
    pub cluster_management: bool,
}

/// One line of the log: a call that reached a port, or something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    /// The credential store was asked to install the credentials.
    Install,
    /// The credential store was asked to remove them.
    Remove,
    /// The node guard was asked to reload the node.
    Reload,
    /// The node guard was granted (or renewed) a forging permit.
    Permit,
    /// The node guard was asked to revoke the permit (and fence).
    Revoke,
    /// The CardanoLeader status was written with this `forgingEnabled`.
    Status(bool),
    /// The CardanoForgeCluster status (the claim) was written with this `forgingEnabled`.
    Claim(bool),
    /// The test started the pod's node process.
    NodeUp,
    /// The test stopped the pod's node process.
    NodeDown,
    /// The node started or stopped forging.
    Forging(bool),
    /// A write of this pod's elector changed the Lease holder (`None`: released).
    Holder(Option<String>),
}

impl Did {
    /// A call the pod's actors made at a port (not an event of the world).
    pub fn is_call(&self) -> bool {
        !matches!(
            self,
            Did::NodeUp | Did::NodeDown | Did::Forging(_) | Did::Holder(_)
        )
    }

    /// A call that touches the node: its credential files, or a reload.
    pub fn touches_node(&self) -> bool {
        matches!(self, Did::Install | Did::Remove | Did::Reload)
    }

    fn key(&self) -> &'static str {
        match self {
            Did::Install => "install",
            Did::Remove => "remove",
            Did::Reload => "reload",
            Did::Permit => "permit",
            Did::Revoke => "revoke",
            Did::Status(_) => "status",
            Did::Claim(_) => "claim",
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
    /// For calls: whether the port answered `Ok`.
    pub ok: bool,
}

/// What the fleet knows of one pod's node for the S2 checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeView {
    pub(crate) up: bool,
    pub(crate) forging: bool,
    pub(crate) starts_non_producing: bool,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, NodeView>,
    log: Vec<Entry>,
    violations: Vec<String>,
    holder: Option<String>,
    /// Scripted failures: (pod, call key) -> how many of the next ones fail.
    fail_next: BTreeMap<(String, &'static str), u32>,
    /// The next call of a kind by a pod is answered only after this long (a slow disk, a slow
    /// API server, a node slow to reload); it takes effect at the answer.
    delay_next: BTreeMap<(String, &'static str), Duration>,
}

/// The shared world: the log and the invariants. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Mutex<Inner>>,
    /// The Lease, CardanoLeader and CardanoForgeCluster all pods share.
    pub shared: MemoryCluster,
    /// The Lease store all pods share (`shared.leases`).
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
        // The pods' configurations name the same objects (the default CardanoLeader).
        let shared = MemoryCluster::new(&config(&[("CLUSTER_IDENTIFIER", CLUSTER)]));
        Self {
            inner: Arc::default(),
            store: shared.leases.clone(),
            shared,
            clock: Clock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // === reading the world ===

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

    /// The calls `pod`'s actors made at its ports from `mark` on, in order.
    pub fn calls_since(&self, pod: &str, mark: usize) -> Vec<Did> {
        self.entries_since(pod, mark)
            .into_iter()
            .filter(|e| e.did.is_call())
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
        let report = self.render(&inner.log);
        panic!("invariants violated: {:#?}\nlog:\n{report}", inner.violations);
    }

    fn render(&self, log: &[Entry]) -> String {
        let mut report = String::new();
        for e in log {
            report.push_str(&format!(
                "  #{:<4} {:>9?} {:<6} {:?}{}\n",
                e.seq,
                self.clock.mono_of(e.at),
                e.pod,
                e.did,
                if e.ok { "" } else { "  (failed)" }
            ));
        }
        report
    }

    /// Prints the log (for debugging a test).
    pub fn dump(&self) {
        eprintln!("{}", self.render(&self.log()));
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
