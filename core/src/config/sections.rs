//! The sections of `validate`, one function each, reading their keys through [`Check`]. Cross-key
//! rules live with the section that owns the keys.
use std::path::{Path, PathBuf};

use super::errors::Check;
use super::keys;
use super::model::*;
use super::parse::{fmt_dur, is_http_url, is_region};
use crate::naming::{self, NamingScheme};

/// Magic numbers of the well-known networks (the reference's table).
const KNOWN_MAGICS: &[(&str, u32)] = &[("mainnet", 764_824_073), ("preprod", 1), ("preview", 2)];

/// `POD_UID` (optional): the pod's UID, part of the Lease holder identity.
pub(crate) fn pod_uid(c: &mut Check) -> Option<String> {
    let v = c.optional(&keys::POD_UID)?;
    c.check_text(&keys::POD_UID, v);
    Some(v.to_owned())
}

/// `NAMESPACE` and `POD_NAME` (required).
pub(crate) fn identity(c: &mut Check) -> (String, String) {
    let namespace = c.text(&keys::NAMESPACE);
    let pod_name = match c.given(&keys::POD_NAME) {
        None => {
            c.push(
                keys::POD_NAME.name,
                "is required (the Lease holder identity; set it from metadata.name)",
            );
            String::new()
        }
        Some(v) => {
            c.check_text(&keys::POD_NAME, v);
            v.to_owned()
        }
    };
    (namespace, pod_name)
}

/// `CRD_GROUP`, `CRD_VERSION`, `CRD_PLURAL`: only the CardanoLeader CRD this binary serves.
pub(crate) fn crd(c: &mut Check) -> CrdCoordinates {
    CrdCoordinates {
        group: c.text(&keys::CRD_GROUP),
        version: c.text(&keys::CRD_VERSION),
        plural: c.text(&keys::CRD_PLURAL),
    }
}

/// The node keys. `DISABLE_SOCKET_CHECK=true` is refused: node readiness is the socket check.
pub(crate) fn node(c: &mut Check) -> NodeSettings {
    let socket = c.path(&keys::NODE_SOCKET);
    let socket_wait_timeout = c.secs(&keys::SOCKET_WAIT_TIMEOUT);
    let disable_socket_check = c.flag(&keys::DISABLE_SOCKET_CHECK);
    if disable_socket_check {
        c.push(
            keys::DISABLE_SOCKET_CHECK.name,
            format!(
                "only false is supported: a node counts as ready only when its NODE_SOCKET answers, so it cannot be skipped, got {:?}",
                c.given(&keys::DISABLE_SOCKET_CHECK).unwrap_or_default()
            ),
        );
    }
    NodeSettings {
        socket,
        socket_wait_timeout,
        disable_socket_check,
        process_name: c.text(&keys::CARDANO_NODE_PROCESS_NAME),
        starts_non_producing: c.flag(&keys::NODE_STARTS_NON_PRODUCING),
        guard_socket: c.path(&keys::GUARD_SOCKET),
        stop_grace: c.secs(&keys::STOP_GRACE),
        stop_confirm_timeout: c.secs(&keys::STOP_CONFIRM_TIMEOUT),
    }
}

/// Credential paths: absolute, and no target may be a source or another target.
pub(crate) fn credentials(c: &mut Check) -> CredentialSettings {
    let paths = CredentialSettings {
        source: CredentialFiles {
            kes: c.path(&keys::SOURCE_KES_KEY),
            vrf: c.path(&keys::SOURCE_VRF_KEY),
            opcert: c.path(&keys::SOURCE_OP_CERT),
        },
        target: CredentialFiles {
            kes: c.path(&keys::TARGET_KES_KEY),
            vrf: c.path(&keys::TARGET_VRF_KEY),
            opcert: c.path(&keys::TARGET_OP_CERT),
        },
    };
    let target_keys = [
        &keys::TARGET_KES_KEY,
        &keys::TARGET_VRF_KEY,
        &keys::TARGET_OP_CERT,
    ];
    let sources = paths.source.all();
    let targets = paths.target.all();
    for (i, (key, target)) in target_keys.iter().zip(targets).enumerate() {
        if sources.contains(&target) {
            c.push(key.name, format!("must not be one of the SOURCE_* paths (removing it would delete the source), got {target:?}"));
        } else if targets[..i].contains(&target) {
            c.push(
                key.name,
                format!("must differ from the other TARGET_* paths, got {target:?}"),
            );
        }
    }
    paths
}

