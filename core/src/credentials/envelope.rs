//! One credential file: its text envelope, hex and CBOR decoded and its contents understood
//! ([`validate_envelope`]), with errors that name the file and never its content.

use ciborium::Value;

use super::{
    CredentialError, CredentialKind, KES_SKEY_BYTES, MAX_ENVELOPE_BYTES, OpCertInfo, VRF_SKEY_BYTES,
};
use crate::cardano::{self, OpCert};

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

/// What one envelope holds once understood.
pub(super) enum Decoded {
    /// The KES verification key the signing key gives.
    Kes([u8; 32]),
    Vrf,
    OpCert(OpCert),
}

/// Validates one credential envelope of the given kind, contents included except what needs another
/// file or the time (see [`check_set`](super::check_set)). Returns the operational certificate's
/// facts for [`CredentialKind::OperationalCertificate`], `None` for the keys.
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

pub(super) fn decode(bytes: &[u8], kind: CredentialKind, file: &str) -> Result<Decoded, CredentialError> {
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
