//! TicketKeeper's gauges and counters (quorum mode): per participant and in total.

use prometheus::{GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The keeper's gauges.
#[derive(Clone)]
pub struct TicketMetrics {
    /// 1 while we count the participant's ticket as ours.
    pub held: IntGaugeVec,
    /// 1 when the participant's API server answered our last call.
    pub reachable: IntGaugeVec,
    /// Seconds since our last successful call to the participant.
    pub age: GaugeVec,
    /// Tickets we hold.
    pub held_total: IntGauge,
    /// Tickets a majority needs.
    pub needed: IntGauge,
    /// 1 while `QUORUM_BREAK_GLASS` is on.
    pub break_glass: IntGauge,
    /// Requests to the participants' API servers by `participant` and `call` (`read`,
    /// `write`, `watch`: a watch opened).
    pub calls: IntCounterVec,
}

impl TicketMetrics {
    /// Registers the gauges in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let vec = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["participant"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let age = GaugeVec::new(
            Opts::new(
                "cardano_forge_ticket_age_seconds",
                "Seconds since this pod's last successful call to the participant's ticket (quorum mode; -1 never).",
            ),
            &["participant"],
        )?;
        registry.register(Box::new(age.clone()))?;
        let calls = IntCounterVec::new(
            Opts::new(
                "cardano_forge_ticket_calls_total",
                "Requests this pod sent to a participant's forge ticket (quorum mode), by call: read, write, \
                 watch (a watch opened; its events need no request).",
            ),
            &["participant", "call"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        Ok(Self {
            calls,
            held: vec(
                "cardano_forge_ticket_held",
                "1 while this pod counts the participant's forge ticket as held by its region (quorum mode).",
            )?,
            reachable: vec(
                "cardano_forge_ticket_reachable",
                "1 when the participant's API server answered this pod's last ticket call (quorum mode).",
            )?,
            age,
            held_total: gauge(
                "cardano_forge_tickets_held",
                "Forge tickets this pod counts as held by its region (quorum mode).",
            )?,
            needed: gauge(
                "cardano_forge_tickets_needed",
                "Forge tickets a majority needs (quorum mode).",
            )?,
            break_glass: gauge(
                "cardano_forge_quorum_break_glass",
                "1 while QUORUM_BREAK_GLASS is on: an override forcing Enabled forges without a majority.",
            )?,
        })
    }
}
