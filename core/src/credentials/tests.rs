//! Valid sets, every corruption, and the checks that need two files or the time.
use super::*;
use crate::cardano::{KesSchedule, test_keys};
use ciborium::Value;
use jiff::Timestamp;

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
