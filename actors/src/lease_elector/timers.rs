//! The LeaseElector's timers: the deadline timer that reports `LeaseLost` at our renew deadline
//! (S1), the takeover timer of a contending standby, the retry-period tick of a holder and the
//! jittered resync read of a standby.

use std::time::Duration;

use actix::{AsyncContext, Context, SpawnHandle};
use forge_core::lease::Verdict;

use super::{AfterRead, JITTER_FACTOR, LeaseElector, Seen};

impl LeaseElector {
    pub(super) fn cancel(ctx: &mut Context<Self>, handle: &mut Option<SpawnHandle>) {
        if let Some(h) = handle.take() {
            ctx.cancel_future(h);
        }
    }

    /// Fires `LeaseLost` at our deadline unless a renewal moves it first.
    pub(super) fn arm_deadline(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.deadline_timer);
        if let Some(h) = self.held {
            let delay = h.deadline.saturating_since(self.clock.now());
            self.deadline_timer = Some(ctx.run_later(delay, |act, ctx| {
                act.deadline_timer = None;
                act.deadline_reached(ctx);
            }));
        }
    }

    fn deadline_reached(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        match self.held {
            Some(h) if h.must_stop_forging(now) => {
                let holder = self.other_holder();
                self.lose(holder, "renew deadline passed without a successful renewal", ctx);
                self.arm_takeover(ctx);
            }
            Some(_) => self.arm_deadline(ctx),
            None => {}
        }
    }

    /// A contending standby tries again at the earliest instant the holder's lease may have
    /// expired (our observation + its duration), unless the record changes first.
    pub(super) fn arm_takeover(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.conn.takeover);
        if !self.conn.connected || !self.contending || self.held.is_some() {
            return;
        }
        let Seen::Present(o) = &self.conn.seen else {
            return;
        };
        let now = self.clock.now();
        if let Verdict::HeldBy { until, .. } = o.verdict(&self.identity, now, &self.timing) {
            self.conn.takeover = Some(ctx.run_later(until.saturating_since(now), |act, ctx| {
                act.conn.takeover = None;
                act.consider(ctx);
            }));
        }
    }

    /// Schedules the next step: a renewal `retry_period` after the last write was sent while we
    /// hold the lease, else a standby's resync read after a lease duration plus a jitter (the
    /// watch shows every change in between; the takeover timer acts on a silent holder).
    pub(super) fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        Self::cancel(ctx, &mut self.conn.tick);
        if !self.conn.connected || !self.contending || self.conn.in_flight || !self.releases.is_empty() {
            return;
        }
        let delay = if self.held.is_some() {
            let now = self.clock.now();
            self.conn.last_write_sent.map_or(Duration::ZERO, |s| {
                (s + self.timing.retry_period).saturating_since(now)
            })
        } else if self.conn.retry_soon {
            self.timing.retry_period + self.jitter()
        } else {
            self.timing.duration + self.jitter()
        };
        self.conn.tick = Some(ctx.run_later(delay, |act, ctx| {
            act.conn.tick = None;
            act.tick(ctx);
        }));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.conn.conflicts = 0;
        self.conn.retry_soon = false;
        if !self.conn.connected || !self.contending || self.conn.in_flight || !self.releases.is_empty() {
            return;
        }
        if self.held.is_some() && self.record_is_ours() {
            self.write(ctx);
        } else {
            self.read(AfterRead::Consider, ctx);
        }
    }

    /// `retry_period * JITTER_FACTOR * u`, `u` uniform in [0, 1) (xorshift64*): added to a
    /// standby's wait (a lease duration for a resync, a retry period after a failed call).
    fn jitter(&mut self) -> Duration {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        self.timing.retry_period.mul_f64(JITTER_FACTOR * unit)
    }
}
