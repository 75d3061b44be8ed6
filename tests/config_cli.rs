//! `forge-manager config` end to end: the real binary with a cleared environment plus what each
//! test sets. Checks key naming on bad input, file < environment < flag precedence, unknown file
//! keys, and that the reference Helm chart's env blocks are accepted unchanged (drop-in).
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_forge-manager");

/// The reference chart's env blocks, the same the configuration's unit tests read.
#[path = "../core/src/config/tests/chart_env.rs"]
mod chart_env;
use chart_env::{CHART_SINGLE, POOL, POOL_HEX, chart_multi_tenant};

fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("config")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the forge-manager binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The printed YAML, asserting success.
fn effective(env: &[(&str, &str)], args: &[&str]) -> serde_yaml::Value {
    let o = run(env, args);
    assert!(o.status.success(), "expected success, stderr:\n{}", stderr(&o));
    serde_yaml::from_slice(&o.stdout).expect("stdout is YAML")
}

fn get<'a>(v: &'a serde_yaml::Value, path: &str) -> &'a serde_yaml::Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn text(v: &serde_yaml::Value, path: &str) -> String {
    match get(v, path) {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => panic!("{path} is {other:?}"),
    }
}

/// Asserts failure with exit code 2 and returns the stderr lines.
fn rejected(env: &[(&str, &str)], args: &[&str]) -> Vec<String> {
    let o = run(env, args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    stderr(&o).lines().map(str::to_owned).collect()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write temp file");
    path.display().to_string()
}

#[test]
fn a_non_numeric_lease_duration_is_rejected_naming_the_key_and_value() {
    let lines = rejected(&[("POD_NAME", "forge-0"), ("LEASE_DURATION", "abc")], &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("LEASE_DURATION:") && l.contains("\"abc\"")),
        "{lines:?}"
    );
}

#[test]
fn a_lease_duration_below_the_default_renew_deadline_is_rejected_naming_both_keys() {
    let lines = rejected(&[("POD_NAME", "forge-0"), ("LEASE_DURATION", "5")], &[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("RENEW_DEADLINE:") && lines[0].contains("LEASE_DURATION"),
        "{lines:?}"
    );
}

#[test]
fn every_bad_key_gets_its_own_line() {
    let lines = rejected(
        &[
            ("LEASE_DURATION", "x"),
            ("METRICS_PORT", "99999"),
            ("LOG_LEVEL", "LOUD"),
        ],
        &[],
    );
    for key in ["POD_NAME", "LEASE_DURATION", "METRICS_PORT", "LOG_LEVEL"] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&format!("{key}:"))).count(),
            1,
            "{key}: {lines:?}"
        );
    }
    assert_eq!(lines.len(), 4, "{lines:?}");
}

#[test]
fn a_valid_environment_prints_the_effective_names_and_timing() {
    let v = effective(
        &[
            ("POD_NAME", "forge-0"),
            ("POOL_ID", POOL),
            ("CLUSTER_REGION", "eu-west-1"),
            ("PATH", "/usr/bin"),
        ],
        &[],
    );
    let lease = text(&v, "names.lease");
    assert!(lease.starts_with("cardano-leader-mainnet-pool1abcde-"), "{lease}");
    assert_eq!(text(&v, "names.leader"), lease);
    assert!(text(&v, "names.cluster").starts_with("mainnet-pool1abcde-eu-west-1-"));
    assert_eq!(text(&v, "lease.duration"), "15s");
    assert_eq!(text(&v, "lease.renew_deadline"), "10s");
    assert_eq!(text(&v, "lease.retry_period"), "2s");
    assert_eq!(text(&v, "credentials.source.kes_key"), "/secrets/kes.skey");
}

#[test]
fn the_file_is_overridden_by_the_environment_which_is_overridden_by_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = write(
        dir.path(),
        "forge.yaml",
        "pod_name: from-file\nlease_duration: 30\nrenew_deadline: 20\nmetrics_port: 9000\npeer_clusters:\n  - eu=/k/eu\n  - us=/k/us\n",
    );
    let v = effective(&[], &["--config", &yaml]);
    assert_eq!(text(&v, "pod_name"), "from-file");
    assert_eq!(text(&v, "lease.duration"), "30s");
    assert_eq!(text(&v, "metrics_port"), "9000");
    assert_eq!(get(&v, "peers").as_sequence().map(Vec::len), Some(2));

    let env = [("POD_NAME", "from-env"), ("LEASE_DURATION", "25")];
    let v = effective(&env, &["--config", &yaml]);
    assert_eq!(text(&v, "pod_name"), "from-env");
    assert_eq!(text(&v, "lease.duration"), "25s");
    assert_eq!(text(&v, "metrics_port"), "9000");

    let v = effective(
        &env,
        &[
            "--config",
            &yaml,
            "--lease-duration",
            "22",
            "--pod-name",
            "from-flag",
        ],
    );
    assert_eq!(text(&v, "pod_name"), "from-flag");
    assert_eq!(text(&v, "lease.duration"), "22s");
    assert_eq!(text(&v, "lease.renew_deadline"), "20s");
}

