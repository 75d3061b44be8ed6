//! The table's cells and lines.
use super::*;
use crate::operator::view::table::kes_cell;

#[test]
fn the_table_has_the_verdict_on_top_and_colour_only_when_asked() {
    let v = build(&east_forges(), at(NOW));
    let plain = plain_table(&v, false);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines[0], "ONE FORGER: east (east-0)");
    assert!(lines[1].starts_with("REGION"));
    assert!(
        lines[2].starts_with("east") && lines[2].contains("1 pod") && lines[2].contains("YES east-0"),
        "{plain}"
    );
    // Under each region its pods: east-0 holds the Lease, claims, forges by its own report.
    let pod: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        pod,
        [
            "east",
            "east-0",
            "holder",
            "2.0s",
            "yes",
            "YES",
            "2027-02-04",
            "(45",
            "left)",
            "-",
            "global_winner"
        ],
        "{plain}"
    );
    assert!(lines[1].contains("KES-EXPIRY") && lines[1].contains("TICKETS"));
    assert_eq!(lines.len(), 8, "{plain}");
    assert!(!plain.contains('\x1b'));
    let coloured = render_table(
        &v,
        at(NOW),
        Style {
            wide: false,
            colour: true,
        },
    );
    assert!(coloured.starts_with("\x1b[1;32mONE FORGER"));
}

#[test]
fn kes_cells_say_the_day_and_the_periods_left() {
    assert_eq!(
        kes_cell(Some("2027-02-04T21:44:51Z"), Some(45), Some("valid")),
        "2027-02-04 (45 left)"
    );
    assert_eq!(
        kes_cell(Some("2020-01-01T00:00:00Z"), Some(0), Some("expired")),
        "EXPIRED"
    );
    assert_eq!(kes_cell(None, None, None), "-");
}

#[test]
fn forging_codes_are_decision_codes() {
    for c in FORGING_CODES {
        assert!(forge_core::decision::ALL_CODES.contains(c), "{c}");
    }
}

#[test]
fn ages_read_like_a_person_would_say_them() {
    assert_eq!(human_secs(3.21), "3.2s");
    assert_eq!(human_secs(42.0), "42s");
    assert_eq!(human_secs(3599.0), "59m59s");
    assert_eq!(human_secs(3600.0 * 2.0 + 300.0), "2h05m");
    assert_eq!(human_secs(-5.0), "0.0s");
}
