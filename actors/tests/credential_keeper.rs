//! CredentialKeeper on temporary directories laid out like a Kubernetes Secret volume: the
//! source files are symlinks into `..data/`, and an update swaps `..data` atomically (rename of
//! a new symlink), as the kubelet's atomic writer does.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::{
    adapters::fs_credentials::{CredentialKind, CredentialPaths, FsCredentials, FsSources},
    credential_keeper::CredentialKeeper,
    messages::{Fact, Install, Remove, SourcesRotated},
    metrics::{Metrics, PodLabels},
    ports::{CredentialSource, CredentialStore},
    testing::{Logs, eventually, recorder},
};
use forge_core::decision::Event;
use prometheus::Registry;

// === test helpers: `forge_actors::testing::{recorder, Logs, eventually}` ===

const FILES: [&str; 3] = ["kes.skey", "vrf.skey", "node.cert"];

/// A directory laid out like a mounted Kubernetes Secret.
struct SecretVolume {
    root: PathBuf,
    version: u32,
}

impl SecretVolume {
    fn new(root: PathBuf) -> Self {
        std::fs::create_dir_all(&root).expect("mkdir volume");
        Self { root, version: 0 }
    }

    fn paths(&self) -> CredentialPaths {
        CredentialPaths {
            kes: self.root.join(FILES[0]),
            vrf: self.root.join(FILES[1]),
            opcert: self.root.join(FILES[2]),
        }
    }

    /// Publishes a new version written by `write` into its own directory, then swaps `..data`
    /// to it atomically (the user-visible files are symlinks through `..data`).
    fn publish(&mut self, write: impl FnOnce(&Path)) {
        self.version += 1;
        let name = format!("..2026_01_01_00_00_0{}", self.version);
        let dir = self.root.join(&name);
        std::fs::create_dir(&dir).expect("mkdir version");
        write(&dir);
        let tmp = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, self.root.join("..data")).expect("swap ..data");
        for f in FILES {
            let link = self.root.join(f);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{f}"), &link).expect("file symlink");
            }
        }
    }
}

fn valid_set(counter: u64) -> impl FnOnce(&Path) {
    move |dir: &Path| {
        forge_sim::creds::write_test_credentials(dir, counter, 0).expect("credentials");
    }
}

/// A set whose KES key's `cborHex` is cut short (not CBOR); returns the hex it still carries.
fn corrupt_set(counter: u64, kept_hex: Arc<Mutex<String>>) -> impl FnOnce(&Path) {
    move |dir: &Path| {
        let paths = forge_sim::creds::write_test_credentials(dir, counter, 0).expect("credentials");
        let text = std::fs::read_to_string(&paths.kes).expect("read kes");
        let mut envelope: serde_json::Value = serde_json::from_str(&text).expect("json");
        let hex = envelope["cborHex"].as_str().expect("cborHex").to_owned();
        let cut = hex[..hex.len() - 40].to_owned();
        envelope["cborHex"] = serde_json::Value::String(cut.clone());
        std::fs::write(&paths.kes, envelope.to_string()).expect("write kes");
        *kept_hex.lock().expect("lock") = cut;
    }
}

struct Kept {
    keeper: Addr<CredentialKeeper>,
    facts: Arc<Mutex<Vec<Fact>>>,
    rotations: Arc<Mutex<Vec<SourcesRotated>>>,
    metrics: Metrics,
    targets: CredentialPaths,
}

impl Kept {
    fn start(sources: CredentialPaths, targets: CredentialPaths) -> Self {
        Self::start_with(sources, targets, &Registry::new(), |k| k)
    }

    fn start_with(
        sources: CredentialPaths,
        targets: CredentialPaths,
        registry: &Registry,
        configure: impl Fn(CredentialKeeper) -> CredentialKeeper + 'static,
    ) -> Self {
        let (decider, facts) = recorder::<Fact>();
        let (rotated, rotations) = recorder::<SourcesRotated>();
        let metrics = Metrics::register(registry, &PodLabels::default(), "test").expect("metrics");
        let m = metrics.clone();
        let t: Arc<dyn CredentialStore> = Arc::new(FsCredentials::new(targets.clone()));
        let sources: Arc<dyn CredentialSource> = Arc::new(FsSources::new(sources));
        let keeper = Supervisor::start(move |_| {
            configure(
                CredentialKeeper::new(sources.clone(), t.clone(), decider.clone(), rotated.clone(), &m)
                    .with_debounce(Duration::from_millis(50)),
            )
        });
        Self {
            keeper,
            facts,
            rotations,
            metrics,
            targets,
        }
    }

