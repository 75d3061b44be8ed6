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
//! Beyond the shapes, the contents are understood ([`crate::cardano`]): the VRF key's halves
//! agree, the certificate carries the cold key's valid signature, the certificate's KES key is
//! the one the KES signing key gives, and, given the network's [`KesSchedule`] and the time, the
//! certificate's KES period has started and not ended.
use std::fmt;

use ciborium::Value;
use jiff::Timestamp;

use crate::cardano::{self, KesSchedule, KesState, KesStatus, OpCert};

/// Files larger than this are rejected before parsing: a real envelope is under 2 KiB, and the
/// bound keeps a wrong mount (a tarball, a log) from being parsed at all.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
pub use crate::cardano::{KES_SKEY_BYTES, VRF_SKEY_BYTES};
/// Size of an Ed25519 or KES verification key in an operational certificate.
const VKEY_BYTES: usize = 32;
/// Size of the cold key's Ed25519 signature in an operational certificate.
const SIGMA_BYTES: usize = 64;

/// Envelope types that may be echoed in messages (they are public names, not content).
const KNOWN_TYPES: &[&str] = &[
    "KesSigningKey_ed25519_kes_2^6",
    "KesVerificationKey_ed25519_kes_2^6",
    "VrfSigningKey_PraosVRF",
    "VrfVerificationKey_PraosVRF",
    "NodeOperationalCertificate",
    "NodeOperationalCertificateIssueCounter",
    "StakePoolSigningKey_ed25519",
    "StakePoolVerificationKey_ed25519",
    "StakePoolExtendedSigningKey_ed25519_bip32",
    "PaymentSigningKey_ed25519",
    "PaymentVerificationKey_ed25519",
    "StakeSigningKey_ed25519",
    "StakeVerificationKey_ed25519",
    "GenesisDelegateSigningKey_ed25519",
];

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

/// What is wrong with one credential file. Messages name the file label and never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The file is larger than [`MAX_ENVELOPE_BYTES`].
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

/// What one envelope holds once understood.
enum Decoded {
    /// The KES verification key the signing key gives.
    Kes([u8; 32]),
    Vrf,
    OpCert(OpCert),
}

/// Validates one credential envelope of the given kind, contents included except what needs
/// another file or the time (see [`check_set`]). Returns the operational certificate's facts for
/// [`CredentialKind::OperationalCertificate`], `None` for the keys.
pub fn validate_envelope(
    bytes: &[u8],
    kind: CredentialKind,
    file: &str,
) -> Result<Option<OpCertInfo>, CredentialError> {
    Ok(match decode(bytes, kind, file)? {
        Decoded::OpCert(c) => Some(OpCertInfo {
            counter: c.counter,
            kes_period: c.kes_period,
        }),
        Decoded::Kes(_) | Decoded::Vrf => None,
    })
}

fn decode(bytes: &[u8], kind: CredentialKind, file: &str) -> Result<Decoded, CredentialError> {
    let ctx = Ctx { file, kind };
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(CredentialError::TooLarge {
            file: file.to_owned(),
            kind,
            size: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ctx.not_json(e.line(), e.column()))?;
    let obj = json.as_object().ok_or_else(|| ctx.not_json(0, 0))?;
    let field = |name: &'static str| {
        obj.get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or(CredentialError::MissingField {
                file: file.to_owned(),
                kind,
                field: name,
            })
    };
    let ty = field("type")?;
    field("description")?;
    let cbor_hex = field("cborHex")?;
    if ty != kind.envelope_type() {
        let found = if KNOWN_TYPES.contains(&ty) {
            format!("type `{ty}`")
        } else {
            "an unrecognised type".to_owned()
        };
        return Err(CredentialError::WrongType {
            file: file.to_owned(),
            kind,
            expected: kind.envelope_type(),
            found,
        });
    }
    let raw = decode_hex(cbor_hex).map_err(|problem| CredentialError::NotHex {
        file: file.to_owned(),
        kind,
        problem,
    })?;
    let item = decode_single_cbor(&raw).map_err(|problem| CredentialError::NotCbor {
        file: file.to_owned(),
        kind,
        problem,
    })?;
    match kind {
        CredentialKind::KesSigningKey => {
            let key = ctx.bytes_of_len(&item, KES_SKEY_BYTES, "the KES signing key")?;
            let vkey = cardano::kes_vkey_of_signing_key(key)
                .map_err(|e| ctx.wrong_shape("a Sum6KES signing key", e.to_string()))?;
            Ok(Decoded::Kes(vkey))
        }
        CredentialKind::VrfSigningKey => {
            let key = ctx.bytes_of_len(&item, VRF_SKEY_BYTES, "the VRF signing key")?;
            cardano::vrf_vkey_of_signing_key(key).map_err(|_| CredentialError::VrfKeyInconsistent {
                file: file.to_owned(),
            })?;
            Ok(Decoded::Vrf)
        }
        CredentialKind::OperationalCertificate => {
            ctx.op_cert(&item)?;
            let cert = OpCert::from_cbor(&raw)
                .map_err(|e| ctx.wrong_shape("an operational certificate", e.to_string()))?;
            if !cert.cold_signature_verifies() {
                return Err(CredentialError::ColdSignatureInvalid {
                    file: file.to_owned(),
                });
            }
            Ok(Decoded::OpCert(cert))
        }
    }
}

