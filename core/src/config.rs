//! Configuration model and its pure validation: [`RawSettings`] (what arrived, as strings) ->
//! [`validate`] -> [`ValidConfig`] (typed), or [`ConfigErrors`] naming every bad key.
//!
//! No I/O: the loader in `src/settings.rs` layers defaults < file < environment < flags into a
//! [`RawSettings`] and passes in the host name; nothing here reads the environment or files.
//!
//! # Keys
//!
//! Every key is named by its environment variable (the reference sidecar's names, so the image is
//! a drop-in replacement, DESIGN.md section 9). The config-file key and the [`RawSettings`] field
//! are the snake_case of that name (`LEASE_DURATION` -> `lease_duration`). [`ENV_VARS`] is the
//! one table of names, defaults and meanings.
//!
//! # "Explicitly given"
//!
//! A [`RawSettings`] field is `Some` exactly when some layer (file, environment, flag) gave the
//! key; the built-in defaults are applied here, in [`validate`], not by the loader. That is how
//! the derived names know whether `LEASE_NAME`/`CRD_NAME`/`CLUSTER_IDENTIFIER`/`NETWORK_MAGIC`
//! /`SLEEP_INTERVAL` were given. An empty string counts as given, except for the keys whose
//! reference default is empty (`POOL_ID`, `POOL_ID_HEX`, `POOL_NAME`, `POOL_TICKER`,
//! `HEALTH_CHECK_ENDPOINT`, `CLUSTER_IDENTIFIER`, `PEER_CLUSTERS`), where empty means unset.
//!
//! # Lease timing (DESIGN.md section 6)
//!
//! `LEASE_DURATION` (15 s) > `RENEW_DEADLINE` (10 s) > `RETRY_PERIOD` (2 s) x 1.2, as client-go
//! requires ([`JITTER_FACTOR`]); `API_TIMEOUT` (2 s) < `RENEW_DEADLINE`; and the renew deadline
//! leaves room for two complete renew attempts: `RETRY_PERIOD x 1.2 + 2 x API_TIMEOUT <=
//! RENEW_DEADLINE`, so one slow or failed request never costs a healthy leader its lease (G-14).
//!
//! `SLEEP_INTERVAL` was the reference's main-loop period (it polled; we watch). It is accepted and
//! validated as before, and only ever *shortens* the retry period: when `RETRY_PERIOD` is not
//! given, the retry period is `min(SLEEP_INTERVAL, 2 s)`. The reference chart always sets
//! `SLEEP_INTERVAL=5`, which therefore keeps the safe 2 s; a small `SLEEP_INTERVAL` (faster
//! polling wanted) still makes renewals faster. A large one never stretches them towards the lease
//! duration, which is how the reference could lose its lease while still forging (G-14).
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::naming::{self, NamingScheme};

/// client-go's `JitterFactor`: a retry waits up to `retry_period * 1.2`.
pub const JITTER_FACTOR: f64 = 1.2;
/// Upper bound for every duration setting: a day. Keeps arithmetic far from overflow; nothing
/// here sensibly waits longer.
const MAX_DURATION_SECS: f64 = 86_400.0;
/// Magic numbers of the well-known networks (the reference's table, cm.py:131-140).
const KNOWN_MAGICS: &[(&str, u32)] = &[("mainnet", 764_824_073), ("preprod", 1), ("preview", 2)];

/// Lease timing, client-go semantics (DESIGN.md section 6): `duration > renew_deadline >
/// retry_period * 1.2` once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaseTiming {
    /// How long a lease is valid after its last renewal (`LEASE_DURATION`).
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// A leader that has not renewed for this long stops forging and gives up.
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    /// How often candidates retry and leaders renew.
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One environment variable: its name, its default as text, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// The environment variable (the reference's name where it had one).
    pub name: &'static str,
    /// The default, as documentation (`""` when unset by default).
    pub default: &'static str,
    /// What it controls.
    pub meaning: &'static str,
}

/// Every setting, one line per environment variable: the documented mapping table (STYLE 4.6).
/// The loader takes exactly these names from the environment and ignores all others.
#[rustfmt::skip]
pub const ENV_VARS: &[EnvVar] = &[
    // --- the reference sidecar's variables (anchor inventory 1a) ---
    ev("NAMESPACE", "default", "Namespace of the Lease, CardanoLeader and CardanoForgeCluster (DNS-1123 label)."),
    ev("POD_NAME", "", "Required. This pod: Lease holder identity, CardanoLeader leaderPod."),
    ev("CRD_GROUP", "cardano.io", "API group of the CardanoLeader resource."),
    ev("CRD_VERSION", "v1", "API version of the CardanoLeader resource."),
    ev("CRD_PLURAL", "cardanoleaders", "Plural of the CardanoLeader resource."),
    ev("CRD_NAME", "cardano-leader", "CardanoLeader object name; derived from POOL_ID when unset."),
    ev("SLEEP_INTERVAL", "5", "Reference loop period; only shortens the retry period (module docs)."),
    ev("NODE_SOCKET", "/ipc/node.socket", "cardano-node's socket: node readiness."),
    ev("SOCKET_WAIT_TIMEOUT", "600", "Seconds to wait for the node socket at start."),
    ev("DISABLE_SOCKET_CHECK", "false", "Skip waiting for the node socket."),
    ev("LEASE_NAME", "cardano-node-leader", "Lease name; derived from POOL_ID when unset."),
    ev("LEASE_DURATION", "15", "Lease duration, whole seconds (Lease leaseDurationSeconds)."),
    ev("METRICS_PORT", "8000", "HTTP port of /metrics, /healthz, /readyz, /status."),
    ev("LOG_LEVEL", "INFO", "TRACE, DEBUG, INFO, WARN/WARNING, ERROR, CRITICAL/FATAL."),
    ev("SOURCE_KES_KEY", "/secrets/kes.skey", "KES signing key to install (absolute path)."),
    ev("SOURCE_VRF_KEY", "/secrets/vrf.skey", "VRF signing key to install (absolute path)."),
    ev("SOURCE_OP_CERT", "/secrets/node.cert", "Operational certificate to install (absolute path)."),
    ev("TARGET_KES_KEY", "/opt/cardano/secrets/kes.skey", "Where the node reads its KES key."),
    ev("TARGET_VRF_KEY", "/opt/cardano/secrets/vrf.skey", "Where the node reads its VRF key."),
    ev("TARGET_OP_CERT", "/opt/cardano/secrets/node.cert", "Where the node reads its op cert."),
    ev("CARDANO_NODE_PROCESS_NAME", "cardano-node", "Process to signal (SIGHUP)."),
    ev("CARDANO_NETWORK", "mainnet", "Network name: metric label, derived names, CFC spec."),
    ev("POOL_ID", "", "Pool id (bech32). Enables per-pool derived names."),
    ev("POOL_ID_HEX", "", "Pool id as 56 hex digits (lower-cased)."),
    ev("POOL_NAME", "", "Pool name for the CardanoForgeCluster."),
    ev("POOL_TICKER", "", "Pool ticker for the CardanoForgeCluster and metrics."),
    ev("NETWORK_MAGIC", "764824073", "Network magic; defaults to the known network's magic."),
    ev("APPLICATION_TYPE", "block-producer", "block-producer, relay-only, monitoring or custom."),
    ev("ENABLE_CLUSTER_MANAGEMENT", "false", "Use the CardanoForgeCluster (regions, priority)."),
    ev("CLUSTER_IDENTIFIER", "(host name)", "CardanoForgeCluster name; wins over the derived name."),
    ev("CLUSTER_REGION", "unknown", "Region: part of the derived CFC name, CFC spec.region."),
    ev("CLUSTER_ENVIRONMENT", "production", "production, staging, development or testing."),
    ev("CLUSTER_PRIORITY", "100", "Base priority 1..999 when the CFC has none (lower wins)."),
    ev("HEALTH_CHECK_ENDPOINT", "", "http(s) URL probed for this cluster's health."),
    ev("HEALTH_CHECK_INTERVAL", "30", "Seconds between health probes."),
    // --- ours ---
    ev("RENEW_DEADLINE", "10", "A leader that has not renewed for this long stops forging."),
    ev("RETRY_PERIOD", "2", "How often candidates retry and leaders renew (seconds)."),
    ev("API_TIMEOUT", "2", "Timeout of each Kubernetes API request (seconds)."),
    ev("HEALTH_CHECK_TIMEOUT", "10", "Timeout of one health probe; at most HEALTH_CHECK_INTERVAL."),
    ev("HEALTH_CHECK_FAILURE_THRESHOLD", "3", "Consecutive failures (1..10) before unhealthy."),
    ev("PEER_CLUSTERS", "", "Peers as name=/abs/kubeconfig, comma-separated (a list in a file)."),
    ev("GUARD_SOCKET", "/ipc/forge-guard.sock", "Socket of the node guard (DESIGN.md section 12)."),
    ev("LOG_FORMAT", "text", "text or json."),
    ev("NODE_STARTS_NON_PRODUCING", "false", "Node runs --start-as-non-producing-node: install credentials at start."),
    ev("NAMING_SCHEME", "hashed", "hashed (unique per pool) or reference (the reference's names)."),
    ev("SHUTDOWN_TIMEOUT", "10", "SIGTERM: stop forging, release the lease and exit within this (seconds)."),
    ev("STOP_GRACE", "2", "Without the node guard: after a stopping SIGHUP, wait this long (or for the node's exit) before the stop counts as done."),
    ev("SHELLEY_GENESIS", "", "Shelley genesis file (absolute path): KES period length and limit; built in for mainnet, preprod, preview."),
    ev("STOP_CONFIRM_TIMEOUT", "5", "With the node guard: a stopping reload must be confirmed by the node within this, else the stop fails and nothing is handed over."),
];

