//! The operator's view of a pool across regions: one [`View`] (a verdict and one [`Row`] per
//! region's cluster) built by [`build`] from the objects read in each kube context, and its
//! renderings (table, JSON, YAML). Pure: the objects and the time arrive as arguments.
//!
//! Where the facts come from, per region (one kube context and namespace):
//! - `CardanoForgeCluster` spec: base priority, `forgeState`, `override` (evaluated with the
//!   decision engine's own rule, [`evaluate_override`], so the view and the sidecars agree on
//!   whether it is active, expired or invalid); status: effective state and priority, health,
//!   `activeLeader`, `forgingEnabled`, `reason`, `lastTransition`.
//! - `CardanoLeader` status: the lease holder's own report of its node (`leaderPod`,
//!   `forgingEnabled`, `reason`).
//! - `Lease`: the holder and the age of its last renewal (the region's heartbeat).
//!
//! A region *forges* when a status says `forgingEnabled: true` under a forging reason (or an
//! unknown one: the safe side for a verdict that must not hide a second forger); it *claims* when
//! `forgingEnabled: true` comes with a reason that waits for a peer (a winner publishes its claim
//! before it starts, docs/architecture.md "Regions", so one region forging and one claiming is a
//! normal moment of a handover, not two forgers).
use std::fmt::Write as _;

use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    decision::{OverrideStatus, evaluate_override},
};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use serde::Serialize;

/// Status reasons that come with forging (`Reason::is_forging` in the decision engine).
pub const FORGING_CODES: &[&str] = &[
    "single_cluster_leader",
    "cluster_enabled",
    "override_enabled",
    "global_winner",
];

/// Exit code: exactly one region forges.
pub const EXIT_ONE_FORGER: u8 = 0;
/// Exit code: no region forges.
pub const EXIT_NO_FORGER: u8 = 3;
/// Exit code: two or more regions forge.
pub const EXIT_TWO_FORGERS: u8 = 4;
/// Exit code: a region could not be read (and no two forgers were seen among the others).
pub const EXIT_UNREACHABLE: u8 = 5;

/// What was read in one kube context.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Every CardanoForgeCluster in the namespace.
    pub clusters: Vec<CardanoForgeCluster>,
    /// Every CardanoLeader in the namespace.
    pub leaders: Vec<CardanoLeader>,
    /// Every Lease in the namespace.
    pub leases: Vec<Lease>,
    /// The sidecar pods found (their `/status` documents, or why not), or why they could not be
    /// listed.
    pub pods: Result<Vec<PodInput>, String>,
}

impl Default for Fetched {
    fn default() -> Self {
        Fetched {
            clusters: Vec::new(),
            leaders: Vec::new(),
            leases: Vec::new(),
            pods: Ok(Vec::new()),
        }
    }
}

/// One sidecar pod as read: its name and its `/status` document (or why it could not be read).
#[derive(Debug, Clone)]
pub struct PodInput {
    /// `metadata.name` (the sidecar's `POD_NAME`, the Lease holder identity).
    pub name: String,
    /// The sidecar's `/status` JSON, or why there is none.
    pub status: Result<serde_json::Value, String>,
}

/// One kube context's input: what was read, or why it could not be.
#[derive(Debug, Clone)]
pub struct ContextInput {
    /// The kube context name.
    pub context: String,
    /// The namespace read.
    pub namespace: String,
    /// The objects, or the error text.
    pub fetched: Result<Fetched, String>,
}

/// Whether a region forges, per its statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forging {
    /// A status says forging, under a forging (or unknown) reason.
    Yes,
    /// `forgingEnabled: true` while waiting for a peer to confirm it stopped: not yet forging.
    Claiming,
    /// Not forging.
    No,
    /// Nothing to tell (the region could not be read, or it has no status yet).
    Unknown,
}

/// The override as the decision engine sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideView {
    /// `active`, `expired` or `invalid` (an absent or disabled override has no view).
    pub status: &'static str,
    /// `forceState`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_state: Option<String>,
    /// `forcePriority`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_priority: Option<i32>,
    /// `expiresAt` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until it expires (active overrides with an expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<i64>,
    /// `reason` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// One pod of a region: what the region's objects say about it and what its sidecar reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    /// The pod name.
    pub name: String,
    /// It is the region Lease's holder.
    pub holds_lease: bool,
    /// Seconds since the Lease's last renewal, when it holds it.
    pub heartbeat_age_seconds: Option<f64>,
    /// It claims forging: the CardanoLeader (or the CardanoForgeCluster's `activeLeader`)
    /// names it with `forgingEnabled: true`.
    pub claims: bool,
    /// Forging as its own sidecar reports it (`/status` `forging`); none when unknown.
    pub observed_forging: Option<bool>,
    /// Why `observed_forging` is unknown (no `/status` reached, and the error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_why: Option<String>,
    /// The sidecar's reason code (`/status` `reason`).
    pub reason: Option<String>,
    /// When the operational certificate's KES key expires (`/status` `kes.kes.expires_at`).
    pub kes_expires_at: Option<String>,
    /// KES periods left (`/status` `kes.kes.remaining_periods`).
    pub kes_remaining_periods: Option<u64>,
    /// `valid`, `not_yet_valid`, `expired` (`/status` `kes.kes.state`).
    pub kes_state: Option<String>,
    /// Reserved for the quorum mode's tickets; always none for now.
    pub tickets: Option<String>,
}

