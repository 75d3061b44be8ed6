//! The writes of `failover`, `maintenance`, `pause` and `resume`: pure plans ([`Change`]s from
//! the rows read and the operator's request), each override checked with the decision engine's
//! own rule before anything is written, and the merge patch that writes it.
//!
//! Every override written has an expiry, so nothing an operator does here can be forgotten:
//! - `failover --to R`: R gets `forcePriority: 1` (plus `forceState: Priority-based` when its
//!   spec says `Disabled`); every other region that could still outrank R (state `Enabled`, or
//!   effective priority 1) gets `forcePriority: 2` (and `forceState: Priority-based` if it is
//!   `Enabled`). Nobody is disabled, so the other regions stay candidates if R fails; the
//!   handover itself is the sidecars' break-before-make (R starts once the forger confirmed it
//!   stopped).
//! - `maintenance R on`: R gets `forceState: Disabled` (the documented maintenance procedure,
//!   with an expiry); `off` removes R's override.
//! - `pause`: every region gets `forceState: Disabled` (no region forges, e.g. for a key
//!   rotation); `resume` removes the overrides that force `Disabled`.
use forge_core::{
    crd::{ForgeState, OverrideSpec},
    decision::{OverrideStatus, evaluate_override},
};
use jiff::Timestamp;

use super::view::{Row, row_name};

/// The longest `reason` accepted (it is shown in status and tables).
pub const REASON_MAX: usize = 200;

/// One object to change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The kube context.
    pub context: String,
    /// The namespace.
    pub namespace: String,
    /// The CardanoForgeCluster name.
    pub cluster: String,
    /// Its region (for messages).
    pub region: String,
    /// The override now (as read).
    pub before: Option<OverrideSpec>,
    /// The override to write (`None`: remove it).
    pub after: Option<OverrideSpec>,
}

/// Checks an override the way the sidecars will read it: `reason` given (at most
/// [`REASON_MAX`] characters), `forcePriority` in 1..=999, `expiresAt` an RFC 3339 time in the
/// future, so that [`evaluate_override`] finds it active now.
pub fn validate(o: &OverrideSpec, now: Timestamp) -> Result<(), String> {
    let reason = o.reason.as_deref().unwrap_or("").trim();
    if reason.is_empty() {
        return Err("override.reason: required (say why, it is shown in every status)".into());
    }
    if reason.chars().count() > REASON_MAX {
        return Err(format!("override.reason: at most {REASON_MAX} characters"));
    }
    if let Some(p) = o.force_priority
        && !(1..=999).contains(&p)
    {
        return Err(format!("override.forcePriority: must be 1..999, got {p}"));
    }
    if o.expires_at.is_none() {
        return Err("override.expiresAt: required here (an override without expiry can be forgotten)".into());
    }
    match evaluate_override(Some(o), now) {
        OverrideStatus::Active { .. } => Ok(()),
        OverrideStatus::Expired => Err(format!(
            "override.expiresAt: {} is not in the future",
            o.expires_at.as_deref().unwrap_or("")
        )),
        OverrideStatus::Invalid { why } => Err(why),
        OverrideStatus::Off => Err("override.enabled: must be true".into()),
    }
}

fn override_with(reason: &str, expires: Timestamp) -> OverrideSpec {
    OverrideSpec {
        enabled: true,
        reason: Some(reason.to_string()),
        expires_at: Some(expires.to_string()),
        force_state: None,
        force_priority: None,
    }
}

/// Finds the row an operator means by `name`: its region, cluster name or context.
pub fn find<'a>(rows: &'a [Row], name: &str) -> Result<&'a Row, String> {
    let matches: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.region.as_deref() == Some(name) || r.cluster.as_deref() == Some(name) || r.context == name
        })
        .collect();
    match matches.as_slice() {
        [one] if one.cluster.is_some() => Ok(one),
        [one] => Err(format!(
            "{name}: no CardanoForgeCluster readable there ({})",
            one.error.as_deref().unwrap_or("single-cluster mode")
        )),
        [] => Err(format!(
            "{name}: no such region, cluster or context among: {}",
            rows.iter().map(row_name).collect::<Vec<_>>().join(", ")
        )),
        _ => Err(format!("{name}: ambiguous, matches {} clusters", matches.len())),
    }
}

fn change(row: &Row, before: Option<OverrideSpec>, after: Option<OverrideSpec>) -> Change {
    Change {
        context: row.context.clone(),
        namespace: row.namespace.clone(),
        cluster: row.cluster.clone().unwrap_or_default(),
        region: row_name(row),
        before,
        after,
    }
}

/// The override a row has now, from what was read (the view keeps it evaluated; the raw spec
/// travels next to it).
pub type Current<'a> = &'a dyn Fn(&Row) -> Option<OverrideSpec>;

fn reachable(rows: &[Row]) -> Result<(), String> {
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.context.as_str())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cannot read {}: refusing to change overrides without seeing every region",
            bad.join(", ")
        ))
    }
}

