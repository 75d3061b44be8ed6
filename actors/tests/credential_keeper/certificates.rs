//! The operational certificate against the KES key and the calendar: KES periods measured and a
//! certificate refused once its last period ends (no file change needed), the schedule from
//! Shelley genesis or the known network, a certificate for another KES key refused naming both
//! files, and that refusal published as a Kubernetes Event on the pod.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use forge_actors::{
    credential_keeper::KesReport,
    messages::{Install, StatusFigures},
    testing::eventually,
};
use forge_core::decision::Event;
use prometheus::Registry;

use crate::{Kept, SecretVolume, is_invalid, targets_in};

/// Lines of the exposition that start with `prefix`.
fn metric_lines(registry: &Registry, prefix: &str) -> Vec<String> {
    forge_actors::metrics::encode(registry)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[actix::test]
async fn a_mainnet_certificate_is_measured_and_refused_once_its_kes_period_ends_without_any_file_change() {
    use forge_core::cardano::KesSchedule;
    use forge_sim::creds::{TestCredentials, write_credentials};
    use std::sync::atomic::{AtomicI64, Ordering};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    // Mainnet on 2026-11-30T00:00:00Z is in KES period 1577; a certificate from period 1560
    // (counter 5) ends at period 1622, on 2027-02-04T21:44:51Z (Unix 1801777491).
    volume.publish(|d: &Path| {
        write_credentials(d, &TestCredentials::new(5, 1560)).expect("credentials");
    });
    let now = Arc::new(AtomicI64::new(1_795_996_800 - 86_400));
    let wall = now.clone();
    let registry = Registry::new();
    let (report, sent) = forge_actors::testing::recorder::<StatusFigures>();
    let k = Kept::start_with(
        volume.paths(),
        targets_in(&dir.path().join("node")),
        &registry,
        move |keeper| {
            let wall = wall.clone();
            keeper
                .with_kes_report(report.clone())
                .with_kes_schedule(Some(KesSchedule::mainnet()))
                .with_kes_refresh(Duration::from_millis(50))
                .with_wall_clock(move || {
                    jiff::Timestamp::from_second(wall.load(Ordering::SeqCst)).expect("timestamp")
                })
        },
    );
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;
    // A day earlier it was period 1576; the timer moves the gauges on with the clock.
    assert_eq!(
        metric_lines(&registry, "cardano_kes_current_period"),
        [r#"cardano_kes_current_period{application="",network="",pod="",pool_id=""} 1576"#]
    );
    now.store(1_795_996_800, Ordering::SeqCst); // 2026-11-30T00:00:00Z
    eventually("gauges refreshed", || {
        metric_lines(&registry, "cardano_kes_current_period")
            .iter()
            .any(|l| l.ends_with(" 1577"))
    })
    .await;
    let lines = metric_lines(&registry, "cardano_");
    let kes_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("cardano_kes") || l.starts_with("cardano_opcert"))
        .collect();
    eprintln!("/metrics of a mainnet-shaped opcert (counter 5, KES period 1560) at 2026-11-30T00:00:00Z:");
    for l in &kes_lines {
        eprintln!("{l}");
    }
    let has = |name: &str, value: &str| {
        kes_lines
            .iter()
            .any(|l| l.starts_with(name) && l.ends_with(&format!(" {value}")))
    };
    assert!(has("cardano_kes_current_period", "1577"), "{kes_lines:?}");
    assert!(has("cardano_kes_remaining_periods", "45"), "{kes_lines:?}");
    assert!(
        has("cardano_kes_expiry_timestamp_seconds", "1801777491"),
        "{kes_lines:?}"
    );
    assert!(has("cardano_opcert_counter", "5"), "{kes_lines:?}");
    assert!(has("cardano_opcert_kes_period_start", "1560"), "{kes_lines:?}");
    // The same figures for /status, sent to the Decider when they change: once at 1576, once
    // at 1577 (none for the unchanged refreshes between).
    let kes_sent = || -> Vec<KesReport> {
        sent.lock()
            .expect("lock")
            .iter()
            .map(|f| match f {
                StatusFigures::Kes(r) => *r,
                other => panic!("the CredentialKeeper sent {other:?}"),
            })
            .collect()
    };
    eventually("the 1577 figures sent", || {
        kes_sent()
            .last()
            .is_some_and(|r| r.kes.is_some_and(|k| k.current_period == 1577))
    })
    .await;
    let periods: Vec<_> = kes_sent()
        .iter()
        .map(|r| r.kes.map(|k| k.current_period))
        .collect();
    assert_eq!(periods, [Some(1576), Some(1577)]);
    let status = serde_json::to_value(kes_sent()[1]).expect("json");
    eprintln!("/status KES report: {status}");
    assert_eq!(status["op_cert"]["counter"], 5);
    assert_eq!(status["kes"]["current_period"], 1577);
    assert_eq!(status["kes"]["remaining_periods"], 45);
    assert_eq!(status["kes"]["expires_at"], "2027-02-04T21:44:51Z");
    assert_eq!(status["kes"]["state"], "valid");

    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    let installed = k.target_bytes();
    // One second before the end it is still valid; at the end it is refused, files unchanged.
    now.store(1_801_777_490, Ordering::SeqCst);
    eventually("last period", || {
        metric_lines(&registry, "cardano_kes_remaining_periods")
            .iter()
            .any(|l| l.ends_with(" 1"))
    })
    .await;
    assert!(!k.events().iter().any(is_invalid));
    now.store(1_801_777_491, Ordering::SeqCst);
    eventually("expiry reported", || k.events().iter().any(is_invalid)).await;
    let why = k
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::CredentialsInvalid { why } => Some(why),
            _ => None,
        })
        .expect("why");
    assert!(
        why.contains("node.cert") && why.contains("expired") && why.contains("1622"),
        "{why}"
    );
    assert_eq!(k.target_bytes(), installed, "the installed set is not touched");
    assert_eq!(
        k.metrics
            .credential_validation_failures
            .with_label_values(&["opcert", "kes_expired"])
            .get(),
        1
    );
    assert!(
        metric_lines(&registry, "cardano_kes_remaining_periods")
            .iter()
            .any(|l| l.ends_with(" 0"))
    );
    k.install_refused().await;
    assert_eq!(k.target_bytes(), installed);
}