/// One region's cluster (or one context that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The kube context it was read from.
    pub context: String,
    /// The namespace.
    pub namespace: String,
    /// The CardanoForgeCluster name (none in single-cluster mode or when unreadable).
    pub cluster: Option<String>,
    /// `spec.region`.
    pub region: Option<String>,
    /// `spec.priority`.
    pub base_priority: Option<i32>,
    /// `status.effectivePriority`.
    pub effective_priority: Option<i32>,
    /// `spec.forgeState`.
    pub forge_state: Option<String>,
    /// `status.effectiveState`.
    pub effective_state: Option<String>,
    /// `spec.override`, evaluated now.
    #[serde(rename = "override")]
    pub override_: Option<OverrideView>,
    /// `status.healthStatus.healthy` (none when no probe ran).
    pub healthy: Option<bool>,
    /// The Lease read for this region.
    pub lease: Option<String>,
    /// Its `holderIdentity` ("" counts as none).
    pub lease_holder: Option<String>,
    /// Seconds since its `renewTime`, on this machine's clock.
    pub heartbeat_age_seconds: Option<f64>,
    /// True when the last renewal is older than `leaseDurationSeconds`.
    pub lease_expired: Option<bool>,
    /// `status.activeLeader` of the cluster.
    pub active_leader: Option<String>,
    /// `status.forgingEnabled` of the cluster (the region's claim).
    pub forging_enabled: Option<bool>,
    /// The CardanoLeader read for this region.
    pub leader: Option<String>,
    /// Its `status.leaderPod`.
    pub leader_pod: Option<String>,
    /// Its `status.forgingEnabled`.
    pub leader_forging: Option<bool>,
    /// Whether this region forges, from both statuses.
    pub forging: Forging,
    /// The pod that forges or claims (when known).
    pub forger: Option<String>,
    /// `status.reason` (the CardanoLeader's when there is no cluster).
    pub reason: Option<String>,
    /// `status.message`.
    pub message: Option<String>,
    /// `status.lastTransition`.
    pub last_transition: Option<String>,
    /// Why the context could not be read.
    pub error: Option<String>,
    /// The region's pods.
    pub pods: Vec<PodRow>,
    /// Why the pods could not be listed (the rows then come from the Lease and statuses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_error: Option<String>,
}

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

/// The whole view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// When it was built (this machine's clock).
    pub at: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The exit code `status` returns.
    #[serde(rename = "exitCode")]
    pub exit_code: u8,
    /// One row per region's cluster, in input order.
    pub rows: Vec<Row>,
}

fn age_secs(t: Timestamp, now: Timestamp) -> f64 {
    now.duration_since(t).as_secs_f64()
}

/// `3.2s`, `45s`, `12m`, `1h05m`, `2d03h` (negative ages, from clock skew, read as 0s).
pub fn human_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{}s", s as u64)
    } else if s < 3600.0 {
        format!("{}m{:02}s", s as u64 / 60, s as u64 % 60)
    } else if s < 86400.0 {
        format!("{}h{:02}m", s as u64 / 3600, (s as u64 % 3600) / 60)
    } else {
        format!("{}d{:02}h", s as u64 / 86400, (s as u64 % 86400) / 3600)
    }
}

fn classify(forging_enabled: Option<bool>, reason: Option<&str>) -> Forging {
    match forging_enabled {
        Some(true) => match reason {
            Some(r) if !FORGING_CODES.contains(&r) && forge_core::decision::ALL_CODES.contains(&r) => {
                Forging::Claiming
            }
            _ => Forging::Yes,
        },
        Some(false) => Forging::No,
        None => Forging::Unknown,
    }
}

fn stronger(a: Forging, b: Forging) -> Forging {
    let rank = |f| match f {
        Forging::Yes => 3,
        Forging::Claiming => 2,
        Forging::No => 1,
        Forging::Unknown => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.is_empty()).cloned()
}

