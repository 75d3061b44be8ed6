//! The key table: every setting declared once, with its environment-variable name, its
//! [`RawSettings`] field, the section it is documented in, its [`Format`] (which is also its
//! parser and its error message), its default and its meaning.
//!
//! From this one table come [`RawSettings`] (one field per key), [`ENV_VARS`] (what the loader
//! takes from the environment and a config file), one [`Key`] constant per key (what
//! `validate` reads through, so a default is written only here) and `docs/configuration.md`
//! (`forge-manager config --docs`).
//!
//! # Adding a key
//!
//! 1. Add one line to the `keys!` table below, in the section where operators should find it.
//! 2. Read it in the section of `validate` that owns it (`sections.rs`, or `timing.rs` for lease
//!    timing) with the getter that matches its format (`c.text(&keys::X)`, `c.secs(&keys::X)`,
//!    ...), and add the typed field to `ValidConfig` (`model.rs`).
//! 3. Regenerate the reference: `cargo run -q -- config --docs > docs/configuration.md`
//!    (`tests/config_cli.rs` fails until then).
//!
//! The environment variable, the config-file key and the [`RawSettings`] field follow from the
//! line; a command-line flag is optional (`ConfigFlags` in `src/settings.rs`).
//!
//! A key whose format does not match the getter that reads it is reported as a configuration
//! error on every run, so the tests catch it at once.
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a key is documented (the headings of `docs/configuration.md`, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Namespace, pod and object names.
    Kubernetes,
    /// The Lease and the Kubernetes API.
    LeaseTiming,
    /// The local cardano-node and its guard.
    Node,
    /// Credential files.
    Credentials,
    /// Cardano network and pool.
    NetworkAndPool,
    /// Cluster management across regions.
    Cluster,
    /// Quorum mode (the forge ticket).
    Quorum,
    /// Health probing.
    Health,
    /// Metrics and logging.
    Observability,
}

impl Section {
    /// The heading in `docs/configuration.md`.
    pub fn title(self) -> &'static str {
        match self {
            Section::Kubernetes => "Kubernetes objects",
            Section::LeaseTiming => "Lease timing and shutdown",
            Section::Node => "The node and its guard",
            Section::Credentials => "Credential files",
            Section::NetworkAndPool => "Network and pool",
            Section::Cluster => "Cluster management (several regions)",
            Section::Quorum => "Quorum mode (automatic failover across regions)",
            Section::Health => "Health checks",
            Section::Observability => "Metrics and logging",
        }
    }
}

/// What a value must look like. The getter that reads a key checks its value against this, and
/// both the error message and the documentation come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A DNS-1123 label.
    Label,
    /// A DNS-1123 subdomain.
    Subdomain,
    /// Text that is not blank.
    Text,
    /// An absolute path.
    Path,
    /// `true`/`false`, `1`/`0`, `yes`/`no`, any case.
    Bool,
    /// An integer in `min..=max`.
    Int {
        /// Least value.
        min: u64,
        /// Greatest value.
        max: u64,
    },
    /// A whole number of seconds in `1..=max`.
    WholeSeconds {
        /// Greatest value.
        max: u64,
    },
    /// A positive duration: seconds (`2`, `0.5`), `2s` or `500ms`, at most a day.
    Seconds,
    /// One of these names, any case.
    OneOf(&'static [&'static str]),
    /// Exactly the default: accepted for compatibility with the reference, any other value is
    /// refused.
    Only,
    /// Checked by its section (the text describes it).
    Custom(&'static str),
}

impl Format {
    /// The rule as an error message starts: "must be ...".
    pub(crate) fn expectation(self, default: &str) -> String {
        match self {
            Format::Label => {
                "must be a DNS-1123 label (1..63 of a-z, 0-9, '-', alphanumeric at both ends)".into()
            }
            Format::Subdomain => {
                "must be a DNS-1123 subdomain (lower-case a-z, 0-9, '-', '.', at most 253)".into()
            }
            Format::Text => "must not be empty".into(),
            Format::Path => "must be an absolute path".into(),
            Format::Bool => "must be one of true/false/1/0/yes/no".into(),
            Format::Int { min, max } => format!("must be an integer in {min}..={max}"),
            Format::WholeSeconds { max } => {
                format!("must be a positive integer number of seconds (at most {max})")
            }
            Format::Seconds => {
                "must be a positive number of seconds (e.g. 2, 0.5, 500ms; at most a day)".into()
            }
            Format::OneOf(names) => format!("must be one of {} (any case)", names.join(", ")),
            Format::Only => format!("only {default} is supported (the CardanoLeader CRD this binary serves)"),
            Format::Custom(what) => format!("must be {what}"),
        }
    }