const fn ev(name: &'static str, default: &'static str, meaning: &'static str) -> EnvVar {
    EnvVar {
        name,
        default,
        meaning,
    }
}

/// A value that is a list in a file and a comma-separated string in the environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StringList {
    /// Comma-separated (environment, flags).
    One(String),
    /// A list (config files).
    Many(Vec<String>),
}

impl StringList {
    /// The items, split on commas and trimmed, empty items dropped.
    pub fn items(&self) -> Vec<String> {
        let all: Vec<&str> = match self {
            Self::One(s) => s.split(',').collect(),
            Self::Many(v) => v.iter().flat_map(|s| s.split(',')).collect(),
        };
        all.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Settings as they arrive, before validation: every key optional and textual (numbers from a
/// file arrive as text too), so a bad value becomes an error naming its key rather than a
/// deserialisation failure. `Some` means explicitly given (see the module docs). Field names are
/// the snake_case of [`ENV_VARS`] names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct RawSettings {
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub crd_group: Option<String>,
    pub crd_version: Option<String>,
    pub crd_plural: Option<String>,
    pub crd_name: Option<String>,
    pub sleep_interval: Option<String>,
    pub node_socket: Option<String>,
    pub socket_wait_timeout: Option<String>,
    pub disable_socket_check: Option<String>,
    pub lease_name: Option<String>,
    pub lease_duration: Option<String>,
    pub metrics_port: Option<String>,
    pub log_level: Option<String>,
    pub source_kes_key: Option<String>,
    pub source_vrf_key: Option<String>,
    pub source_op_cert: Option<String>,
    pub target_kes_key: Option<String>,
    pub target_vrf_key: Option<String>,
    pub target_op_cert: Option<String>,
    pub cardano_node_process_name: Option<String>,
    pub cardano_network: Option<String>,
    pub pool_id: Option<String>,
    pub pool_id_hex: Option<String>,
    pub pool_name: Option<String>,
    pub pool_ticker: Option<String>,
    pub network_magic: Option<String>,
    pub application_type: Option<String>,
    pub enable_cluster_management: Option<String>,
    pub cluster_identifier: Option<String>,
    pub cluster_region: Option<String>,
    pub cluster_environment: Option<String>,
    pub cluster_priority: Option<String>,
    pub health_check_endpoint: Option<String>,
    pub health_check_interval: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub api_timeout: Option<String>,
    pub health_check_timeout: Option<String>,
    pub health_check_failure_threshold: Option<String>,
    pub peer_clusters: Option<StringList>,
    pub guard_socket: Option<String>,
    pub log_format: Option<String>,
    pub node_starts_non_producing: Option<String>,
    pub naming_scheme: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub stop_grace: Option<String>,
    pub stop_confirm_timeout: Option<String>,
    pub shelley_genesis: Option<String>,
    /// The host name, passed in by the loader (not a setting): the legacy default of the
    /// CardanoForgeCluster name when neither `CLUSTER_IDENTIFIER` nor `POOL_ID` is given.
    #[serde(skip)]
    pub host_name: Option<String>,
}

/// One bad key: its environment-variable name and what is wrong, including the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// The environment-variable name of the key (`LEASE_DURATION`).
    pub key: &'static str,
    /// What is wrong, quoting the value (`must be a positive integer number of seconds, got "abc"`).
    pub problem: String,
}

impl ConfigError {
    /// A bounded label for metrics and status reasons.
    pub fn kind(&self) -> &'static str {
        "invalid_config"
    }

    /// Invalid configuration is fatal: retrying reads the same values.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Every bad key, at most one error per key, in [`ENV_VARS`] order of discovery. Displays as one
/// line per key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The keys that have errors.
    pub fn keys(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.key).collect()
    }
}

