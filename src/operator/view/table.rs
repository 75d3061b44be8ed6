//! The view as a table for a terminal: the verdict line on top, then per region one line and one
//! line per pod, with colours only when asked.
use std::fmt::Write as _;

use jiff::Timestamp;

use super::{Forging, OverrideView, PodRow, Row, Verdict, View, human_secs};

/// How to print a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// More columns (`-o wide`).
    pub wide: bool,
    /// ANSI colours (only on a terminal).
    pub colour: bool,
}

fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".to_string())
}

fn override_cell(o: Option<&OverrideView>) -> String {
    let Some(o) = o else { return "-".to_string() };
    let mut what = Vec::new();
    if let Some(s) = &o.force_state {
        what.push(s.clone());
    }
    if let Some(p) = o.force_priority {
        what.push(format!("prio {p}"));
    }
    let what = if what.is_empty() {
        "(nothing forced)".to_string()
    } else {
        what.join(",")
    };
    match o.status {
        "active" => match o.seconds_left {
            Some(s) => format!("{what} {} left", human_secs(s as f64)),
            None => format!("{what} no expiry"),
        },
        "expired" => format!("{what} expired"),
        _ => "INVALID".to_string(),
    }
}

pub(super) fn kes_cell(expires_at: Option<&str>, remaining: Option<u64>, state: Option<&str>) -> String {
    let day = expires_at.map(|e| e.get(..10).unwrap_or(e));
    match (state, day, remaining) {
        (Some("expired"), _, _) => "EXPIRED".to_string(),
        (Some("not_yet_valid"), _, _) => "not yet valid".to_string(),
        (_, Some(d), Some(n)) => format!("{d} ({n} left)"),
        (_, Some(d), None) => d.to_string(),
        _ => "-".to_string(),
    }
}

/// A pod's KES cell.
fn pod_kes(p: &PodRow) -> String {
    kes_cell(
        p.kes_expires_at.as_deref(),
        p.kes_remaining_periods,
        p.kes_state.as_deref(),
    )
}

/// The region's KES cell: the pod whose certificate expires first.
fn region_kes(r: &Row) -> String {
    r.pods
        .iter()
        .filter(|p| p.kes_expires_at.is_some() || p.kes_state.is_some())
        .min_by(|a, b| a.kes_expires_at.cmp(&b.kes_expires_at))
        .map(pod_kes)
        .unwrap_or_else(|| "-".to_string())
}

