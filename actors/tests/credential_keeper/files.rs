//! Standby at start (leftover targets removed), install as 0600 copies and remove, a corrupt set
//! refused without showing its content, rotations valid and corrupt, and a missing Secret volume
//! retried until it appears.

use std::{
    os::unix::fs::PermissionsExt,
    sync::{Arc, Mutex},
    time::Duration,
};

use forge_actors::{
    adapters::fs_credentials::CredentialKind,
    messages::{Install, Remove},
    testing::{Logs, eventually},
};
use forge_core::decision::Event;

use crate::{Kept, SecretVolume, corrupt_set, is_invalid, kept_valid, source_bytes, targets_in, valid_set};

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
    let (volume, k) = kept_valid(dir.path()).await;

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

    let err = k.install_refused().await;
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
    let (mut volume, k) = kept_valid(dir.path()).await;
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
    let (mut volume, k) = kept_valid(dir.path()).await;
    k.keeper.send(Install).await.expect("mailbox").expect("installed");
    let installed = k.target_bytes();

    volume.publish(corrupt_set(2, Arc::default()));
    eventually("invalid reported", || k.events().iter().any(is_invalid)).await;
    assert_eq!(k.rotations(), 0);
    assert_eq!(k.target_bytes(), installed, "the installed set is not touched");
    k.install_refused().await;
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