/// The failover plan to `target` (see the module docs).
pub fn failover(
    rows: &[Row],
    current: Current<'_>,
    target: &str,
    reason: &str,
    expires: Timestamp,
    now: Timestamp,
) -> Result<Vec<Change>, String> {
    reachable(rows)?;
    let to = find(rows, target)?;
    let mut out = Vec::new();
    let mut o = override_with(reason, expires);
    o.force_priority = Some(1);
    if to.forge_state.as_deref() == Some(ForgeState::Disabled.as_str()) {
        o.force_state = Some(ForgeState::PriorityBased);
    }
    out.push(change(to, current(to), Some(o)));
    for r in rows
        .iter()
        .filter(|r| r.cluster.is_some() && r.cluster != to.cluster)
    {
        let before = current(r);
        let active = matches!(
            evaluate_override(before.as_ref(), now),
            OverrideStatus::Active { .. }
        );
        let state = match &before {
            Some(o) if active && o.force_state.is_some() => o.force_state,
            _ => None,
        }
        .map(|s| s.as_str().to_string())
        .or_else(|| r.forge_state.clone());
        let priority = match &before {
            Some(o) if active && o.force_priority.is_some() => o.force_priority,
            _ => r.effective_priority.or(r.base_priority),
        };
        let enabled = state.as_deref() == Some(ForgeState::Enabled.as_str());
        if enabled || priority.is_some_and(|p| p <= 1) {
            let mut o = override_with(reason, expires);
            o.force_priority = Some(2);
            if enabled {
                o.force_state = Some(ForgeState::PriorityBased);
            }
            out.push(change(r, before, Some(o)));
        }
    }
    Ok(out)
}

/// `maintenance REGION on|off`: `on` is [`pause`] of that region alone (`forceState:
/// Disabled`, a failover's `forcePriority` kept), `off` is [`resume`] of it.
pub fn maintenance(
    rows: &[Row],
    current: Current<'_>,
    region: &str,
    on: bool,
    reason: &str,
    expires: Timestamp,
    now: Timestamp,
) -> Result<Vec<Change>, String> {
    let only = [region.to_string()];
    if on {
        pause(rows, current, &only, reason, expires, now)
    } else {
        resume(rows, current, &only)
    }
}

/// `pause`: every region (or the named ones) forced `Disabled` until `expires`. A
/// `forcePriority` in force (a failover's) is kept, so that `resume` returns to it.
pub fn pause(
    rows: &[Row],
    current: Current<'_>,
    only: &[String],
    reason: &str,
    expires: Timestamp,
    now: Timestamp,
) -> Result<Vec<Change>, String> {
    reachable(rows)?;
    let chosen = choose(rows, only)?;
    Ok(chosen
        .into_iter()
        .map(|r| {
            let before = current(r);
            let mut o = override_with(reason, expires);
            o.force_state = Some(ForgeState::Disabled);
            if let OverrideStatus::Active { force_priority, .. } = evaluate_override(before.as_ref(), now) {
                o.force_priority = force_priority;
            }
            change(r, before, Some(o))
        })
        .collect())
}

/// `resume`: removes `forceState: Disabled` from every region's override (or the named
/// ones'): the whole override, or only that field when it also carries a `forcePriority`
/// (kept until the override's expiry).
pub fn resume(rows: &[Row], current: Current<'_>, only: &[String]) -> Result<Vec<Change>, String> {
    let chosen = choose(rows, only)?;
    Ok(chosen
        .into_iter()
        .filter_map(|r| {
            let before = current(r)?;
            if before.force_state != Some(ForgeState::Disabled) {
                return None;
            }
            let after = before.force_priority.is_some().then(|| OverrideSpec {
                force_state: None,
                ..before.clone()
            });
            Some(change(r, Some(before), after))
        })
        .collect())
}

fn choose<'a>(rows: &'a [Row], only: &[String]) -> Result<Vec<&'a Row>, String> {
    if only.is_empty() {
        Ok(rows.iter().filter(|r| r.cluster.is_some()).collect())
    } else {
        only.iter().map(|n| find(rows, n)).collect()
    }
}

/// The JSON merge patch that writes `after` (every override field named, absent ones as null,
/// so nothing of the previous override survives), guarded by `resource_version` when given
/// (the API server rejects it with 409 if the object changed since it was read).
pub fn merge_patch(after: Option<&OverrideSpec>, resource_version: Option<&str>) -> serde_json::Value {
    let o = match after {
        None => serde_json::Value::Null,
        Some(o) => serde_json::json!({
            "enabled": o.enabled,
            "reason": o.reason,
            "expiresAt": o.expires_at,
            "forceState": o.force_state,
            "forcePriority": o.force_priority,
        }),
    };
    let mut patch = serde_json::json!({ "spec": { "override": o } });
    if let Some(rv) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    patch
}

/// One line describing an override.
pub fn describe(o: Option<&OverrideSpec>, now: Timestamp) -> String {
    let Some(o) = o else { return "none".into() };
    let mut parts = vec![if o.enabled { "enabled" } else { "disabled" }.to_string()];
    if let Some(s) = o.force_state {
        parts.push(format!("forceState {s}"));
    }
    if let Some(p) = o.force_priority {
        parts.push(format!("forcePriority {p}"));
    }
    if let Some(e) = &o.expires_at {
        let left = e
            .parse::<Timestamp>()
            .map(|t| {
                let s = t.duration_since(now).as_secs_f64();
                if s > 0.0 {
                    format!(" (in {})", super::view::human_secs(s))
                } else {
                    " (passed)".to_string()
                }
            })
            .unwrap_or_default();
        parts.push(format!("until {e}{left}"));
    } else {
        parts.push("no expiry".into());
    }
    if let Some(r) = &o.reason {
        parts.push(format!("reason {r:?}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests;
