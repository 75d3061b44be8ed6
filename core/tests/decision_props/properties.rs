//! Properties of single rules: the claim protocol marker, the held handover, missing inputs,
//! the health penalty, overrides, and one winner over consistent views.

use std::time::Duration;

use forge_core::crd::{CLAIM_PROTOCOL, CardanoForgeClusterStatus, ForgeState, HealthCheckSpec, OverrideSpec};
use forge_core::decision::{
    DeciderConfig, Event, Mono, OverrideStatus, Reason, State, apply, decide, effective, evaluate_override,
    health_penalty,
};
use jiff::SignedDuration;
use proptest::prelude::*;

use crate::{ME, base_wall, cases, config_strategy, gen_strategy, spec, to_event, wall_at};

proptest! {
    // Seeds of past failures are kept next to this file (they were next to decision_props.rs
    // before the move into this directory): by default proptest looks up the tree for a
    // `main.rs`, finds this directory's, and would use `tests/proptest-regressions/properties.txt`.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(cases(512))
    })]

    /// F14: the winner (or an `Enabled` cluster) with its claim confirmed, every peer read after
    /// it with `forgingEnabled: false` at its current generation, starts exactly when every
    /// peer's status carries the claim protocol marker: a peer without it (the reference
    /// sidecar) may forge while its status says false, and no Lease of it was read.
    #[test]
    fn a_start_needs_the_claim_protocol_marker_on_every_peer_status(
        own in prop_oneof![Just(ForgeState::PriorityBased), Just(ForgeState::Enabled)],
        peers in proptest::collection::vec((2i32..120, proptest::option::of(0i32..3)), 1..4),
        wait_ms in 0u64..1_000,
    ) {
        let names: Vec<String> = (1..=peers.len()).map(|i| format!("c{i}")).collect();
        let claim = Mono::from_millis(2_000);
        let now = claim + Duration::from_millis(wait_ms);
        let mut s = [
            Event::NodeUp,
            Event::CredentialsValid,
            Event::LeaseAcquired { deadline: now + Duration::from_secs(10) },
            Event::ClusterSpecChanged { spec: Box::new(spec(1, own)), generation: Some(1) },
            Event::StatusWritten { forging_enabled: true, at: claim },
        ]
        .into_iter()
        .fold(State::new(DeciderConfig::multi_cluster(ME, names.iter().cloned())), apply);
        for (name, (priority, claim_protocol)) in names.iter().zip(&peers) {
            s = apply(s, standing_by_peer(name, ForgeState::PriorityBased, *priority, 1, *claim_protocol, claim));
        }
        let marked = peers.iter().all(|(_, p)| p.is_some_and(|p| p >= CLAIM_PROTOCOL));
        let d = decide(&s, now, wall_at(now));
        prop_assert_eq!(d.forge, marked, "{:?}", d.reason);
        if !marked {
            prop_assert_eq!(d.reason.as_str(), "awaiting_peer_confirmation");
        }
    }

    /// A forging cluster told to stop holds exactly when the stop is planned and one of our
    /// leader slots starts within the quiet window and has not ended; the hold ends with the
    /// slot; an unplanned stop is never held.
    #[test]
    fn a_handover_is_held_exactly_while_a_leader_slot_is_near_and_only_when_planned(
        slot_ms in -3_000i64..150_000,
        quiet_s in 1u64..120,
        cause in 0usize..7,
        now_ms in 1_000u64..50_000,
    ) {
        let now = Mono::from_millis(now_ms);
        let wall = wall_at(now);
        let mut c = DeciderConfig::multi_cluster(ME, ["c1"]);
        c.handover_quiet = Duration::from_secs(quiet_s);
        let mut s = State::new(c);
        for e in [
            Event::NodeUp,
            Event::CredentialsValid,
            Event::LeaseAcquired { deadline: now + Duration::from_secs(1_000) },
            Event::ClusterSpecChanged { spec: Box::new(spec(1, ForgeState::PriorityBased)), generation: Some(1) },
            Event::StatusWritten { forging_enabled: true, at: now },
            standing_by_peer("c1", ForgeState::PriorityBased, 5, 1, Some(CLAIM_PROTOCOL), now),
        ] {
            s = apply(s, e);
        }
        prop_assert!(decide(&s, now, wall).forge);
        s = apply(s, Event::Committed { forge: true });
        s = apply(s, Event::LeaderScheduleChanged { slots: vec![wall + SignedDuration::from_millis(slot_ms)] });
        let better_peer = standing_by_peer("c1", ForgeState::PriorityBased, 0, 2, Some(CLAIM_PROTOCOL), now);
        let (planned, events) = match cause {
            0 => (true, vec![Event::ClusterSpecChanged { spec: Box::new(spec(1, ForgeState::Disabled)), generation: Some(2) }]),
            1 => (true, vec![better_peer]),
            2 => (false, vec![better_peer, Event::HealthResult { ok: false }]),
            3 => (false, vec![Event::NodeDown]),
            4 => (false, vec![Event::LeaseLost { holder: None }]),
            5 => (false, vec![Event::CredentialsInvalid { why: "x".into() }]),
            _ => (false, vec![Event::ClusterSpecUnavailable { why: "x".into() }]),
        };
        for e in events {
            s = apply(s, e);
        }
        let near = slot_ms > -1_000 && slot_ms <= i64::try_from(quiet_s * 1_000).expect("small");
        let d = decide(&s, now, wall);
        prop_assert_eq!(d.forge, planned && near, "{:?}", d.reason);
        prop_assert_eq!(matches!(d.reason, Reason::HandoverHeld { .. }), planned && near);
        if d.forge {
            // It wakes when the slot has ended, and the handover goes ahead then.
            let w = d.next_wake.expect("a hold wakes");
            prop_assert_eq!(w, now + Duration::from_millis(u64::try_from(slot_ms + 1_000).expect("positive")));
            let later = decide(&s, w, wall_at(w));
            prop_assert!(!later.forge, "{:?}", later.reason);
        }
    }

    /// A missing input always means standby, whatever else is true.
    #[test]
    fn a_missing_input_always_means_standby(
        config in config_strategy(),
        steps in proptest::collection::vec((0u64..4_000, gen_strategy()), 0..40),
        missing in 0usize..5,
    ) {
        let mut s = State::new(config);
        let mut now = Mono::from_millis(1_000);
        for (advance, g) in steps {
            now = now + Duration::from_millis(advance);
            s = apply(s, to_event(g, now));
        }
        let managed = s.config.cluster_management;
        s = apply(s, match missing {
            0 => Event::NodeDown,
            1 => Event::CredentialsInvalid { why: "x".into() },
            2 => Event::LeaseLost { holder: None },
            3 if managed => Event::ClusterSpecUnavailable { why: "x".into() },
            _ => Event::LeaseAcquired { deadline: now },
        });
        let d = decide(&s, now, wall_at(now));
        prop_assert!(!d.forge, "forging with input {} missing: {:?}", missing, d.reason);
    }

    /// The penalty follows the count of consecutive failures, and a success clears it.
    #[test]
    fn the_penalty_formula_holds_and_recovery_clears_it(
        base in 1i32..999,
        threshold in 1i32..10,
        results in proptest::collection::vec(any::<bool>(), 0..30),
    ) {
        let mut sp = spec(base, ForgeState::PriorityBased);
        sp.health_check = Some(HealthCheckSpec {
            enabled: true, endpoint: None, interval: "1s".into(), timeout: "1s".into(),
            failure_threshold: threshold, headers: Default::default(),
        });
        let mut s = apply(
            State::new(DeciderConfig::multi_cluster(ME, Vec::<String>::new())),
            Event::ClusterSpecChanged { spec: Box::new(sp), generation: Some(1) },
        );
        let mut run = 0i32;
        for ok in results {
            s = apply(s, Event::HealthResult { ok });
            run = if ok { 0 } else { run + 1 };
            let want = base + if run == 0 { 0 } else if run >= threshold { 100 } else { 10 };
            prop_assert_eq!(decide(&s, Mono::ZERO, base_wall()).effective_priority, want);
            if ok {
                prop_assert_eq!(decide(&s, Mono::ZERO, base_wall()).effective_priority, base);
            }
        }
        prop_assert_eq!(health_penalty(0, threshold.unsigned_abs()), 0);
    }

    /// Active strictly before `expiresAt`, inactive at and after; without expiry active until
    /// disabled.
    #[test]
    fn an_override_applies_exactly_until_it_expires(
        expiry in proptest::option::of(-3_600i64..3_600),
        at in -7_200i64..7_200,
        force in 1i32..50,
        enabled in any::<bool>(),
    ) {
        let o = OverrideSpec {
            enabled,
            expires_at: expiry.map(|e| (base_wall() + SignedDuration::from_secs(e)).to_string()),
            force_priority: Some(force),
            ..Default::default()
        };
        let wall = base_wall() + SignedDuration::from_secs(at);
        let status = evaluate_override(Some(&o), wall);
        let active = enabled && expiry.is_none_or(|e| at < e);
        prop_assert_eq!(matches!(status, OverrideStatus::Active { .. }), active);
        let mut sp = spec(500, ForgeState::PriorityBased);
        sp.override_ = Some(o);
        prop_assert_eq!(effective(&sp, 5, wall).priority, if active { force } else { 600 });
    }

    /// Given one consistent view (every cluster sees the others' true effective policies, all
    /// confirmed not forging and read after its claim), at most one cluster forges, and exactly
    /// one if any is eligible.
    #[test]
    fn consistent_views_yield_at_most_one_winner(
        clusters in proptest::collection::vec((1i32..6, prop_oneof![
            3 => Just(ForgeState::PriorityBased), 1 => Just(ForgeState::Disabled)]), 1..7),
        enabled in proptest::option::of(0usize..7),
        unhealthy in proptest::collection::vec(any::<bool>(), 7),
    ) {
        let n = clusters.len();
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let mut policies = clusters.clone();
        if let Some(e) = enabled.filter(|e| *e < n) {
            policies[e].1 = ForgeState::Enabled;
        }
        let eff: Vec<(ForgeState, i32)> =
            (0..n).map(|i| (policies[i].1, policies[i].0 + if unhealthy[i] { 100 } else { 0 })).collect();
        let now = Mono::from_millis(10_000);
        let mut forgers = Vec::new();
        for i in 0..n {
            let peers: Vec<&String> = names.iter().filter(|p| **p != names[i]).collect();
            let mut s = State::new(DeciderConfig::multi_cluster(names[i].clone(), peers));
            s = [
                Event::NodeUp,
                Event::CredentialsValid,
                Event::LeaseAcquired { deadline: now + Duration::from_secs(10) },
                Event::ClusterSpecChanged { spec: Box::new(spec(policies[i].0, policies[i].1)), generation: Some(1) },
                Event::StatusWritten { forging_enabled: true, at: Mono::from_millis(9_000) },
            ].into_iter().fold(s, apply);
            for _ in 0..3 {
                if unhealthy[i] { s = apply(s, Event::HealthResult { ok: false }); }
            }
            for j in (0..n).filter(|j| *j != i) {
                s = apply(s, standing_by_peer(&names[j], eff[j].0, eff[j].1, 1, Some(CLAIM_PROTOCOL), Mono::from_millis(9_500)));
            }
            let d = decide(&s, now, base_wall());
            prop_assert_eq!((d.effective_state, d.effective_priority), eff[i]);
            if d.forge { forgers.push(i); }
        }
        prop_assert!(forgers.len() <= 1, "several winners {:?} among {:?}", forgers, eff);
        let eligible = eff.iter().any(|(st, _)| *st != ForgeState::Disabled);
        prop_assert_eq!(forgers.len(), usize::from(eligible), "winners {:?} among {:?}", forgers, eff);
        if let Some(&w) = forgers.first() {
            let key = |i: usize| (if eff[i].0 == ForgeState::Enabled { 0 } else { 1 }, eff[i].1, names[i].clone());
            for j in (0..n).filter(|j| eff[*j].0 != ForgeState::Disabled) {
                prop_assert!(key(w) <= key(j));
            }
        }
    }
}

/// A peer's status as read at `read_at`: in `state` with `priority`, of `generation`, not
/// forging, yielding to a peer, with the claim-protocol marker `claim_protocol`.
fn standing_by_peer(
    cluster: &str,
    state: ForgeState,
    priority: i32,
    generation: i64,
    claim_protocol: Option<i32>,
    read_at: Mono,
) -> Event {
    Event::PeerObserved {
        cluster: cluster.into(),
        status: Some(Box::new(CardanoForgeClusterStatus {
            effective_state: Some(state),
            effective_priority: Some(priority),
            forging_enabled: Some(false),
            observed_generation: Some(generation),
            reason: Some("yielding_to_peer".into()),
            claim_protocol,
            ..Default::default()
        })),
        generation: Some(generation),
        read_at,
    }
}
