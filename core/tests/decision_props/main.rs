//! Model-based property tests of the decision engine (docs/architecture.md, "Decision engine"):
//! generated event sequences with advancing monotonic time, checked after every step; the
//! global-winner rule over consistent views; and an asynchronous simulation of several clusters
//! (delayed spec delivery, status writes in flight, peer reads in any order) checking S1 across
//! regions at every step.
//!
//! This file holds what the tests share: the generated inputs (specs, overrides, peer statuses,
//! the events of a history and the configuration it runs under) and the runner that counts the
//! cases with a forger. The tests are in [`histories`] (the Decider loop over generated
//! histories, every decision and plan checked), [`properties`] (the properties of single rules:
//! the claim protocol marker, the held handover, missing inputs, the health penalty, overrides,
//! one winner over consistent views), [`regions`] (the multi-region simulation) and
//! [`harsh_cluster`] (one cluster's pods under a harsh world).
use std::time::Duration;

use forge_core::crd::{
    CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, HealthCheckSpec, NetworkSpec,
    OverrideSpec,
};
use forge_core::decision::{DeciderConfig, Event, Mono};
use forge_core::lease::LeaseRecord;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

mod harsh_cluster;
mod histories;
mod properties;
mod regions;

const ME: &str = "c0";
const PEERS: [&str; 3] = ["c1", "c2", "c3"];

/// Cases per property: `PROPTEST_CASES` when set (for long soak runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn base_wall() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid time")
}

/// Wall time that advances with the monotonic clock (any fixed offset would do).
fn wall_at(now: Mono) -> Timestamp {
    base_wall() + SignedDuration::try_from(now.as_duration()).expect("small duration")
}

fn spec(priority: i32, state: ForgeState) -> CardanoForgeClusterSpec {
    CardanoForgeClusterSpec::new(state, priority, "r", NetworkSpec::new("preview", 2))
}

fn state_strategy() -> impl Strategy<Value = ForgeState> {
    prop_oneof![
        Just(ForgeState::Enabled),
        Just(ForgeState::Disabled),
        Just(ForgeState::PriorityBased)
    ]
}

/// An override: none, off, active with or without expiry (relative seconds), or with a typo.
fn override_strategy() -> impl Strategy<Value = Option<OverrideSpec>> {
    let expiry = prop_oneof![
        Just(None),
        (-60i64..120).prop_map(|s| Some((base_wall() + SignedDuration::from_secs(s)).to_string())),
        Just(Some("next tuesday".to_string())),
    ];
    prop_oneof![
        Just(None),
        (
            any::<bool>(),
            expiry,
            proptest::option::of(state_strategy()),
            proptest::option::of(1i32..20)
        )
            .prop_map(|(enabled, expires_at, force_state, force_priority)| {
                Some(OverrideSpec {
                    enabled,
                    reason: None,
                    expires_at,
                    force_state,
                    force_priority,
                })
            }),
    ]
}

fn spec_strategy() -> impl Strategy<Value = CardanoForgeClusterSpec> {
    (
        1i32..20,
        state_strategy(),
        override_strategy(),
        proptest::option::of(1i32..5),
    )
        .prop_map(|(p, st, o, threshold)| {
            let mut s = spec(p, st);
            s.override_ = o;
            s.health_check = threshold.map(|t| HealthCheckSpec {
                enabled: true,
                endpoint: None,
                interval: "1s".into(),
                timeout: "1s".into(),
                failure_threshold: t,
                headers: Default::default(),
            });
            s
        })
}

fn peer_status_strategy() -> impl Strategy<Value = Option<CardanoForgeClusterStatus>> {
    proptest::option::of(
        (
            proptest::option::of(state_strategy()),
            proptest::option::of(1i32..120),
            proptest::option::of(any::<bool>()),
            proptest::option::of(0i64..4),
            proptest::option::of(prop_oneof![
                Just("global_winner".to_string()),
                Just("yielding_to_peer".to_string()),
                Just("node_down".to_string()),
            ]),
            // Absent: a peer still running the reference sidecar.
            proptest::option::of(0i32..3),
        )
            .prop_map(
                |(
                    effective_state,
                    effective_priority,
                    forging_enabled,
                    observed_generation,
                    reason,
                    claim_protocol,
                )| {
                    CardanoForgeClusterStatus {
                        effective_state,
                        effective_priority,
                        forging_enabled,
                        observed_generation,
                        reason,
                        claim_protocol,
                        ..Default::default()
                    }
                },
            ),
    )
}

/// An event with times relative to "now" (made absolute when applied).
#[derive(Debug, Clone)]
enum Gen {
    LeaseAcquired(u64),
    LeaseRenewed(u64),
    LeaseLost,
    SpecChanged(Box<CardanoForgeClusterSpec>, i64),
    SpecUnavailable,
    StatusWritten(bool),
    Health(bool),
    NodeUp,
    NodeDown,
    NodeSync(bool),
    CredentialsValid,
    CredentialsInvalid,
    PeerObserved(usize, Option<Box<CardanoForgeClusterStatus>>, Option<i64>, u64),
    PeerUnreachable(usize),
    PeerLease(usize, bool, u8),
    /// Leader slots starting this many ms from now (negative: in the past).
    Schedule(Vec<i64>),
    Tick,
}