    fn events(&self) -> Vec<Event> {
        self.facts
            .lock()
            .expect("lock")
            .iter()
            .map(|f| f.event.clone())
            .collect()
    }

    fn rotations(&self) -> usize {
        self.rotations.lock().expect("lock").len()
    }

    fn operations(&self, operation: &str, role: CredentialKind) -> u64 {
        self.metrics
            .credential_operations
            .with_label_values(&[operation, role.short_name()])
            .get()
    }

    fn target_bytes(&self) -> Vec<Option<Vec<u8>>> {
        CredentialKind::ALL
            .iter()
            .map(|r| std::fs::read(self.targets.get(*r)).ok())
            .collect()
    }
}

fn targets_in(dir: &Path) -> CredentialPaths {
    CredentialPaths {
        kes: dir.join("kes.skey"),
        vrf: dir.join("vrf.skey"),
        opcert: dir.join("node.cert"),
    }
}

fn source_bytes(sources: &CredentialPaths) -> Vec<Option<Vec<u8>>> {
    CredentialKind::ALL
        .iter()
        .map(|r| std::fs::read(sources.get(*r)).ok())
        .collect()
}

fn is_invalid(e: &Event) -> bool {
    matches!(e, Event::CredentialsInvalid { .. })
}

// === tests ===

#[actix::test]
async fn start_removes_leftover_targets_then_reports_valid_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(valid_set(1));
    let targets = targets_in(&dir.path().join("node"));
    std::fs::create_dir_all(dir.path().join("node")).expect("mkdir");
    // A crashed predecessor left a forging set behind.
    for r in CredentialKind::ALL {
        std::fs::write(targets.get(r), b"left behind").expect("leftover");
    }
    let k = Kept::start(volume.paths(), targets.clone());
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;
    assert_eq!(
        k.target_bytes(),
        vec![None, None, None],
        "standby: no target files"
    );
    for r in CredentialKind::ALL {
        assert_eq!(k.operations("remove", r), 1, "{r:?}");
        assert_eq!(k.operations("copy", r), 0, "{r:?}");
    }
}

#[actix::test]
async fn install_writes_0600_copies_of_the_sources_and_remove_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(valid_set(1));
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;

    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    assert_eq!(k.target_bytes(), source_bytes(&volume.paths()));
    for r in CredentialKind::ALL {
        let mode = std::fs::metadata(k.targets.get(r))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{r:?}");
        assert_eq!(k.operations("copy", r), 1, "{r:?}");
    }

    k.keeper.send(Remove).await.expect("mailbox").expect("removed");
    assert_eq!(k.target_bytes(), vec![None, None, None]);
    for r in CredentialKind::ALL {
        assert_eq!(k.operations("remove", r), 1, "{r:?}");
    }
    // Idempotent: nothing left to remove, nothing counted.
    k.keeper.send(Remove).await.expect("mailbox").expect("removed");
    assert_eq!(k.operations("remove", CredentialKind::KesSigningKey), 1);
}

#[actix::test]
async fn install_refuses_a_corrupt_set_never_writes_it_and_never_shows_its_content() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    let hex = Arc::new(Mutex::new(String::new()));
    volume.publish(corrupt_set(1, hex.clone()));
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;

    let err = k
        .keeper
        .send(Install)
        .await
        .expect("mailbox")
        .expect_err("refused");
    assert_eq!(err.kind.as_str(), "invalid_credentials");
    assert!(err.detail.contains("kes.skey"), "names the file: {}", err.detail);
    assert_eq!(k.target_bytes(), vec![None, None, None], "nothing written");
    assert_eq!(k.operations("copy", CredentialKind::KesSigningKey), 0);
    eventually("the refusal reported", || {
        k.events().iter().filter(|e| is_invalid(e)).count() == 2
    })
    .await;
    assert!(
        k.metrics
            .credential_validation_failures
            .with_label_values(&["kes", "not_cbor"])
            .get()
            >= 2
    );

    // No content anywhere: not in the error, the facts or the logs.
    let hex = hex.lock().expect("lock").clone();
    let content = &hex[6..46];
    let whys: Vec<String> = k
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::CredentialsInvalid { why } => Some(why),
            _ => None,
        })
        .collect();
    for text in [err.to_string(), format!("{err:?}"), whys.join("\n"), logs.all()] {
        assert!(!text.contains(content), "content leaked: {text}");
        assert!(!text.contains("cborHex\":"), "content leaked: {text}");
    }
    assert!(
        logs.all().contains("kes.skey"),
        "the log names the file: {}",
        logs.all()
    );
}

