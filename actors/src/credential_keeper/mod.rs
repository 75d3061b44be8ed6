//! CredentialKeeper: the source credential files (a read-only Secret mount) and the target files
//! the node reads on SIGHUP (docs/architecture.md, "Actors"). It decides nothing.
//!
//! - Start: the standby state first. Target files left by a crashed predecessor are removed
//!   ("never left behind on a standby"), then the sources are validated and reported.
//! - `Install`: the sources are read and validated again; an invalid set is refused and never
//!   written. A valid one is installed atomically with mode 0600 and verified; a failed or
//!   unverifiable install is removed again, so a partial set never stays.
//! - `Remove`: the target files are removed (idempotent).
//! - Rotation: the source *directories* are watched (Kubernetes swaps a `..data` symlink, so
//!   file watches would miss it); after a burst settles the sources are validated again. A new
//!   valid set is reported as `CredentialsValid` + `SourcesRotated` (the Decider re-installs only
//!   while forging); an invalid one as `CredentialsInvalid`, leaving the installed set alone.
//!
//! - Understanding: besides the envelopes, the set must hang together and be current (forge-core's
//!   `check_set`): the certificate is for the KES key, carries a valid cold signature, and, with
//!   the network's [`KesSchedule`], its KES period has started and not ended. A refused set is
//!   reported like any invalid one (`CredentialsInvalid`, the failure metric, `/status`), plus a
//!   Kubernetes Event (`Warning` `CredentialsRefused` on this pod) when the keeper has
//!   [`PodEvents`]. The certificate's KES figures go to
//!   the `cardano_kes_*` and `cardano_opcert_*` gauges; a timer refreshes them each
//!   [`KES_REFRESH`] and re-validates when the certificate's standing changes (it expired, or
//!   its start period arrived), so an expiry is reported without any file change.
//!
//! Contents never leave [`SecretBytes`]: reasons name files and problems only (forge-core's
//! validation guarantees that), and nothing here logs or formats contents. The sources are the
//! [`CredentialSource`] port, the targets the [`CredentialStore`] port: small local I/O done
//! inside the handlers.
//!
//! Beside this file: `actor.rs` (the lifecycle), `handlers.rs` (the messages), `validation.rs`
//! (reading and validating the sources, the KES figures, the network's [`kes_schedule`]).
//!
//! [`SecretBytes`]: crate::ports::SecretBytes

mod actor;
mod handlers;
mod validation;

use std::{collections::VecDeque, sync::Arc, time::Duration};

use actix::{Recipient, SpawnHandle, dev::SendError};
use forge_core::{
    cardano::{KesSchedule, KesState},
    credentials::{CredentialKind, OpCertInfo},
    decision::Event,
};
use jiff::Timestamp;
use prometheus::IntCounterVec;
use tokio::time::Instant;

use crate::{
    messages::{CommandError, CommandFailed, CommandResult, Fact, SourcesRotated, StatusFigures},
    metrics::{KesMetrics, Metrics},
    ports::{CredentialContents, CredentialFileError, CredentialSource, CredentialStore, PodEvents},
    supervisor::Restarts,
};

/// Commands come one at a time from the Decider; watch events enter through a stream.
pub const MAILBOX_CAPACITY: usize = 16;
/// Quiet time after the last change before re-validating: a Secret update is a burst of
/// creates and renames within milliseconds.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);
/// Longest a continuous burst may postpone re-validation.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How soon a fact the Decider's full mailbox refused is offered again.
const RETRY_SEND: Duration = Duration::from_millis(100);
/// How often the KES figures are recomputed (a KES period is 36 hours on mainnet).
pub const KES_REFRESH: Duration = Duration::from_secs(60);

pub use self::validation::kes_schedule;

/// What `/status` can show about the source certificate: its figures and KES standing (the
/// document's type, in the core).
pub use forge_core::status::KesReport;

/// What was last reported about the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid(String),
}

