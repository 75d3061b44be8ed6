//! [`MemorySources`]: the source credential files behind the [`CredentialSource`] port, in
//! memory: the test publishes a set (or removes it) and every watcher is told, as a Secret
//! update would.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use forge_core::credentials::CredentialSet;
use futures::{StreamExt, stream::BoxStream};
use tokio::sync::mpsc;

use crate::ports::{
    CredentialContents, CredentialFileError, CredentialSource, SecretBytes, SourceChange, SourceWatchError,
};

#[derive(Default)]
struct Sources {
    contents: Option<CredentialContents>,
    watchers: Vec<mpsc::UnboundedSender<SourceChange>>,
    refuse_watch: bool,
}

/// The three source files in memory (named `memory/kes.skey`, `memory/vrf.skey`,
/// `memory/node.cert`); absent until published. Cheap to clone; clones share the files.
#[derive(Clone)]
pub struct MemorySources {
    files: CredentialSet<PathBuf>,
    inner: Arc<Mutex<Sources>>,
}

impl Default for MemorySources {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySources {
    /// No files yet.
    pub fn new() -> Self {
        Self {
            files: CredentialSet {
                kes: "memory/kes.skey".into(),
                vrf: "memory/vrf.skey".into(),
                opcert: "memory/node.cert".into(),
            },
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sources> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files now hold `kes`, `vrf` and `opcert` (a Secret update); watchers are told.
    pub fn publish(&self, kes: &[u8], vrf: &[u8], opcert: &[u8]) {
        let set = CredentialSet {
            kes: SecretBytes::new(kes.to_vec()),
            vrf: SecretBytes::new(vrf.to_vec()),
            opcert: SecretBytes::new(opcert.to_vec()),
        };
        self.change(Some(set));
    }

    /// The files now hold a valid set (current on mainnet, operational certificate counter
    /// `counter`, forge-sim's test keys); watchers are told.
    pub fn publish_valid(&self, counter: u64) {
        use forge_sim::creds::{TestCredentials, mainnet_kes_period_now, write_credentials};
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = write_credentials(
            dir.path(),
            &TestCredentials::new(counter, mainnet_kes_period_now()),
        )
        .expect("credentials");
        let read = |p: &std::path::Path| std::fs::read(p).expect("read");
        self.publish(&read(&paths.kes), &read(&paths.vrf), &read(&paths.opcert));
    }

    /// What the files hold now (`None`: absent).
    pub fn read_now(&self) -> Option<CredentialContents> {
        self.lock().contents.clone()
    }

    /// The files are gone; watchers are told.
    pub fn remove(&self) {
        self.change(None);
    }

    /// Every later watch fails to be set up (as an unwatchable directory would).
    pub fn refuse_watch(&self) {
        self.lock().refuse_watch = true;
    }

    fn change(&self, contents: Option<CredentialContents>) {
        let mut s = self.lock();
        s.contents = contents;
        s.watchers.retain(|w| w.send(SourceChange::Changed).is_ok());
    }
}

impl CredentialSource for MemorySources {
    fn files(&self) -> &CredentialSet<PathBuf> {
        &self.files
    }

    fn read(&self) -> Result<CredentialContents, CredentialFileError> {
        self.lock()
            .contents
            .clone()
            .ok_or_else(|| CredentialFileError::Read {
                path: self.files.kes.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not published"),
            })
    }

    fn watch(&self) -> Result<BoxStream<'static, SourceChange>, SourceWatchError> {
        let mut s = self.lock();
        if s.refuse_watch {
            return Err(SourceWatchError {
                dirs: "[\"memory\"]".into(),
                detail: "scripted failure".into(),
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        s.watchers.push(tx);
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }).boxed())
    }
}
