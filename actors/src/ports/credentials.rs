//! The credential ports: the source files (read and watched) and the target files the node
//! reads, with the secret bytes they carry and the errors that name files, never contents.

use std::{fmt, io, path::PathBuf};

use forge_core::credentials::{CredentialKind, CredentialSet, MAX_ENVELOPE_BYTES};
use futures::stream::BoxStream;

labels! {
    /// What kind of credential-file failure.
    pub enum FileErrorKind {
        /// A source could not be read.
        Read => "read",
        /// A source is larger than any credential file.
        TooLarge => "too_large",
        /// A target could not be written.
        Write => "write",
        /// A target could not be removed.
        Remove => "remove",
    }
}

/// Bytes of key material. `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps key material.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The material itself, for validation and writing only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

/// The contents of the three credential files.
pub type CredentialContents = CredentialSet<SecretBytes>;

/// A failed credential file operation, naming the file and never its contents.
#[derive(Debug, thiserror::Error)]
pub enum CredentialFileError {
    /// A source file could not be read.
    #[error("cannot read credential file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A source file is larger than any credential envelope.
    #[error("credential file {path} is {size} bytes, more than the {MAX_ENVELOPE_BYTES} a credential can be")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A target file could not be written or renamed into place.
    #[error("cannot install credential file {path}: {source}")]
    Write {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A target file could not be removed.
    #[error("cannot remove credential file {path}: {source}")]
    Remove {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl CredentialFileError {
    /// Bounded label for metrics and status reasons.
    pub fn kind(&self) -> FileErrorKind {
        match self {
            CredentialFileError::Read { .. } => FileErrorKind::Read,
            CredentialFileError::TooLarge { .. } => FileErrorKind::TooLarge,
            CredentialFileError::Write { .. } => FileErrorKind::Write,
            CredentialFileError::Remove { .. } => FileErrorKind::Remove,
        }
    }
}

/// Where the node reads its credentials (the target files). The CredentialKeeper installs a
/// valid set there only on the Decider's `Install` (S2) and removes it on every step down.
/// Synchronous, like the files behind it: the panic fail-safe must remove them without a
/// runtime.
pub trait CredentialStore: Send + Sync + 'static {
    /// Installs all three (each atomically); stops at the first failure, after which the
    /// caller removes the set, so a partial set never stays behind.
    fn install(&self, set: &CredentialContents) -> Result<(), CredentialFileError>;
    /// Whether exactly `set` is installed, readable by the node's user only.
    fn is_installed(&self, set: &CredentialContents) -> bool;
    /// Which of the three are there now.
    fn present(&self) -> Vec<CredentialKind>;
    /// Removes all three (missing ones are fine) and returns those that were there; tries
    /// every one even when one fails.
    fn remove(&self) -> Result<Vec<CredentialKind>, CredentialFileError>;
}

/// A change seen where the source credential files live (a Secret update is a burst of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChange {
    /// Something changed.
    Changed,
    /// The watch reported an error (e.g. its queue overflowed): re-validate to be sure.
    Error(String),
}

/// The watch of the source credential files could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot watch the source credential directories {dirs}: {detail}")]
pub struct SourceWatchError {
    /// The directories, for the operator.
    pub dirs: String,
    /// The cause.
    pub detail: String,
}

/// The source credential files (a read-only Secret mount) and their changes: the CredentialKeeper
/// reads and validates them, and again after every change.
pub trait CredentialSource: Send + Sync + 'static {
    /// The three files (validation reasons and metrics name them).
    fn files(&self) -> &CredentialSet<PathBuf>;
    /// Reads all three (each at most [`MAX_ENVELOPE_BYTES`]).
    fn read(&self) -> Result<CredentialContents, CredentialFileError>;
    /// Every change from now on, until the stream is dropped; it ends when the watch does. Set
    /// up before the caller reads, so that no change between the two is missed.
    fn watch(&self) -> Result<BoxStream<'static, SourceChange>, SourceWatchError>;
}
