//! Real key material for tests, deterministic from a seed byte: Sum6KES keys from pallas'
//! `kes` feature, VRF keys and cold-signed operational certificates.

use pallas_codec::minicbor::Encoder;
use pallas_crypto::{
    kes::{summed_kes::Sum6Kes, traits::KesSk},
    key::ed25519::SecretKey,
};

use super::KES_SKEY_BYTES;

/// A KES signing key (cardano-node's 608 bytes) and its verification key.
pub fn kes_key(seed: u8) -> (Vec<u8>, [u8; 32]) {
    let mut buffer = [0u8; KES_SKEY_BYTES + 4];
    let mut seed = [seed; 32];
    let (sk, pk) = Sum6Kes::keygen(&mut buffer, &mut seed);
    let bytes = sk.as_bytes()[..KES_SKEY_BYTES].to_vec();
    (
        bytes,
        pk.as_bytes().try_into().expect("32-byte KES verification key"),
    )
}

/// A VRF signing key: seed and the Ed25519 public key of the seed.
pub fn vrf_key(seed: u8) -> Vec<u8> {
    let pk: [u8; 32] = SecretKey::from([seed; 32]).public_key().into();
    let mut out = vec![seed; 32];
    out.extend(pk);
    out
}

/// The CBOR of an operational certificate for `kes_vkey`, signed by the cold key of `cold_seed`.
pub fn op_cert(kes_vkey: &[u8; 32], counter: u64, kes_period: u64, cold_seed: u8) -> Vec<u8> {
    let cold = SecretKey::from([cold_seed; 32]);
    let cold_vkey: [u8; 32] = cold.public_key().into();
    let mut signable = kes_vkey.to_vec();
    signable.extend(counter.to_be_bytes());
    signable.extend(kes_period.to_be_bytes());
    let sigma: [u8; 64] = cold
        .sign(&signable)
        .as_ref()
        .try_into()
        .expect("64-byte signature");
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.array(2)
        .and_then(|e| e.array(4))
        .and_then(|e| e.bytes(kes_vkey))
        .and_then(|e| e.u64(counter))
        .and_then(|e| e.u64(kes_period))
        .and_then(|e| e.bytes(&sigma))
        .and_then(|e| e.bytes(&cold_vkey))
        .expect("encoding into a Vec cannot fail");
    out
}