/// `CARDANO_NETWORK`, `NETWORK_MAGIC` (a known network's own magic when not given) and
/// `SHELLEY_GENESIS` (when given).
pub(crate) fn network(c: &mut Check) -> NetworkSettings {
    let name = c.text(&keys::CARDANO_NETWORK);
    let known_magic = KNOWN_MAGICS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m);
    let fallback = keys::NETWORK_MAGIC.default.parse::<u32>().unwrap_or_default();
    let magic = match c.given(&keys::NETWORK_MAGIC) {
        None => known_magic.unwrap_or(fallback),
        Some(v) => match v.trim().parse::<u32>() {
            Err(_) => {
                c.push(
                    keys::NETWORK_MAGIC.name,
                    format!("must be an unsigned 32-bit integer, got {v:?}"),
                );
                0
            }
            Ok(m) => {
                if let Some(expected) = known_magic.filter(|k| *k != m) {
                    c.push(
                        keys::NETWORK_MAGIC.name,
                        format!("must be {expected} for CARDANO_NETWORK={name:?}, got {v:?}"),
                    );
                }
                m
            }
        },
    };
    let shelley_genesis = c
        .given(&keys::SHELLEY_GENESIS)
        .is_some()
        .then(|| c.path(&keys::SHELLEY_GENESIS));
    NetworkSettings {
        name,
        magic,
        shelley_genesis,
    }
}

/// Chain awareness: `REQUIRE_SYNC` (only where the network's slots are known), `SYNC_TOLERANCE`,
/// `NODE_METRICS_URL` (read only with `REQUIRE_SYNC` or when given), `SYNC_CHECK_INTERVAL`,
/// `LEADER_SCHEDULE`, `HANDOVER_QUIET`.
pub(crate) fn chain(c: &mut Check, network: &NetworkSettings) -> ChainSettings {
    let require_sync = c.flag(&keys::REQUIRE_SYNC);
    if require_sync
        && network.shelley_genesis.is_none()
        && crate::cardano::KesSchedule::builtin(&network.name).is_none()
    {
        c.push(
            keys::REQUIRE_SYNC.name,
            format!(
                "needs the wall-clock slot of network {:?}: set SHELLEY_GENESIS (built in only for mainnet, preprod, preview)",
                network.name
            ),
        );
    }
    let sync_tolerance = c.secs(&keys::SYNC_TOLERANCE);
    let given_url = c.optional(&keys::NODE_METRICS_URL);
    let url = given_url.unwrap_or(keys::NODE_METRICS_URL.default);
    if !url.starts_with("http://") || !is_http_url(url) {
        c.push(
            keys::NODE_METRICS_URL.name,
            format!("must be an http:// URL with a host, got {url:?}"),
        );
    }
    let node_metrics_url = (require_sync || given_url.is_some()).then(|| url.to_owned());
    let sync_check_interval = c.secs(&keys::SYNC_CHECK_INTERVAL);
    let leader_schedule = c
        .optional(&keys::LEADER_SCHEDULE)
        .is_some()
        .then(|| c.path(&keys::LEADER_SCHEDULE));
    let handover_quiet = c.secs(&keys::HANDOVER_QUIET);
    ChainSettings {
        require_sync,
        sync_tolerance,
        node_metrics_url,
        sync_check_interval,
        leader_schedule,
        handover_quiet,
    }
}