fn override_view(cfc: &CardanoForgeCluster, now: Timestamp) -> Option<OverrideView> {
    let o = cfc.spec.override_.as_ref()?;
    let mut view = OverrideView {
        status: "active",
        force_state: o.force_state.map(|s| s.as_str().to_string()),
        force_priority: o.force_priority,
        expires_at: o.expires_at.clone(),
        seconds_left: None,
        reason: o.reason.clone(),
        invalid: None,
    };
    match evaluate_override(Some(o), now) {
        OverrideStatus::Off => return None,
        OverrideStatus::Expired => view.status = "expired",
        OverrideStatus::Invalid { why } => {
            view.status = "invalid";
            view.invalid = Some(why);
        }
        OverrideStatus::Active { expires_at, .. } => {
            view.seconds_left = expires_at.map(|t| t.duration_since(now).as_secs());
        }
    }
    Some(view)
}

struct LeaseFacts {
    name: Option<String>,
    holder: Option<String>,
    age: Option<f64>,
    expired: Option<bool>,
}

fn lease_facts(lease: Option<&Lease>, now: Timestamp) -> LeaseFacts {
    let Some(lease) = lease else {
        return LeaseFacts {
            name: None,
            holder: None,
            age: None,
            expired: None,
        };
    };
    let spec = lease.spec.as_ref();
    let age = spec
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| age_secs(t.0, now));
    let duration = spec.and_then(|s| s.lease_duration_seconds);
    LeaseFacts {
        name: lease.metadata.name.clone(),
        // The holder identity is `POD_NAME` or `POD_NAME_POD_UID` (a pod's incarnation): the
        // table shows and matches the pod name.
        holder: nonempty(spec.and_then(|s| s.holder_identity.as_ref()))
            .map(|h| forge_core::lease::holder_pod(&h).to_string()),
        age,
        expired: match (age, duration) {
            (Some(a), Some(d)) => Some(a > f64::from(d)),
            _ => None,
        },
    }
}

/// Picks the CardanoLeader and Lease that go with a cluster whose leader is `active`: the
/// CardanoLeader naming that pod (else the only one), and the Lease of the same name (else the
/// one held by that pod, else the only one).
fn pick<'a>(f: &'a Fetched, active: Option<&str>) -> (Option<&'a CardanoLeader>, Option<&'a Lease>) {
    let leader = active
        .and_then(|a| {
            f.leaders
                .iter()
                .find(|l| l.status.as_ref().and_then(|s| s.leader_pod.as_deref()) == Some(a))
        })
        .or_else(|| (f.leaders.len() == 1).then(|| &f.leaders[0]));
    let by_name = leader.and_then(|l| {
        f.leases
            .iter()
            .find(|x| x.metadata.name.is_some() && x.metadata.name == l.metadata.name)
    });
    let lease = by_name
        .or_else(|| {
            active.and_then(|a| {
                f.leases.iter().find(|x| {
                    x.spec
                        .as_ref()
                        .and_then(|s| s.holder_identity.as_deref())
                        .map(forge_core::lease::holder_pod)
                        == Some(a)
                })
            })
        })
        .or_else(|| (f.leases.len() == 1).then(|| &f.leases[0]));
    (leader, lease)
}

fn empty_row(context: &str, namespace: &str) -> Row {
    Row {
        context: context.to_string(),
        namespace: namespace.to_string(),
        cluster: None,
        region: None,
        base_priority: None,
        effective_priority: None,
        forge_state: None,
        effective_state: None,
        override_: None,
        healthy: None,
        lease: None,
        lease_holder: None,
        heartbeat_age_seconds: None,
        lease_expired: None,
        active_leader: None,
        forging_enabled: None,
        leader: None,
        leader_pod: None,
        leader_forging: None,
        forging: Forging::Unknown,
        forger: None,
        reason: None,
        message: None,
        last_transition: None,
        error: None,
        pods: Vec::new(),
        pods_error: None,
    }
}

fn fill_leader(row: &mut Row, leader: Option<&CardanoLeader>, lease: Option<&Lease>, now: Timestamp) {
    if let Some(l) = leader {
        row.leader = l.metadata.name.clone();
        let s = l.status.as_ref();
        row.leader_pod = nonempty(s.and_then(|s| s.leader_pod.as_ref()));
        row.leader_forging = s.and_then(|s| s.forging_enabled);
    }
    let lf = lease_facts(lease, now);
    row.lease = lf.name;
    row.lease_holder = lf.holder;
    row.heartbeat_age_seconds = lf.age;
    row.lease_expired = lf.expired;
}

