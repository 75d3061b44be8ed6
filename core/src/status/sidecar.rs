//! The sidecar's `/status` document, typed: the Decider fills a [`SidecarStatus`], the HTTP
//! endpoint serialises it, and the readers (the cluster gauges, the operator's `status` view,
//! the simulator and the scenario tests) deserialise it. One shape on both sides, so a field
//! cannot be written under one name and read under another. Pure data, no I/O.
//!
//! Reading is lenient: every field has a default (`#[serde(default)]`), so the document of an
//! older sidecar that lacks a field still reads, with that field empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    cardano::{KesStatus, LeaderSlot, SyncStatus},
    credentials::OpCertInfo,
};

/// The `/status` document: the decision and its reasons, and what the sidecar knows of its node,
/// credentials, peers, KES certificate, chain and quorum tickets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SidecarStatus {
    /// `POD_NAME`.
    pub pod: String,
    /// The node forges (credentials installed). `None` only when read from a document that did
    /// not say.
    pub forging: Option<bool>,
    /// The CardanoForgeCluster status claims forging (published before the node starts).
    pub claim: bool,
    /// The decision's reason code (`Reason::as_str`).
    pub reason: String,
    /// The reason for people.
    pub message: String,
    /// The effective forge state (`ForgeState::as_str`).
    pub effective_state: String,
    /// The effective priority.
    pub effective_priority: i32,
    /// This pod holds the local Lease.
    pub holds_lease: bool,
    /// This pod contends for the Lease.
    pub contending: bool,
    /// Milliseconds until the Lease's renew deadline (none without one).
    pub lease_deadline_in_ms: Option<u64>,
    /// The local node.
    pub node: NodeReport,
    /// The credentials' standing.
    pub credentials: CredentialsReport,
    /// `CLUSTER_NAME`: our CardanoForgeCluster.
    pub cluster: String,
    /// `ENABLE_CLUSTER_MANAGEMENT`.
    pub cluster_management: bool,
    /// Failed health probes in a row.
    pub health_consecutive_failures: u32,
    /// The peer clusters as last read.
    pub peers: Vec<PeerReport>,
    /// A plan is being carried out.
    pub busy: bool,
    /// The Decider's phase (`StartingUp`, `Running`, `ShuttingDown`, `Stopped`).
    pub phase: String,
    /// The source certificate's figures (none before one decoded).
    pub kes: Option<KesReport>,
    /// The ChainWatcher's figures (none without a ChainWatcher).
    pub chain: Option<ChainReport>,
    /// The quorum tickets (none outside the quorum mode).
    pub quorum: Option<QuorumReport>,
    /// Standing configuration warnings (e.g. cluster management with no peers); absent when
    /// there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The document as `/status` serves it (compact JSON), for logs and test messages.
impl std::fmt::Display for SidecarStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

/// `/status` `node`: the local node as the NodeWatcher and ChainWatcher see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeReport {
    /// Its socket answers.
    pub up: bool,
    /// Its tip is within the sync tolerance (`None`: not read).
    pub synced: Option<bool>,
}

/// `/status` `credentials`: `{"state": "unknown" | "valid"}` or
/// `{"state": "invalid", "why": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum CredentialsReport {
    /// Not checked yet.
    #[default]
    Unknown,
    /// The source set is usable.
    Valid,
    /// The source set is not usable.
    Invalid {
        /// Why (names files and problems, never their content).
        why: String,
    },
}

/// One peer cluster in `/status` `peers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerReport {
    /// The peer's CardanoForgeCluster.
    pub cluster: String,
    /// Whether its API server answers (`Reach` as Debug: `Unknown`, `Reachable`, ...).
    pub reach: String,
    /// Its `status.forgingEnabled` as last read.
    pub forging_enabled: Option<bool>,
    /// Its `status.effectivePriority` as last read.
    pub effective_priority: Option<i32>,
}

