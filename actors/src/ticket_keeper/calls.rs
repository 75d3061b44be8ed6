//! TicketKeeper's calls to the participants' API servers: reads and writes of a ticket,
//! each under its own timeout, and what their answers do to the ticket's state.

use std::{sync::Arc, time::Duration};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use forge_core::lease::{LeaseRecord, Mono};

use super::{ACTOR, Outcome, Ticket, TicketKeeper};
use crate::ports::{ApiError, LeaseApi, LeaseSnapshot};

impl TicketKeeper {
    pub(super) fn read(&mut self, i: usize, ctx: &mut Context<Self>) {
        self.count(i, "read");
        self.tickets[i].in_flight = true;
        let port = self.port(i);
        let timeout = self.settings.call_timeout;
        let fut = async move {
            let port = port.await?;
            let call = tokio::time::timeout(timeout, port.get())
                .await
                .map_err(|_| ApiError::Timeout {
                    op: "ticket get",
                    after: timeout,
                })??;
            Ok::<_, ApiError>((port, call))
        };
        self.spawn(i, fut, None, false, ctx);
    }

    pub(super) fn write(
        &mut self,
        i: usize,
        resource_version: Option<String>,
        record: LeaseRecord,
        release: bool,
        ctx: &mut Context<Self>,
    ) {
        self.count(i, "write");
        self.tickets[i].in_flight = true;
        let port = self.port(i);
        let timeout = self.settings.call_timeout;
        let sent = self.clock.now();
        let fut = async move {
            let port = port.await?;
            let call = match resource_version {
                Some(rv) => port.replace(rv, record),
                None => port.create(record),
            };
            let written = tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| ApiError::Timeout {
                    op: "ticket write",
                    after: timeout,
                })??;
            Ok::<_, ApiError>((port, Some(written)))
        };
        self.spawn(i, fut, Some(sent), release, ctx);
    }

    /// Runs a call of ticket `i` and folds its outcome in. `sent`: a write sent then.
    pub(super) fn spawn(
        &mut self,
        i: usize,
        fut: impl std::future::Future<Output = Result<(Arc<dyn LeaseApi>, Option<LeaseSnapshot>), ApiError>>
        + 'static,
        sent: Option<Mono>,
        release: bool,
        ctx: &mut Context<Self>,
    ) {
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            let t = &mut act.tickets[i];
            t.in_flight = false;
            let outcome = match (sent, result) {
                (None, Ok((port, snapshot))) => {
                    t.port = Some(port);
                    Outcome::Read(Ok(snapshot))
                }
                (None, Err(e)) => Outcome::Read(Err(e)),
                (Some(sent), Ok((port, snapshot))) => {
                    t.port = Some(port);
                    Outcome::Wrote {
                        result: snapshot.ok_or_else(|| ApiError::Invalid("no answer".into())),
                        sent,
                        release,
                    }
                }
                (Some(sent), Err(e)) => Outcome::Wrote {
                    result: Err(e),
                    sent,
                    release,
                },
            };
            act.outcome(i, outcome);
            act.drive(ctx);
        }));
    }

    pub(super) fn outcome(&mut self, i: usize, outcome: Outcome) {
        let now = self.clock.now();
        let me = self.settings.me.clone();
        let timing = self.settings.timing;
        let before = self.seen_holder(i);
        let t = &mut self.tickets[i];
        let ok = match outcome {
            Outcome::Read(Ok(snapshot)) => {
                t.last_read = Some(now);
                match snapshot {
                    None => t.state.observed(None, None, now, &me),
                    Some(s) => t.state.observed(Some(s.record), s.resource_version, now, &me),
                }
                true
            }
            Outcome::Read(Err(e)) => {
                t.last_read = Some(now);
                Self::failed(t, "read", &e, now, timing.retry_period);
                false
            }
            Outcome::Wrote {
                result: Ok(s),
                sent,
                release,
            } => {
                if release {
                    t.state.observed(Some(s.record), s.resource_version, now, &me);
                } else {
                    t.state.wrote(s.record, s.resource_version, sent, now, &timing);
                }
                true
            }
            Outcome::Wrote { result: Err(e), .. } => {
                t.state.write_failed();
                Self::failed(t, "write", &e, now, timing.retry_period);
                false
            }
        };
        if ok {
            t.answered(now);
        }
        let after = self.seen_holder(i);
        if before != after && after.is_some() {
            tracing::info!(
                actor = ACTOR, participant = %self.tickets[i].name, holder = ?after, previous = ?before,
                "forge ticket holder changed"
            );
        }
    }

    pub(super) fn failed(t: &mut Ticket, what: &str, e: &ApiError, now: Mono, retry: Duration) {
        let conflict = matches!(e, ApiError::Conflict(_));
        if !conflict {
            t.retry_at = Some(now + retry);
            if t.reachable != Some(false) {
                tracing::warn!(
                    actor = ACTOR, participant = %t.name, call = what, error = %e,
                    "ticket call failed: its API server may be unreachable; a ticket we hold counts until its renew \
                     deadline, and the participant counts as out of reach once every call has failed for a lease duration"
                );
            }
            t.reachable = Some(false);
            t.unreachable_since.get_or_insert(now);
        } else {
            tracing::info!(actor = ACTOR, participant = %t.name, "ticket write lost a race (409): reading it again");
            // The API server answered: it is in reach.
            t.answered(now);
        }
    }
}

impl Ticket {
    /// Its API server answered at `now` (a call's answer, a 409, a watch event).
    pub(super) fn answered(&mut self, now: Mono) {
        if self.reachable == Some(false) {
            tracing::info!(actor = ACTOR, participant = %self.name, "ticket reachable again");
        }
        self.reachable = Some(true);
        self.unreachable_since = None;
        self.last_ok = Some(now);
    }
}
