//! A start that an earlier stopping reload may undo (module docs of the NodeSignaller, "A start
//! is not undone by an earlier stop"; docs/safety-findings.md F24): the signaller keeps when
//! every stopping reload sent to the node process has had its `STOP_GRACE`, and says so in the
//! answer to a reload that may turn forging on. The Decider's lifecycle plans the follow-up.

use forge_core::decision::ReloadReason;
use tokio::time::Instant;

use super::NodeSignaller;
use crate::messages::Reloaded;

impl NodeSignaller {
    /// A stopping reload reached the node now (ours, or the guard's own fence): it takes effect
    /// within `STOP_GRACE`, and a start sent before then may take effect first.
    pub(super) fn stopping_reload_sent(&mut self) {
        let done = Instant::now() + self.stop.grace;
        self.stops_done_by = Some(self.stops_done_by.map_or(done, |t| t.max(done)));
    }

    /// The answer to a `reason` reload that went out: one that may turn forging on, sent while
    /// an earlier stopping reload may still be under way in the node, may be undone until that
    /// one has had its `STOP_GRACE`.
    pub(super) fn answer(&self, reason: ReloadReason) -> Reloaded {
        if !reason.turns_forging_on() {
            return Reloaded::default();
        }
        let now = Instant::now();
        let Some(at) = self.stops_done_by.filter(|t| *t > now) else {
            return Reloaded::default();
        };
        tracing::info!(
            actor = "node_signaller",
            reason = reason.as_str(),
            in_ms = (at - now).as_millis() as u64,
            "reload sent while an earlier stopping reload may still be under way in the node (it handles \
             SIGHUPs concurrently: that one could take effect last and leave it not forging); telling the \
             Decider, which reloads once more when it has had its STOP_GRACE"
        );
        Reloaded {
            undoable_until: Some(at),
        }
    }
}
