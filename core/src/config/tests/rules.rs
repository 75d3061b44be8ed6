//! One test per rule or family of values: each bad value refused naming its key, and the
//! spellings, units and forms each key accepts.

use super::*;

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
fn check_timing_accepts_the_defaults_and_names_the_offending_key() {
    assert!(check_timing(&LeaseTiming::default(), Duration::from_secs(2)).is_empty());
    let bad = LeaseTiming {
        retry_period: Duration::ZERO,
        ..LeaseTiming::default()
    };
    assert_eq!(check_timing(&bad, Duration::from_secs(2))[0].key, "RETRY_PERIOD");
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
