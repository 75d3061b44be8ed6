//! Validation of the three forging credentials (KES signing key, VRF signing key, operational
//! certificate) as Cardano text envelopes, before anything is installed for the node.
//!
//! Takes bytes plus a file label (the path string, only used in messages). No I/O: reading the
//! files is the credential adapter's job. Errors name the file and what is wrong with it and
//! NEVER any content: no `cborHex`, no key bytes, not even a prefix ("Nothing lost, no one in",
//! docs/architecture.md). The envelope's `type` is echoed only when it is one of the well-known
//! Cardano envelope types, so a file with key material in the wrong field is not echoed either.
//!
//! Formats (cardano-cli text envelopes, `{"type", "description", "cborHex"}`):
//! - KES signing key `KesSigningKey_ed25519_kes_2^6`: a CBOR byte string of 608 bytes
//!   (`cborHex` starts `590260`). Sum6KES over Ed25519: 32 + 6 x (32 seed + 2 x 32 vkeys) = 608.
//! - VRF signing key `VrfSigningKey_PraosVRF`: a CBOR byte string of 64 bytes (`5840`).
//! - Operational certificate `NodeOperationalCertificate`: the CBOR array
//!   `[[kes_vkey: bytes 32, counter: uint, kes_period: uint, sigma: bytes 64], cold_vkey: bytes 32]`.
//!
//! Beyond the shapes, the contents are understood ([`crate::cardano`]): the VRF key's halves agree,
//! the certificate carries the cold key's valid signature, the certificate's KES key is the one the
//! KES signing key gives, and, given the network's [`KesSchedule`](crate::cardano::KesSchedule) and
//! the time, the certificate's KES period has started and not ended.
//!
//! The kinds, per-file sets and the certificate's facts are here; `envelope` decodes and checks
//! one file, `set` checks the three together, and `error` says what is wrong.

mod envelope;
mod error;
mod set;
#[cfg(test)]
mod tests;

use std::fmt;

pub use envelope::validate_envelope;
pub use error::{CredentialError, CredentialSetError};
pub use set::{CredentialFile, KesClock, SetCheck, ValidCredentialSet, check_set, validate_set};

/// The largest credential file: a real envelope is under 2 KiB (a KES key's is about 1.3 KiB).
/// Larger files are rejected before parsing here, and before reading by the credential adapters,
/// so a wrong mount (a tarball, a directory of logs, a device) is refused instead of read.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
pub use crate::cardano::{KES_SKEY_BYTES, VRF_SKEY_BYTES};

/// Which of the three forging credentials a file is meant to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The hot KES signing key (`kes.skey`).
    KesSigningKey,
    /// The VRF signing key (`vrf.skey`).
    VrfSigningKey,
    /// The operational certificate (`node.cert`).
    OperationalCertificate,
}

impl CredentialKind {
    /// The text envelope `type` cardano-cli writes for this kind.
    pub fn envelope_type(self) -> &'static str {
        match self {
            Self::KesSigningKey => "KesSigningKey_ed25519_kes_2^6",
            Self::VrfSigningKey => "VrfSigningKey_PraosVRF",
            Self::OperationalCertificate => "NodeOperationalCertificate",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KesSigningKey => "KES signing key",
            Self::VrfSigningKey => "VRF signing key",
            Self::OperationalCertificate => "operational certificate",
        })
    }
}

impl CredentialKind {
    /// The three, in install order (KES key, VRF key, operational certificate).
    pub const ALL: [CredentialKind; 3] = [
        CredentialKind::KesSigningKey,
        CredentialKind::VrfSigningKey,
        CredentialKind::OperationalCertificate,
    ];

    /// Short stable name (`kes`, `vrf`, `opcert`): the `file` label of the credential metrics.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::KesSigningKey => "kes",
            Self::VrfSigningKey => "vrf",
            Self::OperationalCertificate => "opcert",
        }
    }
}

/// One thing per forging credential: paths (`CredentialSet<PathBuf>`, the configuration's
/// sources and targets), contents (the credential keeper's validated copy), or anything else
/// kept per file. Serialised with the settings' names (`kes_key`, `vrf_key`, `op_cert`, as in
/// `SOURCE_KES_KEY`), which only paths are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialSet<T> {
    /// The KES signing key's.
    #[serde(rename = "kes_key")]
    pub kes: T,
    /// The VRF signing key's.
    #[serde(rename = "vrf_key")]
    pub vrf: T,
    /// The operational certificate's.
    #[serde(rename = "op_cert")]
    pub opcert: T,
}

impl<T> CredentialSet<T> {
    /// The one of `kind`.
    pub fn get(&self, kind: CredentialKind) -> &T {
        match kind {
            CredentialKind::KesSigningKey => &self.kes,
            CredentialKind::VrfSigningKey => &self.vrf,
            CredentialKind::OperationalCertificate => &self.opcert,
        }
    }

    /// All three, in [`CredentialKind::ALL`] order.
    pub fn all(&self) -> [&T; 3] {
        [&self.kes, &self.vrf, &self.opcert]
    }

    /// Each with its kind, in [`CredentialKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (CredentialKind, &T)> {
        CredentialKind::ALL.into_iter().zip(self.all())
    }

    /// The same set with `f` applied to each.
    pub fn map<U>(&self, mut f: impl FnMut(CredentialKind, &T) -> U) -> CredentialSet<U> {
        CredentialSet {
            kes: f(CredentialKind::KesSigningKey, &self.kes),
            vrf: f(CredentialKind::VrfSigningKey, &self.vrf),
            opcert: f(CredentialKind::OperationalCertificate, &self.opcert),
        }
    }
}

/// What the operational certificate says, needed to judge it (counter vs the chain's, KES
/// period vs the current one). Public values, safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCertInfo {
    /// The issue counter (must exceed the one the chain last saw for the pool).
    pub counter: u64,
    /// The KES period the certificate starts at.
    pub kes_period: u64,
}
