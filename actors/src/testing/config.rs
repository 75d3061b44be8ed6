//! [`config`]: a [`ValidConfig`] for tests, validated from `(ENV_NAME, value)` pairs exactly as
//! the sidecar's loader would pass them (every other key at its default).

use forge_core::config::{RawSettings, ValidConfig, validate};

/// The configuration `pairs` give (`POD_NAME` defaults to `forge-0`); panics naming every bad
/// key (a test's own mistake).
pub fn config(pairs: &[(&str, &str)]) -> ValidConfig {
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    map.insert("pod_name".into(), "forge-0".into());
    for (key, value) in pairs {
        map.insert(key.to_ascii_lowercase(), (*value).into());
    }
    let raw: RawSettings = serde_json::from_value(serde_json::Value::Object(map))
        .unwrap_or_else(|e| panic!("unknown configuration key in {pairs:?}: {e}"));
    validate(&raw).unwrap_or_else(|e| panic!("invalid test configuration {pairs:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pairs_override_the_defaults() {
        let c = config(&[
            ("POD_NAME", "pod-a"),
            ("LEASE_DURATION", "3"),
            ("RENEW_DEADLINE", "2"),
            ("RETRY_PERIOD", "500ms"),
            ("API_TIMEOUT", "500ms"),
        ]);
        assert_eq!(c.pod_name, "pod-a");
        assert_eq!(c.lease.duration, Duration::from_secs(3));
        assert_eq!(c.lease.retry_period, Duration::from_millis(500));
        assert_eq!(config(&[]).pod_name, "forge-0");
    }

    #[test]
    #[should_panic(expected = "RENEW_DEADLINE")]
    fn a_bad_configuration_names_its_key() {
        config(&[("LEASE_DURATION", "3")]);
    }
}
