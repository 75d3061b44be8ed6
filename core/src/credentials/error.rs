//! What is wrong with one credential file ([`CredentialError`]) or with a set
//! ([`CredentialSetError`]).

use super::CredentialKind;

/// What is wrong with one credential file. Messages name the file label and never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The file is larger than [`MAX_ENVELOPE_BYTES`](super::MAX_ENVELOPE_BYTES).
    #[error("{file}: {kind} file is {size} bytes, more than the {max} a text envelope can be")]
    TooLarge {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// Actual size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a JSON object.
    #[error("{file}: {kind} is not a JSON text envelope (parse error at line {line}, column {column})")]
    NotJson {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// Line of the JSON error (1-based; 0 if the top level is not an object).
        line: usize,
        /// Column of the JSON error.
        column: usize,
    },
    /// A required envelope field is missing or not a string.
    #[error("{file}: {kind} envelope has no string field `{field}`")]
    MissingField {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// The field: `type`, `description` or `cborHex`.
        field: &'static str,
    },
    /// The envelope's `type` is not the one expected for this kind.
    #[error("{file}: expected a {kind} (type `{expected}`), found {found}")]
    WrongType {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// Expected envelope type.
        expected: &'static str,
        /// The type found, only if it is a well-known envelope type, else a neutral phrase.
        found: String,
    },
    /// `cborHex` is not an even-length string of hex digits.
    #[error("{file}: {kind} `cborHex` is not valid hex ({problem})")]
    NotHex {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// `odd length` or `non-hex character at position N`.
        problem: String,
    },
    /// `cborHex` does not decode as exactly one CBOR item.
    #[error("{file}: {kind} `cborHex` is not a single CBOR item ({problem})")]
    NotCbor {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// What failed, without content.
        problem: String,
    },
    /// The CBOR item has the wrong shape or size for this kind.
    #[error("{file}: {kind} has the wrong structure: expected {expected}, got {got}")]
    WrongShape {
        /// File label.
        file: String,
        /// Expected kind.
        kind: CredentialKind,
        /// What was expected.
        expected: String,
        /// What was found (a CBOR major type and a size, never bytes).
        got: String,
    },
    /// The VRF signing key's verification half is not the one its seed gives.
    #[error(
        "{file}: VRF signing key is inconsistent: its verification key half is not the one its seed gives"
    )]
    VrfKeyInconsistent {
        /// File label.
        file: String,
    },
    /// The certificate's cold signature does not verify.
    #[error(
        "{file}: operational certificate's cold key signature does not verify (the certificate was altered or not issued by its cold key)"
    )]
    ColdSignatureInvalid {
        /// File label.
        file: String,
    },
    /// The certificate is for another KES key than the KES signing key.
    #[error(
        "{file}: operational certificate is for a different KES key than {kes_file} (its KES verification key is not the one the signing key gives): issue a certificate for this KES key, or install the matching pair"
    )]
    KesKeyMismatch {
        /// The certificate's label.
        file: String,
        /// The KES signing key's label.
        kes_file: String,
    },
    /// The certificate's KES period has ended.
    #[error(
        "{file}: operational certificate has expired: it starts at KES period {start} and is valid for {max} periods, until period {end} (began {expired_at}); the current KES period is {current}: rotate the KES key and issue a new certificate"
    )]
    OpCertExpired {
        /// File label.
        file: String,
        /// The certificate's start period.
        start: u64,
        /// `maxKESEvolutions`.
        max: u64,
        /// The first period it is not valid in.
        end: u64,
        /// When that period began.
        expired_at: String,
        /// The current period.
        current: u64,
    },
    /// The certificate's KES period has not started yet.
    #[error(
        "{file}: operational certificate is not valid yet: it starts at KES period {start}, the current KES period is {current}"
    )]
    OpCertNotYetValid {
        /// File label.
        file: String,
        /// The certificate's start period.
        start: u64,
        /// The current period.
        current: u64,
    },
}

impl CredentialError {
    /// A bounded label for metrics and status reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotJson { .. } => "not_json",
            Self::MissingField { .. } => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::NotHex { .. } => "not_hex",
            Self::NotCbor { .. } => "not_cbor",
            Self::WrongShape { .. } => "wrong_shape",
            Self::VrfKeyInconsistent { .. } => "vrf_key_inconsistent",
            Self::ColdSignatureInvalid { .. } => "cold_signature_invalid",
            Self::KesKeyMismatch { .. } => "kes_key_mismatch",
            Self::OpCertExpired { .. } => "kes_expired",
            Self::OpCertNotYetValid { .. } => "kes_not_yet_valid",
        }
    }

    /// The file the problem is reported against (a mismatch: the certificate).
    pub fn credential(&self) -> CredentialKind {
        match self {
            Self::TooLarge { kind, .. }
            | Self::NotJson { kind, .. }
            | Self::MissingField { kind, .. }
            | Self::WrongType { kind, .. }
            | Self::NotHex { kind, .. }
            | Self::NotCbor { kind, .. }
            | Self::WrongShape { kind, .. } => *kind,
            Self::VrfKeyInconsistent { .. } => CredentialKind::VrfSigningKey,
            Self::ColdSignatureInvalid { .. }
            | Self::KesKeyMismatch { .. }
            | Self::OpCertExpired { .. }
            | Self::OpCertNotYetValid { .. } => CredentialKind::OperationalCertificate,
        }
    }

    /// Never retryable as such: the same bytes fail the same way. A rotated file is a new input.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// All problems of a credential set, at most one per file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.0))]
pub struct CredentialSetError(pub Vec<CredentialError>);

fn join_lines(errors: &[CredentialError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