fn cluster_row(ci: &ContextInput, f: &Fetched, cfc: &CardanoForgeCluster, now: Timestamp) -> Row {
    let mut row = empty_row(&ci.context, &ci.namespace);
    let st = cfc.status.clone().unwrap_or_default();
    row.cluster = cfc.metadata.name.clone();
    row.region = Some(cfc.spec.region.clone());
    row.base_priority = Some(cfc.spec.priority);
    row.effective_priority = st.effective_priority;
    row.forge_state = Some(cfc.spec.forge_state.as_str().to_string());
    row.effective_state = st.effective_state.map(|s| s.as_str().to_string());
    row.override_ = override_view(cfc, now);
    row.healthy = st.health_status.as_ref().and_then(|h| h.healthy);
    row.active_leader = nonempty(st.active_leader.as_ref());
    row.forging_enabled = st.forging_enabled;
    row.reason = st.reason.clone();
    row.message = st.message.clone();
    row.last_transition = st.last_transition.clone();
    let (leader, lease) = pick(f, row.active_leader.as_deref());
    fill_leader(&mut row, leader, lease, now);
    let leader_reason = leader
        .and_then(|l| l.status.as_ref())
        .and_then(|s| s.reason.as_deref());
    row.forging = stronger(
        classify(row.forging_enabled, row.reason.as_deref()),
        classify(row.leader_forging, leader_reason),
    );
    row.forger = match row.forging {
        Forging::Yes | Forging::Claiming => row.active_leader.clone().or_else(|| row.leader_pod.clone()),
        _ => None,
    };
    row
}

fn leader_row(ci: &ContextInput, f: &Fetched, leader: &CardanoLeader, now: Timestamp) -> Row {
    let mut row = empty_row(&ci.context, &ci.namespace);
    let s = leader.status.clone().unwrap_or_default();
    let lease = f
        .leases
        .iter()
        .find(|x| x.metadata.name.is_some() && x.metadata.name == leader.metadata.name);
    fill_leader(&mut row, Some(leader), lease, now);
    row.reason = s.reason.clone();
    row.message = s.message.clone();
    row.last_transition = s.last_transition_time.clone();
    row.forging = classify(row.leader_forging, row.reason.as_deref());
    row.forger = matches!(row.forging, Forging::Yes | Forging::Claiming)
        .then(|| row.leader_pod.clone())
        .flatten();
    row
}

/// Which of a context's rows a pod belongs to: the one its sidecar names (`/status`
/// `cluster`), else the one whose Lease or statuses name it, else the first.
fn row_of(rows: &[Row], pod: &PodInput) -> usize {
    let named = pod
        .status
        .as_ref()
        .ok()
        .and_then(|s| s.get("cluster"))
        .and_then(|c| c.as_str());
    let name = Some(pod.name.as_str());
    rows.iter()
        .position(|r| named.is_some() && r.cluster.as_deref() == named)
        .or_else(|| {
            rows.iter().position(|r| {
                r.lease_holder.as_deref() == name
                    || r.leader_pod.as_deref() == name
                    || r.active_leader.as_deref() == name
            })
        })
        .unwrap_or(0)
}

fn pod_row(row: &Row, name: &str, status: Result<&serde_json::Value, String>) -> PodRow {
    let holds_lease = row.lease_holder.as_deref() == Some(name);
    let claims = (row.leader_pod.as_deref() == Some(name) && row.leader_forging == Some(true))
        || (row.active_leader.as_deref() == Some(name) && row.forging_enabled == Some(true));
    let (doc, unknown_why) = match status {
        Ok(doc) => (Some(doc), None),
        Err(why) => (None, Some(why)),
    };
    let kes = doc.and_then(|d| d.get("kes")).and_then(|k| k.get("kes"));
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let observed_forging = doc.and_then(|d| d.get("forging")).and_then(|f| f.as_bool());
    PodRow {
        name: name.to_string(),
        holds_lease,
        heartbeat_age_seconds: holds_lease.then_some(row.heartbeat_age_seconds).flatten(),
        claims,
        unknown_why: match (observed_forging, unknown_why) {
            (Some(_), _) => None,
            (None, Some(why)) => Some(why),
            (None, None) => Some("its /status has no `forging`".to_string()),
        },
        observed_forging,
        reason: text(doc.and_then(|d| d.get("reason"))),
        kes_expires_at: text(kes.and_then(|k| k.get("expires_at"))),
        kes_remaining_periods: kes
            .and_then(|k| k.get("remaining_periods"))
            .and_then(|n| n.as_u64()),
        kes_state: text(kes.and_then(|k| k.get("state"))),
        tickets: None,
    }
}

