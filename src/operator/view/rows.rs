//! The rows of the view: one per region's cluster (or CardanoLeader in single-cluster mode), built
//! from the objects read in a context, with the region's pods under it, and [`build`], which
//! adds the verdict. Pure.
use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    decision::{OverrideStatus, evaluate_override},
};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;

use super::{
    ContextInput, FORGING_CODES, Fetched, Forging, OverrideView, PodInput, PodRow, Row, SidecarStatus, View,
    age_secs, verdict::verdict,
};

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

/// A row of `context`/`namespace` with nothing read yet: every cell empty, forging unknown.
pub(crate) fn empty_row(context: &str, namespace: &str) -> Row {
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
        .map(|s| s.cluster.as_str())
        .filter(|c| !c.is_empty());
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

fn pod_row(row: &Row, name: &str, status: Result<&SidecarStatus, String>) -> PodRow {
    let holds_lease = row.lease_holder.as_deref() == Some(name);
    let claims = (row.leader_pod.as_deref() == Some(name) && row.leader_forging == Some(true))
        || (row.active_leader.as_deref() == Some(name) && row.forging_enabled == Some(true));
    let (doc, unknown_why) = match status {
        Ok(doc) => (Some(doc), None),
        Err(why) => (None, Some(why)),
    };
    let kes = doc.and_then(|d| d.kes).and_then(|k| k.kes);
    let observed_forging = doc.and_then(|d| d.forging);
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
        reason: doc.map(|d| d.reason.clone()).filter(|r| !r.is_empty()),
        kes_expires_at: kes.map(|k| k.expires_at.to_string()),
        kes_remaining_periods: kes.map(|k| k.remaining_periods),
        kes_state: kes.map(|k| k.state.as_str().to_string()),
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
