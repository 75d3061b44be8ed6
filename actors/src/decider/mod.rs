//! The Decider: the only actor that holds the effective state (docs/architecture.md, "Actors"). It folds
//! facts into forge-core's [`State`], runs the pure [`decide`] and carries out the [`plan`] in
//! order, each command completing before the next is sent (break before make, S2). It never
//! makes a decision itself; it only sequences, logs, counts and publishes.
//!
//! Failure rule: a plan stops at the first failed command. In the stopping direction the
//! decision in force stays "forging" (we may still forge), so `Release` is never sent while
//! removal failed, and the plan is retried soon. In the starting direction the credentials
//! are removed again (a standby never keeps them) and the decision stays "standby".

mod actor;
mod handlers;

use std::{sync::Arc, time::Duration};

use actix::{Recipient, SpawnHandle};
use forge_core::{
    decision::{Command, Decision, Event, ReloadReason, State, decide},
    lease::Mono,
};
use tokio::sync::watch;

use crate::{
    clock::Clock,
    http::Snapshot,
    messages::{CommandFailed, Contend, Install, Release, Reload, Remove, WriteStatus},
    metrics::Metrics,
};

/// Where the Decider's commands go.
#[derive(Clone)]
pub struct DeciderOutputs {
    /// LeaseElector: contend or not.
    pub contend: Recipient<Contend>,
    /// LeaseElector: release the lease.
    pub release: Recipient<Release>,
    /// CredentialKeeper: install credentials.
    pub install: Recipient<Install>,
    /// CredentialKeeper: remove credentials.
    pub remove: Recipient<Remove>,
    /// NodeSignaller: reload the node.
    pub reload: Recipient<Reload>,
    /// ClusterWatcher: write our status.
    pub write_status: Recipient<WriteStatus>,
    /// PeerWatchers: read now, once our claim is confirmed.
    pub poll_peers: Vec<Recipient<crate::messages::PollNow>>,
}

/// Settings of the Decider.
#[derive(Debug, Clone)]
pub struct DeciderSettings {
    /// This pod (for `/status` and logs).
    pub pod: String,
    /// How often the Decider re-evaluates with no new fact (and refreshes its heartbeat).
    pub heartbeat: Duration,
    /// How soon a failed plan is retried.
    pub retry_after: Duration,
    /// A status write must succeed before forging starts (the claim protocol of cluster
    /// management). In single-cluster mode a failed CardanoLeader write never blocks forging
    /// (the reference coupled them, gap G-12 in docs/architecture.md).
    pub status_write_required: bool,
    /// The node starts non-producing and needs the credential files present to boot: provide
    /// them while the node is down, remove them once it is up and we do not forge.
    pub boot_credentials: bool,
    /// A SIGHUP during the node's start-up (ledger replay) is lost: for this long after a node
    /// process appears, while the decision in force forges, its reload is re-sent every
    /// `reassert_every` (`SOCKET_WAIT_TIMEOUT`: how long a node start may take). A SIGHUP only
    /// makes the node match the files, which always reflect the decision, so re-sending is safe.
    /// With a connected node guard the signaller skips these: the guard sees what the node does.
    pub reassert_window: Duration,
    /// Period of those re-sends.
    pub reassert_every: Duration,
}

/// The Decider actor.
pub struct Decider {
    settings: DeciderSettings,
    state: State,
    /// The decision in force (its plan completed).
    current: Decision,
    clock: Clock,
    out: DeciderOutputs,
    snapshot: watch::Sender<Arc<Snapshot>>,
    metrics: Option<Metrics>,
    /// A plan is being carried out; new facts are folded in and decided afterwards.
    busy: bool,
    /// A fact arrived while busy.
    redecide_pending: bool,
    /// The start-up plan (standby state) is done.
    started_up: bool,
    /// Shutdown requested.
    shutting_down: bool,
    /// Boot credentials are installed for a node that is down (see `boot_credentials`). While
    /// they are, no reload is ever sent: a SIGHUP would make a standby forge.
    boot_installed: bool,
    /// Boot credentials are installed and verified: the node may start (`/startup-status`).
    boot_ready: bool,
    /// After a failed plan, no new plan before this instant (its retry timer decides again).
    hold_until: Option<tokio::time::Instant>,
    /// When the current node process came up (for re-asserting reloads during its start-up).
    node_up_since: Option<tokio::time::Instant>,
    /// When the last re-assert was sent.
    last_reassert: Option<tokio::time::Instant>,
    /// The timer for the decision's `next_wake`.
    wake: Option<SpawnHandle>,
    /// The oldest fact not yet decided on (decision latency).
    oldest_fact: Option<tokio::time::Instant>,
    /// The source certificate's KES figures (the CredentialKeeper's), shown in `/status`.
    kes_report: Option<crate::credential_keeper::KesReportCell>,
    /// The node's sync and our leader schedule (the ChainWatcher's), shown in `/status`.
    chain_report: Option<crate::chain_watcher::ChainReportCell>,
}