/// `/status` `kes`: the source certificate's figures and KES standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KesReport {
    /// Counter and start period.
    pub op_cert: OpCertInfo,
    /// Standing now, when the network's schedule is known.
    pub kes: Option<KesStatus>,
}

/// `/status` `chain`: the ChainWatcher's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChainReport {
    /// The last sync reading (`None`: not read, or unreadable).
    pub sync: Option<SyncStatus>,
    /// Why the node counts as not synced when its tip could not be read.
    pub sync_error: Option<String>,
    /// Our next leader slot, if the schedule has one ahead.
    pub next_leader_slot: Option<LeaderSlot>,
    /// Slots in the schedule.
    pub schedule_slots: usize,
    /// Why the schedule could not be used.
    pub schedule_error: Option<String>,
}

/// `/status` `quorum`: the TicketKeeper's report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct QuorumReport {
    /// What the keeper does now: `take`, `keep`, `release` or `leave`.
    pub want: String,
    /// Tickets we hold.
    pub held: usize,
    /// Tickets a majority needs.
    pub needed: usize,
    /// Milliseconds until the forge deadline (a majority held), if any.
    pub forge_deadline_in_ms: Option<u64>,
    /// Holders and tickets, by participant.
    pub tickets: Vec<TicketReport>,
    /// How many tickets each holder has, as last seen.
    pub holders: BTreeMap<String, usize>,
    /// `QUORUM_BREAK_GLASS` is on.
    pub break_glass: bool,
}

/// One participant's ticket as `/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TicketReport {
    /// The participant.
    pub participant: String,
    /// A witness.
    pub witness: bool,
    /// The holder as last seen (`None`: free, released, absent or not read).
    pub holder: Option<String>,
    /// We count it as ours now.
    pub held_by_us: bool,
    /// Its API server answered our last call (`None`: not called yet).
    pub reachable: Option<bool>,
    /// Seconds since our last successful call to it.
    pub age_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_reads_back_as_written_with_its_wire_names() {
        let s = SidecarStatus {
            pod: "bp-0".into(),
            forging: Some(true),
            reason: "single_cluster_leader".into(),
            holds_lease: true,
            lease_deadline_in_ms: None,
            credentials: CredentialsReport::Invalid {
                why: "kes.skey: missing".into(),
            },
            peers: vec![PeerReport {
                cluster: "pool-west".into(),
                reach: "Reachable".into(),
                forging_enabled: Some(false),
                effective_priority: Some(2),
            }],
            chain: Some(ChainReport::default()),
            ..SidecarStatus::default()
        };
        let json = serde_json::to_value(&s).expect("serialise");
        assert_eq!(json["holdsLease"], true);
        assert_eq!(json["leaseDeadlineInMs"], serde_json::Value::Null);
        assert_eq!(
            json["credentials"],
            serde_json::json!({"state": "invalid", "why": "kes.skey: missing"})
        );
        assert_eq!(json["peers"][0]["forgingEnabled"], false);
        assert_eq!(json["chain"]["scheduleSlots"], 0);
        assert!(json.get("warnings").is_none(), "no warnings, no key: {json}");
        let back: SidecarStatus = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, s);
    }

    #[test]
    fn kes_state_names_are_their_serialised_form() {
        use crate::cardano::KesState;
        for state in [KesState::Valid, KesState::NotYetValid, KesState::Expired] {
            assert_eq!(serde_json::to_value(state).expect("serialise"), state.as_str());
        }
    }

    #[test]
    fn an_older_document_missing_fields_still_reads() {
        let s: SidecarStatus = serde_json::from_str(
            r#"{"pod": "bp-1", "reason": "node_down", "credentials": {"state": "valid"}}"#,
        )
        .expect("lenient");
        assert_eq!(s.pod, "bp-1");
        assert_eq!(s.forging, None);
        assert_eq!(s.credentials, CredentialsReport::Valid);
        assert_eq!(s.kes, None);
    }
}