#[test]
fn a_toml_file_is_read_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = write(
        dir.path(),
        "forge.toml",
        "pod_name = \"forge-1\"\nretry_period = 1.5\nnode_starts_non_producing = true\n",
    );
    let v = effective(&[], &["--config", &toml]);
    assert_eq!(text(&v, "lease.retry_period"), "1.5s");
    assert_eq!(get(&v, "node.starts_non_producing").as_bool(), Some(true));
}

#[test]
fn unknown_file_keys_are_rejected_naming_the_file_and_each_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = write(
        dir.path(),
        "forge.yaml",
        "pod_name: forge-0\nlease_duraton: 15\nLEASE_NAME: x\n",
    );
    let lines = rejected(&[], &["--config", &yaml]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with(&yaml)), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("`lease_duraton`")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`LEASE_NAME`") && l.contains("`lease_name`")),
        "{lines:?}"
    );
}

#[test]
fn a_file_with_a_wrong_extension_or_missing_is_rejected_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ini = write(dir.path(), "forge.ini", "pod_name=forge-0\n");
    let lines = rejected(&[], &["--config", &ini]);
    assert!(
        lines[0].starts_with(&ini) && lines[0].contains("extension"),
        "{lines:?}"
    );
    let missing = dir.path().join("absent.yaml").display().to_string();
    let lines = rejected(&[], &["--config", &missing]);
    assert!(
        lines[0].starts_with(&missing) && lines[0].contains("cannot read"),
        "{lines:?}"
    );
    let broken = write(dir.path(), "broken.yaml", "pod_name: [unclosed\n");
    let lines = rejected(&[], &["--config", &broken]);
    assert!(lines[0].starts_with(&broken), "{lines:?}");
}

#[test]
fn the_reference_charts_env_blocks_are_accepted_unchanged() {
    let single = effective(CHART_SINGLE, &[]);
    let multi_env = chart_multi_tenant();
    let multi = effective(&multi_env, &[]);
    // (setting, expected value) for each block: the chart's names are kept as given.
    let rows: &[(&serde_yaml::Value, &str, &str)] = &[
        (&single, "namespace", "cardano"),
        (&single, "names.lease", "cardano-node-leader"),
        (&single, "names.leader", "cardano-node-leader"),
        (&single, "lease.retry_period", "2s"),
        (&single, "legacy_sleep_interval", "5s"),
        (&single, "metrics_port", "8000"),
        (&multi, "names.lease", "cardano-leader-mainnet-pool1abcde"),
        (&multi, "names.leader", "cardano-leader-mainnet-pool1abcde"),
        (&multi, "pool.id_hex", POOL_HEX),
        (&multi, "cluster.region", "us-east-1"),
        (&multi, "cluster.priority", "1"),
        (&multi, "health.interval", "30s"),
    ];
    for (v, path, expected) in rows {
        assert_eq!(text(v, path), *expected, "{path}");
    }
    assert_eq!(get(&multi, "cluster.management_enabled").as_bool(), Some(true));
}

#[test]
fn the_reference_naming_scheme_gives_the_charts_cluster_name() {
    let mut env = chart_multi_tenant();
    env.push(("NAMING_SCHEME", "reference"));
    assert_eq!(
        text(&effective(&env, &[]), "names.cluster"),
        "mainnet-pool1abcde-us-east-1"
    );
}

#[test]
fn the_output_holds_paths_and_never_file_contents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kes = write(
        dir.path(),
        "kes.skey",
        "{\"cborHex\": \"5902600123456789deadbeefcafe\"}",
    );
    let o = run(&[("POD_NAME", "forge-0"), ("SOURCE_KES_KEY", &kes)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&kes) && !out.contains("deadbeef"), "{out}");
}

#[test]
fn the_checked_in_configuration_reference_equals_the_generated_one() {
    let o = Command::new(BIN)
        .args(["config", "--docs"])
        .env_clear()
        .output()
        .expect("the forge-manager binary runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8(o.stdout).expect("utf-8");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let checked_in = std::fs::read_to_string(&path).expect("docs/configuration.md");
    assert_eq!(
        printed, checked_in,
        "docs/configuration.md drifted from the key table; regenerate with `cargo run -q -- config --docs > docs/configuration.md`"
    );
}

#[test]
fn a_crd_group_other_than_the_served_one_is_refused_naming_the_key() {
    let lines = rejected(&[("POD_NAME", "forge-0"), ("CRD_GROUP", "example.com")], &[]);
    assert_eq!(
        lines,
        vec![
            "CRD_GROUP: only cardano.io is supported (the CardanoLeader CRD this binary serves), got \"example.com\""
        ]
    );
}