/// Owns the source and target credential files; see the module documentation.
pub struct CredentialKeeper {
    pub(crate) sources: Arc<dyn CredentialSource>,
    pub(crate) targets: Arc<dyn CredentialStore>,
    decider: Recipient<Fact>,
    rotations: Recipient<SourcesRotated>,
    /// `cardano_credential_operations_total{operation,file}`.
    operations: IntCounterVec,
    /// `forge_manager_credential_validation_failures_total{file,kind}`.
    validation_failures: IntCounterVec,
    pub(crate) restarts: Restarts,
    pub(crate) debounce: Duration,
    /// Delay before watching again after a restart (the backoff).
    pub(crate) resume_after: Duration,
    /// The pending re-validation and when the burst that scheduled it began.
    pub(crate) debounce_timer: Option<SpawnHandle>,
    pub(crate) burst_since: Option<Instant>,
    /// What was last reported (kept across restarts: facts report changes).
    verdict: Option<Verdict>,
    /// The last valid source set (to tell a rotation from an unrelated event).
    last_valid: Option<CredentialContents>,
    /// Whether the Decider's `Install` put the set in place (and no `Remove` since).
    pub(crate) installed: bool,
    /// Facts and rotations the Decider's mailbox has not accepted yet, oldest first.
    outbox: VecDeque<Outgoing>,
    pub(crate) retry_timer: Option<SpawnHandle>,
    /// The network's KES timing (none: the KES period is not checked).
    kes_schedule: Option<KesSchedule>,
    /// The wall clock (tests set their own).
    wall: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    kes_metrics: KesMetrics,
    /// The last source certificate that decoded, and its standing then.
    last_op_cert: Option<OpCertInfo>,
    last_kes_state: Option<KesState>,
    /// Where the KES figures go for `/status` (the Decider), and what was last sent there.
    kes_report: Option<(Recipient<StatusFigures>, Option<KesReport>)>,
    events: Option<Arc<dyn PodEvents>>,
    pub(crate) kes_timer: Option<SpawnHandle>,
    pub(crate) kes_refresh: Duration,
}

enum Outgoing {
    Fact(Fact),
    Rotated,
}

