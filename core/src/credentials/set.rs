//! The three files checked together ([`check_set`]): each as its kind, the certificate
//! against the KES key and, given a [`KesClock`], its KES period against the time.

use std::fmt;

use jiff::Timestamp;

use super::envelope::{Decoded, decode};
use super::{CredentialError, CredentialKind, CredentialSetError, OpCertInfo};
use crate::cardano::{KesSchedule, KesState, KesStatus};

/// One credential file as read: its label (the path, for messages) and its bytes.
#[derive(Clone, Copy)]
pub struct CredentialFile<'a> {
    /// The label used in messages, normally the path.
    pub label: &'a str,
    /// The file's bytes. Never printed: this type's `Debug` redacts them.
    pub bytes: &'a [u8],
}

impl fmt::Debug for CredentialFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFile")
            .field("label", &self.label)
            .field("bytes", &format_args!("<{} bytes redacted>", self.bytes.len()))
            .finish()
    }
}

/// A validated set: what the node can be given. Holds only public facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidCredentialSet {
    /// Counter and KES period of the operational certificate.
    pub op_cert: OpCertInfo,
    /// The certificate's KES standing, when the network's schedule is known.
    pub kes: Option<KesStatus>,
}

/// The network's KES schedule and the time to judge the certificate at.
#[derive(Debug, Clone, Copy)]
pub struct KesClock<'a> {
    /// The network's KES timing.
    pub schedule: &'a KesSchedule,
    /// Now (wall clock).
    pub now: Timestamp,
}

/// Everything a check of the three files found: the certificate's facts and KES standing as
/// far as it decoded (also when the set is refused, so an expired certificate still shows), and
/// every problem, at most one per file plus the set-level ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCheck {
    /// Counter and start period, if the certificate decoded.
    pub op_cert: Option<OpCertInfo>,
    /// Its KES standing, if it decoded and the schedule is known.
    pub kes: Option<KesStatus>,
    /// The problems; empty when the set is valid.
    pub errors: Vec<CredentialError>,
}

impl SetCheck {
    /// The verdict.
    pub fn into_result(self) -> Result<ValidCredentialSet, CredentialSetError> {
        match self.op_cert {
            Some(op_cert) if self.errors.is_empty() => Ok(ValidCredentialSet {
                op_cert,
                kes: self.kes,
            }),
            _ => Err(CredentialSetError(self.errors)),
        }
    }
}

/// Checks the three files together: each as its kind
/// ([`validate_envelope`](super::validate_envelope)), then that the certificate is for the KES key,
/// then (with `clock`) that its KES period is current.
pub fn check_set(
    kes: CredentialFile<'_>,
    vrf: CredentialFile<'_>,
    op_cert: CredentialFile<'_>,
    clock: Option<KesClock<'_>>,
) -> SetCheck {
    let mut errors = Vec::new();
    let kes_vkey = match decode(kes.bytes, CredentialKind::KesSigningKey, kes.label) {
        Ok(Decoded::Kes(vkey)) => Some(vkey),
        Ok(_) => None,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Err(e) = decode(vrf.bytes, CredentialKind::VrfSigningKey, vrf.label) {
        errors.push(e);
    }
    let cert = match decode(
        op_cert.bytes,
        CredentialKind::OperationalCertificate,
        op_cert.label,
    ) {
        Ok(Decoded::OpCert(cert)) => Some(cert),
        Ok(_) => None,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut status = None;
    if let Some(cert) = &cert {
        if let Some(vkey) = kes_vkey
            && vkey != cert.kes_vkey
        {
            errors.push(CredentialError::KesKeyMismatch {
                file: op_cert.label.to_owned(),
                kes_file: kes.label.to_owned(),
            });
        }
        if let Some(clock) = clock {
            let s = clock.schedule.status(cert.kes_period, clock.now);
            match s.state {
                KesState::Valid => {}
                KesState::Expired => errors.push(CredentialError::OpCertExpired {
                    file: op_cert.label.to_owned(),
                    start: s.start_period,
                    max: clock.schedule.max_kes_evolutions,
                    end: s.end_period,
                    expired_at: s.expires_at.to_string(),
                    current: s.current_period,
                }),
                KesState::NotYetValid => errors.push(CredentialError::OpCertNotYetValid {
                    file: op_cert.label.to_owned(),
                    start: s.start_period,
                    current: s.current_period,
                }),
            }
            status = Some(s);
        }
    }
    SetCheck {
        op_cert: cert.map(|c| OpCertInfo {
            counter: c.counter,
            kes_period: c.kes_period,
        }),
        kes: status,
        errors,
    }
}

/// Validates the three files together ([`check_set`]) and reports every problem.
pub fn validate_set(
    kes: CredentialFile<'_>,
    vrf: CredentialFile<'_>,
    op_cert: CredentialFile<'_>,
    clock: Option<KesClock<'_>>,
) -> Result<ValidCredentialSet, CredentialSetError> {
    check_set(kes, vrf, op_cert, clock).into_result()
}
