//! The custom resources of group `cardano.io/v1` (docs/architecture.md, "Custom resources"):
//! `CardanoForgeCluster` (per-region forging policy and its observed state) and `CardanoLeader`
//! (per-StatefulSet leader status).
//!
//! Kept compatible with the reference Helm chart (`cardano-forge-crds`): same group, kinds,
//! field names and short names, so its objects are accepted. Its mistakes are fixed: `pool`,
//! `pool.id` and `pool.idHex` are optional; the network name is free-form (known networks are
//! checked against their magics by config validation); `override.forceState` may also be
//! `Priority-based`; the singular name is spelled right; application type and environment are
//! free-form (the reference's enums made its own sidecar's writes fail with 422).
//!
//! Time fields are RFC 3339 strings with `format: date-time` in the schema rather than parsed
//! timestamps, so an object written by another tool never makes a whole watch fail to
//! deserialize; the decision engine parses them and fails closed with a reason. No I/O here.
//!
//! `CardanoForgeCluster` and the types both share are here; `CardanoLeader` is in `leader`.

// kube's `printcolumn(...)` repeats `type_ = ...` per column, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

mod leader;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use leader::{CardanoLeader, CardanoLeaderSpec, CardanoLeaderStatus};

/// The API group of both resources.
pub const GROUP: &str = "cardano.io";
/// The served and stored version of both resources.
pub const VERSION: &str = "v1";

/// Whether a cluster may forge (`spec.forgeState`, `spec.override.forceState`,
/// `status.effectiveState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
pub enum ForgeState {
    /// This cluster forges whenever its local leader is ready, regardless of other regions.
    /// Running two regions `Enabled` at once is the operator's responsibility.
    Enabled,
    /// This cluster never forges.
    Disabled,
    /// This cluster forges only while it is the global winner: the eligible cluster with the
    /// lowest effective priority, ties broken by name.
    #[default]
    #[serde(rename = "Priority-based")]
    PriorityBased,
}

impl ForgeState {
    /// The name as written in the custom resource.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeState::Enabled => "Enabled",
            ForgeState::Disabled => "Disabled",
            ForgeState::PriorityBased => "Priority-based",
        }
    }
}

impl std::fmt::Display for ForgeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default base priority of a cluster (`spec.priority`, `CLUSTER_PRIORITY`).
pub const DEFAULT_PRIORITY: i32 = 100;

fn default_priority() -> i32 {
    DEFAULT_PRIORITY
}

/// Forging policy of one region's cluster for one pool.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "cardano.io",
    version = "v1",
    kind = "CardanoForgeCluster",
    singular = "cardanoforgecluster",
    plural = "cardanoforgeclusters",
    namespaced,
    status = "CardanoForgeClusterStatus",
    shortname = "cfc",
    category = "cardano",
    category = "blockchain",
    printcolumn(name = "State", type_ = "string", json_path = ".status.effectiveState"),
    printcolumn(name = "Priority", type_ = "integer", json_path = ".status.effectivePriority"),
    printcolumn(name = "Forging", type_ = "boolean", json_path = ".status.forgingEnabled"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.activeLeader"),
    printcolumn(name = "Tickets", type_ = "string", json_path = ".status.tickets"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region", priority = 1),
    printcolumn(
        name = "Network",
        type_ = "string",
        json_path = ".spec.network.name",
        priority = 1
    ),
    printcolumn(
        name = "Pool",
        type_ = "string",
        json_path = ".spec.pool.ticker",
        priority = 1
    ),
    printcolumn(
        name = "Healthy",
        type_ = "boolean",
        json_path = ".status.healthStatus.healthy",
        priority = 1
    ),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CardanoForgeClusterSpec {
    /// Enabled, Disabled or Priority-based (default).
    #[serde(default)]
    pub forge_state: ForgeState,
    /// Base priority, lower wins (1..999, default 100).
    #[serde(default = "default_priority")]
    #[schemars(range(min = 1, max = 999))]
    pub priority: i32,
    /// The region this cluster runs in (a DNS-1123 label, e.g. `us-east-1`).
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub region: String,
    /// The Cardano network the pool forges on.
    pub network: NetworkSpec,
    /// The pool this cluster forges for (optional: legacy single-pool deployments omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
    /// What kind of deployment this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationSpec>,
    /// Health probing that adds a penalty to the priority while failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// A manual override of state and/or priority, optionally until `expiresAt`.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<OverrideSpec>,
}

impl CardanoForgeClusterSpec {
    /// A spec with the given state, priority, region and network, and nothing else set (no
    /// pool, application, health check or override).
    pub fn new(
        forge_state: ForgeState,
        priority: i32,
        region: impl Into<String>,
        network: NetworkSpec,
    ) -> Self {
        Self {
            forge_state,
            priority,
            region: region.into(),
            network,
            pool: None,
            application: None,
            health_check: None,
            override_: None,
        }
    }
}

impl NetworkSpec {
    /// A network by name and magic, in the current era.
    pub fn new(name: impl Into<String>, magic: i64) -> Self {
        Self {
            name: name.into(),
            magic,
            era: default_era(),
        }
    }
}

fn default_era() -> String {
    "conway".to_string()
}

/// `spec.network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Network name: mainnet, preprod, preview, or any custom name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Network magic (mainnet 764824073, preprod 1, preview 2).
    #[schemars(range(min = 0))]
    pub magic: i64,
    /// Ledger era (informational, default `conway`).
    #[serde(default = "default_era")]
    pub era: String,
}

/// `spec.pool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PoolSpec {
    /// Pool id (bech32 `pool1...`), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub id: Option<String>,
    /// Pool id as 56 lower-case hex characters, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-f0-9]{56}$"))]
    pub id_hex: Option<String>,
    /// Human-readable pool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub name: Option<String>,
    /// Pool ticker (1-5 upper-case letters or digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,5}$"))]
    pub ticker: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
}

