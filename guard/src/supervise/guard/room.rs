//! The reload room (F21 in docs/safety-findings.md): an enabling reload with less than the room
//! left of the permit is refused, and a fence that follows an enabling reload by less than the
//! room is repeated once that reload has had it.

use std::time::Duration;

use super::{Guard, Signal, log, ms_of_ns, ns};

/// Whether a reload that would enable forging must be refused: `Some(ms left of the permit)`
/// when less than `room` is left of the permit ending at `deadline` (all CLOCK_MONOTONIC ns).
/// A zero room refuses nothing; without a permit the no-permit rule applies instead.
pub(super) fn too_late(deadline: Option<u64>, now: u64, room: Duration) -> Option<u64> {
    let deadline = deadline?;
    let left = deadline.saturating_sub(now);
    (!room.is_zero() && left < ns(room)).then(|| ms_of_ns(left))
}

/// When a fence at `now` must reload the node once more: the instant the last enabling reload,
/// sent at `enabling_sent`, has had `room`, if that is still ahead (that reload may take effect
/// after the fence's own and enable forging again).
pub(super) fn recheck_after_fence(enabling_sent: Option<u64>, now: u64, room: Duration) -> Option<u64> {
    let at = enabling_sent?.saturating_add(ns(room));
    (!room.is_zero() && at > now).then_some(at)
}

impl Guard {
    /// Whether a SIGHUP now could enable forging: every target file exists (the node disables
    /// forging when any of them is missing).
    pub(super) fn enabling(&self) -> bool {
        self.targets.iter().all(|t| t.exists())
    }

    /// A fence followed an enabling reload by less than the reload room: that reload may take
    /// effect after the fence's and enable forging again (the node handles each SIGHUP in a
    /// thread of its own). Now that it has had its room, reload the node once more without
    /// the files, unless a permit was granted since. A node whose "Enabling" line the guard
    /// sees is re-fenced on that line already; this covers one whose lines it does not see.
    pub(super) fn recheck(&mut self) {
        if self.permit.is_some() {
            return;
        }
        if let Some(t) = self.present_target() {
            // Written since the fence: the usual fence removes them first.
            let why = format!(
                "{} present after the fence, once the enabling reload sent before it had had the reload room",
                t.display()
            );
            self.fence("refenced", &why);
            return;
        }
        let sent = self.signal(Signal::HUP);
        log(format_args!(
            "an enabling reload was sent less than the reload room ({} ms) before the last fence and may have \
             taken effect after it: the node is reloaded once more without credentials: {sent}",
            self.reload_room.as_millis()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const ROOM: Duration = Duration::from_secs(2);

    #[test]
    fn an_enabling_reload_is_refused_with_less_than_the_room_left_of_the_permit() {
        let now = 1_000_000 * MS;
        assert_eq!(too_late(Some(now + 1_999 * MS), now, ROOM), Some(1_999));
        assert_eq!(too_late(Some(now + 10 * MS), now, ROOM), Some(10));
        // A permit already past (the loop fences it next): nothing left.
        assert_eq!(too_late(Some(now - MS), now, ROOM), Some(0));
        assert_eq!(
            too_late(Some(now + 2_000 * MS), now, ROOM),
            None,
            "exactly the room is enough"
        );
        assert_eq!(too_late(Some(now + 60_000 * MS), now, ROOM), None);
        assert_eq!(
            too_late(Some(now + MS), now, Duration::ZERO),
            None,
            "a zero room disables the rule"
        );
        assert_eq!(
            too_late(None, now, ROOM),
            None,
            "no permit: the no-permit rule decides"
        );
    }

    #[test]
    fn a_fence_right_after_an_enabling_reload_is_followed_by_one_more_reload_when_it_had_the_room() {
        let sent = 1_000_000 * MS;
        assert_eq!(
            recheck_after_fence(Some(sent), sent + 300 * MS, ROOM),
            Some(sent + 2_000 * MS)
        );
        assert_eq!(
            recheck_after_fence(Some(sent), sent + 2_000 * MS, ROOM),
            None,
            "it had its room"
        );
        assert_eq!(recheck_after_fence(Some(sent), sent + 5_000 * MS, ROOM), None);
        assert_eq!(
            recheck_after_fence(None, sent, ROOM),
            None,
            "no enabling reload was sent"
        );
        assert_eq!(recheck_after_fence(Some(sent), sent + MS, Duration::ZERO), None);
    }
}