/// Cluster management (read before the pool: CardanoForgeCluster schema rules apply only when
/// it is enabled) and `APPLICATION_TYPE`.
pub(crate) fn cluster(c: &mut Check) -> (ClusterSettings, ApplicationType) {
    let management_enabled = c.flag(&keys::ENABLE_CLUSTER_MANAGEMENT);
    let region = c.text(&keys::CLUSTER_REGION);
    if management_enabled && !is_region(&region) {
        c.push(
            keys::CLUSTER_REGION.name,
            format!("must be 2..20 characters of a-z, 0-9 and '-' (CardanoForgeCluster spec.region), got {region:?}"),
        );
    }
    let environment = c.choice(
        &keys::CLUSTER_ENVIRONMENT,
        |n| match n {
            "production" => Some(ClusterEnvironment::Production),
            "staging" => Some(ClusterEnvironment::Staging),
            "development" => Some(ClusterEnvironment::Development),
            "testing" => Some(ClusterEnvironment::Testing),
            _ => None,
        },
        ClusterEnvironment::Production,
    );
    let priority = c.int(&keys::CLUSTER_PRIORITY) as u16;
    let application_type = c.choice(
        &keys::APPLICATION_TYPE,
        |n| match n {
            "block-producer" => Some(ApplicationType::BlockProducer),
            "relay-only" => Some(ApplicationType::RelayOnly),
            "monitoring" => Some(ApplicationType::Monitoring),
            "custom" => Some(ApplicationType::Custom),
            _ => None,
        },
        ApplicationType::BlockProducer,
    );
    let cluster = ClusterSettings {
        management_enabled,
        region,
        environment,
        priority,
    };
    (cluster, application_type)
}

