//! The env blocks of the reference Helm chart (`hc:charts/cardano-node` statefulset.yaml), which
//! must be accepted unchanged (drop-in): the configuration's unit tests read them, and so does
//! `tests/config_cli.rs` (through `#[path]`), which feeds them to the real binary.

/// The pool of the multi-tenant block (bech32).
pub const POOL: &str = "pool1abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn";
/// The same pool in hex.
pub const POOL_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef01234567";

/// The single-cluster env block.
pub const CHART_SINGLE: &[(&str, &str)] = &[
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

/// The block in multi-tenant mode with cluster management and health checks on: the single
/// block with the pool's own lease and leader names, and the pool, cluster and health keys.
pub fn chart_multi_tenant() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = CHART_SINGLE
        .iter()
        .copied()
        .filter(|(k, _)| !matches!(*k, "LEASE_NAME" | "CRD_NAME"))
        .collect();
    env.extend_from_slice(&[
        ("LEASE_NAME", "cardano-leader-mainnet-pool1abcde"),
        ("CRD_NAME", "cardano-leader-mainnet-pool1abcde"),
        ("POOL_ID", POOL),
        ("POOL_ID_HEX", POOL_HEX),
        ("POOL_NAME", "My Stake Pool"),
        ("POOL_TICKER", "MSP"),
        ("APPLICATION_TYPE", "block-producer"),
        ("ENABLE_CLUSTER_MANAGEMENT", "true"),
        ("CLUSTER_REGION", "us-east-1"),
        ("CLUSTER_PRIORITY", "1"),
        ("CLUSTER_ENVIRONMENT", "production"),
        (
            "HEALTH_CHECK_ENDPOINT",
            "http://cardano-node-health.cardano.svc.cluster.local:12798/health",
        ),
        ("HEALTH_CHECK_INTERVAL", "30"),
    ]);
    env
}
