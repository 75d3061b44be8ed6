//! [`MemoryCredentials`]: the node's credential files in memory behind the [`CredentialStore`]
//! port, with scripted write failures; tests read what the node would find.

use std::sync::{Arc, Mutex, MutexGuard};

use forge_core::credentials::CredentialKind;

use crate::ports::{CredentialContents, CredentialFileError, CredentialStore};

#[derive(Default)]
struct Files {
    installed: Option<CredentialContents>,
    fail_installs: u32,
    installs: u64,
    removals: u64,
}

/// The three target files in memory. Cheap to clone; clones share the files.
#[derive(Clone, Default)]
pub struct MemoryCredentials(Arc<Mutex<Files>>);

impl MemoryCredentials {
    fn lock(&self) -> MutexGuard<'_, Files> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The set installed now, if any.
    pub fn installed(&self) -> Option<CredentialContents> {
        self.lock().installed.clone()
    }

    /// The next `n` installs fail (as a full disk would), leaving nothing installed.
    pub fn fail_next_installs(&self, n: u32) {
        self.lock().fail_installs = n;
    }

    /// Successful installs and removals (of a present set) so far.
    pub fn counts(&self) -> (u64, u64) {
        let f = self.lock();
        (f.installs, f.removals)
    }
}

impl CredentialStore for MemoryCredentials {
    fn install(&self, set: &CredentialContents) -> Result<(), CredentialFileError> {
        let mut f = self.lock();
        if f.fail_installs > 0 {
            f.fail_installs -= 1;
            f.installed = None;
            return Err(CredentialFileError::Write {
                path: "memory/kes.skey".into(),
                source: std::io::Error::other("scripted failure"),
            });
        }
        f.installed = Some(set.clone());
        f.installs += 1;
        Ok(())
    }

    fn is_installed(&self, set: &CredentialContents) -> bool {
        self.lock().installed.as_ref() == Some(set)
    }

    fn present(&self) -> Vec<CredentialKind> {
        if self.lock().installed.is_some() {
            CredentialKind::ALL.to_vec()
        } else {
            Vec::new()
        }
    }

    fn remove(&self) -> Result<Vec<CredentialKind>, CredentialFileError> {
        let mut f = self.lock();
        Ok(match f.installed.take() {
            Some(_) => {
                f.removals += 1;
                CredentialKind::ALL.to_vec()
            }
            None => Vec::new(),
        })
    }
}
