//! The reloads that do not stop forging and must leave room before the forging deadline (F21 in
//! docs/safety-findings.md): the deadline and the room rule, the re-assert during the node's
//! start-up, the rotation, and resuming what waited for room. The follow-up reload is in
//! `follow_up.rs`.

use std::time::Duration;

use jiff::Timestamp;

use super::{Boot, Effect, Lifecycle, Note, Phase, Step};
use crate::decision::{Command, ReloadReason, decide};
use crate::lease::Mono;

impl Lifecycle {
    /// The deadline a forging plan carries: the renew deadline, and in quorum mode the forge
    /// deadline too (docs/quorum.md).
    pub(super) fn forge_deadline(&self) -> Option<Mono> {
        let tickets = self.state.tickets.as_ref().and_then(|t| t.until);
        match (self.state.lease.deadline(), tickets) {
            (Some(lease), Some(tickets)) if self.state.config.quorum => Some(lease.min(tickets)),
            (lease, _) => lease,
        }
    }

    /// F21: how little is left before the forging deadline when that is less than
    /// [`LifecycleConfig::reload_room`](super::LifecycleConfig::reload_room) (no deadline:
    /// nothing is left); `None` when a reload that does not stop forging may go now.
    pub(super) fn too_close_to_deadline(&self, now: Mono) -> Option<Duration> {
        let left = self
            .forge_deadline()
            .map_or(Duration::ZERO, |d| d.saturating_since(now));
        (left < self.config.reload_room).then_some(left)
    }

    /// Resumes what waited for room before the deadline (F21), once a fact (a renewal) may have
    /// moved it: a pending rotation, a deferred re-assert. A deferred start needs nothing here:
    /// every fact re-decides.
    pub(super) fn resume_deferred(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if self.phase != Phase::Running || self.in_flight.is_some() {
            return;
        }
        if self.rotation_pending && self.too_close_to_deadline(now).is_none() {
            self.rotation_pending = false;
            self.rotate(now, wall, fx);
        }
        if self.reassert_deferred {
            self.reassert(now, fx);
        }
        self.follow_up_due(now, wall, fx);
    }

    /// Re-sends the forging reload during the node's start-up window.
    pub(super) fn reassert(&mut self, now: Mono, fx: &mut Vec<Effect>) {
        let Some(since) = self.node_up_since else { return };
        // Only a forging decision can be lost in a replay: a standby's files are absent, and a
        // node that booted non-producing does not forge whatever SIGHUP it missed.
        if !self.current.forge
            || self.in_flight.is_some()
            || self.boot != Boot::Absent
            || self.phase != Phase::Running
        {
            return;
        }
        if now.saturating_since(since) > self.config.reassert_window {
            self.node_up_since = None;
            self.reassert_deferred = false;
            return;
        }
        let due = self
            .last_reassert
            .is_none_or(|at| now.saturating_since(at) >= self.config.reassert_every);
        if due && let Some(left) = self.too_close_to_deadline(now) {
            // F21: sent after the next fact or heartbeat that leaves room for it.
            if !self.reassert_deferred {
                fx.push(Effect::Note(Note::ReloadDeferred {
                    step: Step::Reassert.name(),
                    left,
                    room: self.config.reload_room,
                }));
            }
            self.reassert_deferred = true;
            return;
        }
        if due {
            self.reassert_deferred = false;
            self.last_reassert = Some(now);
            let cmds = vec![Command::Reload {
                reason: ReloadReason::Reassert,
            }];
            self.run(cmds, Step::Reassert, fx);
        }
    }

    pub(super) fn rotate(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        if !self.current.forge || self.phase != Phase::Running {
            return; // a standby installs the current set when it starts forging
        }
        if !decide(&self.state, now, wall).forge {
            // The renew deadline may have passed (a paused sidecar): the stop plan comes next,
            // and nothing may be installed before it.
            fx.push(Effect::Note(Note::RotationSkipped));
            self.redecide(now, wall, fx);
            return;
        }
        if self.in_flight.is_some() {
            self.rotation_pending = true;
            return;
        }
        if let Some(left) = self.too_close_to_deadline(now) {
            // F21: installed after the next fact that leaves room for it (a renewal).
            fx.push(Effect::Note(Note::ReloadDeferred {
                step: Step::Rotation.name(),
                left,
                room: self.config.reload_room,
            }));
            self.rotation_pending = true;
            return;
        }
        fx.push(Effect::Note(Note::RotationInstalling));
        let cmds = vec![
            Command::Install,
            Command::Reload {
                reason: ReloadReason::Rotation,
            },
        ];
        self.run(cmds, Step::Rotation, fx);
    }
}
