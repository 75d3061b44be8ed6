//! The operator's view of a pool across regions: one [`View`] (a verdict and one [`Row`] per
//! region's cluster) built by [`build`] from the objects read in each kube context, and its
//! renderings (table, JSON, YAML). Pure: the objects and the time arrive as arguments.
//!
//! Where the facts come from, per region (one kube context and namespace):
//! - `CardanoForgeCluster` spec: base priority, `forgeState`, `override` (evaluated with the
//!   decision engine's own rule, [`evaluate_override`](forge_core::decision::evaluate_override), so the view and the sidecars agree on
//!   whether it is active, expired or invalid); status: effective state and priority, health,
//!   `activeLeader`, `forgingEnabled`, `reason`, `lastTransition`.
//! - `CardanoLeader` status: the lease holder's own report of its node (`leaderPod`,
//!   `forgingEnabled`, `reason`).
//! - `Lease`: the holder and the age of its last renewal (the region's heartbeat).
//!
//! A region *forges* when a status says `forgingEnabled: true` under a forging reason (or an
//! unknown one: the safe side for a verdict that must not hide a second forger); it *claims* when
//! `forgingEnabled: true` comes with a reason that waits for a peer (a winner publishes its claim
//! before it starts, docs/architecture.md "Regions", so one region forging and one claiming is a
//! normal moment of a handover, not two forgers).
//!
//! The types are here; `rows` builds them from the objects, `verdict` judges the pool and
//! `table` prints it.

mod rows;
mod table;
#[cfg(test)]
mod tests;
mod verdict;

use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    status::SidecarStatus,
};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use serde::Serialize;

#[cfg(test)]
pub(crate) use rows::empty_row;
pub use rows::{build, row_name};
pub use table::{Style, render_table};
pub use verdict::Verdict;

/// Status reasons that come with forging (`Reason::is_forging` in the decision engine).
pub const FORGING_CODES: &[&str] = &[
    "single_cluster_leader",
    "cluster_enabled",
    "override_enabled",
    "global_winner",
];

/// Exit code: exactly one region forges.
pub const EXIT_ONE_FORGER: u8 = 0;
/// Exit code: no region forges.
pub const EXIT_NO_FORGER: u8 = 3;
/// Exit code: two or more regions forge.
pub const EXIT_TWO_FORGERS: u8 = 4;
/// Exit code: a region could not be read (and no two forgers were seen among the others).
pub const EXIT_UNREACHABLE: u8 = 5;

/// What was read in one kube context.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Every CardanoForgeCluster in the namespace.
    pub clusters: Vec<CardanoForgeCluster>,
    /// Every CardanoLeader in the namespace.
    pub leaders: Vec<CardanoLeader>,
    /// Every Lease in the namespace.
    pub leases: Vec<Lease>,
    /// The sidecar pods found (their `/status` documents, or why not), or why they could not be
    /// listed.
    pub pods: Result<Vec<PodInput>, String>,
}

impl Default for Fetched {
    fn default() -> Self {
        Fetched {
            clusters: Vec::new(),
            leaders: Vec::new(),
            leases: Vec::new(),
            pods: Ok(Vec::new()),
        }
    }
}

/// One sidecar pod as read: its name and its `/status` document (or why it could not be read).
#[derive(Debug, Clone)]
pub struct PodInput {
    /// `metadata.name` (the sidecar's `POD_NAME`, the Lease holder identity).
    pub name: String,
    /// The sidecar's `/status` document, or why there is none.
    pub status: Result<SidecarStatus, String>,
}

/// One kube context's input: what was read, or why it could not be.
#[derive(Debug, Clone)]
pub struct ContextInput {
    /// The kube context name.
    pub context: String,
    /// The namespace read.
    pub namespace: String,
    /// The objects, or the error text.
    pub fetched: Result<Fetched, String>,
}

/// Whether a region forges, per its statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forging {
    /// A status says forging, under a forging (or unknown) reason.
    Yes,
    /// `forgingEnabled: true` while waiting for a peer to confirm it stopped: not yet forging.
    Claiming,
    /// Not forging.
    No,
    /// Nothing to tell (the region could not be read, or it has no status yet).
    Unknown,
}