#[test]
fn the_kes_schedule_comes_from_shelley_genesis_or_the_known_network() {
    use forge_actors::credential_keeper::kes_schedule;
    use forge_core::{cardano::KesSchedule, config::NetworkSettings};
    let net = |name: &str, genesis: Option<PathBuf>| NetworkSettings {
        name: name.into(),
        magic: 1,
        shelley_genesis: genesis,
    };
    assert_eq!(
        kes_schedule(&net("mainnet", None)),
        Ok(Some(KesSchedule::mainnet()))
    );
    assert_eq!(kes_schedule(&net("sanchonet", None)), Ok(None));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("shelley.json");
    std::fs::write(
        &file,
        r#"{"systemStart":"2024-01-01T00:00:00Z","slotLength":1,"slotsPerKESPeriod":3600,"maxKESEvolutions":60}"#,
    )
    .expect("write");
    let s = kes_schedule(&net("devnet", Some(file.clone())))
        .expect("valid")
        .expect("schedule");
    assert_eq!(
        (s.slots_per_kes_period, s.max_kes_evolutions, s.byron.slots),
        (3600, 60, 0)
    );
    let missing = dir.path().join("missing.json");
    let err = kes_schedule(&net("devnet", Some(missing))).expect_err("missing");
    assert!(
        err.starts_with("SHELLEY_GENESIS: ") && err.contains("missing.json"),
        "{err}"
    );
}

#[actix::test]
async fn a_certificate_for_another_kes_key_is_refused_naming_both_files() {
    use forge_sim::creds::{TestCredentials, mainnet_kes_period_now, write_credentials};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(|d: &Path| {
        let mut creds = TestCredentials::new(1, mainnet_kes_period_now());
        creds.certified_kes_seed ^= 0x11;
        write_credentials(d, &creds).expect("credentials");
    });
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;
    let Some(Event::CredentialsInvalid { why }) = k.events().into_iter().find(is_invalid) else {
        panic!("no refusal")
    };
    assert!(
        why.contains("node.cert") && why.contains("kes.skey") && why.contains("different KES key"),
        "{why}"
    );
    assert_eq!(
        k.metrics
            .credential_validation_failures
            .with_label_values(&["opcert", "kes_key_mismatch"])
            .get(),
        1
    );
    k.install_refused().await;
    assert_eq!(k.target_bytes(), vec![None, None, None], "nothing installed");
}

#[actix::test]
async fn a_refusal_is_published_as_a_kubernetes_event_on_the_pod() {
    use forge_actors::adapters::{kube::client, kube_events::KubeEvents};
    use forge_sim::{
        apiserver::{ApiServerOptions, start_for_test},
        creds::{TestCredentials, mainnet_kes_period_now, write_credentials},
    };
    use k8s_openapi::api::events::v1::Event as KubeEvent;

    let Some(mut server) = start_for_test(
        "a_refusal_is_published_as_a_kubernetes_event_on_the_pod",
        ApiServerOptions::with_identities(["bp-0"]),
    )
    .await
    else {
        return;
    };
    let kube = client(server.kubeconfig("bp-0"), Duration::from_secs(2))
        .await
        .expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(|d: &Path| {
        let mut creds = TestCredentials::new(1, mainnet_kes_period_now());
        creds.certified_kes_seed ^= 0x22;
        write_credentials(d, &creds).expect("credentials");
    });
    let events = Arc::new(KubeEvents::new(kube.clone(), "default", "bp-0"));
    let k = Kept::start_with(
        volume.paths(),
        targets_in(&dir.path().join("node")),
        &Registry::new(),
        move |keeper| keeper.with_events(events.clone()),
    );
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;
    let api: kube::Api<KubeEvent> = kube::Api::namespaced(kube, "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let event = loop {
        let list = api.list(&Default::default()).await.expect("list events");
        if let Some(e) = list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("CredentialsRefused"))
        {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CredentialsRefused event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let regarding = event.regarding.expect("regarding");
    assert_eq!(
        (regarding.kind.as_deref(), regarding.name.as_deref()),
        (Some("Pod"), Some("bp-0"))
    );
    let note = event.note.expect("note");
    assert!(
        note.contains("node.cert") && note.contains("kes.skey") && note.contains("different KES key"),
        "{note}"
    );
    assert!(!note.contains("cborHex"), "{note}");
    server.stop();
}