fn gen_strategy() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (1u64..20_000).prop_map(Gen::LeaseAcquired),
        (1u64..20_000).prop_map(Gen::LeaseRenewed),
        Just(Gen::LeaseLost),
        (spec_strategy(), 0i64..4).prop_map(|(s, g)| Gen::SpecChanged(Box::new(s), g)),
        Just(Gen::SpecUnavailable),
        any::<bool>().prop_map(Gen::StatusWritten),
        any::<bool>().prop_map(Gen::Health),
        Just(Gen::NodeUp),
        Just(Gen::NodeDown),
        any::<bool>().prop_map(Gen::NodeSync),
        Just(Gen::CredentialsValid),
        Just(Gen::CredentialsInvalid),
        (
            0usize..3,
            peer_status_strategy(),
            proptest::option::of(0i64..4),
            0u64..3_000
        )
            .prop_map(|(p, s, g, ago)| Gen::PeerObserved(p, s.map(Box::new), g, ago)),
        (0usize..3).prop_map(Gen::PeerUnreachable),
        (0usize..3, any::<bool>(), 0u8..3).prop_map(|(p, vacant, n)| Gen::PeerLease(p, vacant, n)),
        proptest::collection::vec(-5_000i64..120_000, 0..4).prop_map(Gen::Schedule),
        Just(Gen::Tick),
    ]
}

fn to_event(g: Gen, now: Mono) -> Event {
    let ms = Duration::from_millis;
    match g {
        Gen::LeaseAcquired(d) => Event::LeaseAcquired {
            deadline: now + ms(d),
        },
        Gen::LeaseRenewed(d) => Event::LeaseRenewed {
            deadline: now + ms(d),
        },
        Gen::LeaseLost => Event::LeaseLost {
            holder: Some("other".into()),
        },
        Gen::SpecChanged(spec, g) => Event::ClusterSpecChanged {
            spec,
            generation: Some(g),
        },
        Gen::SpecUnavailable => Event::ClusterSpecUnavailable { why: "gone".into() },
        Gen::StatusWritten(f) => Event::StatusWritten {
            forging_enabled: f,
            at: now,
        },
        Gen::Health(ok) => Event::HealthResult { ok },
        Gen::NodeUp => Event::NodeUp,
        Gen::NodeDown => Event::NodeDown,
        Gen::NodeSync(s) => Event::NodeSync { synced: s },
        Gen::CredentialsValid => Event::CredentialsValid,
        Gen::CredentialsInvalid => Event::CredentialsInvalid { why: "bad".into() },
        Gen::PeerObserved(p, status, generation, ago) => Event::PeerObserved {
            cluster: PEERS[p].into(),
            status,
            generation,
            read_at: Mono::from_duration(now.as_duration().saturating_sub(ms(ago))),
        },
        Gen::PeerUnreachable(p) => Event::PeerUnreachable {
            cluster: PEERS[p].into(),
            at: now,
        },
        Gen::PeerLease(p, vacant, n) => Event::PeerLeaseObserved {
            cluster: PEERS[p].into(),
            record: LeaseRecord {
                holder_identity: (!vacant).then(|| format!("{}-{n}", PEERS[p])),
                lease_duration_seconds: Some(15),
                ..Default::default()
            },
            sent_at: now,
            received_at: now,
        },
        Gen::Schedule(offsets) => Event::LeaderScheduleChanged {
            slots: offsets
                .into_iter()
                .map(|ms| wall_at(now) + SignedDuration::from_millis(ms))
                .collect(),
        },
        Gen::Tick => Event::Tick,
    }
}

fn config_strategy() -> impl Strategy<Value = DeciderConfig> {
    (any::<bool>(), any::<bool>(), 0usize..=3).prop_map(|(managed, require_sync, n)| {
        let mut c = if managed {
            DeciderConfig::multi_cluster(ME, PEERS[..n].iter().copied())
        } else {
            DeciderConfig::single_cluster(ME)
        };
        c.require_sync = require_sync;
        c
    })
}

/// Runs `cases` cases of `strategy` through `check`, which says whether the case had a forger;
/// returns how many had one, and of how many. A failed case panics with proptest's report.
fn count_forging<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) -> (u32, u32) {
    use proptest::test_runner::{Config, TestRunner};
    let forged = std::cell::Cell::new(0u32);
    let total = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    });
    let result = runner.run(&strategy, |value| {
        let any = check(value)?;
        total.set(total.get() + 1);
        forged.set(forged.get() + u32::from(any));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    (forged.get(), total.get())
}
