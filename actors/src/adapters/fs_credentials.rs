//! The node's credential files on disk: reads the source set (a read-only Secret mount) and
//! installs it into, or removes it from, the target paths the node reads on SIGHUP.
//!
//! [`FsSources`] is the [`CredentialSource`] port (the sources, watched through inotify on their
//! directories: Kubernetes swaps a `..data` symlink, so file watches would miss it);
//! [`FsCredentials`] is the [`CredentialStore`] port (the targets).
//!
//! Every install is atomic per file (temp file in the target directory, written with mode 0600,
//! fsync, rename over the target, fsync the directory), so a node that starts or reloads at any
//! moment sees either the old file or the new one, never a torn one (the "nothing lost, no one in"
//! rule of docs/architecture.md). Removal is idempotent. Contents are held in [`SecretBytes`], whose
//! `Debug` is redacted; errors name files, never contents. Validation of the contents is
//! forge-core's job, not this module's.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use forge_core::credentials::MAX_ENVELOPE_BYTES;
pub use forge_core::credentials::{CredentialKind, CredentialSet};

use futures::stream::BoxStream;
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode},
};

/// The port's types under the names this adapter has always used.
pub use crate::ports::{CredentialContents, CredentialFileError as FsCredentialError, SecretBytes};
use crate::ports::{CredentialSource, CredentialStore, SourceChange, SourceWatchError};

/// Where the three files live (either the sources or the targets).
pub type CredentialPaths = CredentialSet<PathBuf>;

/// The core's bound on a credential file, as a file size.
const MAX_FILE_BYTES: u64 = MAX_ENVELOPE_BYTES as u64;

/// Reads the three source files (each at most [`MAX_ENVELOPE_BYTES`] bytes).
pub fn read_set(sources: &CredentialPaths) -> Result<CredentialContents, FsCredentialError> {
    Ok(CredentialSet {
        kes: read_one(&sources.kes)?,
        vrf: read_one(&sources.vrf)?,
        opcert: read_one(&sources.opcert)?,
    })
}