/// The validated configuration: the only thing actors see (STYLE 4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidConfig {
    /// `NAMESPACE`.
    pub namespace: String,
    /// `POD_NAME`: the Lease holder identity.
    pub pod_name: String,
    /// `LEASE_DURATION`, `RENEW_DEADLINE`, `RETRY_PERIOD` (and `SLEEP_INTERVAL`, module docs).
    pub lease: LeaseTiming,
    /// `API_TIMEOUT`: per-request Kubernetes API timeout, below the renew deadline.
    #[serde(serialize_with = "ser_duration")]
    pub api_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`: on SIGTERM, stop forging, release the lease and exit within this
    /// (keep it below the pod's `terminationGracePeriodSeconds`).
    #[serde(serialize_with = "ser_duration")]
    pub shutdown_timeout: Duration,
    /// `SLEEP_INTERVAL` when it was given: reported, and used only as described in the module docs.
    #[serde(serialize_with = "ser_opt_duration")]
    pub legacy_sleep_interval: Option<Duration>,
    /// The effective Lease, CardanoLeader and CardanoForgeCluster names.
    pub names: EffectiveNames,
    /// `CRD_GROUP`, `CRD_VERSION`, `CRD_PLURAL` of the CardanoLeader resource.
    pub crd: CrdCoordinates,
    /// The node: socket, process, guard.
    pub node: NodeSettings,
    /// `SOURCE_*` and `TARGET_*` paths (never key material).
    pub credentials: CredentialPaths,
    /// `CARDANO_NETWORK`, `NETWORK_MAGIC`.
    pub network: NetworkSettings,
    /// `POOL_*`, when `POOL_ID` is set.
    pub pool: Option<PoolIdentity>,
    /// `APPLICATION_TYPE`.
    pub application_type: ApplicationType,
    /// `ENABLE_CLUSTER_MANAGEMENT`, `CLUSTER_*`.
    pub cluster: ClusterSettings,
    /// `HEALTH_CHECK_*`.
    pub health: HealthCheckSettings,
    /// `PEER_CLUSTERS`.
    pub peers: Vec<PeerCluster>,
    /// `METRICS_PORT`.
    pub metrics_port: u16,
    /// `LOG_LEVEL`, `LOG_FORMAT`.
    pub log: LogSettings,
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
    /// `DISABLE_SOCKET_CHECK`.
    pub disable_socket_check: bool,
    /// `CARDANO_NODE_PROCESS_NAME`.
    pub process_name: String,
    /// `NODE_STARTS_NON_PRODUCING`: the node runs `--start-as-non-producing-node`, so credentials
    /// may be present at its start (it needs them to boot) without it forging. Otherwise they are
    /// installed only for a leader (fixes G-3).
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

/// The three credential files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialFiles {
    /// KES signing key.
    pub kes_key: PathBuf,
    /// VRF signing key.
    pub vrf_key: PathBuf,
    /// Operational certificate.
    pub op_cert: PathBuf,
}

impl CredentialFiles {
    fn all(&self) -> [&Path; 3] {
        [&self.kes_key, &self.vrf_key, &self.op_cert]
    }
}

/// Source (Secret mount) and target (node's paths) credential files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialPaths {
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

/// A peer cluster reached through its own kubeconfig (DESIGN.md section 7).
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

/// Validates raw settings into a [`ValidConfig`], or returns every bad key (one error per key).
/// Pure: the host name arrives in [`RawSettings::host_name`].
pub fn validate(raw: &RawSettings) -> Result<ValidConfig, ConfigErrors> {
    let mut e = Errors::default();

    let namespace = label(&mut e, "NAMESPACE", &raw.namespace, "default");
    let pod_name = match raw.pod_name.as_deref() {
        None => {
            e.push(
                "POD_NAME",
                "is required (the Lease holder identity; set it from metadata.name)",
            );
            String::new()
        }
        Some(v) => subdomain(&mut e, "POD_NAME", v),
    };

    // Timing.
    let lease_secs = integer(
        &mut e,
        "LEASE_DURATION",
        &raw.lease_duration,
        15,
        1,
        MAX_DURATION_SECS as u64,
    );
    let duration = Duration::from_secs(lease_secs);
    let renew_deadline = seconds(&mut e, "RENEW_DEADLINE", &raw.renew_deadline, 10.0);
    let sleep_interval = raw
        .sleep_interval
        .as_ref()
        .map(|_| seconds(&mut e, "SLEEP_INTERVAL", &raw.sleep_interval, 5.0));
    let default_retry = Duration::from_secs(2);
    let retry_period = match (&raw.retry_period, sleep_interval) {
        (Some(_), _) => seconds(&mut e, "RETRY_PERIOD", &raw.retry_period, 2.0),
        (None, Some(sleep)) if !e.has("SLEEP_INTERVAL") => sleep.min(default_retry),
        (None, _) => default_retry,
    };
    let api_timeout = seconds(&mut e, "API_TIMEOUT", &raw.api_timeout, 2.0);
    let shutdown_timeout = seconds(&mut e, "SHUTDOWN_TIMEOUT", &raw.shutdown_timeout, 10.0);
    let lease = LeaseTiming {
        duration,
        renew_deadline,
        retry_period,
    };
    if !e.has_any(&[
        "LEASE_DURATION",
        "RENEW_DEADLINE",
        "RETRY_PERIOD",
        "SLEEP_INTERVAL",
        "API_TIMEOUT",
    ]) {
        for err in check_timing(&lease, api_timeout) {
            e.push(err.key, err.problem);
        }
    }

    // Names of the CardanoLeader resource.
    let crd = CrdCoordinates {
        group: subdomain_or(&mut e, "CRD_GROUP", &raw.crd_group, "cardano.io"),
        version: label(&mut e, "CRD_VERSION", &raw.crd_version, "v1"),
        plural: label(&mut e, "CRD_PLURAL", &raw.crd_plural, "cardanoleaders"),
    };

    // Node.
    let node = NodeSettings {
        socket: abs_path(&mut e, "NODE_SOCKET", &raw.node_socket, "/ipc/node.socket"),
        socket_wait_timeout: seconds(&mut e, "SOCKET_WAIT_TIMEOUT", &raw.socket_wait_timeout, 600.0),
        disable_socket_check: boolean(&mut e, "DISABLE_SOCKET_CHECK", &raw.disable_socket_check, false),
        process_name: non_empty(
            &mut e,
            "CARDANO_NODE_PROCESS_NAME",
            &raw.cardano_node_process_name,
            "cardano-node",
        ),
        starts_non_producing: boolean(
            &mut e,
            "NODE_STARTS_NON_PRODUCING",
            &raw.node_starts_non_producing,
            false,
        ),
        guard_socket: abs_path(&mut e, "GUARD_SOCKET", &raw.guard_socket, "/ipc/forge-guard.sock"),
        stop_grace: seconds(&mut e, "STOP_GRACE", &raw.stop_grace, 2.0),
        stop_confirm_timeout: seconds(&mut e, "STOP_CONFIRM_TIMEOUT", &raw.stop_confirm_timeout, 5.0),
    };

    // Credentials: absolute, and no target may be a source or another target.
    let credentials = CredentialPaths {
        source: CredentialFiles {
            kes_key: abs_path(&mut e, "SOURCE_KES_KEY", &raw.source_kes_key, "/secrets/kes.skey"),
            vrf_key: abs_path(&mut e, "SOURCE_VRF_KEY", &raw.source_vrf_key, "/secrets/vrf.skey"),
            op_cert: abs_path(
                &mut e,
                "SOURCE_OP_CERT",
                &raw.source_op_cert,
                "/secrets/node.cert",
            ),
        },
        target: CredentialFiles {
            kes_key: abs_path(
                &mut e,
                "TARGET_KES_KEY",
                &raw.target_kes_key,
                "/opt/cardano/secrets/kes.skey",
            ),
            vrf_key: abs_path(
                &mut e,
                "TARGET_VRF_KEY",
                &raw.target_vrf_key,
                "/opt/cardano/secrets/vrf.skey",
            ),
            op_cert: abs_path(
                &mut e,
                "TARGET_OP_CERT",
                &raw.target_op_cert,
                "/opt/cardano/secrets/node.cert",
            ),
        },
    };
    check_distinct_targets(&mut e, &credentials);

    // Network.
    let network_name = non_empty(&mut e, "CARDANO_NETWORK", &raw.cardano_network, "mainnet");
    let known_magic = KNOWN_MAGICS
        .iter()
        .find(|(n, _)| *n == network_name)
        .map(|(_, m)| *m);
    let magic = match raw.network_magic.as_deref() {
        None => known_magic.unwrap_or(764_824_073),
        Some(v) => match v.trim().parse::<u32>() {
            Err(_) => {
                e.push(
                    "NETWORK_MAGIC",
                    format!("must be an unsigned 32-bit integer, got {v:?}"),
                );
                0
            }
            Ok(m) => {
                if let Some(expected) = known_magic.filter(|k| *k != m) {
                    e.push(
                        "NETWORK_MAGIC",
                        format!("must be {expected} for CARDANO_NETWORK={network_name:?}, got {v:?}"),
                    );
                }
                m
            }
        },
    };
    let shelley_genesis = raw
        .shelley_genesis
        .as_ref()
        .map(|_| abs_path(&mut e, "SHELLEY_GENESIS", &raw.shelley_genesis, ""));
    let network = NetworkSettings {
        name: network_name,
        magic,
        shelley_genesis,
    };

    // Cluster management (needed before the pool: CFC-schema rules apply only when enabled).
    let management_enabled = boolean(
        &mut e,
        "ENABLE_CLUSTER_MANAGEMENT",
        &raw.enable_cluster_management,
        false,
    );
    let region = non_empty(&mut e, "CLUSTER_REGION", &raw.cluster_region, "unknown");
    if management_enabled && !is_region(&region) {
        e.push(
            "CLUSTER_REGION",
            format!("must be 2..20 characters of a-z, 0-9 and '-' (CardanoForgeCluster spec.region), got {region:?}"),
        );
    }
    let environment = one_of(
        &mut e,
        "CLUSTER_ENVIRONMENT",
        &raw.cluster_environment,
        ClusterEnvironment::Production,
        &[
            ("production", ClusterEnvironment::Production),
            ("staging", ClusterEnvironment::Staging),
            ("development", ClusterEnvironment::Development),
            ("testing", ClusterEnvironment::Testing),
        ],
    );
    let priority = integer(&mut e, "CLUSTER_PRIORITY", &raw.cluster_priority, 100, 1, 999) as u16;
    let application_type = one_of(
        &mut e,
        "APPLICATION_TYPE",
        &raw.application_type,
        ApplicationType::BlockProducer,
        &[
            ("block-producer", ApplicationType::BlockProducer),
            ("relay-only", ApplicationType::RelayOnly),
            ("monitoring", ApplicationType::Monitoring),
            ("custom", ApplicationType::Custom),
        ],
    );

    // Pool.
    let pool = pool_identity(&mut e, raw, management_enabled);

    // Names.
    let scheme = one_of(
        &mut e,
        "NAMING_SCHEME",
        &raw.naming_scheme,
        NamingScheme::Hashed,
        &[
            ("hashed", NamingScheme::Hashed),
            ("reference", NamingScheme::Reference),
        ],
    );
    let names = effective_names(
        &mut e,
        raw,
        scheme,
        &network.name,
        pool.as_ref(),
        &region,
        &pod_name,
    );

    // Health.
    let endpoint = optional(&raw.health_check_endpoint).map(str::to_owned);
    if let Some(url) = &endpoint
        && !is_http_url(url)
    {
        e.push(
            "HEALTH_CHECK_ENDPOINT",
            format!("must be an http:// or https:// URL with a host, got {url:?}"),
        );
    }
    let interval = seconds(&mut e, "HEALTH_CHECK_INTERVAL", &raw.health_check_interval, 30.0);
    let timeout = match &raw.health_check_timeout {
        None => interval.min(Duration::from_secs(10)),
        Some(_) => {
            let t = seconds(&mut e, "HEALTH_CHECK_TIMEOUT", &raw.health_check_timeout, 10.0);
            if !e.has_any(&["HEALTH_CHECK_TIMEOUT", "HEALTH_CHECK_INTERVAL"]) && t > interval {
                e.push(
                    "HEALTH_CHECK_TIMEOUT",
                    format!(
                        "must be at most HEALTH_CHECK_INTERVAL ({}), got {}",
                        fmt_dur(interval),
                        fmt_dur(t)
                    ),
                );
            }
            t
        }
    };
    let failure_threshold = integer(
        &mut e,
        "HEALTH_CHECK_FAILURE_THRESHOLD",
        &raw.health_check_failure_threshold,
        3,
        1,
        10,
    ) as u32;
    let health = HealthCheckSettings {
        endpoint,
        interval,
        timeout,
        failure_threshold,
    };

    let peers = peer_clusters(&mut e, raw.peer_clusters.as_ref(), &names.cluster);
    let metrics_port = integer(&mut e, "METRICS_PORT", &raw.metrics_port, 8000, 1, 65_535) as u16;
    let log = LogSettings {
        level: one_of(
            &mut e,
            "LOG_LEVEL",
            &raw.log_level,
            LogLevel::Info,
            &[
                ("trace", LogLevel::Trace),
                ("debug", LogLevel::Debug),
                ("info", LogLevel::Info),
                ("warn", LogLevel::Warn),
                ("warning", LogLevel::Warn),
                ("error", LogLevel::Error),
                ("critical", LogLevel::Error),
                ("fatal", LogLevel::Error),
            ],
        ),
        format: one_of(
            &mut e,
            "LOG_FORMAT",
            &raw.log_format,
            LogFormat::Text,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        ),
    };

    if !e.0.is_empty() {
        return Err(ConfigErrors(e.0));
    }
    Ok(ValidConfig {
        namespace,
        pod_name,
        lease,
        api_timeout,
        shutdown_timeout,
        legacy_sleep_interval: sleep_interval,
        names,
        crd,
        node,
        credentials,
        network,
        pool,
        application_type,
        cluster: ClusterSettings {
            management_enabled,
            region,
            environment,
            priority,
        },
        health,
        peers,
        metrics_port,
        log,
    })
}

/// The least margin between `RENEW_DEADLINE` and `LEASE_DURATION`: a leader stops at its renew
/// deadline, and its node must have stopped before any other pod can see the lease expire. Without
/// the node guard the margin must also exceed the node's slowest reload (docs/configuration.md).
pub const MIN_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// The lease timing rules (module docs), one error per key: `RENEW_DEADLINE < LEASE_DURATION`
/// by at least [`MIN_DEADLINE_MARGIN`];
/// `RETRY_PERIOD x 1.2 < RENEW_DEADLINE`; `API_TIMEOUT < RENEW_DEADLINE`; and two full renew
/// attempts fit: `RETRY_PERIOD x 1.2 + 2 x API_TIMEOUT <= RENEW_DEADLINE`. Also usable by tests
/// and the simulator to check hand-made timings.
pub fn check_timing(t: &LeaseTiming, api_timeout: Duration) -> Vec<ConfigError> {
    let mut e = Errors::default();
    let zero = [
        ("LEASE_DURATION", t.duration),
        ("RENEW_DEADLINE", t.renew_deadline),
    ];
    let more = [("RETRY_PERIOD", t.retry_period), ("API_TIMEOUT", api_timeout)];
    for (key, d) in zero.into_iter().chain(more) {
        if d.is_zero() {
            e.push(key, "must be greater than zero, got 0");
        }
    }
    if !e.0.is_empty() {
        return e.0;
    }
    if t.renew_deadline >= t.duration {
        e.push(
            "RENEW_DEADLINE",
            format!(
                "must be less than LEASE_DURATION ({}), got {}: a leader must give up before its lease can pass on",
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline)
            ),
        );
    } else if t.duration - t.renew_deadline < MIN_DEADLINE_MARGIN {
        e.push(
            "RENEW_DEADLINE",
            format!(
                "must be at least {} below LEASE_DURATION ({}), got {}: a leader stops at its renew deadline and its node needs that margin to stop before the lease can pass on",
                fmt_dur(MIN_DEADLINE_MARGIN),
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline)
            ),
        );
    }
    let jittered = t.retry_period.mul_f64(JITTER_FACTOR);
    if jittered >= t.renew_deadline {
        e.push(
            "RETRY_PERIOD",
            format!(
                "x {JITTER_FACTOR} jitter must be less than RENEW_DEADLINE ({}), got {} (x {JITTER_FACTOR} = {})",
                fmt_dur(t.renew_deadline),
                fmt_dur(t.retry_period),
                fmt_dur(jittered)
            ),
        );
    }
    if api_timeout >= t.renew_deadline {
        e.push(
            "API_TIMEOUT",
            format!(
                "must be less than RENEW_DEADLINE ({}), got {}",
                fmt_dur(t.renew_deadline),
                fmt_dur(api_timeout)
            ),
        );
    }
    let two_attempts = jittered + api_timeout * 2;
    if two_attempts > t.renew_deadline {
        e.push(
            "RENEW_DEADLINE",
            format!(
                "must leave room for two renew attempts (RETRY_PERIOD x {JITTER_FACTOR} + 2 x API_TIMEOUT = {}), got {}",
                fmt_dur(two_attempts),
                fmt_dur(t.renew_deadline)
            ),
        );
    }
    e.0
}

/// Error collector keeping the first error per key.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, key: &'static str, problem: impl Into<String>) {
        if !self.has(key) {
            self.0.push(ConfigError {
                key,
                problem: problem.into(),
            });
        }
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|err| err.key == key)
    }

    fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.has(k))
    }
}

/// The value if set and non-empty (for keys whose reference default is empty).
fn optional(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().filter(|s| !s.is_empty())
}

fn label(e: &mut Errors, key: &'static str, raw: &Option<String>, default: &str) -> String {
    let v = raw.as_deref().unwrap_or(default);
    if !naming::is_dns1123_label(v) {
        e.push(
            key,
            format!(
                "must be a DNS-1123 label (1..63 of a-z, 0-9, '-', alphanumeric at both ends), got {v:?}"
            ),
        );
    }
    v.to_owned()
}

fn subdomain(e: &mut Errors, key: &'static str, v: &str) -> String {
    if !naming::is_dns1123_subdomain(v) {
        e.push(
            key,
            format!("must be a DNS-1123 subdomain (lower-case a-z, 0-9, '-', '.', at most 253), got {v:?}"),
        );
    }
    v.to_owned()
}

fn subdomain_or(e: &mut Errors, key: &'static str, raw: &Option<String>, default: &str) -> String {
    subdomain(e, key, raw.as_deref().unwrap_or(default))
}

fn non_empty(e: &mut Errors, key: &'static str, raw: &Option<String>, default: &str) -> String {
    let v = raw.as_deref().unwrap_or(default);
    if v.trim().is_empty() {
        e.push(key, format!("must not be empty, got {v:?}"));
    }
    v.to_owned()
}

fn abs_path(e: &mut Errors, key: &'static str, raw: &Option<String>, default: &str) -> PathBuf {
    let v = raw.as_deref().unwrap_or(default);
    if !Path::new(v).is_absolute() || v.trim() != v {
        e.push(key, format!("must be an absolute path, got {v:?}"));
    }
    PathBuf::from(v)
}

fn boolean(e: &mut Errors, key: &'static str, raw: &Option<String>, default: bool) -> bool {
    let Some(v) = raw.as_deref() else { return default };
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        _ => {
            e.push(key, format!("must be one of true/false/1/0/yes/no, got {v:?}"));
            default
        }
    }
}

fn integer(e: &mut Errors, key: &'static str, raw: &Option<String>, default: u64, min: u64, max: u64) -> u64 {
    let Some(v) = raw.as_deref() else { return default };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => n,
        _ if key == "LEASE_DURATION" => {
            e.push(
                key,
                format!("must be a positive integer number of seconds (at most {max}), got {v:?}"),
            );
            default
        }
        _ => {
            e.push(key, format!("must be an integer in {min}..={max}, got {v:?}"));
            default
        }
    }
}

/// A positive duration: `15`, `2.5` (seconds), `2s` or `500ms`, at most a day.
fn seconds(e: &mut Errors, key: &'static str, raw: &Option<String>, default: f64) -> Duration {
    let fallback = Duration::from_secs_f64(default);
    let Some(v) = raw.as_deref() else { return fallback };
    match parse_duration(v) {
        Some(d) => d,
        None => {
            e.push(
                key,
                format!(
                    "must be a positive number of seconds (e.g. 2, 0.5, 500ms; at most a day), got {v:?}"
                ),
            );
            fallback
        }
    }
}

fn parse_duration(v: &str) -> Option<Duration> {
    let t = v.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs = number.parse::<f64>().ok()? * scale;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECS) {
        return None;
    }
    let d = Duration::try_from_secs_f64(secs).ok()?;
    (d >= Duration::from_millis(1)).then_some(d)
}

fn one_of<T: Copy>(
    e: &mut Errors,
    key: &'static str,
    raw: &Option<String>,
    default: T,
    table: &[(&str, T)],
) -> T {
    let Some(v) = raw.as_deref() else { return default };
    let wanted = v.trim().to_ascii_lowercase();
    match table.iter().find(|(name, _)| *name == wanted) {
        Some((_, t)) => *t,
        None => {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            e.push(
                key,
                format!("must be one of {} (any case), got {v:?}", names.join(", ")),
            );
            default
        }
    }
}

fn check_distinct_targets(e: &mut Errors, c: &CredentialPaths) {
    let keys = ["TARGET_KES_KEY", "TARGET_VRF_KEY", "TARGET_OP_CERT"];
    let sources = c.source.all();
    let targets = c.target.all();
    for (i, (key, target)) in keys.iter().zip(targets).enumerate() {
        if sources.contains(&target) {
            e.push(key, format!("must not be one of the SOURCE_* paths (removing it would delete the source), got {target:?}"));
        } else if targets[..i].contains(&target) {
            e.push(
                key,
                format!("must differ from the other TARGET_* paths, got {target:?}"),
            );
        }
    }
}

fn pool_identity(e: &mut Errors, raw: &RawSettings, management_enabled: bool) -> Option<PoolIdentity> {
    let id = optional(&raw.pool_id)?;
    if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
        e.push(
            "POOL_ID",
            format!("must not be blank or contain whitespace, got {id:?}"),
        );
    }
    let id_hex = optional(&raw.pool_id_hex).map(|h| {
        let lower = h.to_ascii_lowercase();
        if lower.len() != 56 || !lower.chars().all(|c| c.is_ascii_hexdigit()) {
            e.push(
                "POOL_ID_HEX",
                format!("must be 56 hex digits (28 bytes), got {h:?}"),
            );
        }
        lower
    });
    let name = optional(&raw.pool_name).map(str::to_owned);
    if management_enabled
        && let Some(n) = &name
        && n.chars().count() > 50
    {
        e.push(
            "POOL_NAME",
            format!("must be at most 50 characters (CardanoForgeCluster spec.pool.name), got {n:?}"),
        );
    }
    let ticker = optional(&raw.pool_ticker).map(str::to_owned);
    let ticker_ok = |t: &str| {
        (1..=5).contains(&t.len()) && t.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if management_enabled
        && let Some(t) = &ticker
        && !ticker_ok(t)
    {
        e.push(
            "POOL_TICKER",
            format!("must be 1..5 of A-Z, 0-9 (CardanoForgeCluster spec.pool.ticker), got {t:?}"),
        );
    }
    Some(PoolIdentity {
        id: id.to_owned(),
        id_hex,
        name,
        ticker,
    })
}

/// Explicit names win; otherwise names derive from `POOL_ID`; otherwise the legacy defaults
/// (`cardano-node-leader`, `cardano-leader`, and the host name or `POD_NAME` for the cluster).
///
/// Unlike the reference, an explicit `CLUSTER_IDENTIFIER` also wins over the `POOL_ID`-derived
/// cluster name (the reference ignored it then; its chart never sets it).
fn effective_names(
    e: &mut Errors,
    raw: &RawSettings,
    scheme: NamingScheme,
    network: &str,
    pool: Option<&PoolIdentity>,
    region: &str,
    pod_name: &str,
) -> EffectiveNames {
    let pick = |e: &mut Errors,
                key: &'static str,
                given: &Option<String>,
                derived: Option<String>,
                default: &str| {
        match (given.as_deref(), derived) {
            (Some(v), _) => (subdomain(e, key, v), NameSource::Explicit),
            (None, Some(d)) => (d, NameSource::Derived),
            (None, None) => (default.to_owned(), NameSource::Default),
        }
    };
    let leader = pool.map(|p| naming::leader_name(network, &p.id, scheme));
    let (lease, lease_source) = pick(
        e,
        "LEASE_NAME",
        &raw.lease_name,
        leader.clone(),
        "cardano-node-leader",
    );
    let (leader, leader_source) = pick(e, "CRD_NAME", &raw.crd_name, leader, "cardano-leader");
    let (cluster, cluster_source) = match (optional(&raw.cluster_identifier), pool) {
        (Some(v), _) => (subdomain(e, "CLUSTER_IDENTIFIER", v), NameSource::Explicit),
        (None, Some(p)) => (
            naming::cluster_name(network, &p.id, region, scheme),
            NameSource::Derived,
        ),
        (None, None) => match raw
            .host_name
            .as_deref()
            .map(|h| naming::sanitize_label_part(h, naming::DNS1123_LABEL_MAX))
        {
            Some(h) if !h.is_empty() => (h, NameSource::HostName),
            _ => (pod_name.to_owned(), NameSource::Default),
        },
    };
    EffectiveNames {
        scheme,
        lease,
        lease_source,
        leader,
        leader_source,
        cluster,
        cluster_source,
    }
}

fn peer_clusters(e: &mut Errors, raw: Option<&StringList>, own: &str) -> Vec<PeerCluster> {
    let Some(list) = raw else { return Vec::new() };
    let mut peers: Vec<PeerCluster> = Vec::new();
    for item in list.items() {
        let Some((name, path)) = item.split_once('=') else {
            e.push(
                "PEER_CLUSTERS",
                format!("each entry must be name=/path/to/kubeconfig, got {item:?}"),
            );
            continue;
        };
        let (name, path) = (name.trim(), path.trim());
        if !naming::is_dns1123_subdomain(name) {
            e.push(
                "PEER_CLUSTERS",
                format!("peer name must be a DNS-1123 subdomain, got {name:?} in {item:?}"),
            );
        } else if !Path::new(path).is_absolute() {
            e.push(
                "PEER_CLUSTERS",
                format!("kubeconfig must be an absolute path, got {path:?} in {item:?}"),
            );
        } else if peers.iter().any(|p| p.name == name) {
            e.push(
                "PEER_CLUSTERS",
                format!("peer names must be unique, got {name:?} twice"),
            );
        } else if name == own {
            // Facts about a peer named like us would be dropped, and we would forge as if it
            // did not exist: two regions forging (S1).
            e.push(
                "PEER_CLUSTERS",
                format!(
                    "names our own CardanoForgeCluster {name:?}: each region needs its own name (CLUSTER_IDENTIFIER) and lists only the others"
                ),
            );
        }
        peers.push(PeerCluster {
            name: name.to_owned(),
            kubeconfig: PathBuf::from(path),
        });
    }
    peers
}

fn is_region(s: &str) -> bool {
    (2..=20).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `http://` or `https://`, a non-empty host, and no whitespace or control characters.
fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `15s`, `2.5s`, `0.5s`: seconds with as many decimals as needed.
pub fn fmt_dur(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_dur(*d))
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&fmt_dur(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "pool1abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn";
    const LONG_NAME: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
    const POOL_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef01234567";

    /// Raw settings from `(ENV_NAME, value)` pairs, as the loader would build them.
    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), serde_json::Value::String((*v).to_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).expect("known keys")
    }

    fn with_pod(pairs: &[(&str, &str)]) -> RawSettings {
        let mut all = vec![("POD_NAME", "forge-0")];
        all.extend_from_slice(pairs);
        raw(&all)
    }

    #[test]
    fn defaults_are_the_reference_defaults() {
        let c = validate(&with_pod(&[])).expect("valid");
        assert_eq!(c.namespace, "default");
        assert_eq!(c.lease, LeaseTiming::default());
        assert_eq!(c.api_timeout, Duration::from_secs(2));
        assert_eq!(c.names.lease, "cardano-node-leader");
        assert_eq!(c.names.leader, "cardano-leader");
        assert_eq!(c.names.cluster, "forge-0");
        assert_eq!(c.crd.group, "cardano.io");
        assert_eq!(c.crd.plural, "cardanoleaders");
        assert_eq!(c.node.socket, PathBuf::from("/ipc/node.socket"));
        assert_eq!(c.node.socket_wait_timeout, Duration::from_secs(600));
        assert_eq!(
            c.credentials.target.kes_key,
            PathBuf::from("/opt/cardano/secrets/kes.skey")
        );
        assert_eq!(
            c.network,
            NetworkSettings {
                name: "mainnet".into(),
                magic: 764_824_073,
                shelley_genesis: None,
            }
        );
        assert_eq!(c.metrics_port, 8000);
        assert_eq!(c.cluster.priority, 100);
        assert_eq!(c.health.interval, Duration::from_secs(30));
        assert_eq!(c.health.timeout, Duration::from_secs(10));
        assert_eq!(c.health.failure_threshold, 3);
        assert_eq!(
            c.log,
            LogSettings {
                level: LogLevel::Info,
                format: LogFormat::Text
            }
        );
        assert!(c.pool.is_none() && c.peers.is_empty() && !c.node.starts_non_producing);
    }

    #[test]
    fn every_env_var_is_a_raw_settings_field_and_back() {
        let all: Vec<(&str, &str)> = ENV_VARS.iter().map(|v| (v.name, "x")).collect();
        let _ = raw(&all);
        let serialised = serde_json::to_value(RawSettings::default()).expect("serialisable");
        let mut fields: Vec<String> = serialised.as_object().expect("object").keys().cloned().collect();
        let mut names: Vec<String> = ENV_VARS.iter().map(|v| v.name.to_ascii_lowercase()).collect();
        fields.sort();
        names.sort();
        assert_eq!(fields, names);
    }

    #[test]
    fn unknown_keys_are_rejected_by_raw_settings() {
        let v = serde_json::json!({"lease_duraton": "15"});
        let err = serde_json::from_value::<RawSettings>(v).expect_err("unknown");
        assert!(err.to_string().contains("lease_duraton"), "{err}");
    }

    /// Settings as `(ENV_NAME, value)` pairs, the key that must be named, and a fragment of the value.
    type Row = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );

    /// One row per rule.
    #[test]
    fn each_rule_rejects_its_bad_value_naming_the_key_and_value() {
        #[rustfmt::skip]
        let rows: &[Row] = &[
            (&[("LEASE_DURATION", "abc")], "LEASE_DURATION", "\"abc\""),
            (&[("LEASE_DURATION", "0")], "LEASE_DURATION", "\"0\""),
            (&[("LEASE_DURATION", "-5")], "LEASE_DURATION", "\"-5\""),
            (&[("LEASE_DURATION", "2.5")], "LEASE_DURATION", "\"2.5\""),
            (&[("LEASE_DURATION", "5")], "RENEW_DEADLINE", "LEASE_DURATION"),
            (&[("RENEW_DEADLINE", "15")], "RENEW_DEADLINE", "15s"),
            (&[("RENEW_DEADLINE", "14.9")], "RENEW_DEADLINE", "at least 1s below"),
            (&[("STOP_GRACE", "soon")], "STOP_GRACE", "\"soon\""),
            (&[("STOP_CONFIRM_TIMEOUT", "-1")], "STOP_CONFIRM_TIMEOUT", "\"-1\""),
            (&[("CLUSTER_IDENTIFIER", "pool-a"), ("PEER_CLUSTERS", "pool-a=/k/a")], "PEER_CLUSTERS", "our own"),
            (&[("RENEW_DEADLINE", "zero")], "RENEW_DEADLINE", "\"zero\""),
            (&[("RENEW_DEADLINE", "0")], "RENEW_DEADLINE", "\"0\""),
            (&[("RETRY_PERIOD", "9")], "RETRY_PERIOD", "9s"),
            (&[("RETRY_PERIOD", "-1")], "RETRY_PERIOD", "\"-1\""),
            (&[("RETRY_PERIOD", "4"), ("API_TIMEOUT", "3")], "RENEW_DEADLINE", "two renew attempts"),
            (&[("API_TIMEOUT", "10")], "API_TIMEOUT", "10s"),
            (&[("API_TIMEOUT", "0ms")], "API_TIMEOUT", "\"0ms\""),
            (&[("SLEEP_INTERVAL", "soon")], "SLEEP_INTERVAL", "\"soon\""),
            (&[("SOCKET_WAIT_TIMEOUT", "0")], "SOCKET_WAIT_TIMEOUT", "\"0\""),
            (&[("HEALTH_CHECK_INTERVAL", "NaN")], "HEALTH_CHECK_INTERVAL", "\"NaN\""),
            (&[("HEALTH_CHECK_TIMEOUT", "60")], "HEALTH_CHECK_TIMEOUT", "60s"),
            (&[("HEALTH_CHECK_FAILURE_THRESHOLD", "11")], "HEALTH_CHECK_FAILURE_THRESHOLD", "\"11\""),
            (&[("HEALTH_CHECK_FAILURE_THRESHOLD", "0")], "HEALTH_CHECK_FAILURE_THRESHOLD", "\"0\""),
            (&[("HEALTH_CHECK_ENDPOINT", "ftp://x/health")], "HEALTH_CHECK_ENDPOINT", "ftp://x"),
            (&[("HEALTH_CHECK_ENDPOINT", "http:///path")], "HEALTH_CHECK_ENDPOINT", "http:///path"),
            (&[("CARDANO_NETWORK", "preprod"), ("NETWORK_MAGIC", "2")], "NETWORK_MAGIC", "\"2\""),
            (&[("NETWORK_MAGIC", "1")], "NETWORK_MAGIC", "\"1\""),
            (&[("NETWORK_MAGIC", "magic")], "NETWORK_MAGIC", "\"magic\""),
            (&[("CARDANO_NETWORK", "")], "CARDANO_NETWORK", "\"\""),
            (&[("POOL_ID", POOL), ("POOL_ID_HEX", "xyz")], "POOL_ID_HEX", "\"xyz\""),
            (&[("POOL_ID", POOL), ("POOL_ID_HEX", "abcd")], "POOL_ID_HEX", "\"abcd\""),
            (&[("POOL_ID", "pool 1")], "POOL_ID", "\"pool 1\""),
            (&[("CLUSTER_PRIORITY", "0")], "CLUSTER_PRIORITY", "\"0\""),
            (&[("CLUSTER_PRIORITY", "1000")], "CLUSTER_PRIORITY", "\"1000\""),
            (&[("CLUSTER_PRIORITY", "high")], "CLUSTER_PRIORITY", "\"high\""),
            (&[("NAMESPACE", "")], "NAMESPACE", "\"\""),
            (&[("NAMESPACE", "My_NS")], "NAMESPACE", "\"My_NS\""),
            (&[("NAMESPACE", "a.b")], "NAMESPACE", "\"a.b\""),
            (&[("LEASE_NAME", "Leader")], "LEASE_NAME", "\"Leader\""),
            (&[("CRD_NAME", "leader_1")], "CRD_NAME", "\"leader_1\""),
            (&[("POD_NAME", "Forge_0")], "POD_NAME", "\"Forge_0\""),
            (&[("CRD_GROUP", "Cardano.IO")], "CRD_GROUP", "\"Cardano.IO\""),
            (&[("CRD_VERSION", "v1.0")], "CRD_VERSION", "\"v1.0\""),
            (&[("CLUSTER_IDENTIFIER", "Cluster A")], "CLUSTER_IDENTIFIER", "\"Cluster A\""),
            (&[("METRICS_PORT", "0")], "METRICS_PORT", "\"0\""),
            (&[("METRICS_PORT", "65536")], "METRICS_PORT", "\"65536\""),
            (&[("METRICS_PORT", "http")], "METRICS_PORT", "\"http\""),
            (&[("LOG_LEVEL", "verbose")], "LOG_LEVEL", "\"verbose\""),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT", "\"xml\""),
            (&[("DISABLE_SOCKET_CHECK", "maybe")], "DISABLE_SOCKET_CHECK", "\"maybe\""),
            (&[("ENABLE_CLUSTER_MANAGEMENT", "on")], "ENABLE_CLUSTER_MANAGEMENT", "\"on\""),
            (&[("NODE_STARTS_NON_PRODUCING", "2")], "NODE_STARTS_NON_PRODUCING", "\"2\""),
            (&[("SOURCE_KES_KEY", "secrets/kes.skey")], "SOURCE_KES_KEY", "\"secrets/kes.skey\""),
            (&[("SOURCE_VRF_KEY", "vrf.skey")], "SOURCE_VRF_KEY", "\"vrf.skey\""),
            (&[("SOURCE_OP_CERT", "./node.cert")], "SOURCE_OP_CERT", "\"./node.cert\""),
            (&[("TARGET_KES_KEY", "kes.skey")], "TARGET_KES_KEY", "\"kes.skey\""),
            (&[("TARGET_VRF_KEY", "")], "TARGET_VRF_KEY", "\"\""),
            (&[("TARGET_OP_CERT", "node.cert")], "TARGET_OP_CERT", "\"node.cert\""),
            (&[("TARGET_OP_CERT", "/secrets/node.cert")], "TARGET_OP_CERT", "/secrets/node.cert"),
            (&[("TARGET_VRF_KEY", "/opt/cardano/secrets/kes.skey")], "TARGET_VRF_KEY", "kes.skey"),
            (&[("NODE_SOCKET", "node.socket")], "NODE_SOCKET", "\"node.socket\""),
            (&[("GUARD_SOCKET", "guard.sock")], "GUARD_SOCKET", "\"guard.sock\""),
            (&[("CARDANO_NODE_PROCESS_NAME", " ")], "CARDANO_NODE_PROCESS_NAME", "\" \""),
            (&[("APPLICATION_TYPE", "relay")], "APPLICATION_TYPE", "\"relay\""),
            (&[("CLUSTER_ENVIRONMENT", "test")], "CLUSTER_ENVIRONMENT", "\"test\""),
            (&[("NAMING_SCHEME", "short")], "NAMING_SCHEME", "\"short\""),
            (&[("ENABLE_CLUSTER_MANAGEMENT", "true"), ("CLUSTER_REGION", "US_EAST")], "CLUSTER_REGION", "\"US_EAST\""),
            (&[("ENABLE_CLUSTER_MANAGEMENT", "true"), ("POOL_ID", POOL), ("POOL_TICKER", "toolong")], "POOL_TICKER", "\"toolong\""),
            (&[("ENABLE_CLUSTER_MANAGEMENT", "true"), ("POOL_ID", POOL), ("POOL_NAME", LONG_NAME)], "POOL_NAME", "nnnn"),
            (&[("PEER_CLUSTERS", "eu-west")], "PEER_CLUSTERS", "\"eu-west\""),
            (&[("PEER_CLUSTERS", "eu=kubeconfig")], "PEER_CLUSTERS", "\"kubeconfig\""),
            (&[("PEER_CLUSTERS", "EU=/k")], "PEER_CLUSTERS", "\"EU\""),
            (&[("PEER_CLUSTERS", "eu=/a,eu=/b")], "PEER_CLUSTERS", "\"eu\""),
        ];
        for (pairs, key, fragment) in rows {
            let err = validate(&with_pod(pairs)).expect_err(&format!("{pairs:?} must be rejected"));
            let line = err
                .0
                .iter()
                .find(|e| e.key == *key)
                .unwrap_or_else(|| panic!("{pairs:?}: no {key} in {err}"));
            assert!(line.to_string().starts_with(&format!("{key}: ")), "{line}");
            assert!(
                line.to_string().contains(fragment),
                "{pairs:?}: {line} lacks {fragment}"
            );
        }
    }

    #[test]
    fn a_missing_pod_name_is_an_error() {
        let err = validate(&raw(&[])).expect_err("POD_NAME is required");
        assert_eq!(err.keys(), vec!["POD_NAME"]);
    }

    #[test]
    fn all_bad_keys_are_reported_once_each() {
        let err = validate(&with_pod(&[
            ("LEASE_DURATION", "abc"),
            ("METRICS_PORT", "0"),
            ("LOG_LEVEL", "loud"),
            ("PEER_CLUSTERS", "a,b"),
        ]))
        .expect_err("four bad keys");
        assert_eq!(
            err.keys(),
            vec!["LEASE_DURATION", "PEER_CLUSTERS", "METRICS_PORT", "LOG_LEVEL"]
        );
        assert_eq!(err.to_string().lines().count(), 4);
    }

    #[test]
    fn booleans_accept_the_reference_spellings() {
        for (v, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("Yes", true),
            ("false", false),
            ("0", false),
            ("NO", false),
        ] {
            let c = validate(&with_pod(&[("DISABLE_SOCKET_CHECK", v)])).expect("valid");
            assert_eq!(c.node.disable_socket_check, expected, "{v}");
        }
    }

    #[test]
    fn log_levels_accept_python_names_in_any_case() {
        for (v, level) in [
            ("DEBUG", LogLevel::Debug),
            ("warning", LogLevel::Warn),
            ("Critical", LogLevel::Error),
            ("trace", LogLevel::Trace),
        ] {
            assert_eq!(
                validate(&with_pod(&[("LOG_LEVEL", v)])).expect("valid").log.level,
                level
            );
        }
    }

    #[test]
    fn durations_accept_seconds_fractions_and_milliseconds() {
        let c = validate(&with_pod(&[
            ("LEASE_DURATION", "3"),
            ("RENEW_DEADLINE", "2s"),
            ("RETRY_PERIOD", "0.25"),
            ("API_TIMEOUT", "500ms"),
        ]))
        .expect("valid fast timing");
        assert_eq!(c.lease.renew_deadline, Duration::from_secs(2));
        assert_eq!(c.lease.retry_period, Duration::from_millis(250));
        assert_eq!(c.api_timeout, Duration::from_millis(500));
    }

    #[test]
    fn sleep_interval_only_shortens_the_retry_period() {
        let chart = validate(&with_pod(&[("SLEEP_INTERVAL", "5")])).expect("valid");
        assert_eq!(chart.lease.retry_period, Duration::from_secs(2));
        assert_eq!(chart.legacy_sleep_interval, Some(Duration::from_secs(5)));
        let fast = validate(&with_pod(&[("SLEEP_INTERVAL", "1")])).expect("valid");
        assert_eq!(fast.lease.retry_period, Duration::from_secs(1));
        let explicit = validate(&with_pod(&[("SLEEP_INTERVAL", "1"), ("RETRY_PERIOD", "3")])).expect("valid");
        assert_eq!(explicit.lease.retry_period, Duration::from_secs(3));
        let slow = validate(&with_pod(&[("SLEEP_INTERVAL", "60")])).expect("valid");
        assert_eq!(slow.lease.retry_period, Duration::from_secs(2));
    }

    #[test]
    fn shelley_genesis_is_an_optional_absolute_path() {
        let c = validate(&with_pod(&[("SHELLEY_GENESIS", "/cfg/shelley-genesis.json")])).expect("valid");
        assert_eq!(
            c.network.shelley_genesis,
            Some(PathBuf::from("/cfg/shelley-genesis.json"))
        );
        let err = validate(&with_pod(&[("SHELLEY_GENESIS", "shelley.json")])).expect_err("relative");
        assert!(err.to_string().contains("SHELLEY_GENESIS"), "{err}");
    }

    #[test]
    fn known_networks_default_their_magic_and_custom_networks_take_any() {
        let c = validate(&with_pod(&[("CARDANO_NETWORK", "preview")])).expect("valid");
        assert_eq!(c.network.magic, 2);
        let c = validate(&with_pod(&[
            ("CARDANO_NETWORK", "sanchonet"),
            ("NETWORK_MAGIC", "4"),
        ]))
        .expect("valid");
        assert_eq!(c.network.magic, 4);
    }

    #[test]
    fn pool_id_derives_hashed_names_unless_names_are_explicit() {
        let c = validate(&with_pod(&[("POOL_ID", POOL), ("CLUSTER_REGION", "us-east-1")])).expect("valid");
        let hash = naming::pool_hash(POOL);
        assert_eq!(c.names.lease, format!("cardano-leader-mainnet-pool1abcde-{hash}"));
        assert_eq!(c.names.leader, c.names.lease);
        assert_eq!(c.names.cluster, format!("mainnet-pool1abcde-us-east-1-{hash}"));
        assert_eq!(
            (c.names.lease_source, c.names.cluster_source),
            (NameSource::Derived, NameSource::Derived)
        );

        let c = validate(&with_pod(&[
            ("POOL_ID", POOL),
            ("LEASE_NAME", "cardano-leader-mainnet-pool1abcde"),
            ("CLUSTER_IDENTIFIER", "my-cfc"),
        ]))
        .expect("valid");
        assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
        assert_eq!(c.names.lease_source, NameSource::Explicit);
        assert_eq!(c.names.leader_source, NameSource::Derived);
        assert_eq!(c.names.cluster, "my-cfc");
    }

    #[test]
    fn the_reference_scheme_gives_the_reference_names() {
        let c = validate(&with_pod(&[
            ("POOL_ID", POOL),
            ("CLUSTER_REGION", "us-east-1"),
            ("NAMING_SCHEME", "reference"),
        ]))
        .expect("valid");
        assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
        assert_eq!(c.names.cluster, "mainnet-pool1abcde-us-east-1");
    }

    #[test]
    fn the_cluster_name_falls_back_to_the_sanitised_host_name() {
        let mut r = with_pod(&[]);
        r.host_name = Some("Build_Host".into());
        let c = validate(&r).expect("valid");
        assert_eq!(
            (c.names.cluster.as_str(), c.names.cluster_source),
            ("build-host", NameSource::HostName)
        );
    }

    #[test]
    fn empty_optional_values_mean_unset() {
        let c = validate(&with_pod(&[
            ("POOL_ID", ""),
            ("HEALTH_CHECK_ENDPOINT", ""),
            ("PEER_CLUSTERS", ""),
        ]))
        .expect("valid");
        assert!(c.pool.is_none() && c.health.endpoint.is_none() && c.peers.is_empty());
    }

    #[test]
    fn peer_clusters_parse_from_a_string_or_a_list() {
        let c = validate(&with_pod(&[(
            "PEER_CLUSTERS",
            "eu-west=/etc/peers/eu, ap=/etc/peers/ap",
        )]))
        .expect("valid");
        assert_eq!(c.peers.len(), 2);
        assert_eq!(
            c.peers[1],
            PeerCluster {
                name: "ap".into(),
                kubeconfig: "/etc/peers/ap".into()
            }
        );
        let mut r = with_pod(&[]);
        r.peer_clusters = Some(StringList::Many(vec!["eu=/k/eu".into()]));
        assert_eq!(validate(&r).expect("valid").peers[0].name, "eu");
    }

    #[test]
    fn a_short_health_interval_clamps_the_default_timeout() {
        let c = validate(&with_pod(&[("HEALTH_CHECK_INTERVAL", "5")])).expect("valid");
        assert_eq!(c.health.timeout, Duration::from_secs(5));
    }

    #[test]
    fn pool_id_hex_is_lower_cased() {
        let c = validate(&with_pod(&[
            ("POOL_ID", POOL),
            ("POOL_ID_HEX", &POOL_HEX.to_uppercase()),
        ]))
        .expect("valid");
        assert_eq!(c.pool.and_then(|p| p.id_hex).as_deref(), Some(POOL_HEX));
    }

    #[test]
    fn the_reference_charts_env_blocks_are_accepted_unchanged() {
        let single: &[(&str, &str)] = &[
            ("NAMESPACE", "cardano"),
            ("POD_NAME", "cardano-node-0"),
            ("NODE_SOCKET", "/ipc/node.socket"),
            ("METRICS_PORT", "8000"),
            ("LOG_LEVEL", "INFO"),
            ("SLEEP_INTERVAL", "5"),
            ("SOCKET_WAIT_TIMEOUT", "600"),
            ("DISABLE_SOCKET_CHECK", "false"),
            ("SOURCE_KES_KEY", "/secrets/kes.skey"),
            ("SOURCE_VRF_KEY", "/secrets/vrf.skey"),
            ("SOURCE_OP_CERT", "/secrets/node.cert"),
            ("TARGET_KES_KEY", "/opt/cardano/secrets/kes.skey"),
            ("TARGET_VRF_KEY", "/opt/cardano/secrets/vrf.skey"),
            ("TARGET_OP_CERT", "/opt/cardano/secrets/node.cert"),
            ("LEASE_NAME", "cardano-node-leader"),
            ("LEASE_DURATION", "15"),
            ("CRD_GROUP", "cardano.io"),
            ("CRD_VERSION", "v1"),
            ("CRD_PLURAL", "cardanoleaders"),
            ("CRD_NAME", "cardano-node-leader"),
            ("CARDANO_NETWORK", "mainnet"),
            ("NETWORK_MAGIC", "764824073"),
        ];
        let c = validate(&raw(single)).expect("single-cluster chart env");
        assert_eq!(
            (c.names.lease.as_str(), c.names.leader.as_str()),
            ("cardano-node-leader", "cardano-node-leader")
        );
        let mut multi = single.to_vec();
        multi.retain(|(k, _)| *k != "LEASE_NAME" && *k != "CRD_NAME");
        multi.extend_from_slice(&[
            ("LEASE_NAME", "cardano-leader-mainnet-pool1abcde"),
            ("CRD_NAME", "cardano-leader-mainnet-pool1abcde"),
            ("POOL_ID", POOL),
            ("POOL_ID_HEX", POOL_HEX),
            ("POOL_NAME", "My Pool"),
            ("POOL_TICKER", "MYPL"),
            ("APPLICATION_TYPE", "block-producer"),
            ("ENABLE_CLUSTER_MANAGEMENT", "true"),
            ("CLUSTER_REGION", "us-east-1"),
            ("CLUSTER_PRIORITY", "1"),
            ("CLUSTER_ENVIRONMENT", "production"),
            (
                "HEALTH_CHECK_ENDPOINT",
                "http://cardano-node-health.cardano.svc:12798/health",
            ),
            ("HEALTH_CHECK_INTERVAL", "30"),
        ]);
        let c = validate(&raw(&multi)).expect("multi-tenant chart env");
        assert_eq!(c.names.lease, "cardano-leader-mainnet-pool1abcde");
        assert_eq!(c.cluster.priority, 1);
    }

    #[test]
    fn check_timing_accepts_the_defaults_and_names_the_offending_key() {
        assert!(check_timing(&LeaseTiming::default(), Duration::from_secs(2)).is_empty());
        let bad = LeaseTiming {
            retry_period: Duration::ZERO,
            ..LeaseTiming::default()
        };
        assert_eq!(check_timing(&bad, Duration::from_secs(2))[0].key, "RETRY_PERIOD");
    }

    #[test]
    fn valid_config_serialises_durations_as_seconds() {
        let c = validate(&with_pod(&[])).expect("valid");
        let yaml = serde_yaml::to_string(&c).expect("yaml");
        assert!(yaml.contains("renew_deadline: 10s"), "{yaml}");
        assert!(yaml.contains("lease: cardano-node-leader"), "{yaml}");
    }
}
