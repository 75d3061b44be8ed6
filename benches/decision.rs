//! Decision latency: `decide` + `plan` on a realistic multi-cluster state with 10 peers
//! (target: under 1 µs). Criterion reports mean and median; a second pass times single calls
//! and prints p50/p99/max, since a tail matters more than a mean for the event-to-SIGHUP path.
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use forge_core::crd::{
    CLAIM_PROTOCOL, CardanoForgeClusterSpec, CardanoForgeClusterStatus, ForgeState, NetworkSpec,
};
use forge_core::decision::{
    DeciderConfig, Decision, Event, Mono, State, WallTime as Timestamp, apply, decide, plan,
};

const PEERS: usize = 10;

fn wall() -> Timestamp {
    Timestamp::from_second(1_750_000_000).expect("valid timestamp")
}

/// Cluster "a-home" (priority 1, Priority-based, the winner) with 10 worse peers, all read
/// after our claim, none forging and all claiming first: the slowest path, every peer's
/// evidence is checked.
fn realistic_state() -> State {
    let peers: Vec<String> = (0..PEERS).map(|i| format!("peer-{i:02}")).collect();
    let spec = CardanoForgeClusterSpec::new(
        ForgeState::PriorityBased,
        1,
        "us-east-1",
        NetworkSpec::new("mainnet", 764_824_073),
    );
    let mut s = [
        Event::NodeUp,
        Event::CredentialsValid,
        Event::LeaseAcquired {
            deadline: Mono::from_millis(20_000),
        },
        Event::ClusterSpecChanged {
            spec: Box::new(spec),
            generation: Some(7),
        },
        Event::HealthResult { ok: false },
        Event::StatusWritten {
            forging_enabled: true,
            at: Mono::from_millis(9_000),
        },
    ]
    .into_iter()
    .fold(
        State::new(DeciderConfig::multi_cluster("a-home", peers.clone())),
        apply,
    );
    for (i, p) in peers.iter().enumerate() {
        let prio = 20 + i32::try_from(i).unwrap_or(0);
        let status = CardanoForgeClusterStatus {
            effective_state: Some(ForgeState::PriorityBased),
            effective_priority: Some(prio),
            forging_enabled: Some(false),
            observed_generation: Some(3),
            reason: Some("yielding_to_peer".into()),
            // Peers that claim before they forge (as this sidecar does): their `false` is
            // proof, so the winner forges without waiting for their Leases.
            claim_protocol: Some(CLAIM_PROTOCOL),
            ..Default::default()
        };
        s = apply(
            s,
            Event::PeerObserved {
                cluster: p.clone(),
                status: Some(Box::new(status)),
                generation: Some(3),
                read_at: Mono::from_millis(9_500),
            },
        );
    }
    s
}

fn bench_decide(c: &mut Criterion) {
    let s = realistic_state();
    let now = Mono::from_millis(10_000);
    let prev = Decision::initial();
    let d = decide(&s, now, wall());
    assert!(d.forge, "the bench state forges: {:?}", d.reason);
    c.bench_function("decide_10_peers", |b| {
        b.iter(|| decide(black_box(&s), black_box(now), black_box(wall())))
    });
    c.bench_function("decide_and_plan_10_peers", |b| {
        b.iter(|| {
            let d = decide(black_box(&s), black_box(now), black_box(wall()));
            plan(black_box(&prev), &d)
        })
    });
}

/// Times `samples` single `decide` + `plan` calls and prints p50/p99/max (the timer's own
/// overhead, measured the same way, is printed alongside).
fn percentiles(samples: usize) {
    let s = realistic_state();
    let now = Mono::from_millis(10_000);
    let prev = Decision::initial();
    let mut times = Vec::with_capacity(samples);
    let mut empty = Vec::with_capacity(samples);
    for _ in 0..samples / 10 {
        black_box(plan(&prev, &decide(black_box(&s), now, wall())));
    }
    for _ in 0..samples {
        let t = Instant::now();
        let d = decide(black_box(&s), black_box(now), black_box(wall()));
        black_box(plan(black_box(&prev), &d));
        times.push(t.elapsed());
        let t = Instant::now();
        empty.push(black_box(t).elapsed());
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i]
    };
    let (p50, p99, max) = (pct(&mut times, 0.50), pct(&mut times, 0.99), pct(&mut times, 1.0));
    let (e50, e99) = (pct(&mut empty, 0.50), pct(&mut empty, 0.99));
    println!(
        "decide+plan, 10 peers, {samples} single calls: p50 {p50:?}  p99 {p99:?}  max {max:?}  \
         (timer overhead p50 {e50:?}, p99 {e99:?})"
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_decide(&mut c);
    c.final_summary();
    percentiles(200_000);
}