fn read_one(path: &Path) -> Result<SecretBytes, FsCredentialError> {
    let read_err = |source| FsCredentialError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(FsCredentialError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(FsCredentialError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    Ok(SecretBytes::new(bytes))
}

/// Installs all three files atomically (each), mode 0600. Stops at the first failure; the
/// caller then removes the set, so a partial set never stays behind.
pub fn install_set(targets: &CredentialPaths, set: &CredentialContents) -> Result<(), FsCredentialError> {
    for role in CredentialKind::ALL {
        write_atomically(targets.get(role), set.get(role).expose())?;
    }
    Ok(())
}

/// Whether all three target files exist with exactly the contents of `set` and mode 0600.
pub fn is_installed(targets: &CredentialPaths, set: &CredentialContents) -> bool {
    CredentialKind::ALL.into_iter().all(|role| {
        let path = targets.get(role);
        let mode_ok = fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777 == 0o600)
            .unwrap_or(false);
        mode_ok && read_one(path).map(|b| b == *set.get(role)).unwrap_or(false)
    })
}

/// Which target files exist now.
pub fn present(targets: &CredentialPaths) -> Vec<CredentialKind> {
    CredentialKind::ALL
        .into_iter()
        .filter(|r| targets.get(*r).exists())
        .collect()
}

/// Removes all three target files (missing ones are fine) and syncs their directories.
/// Returns the roles that were actually removed. Tries every file even if one fails.
pub fn remove_set(targets: &CredentialPaths) -> Result<Vec<CredentialKind>, FsCredentialError> {
    let mut removed = Vec::new();
    let mut first_error = None;
    for role in CredentialKind::ALL {
        let path = targets.get(role);
        match fs::remove_file(path) {
            Ok(()) => {
                removed.push(role);
                if let Some(dir) = path.parent() {
                    // Best effort: the unlink is already visible to the node; the fsync makes it durable.
                    let _ = sync_dir(dir);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                first_error.get_or_insert(FsCredentialError::Remove {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// The target files behind the [`CredentialStore`] port.
#[derive(Debug, Clone)]
pub struct FsCredentials {
    targets: CredentialPaths,
}

impl FsCredentials {
    /// The store at `targets` (the paths the node reads).
    pub fn new(targets: CredentialPaths) -> Self {
        Self { targets }
    }

    /// The target paths.
    pub fn targets(&self) -> &CredentialPaths {
        &self.targets
    }
}

impl CredentialStore for FsCredentials {
    fn install(&self, set: &CredentialContents) -> Result<(), FsCredentialError> {
        install_set(&self.targets, set)
    }

    fn is_installed(&self, set: &CredentialContents) -> bool {
        is_installed(&self.targets, set)
    }

    fn present(&self) -> Vec<CredentialKind> {
        present(&self.targets)
    }

    fn remove(&self) -> Result<Vec<CredentialKind>, FsCredentialError> {
        remove_set(&self.targets)
    }
}

/// Watch signals buffered between the watcher thread and the reader. When full, a signal is
/// already pending, so dropping more loses nothing (each only triggers a re-validation).
const WATCH_BUFFER: usize = 64;

/// The source files (a read-only Secret mount) behind the [`CredentialSource`] port.
#[derive(Debug, Clone)]
pub struct FsSources {
    sources: CredentialPaths,
}

impl FsSources {
    /// The sources at `sources`.
    pub fn new(sources: CredentialPaths) -> Self {
        Self { sources }
    }

    /// The directories to watch: those of the three source paths, each once.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .sources
            .all()
            .into_iter()
            .filter_map(|p| p.parent())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// Our own reads open and close the sources: those events are not changes.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl CredentialSource for FsSources {
    fn files(&self) -> &CredentialPaths {
        &self.sources
    }

    fn read(&self) -> Result<CredentialContents, FsCredentialError> {
        read_set(&self.sources)
    }

    fn watch(&self) -> Result<BoxStream<'static, SourceChange>, SourceWatchError> {
        let dirs = self.dirs();
        let failed = |e: notify::Error| SourceWatchError {
            dirs: format!("{dirs:?}"),
            detail: e.to_string(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let change = match res {
                Ok(event) if !is_change(&event.kind) => return,
                Ok(_) => SourceChange::Changed,
                Err(e) => SourceChange::Error(e.to_string()),
            };
            let _ = tx.try_send(change);
        })
        .map_err(failed)?;
        for dir in &dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive).map_err(failed)?;
        }
        // The stream owns the watcher: dropping the stream ends the watch.
        Ok(Box::pin(futures::stream::unfold(
            (rx, watcher),
            |(mut rx, watcher)| async move { rx.recv().await.map(|change| (change, (rx, watcher))) },
        )))
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically with mode 0600: a fresh temp file in the same directory
/// (created exclusively, so nobody else's file is reused), fsync, rename, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FsCredentialError> {
    let write_err = |source| FsCredentialError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        write_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no file name",
        ))
    })?;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
    }
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{n}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask can only clear bits; set 0600 explicitly in case the file system ignores mode.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path, prefix: &str) -> CredentialPaths {
        CredentialPaths {
            kes: dir.join(format!("{prefix}kes.skey")),
            vrf: dir.join(format!("{prefix}vrf.skey")),
            opcert: dir.join(format!("{prefix}node.cert")),
        }
    }

    fn set(tag: &str) -> CredentialContents {
        CredentialSet {
            kes: SecretBytes::new(format!("kes-{tag}").into_bytes()),
            vrf: SecretBytes::new(format!("vrf-{tag}").into_bytes()),
            opcert: SecretBytes::new(format!("opcert-{tag}").into_bytes()),
        }
    }

    #[test]
    fn installed_files_have_the_contents_and_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let targets = paths(&dir.path().join("secrets"), "");
        install_set(&targets, &set("a")).expect("install");
        assert!(is_installed(&targets, &set("a")));
        for role in CredentialKind::ALL {
            let mode = fs::metadata(targets.get(role))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{role:?}");
        }
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("secrets"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left behind: {leftovers:?}");
    }

    #[test]
    fn a_rotated_set_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let targets = paths(dir.path(), "");
        install_set(&targets, &set("old")).expect("install");
        install_set(&targets, &set("new")).expect("rotate");
        assert!(is_installed(&targets, &set("new")));
        assert!(!is_installed(&targets, &set("old")));
    }

    #[test]
    fn a_loose_mode_on_an_existing_target_is_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let targets = paths(dir.path(), "");
        fs::write(&targets.vrf, b"old").expect("write");
        fs::set_permissions(&targets.vrf, fs::Permissions::from_mode(0o644)).expect("chmod");
        install_set(&targets, &set("a")).expect("install");
        assert!(is_installed(&targets, &set("a")));
    }

    #[test]
    fn remove_is_idempotent_and_reports_what_it_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let targets = paths(dir.path(), "");
        install_set(&targets, &set("a")).expect("install");
        fs::remove_file(&targets.vrf).expect("pre-remove one");
        let removed = remove_set(&targets).expect("remove");
        assert_eq!(
            removed,
            vec![
                CredentialKind::KesSigningKey,
                CredentialKind::OperationalCertificate
            ]
        );
        assert!(present(&targets).is_empty());
        assert_eq!(remove_set(&targets).expect("again"), Vec::<CredentialKind>::new());
    }

    #[test]
    fn reading_sources_names_the_missing_file_and_oversized_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sources = paths(dir.path(), "src-");
        fs::write(&sources.kes, b"k").expect("write");
        let err = read_set(&sources).expect_err("vrf missing");
        assert!(err.to_string().contains("src-vrf.skey"), "{err}");
        fs::write(&sources.vrf, vec![b'x'; MAX_ENVELOPE_BYTES + 1]).expect("write");
        fs::write(&sources.opcert, b"o").expect("write");
        let err = read_set(&sources).expect_err("too large");
        assert_eq!(err.kind().as_str(), "too_large");
    }

    #[test]
    fn secret_bytes_never_show_in_debug_output() {
        let s = set("TOPSECRET");
        let shown = format!("{s:?}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
