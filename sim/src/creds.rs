//! Test credentials: writes a real KES key, VRF key and operational certificate as cardano-cli
//! text envelopes, and checks envelopes the way the node simulator needs.
//!
//! The keys are real and deterministic (seeds derived from the counter): a Sum6KES key in
//! cardano-node's 608-byte layout, a VRF key whose halves agree, and a certificate for that
//! KES key signed by a cold key, so they pass forge-manager's full validation (KES key match,
//! cold signature, KES period current on mainnet). They are test keys of no pool.
//! Files are written with mode 0600, as the sidecar must write them (docs/architecture.md).
//! Never print the contents of these files.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use forge_core::cardano::KesSchedule;
use pallas_codec::minicbor::Encoder;
use pallas_crypto::{hash::Hasher, key::ed25519::SecretKey};
use serde::Deserialize;

/// The envelope `type` of a KES signing key (Praos, sum-KES of depth 6).
pub const KES_TYPE: &str = "KesSigningKey_ed25519_kes_2^6";
/// The envelope `type` of a VRF signing key.
pub const VRF_TYPE: &str = "VrfSigningKey_PraosVRF";
/// The envelope `type` of an operational certificate.
pub const OPCERT_TYPE: &str = "NodeOperationalCertificate";

/// Where [`write_test_credentials`] put the three files (`kes.skey`, `vrf.skey`, `node.cert`).
pub type CredentialPaths = forge_core::credentials::CredentialSet<PathBuf>;

/// Errors writing or checking credential files. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a valid text envelope of the expected type.
    #[error("{path}: invalid text envelope: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the contents).
        why: String,
    },
}

impl CredentialError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// What [`write_credentials`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCredentials {
    /// The certificate's issue counter.
    pub counter: u64,
    /// The certificate's start KES period (absolute).
    pub kes_period: u64,
    /// Seed byte of the KES key the signing key file holds.
    pub kes_seed: u8,
    /// Seed byte of the KES key the certificate is for (differs from `kes_seed`: a mismatch).
    pub certified_kes_seed: u8,
    /// Seed byte of the cold key that signs the certificate.
    pub cold_seed: u8,
}

impl TestCredentials {
    /// A matching set for `counter`, starting at `kes_period`.
    pub fn new(counter: u64, kes_period: u64) -> Self {
        let kes_seed = (counter as u8).wrapping_mul(31).wrapping_add(7);
        Self {
            counter,
            kes_period,
            kes_seed,
            certified_kes_seed: kes_seed,
            cold_seed: 0xc0,
        }
    }
}

/// Mainnet's KES period now (wall clock).
pub fn mainnet_kes_period_now() -> u64 {
    KesSchedule::mainnet().kes_period_at(jiff::Timestamp::now())
}

/// Writes a valid credential set into `dir` (`kes.skey`, `vrf.skey`, `node.cert`, mode 0600)
/// for an operational certificate with the given issue `counter` that started
/// `kes_periods_ago` KES periods before mainnet's current one (0: valid for the next 62
/// periods, 93 days; 62 or more: expired).
pub fn write_test_credentials(
    dir: &Path,
    counter: u64,
    kes_periods_ago: u64,
) -> Result<CredentialPaths, CredentialError> {
    let period = mainnet_kes_period_now().saturating_sub(kes_periods_ago);
    write_credentials(dir, &TestCredentials::new(counter, period))
}

/// A Kubernetes Secret named `name` holding a fresh test set (written into `dir` first, as
/// [`write_test_credentials`] with counter 1, KES period current), one key a file name
/// (`kes.skey`, `vrf.skey`, `node.cert`), the way a StatefulSet mounts forging keys.
pub fn credentials_secret(
    dir: &Path,
    name: &str,
) -> Result<k8s_openapi::api::core::v1::Secret, CredentialError> {
    let paths = write_test_credentials(dir, 1, 0)?;
    let mut data = std::collections::BTreeMap::new();
    for p in paths.all() {
        let bytes = std::fs::read(p).map_err(|source| CredentialError::Io {
            path: p.clone(),
            source,
        })?;
        let file = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        data.insert(file, k8s_openapi::ByteString(bytes));
    }
    Ok(k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    })
}

