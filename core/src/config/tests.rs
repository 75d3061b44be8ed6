//! The configuration tests: defaults, one row per rule, the reference chart's env blocks.
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::naming;

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
        c.credentials.target.kes,
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
    assert!(c.pool.is_none() && c.peers.is_empty());
    assert!(
        c.node.starts_non_producing,
        "NODE_STARTS_NON_PRODUCING defaults to true, as the reference installed credentials at every start"
    );
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
        (&[("POD_UID", "Not_A_UID")], "POD_UID", "\"Not_A_UID\""),
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
        let c = validate(&with_pod(&[("NODE_STARTS_NON_PRODUCING", v)])).expect("valid");
        assert_eq!(c.node.starts_non_producing, expected, "{v}");
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

#[test]
fn every_default_in_the_key_table_passes_its_own_rule() {
    for key in ENV_VARS {
        if key.default.is_empty() || key.default.starts_with('(') {
            continue;
        }
        validate(&with_pod(&[(key.name, key.default)]))
            .unwrap_or_else(|e| panic!("{} = its default {:?}: {e}", key.name, key.default));
    }
}

#[test]
fn every_listed_choice_is_accepted_in_any_case() {
    for key in ENV_VARS {
        if let Format::OneOf(names) = key.format {
            for name in names {
                validate(&with_pod(&[(key.name, name)]))
                    .unwrap_or_else(|e| panic!("{}={name}: {e}", key.name));
                let upper = name.to_ascii_uppercase();
                validate(&with_pod(&[(key.name, &upper)]))
                    .unwrap_or_else(|e| panic!("{}={upper}: {e}", key.name));
            }
        }
    }
}

#[test]
fn the_crd_coordinates_accept_only_the_served_crd_and_say_so() {
    for (key, bad, only) in [
        ("CRD_GROUP", "example.com", "cardano.io"),
        ("CRD_VERSION", "v2", "v1"),
        ("CRD_PLURAL", "leaders", "cardanoleaders"),
    ] {
        let err = validate(&with_pod(&[(key, bad)])).expect_err("refused");
        assert_eq!(err.keys(), vec![key]);
        let line = err.to_string();
        assert!(
            line.starts_with(&format!("{key}: only {only} is supported"))
                && line.contains(&format!("{bad:?}")),
            "{line}"
        );
        validate(&with_pod(&[(key, only)])).expect("the served CRD is accepted");
    }
}

#[test]
fn disabling_the_socket_check_is_refused_naming_the_key() {
    for v in ["true", "YES", "1"] {
        let err = validate(&with_pod(&[("DISABLE_SOCKET_CHECK", v)])).expect_err("refused");
        assert_eq!(err.keys(), vec!["DISABLE_SOCKET_CHECK"]);
        assert!(err.to_string().contains("only false is supported"), "{err}");
    }
    for v in ["false", "0", "no"] {
        let c = validate(&with_pod(&[("DISABLE_SOCKET_CHECK", v)])).expect("false is accepted");
        assert!(!c.node.disable_socket_check);
    }
}

#[test]
fn the_reference_markdown_lists_every_key_with_its_default() {
    let md = reference_markdown();
    for key in ENV_VARS {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", key.name)))
            .unwrap_or_else(|| panic!("{} has no row", key.name));
        if !key.default.is_empty() {
            assert!(row.contains(key.default), "{row}");
        }
    }
}

#[test]
fn a_key_read_by_a_getter_that_does_not_fit_its_format_is_an_error_naming_it() {
    let raw = with_pod(&[]);
    let mut c = super::errors::Check::new(&raw);
    let _ = c.int(&keys::NODE_SOCKET);
    let _ = c.secs(&keys::NODE_SOCKET);
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert_eq!(c.errors[0].key, "NODE_SOCKET");
    assert!(
        c.errors[0].problem.contains("a bug in the key table"),
        "{}",
        c.errors[0]
    );
}

#[test]
fn chain_awareness_is_off_by_default_and_reads_its_keys() {
    let c = validate(&with_pod(&[])).expect("valid");
    assert!(!c.chain.require_sync);
    assert_eq!(c.chain.node_metrics_url, None, "the tip is not read unless asked");
    assert_eq!(c.chain.leader_schedule, None);
    assert_eq!(c.chain.handover_quiet, Duration::from_secs(60));
    assert_eq!(c.chain.sync_tolerance, Duration::from_secs(180));

    let c = validate(&with_pod(&[("REQUIRE_SYNC", "true")])).expect("valid");
    assert_eq!(
        c.chain.node_metrics_url.as_deref(),
        Some("http://127.0.0.1:12798/metrics"),
        "cardano-node's default Prometheus endpoint"
    );
    let c = validate(&with_pod(&[
        ("NODE_METRICS_URL", "http://10.0.0.1:9100/metrics"),
        ("LEADER_SCHEDULE", "/cncli/leaderlog.json"),
        ("HANDOVER_QUIET", "90"),
        ("SYNC_TOLERANCE", "30s"),
    ]))
    .expect("valid");
    assert_eq!(
        c.chain.node_metrics_url.as_deref(),
        Some("http://10.0.0.1:9100/metrics")
    );
    assert_eq!(
        c.chain.leader_schedule,
        Some(PathBuf::from("/cncli/leaderlog.json"))
    );
    assert_eq!(c.chain.handover_quiet, Duration::from_secs(90));
    assert_eq!(c.chain.sync_tolerance, Duration::from_secs(30));

    for (key, bad) in [
        ("NODE_METRICS_URL", "localhost:12798"),
        ("NODE_METRICS_URL", "https://node:12798/metrics"),
        ("LEADER_SCHEDULE", "leaderlog.json"),
        ("HANDOVER_QUIET", "soon"),
        ("SYNC_TOLERANCE", "-1"),
        ("REQUIRE_SYNC", "maybe"),
    ] {
        let err = validate(&with_pod(&[(key, bad)])).expect_err(key).to_string();
        assert!(err.contains(key) && err.contains(bad), "{err}");
    }
    // A custom network's slots come only from its genesis.
    let custom = [
        ("REQUIRE_SYNC", "true"),
        ("CARDANO_NETWORK", "sancho"),
        ("NETWORK_MAGIC", "4"),
    ];
    let err = validate(&with_pod(&custom)).expect_err("no slots").to_string();
    assert!(
        err.contains("REQUIRE_SYNC") && err.contains("SHELLEY_GENESIS"),
        "{err}"
    );
    let mut with_genesis = custom.to_vec();
    with_genesis.push(("SHELLEY_GENESIS", "/cfg/shelley-genesis.json"));
    assert!(
        validate(&with_pod(&with_genesis))
            .expect("valid")
            .chain
            .require_sync
    );
}