#[actix::test]
async fn a_rotated_secret_volume_is_reported_valid_and_rotated_without_touching_the_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(valid_set(1));
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;
    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    let installed = k.target_bytes();

    volume.publish(valid_set(2));
    eventually("rotation reported", || k.rotations() == 1).await;
    assert_eq!(k.events(), [Event::CredentialsValid, Event::CredentialsValid]);
    assert_eq!(
        k.target_bytes(),
        installed,
        "the Decider re-installs, not the keeper"
    );

    // The Decider's re-install picks up the new set.
    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    assert_eq!(k.target_bytes(), source_bytes(&volume.paths()));
    assert_ne!(k.target_bytes(), installed);
    // The same content published again is not a rotation.
    volume.publish(valid_set(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(k.rotations(), 1);
}

#[actix::test]
async fn a_corrupt_rotation_is_reported_invalid_and_the_installed_set_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::new(dir.path().join("secret"));
    volume.publish(valid_set(1));
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;
    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    let installed = k.target_bytes();

    volume.publish(corrupt_set(2, Arc::default()));
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;
    assert_eq!(k.rotations(), 0);
    assert_eq!(k.target_bytes(), installed, "the installed set is not touched");
    let err = k
        .keeper
        .send(Install)
        .await
        .expect("mailbox")
        .expect_err("refused");
    assert_eq!(err.kind.as_str(), "invalid_credentials");
    assert_eq!(
        k.target_bytes(),
        installed,
        "a refused install leaves the installed set"
    );

    // A valid set after that is valid again, and a rotation (it differs from the installed one).
    volume.publish(valid_set(3));
    eventually("rotation reported", || k.rotations() == 1).await;
    assert_eq!(k.events().last(), Some(&Event::CredentialsValid));
}

#[actix::test]
async fn a_missing_source_directory_is_retried_with_backoff_until_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume {
        root: dir.path().join("not-yet-mounted"),
        version: 0,
    };
    let k = Kept::start(volume.paths(), targets_in(&dir.path().join("node")));
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;
    eventually("restarted by its supervisor", || {
        k.metrics
            .actor_restarts
            .with_label_values(&["credential_keeper"])
            .get()
            >= 1
    })
    .await;
    std::fs::create_dir_all(&volume.root).expect("mount");
    volume.publish(valid_set(1));
    eventually("valid once mounted", || {
        k.events().last() == Some(&Event::CredentialsValid)
    })
    .await;
    // Reports are changes only: one invalid, however many restarts it took.
    assert_eq!(k.events().iter().filter(|e| is_invalid(e)).count(), 1);
    // And it still serves commands.
    k.keeper.send(Install).await.expect("mailbox").expect("installed");
}

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
    let report: forge_actors::credential_keeper::KesReportCell = Arc::default();
    let cell = report.clone();
    let k = Kept::start_with(
        volume.paths(),
        targets_in(&dir.path().join("node")),
        &registry,
        move |keeper| {
            let wall = wall.clone();
            keeper
                .with_kes_report(cell.clone())
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
    // The same figures for /status.
    let status = serde_json::to_value(report.lock().expect("lock").expect("report")).expect("json");
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
    let err = k
        .keeper
        .send(Install)
        .await
        .expect("mailbox")
        .expect_err("refused");
    assert_eq!(err.kind.as_str(), "invalid_credentials");
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
    let err = k
        .keeper
        .send(Install)
        .await
        .expect("mailbox")
        .expect_err("refused");
    assert_eq!(err.kind.as_str(), "invalid_credentials");
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
