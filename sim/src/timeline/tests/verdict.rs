//! The verdict's scenario checks (no overlap, someone forged, the gap within its bound) and
//! its JSON keys.

use super::*;

#[test]
fn a_clean_handover_passes_the_scenario_checks() {
    let v = judged(&[
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOff),
        ev(30, "b", ForgingOn),
    ]);
    v.assert_no_overlap("handover");
    v.assert_gap_within("handover", std::time::Duration::from_millis(20));
}

#[test]
#[should_panic(expected = "(x): two nodes forged at once")]
fn an_overlap_fails_the_scenario_check() {
    judged(&[
        ev(0, "a", ForgingOn),
        ev(10, "b", ForgingOn),
        ev(11, "a", ForgingOff),
    ])
    .assert_no_overlap("(x)");
}

#[test]
#[should_panic(expected = "(x): two forgers at one instant")]
fn two_forgers_for_no_time_fail_the_scenario_check() {
    // The second forger starts at the very instant the first stops: 0 ms of overlap, but two
    // forgers at one instant.
    let v = judged(&[
        ev(0, "a", ForgingOn),
        ev(10, "b", ForgingOn),
        ev(10, "a", ForgingOff),
    ]);
    assert_eq!(v.overlap_ms, 0.0);
    v.assert_no_overlap("(x)");
}

#[test]
#[should_panic(expected = "(x): nobody forged")]
fn a_run_without_a_forger_fails_the_scenario_check() {
    judged(&[ev(5, "a", Start)]).assert_no_overlap("(x)");
}

#[test]
#[should_panic(expected = "(x): nobody forged for 20 ms, bound 19 ms")]
fn a_gap_over_its_bound_fails_the_scenario_check() {
    judged(&[
        ev(0, "a", ForgingOn),
        ev(10, "a", ForgingOff),
        ev(30, "b", ForgingOn),
    ])
    .assert_gap_within("(x)", std::time::Duration::from_millis(19));
}

#[test]
fn the_verdict_serialises_to_the_documented_json_keys() {
    let v = judge_window(
        &[
            pev(0, "a", 3, Start),
            pev(0, "a", 3, ForgingOn),
            pev(5, "a", 3, ForgingOff),
        ],
        Window::default(),
    )
    .expect("judged");
    let json = serde_json::to_value(&v).expect("serialises");
    assert_eq!(
        json,
        serde_json::json!({
            "overlap_ms": 0.0, "max_forgers": 1, "max_gap_ms": 0.0, "transitions": 2,
            "forgers": ["a"], "forging_ms": {"a": 5.0}, "forging_at_end": [],
            "processes": [{"node": "a", "pid": 3, "proc_start_ns": 21, "forging_ms": 5.0,
                           "started": true, "exited": false}],
            "from_unix_ns": 0, "until_unix_ns": 5 * MS
        })
    );
}