fn default_application_type() -> String {
    "block-producer".to_string()
}

fn default_environment() -> String {
    "production".to_string()
}

/// `spec.application`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Deployment type, e.g. block-producer (default), relay-only, monitoring.
    #[serde(default = "default_application_type", rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub type_: String,
    /// Application version (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Environment, e.g. production (default), staging, development, testing.
    #[serde(default = "default_environment")]
    #[schemars(length(min = 1, max = 63))]
    pub environment: String,
}

fn default_interval() -> String {
    "30s".to_string()
}

fn default_timeout() -> String {
    "10s".to_string()
}

fn default_failure_threshold() -> i32 {
    3
}

/// `spec.healthCheck`: an HTTP GET whose failures demote this cluster (+10 after one
/// consecutive failure, +100 at `failureThreshold`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Whether probing is on.
    #[serde(default)]
    pub enabled: bool,
    /// The URL to GET; healthy iff it answers 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "uri"))]
    pub endpoint: Option<String>,
    /// Probe period, e.g. `30s`, `1m`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^[0-9]+[smh]$"))]
    pub interval: String,
    /// Per-probe timeout, e.g. `10s`.
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^[0-9]+[smh]$"))]
    pub timeout: String,
    /// Consecutive failures before the full penalty (1..10, default 3).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub failure_threshold: i32,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `spec.override`: while enabled and not expired, replaces the state and/or the priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// Whether the override is active.
    #[serde(default)]
    pub enabled: bool,
    /// Why (shown in status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 time after which the override no longer applies; absent means until disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// Replaces `spec.forgeState` while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_state: Option<ForgeState>,
    /// Replaces the effective priority (no health penalty) while active (1..999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 999))]
    pub force_priority: Option<i32>,
}

/// `status` of a CardanoForgeCluster, written only by the region's local leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CardanoForgeClusterStatus {
    /// The state in force after overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_state: Option<ForgeState>,
    /// The priority in force after overrides and health penalties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_priority: Option<i32>,
    /// The pod holding the local lease ("" when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_leader: Option<String>,
    /// Whether a node of this cluster forges now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forging_enabled: Option<bool>,
    /// Machine-readable reason of the current decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `forgingEnabled` or `effectiveState` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_transition: Option<String>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Result of the health probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    /// Ready, HealthCheckPassing, LeaderElected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The claim protocol the writer follows. `1`: it writes `forgingEnabled: true`, and has it
    /// confirmed, before its node may forge, so its `forgingEnabled: false` proves that no node
    /// of this cluster forges. Absent (the reference sidecar, which may forge before it writes
    /// its status): peers take this status as no evidence that the cluster does not forge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_protocol: Option<i32>,
    /// Quorum mode: the forge tickets this cluster holds, of the participants, as
    /// `HELD/PARTICIPANTS` (`3/4`); forging needs more than half of them. Absent without
    /// quorum mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickets: Option<String>,
}

/// The claim protocol our StatusWriter follows (`status.claimProtocol`).
pub const CLAIM_PROTOCOL: i32 = 1;

/// `status.healthStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// False once the failure threshold is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// When the last probe ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_probe_time: Option<String>,
    /// Consecutive failed probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<i32>,
    /// e.g. `HTTP 503` or the transport error kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Duration of the last probe, e.g. `0.012s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time: Option<String>,
}

/// A status condition (`Ready`, `HealthCheckPassing`, `LeaderElected`, `Syncing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(regex(pattern = r"^(True|False|Unknown)$"))]
    pub status: String,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Both CustomResourceDefinitions, in the order `forge-manager crds` prints them.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![CardanoForgeCluster::crd(), CardanoLeader::crd()]
}
