//! The Decider: the only actor that holds the effective state (docs/architecture.md, "Actors").
//! It is a shell around forge-core's [`Lifecycle`]: every fact, timer, finished plan, rotation
//! and SIGTERM becomes an [`Input`](forge_core::decision::Input), and the lifecycle answers with
//! effects the actor carries out: plans sent in order, each command answered before the next
//! (break before make, S2), timers, log lines, metrics and `/status`. It never makes a decision
//! itself; the lifecycle's rules (start-up, boot credentials, re-assert, rotation, failures,
//! shutdown) are documented and property-tested in forge-core (`core/src/decision/lifecycle/`).

mod actor;
mod handlers;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actix::{Recipient, SpawnHandle};
use forge_core::{
    decision::{Command, HandOver, Lifecycle, LifecycleConfig, Phase, State, aborts},
    lease::Mono,
    status::{CredentialsReport, NodeReport, PeerReport, SidecarStatus},
};
use tokio::sync::watch;

use crate::{
    clock::Clock,
    http::Snapshot,
    messages::{CommandError, CommandFailed, Contend, Install, Release, Reload, Remove, WriteStatus},
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
    /// The longest a SIGTERM handover waits for an imminent leader slot of ours to pass
    /// (`LEADER_SCHEDULE`, `HANDOVER_QUIET`); zero: never held.
    pub shutdown_hold_max: Duration,
    /// A reload that does not stop forging (start, rotation, re-assert) is sent only while at
    /// least this much is left before the renew deadline (and quorum mode's forge deadline):
    /// the stop at the deadline waits for every earlier reload's `STOP_GRACE` (F21).
    /// `STOP_GRACE`, capped by what the lease timing leaves ([`reload_room`]).
    pub reload_room: Duration,
}

/// The room a reload that does not stop forging must leave before the forging deadline:
/// `STOP_GRACE`, but no more than `RENEW_DEADLINE - RETRY_PERIOD` (what is left just before a
/// renewal that comes on time; in quorum mode the tickets' `TICKET_RENEW_DEADLINE -
/// RETRY_PERIOD` too, `ticket`), so a healthy lease never keeps a start from being planned. The
/// second value is true when `STOP_GRACE` was capped: the stop at the deadline may then wait for
/// a reload past the deadline, up to the difference (docs/safety-findings.md F21).
pub fn reload_room(
    stop_grace: Duration,
    lease: &forge_core::config::LeaseTiming,
    ticket: Option<&forge_core::config::LeaseTiming>,
) -> (Duration, bool) {
    let available = [Some(lease), ticket]
        .into_iter()
        .flatten()
        .map(|t| t.renew_deadline.saturating_sub(t.retry_period))
        .min()
        .unwrap_or_default();
    (stop_grace.min(available), stop_grace > available)
}