impl Decider {
    /// A Decider starting from `state`.
    pub fn new(
        settings: DeciderSettings,
        state: State,
        clock: Clock,
        out: DeciderOutputs,
        snapshot: watch::Sender<Arc<Snapshot>>,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            settings,
            state,
            current: Decision::initial(),
            clock,
            out,
            snapshot,
            metrics,
            busy: false,
            redecide_pending: false,
            started_up: false,
            shutting_down: false,
            boot_installed: false,
            boot_ready: false,
            hold_until: None,
            node_up_since: None,
            last_reassert: None,
            wake: None,
            oldest_fact: None,
            kes_report: None,
            chain_report: None,
        }
    }

    /// Shows the CredentialKeeper's KES figures in `/status` (published with every decision and
    /// heartbeat).
    pub fn with_kes_report(mut self, cell: crate::credential_keeper::KesReportCell) -> Self {
        self.kes_report = Some(cell);
        self
    }

    /// Shows the ChainWatcher's figures in `/status` under `chain` (published with every
    /// decision and heartbeat).
    pub fn with_chain_report(mut self, cell: crate::chain_watcher::ChainReportCell) -> Self {
        self.chain_report = Some(cell);
        self
    }

    /// Folds an event into the state.
    fn fold(&mut self, event: Event) {
        // `apply` takes the state by value; the placeholder is never observed.
        let placeholder = State::new(self.state.config.clone());
        let state = std::mem::replace(&mut self.state, placeholder);
        self.state = forge_core::decision::apply(state, event);
    }

    /// The next decision, now.
    fn next_decision(&self) -> Decision {
        decide(&self.state, self.clock.now(), self.clock.wall())
    }

    /// The `/status` document and readiness, published for the HTTP endpoints.
    fn publish(&self) {
        let d = &self.current;
        let now = self.clock.now();
        let deadline_ms = self
            .state
            .lease
            .deadline()
            .map(|dl| dl.saturating_since(now).as_millis() as u64);
        let status = serde_json::json!({
            "pod": self.settings.pod,
            "forging": d.forge,
            "claim": d.claim,
            "reason": d.reason.as_str(),
            "message": d.reason.message(),
            "effectiveState": d.effective_state.as_str(),
            "effectivePriority": d.effective_priority,
            "holdsLease": d.holds_lease,
            "contending": d.contend,
            "leaseDeadlineInMs": deadline_ms,
            "node": { "up": self.state.node.up, "synced": self.state.node.synced },
            "credentials": credentials_json(&self.state.credentials),
            "cluster": self.state.config.cluster,
            "clusterManagement": self.state.config.cluster_management,
            "healthConsecutiveFailures": self.state.health.consecutive_failures,
            "peers": self.state.peers.iter().map(|(name, v)| serde_json::json!({
                "cluster": name,
                "reach": format!("{:?}", v.reach),
                "forgingEnabled": v.status.as_ref().and_then(|s| s.forging_enabled),
                "effectivePriority": v.status.as_ref().and_then(|s| s.effective_priority),
            })).collect::<Vec<_>>(),
            "busy": self.busy,
            "kes": self
                .kes_report
                .as_ref()
                .and_then(|cell| cell.lock().ok().and_then(|r| *r))
                .map(|r| serde_json::to_value(r).unwrap_or_default()),
            "chain": self
                .chain_report
                .as_ref()
                .and_then(|cell| cell.lock().ok().map(|r| r.clone()))
                .map(|r| serde_json::to_value(r).unwrap_or_default()),
        });
        // The node may start once the standby state is established and, when it boots with
        // credentials (non-producing), once they are in place.
        let node_may_start =
            self.started_up && (!self.settings.boot_credentials || self.boot_ready || self.state.node.up);
        let startup_message = match (self.started_up, node_may_start) {
            (false, _) => "establishing the standby state",
            (true, false) => "providing the credentials the node needs to boot",
            (true, true) => "standby state established; the node may start",
        };
        self.snapshot.send_replace(Arc::new(Snapshot {
            ready: self.started_up && !self.shutting_down,
            startup_complete: node_may_start,
            startup_message: startup_message.to_string(),
            heartbeat: Some(std::time::Instant::now()),
            status,
        }));
    }
}

fn credentials_json(c: &forge_core::decision::Credentials) -> serde_json::Value {
    use forge_core::decision::Credentials;
    match c {
        Credentials::Unknown => serde_json::json!({"state": "unknown"}),
        Credentials::Valid => serde_json::json!({"state": "valid"}),
        Credentials::Invalid { why } => serde_json::json!({"state": "invalid", "why": why}),
    }
}