    /// The rule as the documentation shows it.
    pub fn describe(self) -> String {
        match self {
            Format::Label => "DNS-1123 label".into(),
            Format::Subdomain => "DNS-1123 subdomain".into(),
            Format::Text => "text, not blank".into(),
            Format::Path => "absolute path".into(),
            Format::Bool => "`true`/`false` (also `1`/`0`, `yes`/`no`)".into(),
            Format::Int { min, max } => format!("integer {min}..={max}"),
            Format::WholeSeconds { max } => format!("whole seconds, 1..={max}"),
            Format::Seconds => "seconds (`2`, `0.5`, `2s`, `500ms`)".into(),
            Format::OneOf(names) => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Format::Only => "only the default".into(),
            Format::Custom(what) => what.into(),
        }
    }
}

/// One setting: everything declared about it. Made only by the `keys!` table.
#[derive(Clone, Copy)]
pub struct Key {
    /// The environment variable (the reference sidecar's name where it had one). The config-file
    /// key and the [`RawSettings`] field are its snake_case.
    pub name: &'static str,
    /// The default as text (`""` when unset by default; a derived default is described in
    /// parentheses). The getters parse it, so it is the effective default too.
    pub default: &'static str,
    /// What it controls.
    pub meaning: &'static str,
    /// Its rule.
    pub format: Format,
    /// Where it is documented.
    pub section: Section,
    /// Its value in [`RawSettings`], as text (`None` when not given).
    pub(crate) given: fn(&RawSettings) -> Option<&str>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("default", &self.default)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The name this type had before the key table; the same thing.
pub type EnvVar = Key;

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

/// A raw value seen as one text, when it is one.
trait AsText {
    fn as_text(&self) -> Option<&str>;
}

impl AsText for String {
    fn as_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl AsText for StringList {
    fn as_text(&self) -> Option<&str> {
        match self {
            StringList::One(s) => Some(s),
            StringList::Many(_) => None,
        }
    }
}

/// Declares the keys: one line each, `NAME field[: Type] [Section, Format, "default"] "meaning";`
/// (the type is `String` unless given).
macro_rules! keys {
    (@ty) => { String };
    (@ty $ty:ty) => { $ty };
    ($( $name:ident $field:ident $(: $ty:ty)? [$section:ident, $format:expr, $default:literal] $meaning:literal; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: ", $meaning)]
            pub const $name: Key = Key {
                name: stringify!($name),
                default: $default,
                meaning: $meaning,
                format: $format,
                section: Section::$section,
                given: |raw| raw.$field.as_ref().and_then(AsText::as_text),
            };
        )*

        /// Every setting, in documentation order: the loader takes exactly these names from the
        /// environment and a config file and ignores all others.
        pub const ENV_VARS: &[Key] = &[$($name),*];

        /// Settings as they arrive, before validation: every key optional and textual (numbers
        /// from a file arrive as text too), so a bad value becomes an error naming its key rather
        /// than a deserialisation failure. `Some` means explicitly given (see the module docs).
        /// One field per [`ENV_VARS`] entry, named by the snake_case of its name.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RawSettings {
            $(
                #[doc = concat!("`", stringify!($name), "`: ", $meaning)]
                pub $field: Option<keys!(@ty $($ty)?)>,
            )*
            /// The host name, passed in by the loader (not a setting): the legacy default of the
            /// CardanoForgeCluster name when neither `CLUSTER_IDENTIFIER` nor `POOL_ID` is given.
            #[serde(skip)]
            pub host_name: Option<String>,
        }
    };
}

use Format::*;

const DAY: u64 = 86_400;

#[rustfmt::skip]
keys! {
    NAMESPACE namespace [Kubernetes, Label, "default"]
        "Namespace of the Lease, CardanoLeader and CardanoForgeCluster.";
    POD_NAME pod_name [Kubernetes, Subdomain, ""]
        "Required. This pod: the Lease holder identity and the CardanoLeader's leaderPod (set it from metadata.name).";
    POD_UID pod_uid [Kubernetes, Label, ""]
        "This pod's UID (set it from metadata.uid). The Lease holder identity becomes POD_NAME_POD_UID, so a pod that replaces a force-deleted one of the same name waits out the old tenure instead of renewing it as its own.";
    NAMING_SCHEME naming_scheme [Kubernetes, OneOf(&["hashed", "reference"]), "hashed"]
        "How names derive from POOL_ID: hashed (unique per pool) or reference (the reference sidecar's names).";
    LEASE_NAME lease_name [Kubernetes, Subdomain, "cardano-node-leader"]
        "Lease name; derived from POOL_ID when unset.";
    CRD_NAME crd_name [Kubernetes, Subdomain, "cardano-leader"]
        "CardanoLeader object name; derived from POOL_ID when unset.";
    CRD_GROUP crd_group [Kubernetes, Only, "cardano.io"]
        "API group of the CardanoLeader resource. Accepted for compatibility with the reference; another value is refused.";
    CRD_VERSION crd_version [Kubernetes, Only, "v1"]
        "API version of the CardanoLeader resource. Accepted for compatibility; another value is refused.";
    CRD_PLURAL crd_plural [Kubernetes, Only, "cardanoleaders"]
        "Plural of the CardanoLeader resource. Accepted for compatibility; another value is refused.";

    LEASE_DURATION lease_duration [LeaseTiming, WholeSeconds { max: DAY }, "15"]
        "How long a lease is valid after its last renewal (the Lease's leaseDurationSeconds).";
    RENEW_DEADLINE renew_deadline [LeaseTiming, Seconds, "10"]
        "A leader that has not renewed for this long stops forging and gives up the lease.";
    RETRY_PERIOD retry_period [LeaseTiming, Seconds, "2"]
        "How often candidates retry and leaders renew.";
    SLEEP_INTERVAL sleep_interval [LeaseTiming, Seconds, "5"]
        "The reference's loop period: when given and RETRY_PERIOD is not, the retry period is min(SLEEP_INTERVAL, 2 s).";
    API_TIMEOUT api_timeout [LeaseTiming, Seconds, "2"]
        "Timeout of each Kubernetes API request.";
    SHUTDOWN_TIMEOUT shutdown_timeout [LeaseTiming, Seconds, "10"]
        "On SIGTERM: stop forging, release the lease and exit within this (keep it below terminationGracePeriodSeconds).";

    NODE_SOCKET node_socket [Node, Path, "/ipc/node.socket"]
        "cardano-node's socket: the node is ready when a process of CARDANO_NODE_PROCESS_NAME serves it.";
    CARDANO_NODE_PROCESS_NAME cardano_node_process_name [Node, Text, "cardano-node"]
        "The node process to find and signal (SIGHUP).";
    SOCKET_WAIT_TIMEOUT socket_wait_timeout [Node, Seconds, "600"]
        "How long a node start may take: without the node guard, a leader's reload is re-sent for this long after the node comes up.";
    DISABLE_SOCKET_CHECK disable_socket_check [Node, Bool, "false"]
        "Accepted for compatibility; only false: node readiness is always the NODE_SOCKET check, and true is refused.";
    NODE_STARTS_NON_PRODUCING node_starts_non_producing [Node, Bool, "true"]
        "The node runs --start-as-non-producing-node: credentials are installed at its start (it needs them to boot) without it forging. True by default, as the reference always installed them; set false for a node started without that flag (it would forge from its start).";
    GUARD_SOCKET guard_socket [Node, Path, "/ipc/forge-guard.sock"]
        "Socket of the node guard (docs/guard.md).";
    STOP_GRACE stop_grace [Node, Seconds, "2"]
        "The longest a reload may take in the node. Without the node guard: after a stopping SIGHUP, wait this long (or for the node's exit) before the stop counts as done. With or without it, a stopping reload is sent only once every earlier reload has had this long: the node handles each SIGHUP in a thread of its own, so an earlier start still under way could take effect after the stop and undo it. So a start, rotation or re-assert is sent only while at least this long is left before the renew deadline (and quorum mode's forge deadline), else after the next renewal; at most RENEW_DEADLINE - RETRY_PERIOD (TICKET_RENEW_DEADLINE - RETRY_PERIOD too in quorum mode), with a warning at start-up when that is less.";
    STOP_CONFIRM_TIMEOUT stop_confirm_timeout [Node, Seconds, "5"]
        "With the node guard: a stopping reload must be confirmed by the node within this, else the stop fails and nothing is handed over.";

    SOURCE_KES_KEY source_kes_key [Credentials, Path, "/secrets/kes.skey"]
        "KES signing key to install (the Secret mount).";
    SOURCE_VRF_KEY source_vrf_key [Credentials, Path, "/secrets/vrf.skey"]
        "VRF signing key to install.";
    SOURCE_OP_CERT source_op_cert [Credentials, Path, "/secrets/node.cert"]
        "Operational certificate to install.";
    TARGET_KES_KEY target_kes_key [Credentials, Path, "/opt/cardano/secrets/kes.skey"]
        "Where the node reads its KES key; not a SOURCE_* path, not another TARGET_* path.";
    TARGET_VRF_KEY target_vrf_key [Credentials, Path, "/opt/cardano/secrets/vrf.skey"]
        "Where the node reads its VRF key.";
    TARGET_OP_CERT target_op_cert [Credentials, Path, "/opt/cardano/secrets/node.cert"]
        "Where the node reads its operational certificate.";

    CARDANO_NETWORK cardano_network [NetworkAndPool, Text, "mainnet"]
        "Network name: metric label, derived names, CardanoForgeCluster spec.";
    NETWORK_MAGIC network_magic [NetworkAndPool, Custom("an unsigned 32-bit integer; for mainnet, preprod and preview their own magic"), "764824073"]
        "Network magic; defaults to the known network's magic.";
    SHELLEY_GENESIS shelley_genesis [NetworkAndPool, Path, ""]
        "Shelley genesis file (absolute path): KES period length and limit; built in for mainnet, preprod, preview.";
    POOL_ID pool_id [NetworkAndPool, Custom("text without whitespace"), ""]
        "Pool id (bech32). Enables per-pool derived names.";
    POOL_ID_HEX pool_id_hex [NetworkAndPool, Custom("56 hex digits"), ""]
        "Pool id as hex (lower-cased).";
    POOL_NAME pool_name [NetworkAndPool, Custom("text; at most 50 characters with cluster management"), ""]
        "Pool name for the CardanoForgeCluster.";
    POOL_TICKER pool_ticker [NetworkAndPool, Custom("1..5 of A-Z, 0-9 with cluster management"), ""]
        "Pool ticker for the CardanoForgeCluster and metrics.";
    APPLICATION_TYPE application_type [NetworkAndPool, OneOf(&["block-producer", "relay-only", "monitoring", "custom"]), "block-producer"]
        "What this node is (CardanoForgeCluster spec, metric label).";
    REQUIRE_SYNC require_sync [NetworkAndPool, Bool, "false"]
        "Only a node whose tip is within SYNC_TOLERANCE of the wall-clock slot contends and forges; a forger that falls behind hands over (docs/cardano.md). Needs the network's slots: built in, or SHELLEY_GENESIS.";
    SYNC_TOLERANCE sync_tolerance [NetworkAndPool, Seconds, "180"]
        "How far (as time) the node's tip slot may be behind the wall-clock slot and still count as synced.";
    NODE_METRICS_URL node_metrics_url [NetworkAndPool, Custom("an http:// URL with a host (the node serves plain HTTP)"), "http://127.0.0.1:12798/metrics"]
        "cardano-node's Prometheus endpoint, read for its tip (cardano_node_metrics_slotNum_int); read only with REQUIRE_SYNC or when given.";
    SYNC_CHECK_INTERVAL sync_check_interval [NetworkAndPool, Seconds, "5"]
        "How often the node's tip is read.";
    LEADER_SCHEDULE leader_schedule [NetworkAndPool, Path, ""]
        "cncli leaderlog JSON of the pool (re-read when it changes): a planned handover waits while one of its slots starts within HANDOVER_QUIET.";
    HANDOVER_QUIET handover_quiet [NetworkAndPool, Seconds, "60"]
        "Quiet window before each of our leader slots in which a planned handover is held until the slot has passed.";

    ENABLE_CLUSTER_MANAGEMENT enable_cluster_management [Cluster, Bool, "false"]
        "Use the CardanoForgeCluster: one forger across regions by priority and health (docs/cluster-management.md).";
    CLUSTER_IDENTIFIER cluster_identifier [Cluster, Subdomain, "(host name)"]
        "CardanoForgeCluster name; wins over the name derived from POOL_ID.";
    CLUSTER_REGION cluster_region [Cluster, Text, "unknown"]
        "Region: part of the derived CardanoForgeCluster name and its spec.region (with cluster management: 2..20 of a-z, 0-9, '-').";
    CLUSTER_ENVIRONMENT cluster_environment [Cluster, OneOf(&["production", "staging", "development", "testing"]), "production"]
        "CardanoForgeCluster spec.environment.";
    CLUSTER_PRIORITY cluster_priority [Cluster, Int { min: 1, max: 999 }, "100"]
        "Base priority when the CardanoForgeCluster has none (lower wins).";
    PEER_CLUSTERS peer_clusters: StringList [Cluster, Custom("name=/abs/kubeconfig, comma-separated (a list in a file); names unique, not our own"), ""]
        "The other regions' clusters, each read through its own kubeconfig.";

    QUORUM_PARTICIPANTS quorum_participants: StringList [Quorum, Custom("name=/abs/kubeconfig, comma-separated (a list in a file); a witness as witness:name=/abs/kubeconfig; every PEER_CLUSTERS region listed, not our own; at least 3 participants with us"), ""]
        "Turns quorum mode on: the other participants of the forge ticket, each reached through a kubeconfig that may read and write Leases in NAMESPACE (docs/quorum.md). Our own region is always a participant, on our own API server.";
    TICKET_DURATION ticket_duration [Quorum, WholeSeconds { max: DAY }, "20"]
        "How long a forge ticket stays valid after its last renewal; at least LEASE_DURATION.";
    TICKET_RENEW_DEADLINE ticket_renew_deadline [Quorum, Seconds, "12"]
        "A holder counts a ticket as held for this long after its last successful write was sent, and stops forging before fewer than a majority are held; below TICKET_DURATION by the node's stop and a 1 % clock-rate difference.";
    QUORUM_BREAK_GLASS quorum_break_glass [Quorum, Bool, "false"]
        "Break glass: with quorum mode on, an override forcing Enabled forges without a majority of the tickets (cluster management's own rule applies instead). Logged at warn on every renewal and exported as cardano_forge_quorum_break_glass; two forging regions are then the operator's responsibility.";

    HEALTH_CHECK_ENDPOINT health_check_endpoint [Health, Custom("an http:// or https:// URL with a host"), ""]
        "URL probed for this cluster's health; no probing when unset.";
    HEALTH_CHECK_INTERVAL health_check_interval [Health, Seconds, "30"]
        "Time between health probes.";
    HEALTH_CHECK_TIMEOUT health_check_timeout [Health, Seconds, "10"]
        "Timeout of one health probe; at most HEALTH_CHECK_INTERVAL (when unset: the smaller of 10 s and the interval).";
    HEALTH_CHECK_FAILURE_THRESHOLD health_check_failure_threshold [Health, Int { min: 1, max: 10 }, "3"]
        "Consecutive failures before the cluster counts as unhealthy.";

    METRICS_PORT metrics_port [Observability, Int { min: 1, max: 65_535 }, "8000"]
        "HTTP port of /metrics, /health, /readyz, /startup-status and /status.";
    LOG_LEVEL log_level [Observability, OneOf(&["trace", "debug", "info", "warn", "warning", "error", "critical", "fatal"]), "INFO"]
        "Log level (Python names accepted: WARNING is warn, CRITICAL and FATAL are error).";
    LOG_FORMAT log_format [Observability, OneOf(&["text", "json"]), "text"]
        "text, or json (one object per line).";
}
