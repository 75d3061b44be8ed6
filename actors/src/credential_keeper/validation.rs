//! Reading the sources and validating them as a set (forge-core's `check_set`), with the
//! certificate's KES figures that come out of it: the failure metric per problem, the
//! `cardano_kes_*` and `cardano_opcert_*` gauges, the `/status` report, and the timer's refresh
//! that re-validates when the certificate's standing changes. Also the network's KES schedule
//! these checks use.

use std::path::{Path, PathBuf};

use forge_core::{
    cardano::{ByronEra, KesSchedule, KesStatus},
    config::NetworkSettings,
    credentials::{CredentialFile, CredentialKind, KesClock, OpCertInfo, check_set},
};

use super::{CredentialKeeper, KesReport};
use crate::{
    messages::StatusFigures,
    ports::{CredentialContents, CredentialFileError, CredentialSource},
};

/// The KES schedule of the configured network: the `SHELLEY_GENESIS` file when given (with the
/// known network's Byron era, or none), else the built-in one of mainnet, preprod or preview,
/// else none (then the KES period is not checked and the `cardano_kes_*` period gauges stay
/// absent; the certificate's own figures are still exported).
pub fn kes_schedule(network: &NetworkSettings) -> Result<Option<KesSchedule>, String> {
    let Some(file) = &network.shelley_genesis else {
        return Ok(KesSchedule::builtin(&network.name));
    };
    let label = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| format!("SHELLEY_GENESIS: {label}: {e}"))?;
    let byron = ByronEra::of_network(&network.name).unwrap_or(ByronEra::NONE);
    KesSchedule::from_shelley_genesis(&bytes, &label, byron)
        .map(Some)
        .map_err(|e| format!("SHELLEY_GENESIS: {e}"))
}

/// Why the source set is unusable: a message naming files and problems, and a `(file, kind)`
/// per problem for `forge_manager_credential_validation_failures_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidSources {
    pub(crate) why: String,
    pub(crate) problems: Vec<(&'static str, &'static str)>,
}

impl CredentialKeeper {
    /// Reads and validates the sources, counting each problem and exporting the certificate's
    /// KES figures.
    pub(crate) fn read_valid_sources(&mut self) -> Result<CredentialContents, InvalidSources> {
        let now = (self.wall)();
        let clock = self
            .kes_schedule
            .as_ref()
            .map(|schedule| KesClock { schedule, now });
        let (result, op_cert, status) = read_and_validate(&*self.sources, clock);
        if let Some(op_cert) = op_cert {
            self.last_op_cert = Some(op_cert);
            self.last_kes_state = status.map(|s| s.state);
            self.publish_kes(op_cert, status);
        }
        if let Err(invalid) = &result {
            for (file, kind) in &invalid.problems {
                self.validation_failures.with_label_values(&[file, kind]).inc();
            }
        }
        result
    }

    fn publish_kes(&mut self, op_cert: OpCertInfo, status: Option<KesStatus>) {
        self.kes_metrics.set_op_cert(op_cert.counter, op_cert.kes_period);
        if let Some(s) = status {
            self.kes_metrics
                .set_status(s.current_period, s.remaining_periods, s.expires_at);
        }
        let report = KesReport { op_cert, kes: status };
        if let Some((to, sent)) = &mut self.kes_report
            && *sent != Some(report)
        {
            to.do_send(StatusFigures::Kes(report));
            *sent = Some(report);
        }
    }

    /// The timer: recomputes the KES figures of the last decoded certificate; re-validates when
    /// its standing changed (expired, or its start period arrived). Returns whether it did.
    pub(crate) fn refresh_kes(&mut self) -> bool {
        let (Some(schedule), Some(op_cert)) = (&self.kes_schedule, self.last_op_cert) else {
            return false;
        };
        let status = schedule.status(op_cert.kes_period, (self.wall)());
        self.publish_kes(op_cert, Some(status));
        if self.last_kes_state == Some(status.state) {
            return false;
        }
        tracing::info!(
            actor = "credential_keeper",
            state = ?status.state,
            current_period = status.current_period,
            start_period = status.start_period,
            "the operational certificate's KES standing changed: re-validating"
        );
        self.revalidate();
        true
    }
}

/// Reads the three source files and checks them as a set ([`check_set`]). Also returns the
/// certificate's figures and standing as far as it decoded (an expired one included).
fn read_and_validate(
    sources: &dyn CredentialSource,
    clock: Option<KesClock<'_>>,
) -> (
    Result<CredentialContents, InvalidSources>,
    Option<OpCertInfo>,
    Option<KesStatus>,
) {
    let set = match sources.read() {
        Ok(set) => set,
        Err(e) => {
            let file = match &e {
                CredentialFileError::Read { path, .. } | CredentialFileError::TooLarge { path, .. } => {
                    role_of(sources.files(), path)
                }
                _ => "unknown",
            };
            let invalid = InvalidSources {
                why: e.to_string(),
                problems: vec![(file, e.kind().as_str())],
            };
            return (Err(invalid), None, None);
        }
    };
    let labels = sources.files().map(|_, path| path.display().to_string());
    let file = |kind: CredentialKind| CredentialFile {
        label: labels.get(kind).as_str(),
        bytes: set.get(kind).expose(),
    };
    let check = check_set(
        file(CredentialKind::KesSigningKey),
        file(CredentialKind::VrfSigningKey),
        file(CredentialKind::OperationalCertificate),
        clock,
    );
    let (op_cert, status) = (check.op_cert, check.kes);
    if check.errors.is_empty() {
        return (Ok(set), op_cert, status);
    }
    let why: Vec<String> = check.errors.iter().map(ToString::to_string).collect();
    let problems = check
        .errors
        .iter()
        .map(|e| (e.credential().short_name(), e.kind()))
        .collect();
    let invalid = InvalidSources {
        why: why.join("; "),
        problems,
    };
    (Err(invalid), op_cert, status)
}

fn role_of(paths: &forge_core::credentials::CredentialSet<PathBuf>, path: &Path) -> &'static str {
    paths
        .iter()
        .find(|(_, p)| *p == path)
        .map_or("unknown", |(kind, _)| kind.short_name())
}