/// Where a set in `dir` lives: `kes.skey`, `vrf.skey`, `node.cert`.
pub fn credential_paths(dir: &Path) -> CredentialPaths {
    CredentialPaths {
        kes: dir.join("kes.skey"),
        vrf: dir.join("vrf.skey"),
        opcert: dir.join("node.cert"),
    }
}

/// The node simulator's flags naming the set in `dir` (`--kes`, `--vrf`, `--opcert`).
pub fn node_flags(dir: &Path) -> [std::ffi::OsString; 6] {
    let p = credential_paths(dir);
    [
        "--kes".into(),
        p.kes.into(),
        "--vrf".into(),
        p.vrf.into(),
        "--opcert".into(),
        p.opcert.into(),
    ]
}

/// The guard's `--targets` value for the set in `dir`: its three files, comma-separated.
pub fn guard_targets(dir: &Path) -> String {
    let p = credential_paths(dir);
    format!("{},{},{}", p.kes.display(), p.vrf.display(), p.opcert.display())
}

/// Writes the set `creds` describes into `dir` (`kes.skey`, `vrf.skey`, `node.cert`, mode 0600).
pub fn write_credentials(dir: &Path, creds: &TestCredentials) -> Result<CredentialPaths, CredentialError> {
    let paths = credential_paths(dir);

    let (kes_skey, _) = kes_key(creds.kes_seed);
    let mut kes = vec![0x59, 0x02, 0x60];
    kes.extend(kes_skey);
    write_envelope(&paths.kes, KES_TYPE, "KES Signing Key", &kes)?;

    let vrf_seed = [creds.kes_seed ^ 0x5a; 32];
    let vrf_vkey: [u8; 32] = SecretKey::from(vrf_seed).public_key().into();
    let mut vrf = vec![0x58, 0x40];
    vrf.extend(vrf_seed);
    vrf.extend(vrf_vkey);
    write_envelope(&paths.vrf, VRF_TYPE, "VRF Signing Key", &vrf)?;

    let (_, kes_vkey) = kes_key(creds.certified_kes_seed);
    let cert = op_cert(&kes_vkey, creds.counter, creds.kes_period, creds.cold_seed);
    write_envelope(&paths.opcert, OPCERT_TYPE, "", &cert)?;

    Ok(paths)
}

/// A Sum6KES signing key in cardano-node's 608-byte layout, at period 0, and its verification
/// key, from a seed byte.
fn kes_key(seed: u8) -> (Vec<u8>, [u8; 32]) {
    sum_kes_keygen(6, [seed; 32])
}

/// Sum-composition KES key generation over Ed25519 (as cardano-base and pallas do it): depth 0
/// is an Ed25519 seed; depth `d` splits its seed into `r0 = Blake2b-256(1 || seed)` and
/// `r1 = Blake2b-256(2 || seed)`, and is `sk(d-1, r0) || r1 || vk0 || vk1` with verification key
/// `Blake2b-256(vk0 || vk1)`. Written out here so the simulator needs no KES signing code (pallas'
/// `kes` feature brings ed25519-dalek and serde_with into every build); a test checks it
/// against pallas' `Sum6Kes`.
fn sum_kes_keygen(depth: u32, seed: [u8; 32]) -> (Vec<u8>, [u8; 32]) {
    if depth == 0 {
        let vkey: [u8; 32] = SecretKey::from(seed).public_key().into();
        return (seed.to_vec(), vkey);
    }
    let half = |tag: u8| {
        let mut h = Hasher::<256>::new();
        h.input(&[tag]);
        h.input(&seed);
        *h.finalize()
    };
    let (r0, r1) = (half(1), half(2));
    let (mut skey, vk0) = sum_kes_keygen(depth - 1, r0);
    let (_, vk1) = sum_kes_keygen(depth - 1, r1);
    skey.extend(r1);
    skey.extend(vk0);
    skey.extend(vk1);
    let mut h = Hasher::<256>::new();
    h.input(&vk0);
    h.input(&vk1);
    (skey, *h.finalize())
}

