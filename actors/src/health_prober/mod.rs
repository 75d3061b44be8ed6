//! HealthProber (docs/architecture.md, "Priority and health"): probes this cluster's health
//! endpoint and reports each outcome to the Decider (`HealthResult`; `HealthReset` when probing is
//! turned off), which turns consecutive failures into the priority penalty (+10 after one, +100 at
//! the threshold).
//!
//! What is probed: the CardanoForgeCluster's `spec.healthCheck` as the ClusterWatcher last read
//! it (`enabled`, `endpoint`, `interval`, `timeout`, `failureThreshold`, `headers`); while the
//! CFC has no `healthCheck`, the environment's `HEALTH_CHECK_*` settings. A probe is a GET
//! (reqwest) that is healthy iff it answers 200 within the timeout, after following redirects
//! (at most 10); `http://` or `https://` (rustls with ring and the system's root certificates;
//! a certificate they do not sign fails the probe); `HTTP(S)_PROXY`/`NO_PROXY` honoured.
//!
//! Every replica probes (the Decider of each pod needs the count), but only the local leader's
//! view reaches the CFC status (`healthStatus`, written by the StatusWriter from the
//! [`HealthStatus`] this actor sends it, `HealthObserved`), so the status does not flap between
//! replicas. The spec arrives as a message (`ProbeSpecChanged`, from the ClusterWatcher).
//! Metrics, labelled by `cluster`: `cardano_cluster_health_check_success`,
//! `..._consecutive_failures`, `..._duration_seconds`, `..._last_success_timestamp`.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, SpawnHandle, WrapFuture};
use forge_core::{
    crd::{HealthCheckSpec, HealthStatus},
    decision::Event,
};
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};

use forge_core::status::parse_period;

use crate::{
    messages::{Fact, HealthObserved, ProbeSpecChanged},
    ports::{ProbeFailed, Prober},
};

/// What to probe, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probing {
    /// The URL.
    pub endpoint: String,
    /// Period between probes.
    pub interval: Duration,
    /// Deadline of one probe.
    pub timeout: Duration,
    /// Consecutive failures before `healthy: false`.
    pub failure_threshold: u32,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
}

impl Probing {
    /// The probing a CFC `healthCheck` asks for (`None`: off).
    pub fn of_spec(h: &HealthCheckSpec) -> Option<Probing> {
        if !h.enabled {
            return None;
        }
        Some(Probing {
            endpoint: h.endpoint.clone()?,
            interval: parse_period(&h.interval).unwrap_or(Duration::from_secs(30)),
            timeout: parse_period(&h.timeout).unwrap_or(Duration::from_secs(10)),
            failure_threshold: u32::try_from(h.failure_threshold).unwrap_or(3).max(1),
            headers: h.headers.clone(),
        })
    }
}

/// The CFC's `healthCheck` wins when present; otherwise the environment's settings.
pub fn effective(spec: Option<&HealthCheckSpec>, fallback: Option<&Probing>) -> Option<Probing> {
    match spec {
        Some(h) => Probing::of_spec(h),
        None => fallback.cloned(),
    }
}

/// The health gauges, labelled by `cluster`.
#[derive(Clone)]
pub struct HealthMetrics {
    success: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    duration: HistogramVec,
    last_success: GaugeVec,
}

