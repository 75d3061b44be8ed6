//! This cluster's own spec, the overrides and health checks: when it fails closed, keeps the
//! lease without forging, or forges.

use super::*;

#[test]
fn cluster_management_without_a_readable_spec_fails_closed() {
    let s = ready(DeciderConfig::multi_cluster(ME, Vec::<String>::new()));
    assert_eq!(
        decide(&s, secs(1), wall()).reason.as_str(),
        "cluster_spec_unavailable"
    );
    let s = apply(s, Event::ClusterSpecUnavailable { why: "422".into() });
    let d = decide(&s, secs(1), wall());
    assert!(!d.forge && d.contend);
    assert_eq!(d.reason, Reason::ClusterSpecUnavailable { why: "422".into() });
}

#[test]
fn a_disabled_cluster_keeps_the_lease_but_does_not_forge() {
    let s = multi(&[], spec(1, ForgeState::Disabled));
    let d = decide(&s, secs(1), wall());
    assert!(!d.forge && d.contend && d.holds_lease && !d.claim);
    assert_eq!(d.reason, Reason::ClusterDisabled);
}

#[test]
fn an_enabled_or_sole_priority_cluster_forges_with_the_lease() {
    let d = decide(&multi(&[], spec(1, ForgeState::Enabled)), secs(1), wall());
    assert_eq!((d.forge, d.reason), (true, Reason::ClusterEnabled));
    let d = decide(&multi(&[], spec(1, ForgeState::PriorityBased)), secs(1), wall());
    assert_eq!((d.forge, d.reason), (true, Reason::GlobalWinner));
}

#[test]
fn an_override_forcing_disabled_wins_over_the_spec() {
    let mut own = spec(1, ForgeState::Enabled);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let d = decide(&multi(&[], own), secs(1), wall());
    assert_eq!(
        (d.forge, d.reason, d.effective_state),
        (false, Reason::OverrideDisabled, ForgeState::Disabled)
    );
}

#[test]
fn an_override_with_a_typo_in_expires_at_fails_closed() {
    let mut own = spec(1, ForgeState::Enabled);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        expires_at: Some("2025-13-01".into()),
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let d = decide(&multi(&[], own), secs(1), wall());
    assert!(!d.forge);
    assert_eq!(d.reason.as_str(), "override_invalid");
    assert_eq!(d.effective_state, ForgeState::Disabled);
}

#[test]
fn an_override_expiry_sets_the_next_wake_and_then_stops_applying() {
    let mut own = spec(1, ForgeState::PriorityBased);
    own.override_ = Some(OverrideSpec {
        enabled: true,
        expires_at: Some("2025-06-01T12:00:30Z".into()),
        force_state: Some(ForgeState::Disabled),
        ..Default::default()
    });
    let s = multi(&[], own);
    let d = decide(&s, secs(10), wall());
    assert_eq!(d.reason, Reason::OverrideDisabled);
    assert_eq!(d.next_wake, Some(secs(40)));
    let later = "2025-06-01T12:00:30Z".parse().expect("valid time");
    let d = decide(&s, secs(40), later);
    assert_eq!((d.forge, d.reason), (true, Reason::GlobalWinner));
}

#[test]
fn health_failures_raise_the_effective_priority_and_a_success_clears_it() {
    let s = multi(&[], spec(5, ForgeState::PriorityBased));
    let fail = |s: State| apply(s, Event::HealthResult { ok: false });
    let s1 = fail(s);
    assert_eq!(decide(&s1, secs(1), wall()).effective_priority, 15);
    let s3 = fail(fail(s1));
    assert_eq!(decide(&s3, secs(1), wall()).effective_priority, 105);
    let ok = apply(s3, Event::HealthResult { ok: true });
    assert_eq!(decide(&ok, secs(1), wall()).effective_priority, 5);
}
