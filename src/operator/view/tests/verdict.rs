//! Rows and verdicts built from the objects read.
use super::*;
use crate::operator::view::verdict::Forger;

#[test]
fn one_forging_region_is_one_forger_with_exit_code_0() {
    let v = build(&east_forges(), at(NOW));
    assert_eq!(
        v.verdict,
        Verdict::OneForger {
            region: "east".into(),
            pod: Some("east-0".into())
        }
    );
    assert_eq!(v.exit_code, 0);
    let east = &v.rows[0];
    assert_eq!(east.lease_holder.as_deref(), Some("east-0"));
    assert_eq!(east.heartbeat_age_seconds, Some(2.0));
    assert_eq!(east.lease_expired, Some(false));
    assert_eq!(east.healthy, Some(true));
}

#[test]
fn a_lease_held_by_a_pod_incarnation_names_the_pod() {
    // With POD_UID the holder identity is `POD_NAME_POD_UID`.
    let mut input = east_forges();
    fetched(&mut input, 0).leases = vec![lease("east-0_7c6f0a3e-2b1d", "2026-01-01T11:59:58Z")];
    let v = build(&input, at(NOW));
    let east = &v.rows[0];
    assert_eq!(east.lease_holder.as_deref(), Some("east-0"));
    assert!(
        east.pods.iter().any(|p| p.name == "east-0" && p.holds_lease),
        "{:?}",
        east.pods
    );
}

#[test]
fn a_claim_awaiting_a_peer_is_not_a_second_forger() {
    let v = build(
        &three(
            (true, "global_winner"),
            (true, "awaiting_peer_stop"),
            (false, "yielding_to_peer"),
        ),
        at(NOW),
    );
    assert_eq!(v.rows[1].forging, Forging::Claiming);
    assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "east"));
}

#[test]
fn two_forging_regions_are_two_forgers_with_exit_code_4() {
    let v = build(
        &three(
            (true, "global_winner"),
            (true, "override_enabled"),
            (false, "peer_unreachable"),
        ),
        at(NOW),
    );
    assert_eq!(
        v.verdict,
        Verdict::TwoForgers {
            forgers: vec![
                Forger {
                    region: "east".into(),
                    pod: Some("east-0".into())
                },
                Forger {
                    region: "west".into(),
                    pod: Some("west-0".into())
                }
            ]
        }
    );
    assert_eq!(v.exit_code, EXIT_TWO_FORGERS);
}

#[test]
fn an_unknown_reason_with_forging_enabled_counts_as_forging() {
    let v = build(
        &three(
            (true, "global_winner"),
            (true, "some_future_reason"),
            (false, "yielding_to_peer"),
        ),
        at(NOW),
    );
    assert_eq!(v.exit_code, EXIT_TWO_FORGERS);
}

#[test]
fn the_leader_report_alone_is_enough_to_see_a_forger() {
    let mut inputs = three(
        (false, "yielding_to_peer"),
        (false, "yielding_to_peer"),
        (false, "yielding_to_peer"),
    );
    fetched(&mut inputs, 2).leaders = vec![leader("south-0", true, "global_winner")];
    let v = build(&inputs, at(NOW));
    assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "south"));
}

#[test]
fn no_forging_region_is_no_forger_since_the_latest_transition_with_exit_code_3() {
    let mut inputs = three(
        (false, "override_disabled"),
        (false, "override_disabled"),
        (false, "override_disabled"),
    );
    let west = fetched(&mut inputs, 1).clusters[0]
        .status
        .as_mut()
        .expect("status");
    west.last_transition = Some("2026-01-01T11:59:00Z".into());
    let v = build(&inputs, at(NOW));
    assert_eq!(
        v.verdict,
        Verdict::NoForger {
            since: Some("2026-01-01T11:59:00Z".into())
        }
    );
    assert_eq!(v.exit_code, EXIT_NO_FORGER);
    assert_eq!(
        v.verdict.line(at(NOW)),
        "NO FORGER since 2026-01-01T11:59:00Z (1m00s ago)"
    );
}

#[test]
fn an_unreadable_context_makes_the_verdict_unknown_unless_two_forge() {
    let mut inputs = east_forges();
    inputs[2].fetched = Err("connection refused".into());
    let v = build(&inputs, at(NOW));
    assert_eq!(
        v.verdict,
        Verdict::Unreachable {
            contexts: vec!["ctx-south".into()],
            forging: vec!["east (east-0)".into()]
        }
    );
    assert_eq!(v.exit_code, EXIT_UNREACHABLE);
    assert_eq!(v.rows[2].error.as_deref(), Some("connection refused"));

    fetched(&mut inputs, 1).clusters[0] = cfc("west", 20, true, "override_enabled", "west-0");
    assert_eq!(build(&inputs, at(NOW)).exit_code, EXIT_TWO_FORGERS);
}