impl CredentialKeeper {
    /// A keeper of `sources` (read) and `targets` (written), reporting to the Decider.
    pub fn new(
        sources: Arc<dyn CredentialSource>,
        targets: Arc<dyn CredentialStore>,
        decider: Recipient<Fact>,
        rotations: Recipient<SourcesRotated>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            sources,
            targets,
            decider,
            rotations,
            operations: metrics.credential_operations.clone(),
            validation_failures: metrics.credential_validation_failures.clone(),
            restarts: Restarts::new("credential_keeper", Some(metrics.actor_restarts.clone())),
            debounce: DEFAULT_DEBOUNCE,
            resume_after: Duration::ZERO,
            debounce_timer: None,
            burst_since: None,
            verdict: None,
            last_valid: None,
            installed: false,
            outbox: VecDeque::new(),
            retry_timer: None,
            kes_schedule: None,
            wall: Arc::new(Timestamp::now),
            kes_metrics: metrics.kes.clone(),
            last_op_cert: None,
            last_kes_state: None,
            kes_report: None,
            events: None,
            kes_timer: None,
            kes_refresh: KES_REFRESH,
        }
    }

    /// Sets how often the KES figures are recomputed (tests use a short one).
    pub fn with_kes_refresh(mut self, every: Duration) -> Self {
        self.kes_refresh = every;
        self
    }

    /// Checks the certificate's KES period against `schedule` (see [`kes_schedule`]).
    pub fn with_kes_schedule(mut self, schedule: Option<KesSchedule>) -> Self {
        self.kes_schedule = schedule;
        self
    }

    /// Publishes a Kubernetes Event for each refusal.
    pub fn with_events(mut self, events: Arc<dyn PodEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Sends the source certificate's [`KesReport`] to `to` (the Decider, for `/status`)
    /// whenever it changes.
    pub fn with_kes_report(mut self, to: Recipient<StatusFigures>) -> Self {
        self.kes_report = Some((to, None));
        self
    }

    /// Uses `wall` as the wall clock for KES periods (tests).
    pub fn with_wall_clock(mut self, wall: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.wall = Arc::new(wall);
        self
    }

    /// Sets the quiet time after a change before re-validating (tests use a short one).
    pub fn with_debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// How long to wait before re-validating after a change seen now.
    pub(crate) fn debounce_delay(&mut self, now: Instant) -> Duration {
        let since = *self.burst_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= MAX_DEBOUNCE {
            Duration::ZERO
        } else {
            self.debounce
        }
    }

    /// Removes the target files, counting each removal. Used at start (standby state).
    pub(crate) fn remove_targets(&mut self) -> Result<(), CredentialFileError> {
        let removed = self.targets.remove()?;
        self.count_operation("remove", &removed);
        self.installed = false;
        if !removed.is_empty() {
            let files: Vec<&str> = removed.iter().map(|k| k.short_name()).collect();
            tracing::info!(actor = "credential_keeper", files = ?files, "target credential files removed");
        }
        Ok(())
    }

    fn count_operation(&self, operation: &str, kinds: &[CredentialKind]) {
        for kind in kinds {
            self.operations
                .with_label_values(&[operation, kind.short_name()])
                .inc();
        }
    }

    /// Validates the sources (after start or a change) and reports what changed: a new valid set
    /// is `CredentialsValid` (+ `SourcesRotated` if it replaces an earlier valid one), an invalid
    /// one `CredentialsInvalid`. The installed targets are never touched here.
    pub(crate) fn revalidate(&mut self) {
        match self.read_valid_sources() {
            Ok(set) => {
                let rotated = self.last_valid.as_ref().is_some_and(|old| *old != set);
                if rotated {
                    tracing::info!(actor = "credential_keeper", "source credentials rotated (valid)");
                }
                if rotated {
                    // Reported again with the rotation, whatever was reported before.
                    self.verdict = None;
                }
                self.accept_valid(set);
                if rotated {
                    self.outbox.push_back(Outgoing::Rotated);
                }
            }
            Err(invalid) => self.report_invalid(invalid.why),
        }
    }

    fn accept_valid(&mut self, set: CredentialContents) {
        self.last_valid = Some(set);
        if self.verdict != Some(Verdict::Valid) {
            tracing::info!(actor = "credential_keeper", "source credentials are valid");
            self.verdict = Some(Verdict::Valid);
            self.outbox
                .push_back(Outgoing::Fact(Fact::now(Event::CredentialsValid)));
        }
    }

    fn report_invalid(&mut self, why: String) {
        let verdict = Verdict::Invalid(why.clone());
        if self.verdict.as_ref() == Some(&verdict) {
            return;
        }
        tracing::warn!(actor = "credential_keeper", why = %why, "source credentials are invalid");
        if let Some(events) = &self.events {
            events.warning("CredentialsRefused", "ValidateCredentials", &why);
        }
        self.verdict = Some(verdict);
        self.outbox
            .push_back(Outgoing::Fact(Fact::now(Event::CredentialsInvalid { why })));
    }

    /// `Install`: validate again, install atomically, verify; refuse an invalid set.
    pub(crate) fn install(&mut self) -> CommandResult {
        let set = match self.read_valid_sources() {
            Ok(set) => set,
            Err(invalid) => {
                // Report it even if already reported: the Decider acts on the refusal.
                self.verdict = None;
                self.report_invalid(invalid.why.clone());
                return Err(CommandFailed::new(CommandError::InvalidCredentials, invalid.why));
            }
        };
        self.accept_valid(set.clone());
        if let Err(e) = self.targets.install(&set) {
            tracing::error!(actor = "credential_keeper", kind = e.kind().as_str(), error = %e, "credential install failed");
            self.remove_after_failed_install();
            return Err(CommandFailed::new(e.kind(), e));
        }
        if !self.targets.is_installed(&set) {
            tracing::error!(actor = "credential_keeper", "installed credentials do not verify");
            self.remove_after_failed_install();
            return Err(CommandFailed::new(
                CommandError::VerifyFailed,
                "the installed credential files do not match the sources or are not mode 0600",
            ));
        }
        self.count_operation("copy", &CredentialKind::ALL);
        self.installed = true;
        tracing::info!(actor = "credential_keeper", "credentials installed");
        Ok(())
    }

    fn remove_after_failed_install(&mut self) {
        if let Err(e) = self.remove_targets() {
            tracing::error!(actor = "credential_keeper", error = %e, "cannot remove a failed install");
        }
    }

    /// `Remove`: remove the target files.
    pub(crate) fn remove(&mut self) -> CommandResult {
        match self.remove_targets() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.installed = !self.targets.present().is_empty();
                tracing::error!(actor = "credential_keeper", kind = e.kind().as_str(), error = %e, "credential removal failed");
                Err(CommandFailed::new(e.kind(), e))
            }
        }
    }

    /// Offers the queued facts to the Decider in order. Returns false if its mailbox was full
    /// (the rest stay queued; the caller retries soon). A closed Decider drops them.
    pub(crate) fn flush(&mut self) -> bool {
        while let Some(next) = self.outbox.pop_front() {
            let refused = match next {
                Outgoing::Fact(fact) => match self.decider.try_send(fact) {
                    Ok(()) => None,
                    Err(SendError::Full(fact)) => Some(Outgoing::Fact(fact)),
                    Err(SendError::Closed(_)) => {
                        tracing::error!(actor = "credential_keeper", "Decider is gone");
                        None
                    }
                },
                Outgoing::Rotated => match self.rotations.try_send(SourcesRotated) {
                    Ok(()) => None,
                    Err(SendError::Full(_)) => Some(Outgoing::Rotated),
                    Err(SendError::Closed(_)) => None,
                },
            };
            if let Some(again) = refused {
                tracing::warn!(actor = "credential_keeper", "Decider mailbox full: retrying");
                self.outbox.push_front(again);
                return false;
            }
        }
        true
    }
}

impl Drop for CredentialKeeper {
    /// A panic is a bug: leave no credentials behind (the fail-safe of docs/architecture.md,
    /// "Actors").
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.targets.remove();
        }
    }
}
