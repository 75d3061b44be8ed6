//! The optional modes: chain awareness (its keys and defaults) and quorum mode (its
//! participants, ticket timing and rules).

use super::*;

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