#[test]
fn the_lease_identity_carries_the_pod_uid_when_given() {
    let c = validate(&with_pod(&[])).expect("valid");
    assert_eq!(c.pod_uid, None);
    assert_eq!(c.lease_identity(), "forge-0");
    let uid = "7c6f0a3e-2b1d-4e59-9d0a-51c3b2a4f8e1";
    let c = validate(&with_pod(&[("POD_UID", uid)])).expect("valid");
    assert_eq!(c.pod_uid.as_deref(), Some(uid));
    assert_eq!(c.lease_identity(), format!("forge-0_{uid}"));
    assert_eq!(c.pod_name, "forge-0", "the pod name itself is unchanged");
}

/// A valid quorum set-up: two regions and a witness.
fn quorum_pairs<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("ENABLE_CLUSTER_MANAGEMENT", "true"),
        ("CLUSTER_IDENTIFIER", "east"),
        ("CLUSTER_REGION", "east"),
        ("PEER_CLUSTERS", "west=/peers/west"),
        (
            "QUORUM_PARTICIPANTS",
            "west=/tickets/west, witness:arbiter=/tickets/arbiter",
        ),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k, v));
    }
    pairs
}

#[test]
fn quorum_mode_is_off_unless_participants_are_given() {
    assert_eq!(validate(&with_pod(&[])).expect("valid").quorum, None);
    let q = validate(&with_pod(&quorum_pairs(&[])))
        .expect("valid")
        .quorum
        .expect("on");
    let names: Vec<(&str, bool, Option<&str>)> = q
        .participants
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.witness,
                p.kubeconfig.as_deref().and_then(|k| k.to_str()),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("east", false, None),
            ("west", false, Some("/tickets/west")),
            ("arbiter", true, Some("/tickets/arbiter"))
        ]
    );
    assert_eq!(q.ticket, TicketTiming::default());
    assert_eq!(q.ticket.duration, Duration::from_secs(20));
    assert_eq!(q.ticket.renew_deadline, Duration::from_secs(12));
}

#[test]
fn each_quorum_rule_rejects_its_bad_value_naming_the_key() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        (&[("ENABLE_CLUSTER_MANAGEMENT", "false")], "QUORUM_PARTICIPANTS", "ENABLE_CLUSTER_MANAGEMENT"),
        (&[("QUORUM_PARTICIPANTS", "west=/tickets/west")], "QUORUM_PARTICIPANTS", "at least 3"),
        (&[("QUORUM_PARTICIPANTS", "west=/t/w,witness:a=/t/a,nowhere=/t/n")], "QUORUM_PARTICIPANTS", "not in PEER_CLUSTERS"),
        (&[("QUORUM_PARTICIPANTS", "witness:a=/t/a,witness:b=/t/b")], "QUORUM_PARTICIPANTS", "\"west\" (PEER_CLUSTERS) must be a participant"),
        (&[("QUORUM_PARTICIPANTS", "west=/t/w,witness:west=/t/x")], "QUORUM_PARTICIPANTS", "unique"),
        (&[("QUORUM_PARTICIPANTS", "west=/t/w,witness:east=/t/x")], "QUORUM_PARTICIPANTS", "our own region"),
        (&[("QUORUM_PARTICIPANTS", "west=t/w,witness:a=/t/a")], "QUORUM_PARTICIPANTS", "absolute"),
        (&[("QUORUM_PARTICIPANTS", "west=/t/w,witness:A=/t/a")], "QUORUM_PARTICIPANTS", "\"A\""),
        (&[("QUORUM_PARTICIPANTS", "west=/t/w,arbiter")], "QUORUM_PARTICIPANTS", "\"arbiter\""),
        (&[("TICKET_DURATION", "10")], "TICKET_DURATION", "LEASE_DURATION"),
        (&[("TICKET_DURATION", "0")], "TICKET_DURATION", "\"0\""),
        (&[("TICKET_RENEW_DEADLINE", "19.5")], "TICKET_RENEW_DEADLINE", "clock-rate"),
        (&[("TICKET_RENEW_DEADLINE", "4")], "TICKET_RENEW_DEADLINE", "two renew attempts"),
        (&[("TICKET_RENEW_DEADLINE", "soon")], "TICKET_RENEW_DEADLINE", "\"soon\""),
    ];
    for (pairs, key, needle) in rows {
        let err = validate(&with_pod(&quorum_pairs(pairs))).expect_err(key);
        let e = err
            .0
            .iter()
            .find(|e| e.key == *key)
            .unwrap_or_else(|| panic!("{pairs:?}: no error on {key}: {err}"));
        assert!(
            e.problem.contains(needle),
            "{pairs:?}: {key}: {:?} lacks {needle:?}",
            e.problem
        );
    }
}