/// Checks the three files together: each as its kind ([`validate_envelope`]), then that the
/// certificate is for the KES key, then (with `clock`) that its KES period is current.
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

/// Decodes lower- or upper-case hex. Problems mention positions, never characters.
fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd length {}", digits.len()));
    }
    let nibble = |i: usize| -> Result<u8, String> {
        match digits[i] {
            c @ b'0'..=b'9' => Ok(c - b'0'),
            c @ b'a'..=b'f' => Ok(c - b'a' + 10),
            c @ b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("non-hex character at position {i}")),
        }
    };
    (0..digits.len() / 2)
        .map(|i| Ok(nibble(2 * i)? << 4 | nibble(2 * i + 1)?))
        .collect()
}

/// Decodes exactly one CBOR item, rejecting trailing bytes. Problems mention offsets only.
fn decode_single_cbor(raw: &[u8]) -> Result<Value, String> {
    if raw.is_empty() {
        return Err("empty".to_owned());
    }
    let mut rest = raw;
    let value: Value = ciborium::from_reader(&mut rest).map_err(|e| match e {
        ciborium::de::Error::Io(_) => "truncated".to_owned(),
        ciborium::de::Error::Syntax(offset) => format!("syntax error at byte {offset}"),
        ciborium::de::Error::Semantic(Some(offset), _) => format!("invalid item at byte {offset}"),
        ciborium::de::Error::Semantic(None, _) => "invalid item".to_owned(),
        ciborium::de::Error::RecursionLimitExceeded => "nested too deeply".to_owned(),
    })?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes after the item", rest.len()));
    }
    Ok(value)
}

/// Describes a CBOR item by major type and size only.
fn shape(v: &Value) -> String {
    match v {
        Value::Bytes(b) => format!("a byte string of {} bytes", b.len()),
        Value::Integer(_) => "an integer".to_owned(),
        Value::Text(t) => format!("a text string of {} bytes", t.len()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Map(m) => format!("a map of {} entries", m.len()),
        Value::Tag(..) => "a tagged item".to_owned(),
        Value::Float(_) => "a float".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Null => "null".to_owned(),
        _ => "an unsupported item".to_owned(),
    }
}

/// The file being validated, for building errors.
struct Ctx<'a> {
    file: &'a str,
    kind: CredentialKind,
}

