//! The decoder against cardano-cli's golden files and generated keys; the KES arithmetic
//! against mainnet's published figures (genesis files in `core/tests/data`, see its README).

use jiff::Timestamp;
use pallas_crypto::{
    hash::Hasher,
    kes::{summed_kes::Sum6Kes, traits::KesSk},
    key::ed25519::{PublicKey, Signature},
};

use super::{test_keys, *};
use crate::credentials::{CredentialKind, validate_envelope};

const GOLDEN_OPCERT: &str = include_str!("../../tests/data/cli-operational_certificate");
const GOLDEN_KES_VKEY: &str = include_str!("../../tests/data/cli-kes.vkey");
const GOLDEN_KES_LEGACY_SKEY: &str = include_str!("../../tests/data/cli-kes-legacy.skey");
const GOLDEN_VRF_SKEY: &str = include_str!("../../tests/data/cli-vrf.skey");
const GOLDEN_VRF_VKEY: &str = include_str!("../../tests/data/cli-vrf.vkey");
const MAINNET_SHELLEY: &str = include_str!("../../tests/data/mainnet-shelley-genesis.json");
const MAINNET_BYRON: &str = include_str!("../../tests/data/mainnet-byron-genesis-excerpt.json");

/// The bytes inside an envelope's CBOR byte string (or the whole CBOR for the certificate).
fn cbor_of(envelope: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(envelope).expect("envelope JSON");
    let hex = v["cborHex"].as_str().expect("cborHex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Strips a CBOR byte-string header (`58 xx` or `59 xx xx`).
fn byte_string(cbor: &[u8]) -> &[u8] {
    match cbor[0] {
        0x58 => &cbor[2..],
        0x59 => &cbor[3..],
        other => panic!("not a byte string header: {other:#x}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

#[test]
fn the_golden_cardano_cli_operational_certificate_decodes_and_its_signature_is_checked_by_todays_rule() {
    let cert = OpCert::from_cbor(&cbor_of(GOLDEN_OPCERT)).expect("golden opcert");
    assert_eq!(cert.counter, 0);
    assert_eq!(cert.kes_period, 1000);
    assert_eq!(
        hex(&cert.kes_vkey),
        "6f958f84c7622f1494018dc2b1b4bcb591d1acb364487974d851b5968bbff88a"
    );
    assert_eq!(
        hex(&cert.cold_vkey),
        "954e34eaf570563f61696bfb018ca2421d1464bc6ae5177bcde98605ad7da6fe"
    );
    assert_eq!(cert.pool_id_hex().len(), 56);
    // This golden file dates from before mainnet's Shelley: its cold key signed the CBOR
    // `[kes_vkey, counter, kes_period]`. Today's ledger (and this check) signs the raw
    // `kes_vkey || counter BE || period BE`, so a node would refuse this certificate, and so do we.
    let mut old_signable = vec![0x83, 0x58, 0x20];
    old_signable.extend(cert.kes_vkey);
    old_signable.extend([0x00, 0x19, 0x03, 0xe8]);
    let cold = PublicKey::from(cert.cold_vkey);
    assert!(cold.verify(&old_signable, &Signature::from(cert.sigma)));
    assert!(!cert.cold_signature_verifies());
    let err = validate_envelope(
        GOLDEN_OPCERT.as_bytes(),
        CredentialKind::OperationalCertificate,
        "/s/node.cert",
    )
    .expect_err("pre-mainnet signature");
    assert_eq!(err.kind(), "cold_signature_invalid");
    assert!(err.to_string().starts_with("/s/node.cert: "), "{err}");
    // The Debug of a certificate shows its figures only.
    let debug = format!("{cert:?}");
    assert!(debug.contains("1000") && !debug.contains("954e"), "{debug}");
}

#[test]
fn the_golden_kes_verification_key_is_the_hash_of_the_golden_signing_keys_last_64_bytes() {
    let skey = cbor_of(GOLDEN_KES_LEGACY_SKEY);
    let skey = byte_string(&skey);
    let vkey = cbor_of(GOLDEN_KES_VKEY);
    // The golden signing key is in an older, 704-byte layout; its outermost pair is where it is
    // in today's 608-byte keys.
    assert_eq!(skey.len(), 704);
    assert_eq!(
        &Hasher::<256>::hash(&skey[skey.len() - 64..])[..],
        byte_string(&vkey)
    );
    // cardano-node reads 608-byte keys only: the old layout is refused by size, naming it.
    let err = validate_envelope(
        GOLDEN_KES_LEGACY_SKEY.as_bytes(),
        CredentialKind::KesSigningKey,
        "/s/kes.skey",
    )
    .expect_err("legacy layout");
    assert_eq!(err.kind(), "wrong_shape");
    assert!(err.to_string().contains("704 bytes"), "{err}");
    assert_eq!(
        kes_vkey_of_signing_key(skey),
        Err(KeyError::WrongSize {
            expected: 608,
            got: 704
        })
    );
}

#[test]
fn the_golden_vrf_signing_key_gives_the_golden_vrf_verification_key() {
    let skey = cbor_of(GOLDEN_VRF_SKEY);
    let vkey = cbor_of(GOLDEN_VRF_VKEY);
    assert_eq!(
        &vrf_vkey_of_signing_key(byte_string(&skey)).expect("consistent")[..],
        byte_string(&vkey)
    );
    validate_envelope(
        GOLDEN_VRF_SKEY.as_bytes(),
        CredentialKind::VrfSigningKey,
        "golden",
    )
    .expect("valid VRF envelope");
    let mut damaged = byte_string(&skey).to_vec();
    damaged[40] ^= 1;
    assert_eq!(vrf_vkey_of_signing_key(&damaged), Err(KeyError::VrfHalvesDiffer));
}

#[test]
fn a_generated_kes_key_gives_its_verification_key_at_every_evolution() {
    let mut buffer = [0u8; KES_SKEY_BYTES + 4];
    let mut seed = [42u8; 32];
    let (mut sk, pk) = Sum6Kes::keygen(&mut buffer, &mut seed);
    for period in 0..63u32 {
        assert_eq!(sk.get_period(), period);
        let vkey = kes_vkey_of_signing_key(&sk.as_bytes()[..KES_SKEY_BYTES]).expect("608 bytes");
        assert_eq!(&vkey[..], pk.as_bytes(), "period {period}");
        sk.update().expect("evolve");
    }
    let (other, other_vkey) = test_keys::kes_key(43);
    assert_ne!(&other_vkey[..], pk.as_bytes());
    assert_eq!(kes_vkey_of_signing_key(&other).expect("608"), other_vkey);
}

#[test]
fn a_generated_certificate_round_trips_and_a_tampered_one_fails() {
    let (_, vkey) = test_keys::kes_key(5);
    let raw = test_keys::op_cert(&vkey, 17, 1577, 8);
    let cert = OpCert::from_cbor(&raw).expect("decodes");
    assert_eq!((cert.counter, cert.kes_period, cert.kes_vkey), (17, 1577, vkey));
    assert!(cert.cold_signature_verifies());
    let mut tampered = raw.clone();
    let last = tampered.len() - 40; // inside sigma
    tampered[last] ^= 0x80;
    let cert = OpCert::from_cbor(&tampered).expect("still decodes");
    assert!(!cert.cold_signature_verifies());
    let mut trailing = raw;
    trailing.push(0);
    assert!(
        OpCert::from_cbor(&trailing)
            .expect_err("trailing byte")
            .to_string()
            .contains("trailing")
    );
    let err = OpCert::from_cbor(&[0x82, 0x83]).expect_err("short body");
    assert!(err.to_string().contains("3 items"), "{err}");
}

#[test]
fn the_built_in_mainnet_schedule_is_the_one_of_the_published_genesis_files() {
    let from_file = KesSchedule::from_shelley_genesis(
        MAINNET_SHELLEY.as_bytes(),
        "mainnet-shelley-genesis.json",
        ByronEra::epochs(208),
    )
    .expect("mainnet genesis");
    assert_eq!(from_file, KesSchedule::mainnet());
    assert_eq!(from_file.system_start, ts("2017-09-23T21:44:51Z"));
    assert_eq!(
        (
            from_file.slot_millis,
            from_file.slots_per_kes_period,
            from_file.max_kes_evolutions
        ),
        (1000, 129_600, 62)
    );
    // The Byron genesis: same start, 20 s slots, epochs of 10 k = 21 600 slots.
    let byron: serde_json::Value = serde_json::from_str(MAINNET_BYRON).expect("byron excerpt");
    assert_eq!(byron["startTime"], 1_506_203_091);
    assert_eq!(byron["blockVersionData"]["slotDuration"], "20000");
    assert_eq!(byron["protocolConsts"]["k"].as_u64().expect("k") * 10, 21_600);
    assert_eq!(
        from_file.system_start.as_second(),
        byron["startTime"].as_i64().expect("startTime")
    );
}

#[test]
fn mainnet_slots_and_kes_periods_match_the_published_figures() {
    let m = KesSchedule::mainnet();
    // Shelley began at epoch 208, slot 4 492 800, on 2020-07-29T21:44:51Z.
    assert_eq!(m.shelley_start(), ts("2020-07-29T21:44:51Z"));
    assert_eq!(m.slot_at(ts("2020-07-29T21:44:51Z")), 4_492_800);
    assert_eq!(4_492_800 / 21_600, 208);
    assert_eq!(m.slot_at(ts("2020-07-29T21:44:50Z")), 4_492_799);
    assert_eq!(m.slot_start(4_492_800), ts("2020-07-29T21:44:51Z"));
    // Byron slots are 20 s.
    assert_eq!(m.slot_at(ts("2017-09-23T21:45:31Z")), 2);
    assert_eq!(m.slot_start(2), ts("2017-09-23T21:45:31Z"));
    // Since Shelley, slot = POSIX time - 1 591 566 291.
    for t in [
        "2021-03-01T00:00:00Z",
        "2024-07-16T21:44:51Z",
        "2026-11-30T00:00:00Z",
    ] {
        let t = ts(t);
        assert_eq!(m.slot_at(t) as i64, t.as_second() - 1_591_566_291, "{t}");
        assert_eq!(m.slot_start(m.slot_at(t)), t);
    }
    assert_eq!(m.kes_period_at(ts("2020-07-29T21:44:51Z")), 34);
    assert_eq!(m.kes_period_start(1000), ts("2024-07-16T21:44:51Z"));
    assert_eq!(m.kes_period_at(ts("2024-07-16T21:44:50Z")), 999);
    assert_eq!(m.kes_period_at(ts("2026-11-30T00:00:00Z")), 1577);
}

#[test]
fn a_mainnet_certificate_is_valid_for_62_periods_of_36_hours() {
    let m = KesSchedule::mainnet();
    let start = 1000;
    let at = |t: &str| m.status(start, ts(t));
    let first = at("2024-07-16T21:44:51Z");
    assert_eq!(first.state, KesState::Valid);
    assert_eq!(
        (first.current_period, first.remaining_periods, first.end_period),
        (1000, 62, 1062)
    );
    // 62 x 129 600 s = 93 days later.
    assert_eq!(first.expires_at, ts("2024-10-17T21:44:51Z"));
    let last = at("2024-10-17T21:44:50Z");
    assert_eq!(
        (last.state, last.current_period, last.remaining_periods),
        (KesState::Valid, 1061, 1)
    );
    let ended = at("2024-10-17T21:44:51Z");
    assert_eq!((ended.state, ended.remaining_periods), (KesState::Expired, 0));
    let before = at("2024-07-16T21:44:50Z");
    assert_eq!(before.state, KesState::NotYetValid);
}

#[test]
fn preprod_and_preview_slots_follow_their_known_offsets() {
    let pre = KesSchedule::preprod();
    assert_eq!(pre.shelley_start(), ts("2022-06-21T00:00:00Z"));
    assert_eq!(pre.slot_at(ts("2022-06-21T00:00:00Z")), 86_400);
    let t = ts("2025-01-01T00:00:00Z");
    assert_eq!(pre.slot_at(t) as i64, t.as_second() - 1_655_683_200);
    let view = KesSchedule::preview();
    assert_eq!(view.slot_at(t) as i64, t.as_second() - 1_666_656_000);
    assert_eq!(KesSchedule::builtin("preview"), Some(view));
    assert_eq!(KesSchedule::builtin("sanchonet"), None);
    assert_eq!(ByronEra::of_network("sanchonet"), None);
}

#[test]
fn a_custom_genesis_is_read_and_a_bad_one_names_the_file_and_the_field() {
    let g = br#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":0.2,"slotsPerKESPeriod":600,"maxKESEvolutions":10,"epochLength":500}"#;
    let s = KesSchedule::from_shelley_genesis(g, "/cfg/shelley.json", ByronEra::NONE).expect("valid");
    assert_eq!((s.slot_millis, s.slots_per_kes_period), (200, 600));
    // 600 slots of 0.2 s: a KES period is 2 minutes.
    assert_eq!(s.kes_period_at(ts("2024-01-01T00:10:00Z")), 5);
    assert_eq!(
        s.status(1, ts("2024-01-01T00:10:00Z")).expires_at,
        ts("2024-01-01T00:22:00Z")
    );
    for (json, field) in [
        (&br#"{"slotLength":1,"slotsPerKESPeriod":1,"maxKESEvolutions":1}"#[..], "systemStart"),
        (br#"{"systemStart":"yesterday","slotLength":1,"slotsPerKESPeriod":1,"maxKESEvolutions":1}"#, "systemStart"),
        (br#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":0,"slotsPerKESPeriod":1,"maxKESEvolutions":1}"#, "slotLength"),
        (br#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":1,"slotsPerKESPeriod":0,"maxKESEvolutions":1}"#, "slotsPerKESPeriod"),
        (br#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":1,"slotsPerKESPeriod":1,"maxKESEvolutions":65}"#, "maxKESEvolutions"),
        (b"[1]", "JSON"),
    ] {
        let err = KesSchedule::from_shelley_genesis(json, "/cfg/shelley.json", ByronEra::NONE)
            .expect_err(field);
        let msg = err.to_string();
        assert!(msg.starts_with("/cfg/shelley.json: ") && msg.contains(field), "{msg}");
    }
}
