//! The Cardano side of the forging credentials, understood rather than only well-formed: the
//! operational certificate's fields and cold signature, the verification key a KES signing key
//! gives, the VRF key's halves, and the KES period arithmetic of a network's genesis.
//!
//! Pure: bytes and timestamps in, facts out. Key material never leaves the byte slices it is
//! passed in; the types here hold public keys, counters and periods only, and their `Debug`
//! prints no key bytes.
//!
//! Primitives come from `pallas-crypto` (Blake2b, Ed25519, as Cardano uses them) and CBOR from
//! `pallas-codec` (minicbor); the KES signing key format is cardano-node's (608 bytes for Sum6
//! over Ed25519, no period inside), which pallas' own KES keys are not, so only its public
//! part is read here.

pub mod genesis;
pub mod keys;
pub mod opcert;
pub mod schedule;
pub mod sync;
#[cfg(test)]
pub(crate) mod test_keys;
#[cfg(test)]
mod tests;

pub use genesis::{ByronEra, GenesisError, KesSchedule, KesState, KesStatus};
pub use keys::{KES_SKEY_BYTES, KeyError, VRF_SKEY_BYTES, kes_vkey_of_signing_key, vrf_vkey_of_signing_key};
pub use opcert::{OpCert, OpCertError};
pub use schedule::{LeaderSchedule, LeaderSlot, ScheduleError};
pub use sync::SyncStatus;

/// What is wrong with a file read here (a Shelley genesis, a leader schedule): names the file
/// and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct FileError {
    /// The file label.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}