/// Puts each pod read in a context under its row; a pod the Lease or a status names but that
/// was not listed gets a row too, with its forging unknown.
fn attach_pods(rows: &mut [Row], f: &Fetched) {
    if rows.is_empty() {
        return;
    }
    let listed: &[PodInput] = match &f.pods {
        Ok(p) => p,
        Err(e) => {
            for r in rows.iter_mut() {
                r.pods_error = Some(e.clone());
            }
            &[]
        }
    };
    for p in listed {
        let i = row_of(rows, p);
        let pod = pod_row(&rows[i], &p.name, p.status.as_ref().map_err(Clone::clone));
        rows[i].pods.push(pod);
    }
    for r in rows.iter_mut() {
        let named = [&r.lease_holder, &r.leader_pod, &r.active_leader];
        let mut missing: Vec<String> = named
            .iter()
            .filter_map(|n| n.as_deref())
            .filter(|n| !r.pods.iter().any(|p| p.name == *n))
            .map(str::to_string)
            .collect();
        missing.sort();
        missing.dedup();
        for name in missing {
            let why = match &r.pods_error {
                Some(e) => format!("pods not listed: {e}"),
                None => "no such Pod listed (selector?)".to_string(),
            };
            let pod = pod_row(r, &name, Err(why));
            r.pods.push(pod);
        }
        r.pods.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// The name a row goes by in the verdict: region, else cluster, else context.
pub fn row_name(r: &Row) -> String {
    r.region
        .clone()
        .or_else(|| r.cluster.clone())
        .or_else(|| r.leader.clone())
        .unwrap_or_else(|| r.context.clone())
}

/// Builds the view at `now` from every context's input.
pub fn build(inputs: &[ContextInput], now: Timestamp) -> View {
    let mut rows = Vec::new();
    for ci in inputs {
        match &ci.fetched {
            Err(e) => {
                let mut row = empty_row(&ci.context, &ci.namespace);
                row.error = Some(e.clone());
                rows.push(row);
            }
            Ok(f) if !f.clusters.is_empty() => {
                let mut here: Vec<Row> = f.clusters.iter().map(|c| cluster_row(ci, f, c, now)).collect();
                attach_pods(&mut here, f);
                rows.extend(here);
            }
            Ok(f) if !f.leaders.is_empty() => {
                let mut here: Vec<Row> = f.leaders.iter().map(|l| leader_row(ci, f, l, now)).collect();
                attach_pods(&mut here, f);
                rows.extend(here);
            }
            Ok(_) => {
                let mut row = empty_row(&ci.context, &ci.namespace);
                row.error = Some(format!(
                    "no CardanoForgeCluster or CardanoLeader in namespace {}",
                    ci.namespace
                ));
                rows.push(row);
            }
        }
    }
    let verdict = verdict(inputs, &rows);
    View {
        at: now.to_string(),
        exit_code: verdict.exit_code(),
        verdict,
        rows,
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

fn verdict(inputs: &[ContextInput], rows: &[Row]) -> Verdict {
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

fn kes_cell(expires_at: Option<&str>, remaining: Option<u64>, state: Option<&str>) -> String {
    let day = expires_at.map(|e| e.get(..10).unwrap_or(e));
    match (state, day, remaining) {
        (Some("expired"), _, _) => "EXPIRED".to_string(),
        (Some("not_yet_valid"), _, _) => "not yet valid".to_string(),
        (_, Some(d), Some(n)) => format!("{d} ({n} left)"),
        (_, Some(d), None) => d.to_string(),
        _ => "-".to_string(),
    }
}

/// The region's KES cell: the pod whose certificate expires first.
fn region_kes(r: &Row) -> String {
    r.pods
        .iter()
        .filter(|p| p.kes_expires_at.is_some() || p.kes_state.is_some())
        .min_by(|a, b| a.kes_expires_at.cmp(&b.kes_expires_at))
        .map(|p| {
            kes_cell(
                p.kes_expires_at.as_deref(),
                p.kes_remaining_periods,
                p.kes_state.as_deref(),
            )
        })
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
                kes_cell(
                    p.kes_expires_at.as_deref(),
                    p.kes_remaining_periods,
                    p.kes_state.as_deref(),
                ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use forge_core::crd::{
        CardanoForgeClusterSpec, CardanoForgeClusterStatus, CardanoLeaderSpec, CardanoLeaderStatus,
        ForgeState, HealthStatus, NetworkSpec, OverrideSpec,
    };
    use k8s_openapi::{api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime};

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    const NOW: &str = "2026-01-01T12:00:00Z";

    fn cfc(region: &str, priority: i32, forging: bool, reason: &str, leader: &str) -> CardanoForgeCluster {
        let mut c = CardanoForgeCluster::new(
            &format!("pool-{region}"),
            CardanoForgeClusterSpec::new(
                ForgeState::PriorityBased,
                priority,
                region,
                NetworkSpec::new("preview", 2),
            ),
        );
        c.status = Some(CardanoForgeClusterStatus {
            effective_state: Some(ForgeState::PriorityBased),
            effective_priority: Some(priority),
            active_leader: Some(leader.into()),
            forging_enabled: Some(forging),
            reason: Some(reason.into()),
            last_transition: Some("2026-01-01T11:58:00Z".into()),
            health_status: Some(HealthStatus {
                healthy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        c
    }

    fn lease(holder: &str, renewed: &str) -> Lease {
        Lease {
            metadata: kube::api::ObjectMeta {
                name: Some("cardano-node-leader".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(at(renewed))),
                ..Default::default()
            }),
        }
    }

    fn leader(pod: &str, forging: bool, reason: &str) -> CardanoLeader {
        let mut l = CardanoLeader::new("cardano-node-leader", CardanoLeaderSpec::default());
        l.status = Some(CardanoLeaderStatus {
            leader_pod: Some(pod.into()),
            forging_enabled: Some(forging),
            reason: Some(reason.into()),
            ..Default::default()
        });
        l
    }

    fn pod_input(name: &str, forging: bool, reason: &str) -> PodInput {
        PodInput {
            name: name.into(),
            status: Ok(serde_json::json!({
                "pod": name, "forging": forging, "reason": reason, "cluster": null,
                "kes": {"op_cert": {}, "kes": {"expires_at": "2027-02-04T21:44:51Z",
                    "remaining_periods": 45, "state": "valid"}},
            })),
        }
    }

    fn region(name: &str, c: CardanoForgeCluster, leader_forging: bool) -> ContextInput {
        let pod = format!("{name}-0");
        let c_forging = c.status.as_ref().and_then(|s| s.forging_enabled) == Some(true)
            && FORGING_CODES.contains(&c.status.as_ref().and_then(|s| s.reason.as_deref()).unwrap_or(""));
        let reason = c
            .status
            .as_ref()
            .and_then(|s| s.reason.clone())
            .unwrap_or_default();
        ContextInput {
            context: format!("ctx-{name}"),
            namespace: "cardano".into(),
            fetched: Ok(Fetched {
                clusters: vec![c],
                leaders: vec![leader(&pod, leader_forging, &reason)],
                leases: vec![lease(&pod, "2026-01-01T11:59:58Z")],
                pods: Ok(vec![pod_input(&pod, c_forging, &reason)]),
            }),
        }
    }

    fn three(east: (bool, &str), west: (bool, &str), south: (bool, &str)) -> Vec<ContextInput> {
        vec![
            region("east", cfc("east", 10, east.0, east.1, "east-0"), east.0),
            region("west", cfc("west", 20, west.0, west.1, "west-0"), west.0),
            region("south", cfc("south", 30, south.0, south.1, "south-0"), south.0),
        ]
    }

    #[test]
    fn one_forging_region_is_one_forger_with_exit_code_0() {
        let v = build(
            &three(
                (true, "global_winner"),
                (false, "yielding_to_peer"),
                (false, "yielding_to_peer"),
            ),
            at(NOW),
        );
        assert_eq!(
            v.verdict,
            Verdict::OneForger {
                region: "east".into(),
                pod: Some("east-0".into())
            }
        );
        assert_eq!(v.exit_code, 0);
        let east = &v.rows[0];
        assert_eq!(east.lease_holder.as_deref(), Some("east-0"));
        assert_eq!(east.heartbeat_age_seconds, Some(2.0));
        assert_eq!(east.lease_expired, Some(false));
        assert_eq!(east.healthy, Some(true));
    }

    #[test]
    fn a_lease_held_by_a_pod_incarnation_names_the_pod() {
        // With POD_UID the holder identity is `POD_NAME_POD_UID`.
        let mut input = three(
            (true, "global_winner"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        if let Ok(f) = &mut input[0].fetched {
            f.leases = vec![lease("east-0_7c6f0a3e-2b1d", "2026-01-01T11:59:58Z")];
        }
        let v = build(&input, at(NOW));
        let east = &v.rows[0];
        assert_eq!(east.lease_holder.as_deref(), Some("east-0"));
        assert!(
            east.pods.iter().any(|p| p.name == "east-0" && p.holds_lease),
            "{:?}",
            east.pods
        );
    }

    #[test]
    fn a_claim_awaiting_a_peer_is_not_a_second_forger() {
        let v = build(
            &three(
                (true, "global_winner"),
                (true, "awaiting_peer_stop"),
                (false, "yielding_to_peer"),
            ),
            at(NOW),
        );
        assert_eq!(v.rows[1].forging, Forging::Claiming);
        assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "east"));
    }

    #[test]
    fn two_forging_regions_are_two_forgers_with_exit_code_4() {
        let v = build(
            &three(
                (true, "global_winner"),
                (true, "override_enabled"),
                (false, "peer_unreachable"),
            ),
            at(NOW),
        );
        assert_eq!(
            v.verdict,
            Verdict::TwoForgers {
                forgers: vec![
                    Forger {
                        region: "east".into(),
                        pod: Some("east-0".into())
                    },
                    Forger {
                        region: "west".into(),
                        pod: Some("west-0".into())
                    }
                ]
            }
        );
        assert_eq!(v.exit_code, EXIT_TWO_FORGERS);
    }

    #[test]
    fn an_unknown_reason_with_forging_enabled_counts_as_forging() {
        let v = build(
            &three(
                (true, "global_winner"),
                (true, "some_future_reason"),
                (false, "yielding_to_peer"),
            ),
            at(NOW),
        );
        assert_eq!(v.exit_code, EXIT_TWO_FORGERS);
    }

    #[test]
    fn the_leader_report_alone_is_enough_to_see_a_forger() {
        let mut inputs = three(
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        if let Ok(f) = &mut inputs[2].fetched {
            f.leaders = vec![leader("south-0", true, "global_winner")];
        }
        let v = build(&inputs, at(NOW));
        assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "south"));
    }

    #[test]
    fn no_forging_region_is_no_forger_since_the_latest_transition_with_exit_code_3() {
        let mut inputs = three(
            (false, "override_disabled"),
            (false, "override_disabled"),
            (false, "override_disabled"),
        );
        if let Ok(f) = &mut inputs[1].fetched
            && let Some(s) = f.clusters[0].status.as_mut()
        {
            s.last_transition = Some("2026-01-01T11:59:00Z".into());
        }
        let v = build(&inputs, at(NOW));
        assert_eq!(
            v.verdict,
            Verdict::NoForger {
                since: Some("2026-01-01T11:59:00Z".into())
            }
        );
        assert_eq!(v.exit_code, EXIT_NO_FORGER);
        assert_eq!(
            v.verdict.line(at(NOW)),
            "NO FORGER since 2026-01-01T11:59:00Z (1m00s ago)"
        );
    }

    #[test]
    fn an_unreadable_context_makes_the_verdict_unknown_unless_two_forge() {
        let mut inputs = three(
            (true, "global_winner"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        inputs[2].fetched = Err("connection refused".into());
        let v = build(&inputs, at(NOW));
        assert_eq!(
            v.verdict,
            Verdict::Unreachable {
                contexts: vec!["ctx-south".into()],
                forging: vec!["east (east-0)".into()]
            }
        );
        assert_eq!(v.exit_code, EXIT_UNREACHABLE);
        assert_eq!(v.rows[2].error.as_deref(), Some("connection refused"));

        if let Ok(f) = &mut inputs[1].fetched {
            f.clusters[0] = cfc("west", 20, true, "override_enabled", "west-0");
        }
        assert_eq!(build(&inputs, at(NOW)).exit_code, EXIT_TWO_FORGERS);
    }

    #[test]
    fn the_override_is_evaluated_with_its_time_left_expired_or_invalid() {
        let mut inputs = three(
            (false, "override_disabled"),
            (true, "global_winner"),
            (false, "yielding_to_peer"),
        );
        let set = |inputs: &mut Vec<ContextInput>, o: OverrideSpec| {
            if let Ok(f) = &mut inputs[0].fetched {
                f.clusters[0].spec.override_ = Some(o);
            }
        };
        set(
            &mut inputs,
            OverrideSpec {
                enabled: true,
                force_state: Some(ForgeState::Disabled),
                expires_at: Some("2026-01-01T13:00:00Z".into()),
                reason: Some("kernel upgrade".into()),
                ..Default::default()
            },
        );
        let v = build(&inputs, at(NOW));
        let o = v.rows[0].override_.clone().expect("override");
        assert_eq!((o.status, o.seconds_left), ("active", Some(3600)));
        let table = render_table(
            &v,
            at(NOW),
            Style {
                wide: false,
                colour: false,
            },
        );
        assert!(table.contains("Disabled 1h00m left"), "{table}");

        set(
            &mut inputs,
            OverrideSpec {
                enabled: true,
                force_state: Some(ForgeState::Disabled),
                expires_at: Some("2026-01-01T11:00:00Z".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            build(&inputs, at(NOW)).rows[0]
                .override_
                .as_ref()
                .map(|o| o.status),
            Some("expired")
        );

        set(
            &mut inputs,
            OverrideSpec {
                enabled: true,
                expires_at: Some("tomorrow".into()),
                ..Default::default()
            },
        );
        let o = build(&inputs, at(NOW)).rows[0]
            .override_
            .clone()
            .expect("override");
        assert_eq!(o.status, "invalid");
        assert!(o.invalid.as_deref().is_some_and(|w| w.contains("expiresAt")));

        set(&mut inputs, OverrideSpec::default());
        assert_eq!(build(&inputs, at(NOW)).rows[0].override_, None);
    }

    #[test]
    fn an_expired_lease_is_shown_as_such() {
        let mut inputs = three(
            (true, "global_winner"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        if let Ok(f) = &mut inputs[1].fetched {
            f.leases = vec![lease("west-1", "2026-01-01T11:59:00Z")];
        }
        let v = build(&inputs, at(NOW));
        assert_eq!(v.rows[1].lease_expired, Some(true));
        assert_eq!(v.rows[1].lease_holder.as_deref(), Some("west-1"));
        let table = render_table(
            &v,
            at(NOW),
            Style {
                wide: true,
                colour: false,
            },
        );
        assert!(table.contains("1m00s EXPIRED"), "{table}");
    }

    #[test]
    fn a_single_cluster_namespace_is_read_from_its_cardano_leader() {
        let inputs = vec![ContextInput {
            context: "only".into(),
            namespace: "cardano".into(),
            fetched: Ok(Fetched {
                clusters: vec![],
                leaders: vec![leader("bp-1", true, "single_cluster_leader")],
                leases: vec![lease("bp-1", "2026-01-01T11:59:59Z")],
                pods: Ok(Vec::new()),
            }),
        }];
        let v = build(&inputs, at(NOW));
        assert_eq!(
            v.verdict,
            Verdict::OneForger {
                region: "cardano-node-leader".into(),
                pod: Some("bp-1".into())
            }
        );
    }

    #[test]
    fn the_table_has_the_verdict_on_top_and_colour_only_when_asked() {
        let v = build(
            &three(
                (true, "global_winner"),
                (false, "yielding_to_peer"),
                (false, "yielding_to_peer"),
            ),
            at(NOW),
        );
        let plain = render_table(
            &v,
            at(NOW),
            Style {
                wide: false,
                colour: false,
            },
        );
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
    fn two_pods_forging_by_their_own_report_are_two_forgers_even_in_one_region() {
        let mut inputs = three(
            (true, "global_winner"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        if let Ok(f) = &mut inputs[0].fetched {
            f.pods = Ok(vec![
                pod_input("east-0", true, "global_winner"),
                pod_input("east-1", true, "global_winner"),
            ]);
        }
        let v = build(&inputs, at(NOW));
        assert_eq!(v.exit_code, EXIT_TWO_FORGERS, "{:?}", v.verdict);
        assert_eq!(
            v.verdict.line(at(NOW)),
            "TWO FORGERS: east (east-0) and east (east-1) forge at once"
        );
        let east1 = &v.rows[0].pods[1];
        assert_eq!(
            (east1.holds_lease, east1.claims, east1.observed_forging),
            (false, false, Some(true))
        );
    }

    #[test]
    fn a_pod_out_of_reach_is_unknown_and_a_pod_only_the_lease_names_is_shown() {
        let mut inputs = three(
            (true, "global_winner"),
            (false, "yielding_to_peer"),
            (false, "yielding_to_peer"),
        );
        if let Ok(f) = &mut inputs[0].fetched {
            f.pods = Ok(vec![PodInput {
                name: "east-0".into(),
                status: Err("/status not reached (10.0.0.9:9102: connection refused)".into()),
            }]);
        }
        if let Ok(f) = &mut inputs[1].fetched {
            f.pods = Err("listing pods: 403 forbidden".into());
        }
        let v = build(&inputs, at(NOW));
        // The statuses still say east forges: one forger.
        assert!(matches!(v.verdict, Verdict::OneForger { ref region, .. } if region == "east"));
        let east0 = &v.rows[0].pods[0];
        assert_eq!(east0.observed_forging, None);
        assert!(
            east0
                .unknown_why
                .as_deref()
                .is_some_and(|w| w.contains("connection refused"))
        );
        let west0 = &v.rows[1].pods[0];
        assert_eq!(west0.name, "west-0");
        assert!(west0.holds_lease);
        assert!(west0.unknown_why.as_deref().is_some_and(|w| w.contains("403")));
        let table = render_table(
            &v,
            at(NOW),
            Style {
                wide: false,
                colour: false,
            },
        );
        assert!(
            table.lines().any(|l| l.contains("east-0")
                && l.contains("UNKNOWN")
                && l.contains("unknown: /status not reached")),
            "{table}"
        );
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
}
