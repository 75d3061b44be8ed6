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
use std::fmt;

use ciborium::Value;

/// Files larger than this are rejected before parsing: a real envelope is under 2 KiB, and the
/// bound keeps a wrong mount (a tarball, a log) from being parsed at all.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Size of a serialised Sum6KES (Ed25519) signing key.
pub const KES_SKEY_BYTES: usize = 608;
/// Size of a serialised Praos VRF signing key (seed + verification key).
pub const VRF_SKEY_BYTES: usize = 64;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
}

/// Validates one credential envelope of the given kind. Returns the operational certificate's
/// facts for [`CredentialKind::OperationalCertificate`], `None` for the keys.
pub fn validate_envelope(
    bytes: &[u8],
    kind: CredentialKind,
    file: &str,
) -> Result<Option<OpCertInfo>, CredentialError> {
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
            ctx.bytes_of_len(&item, KES_SKEY_BYTES, "the KES signing key")?;
            Ok(None)
        }
        CredentialKind::VrfSigningKey => {
            ctx.bytes_of_len(&item, VRF_SKEY_BYTES, "the VRF signing key")?;
            Ok(None)
        }
        CredentialKind::OperationalCertificate => ctx.op_cert(&item).map(Some),
    }
}

/// Validates the three files together and reports every bad one (at most one error per file).
pub fn validate_set(
    kes: CredentialFile<'_>,
    vrf: CredentialFile<'_>,
    op_cert: CredentialFile<'_>,
) -> Result<ValidCredentialSet, CredentialSetError> {
    let mut errors = Vec::new();
    if let Err(e) = validate_envelope(kes.bytes, CredentialKind::KesSigningKey, kes.label) {
        errors.push(e);
    }
    if let Err(e) = validate_envelope(vrf.bytes, CredentialKind::VrfSigningKey, vrf.label) {
        errors.push(e);
    }
    let info = match validate_envelope(
        op_cert.bytes,
        CredentialKind::OperationalCertificate,
        op_cert.label,
    ) {
        Ok(info) => info,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    match info {
        Some(op_cert) if errors.is_empty() => Ok(ValidCredentialSet { op_cert }),
        _ => Err(CredentialSetError(errors)),
    }
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

    fn bytes_of_len(&self, v: &Value, len: usize, what: &str) -> Result<(), CredentialError> {
        match v {
            Value::Bytes(b) if b.len() == len => Ok(()),
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

    fn op_cert(&self, v: &Value) -> Result<OpCertInfo, CredentialError> {
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
        let counter = self.uint(counter, "the issue counter")?;
        let kes_period = self.uint(kes_period, "the KES period")?;
        self.bytes_of_len(sigma, SIGMA_BYTES, "the cold key signature")?;
        self.bytes_of_len(cold_vkey, VKEY_BYTES, "the cold verification key")?;
        Ok(OpCertInfo { counter, kes_period })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        to_hex(&cbor(&Value::Bytes(secret(KES_SKEY_BYTES))))
    }

    fn vrf_hex() -> String {
        to_hex(&cbor(&Value::Bytes(secret(VRF_SKEY_BYTES))))
    }

    fn op_cert_value(counter: u64, period: u64) -> Value {
        Value::Array(vec![
            Value::Array(vec![
                Value::Bytes(secret(32)),
                Value::Integer(counter.into()),
                Value::Integer(period.into()),
                Value::Bytes(secret(64)),
            ]),
            Value::Bytes(secret(32)),
        ])
    }

    fn op_cert_hex(counter: u64, period: u64) -> String {
        to_hex(&cbor(&op_cert_value(counter, period)))
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
}