/// The override as the decision engine sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideView {
    /// `active`, `expired` or `invalid` (an absent or disabled override has no view).
    pub status: &'static str,
    /// `forceState`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_state: Option<String>,
    /// `forcePriority`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_priority: Option<i32>,
    /// `expiresAt` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until it expires (active overrides with an expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<i64>,
    /// `reason` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// One pod of a region: what the region's objects say about it and what its sidecar reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    /// The pod name.
    pub name: String,
    /// It is the region Lease's holder.
    pub holds_lease: bool,
    /// Seconds since the Lease's last renewal, when it holds it.
    pub heartbeat_age_seconds: Option<f64>,
    /// It claims forging: the CardanoLeader (or the CardanoForgeCluster's `activeLeader`)
    /// names it with `forgingEnabled: true`.
    pub claims: bool,
    /// Forging as its own sidecar reports it (`/status` `forging`); none when unknown.
    pub observed_forging: Option<bool>,
    /// Why `observed_forging` is unknown (no `/status` reached, and the error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_why: Option<String>,
    /// The sidecar's reason code (`/status` `reason`).
    pub reason: Option<String>,
    /// When the operational certificate's KES key expires (`/status` `kes.kes.expires_at`).
    pub kes_expires_at: Option<String>,
    /// KES periods left (`/status` `kes.kes.remaining_periods`).
    pub kes_remaining_periods: Option<u64>,
    /// `valid`, `not_yet_valid`, `expired` (`/status` `kes.kes.state`).
    pub kes_state: Option<String>,
    /// Reserved for the quorum mode's tickets; always none for now.
    pub tickets: Option<String>,
}

/// One region's cluster (or one context that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The kube context it was read from.
    pub context: String,
    /// The namespace.
    pub namespace: String,
    /// The CardanoForgeCluster name (none in single-cluster mode or when unreadable).
    pub cluster: Option<String>,
    /// `spec.region`.
    pub region: Option<String>,
    /// `spec.priority`.
    pub base_priority: Option<i32>,
    /// `status.effectivePriority`.
    pub effective_priority: Option<i32>,
    /// `spec.forgeState`.
    pub forge_state: Option<String>,
    /// `status.effectiveState`.
    pub effective_state: Option<String>,
    /// `spec.override`, evaluated now.
    #[serde(rename = "override")]
    pub override_: Option<OverrideView>,
    /// `status.healthStatus.healthy` (none when no probe ran).
    pub healthy: Option<bool>,
    /// The Lease read for this region.
    pub lease: Option<String>,
    /// Its `holderIdentity` ("" counts as none).
    pub lease_holder: Option<String>,
    /// Seconds since its `renewTime`, on this machine's clock.
    pub heartbeat_age_seconds: Option<f64>,
    /// True when the last renewal is older than `leaseDurationSeconds`.
    pub lease_expired: Option<bool>,
    /// `status.activeLeader` of the cluster.
    pub active_leader: Option<String>,
    /// `status.forgingEnabled` of the cluster (the region's claim).
    pub forging_enabled: Option<bool>,
    /// The CardanoLeader read for this region.
    pub leader: Option<String>,
    /// Its `status.leaderPod`.
    pub leader_pod: Option<String>,
    /// Its `status.forgingEnabled`.
    pub leader_forging: Option<bool>,
    /// Whether this region forges, from both statuses.
    pub forging: Forging,
    /// The pod that forges or claims (when known).
    pub forger: Option<String>,
    /// `status.reason` (the CardanoLeader's when there is no cluster).
    pub reason: Option<String>,
    /// `status.message`.
    pub message: Option<String>,
    /// `status.lastTransition`.
    pub last_transition: Option<String>,
    /// Why the context could not be read.
    pub error: Option<String>,
    /// The region's pods.
    pub pods: Vec<PodRow>,
    /// Why the pods could not be listed (the rows then come from the Lease and statuses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_error: Option<String>,
}

/// The whole view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// When it was built (this machine's clock).
    pub at: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The exit code `status` returns.
    #[serde(rename = "exitCode")]
    pub exit_code: u8,
    /// One row per region's cluster, in input order.
    pub rows: Vec<Row>,
}

fn age_secs(t: Timestamp, now: Timestamp) -> f64 {
    now.duration_since(t).as_secs_f64()
}

/// `3.2s`, `45s`, `12m`, `1h05m`, `2d03h` (negative ages, from clock skew, read as 0s).
pub fn human_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{}s", s as u64)
    } else if s < 3600.0 {
        format!("{}m{:02}s", s as u64 / 60, s as u64 % 60)
    } else if s < 86400.0 {
        format!("{}h{:02}m", s as u64 / 3600, (s as u64 % 3600) / 60)
    } else {
        format!("{}d{:02}h", s as u64 / 86400, (s as u64 % 86400) / 3600)
    }
}
