//! The overlap and gap rules: overlaps measured and counted once, processes of one name,
//! exits and restarts, windows, gaps and transitions.

use super::*;

#[test]
fn a_clean_handover_has_no_overlap_and_measures_the_gap() {
    let events = [
        ev(0, "a", Start),
        ev(10, "a", ForgingOn),
        ev(100, "a", ForgingOff),
        ev(130, "b", ForgingOn),
        ev(200, "b", Exit),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 0.0);
    assert_eq!(v.max_forgers, 1);
    assert_eq!(v.max_gap_ms, 30.0);
    assert_eq!(v.transitions, 3);
    assert_eq!(v.forgers, vec!["a", "b"]);
    assert_eq!(v.forging_ms["a"], 90.0);
    assert_eq!(v.forging_ms["b"], 70.0);
    assert!(v.forging_at_end.is_empty());
}

#[test]
fn a_deliberate_overlap_is_measured() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(50, "b", ForgingOn),
        ev(80, "a", ForgingOff),
        ev(100, "b", ForgingOff),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 30.0);
    assert_eq!(v.max_forgers, 2);
    // Gap from b's forging_off (100) to the last event (100) is 0.
    assert_eq!(v.max_gap_ms, 0.0);
    assert_eq!(overlaps(&events).len(), 1);
    assert_eq!(overlaps(&events)[0].nodes, vec!["a", "b"]);
    assert_eq!(overlaps(&events)[0].from_unix_ns, 50 * MS);
    assert_eq!(overlaps(&events)[0].to_unix_ns, 80 * MS);
}

#[test]
fn three_forgers_at_once_count_the_overlap_once() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(10, "b", ForgingOn),
        ev(20, "c", ForgingOn),
        ev(30, "a", ForgingOff),
        ev(40, "b", ForgingOff),
        ev(50, "c", ForgingOff),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 30.0);
    assert_eq!(v.max_forgers, 3);
}

#[test]
fn a_sub_millisecond_overlap_is_still_greater_than_zero() {
    let at = |t, node: &str, event| TimelineEvent {
        t_unix_ns: t,
        ..ev(0, node, event)
    };
    let events = [
        at(0, "a", Start),
        at(1_000, "a", ForgingOn),
        at(2_000, "b", ForgingOn),
        at(2_500, "a", ForgingOff),
    ];
    let v = judge_window(&events, Window::default()).expect("judged");
    assert!(v.overlap_ms > 0.0 && v.overlap_ms < 0.001, "{v:?}");
}

#[test]
fn unordered_input_gives_the_same_verdict_as_ordered_input() {
    let ordered = [
        ev(0, "a", Start),
        ev(0, "a", ForgingOn),
        ev(50, "b", ForgingOn),
        ev(80, "a", ForgingOff),
        ev(120, "b", ForgingOff),
        ev(300, "a", ForgingOn),
        ev(310, "a", Exit),
    ];
    let mut shuffled = ordered.to_vec();
    shuffled.reverse();
    shuffled.swap(0, 3);
    let w = Window::default();
    assert_eq!(judge_window(&shuffled, w), judge_window(&ordered, w));
    let v = judge_window(&ordered, w).expect("judged");
    assert_eq!(v.overlap_ms, 30.0);
    assert_eq!(v.max_gap_ms, 180.0);
    assert_eq!(v.transitions, 5);
}

#[test]
fn exit_without_forging_off_ends_forging() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(10, "a", Exit),
        ev(20, "b", ForgingOn),
        ev(30, "b", ForgingOff),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 0.0);
    assert_eq!(v.max_gap_ms, 10.0);
    assert_eq!(v.transitions, 3);
}

#[test]
fn an_old_line_restart_without_exit_ends_the_killed_process_forging() {
    // Lines without a pid: the name is the process, and its new start ends its forging.
    let events = [
        ev(0, "a", ForgingOn),
        ev(40, "a", Start),
        ev(50, "b", ForgingOn),
        ev(60, "b", Exit),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 0.0);
    assert_eq!(v.max_gap_ms, 10.0);
}

#[test]
fn a_new_process_of_the_same_name_does_not_end_its_predecessors_forging() {
    // a (pid 1) was SIGKILLed while forging and nobody wrote its exit; a (pid 2) started:
    // as far as the evidence goes, pid 1 still forges.
    let events = [
        pev(0, "a", 1, Start),
        pev(5, "a", 1, ForgingOn),
        pev(40, "a", 2, Start),
        ev(50, "b", Start),
        ev(50, "b", ForgingOn),
    ];
    let v = until(&events, None, 60);
    assert_eq!(v.overlap_ms, 10.0, "{v:?}");
    assert_eq!(v.forging_at_end, vec!["a", "b"]);
    assert_eq!(v.processes.len(), 3);
}

#[test]
fn two_processes_of_one_name_forging_at_once_are_an_overlap() {
    let events = [
        pev(0, "a", 1, Start),
        pev(0, "a", 1, ForgingOn),
        pev(50, "a", 2, Start),
        pev(60, "a", 2, ForgingOn),
        pev(100, "a", 1, ForgingOff),
        pev(120, "a", 2, Exit),
    ];
    let v = judge_window(&events, Window::default()).expect("judged");
    assert_eq!(v.overlap_ms, 40.0);
    assert_eq!(v.max_forgers, 2);
    assert_eq!(v.forgers, vec!["a"]);
    // The name forged from 0 to 120 (the union of its processes).
    assert_eq!(v.forging_ms["a"], 120.0);
    let own: Vec<f64> = v.processes.iter().map(|p| p.forging_ms).collect();
    assert_eq!(own, vec![100.0, 60.0]);
    let o = overlaps(&events);
    assert_eq!(o[0].nodes, vec!["a (pid 1)", "a (pid 2)"]);
    assert!(forging_at_end(&events).is_empty());
}

