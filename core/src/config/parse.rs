//! Pure string parsers and formatters shared by the sections.
use std::time::Duration;

use serde::Serializer;

/// Upper bound for every duration setting: a day. Keeps arithmetic far from overflow; nothing
/// here sensibly waits longer.
pub(crate) const MAX_DURATION_SECS: f64 = 86_400.0;

/// A positive duration: `15`, `2.5` (seconds), `2s` or `500ms`, at least 1 ms, at most a day.
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    let t = v.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs = number.parse::<f64>().ok()? * scale;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECS) {
        return None;
    }
    let d = Duration::try_from_secs_f64(secs).ok()?;
    (d >= Duration::from_millis(1)).then_some(d)
}

/// A CardanoForgeCluster `spec.region`: 2..=20 of `a-z`, `0-9`, `-`.
pub(crate) fn is_region(s: &str) -> bool {
    (2..=20).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `http://` or `https://`, a non-empty host, and no whitespace or control characters.
pub(crate) fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `15s`, `2.5s`, `0.5s`: seconds with as many decimals as needed.
pub fn fmt_dur(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_dur(*d))
}

pub(crate) fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&fmt_dur(*d)),
        None => s.serialize_none(),
    }
}
