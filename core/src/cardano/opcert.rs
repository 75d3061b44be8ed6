//! The operational certificate (`NodeOperationalCertificate`): the CBOR array
//! `[[kes_vkey: bytes 32, counter: uint, kes_period: uint, sigma: bytes 64], cold_vkey: bytes 32]`,
//! where `sigma` is the cold key's Ed25519 signature over
//! `kes_vkey || counter (u64 big-endian) || kes_period (u64 big-endian)`.

use std::fmt;

use pallas_codec::minicbor::{Decoder, data::Type};
use pallas_crypto::{
    hash::Hasher,
    key::ed25519::{PublicKey, Signature},
};

/// A decoded operational certificate. Everything in it is public (it is in every block header).
#[derive(Clone, PartialEq, Eq)]
pub struct OpCert {
    /// The hot KES verification key the certificate delegates to.
    pub kes_vkey: [u8; 32],
    /// The issue counter.
    pub counter: u64,
    /// The KES period the certificate starts at.
    pub kes_period: u64,
    /// The cold key's signature over the three fields above.
    pub sigma: [u8; 64],
    /// The pool's cold verification key.
    pub cold_vkey: [u8; 32],
}

impl fmt::Debug for OpCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpCert")
            .field("counter", &self.counter)
            .field("kes_period", &self.kes_period)
            .finish_non_exhaustive()
    }
}

/// Why a certificate does not decode: a position and what was expected, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpCertError(String);

impl OpCert {
    /// Decodes the certificate from its CBOR (the `cborHex` of the envelope, as bytes).
    pub fn from_cbor(raw: &[u8]) -> Result<Self, OpCertError> {
        let mut d = Decoder::new(raw);
        expect_array(&mut d, 2, "the certificate")?;
        expect_array(&mut d, 4, "the certificate body")?;
        let kes_vkey = fixed_bytes::<32>(&mut d, "the KES verification key")?;
        let counter = uint(&mut d, "the issue counter")?;
        let kes_period = uint(&mut d, "the KES period")?;
        let sigma = fixed_bytes::<64>(&mut d, "the cold key signature")?;
        let cold_vkey = fixed_bytes::<32>(&mut d, "the cold verification key")?;
        if d.position() != raw.len() {
            return Err(OpCertError(format!(
                "{} trailing bytes after the certificate",
                raw.len() - d.position()
            )));
        }
        Ok(Self {
            kes_vkey,
            counter,
            kes_period,
            sigma,
            cold_vkey,
        })
    }

    /// The bytes the cold key signs.
    pub fn signable(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(&self.kes_vkey);
        out[32..40].copy_from_slice(&self.counter.to_be_bytes());
        out[40..].copy_from_slice(&self.kes_period.to_be_bytes());
        out
    }

    /// Whether `sigma` is the cold key's signature over [`Self::signable`].
    pub fn cold_signature_verifies(&self) -> bool {
        PublicKey::from(self.cold_vkey).verify(self.signable(), &Signature::from(self.sigma))
    }

    /// The pool id (Blake2b-224 of the cold verification key), as hex.
    pub fn pool_id_hex(&self) -> String {
        Hasher::<224>::hash(&self.cold_vkey).to_string()
    }
}

fn expect_array(d: &mut Decoder<'_>, len: u64, what: &str) -> Result<(), OpCertError> {
    let at = d.position();
    match d.array() {
        Ok(Some(n)) if n == len => Ok(()),
        Ok(Some(n)) => Err(OpCertError(format!(
            "{what} at byte {at}: an array of {n} items, expected {len}"
        ))),
        Ok(None) => Err(OpCertError(format!(
            "{what} at byte {at}: an indefinite-length array, expected {len} items"
        ))),
        Err(_) => Err(OpCertError(format!(
            "{what} at byte {at}: {}, expected an array",
            type_at(d, at)
        ))),
    }
}

fn fixed_bytes<const N: usize>(d: &mut Decoder<'_>, what: &str) -> Result<[u8; N], OpCertError> {
    let at = d.position();
    match d.bytes() {
        Ok(b) => <[u8; N]>::try_from(b)
            .map_err(|_| OpCertError(format!("{what} at byte {at}: {} bytes, expected {N}", b.len()))),
        Err(_) => Err(OpCertError(format!(
            "{what} at byte {at}: {}, expected a byte string",
            type_at(d, at)
        ))),
    }
}

fn uint(d: &mut Decoder<'_>, what: &str) -> Result<u64, OpCertError> {
    let at = d.position();
    d.u64().map_err(|_| {
        OpCertError(format!(
            "{what} at byte {at}: {}, expected an unsigned integer",
            type_at(d, at)
        ))
    })
}

/// The CBOR type at `at`, by name only.
fn type_at(d: &mut Decoder<'_>, at: usize) -> String {
    d.set_position(at);
    match d.datatype() {
        Ok(Type::Bytes | Type::BytesIndef) => "a byte string".to_owned(),
        Ok(Type::Array | Type::ArrayIndef) => "an array".to_owned(),
        Ok(Type::Map | Type::MapIndef) => "a map".to_owned(),
        Ok(Type::String | Type::StringIndef) => "a text string".to_owned(),
        Ok(Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int) => {
            "a negative or oversized integer".to_owned()
        }
        Ok(Type::U8 | Type::U16 | Type::U32 | Type::U64) => "an unsigned integer".to_owned(),
        Ok(_) => "another CBOR item".to_owned(),
        Err(_) => "the end of the data".to_owned(),
    }
}
