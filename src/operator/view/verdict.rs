//! The verdict on the whole pool from the view's rows: one forger, none, two, or unknown (a
//! context could not be read), and the exit code that carries it. Pure.
use jiff::Timestamp;
use serde::Serialize;

use super::{
    ContextInput, EXIT_NO_FORGER, EXIT_ONE_FORGER, EXIT_TWO_FORGERS, EXIT_UNREACHABLE, Forging, Row,
    age_secs, human_secs, row_name,
};

/// One forger in a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forger {
    /// Its region (or cluster, or context).
    pub region: String,
    /// The forging pod, when known.
    pub pod: Option<String>,
}

impl std::fmt::Display for Forger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pod {
            Some(p) => write!(f, "{} ({p})", self.region),
            None => write!(f, "{}", self.region),
        }
    }
}

/// The verdict on the whole pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Exactly one region forges.
    OneForger {
        /// Its region (or cluster, or context).
        region: String,
        /// The forging pod, when known.
        pod: Option<String>,
    },
    /// No region forges.
    NoForger {
        /// The latest status transition seen (when the last forger stopped, if it was one of
        /// these regions).
        since: Option<String>,
    },
    /// Two or more regions forge, or two pods (of one region or of several).
    TwoForgers {
        /// Who: region and pod (when known).
        forgers: Vec<Forger>,
    },
    /// A context could not be read: the pool's state is not known.
    Unreachable {
        /// The contexts that failed.
        contexts: Vec<String>,
        /// Regions seen forging among the others.
        forging: Vec<String>,
    },
}

impl Verdict {
    /// The process exit code that carries this verdict.
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::OneForger { .. } => EXIT_ONE_FORGER,
            Verdict::NoForger { .. } => EXIT_NO_FORGER,
            Verdict::TwoForgers { .. } => EXIT_TWO_FORGERS,
            Verdict::Unreachable { .. } => EXIT_UNREACHABLE,
        }
    }

    /// One line for humans, with the time relative to `now`.
    pub fn line(&self, now: Timestamp) -> String {
        match self {
            Verdict::OneForger { region, pod } => match pod {
                Some(p) => format!("ONE FORGER: {region} ({p})"),
                None => format!("ONE FORGER: {region}"),
            },
            Verdict::NoForger { since } => match since.as_deref().and_then(|s| s.parse::<Timestamp>().ok()) {
                Some(t) => format!(
                    "NO FORGER since {} ({} ago)",
                    t.round(jiff::Unit::Second).unwrap_or(t),
                    human_secs(age_secs(t, now))
                ),
                None => "NO FORGER (since unknown)".to_string(),
            },
            Verdict::TwoForgers { forgers } => {
                let names: Vec<String> = forgers.iter().map(ToString::to_string).collect();
                format!("TWO FORGERS: {} forge at once", names.join(" and "))
            }
            Verdict::Unreachable { contexts, forging } => {
                let seen = match forging.as_slice() {
                    [] => "no forger among the others".to_string(),
                    f => format!("forging among the others: {}", f.join(", ")),
                };
                format!("UNKNOWN: cannot read {} ({seen})", contexts.join(", "))
            }
        }
    }
}

/// Every forger the rows show: the pods whose sidecars report forging, and each region whose
/// statuses say it forges (its pod, when not already among those). A region's status is never
/// outweighed by its pod's report: the verdict must not hide a second forger.
fn forgers(rows: &[Row]) -> Vec<Forger> {
    let mut out: Vec<Forger> = Vec::new();
    for r in rows {
        let region = row_name(r);
        let observed: Vec<&str> = r
            .pods
            .iter()
            .filter(|p| p.observed_forging == Some(true))
            .map(|p| p.name.as_str())
            .collect();
        for p in &observed {
            out.push(Forger {
                region: region.clone(),
                pod: Some((*p).to_string()),
            });
        }
        if r.forging == Forging::Yes {
            let seen = match r.forger.as_deref() {
                Some(f) => observed.contains(&f),
                None => !observed.is_empty(),
            };
            if !seen {
                out.push(Forger {
                    region: region.clone(),
                    pod: r.forger.clone(),
                });
            }
        }
    }
    out
}

pub(super) fn verdict(inputs: &[ContextInput], rows: &[Row]) -> Verdict {
    let forging = forgers(rows);
    let unreachable: Vec<String> = inputs
        .iter()
        .filter(|c| c.fetched.is_err())
        .map(|c| c.context.clone())
        .collect();
    if forging.len() >= 2 {
        return Verdict::TwoForgers { forgers: forging };
    }
    if !unreachable.is_empty() {
        return Verdict::Unreachable {
            contexts: unreachable,
            forging: forging.iter().map(ToString::to_string).collect(),
        };
    }
    match forging.into_iter().next() {
        Some(f) => Verdict::OneForger {
            region: f.region,
            pod: f.pod,
        },
        None => Verdict::NoForger {
            since: rows
                .iter()
                .filter_map(|r| r.last_transition.as_deref())
                .filter_map(|t| t.parse::<Timestamp>().ok())
                .max()
                .map(|t| t.to_string()),
        },
    }
}