impl HealthMetrics {
    /// Registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let success = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_health_check_success",
                "1 when the last health probe of this cluster succeeded.",
            ),
            &["cluster"],
        )?;
        let consecutive_failures = IntGaugeVec::new(
            Opts::new(
                "cardano_cluster_health_check_consecutive_failures",
                "Failed health probes in a row.",
            ),
            &["cluster"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cardano_cluster_health_check_duration_seconds",
                "Duration of health probes.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["cluster"],
        )?;
        let last_success = GaugeVec::new(
            Opts::new(
                "cardano_cluster_health_check_last_success_timestamp",
                "Unix time of the last successful health probe.",
            ),
            &["cluster"],
        )?;
        registry.register(Box::new(success.clone()))?;
        registry.register(Box::new(consecutive_failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        Ok(Self {
            success,
            consecutive_failures,
            duration,
            last_success,
        })
    }
}

/// The actor: the probe spec it was last sent, and the probing it does on its own timer.
pub struct HealthProber {
    /// The HTTP client (the port).
    prober: Arc<dyn Prober>,
    cluster: String,
    fallback: Option<Probing>,
    /// The CFC's `healthCheck` as the ClusterWatcher last sent it (`ProbeSpecChanged`).
    spec: Option<HealthCheckSpec>,
    fact: Recipient<Fact>,
    metrics: Option<HealthMetrics>,
    status: Option<Recipient<HealthObserved>>,
    /// Consecutive failed probes.
    failures: u32,
    /// Whether the last cycle probed (so turning probing off is reported once).
    probing: bool,
    /// A probe is running; its result schedules the next cycle.
    in_flight: bool,
    /// The spec changed during the running probe: the next cycle starts as soon as it ends.
    respec: bool,
    /// The next cycle, while waiting for it.
    next: Option<SpawnHandle>,
}

impl HealthProber {
    /// A prober for `cluster`; it probes `fallback` (the environment's settings) until the
    /// ClusterWatcher sends the CFC's `healthCheck` ([`ProbeSpecChanged`]); every result goes
    /// to `status` (the StatusWriter, for the CFC `healthStatus`). Probes go through `prober`.
    pub fn new(
        prober: Arc<dyn Prober>,
        cluster: impl Into<String>,
        fallback: Option<Probing>,
        fact: Recipient<Fact>,
        metrics: Option<HealthMetrics>,
        status: Option<Recipient<HealthObserved>>,
    ) -> Self {
        Self {
            prober,
            cluster: cluster.into(),
            fallback,
            spec: None,
            fact,
            metrics,
            status,
            failures: 0,
            probing: false,
            in_flight: false,
            respec: false,
            next: None,
        }
    }

    /// Probes now and schedules the next cycle, or turns probing off until the spec changes.
    fn cycle(&mut self, ctx: &mut Context<Self>) {
        self.next = None;
        let Some(p) = effective(self.spec.as_ref(), self.fallback.as_ref()) else {
            if self.probing || self.failures > 0 {
                tracing::info!(cluster = %self.cluster, "health probing off");
                self.fact.do_send(Fact::now(Event::HealthReset));
                self.set_status(None);
            }
            self.probing = false;
            self.failures = 0;
            return;
        };
        self.probing = true;
        self.in_flight = true;
        let started = Instant::now();
        let probe = self.prober.probe(&p.endpoint, &p.headers, p.timeout);
        let run = async move {
            let outcome = probe.await;
            (p, outcome, started.elapsed())
        };
        ctx.spawn(run.into_actor(self).map(|(p, outcome, took), act, ctx| {
            act.in_flight = false;
            act.record(&p, &outcome, took);
            if std::mem::take(&mut act.respec) {
                act.cycle(ctx);
            } else {
                let wait = p.interval.saturating_sub(took);
                act.next = Some(ctx.run_later(wait, |act, ctx| act.cycle(ctx)));
            }
        }));
    }

    /// Reports one probe's outcome: the fact, the log line on a change, metrics, the status.
    fn record(&mut self, p: &Probing, outcome: &Result<(), ProbeFailed>, took: Duration) {
        let ok = outcome.is_ok();
        let before = self.failures;
        self.failures = if ok { 0 } else { self.failures.saturating_add(1) };
        let failures = self.failures;
        if ok != (before == 0) || (failures == p.failure_threshold) {
            match outcome {
                Ok(()) => tracing::info!(cluster = %self.cluster, "health probe succeeds again"),
                Err(why) => {
                    tracing::warn!(cluster = %self.cluster, failures, %why, "health probe failed")
                }
            }
        }
        self.fact.do_send(Fact::now(Event::HealthResult { ok }));
        if let Some(m) = &self.metrics {
            let l = [self.cluster.as_str()];
            m.success.with_label_values(&l).set(i64::from(ok));
            m.consecutive_failures
                .with_label_values(&l)
                .set(i64::from(failures));
            m.duration.with_label_values(&l).observe(took.as_secs_f64());
            if ok {
                let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
                m.last_success.with_label_values(&l).set(now);
            }
        }
        self.set_status(Some(HealthStatus {
            healthy: Some(failures < p.failure_threshold),
            last_probe_time: Some(jiff::Timestamp::now().to_string()),
            consecutive_failures: Some(i32::try_from(failures).unwrap_or(i32::MAX)),
            message: Some(match outcome {
                Ok(()) => "HTTP 200".to_string(),
                Err(why) => why.to_string(),
            }),
            response_time: Some(format!("{:.3}s", took.as_secs_f64())),
        }));
    }

    fn set_status(&self, status: Option<HealthStatus>) {
        if let Some(to) = &self.status {
            to.do_send(HealthObserved(status));
        }
    }
}

impl Actor for HealthProber {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.cycle(ctx);
    }
}

impl Handler<ProbeSpecChanged> for HealthProber {
    type Result = ();

    /// A new spec is probed at once (after the running probe, if one runs); the same spec
    /// again changes nothing.
    fn handle(&mut self, m: ProbeSpecChanged, ctx: &mut Context<Self>) {
        if m.0 == self.spec {
            return;
        }
        self.spec = m.0;
        if self.in_flight {
            self.respec = true;
            return;
        }
        if let Some(next) = self.next.take() {
            ctx.cancel_future(next);
        }
        self.cycle(ctx);
    }
}

impl actix::Supervised for HealthProber {
    /// actix dropped the running probe and the timer; `started` begins a new cycle.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.in_flight = false;
        self.respec = false;
        self.next = None;
    }
}
