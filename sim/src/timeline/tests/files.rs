//! The timeline files: written by two writers and merged, old lines without pid fields,
//! malformed and unfinished lines, unknown event kinds.

use super::*;

#[test]
fn files_written_by_two_writers_are_read_back_and_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pa, pb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let mut wa = TimelineWriter::open(&pa).expect("open a");
    let mut wb = TimelineWriter::open(&pb).expect("open b");
    wa.append(&pev(0, "a", 9, Start)).expect("write");
    wa.append(&pev(0, "a", 9, ForgingOn)).expect("write");
    wb.append(&ev(5, "b", ForgingOn)).expect("write");
    wa.append(&pev(7, "a", 9, ForgingOff)).expect("write");
    let events = read_files(&[&pa, &pb]).expect("read");
    assert_eq!(events.len(), 4);
    assert_eq!(
        judge_window(&events, Window::default())
            .expect("judged")
            .overlap_ms,
        2.0
    );
    let line = std::fs::read_to_string(&pa).expect("read a");
    assert!(
        line.starts_with(
            r#"{"t_unix_ns":0,"node":"a","event":"start","detail":"","pid":9,"proc_start_ns":63}"#
        ),
        "{line}"
    );
}

#[test]
fn a_line_without_pid_fields_still_parses() {
    let e: TimelineEvent =
        serde_json::from_str(r#"{"t_unix_ns":1,"node":"a","event":"forging_on","detail":""}"#)
            .expect("parses");
    assert_eq!((e.pid, e.proc_start_ns), (0, 0));
}

#[test]
fn a_malformed_line_is_reported_with_its_file_and_line_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("t.jsonl");
    std::fs::write(
        &p,
        "{\"t_unix_ns\":1,\"node\":\"a\",\"event\":\"start\",\"detail\":\"\"}\n\nnot json\n",
    )
    .expect("write");
    let err = read_file(&p).expect_err("must fail");
    assert!(err.to_string().contains("t.jsonl:3"), "{err}");
    assert_eq!(err.kind(), "parse");
    // Live reading forgives only an unfinished last line, not a bad complete one.
    assert!(read_files_live(&[&p]).is_err());
}

#[test]
fn a_last_line_still_being_written_is_left_out_of_a_live_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("t.jsonl");
    std::fs::write(
        &p,
        "{\"t_unix_ns\":1,\"node\":\"a\",\"event\":\"start\",\"detail\":\"\"}\n{\"t_unix_ns\":2,\"no",
    )
    .expect("write");
    assert_eq!(read_files_live(&[&p]).expect("live read").len(), 1);
    let err = read_file(&p).expect_err("a finished file must be whole");
    assert!(err.to_string().contains("t.jsonl:2"), "{err}");
}

#[test]
fn an_unknown_event_kind_is_rejected() {
    let r: Result<TimelineEvent, _> =
        serde_json::from_str(r#"{"t_unix_ns":1,"node":"a","event":"forging_maybe","detail":""}"#);
    assert!(r.is_err());
}