impl Ctx<'_> {
    fn not_json(&self, line: usize, column: usize) -> CredentialError {
        CredentialError::NotJson {
            file: self.file.to_owned(),
            kind: self.kind,
            line,
            column,
        }
    }

    fn wrong_shape(&self, expected: impl Into<String>, got: String) -> CredentialError {
        CredentialError::WrongShape {
            file: self.file.to_owned(),
            kind: self.kind,
            expected: expected.into(),
            got,
        }
    }

    fn bytes_of_len<'v>(&self, v: &'v Value, len: usize, what: &str) -> Result<&'v [u8], CredentialError> {
        match v {
            Value::Bytes(b) if b.len() == len => Ok(b),
            other => Err(self.wrong_shape(format!("{what} as a byte string of {len} bytes"), shape(other))),
        }
    }

    fn uint(&self, v: &Value, what: &str) -> Result<u64, CredentialError> {
        match v {
            Value::Integer(i) => u64::try_from(*i).map_err(|_| {
                self.wrong_shape(
                    format!("{what} as an unsigned integer"),
                    "a negative integer".to_owned(),
                )
            }),
            other => Err(self.wrong_shape(format!("{what} as an unsigned integer"), shape(other))),
        }
    }

    fn op_cert(&self, v: &Value) -> Result<(), CredentialError> {
        const TOP: &str = "an array [certificate body, cold verification key]";
        const BODY: &str = "a body array [kes_vkey, counter, kes_period, sigma]";
        let Value::Array(top) = v else {
            return Err(self.wrong_shape(TOP, shape(v)));
        };
        let [body, cold_vkey] = top.as_slice() else {
            return Err(self.wrong_shape(TOP, shape(v)));
        };
        let Value::Array(fields) = body else {
            return Err(self.wrong_shape(BODY, shape(body)));
        };
        let [kes_vkey, counter, kes_period, sigma] = fields.as_slice() else {
            return Err(self.wrong_shape(BODY, shape(body)));
        };
        self.bytes_of_len(kes_vkey, VKEY_BYTES, "the KES verification key")?;
        self.uint(counter, "the issue counter")?;
        self.uint(kes_period, "the KES period")?;
        self.bytes_of_len(sigma, SIGMA_BYTES, "the cold key signature")?;
        self.bytes_of_len(cold_vkey, VKEY_BYTES, "the cold verification key")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cardano::test_keys;

    fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).expect("CBOR encoding to a Vec cannot fail");
        out
    }

    fn envelope(ty: &str, cbor_hex: &str) -> Vec<u8> {
        serde_json::json!({"type": ty, "description": "test", "cborHex": cbor_hex})
            .to_string()
            .into_bytes()
    }

    /// A recognisable, distinctive byte pattern so leaks can be searched for.
    fn secret(len: usize) -> Vec<u8> {
        (0..len).map(|i| (0xa7u8).wrapping_add((i * 13) as u8)).collect()
    }

    fn kes_hex() -> String {
        to_hex(&cbor(&Value::Bytes(test_keys::kes_key(7).0)))
    }

    fn vrf_hex() -> String {
        to_hex(&cbor(&Value::Bytes(test_keys::vrf_key(9))))
    }

    /// A certificate for the KES key of [`kes_hex`], signed by a cold key.
    fn op_cert_hex(counter: u64, period: u64) -> String {
        to_hex(&test_keys::op_cert(&test_keys::kes_key(7).1, counter, period, 3))
    }

    #[test]
    fn generated_kes_key_has_the_cardano_cli_prefix() {
        assert!(kes_hex().starts_with("590260"));
        assert!(vrf_hex().starts_with("5840"));
    }

    #[test]
    fn valid_envelopes_are_accepted_and_the_op_cert_is_read() {
        let kes = envelope("KesSigningKey_ed25519_kes_2^6", &kes_hex());
        let vrf = envelope("VrfSigningKey_PraosVRF", &vrf_hex());
        let cert = envelope("NodeOperationalCertificate", &op_cert_hex(7, 412));
        let set = validate_set(
            CredentialFile {
                label: "/secrets/kes.skey",
                bytes: &kes,
            },
            CredentialFile {
                label: "/secrets/vrf.skey",
                bytes: &vrf,
            },
            CredentialFile {
                label: "/secrets/node.cert",
                bytes: &cert,
            },
            None,
        )
        .expect("valid set");
        assert_eq!(
            set.op_cert,
            OpCertInfo {
                counter: 7,
                kes_period: 412
            }
        );
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let kes = envelope("KesSigningKey_ed25519_kes_2^6", &kes_hex().to_uppercase());
        assert_eq!(
            validate_envelope(&kes, CredentialKind::KesSigningKey, "k"),
            Ok(None)
        );
    }

    /// One row per kind of corruption: (kind, file bytes, expected error kind).
    fn corruptions() -> Vec<(CredentialKind, Vec<u8>, &'static str, String)> {
        use CredentialKind::*;
        let kes = kes_hex();
        let truncated_kes = kes[..kes.len() - 2].to_owned();
        let short_kes = to_hex(&cbor(&Value::Bytes(secret(600))));
        let bad_cert_body = to_hex(&cbor(&Value::Array(vec![
            Value::Array(vec![Value::Bytes(secret(32)), Value::Integer(1.into())]),
            Value::Bytes(secret(32)),
        ])));
        let negative_counter = to_hex(&cbor(&Value::Array(vec![
            Value::Array(vec![
                Value::Bytes(secret(32)),
                Value::Integer((-1).into()),
                Value::Integer(3.into()),
                Value::Bytes(secret(64)),
            ]),
            Value::Bytes(secret(32)),
        ])));
        let short_sigma = to_hex(&cbor(&Value::Array(vec![
            Value::Array(vec![
                Value::Bytes(secret(32)),
                Value::Integer(1.into()),
                Value::Integer(3.into()),
                Value::Bytes(secret(63)),
            ]),
            Value::Bytes(secret(32)),
        ])));
        let kes_ty = "KesSigningKey_ed25519_kes_2^6";
        vec![
            (KesSigningKey, b"not json".to_vec(), "not_json", kes.clone()),
            (
                KesSigningKey,
                format!("[\"{kes}\"]").into_bytes(),
                "not_json",
                kes.clone(),
            ),
            (
                KesSigningKey,
                vec![b' '; MAX_ENVELOPE_BYTES + 1],
                "too_large",
                kes.clone(),
            ),
            (
                KesSigningKey,
                serde_json::json!({"type": kes_ty, "cborHex": kes})
                    .to_string()
                    .into_bytes(),
                "missing_field",
                kes.clone(),
            ),
            (
                KesSigningKey,
                envelope("VrfSigningKey_PraosVRF", &kes),
                "wrong_type",
                kes.clone(),
            ),
            (KesSigningKey, envelope(&kes, &kes), "wrong_type", kes.clone()),
            (
                KesSigningKey,
                envelope(kes_ty, &format!("{kes}0")),
                "not_hex",
                kes.clone(),
            ),
            (
                KesSigningKey,
                envelope(kes_ty, &format!("zz{kes}")),
                "not_hex",
                kes.clone(),
            ),
            (
                KesSigningKey,
                envelope(kes_ty, &truncated_kes),
                "not_cbor",
                kes.clone(),
            ),
            (
                KesSigningKey,
                envelope(kes_ty, &format!("{kes}00")),
                "not_cbor",
                kes.clone(),
            ),
            (KesSigningKey, envelope(kes_ty, ""), "not_cbor", kes.clone()),
            (
                KesSigningKey,
                envelope(kes_ty, &short_kes),
                "wrong_shape",
                short_kes.clone(),
            ),
            (
                VrfSigningKey,
                envelope("VrfSigningKey_PraosVRF", &kes),
                "wrong_shape",
                kes.clone(),
            ),
            (
                OperationalCertificate,
                envelope("NodeOperationalCertificate", &kes),
                "wrong_shape",
                kes.clone(),
            ),
            (
                OperationalCertificate,
                envelope("NodeOperationalCertificate", &bad_cert_body),
                "wrong_shape",
                bad_cert_body.clone(),
            ),
            (
                OperationalCertificate,
                envelope("NodeOperationalCertificate", &negative_counter),
                "wrong_shape",
                negative_counter.clone(),
            ),
            (
                OperationalCertificate,
                envelope("NodeOperationalCertificate", &short_sigma),
                "wrong_shape",
                short_sigma.clone(),
            ),
        ]
    }

    #[test]
    fn each_corruption_is_rejected_with_the_file_named_and_no_content() {
        for (i, (kind, bytes, expected_kind, content_hex)) in corruptions().into_iter().enumerate() {
            let label = format!("/secrets/file-{i}");
            let err = validate_envelope(&bytes, kind, &label).expect_err(&format!("row {i} must fail"));
            assert_eq!(err.kind(), expected_kind, "row {i}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(&label), "row {i}: {msg}");
            let debug = format!("{err:?}");
            // No content: not the cborHex, not even its first bytes after the CBOR header.
            for text in [&msg, &debug] {
                assert!(
                    !text.contains(&content_hex[6..22]),
                    "row {i} leaks content: {text}"
                );
                assert!(
                    !text.to_lowercase().contains(&to_hex(&secret(4))),
                    "row {i} leaks: {text}"
                );
            }
        }
    }

    #[test]
    fn a_set_reports_every_bad_file() {
        let good_vrf = envelope("VrfSigningKey_PraosVRF", &vrf_hex());
        let err = validate_set(
            CredentialFile {
                label: "/s/kes",
                bytes: b"{}",
            },
            CredentialFile {
                label: "/s/vrf",
                bytes: &good_vrf,
            },
            CredentialFile {
                label: "/s/cert",
                bytes: b"",
            },
            None,
        )
        .expect_err("two bad files");
        assert_eq!(err.0.len(), 2);
        let msg = err.to_string();
        assert!(
            msg.contains("/s/kes") && msg.contains("/s/cert") && !msg.contains("/s/vrf"),
            "{msg}"
        );
    }

    #[test]
    fn the_debug_of_a_credential_file_redacts_its_bytes() {
        let bytes = envelope("VrfSigningKey_PraosVRF", &vrf_hex());
        let debug = format!(
            "{:?}",
            CredentialFile {
                label: "/s/vrf",
                bytes: &bytes
            }
        );
        assert!(
            debug.contains("redacted") && !debug.contains("cborHex"),
            "{debug}"
        );
    }

    fn files<'a>(kes: &'a [u8], vrf: &'a [u8], cert: &'a [u8]) -> [CredentialFile<'a>; 3] {
        [
            CredentialFile {
                label: "/secrets/kes.skey",
                bytes: kes,
            },
            CredentialFile {
                label: "/secrets/vrf.skey",
                bytes: vrf,
            },
            CredentialFile {
                label: "/secrets/node.cert",
                bytes: cert,
            },
        ]
    }

    #[test]
    fn a_certificate_for_another_kes_key_is_refused_naming_both_files() {
        let kes = envelope("KesSigningKey_ed25519_kes_2^6", &kes_hex());
        let vrf = envelope("VrfSigningKey_PraosVRF", &vrf_hex());
        let other = test_keys::kes_key(8).1;
        let cert = envelope(
            "NodeOperationalCertificate",
            &to_hex(&test_keys::op_cert(&other, 2, 1577, 3)),
        );
        let [k, v, c] = files(&kes, &vrf, &cert);
        let check = check_set(k, v, c, None);
        assert_eq!(check.op_cert.map(|o| o.counter), Some(2));
        let [err] = check.errors.as_slice() else {
            panic!("{:?}", check.errors)
        };
        assert_eq!(err.kind(), "kes_key_mismatch");
        assert_eq!(err.credential(), CredentialKind::OperationalCertificate);
        let msg = err.to_string();
        assert!(
            msg.starts_with("/secrets/node.cert: ") && msg.contains("/secrets/kes.skey"),
            "{msg}"
        );
    }

    #[test]
    fn an_expired_or_future_certificate_is_refused_but_its_figures_are_reported() {
        let schedule = KesSchedule::mainnet();
        let now: Timestamp = "2026-11-30T00:00:00Z".parse().expect("ts");
        let kes = envelope("KesSigningKey_ed25519_kes_2^6", &kes_hex());
        let vrf = envelope("VrfSigningKey_PraosVRF", &vrf_hex());
        let clock = Some(KesClock {
            schedule: &schedule,
            now,
        });
        // Current period 1577: a certificate from 1515 ended at 1577, one from 1516 has 1 left.
        let rows = [
            (1515, Some("kes_expired"), 0),
            (1516, None, 1),
            (1577, None, 62),
            (1578, Some("kes_not_yet_valid"), 63),
        ];
        for (start, refused, remaining) in rows {
            let cert = envelope("NodeOperationalCertificate", &op_cert_hex(4, start));
            let [k, v, c] = files(&kes, &vrf, &cert);
            let check = check_set(k, v, c, clock);
            let status = check.kes.expect("status");
            assert_eq!(status.current_period, 1577);
            assert_eq!(status.remaining_periods, remaining, "start {start}");
            assert_eq!(check.op_cert.map(|o| o.kes_period), Some(start));
            let kinds: Vec<_> = check.errors.iter().map(CredentialError::kind).collect();
            assert_eq!(kinds, refused.into_iter().collect::<Vec<_>>(), "start {start}");
            if let Some(err) = check.errors.first() {
                let msg = err.to_string();
                assert!(
                    msg.starts_with("/secrets/node.cert: ") && msg.contains("1577"),
                    "{msg}"
                );
            }
        }
        let cert = envelope("NodeOperationalCertificate", &op_cert_hex(4, 1515));
        let [k, v, c] = files(&kes, &vrf, &cert);
        let msg = validate_set(k, v, c, clock).expect_err("expired").to_string();
        assert!(
            msg.contains("expired") && msg.contains("2026-11-29T09:44:51Z"),
            "{msg}"
        );
    }

    #[test]
    fn a_vrf_key_whose_halves_differ_and_a_forged_signature_are_refused() {
        let mut vrf = test_keys::vrf_key(9);
        vrf[63] ^= 1;
        let vrf = envelope("VrfSigningKey_PraosVRF", &to_hex(&cbor(&Value::Bytes(vrf))));
        let err = validate_envelope(&vrf, CredentialKind::VrfSigningKey, "/s/vrf").expect_err("halves");
        assert_eq!(err.kind(), "vrf_key_inconsistent");
        let mut cert = test_keys::op_cert(&test_keys::kes_key(7).1, 1, 2, 3);
        let at = cert.len() - 50;
        cert[at] ^= 4;
        let cert = envelope("NodeOperationalCertificate", &to_hex(&cert));
        let err =
            validate_envelope(&cert, CredentialKind::OperationalCertificate, "/s/cert").expect_err("forged");
        assert_eq!(err.kind(), "cold_signature_invalid");
    }
}
