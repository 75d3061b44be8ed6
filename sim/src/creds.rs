//! Test credentials: writes a plausible, fake KES key, VRF key and operational certificate as
//! cardano-cli text envelopes, and checks envelopes the way the node simulator needs.
//!
//! The key bytes are deterministic pseudo-random filler, not real keys: nothing here can sign.
//! Files are written with mode 0600, as the sidecar must write them (docs/architecture.md).
//! Never print the contents of these files.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Writes a valid credential set into `dir` (`kes.skey`, `vrf.skey`, `node.cert`, mode 0600)
/// for an operational certificate with the given issue `counter` and start `kes_period`.
pub fn write_test_credentials(
    dir: &Path,
    counter: u64,
    kes_period: u64,
) -> Result<CredentialPaths, CredentialError> {
    let mut filler = Filler(0x9e37_79b9_7f4a_7c15 ^ counter.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ kes_period);
    let paths = CredentialPaths {
        kes: dir.join("kes.skey"),
        vrf: dir.join("vrf.skey"),
        opcert: dir.join("node.cert"),
    };

    let mut kes = vec![0x59, 0x02, 0x60];
    kes.extend(filler.bytes(608));
    write_envelope(&paths.kes, KES_TYPE, "KES Signing Key", &kes)?;

    let mut vrf = vec![0x58, 0x40];
    vrf.extend(filler.bytes(64));
    write_envelope(&paths.vrf, VRF_TYPE, "VRF Signing Key", &vrf)?;

    // [[kes_vkey bytes32, counter, kes_period, sigma bytes64], cold_vkey bytes32]
    let mut cert = vec![0x82, 0x84, 0x58, 0x20];
    cert.extend(filler.bytes(32));
    cbor_uint(&mut cert, counter);
    cbor_uint(&mut cert, kes_period);
    cert.extend([0x58, 0x40]);
    cert.extend(filler.bytes(64));
    cert.extend([0x58, 0x20]);
    cert.extend(filler.bytes(32));
    write_envelope(&paths.opcert, OPCERT_TYPE, "", &cert)?;

    Ok(paths)
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

fn cbor_uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=23 => out.push(n as u8),
        24..=0xff => out.extend([0x18, n as u8]),
        0x100..=0xffff => {
            out.push(0x19);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x1a);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(0x1b);
            out.extend(n.to_be_bytes());
        }
    }
}

/// xorshift64*: deterministic filler bytes, no randomness needed for fake keys.
struct Filler(u64);

impl Filler {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            out.extend(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(n);
        out
    }
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
        let p = write_test_credentials(dir.path(), 300, 5).expect("write");
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
}
