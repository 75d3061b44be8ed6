//! Timeline files: reading one or several (merged, or live while still being written) and the
//! appending writer the node simulator uses. The only I/O of the `timeline` module.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::TimelineEvent;

/// Errors reading or writing timeline files.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// A file could not be opened, read or written.
    #[error("timeline {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a timeline event.
    #[error("timeline {path}:{line}: not a timeline event: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
}

impl TimelineError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Parse { .. } => "parse",
        }
    }
}

/// Reads one timeline file. Blank lines are skipped; any other line must be an event.
pub fn read_file(path: &Path) -> Result<Vec<TimelineEvent>, TimelineError> {
    parse_file(path, false)
}

/// Reads and merges several timeline files (the order of the result is by file, then by line;
/// the judge sorts by time itself).
pub fn read_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TimelineEvent>, TimelineError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_file(p.as_ref())?);
    }
    Ok(all)
}

/// As [`read_files`], for files that are still being written: a last line without its newline
/// that does not parse is a write still in progress and is left out. Any other bad line fails.
pub fn read_files_live<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TimelineEvent>, TimelineError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(parse_file(p.as_ref(), true)?);
    }
    Ok(all)
}

fn parse_file(path: &Path, live: bool) -> Result<Vec<TimelineEvent>, TimelineError> {
    let io = |source| TimelineError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io)?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let mut events = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if live && !complete && i + 1 == lines.len() => {}
            Err(source) => {
                return Err(TimelineError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(events)
}

/// Appends events to a timeline file, one line per event, written with a single `write` on a file
/// opened with `O_APPEND`, so several processes may share one file without tearing lines.
#[derive(Debug)]
pub struct TimelineWriter {
    path: PathBuf,
    file: File,
}

impl TimelineWriter {
    /// Opens (creating if needed) the file for appending.
    pub fn open(path: &Path) -> Result<Self, TimelineError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| TimelineError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one event and flushes it.
    pub fn append(&mut self, event: &TimelineEvent) -> Result<(), TimelineError> {
        let io = |source| TimelineError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(event).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.flush().map_err(io)
    }
}
