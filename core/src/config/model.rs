//! The validated configuration: [`ValidConfig`] and its section types.
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::parse::{ser_duration, ser_opt_duration};
use super::timing::LeaseTiming;
pub use crate::credentials::CredentialSet;
use crate::naming::NamingScheme;

/// The validated configuration: the only thing actors see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidConfig {
    /// `NAMESPACE`.
    pub namespace: String,
    /// `POD_NAME`: this pod (with [`ValidConfig::pod_uid`], the Lease holder identity).
    pub pod_name: String,
    /// `POD_UID`: this pod's UID, when given.
    pub pod_uid: Option<String>,
    /// `LEASE_DURATION`, `RENEW_DEADLINE`, `RETRY_PERIOD` (and `SLEEP_INTERVAL`, docs/configuration.md).
    pub lease: LeaseTiming,
    /// `API_TIMEOUT`: per-request Kubernetes API timeout, below the renew deadline.
    #[serde(serialize_with = "ser_duration")]
    pub api_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`: on SIGTERM, stop forging, release the lease and exit within this
    /// (keep it below the pod's `terminationGracePeriodSeconds`).
    #[serde(serialize_with = "ser_duration")]
    pub shutdown_timeout: Duration,
    /// `SLEEP_INTERVAL` when it was given: reported, and used only to shorten the retry period.
    #[serde(serialize_with = "ser_opt_duration")]
    pub legacy_sleep_interval: Option<Duration>,
    /// The effective Lease, CardanoLeader and CardanoForgeCluster names.
    pub names: EffectiveNames,
    /// `CRD_GROUP`, `CRD_VERSION`, `CRD_PLURAL` of the CardanoLeader resource (only the defaults
    /// are accepted).
    pub crd: CrdCoordinates,
    /// The node: socket, process, guard.
    pub node: NodeSettings,
    /// `SOURCE_*` and `TARGET_*` paths (never key material).
    pub credentials: CredentialSettings,
    /// `CARDANO_NETWORK`, `NETWORK_MAGIC`.
    pub network: NetworkSettings,
    /// `POOL_*`, when `POOL_ID` is set.
    pub pool: Option<PoolIdentity>,
    /// `APPLICATION_TYPE`.
    pub application_type: ApplicationType,
    /// `REQUIRE_SYNC`, `SYNC_*`, `NODE_METRICS_URL`, `LEADER_SCHEDULE`, `HANDOVER_QUIET`.
    pub chain: ChainSettings,
    /// `ENABLE_CLUSTER_MANAGEMENT`, `CLUSTER_*`.
    pub cluster: ClusterSettings,
    /// `HEALTH_CHECK_*`.
    pub health: HealthCheckSettings,
    /// `PEER_CLUSTERS`.
    pub peers: Vec<PeerCluster>,
    /// `QUORUM_PARTICIPANTS`, `TICKET_*`: quorum mode, when on (docs/quorum.md).
    pub quorum: Option<super::QuorumSettings>,
    /// `METRICS_PORT`.
    pub metrics_port: u16,
    /// `LOG_LEVEL`, `LOG_FORMAT`.
    pub log: LogSettings,
}

impl ValidConfig {
    /// The Lease holder identity: `POD_NAME`, or `POD_NAME_POD_UID` when the UID is given
    /// ([`crate::lease::holder_identity`]).
    pub fn lease_identity(&self) -> String {
        crate::lease::holder_identity(&self.pod_name, self.pod_uid.as_deref())
    }
}

/// Where a name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    /// Given explicitly (`LEASE_NAME`, `CRD_NAME`, `CLUSTER_IDENTIFIER`): always wins.
    Explicit,
    /// Derived from `POOL_ID` (crate::naming).
    Derived,
    /// The reference's built-in default.
    Default,
    /// The host name (legacy CardanoForgeCluster name).
    HostName,
}

/// The effective object names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveNames {
    /// The `NAMING_SCHEME` used for derived names.
    pub scheme: NamingScheme,
    /// Lease name.
    pub lease: String,
    /// Where the Lease name came from.
    pub lease_source: NameSource,
    /// CardanoLeader name (`CRD_NAME`).
    pub leader: String,
    /// Where the CardanoLeader name came from.
    pub leader_source: NameSource,
    /// CardanoForgeCluster name.
    pub cluster: String,
    /// Where the CardanoForgeCluster name came from.
    pub cluster_source: NameSource,
}

/// Group, version and plural of the CardanoLeader resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrdCoordinates {
    /// `CRD_GROUP`.
    pub group: String,
    /// `CRD_VERSION`.
    pub version: String,
    /// `CRD_PLURAL`.
    pub plural: String,
}

/// The local node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSettings {
    /// `NODE_SOCKET`.
    pub socket: PathBuf,
    /// `SOCKET_WAIT_TIMEOUT`.
    #[serde(serialize_with = "ser_duration")]
    pub socket_wait_timeout: Duration,
    /// `DISABLE_SOCKET_CHECK`: always false once validated (true is refused).
    pub disable_socket_check: bool,
    /// `CARDANO_NODE_PROCESS_NAME`.
    pub process_name: String,
    /// `NODE_STARTS_NON_PRODUCING`: the node runs `--start-as-non-producing-node`, so credentials
    /// may be present at its start (it needs them to boot) without it forging. Otherwise they are
    /// installed only for a leader, so no replica boots forging
    /// next to the leader (the reference sidecar's startup window, G-3 in docs/architecture.md).
    pub starts_non_producing: bool,
    /// `GUARD_SOCKET`.
    pub guard_socket: PathBuf,
    /// `STOP_GRACE`: without the node guard nothing the sidecar can see confirms that the node
    /// stopped forging after a SIGHUP (cardano-node re-reads its files and only then stops its
    /// forging thread), so a stop counts as done only this long after the SIGHUP, or when the
    /// node process is gone. Until then the claim and the lease are kept.
    #[serde(serialize_with = "ser_duration")]
    pub stop_grace: Duration,
    /// `STOP_CONFIRM_TIMEOUT`: with the node guard, a stopping reload counts as done only when
    /// the guard reports the node's "Disabling block forging" (or not effective, or its exit)
    /// after it; not within this, the stop fails and nothing is handed over.
    #[serde(serialize_with = "ser_duration")]
    pub stop_confirm_timeout: Duration,
}

/// The three credential files (paths, never key material). Serialised with the settings' names
/// (`kes_key`, `vrf_key`, `op_cert`).
pub type CredentialFiles = CredentialSet<PathBuf>;

/// Source (Secret mount) and target (node's paths) credential files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialSettings {
    /// `SOURCE_*`.
    pub source: CredentialFiles,
    /// `TARGET_*`.
    pub target: CredentialFiles,
}

/// The Cardano network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSettings {
    /// `CARDANO_NETWORK`.
    pub name: String,
    /// `NETWORK_MAGIC`.
    pub magic: u32,
    /// `SHELLEY_GENESIS`, when given.
    pub shelley_genesis: Option<PathBuf>,
}

/// Chain awareness: the node's sync and the pool's leader schedule (docs/cardano.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSettings {
    /// `REQUIRE_SYNC`.
    pub require_sync: bool,
    /// `SYNC_TOLERANCE`.
    #[serde(serialize_with = "ser_duration")]
    pub sync_tolerance: Duration,
    /// `NODE_METRICS_URL`, when the tip is read (`REQUIRE_SYNC`, or the URL given).
    pub node_metrics_url: Option<String>,
    /// `SYNC_CHECK_INTERVAL`.
    #[serde(serialize_with = "ser_duration")]
    pub sync_check_interval: Duration,
    /// `LEADER_SCHEDULE`, when given.
    pub leader_schedule: Option<PathBuf>,
    /// `HANDOVER_QUIET`.
    #[serde(serialize_with = "ser_duration")]
    pub handover_quiet: Duration,
}

/// The pool, when `POOL_ID` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolIdentity {
    /// `POOL_ID`.
    pub id: String,
    /// `POOL_ID_HEX`, lower-cased.
    pub id_hex: Option<String>,
    /// `POOL_NAME`.
    pub name: Option<String>,
    /// `POOL_TICKER`.
    pub ticker: Option<String>,
}

/// `APPLICATION_TYPE` (the CardanoForgeCluster schema's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplicationType {
    /// `block-producer`.
    BlockProducer,
    /// `relay-only`.
    RelayOnly,
    /// `monitoring`.
    Monitoring,
    /// `custom`.
    Custom,
}

impl ApplicationType {
    /// The name as written in `APPLICATION_TYPE` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::BlockProducer => "block-producer",
            ApplicationType::RelayOnly => "relay-only",
            ApplicationType::Monitoring => "monitoring",
            ApplicationType::Custom => "custom",
        }
    }
}

/// `CLUSTER_ENVIRONMENT` (the CardanoForgeCluster schema's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterEnvironment {
    /// `production`.
    Production,
    /// `staging`.
    Staging,
    /// `development`.
    Development,
    /// `testing`.
    Testing,
}

/// Cluster management.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterSettings {
    /// `ENABLE_CLUSTER_MANAGEMENT`.
    pub management_enabled: bool,
    /// `CLUSTER_REGION`.
    pub region: String,
    /// `CLUSTER_ENVIRONMENT`.
    pub environment: ClusterEnvironment,
    /// `CLUSTER_PRIORITY` (1..=999, lower wins).
    pub priority: u16,
}

/// Health probing of this cluster's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheckSettings {
    /// `HEALTH_CHECK_ENDPOINT`; probing is off when `None`.
    pub endpoint: Option<String>,
    /// `HEALTH_CHECK_INTERVAL`.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// `HEALTH_CHECK_TIMEOUT`. When not given, `min(10 s, interval)`.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// `HEALTH_CHECK_FAILURE_THRESHOLD` (1..=10).
    pub failure_threshold: u32,
}

/// A peer cluster reached through its own kubeconfig (docs/cluster-management.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerCluster {
    /// The peer's name (DNS-1123 subdomain), unique in the list.
    pub name: String,
    /// Absolute path of its kubeconfig.
    pub kubeconfig: PathBuf,
}

/// `LOG_LEVEL` (Python names accepted: WARNING -> Warn, CRITICAL/FATAL -> Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN` or `WARNING`.
    Warn,
    /// `ERROR`, `CRITICAL` or `FATAL`.
    Error,
}

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSettings {
    /// `LOG_LEVEL`.
    pub level: LogLevel,
    /// `LOG_FORMAT`.
    pub format: LogFormat,
}
