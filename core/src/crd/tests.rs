//! The CRDs' names, scope and schema, and reference-chart objects read back.
use super::*;

fn schema_of(crd: &CustomResourceDefinition) -> serde_json::Value {
    let v = serde_json::to_value(crd).expect("CRD serializes");
    v["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn forge_cluster_crd_has_names_scope_and_status_subresource() {
    let crd = CardanoForgeCluster::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("cardanoforgeclusters.cardano.io")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.singular.as_deref(), Some("cardanoforgecluster"));
    assert_eq!(crd.spec.names.short_names, Some(vec!["cfc".to_string()]));
    let v = &crd.spec.versions[0];
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    let cols: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert!(cols.contains(&"State") && cols.contains(&"Priority") && cols.contains(&"Leader"));
}

#[test]
fn forge_cluster_schema_keeps_reference_constraints_minus_its_mistakes() {
    let s = schema_of(&CardanoForgeCluster::crd());
    let spec = &s["properties"]["spec"];
    let required: Vec<_> = spec["required"]
        .as_array()
        .expect("required list")
        .iter()
        .collect();
    assert!(required.contains(&&serde_json::json!("region")));
    assert!(required.contains(&&serde_json::json!("network")));
    assert!(
        !required.contains(&&serde_json::json!("pool")),
        "pool must be optional"
    );
    assert_eq!(spec["properties"]["priority"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(spec["properties"]["priority"]["maximum"].as_f64(), Some(999.0));
    let pool_required = &spec["properties"]["pool"]["required"];
    assert!(
        pool_required.is_null(),
        "pool.id and pool.idHex are optional: {pool_required}"
    );
    let force = &spec["properties"]["override"]["properties"]["forceState"]["enum"];
    assert!(
        force
            .as_array()
            .expect("enum")
            .contains(&serde_json::json!("Priority-based"))
    );
    let network_name = &spec["properties"]["network"]["properties"]["name"];
    assert!(network_name["enum"].is_null(), "network name is free-form");
    assert_eq!(
        spec["properties"]["override"]["properties"]["expiresAt"]["format"],
        serde_json::json!("date-time")
    );
}

#[test]
fn leader_crd_has_both_short_names() {
    let crd = CardanoLeader::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("cardanoleaders.cardano.io"));
    assert_eq!(
        crd.spec.names.short_names,
        Some(vec!["cl".to_string(), "leader".to_string()])
    );
}

#[test]
fn a_reference_chart_object_deserializes() {
    let yaml = r#"
apiVersion: cardano.io/v1
kind: CardanoForgeCluster
metadata: {name: mainnet-pool1abcd-us-east-1, namespace: cardano}
spec:
  network: {name: mainnet, magic: 764824073, era: cardano}
  region: us-east-1
  priority: 1
  forgeState: Priority-based
  application: {type: block-producer, environment: production, version: 0.3.1}
  healthCheck: {enabled: true, endpoint: "http://x/health", interval: 30s, timeout: 10s, failureThreshold: 3}
  override: {enabled: false}
status: {}
"#;
    let cfc: CardanoForgeCluster = serde_yaml::from_str(yaml).expect("reference object parses");
    assert_eq!(cfc.spec.forge_state, ForgeState::PriorityBased);
    assert_eq!(cfc.spec.priority, 1);
    assert!(cfc.spec.pool.is_none());
}

#[test]
fn priority_and_state_default_when_absent() {
    let cfc: CardanoForgeClusterSpec = serde_json::from_value(
        serde_json::json!({"region": "eu", "network": {"name": "preview", "magic": 2}}),
    )
    .expect("minimal spec parses");
    assert_eq!(cfc.priority, DEFAULT_PRIORITY);
    assert_eq!(cfc.forge_state, ForgeState::PriorityBased);
    assert_eq!(cfc.network.era, "conway");
}
