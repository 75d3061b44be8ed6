//! The configuration tests: defaults, one row per rule, the reference chart's env blocks.
//!
//! The fixtures, the defaults and the key table's own tests are here; `rules` has one test per
//! rule (or family of values), `names` the derived and given names and the reference chart's
//! env blocks (the blocks themselves in `chart_env`, shared with the binary's `config` tests),
//! and `modes` chain awareness and quorum mode.

mod chart_env;
mod modes;
mod names;
mod rules;

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use chart_env::{CHART_SINGLE, POOL, POOL_HEX, chart_multi_tenant};

const LONG_NAME: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";

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

/// Settings as `(ENV_NAME, value)` pairs, the key that must be named, and a fragment of the value.
type Row = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

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
