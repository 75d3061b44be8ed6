//! The follow-up reload after a start that an earlier stopping reload may undo (module docs,
//! "Follow-up"; docs/safety-findings.md F24).

use jiff::Timestamp;

use super::{Effect, Lifecycle, Note, Phase, Step};
use crate::decision::{Command, ReloadReason, decide};
use crate::lease::Mono;

/// A follow-up reload that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FollowUp {
    /// When every stopping reload sent before the start has had its `STOP_GRACE`.
    at: Mono,
    /// The node process it is for ([`Lifecycle::node_process`]).
    process: u64,
    /// Reported as deferred for lack of room before the deadline (F21): logged once.
    deferred: bool,
}

impl Lifecycle {
    /// A plan finished whose reload may be undone by an earlier stopping reload until `until`
    /// (the NodeSignaller's answer): the follow-up is due then, for the node process now running.
    pub(super) fn follow_up_reported(
        &mut self,
        step: &Step,
        until: Option<Mono>,
        now: Mono,
        fx: &mut Vec<Effect>,
    ) {
        let Some(at) = until else { return };
        if !step.forges() {
            return; // only a reload that turns forging on is reported, and only that needs one
        }
        let at = match self.follow_up {
            // Already due then (a re-assert the signaller skipped reports it again): logged once.
            Some(f) if f.process == self.node_process && f.at >= at => return,
            _ => at,
        };
        self.follow_up = Some(FollowUp {
            at,
            process: self.node_process,
            deferred: false,
        });
        fx.push(Effect::Note(Note::FollowUpPlanned {
            wait: at.saturating_since(now),
        }));
        fx.push(Effect::WakeAt(at));
    }

    /// Plans the follow-up reload once due and nothing is in flight, if the node is still meant
    /// to forge, with the reload room left (F21); else waits for a fact or heartbeat that leaves
    /// it.
    pub(super) fn follow_up_due(&mut self, now: Mono, wall: Timestamp, fx: &mut Vec<Effect>) {
        let Some(f) = self.follow_up else { return };
        if self.phase != Phase::Running || self.in_flight.is_some() || now < f.at || self.held(now) {
            return;
        }
        let meant = self.current.forge
            && !self.restart
            && decide(&self.state, now, wall).forge
            && self.state.node.up
            && f.process == self.node_process;
        if !meant {
            // A stop (or the restart of a fenced node) is under way or due: it reloads the node
            // itself.
            self.follow_up = None;
            fx.push(Effect::Note(Note::FollowUpDropped));
            return;
        }
        if let Some(left) = self.too_close_to_deadline(now) {
            if !f.deferred {
                fx.push(Effect::Note(Note::ReloadDeferred {
                    step: Step::FollowUp.name(),
                    left,
                    room: self.config.reload_room,
                }));
            }
            self.follow_up = Some(FollowUp { deferred: true, ..f });
            return;
        }
        self.follow_up = None;
        fx.push(Effect::Note(Note::FollowUpSending));
        let cmds = vec![Command::Reload {
            reason: ReloadReason::FollowUp,
        }];
        self.run(cmds, Step::FollowUp, fx);
    }
}
