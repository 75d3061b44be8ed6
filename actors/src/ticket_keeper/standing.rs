//! TicketKeeper's standing: what goes to the Decider, the metrics and `/status`.

use forge_core::{
    decision::Event,
    lease::Mono,
    quorum::{Seen, Want, standing, want},
};

use super::{ACTOR, QuorumReport, TicketKeeper, TicketReport};
use crate::messages::{Fact, StatusFigures};

impl TicketKeeper {
    /// Sends the standing to the Decider when it changed, and refreshes metrics and `/status`.
    pub(super) fn report_standing(&mut self, now: Mono) {
        let want = want(self.intent);
        let mut s = standing(self.tickets.iter().map(|t| t.state.held_until(now)), now);
        // Reach goes to the Decider only while we call (it matters only to the local leader).
        // It is kept across a blip of the local lease: the count of failures goes on, so a
        // primary that loses its lease for a moment while cut off does not restart it; a new
        // tenure reads every ticket at once, and the first answer ends it.
        if want != Want::Leave {
            s.unreachable_since = self
                .tickets
                .iter()
                .filter_map(|t| Some((t.name.clone(), t.unreachable_since?)))
                .collect();
        }
        if self.sent.as_ref() != Some(&s) {
            let had = self.sent.as_ref().map(|sent| sent.until.is_some());
            let lost = had == Some(true) && s.until.is_none();
            let won = had != Some(true) && s.until.is_some();
            if lost {
                tracing::warn!(
                    actor = ACTOR,
                    held = s.held,
                    needed = s.needed,
                    "forge ticket majority lost: forging stops by the forge deadline"
                );
            } else if won {
                tracing::info!(
                    actor = ACTOR,
                    held = s.held,
                    needed = s.needed,
                    "forge ticket majority held"
                );
            }
            self.sent = Some(s.clone());
            self.fact
                .do_send(Fact::now(Event::TicketsChanged { standing: s.clone() }));
        }
        let mut holders = std::collections::BTreeMap::new();
        let tickets: Vec<TicketReport> = self
            .tickets
            .iter()
            .map(|t| {
                let held_by_us = t.state.held_until(now).is_some();
                let holder = match &t.state.seen {
                    Seen::Record(o) => o.record.holder().map(str::to_string),
                    _ => None,
                };
                if let Some(h) = &holder {
                    *holders.entry(h.clone()).or_insert(0) += 1;
                }
                let age = t.last_ok.map(|at| now.saturating_since(at).as_secs_f64());
                if let Some(m) = &self.metrics {
                    m.held.with_label_values(&[&t.name]).set(i64::from(held_by_us));
                    m.reachable
                        .with_label_values(&[&t.name])
                        .set(i64::from(t.reachable == Some(true)));
                    m.age.with_label_values(&[&t.name]).set(age.unwrap_or(-1.0));
                }
                TicketReport {
                    participant: t.name.clone(),
                    witness: t.witness,
                    holder,
                    held_by_us,
                    reachable: t.reachable,
                    age_seconds: age,
                }
            })
            .collect();
        if let Some(m) = &self.metrics {
            m.held_total.set(i64::try_from(s.held).unwrap_or(0));
        }
        let report = QuorumReport {
            want: match want {
                Want::Take => "take",
                Want::Keep => "keep",
                Want::Release => "release",
                Want::Leave => "leave",
            }
            .to_string(),
            held: s.held,
            needed: s.needed,
            forge_deadline_in_ms: s.until.map(|u| u.saturating_since(now).as_millis() as u64),
            tickets,
            holders,
            break_glass: self.settings.break_glass,
        };
        if self.report_sent.as_ref() != Some(&report) {
            self.report.do_send(StatusFigures::Quorum(report.clone()));
            self.report_sent = Some(report);
        }
    }
}
