//! The KES and VRF signing keys, as the raw bytes of their text envelope's CBOR byte string.
//!
//! - KES (`KesSigningKey_ed25519_kes_2^6`): Sum6KES over Ed25519 in cardano-node's layout. A
//!   sum-composition key of depth `d` is `sk(d-1) || seed(32) || vk0(32) || vk1(32)` and its
//!   verification key is `Blake2b-256(vk0 || vk1)`, so the outermost pair is the key's last 64
//!   bytes and evolving the key never changes them. Depth 0 is a 32-byte Ed25519 seed:
//!   32 + 6 x 96 = 608 bytes.
//! - VRF (`VrfSigningKey_PraosVRF`): `seed(32) || vk(32)`, the libsodium (IETF draft 03) layout,
//!   where `vk` is the Ed25519 public key of `seed`.

use pallas_crypto::{hash::Hasher, key::ed25519::SecretKey};

/// Size of a serialised Sum6KES (Ed25519) signing key.
pub const KES_SKEY_BYTES: usize = 608;
/// Size of a serialised Praos VRF signing key (seed + verification key).
pub const VRF_SKEY_BYTES: usize = 64;

/// What is wrong with a key's bytes. Never carries any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not the expected size.
    #[error("{got} bytes, expected {expected}")]
    WrongSize {
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// The VRF key's verification half is not the one its seed gives.
    #[error("its verification key half is not the one its seed gives")]
    VrfHalvesDiffer,
}

/// The KES verification key of a Sum6KES signing key (at any evolution).
pub fn kes_vkey_of_signing_key(skey: &[u8]) -> Result<[u8; 32], KeyError> {
    if skey.len() != KES_SKEY_BYTES {
        return Err(KeyError::WrongSize {
            expected: KES_SKEY_BYTES,
            got: skey.len(),
        });
    }
    Ok(*Hasher::<256>::hash(&skey[KES_SKEY_BYTES - 64..]))
}

/// The VRF verification key of a VRF signing key, after checking that it is the one the seed
/// gives (a key whose halves differ was not written by cardano-cli, or was damaged).
pub fn vrf_vkey_of_signing_key(skey: &[u8]) -> Result<[u8; 32], KeyError> {
    if skey.len() != VRF_SKEY_BYTES {
        return Err(KeyError::WrongSize {
            expected: VRF_SKEY_BYTES,
            got: skey.len(),
        });
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&skey[..32]);
    let derived: [u8; 32] = SecretKey::from(seed).public_key().into();
    seed.fill(0);
    if derived[..] == skey[32..] {
        Ok(derived)
    } else {
        Err(KeyError::VrfHalvesDiffer)
    }
}
