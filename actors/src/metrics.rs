//! The Prometheus metrics of forge-manager, registered into one registry passed in (no
//! globals, so tests stay isolated).
//!
//! The reference's names and labels are kept so its dashboards and alerts keep working, with their
//! meanings fixed (docs/architecture.md, "Observability"): `cardano_forging_enabled` is 1 only when
//! this pod's node was reloaded with credentials present; `cardano_cluster_forge_*` are exported by
//! the local leader only, so `sum(...)` counts clusters, not replicas. Our own metrics are
//! `forge_manager_<thing>_<unit>`.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Constant labels that identify this pod's pool (the reference's `pod`, `network`, `pool_id`,
/// `application` labels).
#[derive(Debug, Clone, Default)]
pub struct PodLabels {
    /// Pod name.
    pub pod: String,
    /// Namespace.
    pub namespace: String,
    /// Cardano network name.
    pub network: String,
    /// Pool id (the reference used the first 10 characters, or `unknown`).
    pub pool_id: String,
    /// Pool ticker or `unknown`.
    pub pool_ticker: String,
    /// Application type, e.g. `block-producer`.
    pub application: String,
}

/// Every metric handle, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// `cardano_forging_enabled{pod,network,pool_id,application}`: this pod's node was reloaded
    /// with credentials present (or, with the guard, reports forging).
    pub forging_enabled: IntGauge,
    /// `cardano_leader_status{...}`: this pod holds the local lease.
    pub leader_status: IntGauge,
    /// `cardano_leadership_changes_total`: acquisitions and losses of the local lease.
    pub leadership_changes: IntCounter,
    /// `cardano_sighup_signals_total{reason}`.
    pub sighup_signals: IntCounterVec,
    /// `cardano_credential_operations_total{operation,file}` (operation: copy, remove).
    pub credential_operations: IntCounterVec,
    /// `forge_manager_credential_validation_failures_total{file,kind}`.
    pub credential_validation_failures: IntCounterVec,
    /// `forge_manager_decisions_total{forge,reason}`: decision transitions.
    pub decisions: IntCounterVec,
    /// `forge_manager_decision_latency_seconds`: fact received to commands sent.
    pub decision_latency: Histogram,
    /// `forge_manager_lease_renew_latency_seconds`: duration of successful renewals.
    pub lease_renew_latency: Histogram,
    /// `forge_manager_kube_api_errors_total{op,kind}`.
    pub kube_api_errors: IntCounterVec,
    /// `forge_manager_actor_restarts_total{actor}`.
    pub actor_restarts: IntCounterVec,
    /// `forge_manager_mailbox_depth{actor}` (sampled when messages are sent).
    pub mailbox_depth: IntGaugeVec,
    /// `forge_manager_fencing_covered`: 1 with the node guard (S3 holds), 0 with SIGHUP by PID.
    pub fencing_covered: IntGauge,
    /// `forge_manager_api_call_duration_seconds{op}`.
    pub api_call_duration: HistogramVec,
    /// The source operational certificate's KES figures (see [`KesMetrics`]).
    pub kes: KesMetrics,
}

/// The KES figures of the last source operational certificate that decoded, exported only once
/// one has (so `cardano_kes_expiry_timestamp_seconds` is never a misleading 0). They stay at
/// the last decoded certificate's values while a later one does not decode. Pod labels as
/// `cardano_forging_enabled`.
#[derive(Clone)]
pub struct KesMetrics {
    /// `cardano_kes_current_period`: the network's current KES period (wall clock, genesis).
    pub current_period: IntGaugeVec,
    /// `cardano_kes_remaining_periods`: periods the certificate is still valid in, the current
    /// one included (0: expired).
    pub remaining_periods: IntGaugeVec,
    /// `cardano_kes_expiry_timestamp_seconds`: when the certificate stops being valid.
    pub expiry_timestamp: IntGaugeVec,
    /// `cardano_opcert_counter`: the certificate's issue counter.
    pub opcert_counter: IntGaugeVec,
    /// `cardano_opcert_kes_period_start`: the KES period the certificate starts at.
    pub opcert_kes_period_start: IntGaugeVec,
}