#[test]
fn the_override_is_evaluated_with_its_time_left_expired_or_invalid() {
    let mut inputs = three(
        (false, "override_disabled"),
        (true, "global_winner"),
        (false, "yielding_to_peer"),
    );
    let set = |inputs: &mut Vec<ContextInput>, o: OverrideSpec| {
        fetched(inputs, 0).clusters[0].spec.override_ = Some(o);
    };
    set(
        &mut inputs,
        OverrideSpec {
            enabled: true,
            force_state: Some(ForgeState::Disabled),
            expires_at: Some("2026-01-01T13:00:00Z".into()),
            reason: Some("kernel upgrade".into()),
            ..Default::default()
        },
    );
    let v = build(&inputs, at(NOW));
    let o = v.rows[0].override_.clone().expect("override");
    assert_eq!((o.status, o.seconds_left), ("active", Some(3600)));
    let table = plain_table(&v, false);
    assert!(table.contains("Disabled 1h00m left"), "{table}");

    set(
        &mut inputs,
        OverrideSpec {
            enabled: true,
            force_state: Some(ForgeState::Disabled),
            expires_at: Some("2026-01-01T11:00:00Z".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        build(&inputs, at(NOW)).rows[0]
            .override_
            .as_ref()
            .map(|o| o.status),
        Some("expired")
    );

    set(
        &mut inputs,
        OverrideSpec {
            enabled: true,
            expires_at: Some("tomorrow".into()),
            ..Default::default()
        },
    );
    let o = build(&inputs, at(NOW)).rows[0]
        .override_
        .clone()
        .expect("override");
    assert_eq!(o.status, "invalid");
    assert!(o.invalid.as_deref().is_some_and(|w| w.contains("expiresAt")));

    set(&mut inputs, OverrideSpec::default());
    assert_eq!(build(&inputs, at(NOW)).rows[0].override_, None);
}

#[test]
fn an_expired_lease_is_shown_as_such() {
    let mut inputs = east_forges();
    fetched(&mut inputs, 1).leases = vec![lease("west-1", "2026-01-01T11:59:00Z")];
    let v = build(&inputs, at(NOW));
    assert_eq!(v.rows[1].lease_expired, Some(true));
    assert_eq!(v.rows[1].lease_holder.as_deref(), Some("west-1"));
    let table = plain_table(&v, true);
    assert!(table.contains("1m00s EXPIRED"), "{table}");
}

#[test]
fn a_single_cluster_namespace_is_read_from_its_cardano_leader() {
    let inputs = vec![ContextInput {
        context: "only".into(),
        namespace: "cardano".into(),
        fetched: Ok(Fetched {
            clusters: vec![],
            leaders: vec![leader("bp-1", true, "single_cluster_leader")],
            leases: vec![lease("bp-1", "2026-01-01T11:59:59Z")],
            pods: Ok(Vec::new()),
        }),
    }];
    let v = build(&inputs, at(NOW));
    assert_eq!(
        v.verdict,
        Verdict::OneForger {
            region: "cardano-node-leader".into(),
            pod: Some("bp-1".into())
        }
    );
}

#[test]
fn two_pods_forging_by_their_own_report_are_two_forgers_even_in_one_region() {
    let mut inputs = east_forges();
    fetched(&mut inputs, 0).pods = Ok(vec![
        pod_input("east-0", true, "global_winner"),
        pod_input("east-1", true, "global_winner"),
    ]);
    let v = build(&inputs, at(NOW));
    assert_eq!(v.exit_code, EXIT_TWO_FORGERS, "{:?}", v.verdict);
    assert_eq!(
        v.verdict.line(at(NOW)),
        "TWO FORGERS: east (east-0) and east (east-1) forge at once"
    );
    let east1 = &v.rows[0].pods[1];
    assert_eq!(
        (east1.holds_lease, east1.claims, east1.observed_forging),
        (false, false, Some(true))
    );
}

#[test]
fn a_pod_out_of_reach_is_unknown_and_a_pod_only_the_lease_names_is_shown() {
    let mut inputs = east_forges();
    fetched(&mut inputs, 0).pods = Ok(vec![PodInput {
        name: "east-0".into(),
        status: Err("/status not reached (10.0.0.9:9102: connection refused)".into()),
    }]);
    fetched(&mut inputs, 1).pods = Err("listing pods: 403 forbidden".into());
    let v = build(&inputs, at(NOW));
    // The statuses still say east forges: one forger.
    assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "east"));
    let east0 = &v.rows[0].pods[0];
    assert_eq!(east0.observed_forging, None);
    assert!(
        east0
            .unknown_why
            .as_deref()
            .is_some_and(|w| w.contains("connection refused"))
    );
    let west0 = &v.rows[1].pods[0];
    assert_eq!(west0.name, "west-0");
    assert!(west0.holds_lease);
    assert!(west0.unknown_why.as_deref().is_some_and(|w| w.contains("403")));
    let table = plain_table(&v, false);
    assert!(
        table.lines().any(|l| l.contains("east-0")
            && l.contains("UNKNOWN")
            && l.contains("unknown: /status not reached")),
        "{table}"
    );
}