/// The table (a header, then per region one line and one line per pod) for `view`, with the
/// verdict line on top.
pub fn render_table(view: &View, now: Timestamp, style: Style) -> String {
    let mut out = String::new();
    let code = match view.verdict {
        Verdict::OneForger { .. } => "1;32",
        Verdict::NoForger { .. } => "1;33",
        Verdict::TwoForgers { .. } | Verdict::Unreachable { .. } => "1;31",
    };
    let _ = writeln!(out, "{}", paint(&view.verdict.line(now), code, style.colour));
    let mut header = vec![
        "REGION",
        "POD",
        "CLUSTER",
        "PRIO",
        "STATE",
        "OVERRIDE",
        "HEALTH",
        "LEASE",
        "HEARTBEAT",
        "CLAIM",
        "FORGING",
        "KES-EXPIRY",
        "TICKETS",
        "REASON",
    ];
    if style.wide {
        header.splice(0..0, ["CONTEXT"]);
        header.extend(["LEADER-CR", "LAST-TRANSITION", "MESSAGE"]);
    }
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let mut colours: Vec<Option<&str>> = vec![None];
    for r in &view.rows {
        let prio = match (r.base_priority, r.effective_priority) {
            (Some(b), Some(e)) if b == e => b.to_string(),
            (Some(b), Some(e)) => format!("{b}->{e}"),
            (Some(b), None) => b.to_string(),
            _ => "-".to_string(),
        };
        let state = match (&r.forge_state, &r.effective_state) {
            (Some(s), Some(e)) if s == e => s.clone(),
            (Some(s), Some(e)) => format!("{s}->{e}"),
            (s, e) => dash(s.clone().or_else(|| e.clone())),
        };
        let health = match r.healthy {
            Some(true) => "ok",
            Some(false) => "FAILING",
            None => "-",
        };
        let heartbeat = match (r.heartbeat_age_seconds, r.lease_expired) {
            (Some(a), Some(true)) => format!("{} EXPIRED", human_secs(a)),
            (Some(a), _) => human_secs(a),
            _ => "-".to_string(),
        };
        let claim = match (r.forging_enabled, &r.active_leader) {
            (Some(true), Some(p)) => p.clone(),
            (Some(true), None) => "yes".to_string(),
            (Some(false), _) => "no".to_string(),
            (None, _) => "-".to_string(),
        };
        let forging = match r.forging {
            Forging::Yes => format!("YES {}", dash(r.forger.clone())),
            Forging::Claiming => format!("claiming {}", dash(r.forger.clone())),
            Forging::No => "no".to_string(),
            Forging::Unknown => "?".to_string(),
        };
        let reason = match &r.error {
            Some(e) => format!("unreachable: {e}"),
            None => dash(r.reason.clone()),
        };
        // A context that could not be read is named by its context.
        let region = r.region.clone().unwrap_or_else(|| r.context.clone());
        let pods = match (r.pods.len(), &r.error) {
            (_, Some(_)) => "-".to_string(),
            (1, _) => "1 pod".to_string(),
            (n, _) => format!("{n} pods"),
        };
        let mut line = vec![
            region.clone(),
            pods,
            dash(r.cluster.clone().or_else(|| r.leader.clone())),
            prio,
            state,
            override_cell(r.override_.as_ref()),
            health.to_string(),
            dash(r.lease_holder.clone()),
            heartbeat,
            claim,
            forging,
            region_kes(r),
            "-".to_string(),
            reason,
        ];
        if style.wide {
            line.insert(0, r.context.clone());
            let leader = match (&r.leader_pod, r.leader_forging) {
                (Some(p), Some(true)) => format!("{p} forging"),
                (Some(p), _) => format!("{p} standby"),
                (None, _) => "-".to_string(),
            };
            line.extend([leader, dash(r.last_transition.clone()), dash(r.message.clone())]);
        }
        lines.push(line);
        colours.push(match (r.forging, &r.error) {
            (_, Some(_)) => Some("31"),
            (Forging::Yes, _) => Some("32"),
            (Forging::Claiming, _) => Some("33"),
            _ => None,
        });
        for p in &r.pods {
            let forging = match p.observed_forging {
                Some(true) => "YES",
                Some(false) => "no",
                None => "UNKNOWN",
            };
            let reason = match (&p.unknown_why, &p.reason) {
                (Some(why), _) => format!("unknown: {why}"),
                (None, r) => dash(r.clone()),
            };
            let mut line = vec![
                region.clone(),
                p.name.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                if p.holds_lease { "holder" } else { "-" }.to_string(),
                p.heartbeat_age_seconds
                    .map(human_secs)
                    .unwrap_or_else(|| "-".to_string()),
                if p.claims { "yes" } else { "no" }.to_string(),
                forging.to_string(),
                pod_kes(p),
                dash(p.tickets.clone()),
                reason,
            ];
            if style.wide {
                line.insert(0, r.context.clone());
                line.extend([String::new(), String::new(), String::new()]);
            }
            lines.push(line);
            colours.push(match p.observed_forging {
                Some(true) => Some("32"),
                None => Some("33"),
                Some(false) => None,
            });
        }
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (line, colour) in lines.iter().zip(colours) {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c + 1 == columns {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}   ", w = widths[c]);
            }
        }
        let text = text.trim_end().to_string();
        let _ = writeln!(
            out,
            "{}",
            match colour {
                Some(code) => paint(&text, code, style.colour),
                None => text,
            }
        );
    }
    out
}
