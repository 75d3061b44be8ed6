//! `CardanoLeader`: the per-StatefulSet leader status, its spec (informational) and status.

// kube's `printcolumn(...)` repeats `type_ = ...` per column, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// Informational spec of a CardanoLeader (the reference chart creates it as `spec: {}`).
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[kube(
    group = "cardano.io",
    version = "v1",
    kind = "CardanoLeader",
    singular = "cardanoleader",
    plural = "cardanoleaders",
    namespaced,
    status = "CardanoLeaderStatus",
    shortname = "cl",
    shortname = "leader",
    category = "cardano",
    category = "blockchain",
    printcolumn(name = "Leader Pod", type_ = "string", json_path = ".status.leaderPod"),
    printcolumn(name = "Forging", type_ = "boolean", json_path = ".status.forgingEnabled"),
    printcolumn(
        name = "Last Transition",
        type_ = "date",
        json_path = ".status.lastTransitionTime"
    ),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CardanoLeaderSpec {
    /// Namespace of the StatefulSet (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
}

/// `status` of a CardanoLeader, written by the local lease holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CardanoLeaderStatus {
    /// The pod holding the lease ("" when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_pod: Option<String>,
    /// Whether that pod's node forges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forging_enabled: Option<bool>,
    /// When leader or forging last changed (RFC 3339), not rewritten on every renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: Option<String>,
    /// Machine-readable reason of the current decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, LeaderElected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
