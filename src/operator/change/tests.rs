//! Unit tests of the operator's plans: failover, maintenance, pause and resume on rows read
//! from a fleet, the validation of an override before it is written, and the merge patch.
use super::*;
use crate::operator::view::{Forging, Row, empty_row};

const NOW: &str = "2026-01-01T12:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn row(region: &str, priority: i32, state: ForgeState) -> Row {
    Row {
        cluster: Some(format!("pool-{region}")),
        region: Some(region.into()),
        base_priority: Some(priority),
        effective_priority: Some(priority),
        forge_state: Some(state.as_str().into()),
        effective_state: Some(state.as_str().into()),
        healthy: Some(true),
        forging_enabled: Some(false),
        forging: Forging::No,
        ..empty_row(&format!("ctx-{region}"), "cardano")
    }
}

fn none(_: &Row) -> Option<OverrideSpec> {
    None
}

#[test]
fn failover_prefers_the_target_and_disables_nobody() {
    let rows = vec![
        row("east", 1, ForgeState::PriorityBased),
        row("west", 20, ForgeState::PriorityBased),
        row("south", 30, ForgeState::Enabled),
    ];
    let plan = failover(
        &rows,
        &none,
        "west",
        "kernel",
        at("2026-01-01T13:00:00Z"),
        at(NOW),
    )
    .expect("plan");
    let names: Vec<&str> = plan.iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(names, ["pool-west", "pool-east", "pool-south"]);
    let west = plan[0].after.clone().expect("override");
    assert_eq!((west.force_priority, west.force_state), (Some(1), None));
    let east = plan[1].after.clone().expect("override");
    assert_eq!((east.force_priority, east.force_state), (Some(2), None));
    let south = plan[2].after.clone().expect("override");
    assert_eq!(
        (south.force_priority, south.force_state),
        (Some(2), Some(ForgeState::PriorityBased))
    );
    for c in &plan {
        validate(c.after.as_ref().expect("after"), at(NOW)).expect("valid");
        assert_ne!(
            c.after.as_ref().and_then(|o| o.force_state),
            Some(ForgeState::Disabled)
        );
    }
}

#[test]
fn failover_to_a_disabled_region_makes_it_priority_based_for_the_window() {
    let rows = vec![
        row("east", 10, ForgeState::PriorityBased),
        row("west", 20, ForgeState::Disabled),
    ];
    let plan = failover(
        &rows,
        &none,
        "pool-west",
        "r",
        at("2026-01-01T13:00:00Z"),
        at(NOW),
    )
    .expect("plan");
    assert_eq!(plan.len(), 1);
    assert_eq!(
        plan[0].after.as_ref().and_then(|o| o.force_state),
        Some(ForgeState::PriorityBased)
    );
}

#[test]
fn failover_refuses_an_unknown_region_and_an_unreadable_one() {
    let mut rows = vec![row("east", 10, ForgeState::PriorityBased)];
    let e = failover(&rows, &none, "mars", "r", at("2026-01-01T13:00:00Z"), at(NOW)).expect_err("unknown");
    assert!(e.contains("mars") && e.contains("east"), "{e}");
    let mut bad = row("west", 20, ForgeState::PriorityBased);
    bad.error = Some("connection refused".into());
    rows.push(bad);
    let e = failover(&rows, &none, "east", "r", at("2026-01-01T13:00:00Z"), at(NOW)).expect_err("unreadable");
    assert!(e.contains("ctx-west"), "{e}");
}