#[test]
fn an_overlap_still_open_at_the_last_event_counts_until_the_end_of_the_window() {
    let events = [ev(0, "a", Start), ev(0, "a", ForgingOn), ev(100, "b", ForgingOn)];
    // Up to the last event the overlap has no length yet, but two forge at once.
    let v = judge_window(&events, Window::default()).expect("judged");
    assert_eq!(v.overlap_ms, 0.0);
    assert_eq!(v.max_forgers, 2);
    assert_eq!(v.forging_at_end, vec!["a", "b"]);
    // Up to the judge's end, it counts.
    let v = until(&events, None, 250);
    assert_eq!(v.overlap_ms, 150.0);
    assert_eq!(overlaps_until(&events, 250 * MS)[0].to_unix_ns, 250 * MS);
}

#[test]
fn a_live_verdict_counts_an_open_overlap_until_now() {
    let now = unix_now_ns();
    let at = |t, node: &str, event| TimelineEvent {
        t_unix_ns: t,
        ..ev(0, node, event)
    };
    let events = [
        at(now - 50 * MS, "a", Start),
        at(now - 50 * MS, "a", ForgingOn),
        at(now - 20 * MS, "b", ForgingOn),
    ];
    let v = judge(&events);
    assert!(v.overlap_ms >= 20.0, "{v:?}");
}

#[test]
fn a_node_still_forging_at_the_end_forges_until_the_last_event() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(100, "b", ForgingOn),
        ev(250, "c", Sighup),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 150.0);
    assert_eq!(v.max_gap_ms, 0.0);
    assert_eq!(overlaps(&events)[0].to_unix_ns, 250 * MS);
}

#[test]
fn the_gap_runs_to_the_last_event_when_nobody_forges_at_the_end() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOff),
        ev(500, "b", Sighup),
    ];
    assert_eq!(judged(&events).max_gap_ms, 490.0);
}

#[test]
fn events_before_the_first_forging_on_do_not_count_as_a_gap() {
    let events = [
        ev(0, "a", Start),
        ev(1000, "b", Start),
        ev(2000, "a", ForgingOn),
        ev(2010, "a", Exit),
    ];
    let v = judged(&events);
    assert_eq!(v.max_gap_ms, 0.0);
    assert_eq!(v.forgers, vec!["a"]);
}

#[test]
fn a_window_counts_its_gaps_from_its_start_and_its_forging_inside_it() {
    let events = [
        ev(0, "a", Start),
        ev(0, "a", ForgingOn),
        ev(100, "a", ForgingOff),
        ev(400, "b", ForgingOn),
        ev(450, "b", ForgingOff),
        ev(460, "a", ForgingOn),
    ];
    // [50, 500]: a forges 50..100, nobody 100..400 (300), b 400..450, gap 10, a 460..500.
    let v = until(&events, Some(50), 500);
    assert_eq!(v.max_gap_ms, 300.0);
    assert_eq!(v.forging_ms["a"], 90.0);
    assert_eq!(v.forging_ms["b"], 50.0);
    assert_eq!(v.transitions, 4);
    assert_eq!(v.forgers, vec!["a", "b"]);
    // [150, 420]: the window begins with nobody forging, so it begins with a gap.
    let v = until(&events, Some(150), 420);
    assert_eq!(v.max_gap_ms, 250.0);
    assert_eq!(v.forgers, vec!["b"]);
    assert_eq!(v.forging_at_end, vec!["b"]);
    // [0, 40]: a forges across the window's start and end.
    let v = until(&events, Some(10), 40);
    assert_eq!(v.forgers, vec!["a"]);
    assert_eq!(v.forging_ms["a"], 30.0);
    assert_eq!(v.max_gap_ms, 0.0);
    assert_eq!(v.transitions, 0);
    // A window with nobody forging at all is one gap.
    let v = until(&events, Some(200), 300);
    assert_eq!(v.max_gap_ms, 100.0);
    assert!(v.forgers.is_empty());
}

#[test]
fn a_zero_length_forger_does_not_end_a_gap() {
    let events = [
        ev(0, "a", Start),
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOff),
        ev(60, "b", ForgingOn),
        ev(60, "b", ForgingOff),
        ev(110, "c", ForgingOn),
    ];
    let v = judge_window(&events, Window::default()).expect("judged");
    assert_eq!(v.max_gap_ms, 100.0);
}

#[test]
fn the_longest_of_several_gaps_is_reported() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOff),
        ev(30, "b", ForgingOn),
        ev(40, "b", ForgingOff),
        ev(100, "a", ForgingOn),
        ev(110, "a", ForgingOff),
        ev(115, "b", ForgingOn),
    ];
    assert_eq!(judged(&events).max_gap_ms, 60.0);
}

#[test]
fn a_repeated_forging_on_changes_nothing_but_counts_as_a_transition() {
    let events = [
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOn),
        ev(20, "a", ForgingOff),
    ];
    let v = judged(&events);
    assert_eq!(v.overlap_ms, 0.0);
    assert_eq!(v.transitions, 3);
}

#[test]
fn a_timeline_without_forging_has_no_forgers() {
    let events = [
        ev(0, "a", Start),
        ev(10, "a", Sighup),
        ev(11, "a", NotEffective),
        ev(20, "a", Exit),
    ];
    let v = judged(&events);
    assert!(v.forgers.is_empty());
    assert_eq!(v.max_gap_ms, 0.0);
    assert_eq!(v.transitions, 0);
    assert_eq!(v.max_forgers, 0);
}
