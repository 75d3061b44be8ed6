//! The judge's rules and the timeline files' round trip, on hand-written events: the helpers
//! that write those events and the refusals of what is no evidence are here; the overlap and
//! gap rules are in [`judge`], the verdict's scenario checks and its JSON in [`verdict`], the
//! files written and read back in [`files`].

mod files;
mod judge;
mod verdict;

use super::*;

const MS: u64 = 1_000_000;

fn ev(t_ms: u64, node: &str, event: EventKind) -> TimelineEvent {
    TimelineEvent {
        t_unix_ns: t_ms * MS,
        node: node.into(),
        event,
        detail: String::new(),
        pid: 0,
        proc_start_ns: 0,
    }
}

fn pev(t_ms: u64, node: &str, pid: u32, event: EventKind) -> TimelineEvent {
    TimelineEvent {
        pid,
        proc_start_ns: u64::from(pid) * 7,
        ..ev(t_ms, node, event)
    }
}

/// Judges `events` up to their last event, with a `start` of an unrelated node at 0 so the
/// timeline counts as evidence.
fn judged(events: &[TimelineEvent]) -> Verdict {
    let mut all = vec![ev(0, "boot", Start)];
    all.extend_from_slice(events);
    judge_window(&all, Window::default()).expect("judged")
}

fn until(events: &[TimelineEvent], from_ms: Option<u64>, until_ms: u64) -> Verdict {
    let w = Window {
        from_unix_ns: from_ms.map(|t| t * MS),
        until_unix_ns: Some(until_ms * MS),
    };
    judge_window(events, w).expect("judged")
}

use EventKind::*;

#[test]
fn an_empty_timeline_is_no_evidence_and_cannot_be_judged() {
    assert_eq!(
        judge_window(&[], Window::default()),
        Err(JudgeError::NoNodeStarted { events: 0 })
    );
    // Events without any start (e.g. the start lines were lost) are refused too.
    let e = judge_window(&[ev(0, "a", ForgingOn), ev(5, "a", Sighup)], Window::default());
    assert_eq!(e, Err(JudgeError::NoNodeStarted { events: 2 }));
}

#[test]
#[should_panic(expected = "no node ever started")]
fn judging_an_empty_live_timeline_panics() {
    judge(&[]);
}

#[test]
fn a_window_that_ends_before_it_starts_is_refused() {
    let e = judge_window(
        &[ev(0, "a", Start)],
        Window {
            from_unix_ns: Some(10),
            until_unix_ns: Some(5),
        },
    );
    assert!(matches!(e, Err(JudgeError::EmptyWindow { .. })), "{e:?}");
}