impl KesMetrics {
    fn register(registry: &Registry, pod_labels: &[(&str, &str)]) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let mut opts = Opts::new(name, help);
            for (k, v) in pod_labels {
                opts = opts.const_label(*k, *v);
            }
            let g = IntGaugeVec::new(opts, &[])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Self {
            current_period: gauge(
                "cardano_kes_current_period",
                "The network's current KES period (from the wall clock and the genesis parameters).",
            )?,
            remaining_periods: gauge(
                "cardano_kes_remaining_periods",
                "KES periods the source operational certificate is still valid in, the current one included (0: expired).",
            )?,
            expiry_timestamp: gauge(
                "cardano_kes_expiry_timestamp_seconds",
                "Unix time at which the source operational certificate stops being valid (start + maxKESEvolutions periods).",
            )?,
            opcert_counter: gauge(
                "cardano_opcert_counter",
                "Issue counter of the source operational certificate.",
            )?,
            opcert_kes_period_start: gauge(
                "cardano_opcert_kes_period_start",
                "KES period the source operational certificate starts at.",
            )?,
        })
    }

    /// Sets the certificate's own figures.
    pub fn set_op_cert(&self, counter: u64, kes_period_start: u64) {
        self.opcert_counter
            .with_label_values::<&str>(&[])
            .set(saturating_i64(counter));
        self.opcert_kes_period_start
            .with_label_values::<&str>(&[])
            .set(saturating_i64(kes_period_start));
    }

    /// Sets the figures that depend on the time and the network.
    pub fn set_status(&self, current_period: u64, remaining_periods: u64, expires_at: jiff::Timestamp) {
        self.current_period
            .with_label_values::<&str>(&[])
            .set(saturating_i64(current_period));
        self.remaining_periods
            .with_label_values::<&str>(&[])
            .set(saturating_i64(remaining_periods));
        self.expiry_timestamp
            .with_label_values::<&str>(&[])
            .set(expires_at.as_second());
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The supervised actors, as they label `forge_manager_actor_restarts_total{actor}`.
pub const ACTORS: [&str; 6] = [
    "lease_elector",
    "node_watcher",
    "node_signaller",
    "credential_keeper",
    "cluster_watcher",
    "peer_watcher",
];

/// Buckets from 10 microseconds to 2.5 s: decisions are microseconds, API calls milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl Metrics {
    /// Creates and registers every metric in `registry`, plus `cardano_forge_manager_info` (and
    /// its reference name `cardano_forge_manager_info_info`).
    pub fn register(registry: &Registry, labels: &PodLabels, version: &str) -> prometheus::Result<Self> {
        let pod_labels = [
            ("pod", labels.pod.as_str()),
            ("network", labels.network.as_str()),
            ("pool_id", labels.pool_id.as_str()),
            ("application", labels.application.as_str()),
        ];
        let pod_gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let mut opts = Opts::new(name, help);
            for (k, v) in pod_labels {
                opts = opts.const_label(k, v);
            }
            let g = IntGauge::with_opts(opts)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str| -> prometheus::Result<Histogram> {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };

        // `cardano_forge_manager_info`, and the same under the reference's name
        // `cardano_forge_manager_info_info` (its client library appends `_info` to info metrics),
        // so dashboards and alerts written for the reference keep working.
        for name in ["cardano_forge_manager_info", "cardano_forge_manager_info_info"] {
            let info = IntGauge::with_opts(
                Opts::new(name, "Build and deployment information (always 1).")
                    .const_label("pod_name", &labels.pod)
                    .const_label("namespace", &labels.namespace)
                    .const_label("version", version)
                    .const_label("network", &labels.network)
                    .const_label("pool_id", &labels.pool_id)
                    .const_label("pool_ticker", &labels.pool_ticker)
                    .const_label("application_type", &labels.application),
            )?;
            info.set(1);
            registry.register(Box::new(info))?;
        }

        let leadership_changes = IntCounter::new(
            "cardano_leadership_changes_total",
            "Times this pod acquired or lost the local lease.",
        )?;
        registry.register(Box::new(leadership_changes.clone()))?;
        let mailbox_depth = IntGaugeVec::new(
            Opts::new(
                "forge_manager_mailbox_depth",
                "Messages waiting in an actor's mailbox.",
            ),
            &["actor"],
        )?;
        registry.register(Box::new(mailbox_depth.clone()))?;
        let fencing_covered = IntGauge::new(
            "forge_manager_fencing_covered",
            "1 when a node guard fences the node if this sidecar dies (S3), 0 with SIGHUP by PID only.",
        )?;
        registry.register(Box::new(fencing_covered.clone()))?;
        let api_call_duration = HistogramVec::new(
            HistogramOpts::new(
                "forge_manager_api_call_duration_seconds",
                "Kubernetes API call durations.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["op"],
        )?;
        registry.register(Box::new(api_call_duration.clone()))?;

        let metrics = Self {
            forging_enabled: pod_gauge(
                "cardano_forging_enabled",
                "1 when this pod's node was reloaded with credentials present (it forges).",
            )?,
            leader_status: pod_gauge("cardano_leader_status", "1 when this pod holds the local lease.")?,
            leadership_changes,
            sighup_signals: counter_vec(
                "cardano_sighup_signals_total",
                "SIGHUPs sent to cardano-node, by reason.",
                &["reason"],
            )?,
            credential_operations: counter_vec(
                "cardano_credential_operations_total",
                "Credential file operations, by operation (copy, remove) and file (kes, vrf, opcert).",
                &["operation", "file"],
            )?,
            credential_validation_failures: counter_vec(
                "forge_manager_credential_validation_failures_total",
                "Source credential files refused, by file and kind of problem.",
                &["file", "kind"],
            )?,
            decisions: counter_vec(
                "forge_manager_decisions_total",
                "Decision transitions, by outcome and reason.",
                &["forge", "reason"],
            )?,
            decision_latency: histogram(
                "forge_manager_decision_latency_seconds",
                "Time from a fact reaching the Decider to its commands being sent.",
            )?,
            lease_renew_latency: histogram(
                "forge_manager_lease_renew_latency_seconds",
                "Duration of successful lease renewals.",
            )?,
            kube_api_errors: counter_vec(
                "forge_manager_kube_api_errors_total",
                "Failed Kubernetes API calls, by operation and kind.",
                &["op", "kind"],
            )?,
            actor_restarts: counter_vec(
                "forge_manager_actor_restarts_total",
                "Actor restarts by the supervisor, by actor.",
                &["actor"],
            )?,
            mailbox_depth,
            fencing_covered,
            api_call_duration,
            kes: KesMetrics::register(registry, &pod_labels)?,
        };
        // Labelled counters exist only once a label set is used; start the known ones at 0 so
        // `increase()` sees their first event (alert rules rely on that).
        for actor in ACTORS {
            metrics.actor_restarts.with_label_values(&[actor]);
        }
        Ok(metrics)
    }
}

/// The registry as Prometheus text exposition format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Encoding gathered families into a String cannot fail for the text format.
    let _ = prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> PodLabels {
        PodLabels {
            pod: "bp-0".into(),
            namespace: "cardano".into(),
            network: "mainnet".into(),
            pool_id: "pool1abcde".into(),
            pool_ticker: "TICK".into(),
            application: "block-producer".into(),
        }
    }

    #[test]
    fn reference_metric_names_and_labels_are_exported() {
        let registry = Registry::new();
        let m = Metrics::register(&registry, &labels(), "0.1.0").expect("register");
        m.forging_enabled.set(1);
        m.sighup_signals.with_label_values(&["enable_forging"]).inc();
        m.credential_operations.with_label_values(&["copy", "kes"]).inc();
        let text = encode(&registry);
        assert!(
            text.contains(
                r#"cardano_forging_enabled{application="block-producer",network="mainnet",pod="bp-0",pool_id="pool1abcde"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"cardano_sighup_signals_total{reason="enable_forging"} 1"#));
        assert!(text.contains(r#"cardano_credential_operations_total{file="kes",operation="copy"} 1"#));
        assert!(text.contains("cardano_forge_manager_info{"));
        assert!(
            text.contains("cardano_forge_manager_info_info{"),
            "the reference's name too"
        );
        assert!(text.contains("cardano_leader_status{"));
    }

    #[test]
    fn two_registries_do_not_share_metrics() {
        let (a, b) = (Registry::new(), Registry::new());
        let ma = Metrics::register(&a, &labels(), "0").expect("a");
        let _mb = Metrics::register(&b, &labels(), "0").expect("b");
        ma.leadership_changes.inc();
        assert!(encode(&a).contains("cardano_leadership_changes_total 1"));
        assert!(encode(&b).contains("cardano_leadership_changes_total 0"));
    }
}