/// `[[kes_vkey, counter, kes_period, sigma], cold_vkey]`, `sigma` the cold key's signature over
/// `kes_vkey || counter BE || kes_period BE`.
fn op_cert(kes_vkey: &[u8; 32], counter: u64, kes_period: u64, cold_seed: u8) -> Vec<u8> {
    let cold = SecretKey::from([cold_seed; 32]);
    let cold_vkey: [u8; 32] = cold.public_key().into();
    let mut signable = kes_vkey.to_vec();
    signable.extend(counter.to_be_bytes());
    signable.extend(kes_period.to_be_bytes());
    let sigma = cold.sign(&signable);
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail.
    let _ = Encoder::new(&mut out)
        .array(2)
        .and_then(|e| e.array(4))
        .and_then(|e| e.bytes(kes_vkey))
        .and_then(|e| e.u64(counter))
        .and_then(|e| e.u64(kes_period))
        .and_then(|e| e.bytes(sigma.as_ref()))
        .and_then(|e| e.bytes(&cold_vkey));
    out
}

/// A cardano-cli text envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    description: String,
    #[serde(rename = "cborHex")]
    cbor_hex: String,
}

/// Checks that `path` holds a text envelope (a JSON object with string `type`, `description` and
/// a non-empty, even-length hex `cborHex`) whose `type` starts with `type_prefix`.
pub fn check_envelope(path: &Path, type_prefix: &str) -> Result<(), CredentialError> {
    let text = std::fs::read(path).map_err(|source| CredentialError::Io {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |why: String| CredentialError::Invalid {
        path: path.to_owned(),
        why,
    };
    // serde_json's messages may quote input ("invalid type: string ..."): report only the
    // category and the position, never the contents.
    let env: Envelope = serde_json::from_slice(&text).map_err(|e| {
        invalid(format!(
            "not a JSON text envelope ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let _ = env.description;
    if !env.kind.starts_with(type_prefix) {
        return Err(invalid(format!("type {:?} is not a {type_prefix}", env.kind)));
    }
    let hex = env.cbor_hex.as_bytes();
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid(
            "cborHex is not a non-empty even-length hex string".into(),
        ));
    }
    Ok(())
}

fn write_envelope(path: &Path, kind: &str, description: &str, cbor: &[u8]) -> Result<(), CredentialError> {
    let hex: String = cbor.iter().map(|b| format!("{b:02x}")).collect();
    let body = serde_json::json!({"type": kind, "description": description, "cborHex": hex});
    let text = serde_json::to_string_pretty(&body).unwrap_or_default() + "\n";
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    // An existing file keeps its old mode through open(); set it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor_of(path: &Path) -> Vec<u8> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
        let hex = v["cborHex"].as_str().expect("cborHex");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn written_credentials_are_valid_envelopes_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_test_credentials(dir.path(), 3, 400).expect("write");
        check_envelope(&p.kes, "KesSigningKey").expect("kes");
        check_envelope(&p.vrf, "VrfSigningKey").expect("vrf");
        check_envelope(&p.opcert, OPCERT_TYPE).expect("opcert");
        for f in p.all() {
            let mode = std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }

    #[test]
    fn the_cbor_has_the_documented_shapes_and_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_credentials(dir.path(), &TestCredentials::new(300, 5)).expect("write");
        let kes = cbor_of(&p.kes);
        assert_eq!(&kes[..3], &[0x59, 0x02, 0x60]);
        assert_eq!(kes.len(), 3 + 608);
        let vrf = cbor_of(&p.vrf);
        assert_eq!(&vrf[..2], &[0x58, 0x40]);
        assert_eq!(vrf.len(), 2 + 64);
        let cert = cbor_of(&p.opcert);
        assert_eq!(&cert[..4], &[0x82, 0x84, 0x58, 0x20]);
        // counter 300 = 0x19 0x012c, kes period 5.
        assert_eq!(&cert[36..40], &[0x19, 0x01, 0x2c, 0x05]);
        assert_eq!(cert.len(), 4 + 32 + 3 + 1 + 2 + 64 + 2 + 32);
    }

    #[test]
    fn a_wrong_type_or_bad_hex_is_invalid_and_the_message_holds_no_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_test_credentials(dir.path(), 0, 0).expect("write");
        let err = check_envelope(&p.kes, "VrfSigningKey").expect_err("wrong type");
        assert_eq!(err.kind(), "invalid");
        std::fs::write(
            &p.vrf,
            r#"{"type":"VrfSigningKey_PraosVRF","description":"","cborHex":"5840zz"}"#,
        )
        .expect("write");
        let err = check_envelope(&p.vrf, "VrfSigningKey").expect_err("bad hex");
        assert!(!err.to_string().contains("5840zz"), "{err}");
        std::fs::write(&p.opcert, "garbage secret").expect("write");
        let err = check_envelope(&p.opcert, OPCERT_TYPE).expect_err("not json");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn rewriting_tightens_the_mode_of_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_test_credentials(dir.path(), 0, 0).expect("write");
        std::fs::set_permissions(&p.vrf, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_test_credentials(dir.path(), 1, 0).expect("rewrite");
        assert_eq!(
            std::fs::metadata(&p.vrf).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }

    fn check(p: &CredentialPaths) -> forge_core::credentials::SetCheck {
        use forge_core::credentials::{CredentialFile, KesClock, check_set};
        let bytes = p.all().map(|f| std::fs::read(f).expect("read"));
        let labels = p.all().map(|f| f.display().to_string());
        let schedule = KesSchedule::mainnet();
        check_set(
            CredentialFile {
                label: &labels[0],
                bytes: &bytes[0],
            },
            CredentialFile {
                label: &labels[1],
                bytes: &bytes[1],
            },
            CredentialFile {
                label: &labels[2],
                bytes: &bytes[2],
            },
            Some(KesClock {
                schedule: &schedule,
                now: jiff::Timestamp::now(),
            }),
        )
    }

    #[test]
    fn written_credentials_pass_forge_managers_full_validation_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_test_credentials(dir.path(), 1, 0).expect("write");
        let c = check(&p);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.kes.expect("status").remaining_periods, 62);
        let p = write_test_credentials(dir.path(), 2, 62).expect("write");
        let kinds: Vec<_> = check(&p).errors.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, ["kes_expired"]);
        let mut mismatched = TestCredentials::new(3, mainnet_kes_period_now());
        mismatched.certified_kes_seed ^= 1;
        let p = write_credentials(dir.path(), &mismatched).expect("write");
        let kinds: Vec<_> = check(&p).errors.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, ["kes_key_mismatch"]);
    }

    #[test]
    fn the_kes_keygen_is_pallas_sum6kes() {
        use pallas_crypto::kes::{summed_kes::Sum6Kes, traits::KesSk};
        for seed in [0u8, 7, 0xc0, 0xff] {
            let mut buffer = [0u8; 612];
            let mut pallas_seed = [seed; 32];
            let (sk, pk) = Sum6Kes::keygen(&mut buffer, &mut pallas_seed);
            let (skey, vkey) = kes_key(seed);
            assert_eq!(skey.len(), 608);
            assert_eq!(&skey[..], &sk.as_bytes()[..608], "seed {seed}");
            assert_eq!(&vkey[..], pk.as_bytes(), "seed {seed}");
        }
    }
}