/// The Decider actor: a shell around forge-core's [`Lifecycle`], which decides everything; the
/// actor carries out its effects (plans, timers, logs, metrics, `/status`).
pub struct Decider {
    settings: DeciderSettings,
    life: Lifecycle,
    clock: Clock,
    out: DeciderOutputs,
    snapshot: watch::Sender<Arc<Snapshot>>,
    metrics: Option<Metrics>,
    /// The timer for the decision's `next_wake`.
    wake: Option<SpawnHandle>,
    /// The oldest fact not yet decided on (decision latency).
    oldest_fact: Option<tokio::time::Instant>,
    /// The source certificate's KES figures as the CredentialKeeper last sent them, shown in
    /// `/status`.
    kes_report: Option<forge_core::status::KesReport>,
    /// The node's sync and our leader schedule as the ChainWatcher last sent them, shown in
    /// `/status`.
    chain_report: Option<forge_core::status::ChainReport>,
    /// The forge tickets' standing as the TicketKeeper last sent it (quorum mode), shown in
    /// `/status`.
    quorum_report: Option<forge_core::status::QuorumReport>,
    /// Quorum mode: the TicketKeeper, told the lifecycle's ticket intent whenever it changes.
    tickets: Option<Recipient<crate::ticket_keeper::TicketIntent>>,
    /// The intent last sent to the TicketKeeper.
    intent_sent: Option<forge_core::quorum::Intent>,
    /// Cluster management: the PeerWatchers, told `Leading` when this pod starts or stops holding
    /// its region's local lease, and what they were last told (they start as not leading).
    leading: Option<(Vec<Recipient<crate::messages::Leading>>, bool)>,
    /// The lifecycle's count of node processes seen ([`Lifecycle::node_process`]), kept after
    /// every input, for the hand-over gate of the plan in flight ([`execute`]).
    node_process: Arc<AtomicU64>,
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
        let config = LifecycleConfig {
            boot_credentials: settings.boot_credentials,
            reassert_window: settings.reassert_window,
            reassert_every: settings.reassert_every,
            retry_after: settings.retry_after,
            status_write_required: settings.status_write_required,
            shutdown_hold_max: settings.shutdown_hold_max,
            reload_room: settings.reload_room,
        };
        Self {
            settings,
            life: Lifecycle::new(config, state),
            clock,
            out,
            snapshot,
            metrics,
            wake: None,
            oldest_fact: None,
            kes_report: None,
            chain_report: None,
            quorum_report: None,
            tickets: None,
            intent_sent: None,
            leading: None,
            node_process: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Cluster management: tells `peers` whether this pod holds its region's local lease when
    /// that changes (see [`crate::peer_watcher::PeerWatcher::with_leader_gate`]); when it starts
    /// to, every PeerWatcher reads at once.
    pub fn with_leading(mut self, peers: Vec<Recipient<crate::messages::Leading>>) -> Self {
        self.leading = Some((peers, false));
        self
    }

    /// Quorum mode: tells `keeper` what to do with the forge tickets (the lifecycle's
    /// [`Lifecycle::ticket_intent`]) whenever that changes.
    pub fn with_tickets(mut self, keeper: Recipient<crate::ticket_keeper::TicketIntent>) -> Self {
        self.tickets = Some(keeper);
        self
    }

    /// Sends the ticket intent when it changed (quorum mode), and `Leading` to the PeerWatchers.
    fn send_intent(&mut self) {
        if let Some((peers, was)) = &mut self.leading {
            let leader = self.life.state().lease.is_current(self.clock.now());
            let was = std::mem::replace(was, leader);
            if leader != was {
                peers
                    .iter()
                    .for_each(|p| p.do_send(crate::messages::Leading(leader)));
            }
            if leader && !was {
                for peer in &self.out.poll_peers {
                    peer.do_send(crate::messages::PollNow);
                }
            }
        }
        let Some(keeper) = &self.tickets else { return };
        let intent = self.life.ticket_intent(self.clock.now(), self.clock.wall());
        if self.intent_sent != Some(intent) {
            keeper.do_send(crate::ticket_keeper::TicketIntent(intent));
            self.intent_sent = Some(intent);
        }
    }

    /// Keeps `figures` for `/status` (published with the next decision or heartbeat).
    fn keep_figures(&mut self, figures: crate::messages::StatusFigures) {
        use crate::messages::StatusFigures;
        match figures {
            StatusFigures::Kes(r) => self.kes_report = Some(r),
            StatusFigures::Chain(r) => self.chain_report = Some(r),
            StatusFigures::Quorum(r) => self.quorum_report = Some(r),
        }
    }

    /// The `/status` document and readiness, published for the HTTP endpoints.
    fn publish(&self) {
        let d = self.life.current();
        let state = self.life.state();
        let now = self.clock.now();
        let deadline_ms = state
            .lease
            .deadline()
            .map(|dl| dl.saturating_since(now).as_millis() as u64);
        let status = SidecarStatus {
            pod: self.settings.pod.clone(),
            forging: Some(d.forge),
            claim: d.claim,
            reason: d.reason.as_str().to_string(),
            message: d.reason.message(),
            effective_state: d.effective_state.as_str().to_string(),
            effective_priority: d.effective_priority,
            holds_lease: d.holds_lease,
            contending: d.contend,
            lease_deadline_in_ms: deadline_ms,
            node: NodeReport {
                up: state.node.up,
                synced: state.node.synced,
            },
            credentials: credentials_report(&state.credentials),
            cluster: state.config.cluster.clone(),
            cluster_management: state.config.cluster_management,
            health_consecutive_failures: state.health.consecutive_failures,
            peers: state
                .peers
                .iter()
                .map(|(name, v)| PeerReport {
                    cluster: name.clone(),
                    reach: format!("{:?}", v.reach),
                    forging_enabled: v.status.as_ref().and_then(|s| s.forging_enabled),
                    effective_priority: v.status.as_ref().and_then(|s| s.effective_priority),
                })
                .collect(),
            busy: self.life.in_flight().is_some(),
            phase: format!("{:?}", self.life.phase()),
            kes: self.kes_report,
            chain: self.chain_report.clone(),
            quorum: self.quorum_report.clone(),
            warnings: Vec::new(),
        };
        let startup_message = match (self.life.phase(), self.life.node_may_start()) {
            (Phase::StartingUp, _) => "establishing the standby state",
            (Phase::ShuttingDown | Phase::Stopped, _) => "shutting down",
            (Phase::Running, false) => "providing the credentials the node needs to boot",
            (Phase::Running, true) => "standby state established; the node may start",
        };
        self.snapshot.send_replace(Arc::new(Snapshot {
            ready: self.life.ready(),
            startup_complete: self.life.node_may_start(),
            startup_message: startup_message.to_string(),
            heartbeat: Some(std::time::Instant::now()),
            status: Some(status),
        }));
    }
}

fn credentials_report(c: &forge_core::decision::Credentials) -> CredentialsReport {
    use forge_core::decision::Credentials;
    match c {
        Credentials::Unknown => CredentialsReport::Unknown,
        Credentials::Valid => CredentialsReport::Valid,
        Credentials::Invalid { why } => CredentialsReport::Invalid { why: why.clone() },
    }
}

/// What carrying out a plan came to.
#[derive(Debug, Default)]
struct Outcome {
    /// The first failed command and why (the rest was not sent).
    failed: Option<(Command, CommandFailed)>,
    /// Status writes confirmed: the `forgingEnabled` they carried and when.
    status_written: Vec<(bool, Mono)>,
    /// The NodeSignaller answered a reload that an earlier stopping reload may undo until then
    /// ([`crate::messages::Reloaded`]; the lifecycle plans the follow-up).
    undoable_until: Option<Mono>,
}

/// Sends `cmds` in order, each answered before the next goes out.
///
/// `hand_over`: the commands from its `from` on give something up (the lifecycle's hand-over
/// gate); each is sent only while `node_process` still holds the count the plan was made for.
/// A node process that came up while the plan ran stops the plan before that command, reported
/// as failed there with `node_restarted`: the lifecycle confirms the stop for the new process
/// before anything is given up (F12). The actor handles that process's `NodeUp` between two
/// steps of this future, so a process reported before the command is sent always stops it.
///
/// `start_by`: a plan that makes (or keeps) the node forge carries the lease's renew deadline.
/// No command of it is sent past the deadline, and the wait for an answer is abandoned there:
/// the plan fails with `deadline_passed` and the lifecycle's stop plan follows at once (without
/// the guard nothing else would stop a start that began just before the deadline, and a slow
/// status write must not hold the stop back). The commands already sent are not recalled; the
/// stop's own commands queue behind them at the same actors, in order.
async fn execute(
    cmds: Vec<Command>,
    out: DeciderOutputs,
    clock: Clock,
    status_write_required: bool,
    start_by: Option<Mono>,
    hand_over: Option<(HandOver, Arc<AtomicU64>)>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut cmds = cmds.into_iter().enumerate();
    while let Some((index, cmd)) = cmds.next() {
        if let Some((gate, seen)) = &hand_over
            && !gate.allows(index, seen.load(Ordering::Relaxed))
        {
            let e = CommandFailed::new(
                CommandError::NodeRestarted,
                "a new node process came up while the plan ran: not giving anything up before its stop is confirmed",
            );
            tracing::warn!(command = ?cmd, kind = e.kind.as_str(), "command not sent");
            outcome.failed = Some((cmd, e));
            return outcome;
        }
        if start_by.is_some_and(|deadline| clock.now() >= deadline) {
            let e = CommandFailed::new(
                CommandError::DeadlinePassed,
                "the lease's renew deadline passed while the plan ran: not sending the rest",
            );
            tracing::warn!(command = ?cmd, kind = e.kind.as_str(), "command not sent");
            outcome.failed = Some((cmd, e));
            return outcome;
        }
        let send = async {
            match &cmd {
                Command::Contend(on) => out
                    .contend
                    .send(Contend(*on))
                    .await
                    .map_err(|e| CommandFailed::new(CommandError::Mailbox, e)),
                Command::Release => flatten(out.release.send(Release).await),
                Command::Install => flatten(out.install.send(Install).await),
                Command::Remove => flatten(out.remove.send(Remove).await),
                Command::Reload { reason } => {
                    let answer = flatten(out.reload.send(Reload { reason: *reason }).await)?;
                    if let Some(at) = answer.undoable_until.map(|at| clock.mono_of(at)) {
                        outcome.undoable_until = Some(outcome.undoable_until.map_or(at, |t| t.max(at)));
                    }
                    Ok(())
                }
                Command::WriteStatus(report) => {
                    flatten(out.write_status.send(WriteStatus(report.clone())).await)
                }
            }
        };
        let result = match start_by {
            None => send.await,
            Some(deadline) => tokio::time::timeout_at(clock.instant_of(deadline), send)
                .await
                .unwrap_or_else(|_| {
                    Err(CommandFailed::new(
                        CommandError::DeadlinePassed,
                        "the lease's renew deadline passed while waiting for the answer",
                    ))
                }),
        };
        if let (Ok(()), Command::WriteStatus(report)) = (&result, &cmd) {
            outcome.status_written.push((report.forging_enabled, clock.now()));
        }
        if let Err(e) = result {
            tracing::warn!(command = ?cmd, kind = e.kind.as_str(), error = %e.detail, "command failed");
            if aborts(&cmd, e.kind.is_node_absent(), status_write_required) {
                if cmd == Command::Remove
                    && let Some(reason) = cmds.find_map(|(_, c)| match c {
                        Command::Reload { reason } if !reason.needs_node() => Some(reason),
                        _ => None,
                    })
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

fn flatten<T>(r: Result<Result<T, CommandFailed>, actix::MailboxError>) -> Result<T, CommandFailed> {
    r.map_err(|e| CommandFailed::new(CommandError::Mailbox, e))
        .and_then(|inner| inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use forge_core::config::LeaseTiming;

    use super::reload_room;

    fn lease(renew_deadline_ms: u64, retry_period_ms: u64) -> LeaseTiming {
        LeaseTiming {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_millis(renew_deadline_ms),
            retry_period: Duration::from_millis(retry_period_ms),
        }
    }

    #[test]
    fn the_room_before_the_deadline_is_stop_grace_where_the_lease_timing_leaves_it() {
        let grace = Duration::from_secs(2);
        // The defaults: 10 s renew deadline, a renewal every 2 s.
        assert_eq!(reload_room(grace, &lease(10_000, 2_000), None), (grace, false));
        assert_eq!(
            reload_room(grace, &lease(4_000, 2_000), None),
            (grace, false),
            "just enough"
        );
        // A renew deadline of 2 s renewed every 500 ms leaves 1.5 s before a renewal on time:
        // capped (and reported), or no start could ever be planned between renewals.
        assert_eq!(
            reload_room(grace, &lease(2_000, 500), None),
            (Duration::from_millis(1_500), true)
        );
        // Quorum mode: the tickets' timing bounds it too.
        assert_eq!(
            reload_room(grace, &lease(10_000, 2_000), Some(&lease(3_000, 2_000))),
            (Duration::from_secs(1), true)
        );
        assert_eq!(
            reload_room(grace, &lease(10_000, 2_000), Some(&lease(12_000, 2_000))),
            (grace, false)
        );
    }
}
