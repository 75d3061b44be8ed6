//! CredentialKeeper on temporary directories laid out like a Kubernetes Secret volume: the
//! source files are symlinks into `..data/`, and an update swaps `..data` atomically (rename of
//! a new symlink), as the kubelet's atomic writer does.
//!
//! This file holds the Secret volume, the credential sets and the started keeper the tests
//! share; the tests are in [`files`] (standby at start, install and remove, corrupt sets,
//! rotation, a missing volume) and [`certificates`] (KES periods and expiry, the genesis
//! schedule, a certificate for another key, the refusal as a Kubernetes Event).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::{
    adapters::fs_credentials::{CredentialKind, CredentialPaths, FsCredentials, FsSources},
    credential_keeper::CredentialKeeper,
    messages::{CommandFailed, Install, SourcesRotated},
    metrics::{Metrics, PodLabels},
    ports::{CredentialSource, CredentialStore},
    testing::{Probe, eventually, recorder},
};
use forge_core::decision::Event;
use prometheus::Registry;

mod certificates;
mod files;

// === test helpers: `forge_actors::testing::{Probe, recorder, Logs, eventually}` ===

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
        targets_in(&self.root)
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
    decider: Probe,
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
        let decider = Probe::start();
        let facts = decider.recipient();
        let (rotated, rotations) = recorder::<SourcesRotated>();
        let metrics = Metrics::register(registry, &PodLabels::default(), "test").expect("metrics");
        let m = metrics.clone();
        let t: Arc<dyn CredentialStore> = Arc::new(FsCredentials::new(targets.clone()));
        let sources: Arc<dyn CredentialSource> = Arc::new(FsSources::new(sources));
        let keeper = Supervisor::start(move |_| {
            configure(
                CredentialKeeper::new(sources.clone(), t.clone(), facts.clone(), rotated.clone(), &m)
                    .with_debounce(Duration::from_millis(50)),
            )
        });
        Self {
            keeper,
            decider,
            rotations,
            metrics,
            targets,
        }
    }

    fn events(&self) -> Vec<Event> {
        self.decider.events()
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
        source_bytes(&self.targets)
    }

    /// Sends `Install`, which must be refused as `invalid_credentials`; returns the refusal.
    async fn install_refused(&self) -> CommandFailed {
        let err = self
            .keeper
            .send(Install)
            .await
            .expect("mailbox")
            .expect_err("refused");
        assert_eq!(err.kind.as_str(), "invalid_credentials");
        err
    }
}

/// A Secret volume in `dir/secret` holding a valid set, and a keeper reading it and installing
/// into `dir/node`, started and reported valid.
async fn kept_valid(dir: &Path) -> (SecretVolume, Kept) {
    let mut volume = SecretVolume::new(dir.join("secret"));
    volume.publish(valid_set(1));
    let k = Kept::start(volume.paths(), targets_in(&dir.join("node")));
    eventually("valid reported", || k.events() == [Event::CredentialsValid]).await;
    (volume, k)
}

/// The credential files (named as in a Secret) in `dir`.
fn targets_in(dir: &Path) -> CredentialPaths {
    CredentialPaths {
        kes: dir.join(FILES[0]),
        vrf: dir.join(FILES[1]),
        opcert: dir.join(FILES[2]),
    }
}

/// What each of `paths` holds (`None`: no file), in [`CredentialKind::ALL`]'s order.
fn source_bytes(paths: &CredentialPaths) -> Vec<Option<Vec<u8>>> {
    CredentialKind::ALL
        .iter()
        .map(|r| std::fs::read(paths.get(*r)).ok())
        .collect()
}

fn is_invalid(e: &Event) -> bool {
    matches!(e, Event::CredentialsInvalid { .. })
}