/// The `CommandFailed::kind`s of a reload that found no node process to signal (none known, or
/// it died): nothing forges there, so a reload that stops forging has nothing left to do.
pub const NODE_ABSENT: [&str; 2] = [crate::node_signaller::NO_NODE, "node_gone"];

/// `CommandFailed::kind` of a starting command not sent because the renew deadline passed.
pub const DEADLINE_PASSED: &str = "deadline_passed";

/// What a plan in flight is for, so its completion is handled right.
#[derive(Debug)]
enum Step {
    /// The start-up plan: establish the standby state.
    Startup,
    /// A decision's plan; adopted when it completes.
    Decision(Box<Decision>),
    /// Boot credentials for a node that is down.
    BootInstall,
    /// Removing boot credentials once the node is up (or undoing a failed install).
    BootRemove,
    /// A re-asserted reload during the node's start-up.
    Reassert,
    /// A rotated credential set installed while forging.
    Rotation,
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Startup => "startup",
            Step::Decision(_) => "decision",
            Step::BootInstall => "boot_install",
            Step::BootRemove => "boot_remove",
            Step::Reassert => "reassert",
            Step::Rotation => "rotation",
        }
    }
}

/// What carrying out a plan came to.
#[derive(Debug, Default)]
struct Outcome {
    /// The first failed command and why (the rest was not sent).
    failed: Option<(Command, CommandFailed)>,
    /// Status writes confirmed: the `forgingEnabled` they carried and when.
    status_written: Vec<(bool, Mono)>,
}

/// Whether a failure of `cmd` stops the plan. A reload that only stops forging cannot fail
/// for lack of a node: a node that does not run does not forge.
fn aborts(cmd: &Command, failure: &CommandFailed, status_write_required: bool) -> bool {
    match cmd {
        Command::Reload { reason } => reason.needs_node() || !NODE_ABSENT.contains(&failure.kind),
        Command::Install | Command::Remove => true,
        Command::WriteStatus(_) => status_write_required,
        Command::Contend(_) | Command::Release => false,
    }
}

/// Sends `cmds` in order, each answered before the next goes out.
///
/// `start_by`: a plan that makes the node forge carries the lease's renew deadline; `Install` and
/// a starting `Reload` are not sent past it (F10: without the guard nothing else would stop a
/// start that began just before the deadline from signalling the node after it).
async fn execute(
    cmds: Vec<Command>,
    out: DeciderOutputs,
    clock: Clock,
    status_write_required: bool,
    start_by: Option<Mono>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut cmds = cmds.into_iter();
    while let Some(cmd) = cmds.next() {
        let starts = matches!(
            &cmd,
            Command::Install
                | Command::Reload {
                    reason: ReloadReason::StartForging | ReloadReason::Rotation
                }
        );
        if starts && start_by.is_some_and(|deadline| clock.now() >= deadline) {
            let e = CommandFailed::new(
                DEADLINE_PASSED,
                "the lease's renew deadline passed while the plan ran: not starting",
            );
            tracing::warn!(command = ?cmd, kind = e.kind, "command not sent");
            outcome.failed = Some((cmd, e));
            return outcome;
        }
        let result: Result<(), CommandFailed> = match &cmd {
            Command::Contend(on) => out
                .contend
                .send(Contend(*on))
                .await
                .map_err(|e| CommandFailed::new("mailbox", e)),
            Command::Release => flatten(out.release.send(Release).await),
            Command::Install => flatten(out.install.send(Install).await),
            Command::Remove => flatten(out.remove.send(Remove).await),
            Command::Reload { reason } => flatten(out.reload.send(Reload { reason: *reason }).await),
            Command::WriteStatus(report) => {
                let r = flatten(out.write_status.send(WriteStatus(report.clone())).await);
                if r.is_ok() {
                    outcome.status_written.push((report.forging_enabled, clock.now()));
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::warn!(command = ?cmd, kind = e.kind, error = %e.detail, "command failed");
            if aborts(&cmd, &e, status_write_required) {
                if cmd == Command::Remove
                    && let Some(Command::Reload { reason }) =
                        cmds.find(|c| matches!(c, Command::Reload { reason } if !reason.needs_node()))
                {
                    // Some files may be gone: cardano-node stops forging when any is missing, so
                    // the node is told anyway. The plan still stops here: nothing is handed over.
                    let told = flatten(out.reload.send(Reload { reason }).await);
                    tracing::warn!(
                        reason = reason.as_str(),
                        reloaded = told.is_ok(),
                        "credentials not all removed: reloaded the node anyway; keeping the lease and the claim"
                    );
                }
                outcome.failed = Some((cmd, e));
                return outcome;
            }
        }
    }
    outcome
}

fn flatten(r: Result<Result<(), CommandFailed>, actix::MailboxError>) -> Result<(), CommandFailed> {
    r.map_err(|e| CommandFailed::new("mailbox", e))
        .and_then(|inner| inner)
}