#[test]
fn validation_names_the_field() {
    let ok = OverrideSpec {
        enabled: true,
        reason: Some("why".into()),
        expires_at: Some("2026-01-01T13:00:00Z".into()),
        ..Default::default()
    };
    validate(&ok, at(NOW)).expect("valid");
    let cases = [
        (
            OverrideSpec {
                reason: None,
                ..ok.clone()
            },
            "override.reason",
        ),
        (
            OverrideSpec {
                reason: Some("x".repeat(REASON_MAX + 1)),
                ..ok.clone()
            },
            "override.reason",
        ),
        (
            OverrideSpec {
                force_priority: Some(0),
                ..ok.clone()
            },
            "override.forcePriority",
        ),
        (
            OverrideSpec {
                expires_at: None,
                ..ok.clone()
            },
            "override.expiresAt",
        ),
        (
            OverrideSpec {
                expires_at: Some("2026-01-01T11:00:00Z".into()),
                ..ok.clone()
            },
            "not in the future",
        ),
        (
            OverrideSpec {
                expires_at: Some("soon".into()),
                ..ok.clone()
            },
            "override.expiresAt",
        ),
    ];
    for (o, want) in cases {
        let e = validate(&o, at(NOW)).expect_err(want);
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn pause_disables_every_region_keeps_a_failover_priority_and_resume_restores_it() {
    let rows = vec![
        row("east", 10, ForgeState::PriorityBased),
        row("west", 20, ForgeState::PriorityBased),
    ];
    let failed_over = |r: &Row| -> Option<OverrideSpec> {
        (r.region.as_deref() == Some("west")).then(|| OverrideSpec {
            enabled: true,
            force_priority: Some(1),
            reason: Some("failover".into()),
            expires_at: Some("2026-01-01T12:30:00Z".into()),
            ..Default::default()
        })
    };
    let expires = at("2026-01-01T13:00:00Z");
    let plan = pause(&rows, &failed_over, &[], "key rotation", expires, at(NOW)).expect("plan");
    assert_eq!(plan.len(), 2);
    assert!(
        plan.iter()
            .all(|c| c.after.as_ref().and_then(|o| o.force_state) == Some(ForgeState::Disabled))
    );
    assert_eq!(plan[1].after.as_ref().and_then(|o| o.force_priority), Some(1));
    let paused = |r: &Row| {
        plan.iter()
            .find(|c| Some(&c.cluster) == r.cluster.as_ref())
            .and_then(|c| c.after.clone())
    };
    let back = resume(&rows, &paused, &[]).expect("plan");
    assert_eq!(back.len(), 2);
    assert_eq!(
        (back[0].cluster.as_str(), back[0].after.clone()),
        ("pool-east", None)
    );
    let west = back[1].after.clone().expect("west keeps its priority");
    assert_eq!((west.force_state, west.force_priority), (None, Some(1)));
    assert!(resume(&rows, &none, &[]).expect("plan").is_empty());
}

#[test]
fn maintenance_on_disables_one_region_and_off_removes_its_override() {
    let rows = vec![row("east", 10, ForgeState::PriorityBased)];
    let expires = at("2026-01-01T13:00:00Z");
    let on = maintenance(&rows, &none, "east", true, "m", expires, at(NOW)).expect("on");
    assert_eq!(on.len(), 1);
    assert_eq!(
        on[0].after.as_ref().and_then(|o| o.force_state),
        Some(ForgeState::Disabled)
    );
    let after_on = |_: &Row| on[0].after.clone();
    let off = maintenance(&rows, &after_on, "east", false, "m", expires, at(NOW)).expect("off");
    assert_eq!((off.len(), off[0].after.clone()), (1, None));
    let nothing = maintenance(&rows, &none, "east", false, "m", expires, at(NOW)).expect("off");
    assert!(nothing.is_empty());
}

#[test]
fn the_merge_patch_names_every_field_and_carries_the_version_read() {
    let o = OverrideSpec {
        enabled: true,
        reason: Some("r".into()),
        expires_at: Some("2026-01-01T13:00:00Z".into()),
        force_state: None,
        force_priority: Some(1),
    };
    let p = merge_patch(Some(&o), Some("42"));
    assert_eq!(
        p,
        serde_json::json!({
            "metadata": {"resourceVersion": "42"},
            "spec": {"override": {"enabled": true, "reason": "r", "expiresAt": "2026-01-01T13:00:00Z",
                "forceState": null, "forcePriority": 1}}
        })
    );
    assert_eq!(
        merge_patch(None, None),
        serde_json::json!({"spec": {"override": null}})
    );
}