/// The pool, when `POOL_ID` is given; the CardanoForgeCluster schema's limits on its name and
/// ticker apply when cluster management is on.
pub(crate) fn pool(c: &mut Check, management_enabled: bool) -> Option<PoolIdentity> {
    let id = c.optional(&keys::POOL_ID)?;
    if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
        c.push(
            keys::POOL_ID.name,
            format!("must not be blank or contain whitespace, got {id:?}"),
        );
    }
    let id_hex = c.optional(&keys::POOL_ID_HEX).map(|h| {
        let lower = h.to_ascii_lowercase();
        if lower.len() != 56 || !lower.chars().all(|ch| ch.is_ascii_hexdigit()) {
            c.push(
                keys::POOL_ID_HEX.name,
                format!("must be 56 hex digits (28 bytes), got {h:?}"),
            );
        }
        lower
    });
    let name = c.optional(&keys::POOL_NAME).map(str::to_owned);
    if management_enabled
        && let Some(n) = &name
        && n.chars().count() > 50
    {
        c.push(
            keys::POOL_NAME.name,
            format!("must be at most 50 characters (CardanoForgeCluster spec.pool.name), got {n:?}"),
        );
    }
    let ticker = c.optional(&keys::POOL_TICKER).map(str::to_owned);
    let ticker_ok = |t: &str| {
        (1..=5).contains(&t.len()) && t.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
    };
    if management_enabled
        && let Some(t) = &ticker
        && !ticker_ok(t)
    {
        c.push(
            keys::POOL_TICKER.name,
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

/// `NAMING_SCHEME` and the effective names. Explicit names win; otherwise names derive from
/// `POOL_ID`; otherwise the legacy defaults (the keys' defaults, and the host name or `POD_NAME`
/// for the cluster).
///
/// Unlike the reference, an explicit `CLUSTER_IDENTIFIER` also wins over the `POOL_ID`-derived
/// cluster name (the reference ignored it then; its chart never sets it).
pub(crate) fn names(
    c: &mut Check,
    network: &str,
    pool: Option<&PoolIdentity>,
    region: &str,
    pod_name: &str,
) -> EffectiveNames {
    let scheme = c.choice(
        &keys::NAMING_SCHEME,
        |n| match n {
            "hashed" => Some(NamingScheme::Hashed),
            "reference" => Some(NamingScheme::Reference),
            _ => None,
        },
        NamingScheme::Hashed,
    );
    let pick = |c: &mut Check, key: &keys::Key, derived: Option<String>| match (c.given(key), derived) {
        (Some(v), _) => {
            c.check_text(key, v);
            (v.to_owned(), NameSource::Explicit)
        }
        (None, Some(d)) => (d, NameSource::Derived),
        (None, None) => (key.default.to_owned(), NameSource::Default),
    };
    let leader = pool.map(|p| naming::leader_name(network, &p.id, scheme));
    let (lease, lease_source) = pick(c, &keys::LEASE_NAME, leader.clone());
    let (leader, leader_source) = pick(c, &keys::CRD_NAME, leader);
    let (cluster, cluster_source) = match (c.optional(&keys::CLUSTER_IDENTIFIER), pool) {
        (Some(v), _) => {
            c.check_text(&keys::CLUSTER_IDENTIFIER, v);
            (v.to_owned(), NameSource::Explicit)
        }
        (None, Some(p)) => (
            naming::cluster_name(network, &p.id, region, scheme),
            NameSource::Derived,
        ),
        (None, None) => match c
            .raw
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

/// Health probing: the endpoint, and a timeout of at most the interval.
pub(crate) fn health(c: &mut Check) -> HealthCheckSettings {
    let endpoint = c.optional(&keys::HEALTH_CHECK_ENDPOINT).map(str::to_owned);
    if let Some(url) = &endpoint
        && !is_http_url(url)
    {
        c.push(
            keys::HEALTH_CHECK_ENDPOINT.name,
            format!("must be an http:// or https:// URL with a host, got {url:?}"),
        );
    }
    let interval = c.secs(&keys::HEALTH_CHECK_INTERVAL);
    let timeout = match c.given(&keys::HEALTH_CHECK_TIMEOUT) {
        None => interval.min(super::errors::default_secs(&keys::HEALTH_CHECK_TIMEOUT)),
        Some(_) => {
            let t = c.secs(&keys::HEALTH_CHECK_TIMEOUT);
            if !c.has_any(&[&keys::HEALTH_CHECK_TIMEOUT, &keys::HEALTH_CHECK_INTERVAL]) && t > interval {
                c.push(
                    keys::HEALTH_CHECK_TIMEOUT.name,
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
    HealthCheckSettings {
        endpoint,
        interval,
        timeout,
        failure_threshold: c.int(&keys::HEALTH_CHECK_FAILURE_THRESHOLD) as u32,
    }
}

/// `PEER_CLUSTERS`: `name=/abs/kubeconfig` entries, names unique and not our own.
pub(crate) fn peers(c: &mut Check, own: &str) -> Vec<PeerCluster> {
    let Some(list) = c.raw.peer_clusters.as_ref() else {
        return Vec::new();
    };
    let key = keys::PEER_CLUSTERS.name;
    let mut peers: Vec<PeerCluster> = Vec::new();
    for item in list.items() {
        let Some((name, path)) = item.split_once('=') else {
            c.push(
                key,
                format!("each entry must be name=/path/to/kubeconfig, got {item:?}"),
            );
            continue;
        };
        let (name, path) = (name.trim(), path.trim());
        if !naming::is_dns1123_subdomain(name) {
            c.push(
                key,
                format!("peer name must be a DNS-1123 subdomain, got {name:?} in {item:?}"),
            );
        } else if !Path::new(path).is_absolute() {
            c.push(
                key,
                format!("kubeconfig must be an absolute path, got {path:?} in {item:?}"),
            );
        } else if peers.iter().any(|p| p.name == name) {
            c.push(key, format!("peer names must be unique, got {name:?} twice"));
        } else if name == own {
            // Facts about a peer named like us would be dropped, and we would forge as if it
            // did not exist: two regions forging (S1).
            c.push(
                key,
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

/// `LOG_LEVEL` (Python names too) and `LOG_FORMAT`.
pub(crate) fn log(c: &mut Check) -> LogSettings {
    let level = c.choice(
        &keys::LOG_LEVEL,
        |n| match n {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" | "critical" | "fatal" => Some(LogLevel::Error),
            _ => None,
        },
        LogLevel::Info,
    );
    let format = c.choice(
        &keys::LOG_FORMAT,
        |n| match n {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        },
        LogFormat::Text,
    );
    LogSettings { level, format }
}
