//! The node guard's socket, as the NodeSignaller uses it (docs/guard.md): one short
//! connection per request (permit, revoke, reload), each under a timeout, and one long-lived
//! subscription that delivers what the guard observes the node doing. The protocol types are
//! forge-guard's own, so the two sides cannot drift apart.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::ports::GuardErrorKind;
use forge_guard::protocol::{Answer, GuardState, Request};
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

/// Why a guard request failed. Only `Refused` is an answer (the guard is alive and said no).
/// `Unreachable` and `Timeout` say nothing about the node: the guard may be stalled, or its
/// backlog full, with its node running and forging. `Gone` (the socket file is absent) is the
/// one sign that the node has exited: a guard removes its socket only after its child exited
/// (or when it never started one); a guard that was killed leaves the file behind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The socket file does not exist: no guard runs (its node exited, or none was started).
    #[error("node guard socket {path} does not exist")]
    Gone {
        /// The socket.
        path: String,
    },
    /// No guard listens (its socket is absent or refuses).
    #[error("node guard at {path}: {detail}")]
    Unreachable {
        /// The socket.
        path: String,
        /// The cause.
        detail: String,
    },
    /// The guard did not answer in time.
    #[error("node guard did not answer {op} within {timeout:?}")]
    Timeout {
        /// The request.
        op: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// The guard answered with an error.
    #[error("node guard refused {op}: {kind}: {error}")]
    Refused {
        /// The request.
        op: &'static str,
        /// Its bounded label.
        kind: String,
        /// What it said.
        error: String,
    },
}

impl GuardError {
    /// Its kind (a bounded label for logs and [`crate::messages::CommandError`]).
    pub fn kind(&self) -> GuardErrorKind {
        match self {
            GuardError::Gone { .. } => GuardErrorKind::Gone,
            GuardError::Unreachable { .. } => GuardErrorKind::Unreachable,
            GuardError::Timeout { .. } => GuardErrorKind::Timeout,
            GuardError::Refused { .. } => GuardErrorKind::Refused,
        }
    }
}

/// What the guard pushes on a subscription (the first item is the subscription's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardReport {
    /// `observed`, `permit`, `lapsed`, `revoked`, or `None` for the initial state.
    pub event: Option<String>,
    /// The guard's state after it.
    pub state: GuardState,
}

/// A client of the guard's socket.
#[derive(Debug, Clone)]
pub struct GuardClient {
    socket: PathBuf,
    timeout: Duration,
}

impl GuardClient {
    /// A client of the guard at `socket`; every request must be answered within `timeout`.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            socket: socket.into(),
            timeout,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether a guard socket exists (a guard runs, or ran, in this pod).
    pub fn present(&self) -> bool {
        self.socket.exists()
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> GuardError {
        GuardError::Unreachable {
            path: self.socket.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// A failed connect: `Gone` only when the socket file is absent.
    fn not_connected(&self, e: std::io::Error) -> GuardError {
        if e.kind() == std::io::ErrorKind::NotFound {
            GuardError::Gone {
                path: self.socket.display().to_string(),
            }
        } else {
            self.unreachable(e)
        }
    }

    /// Sends one request and returns the guard's state after it.
    pub async fn request(&self, req: Request) -> Result<GuardState, GuardError> {
        let op = req.op();
        let fut = async {
            let mut conn = UnixStream::connect(&self.socket)
                .await
                .map_err(|e| self.not_connected(e))?;
            conn.write_all(req.to_line().as_bytes())
                .await
                .map_err(|e| self.unreachable(e))?;
            let mut line = String::new();
            BufReader::new(conn)
                .read_line(&mut line)
                .await
                .map_err(|e| self.unreachable(e))?;
            let answer = Answer::parse(&line).map_err(|e| self.unreachable(format!("bad answer: {e}")))?;
            match (answer.ok, answer.state) {
                (true, Some(state)) => Ok(state),
                _ => Err(GuardError::Refused {
                    op,
                    kind: answer.kind.unwrap_or_default(),
                    error: answer.error.unwrap_or_default(),
                }),
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or(Err(GuardError::Timeout {
                op,
                timeout: self.timeout,
            }))
    }

    /// Subscribes: the stream yields the current state, then every change, and ends when the
    /// guard goes away (or sends something unreadable).
    pub async fn subscribe(&self) -> Result<impl Stream<Item = GuardReport> + use<>, GuardError> {
        let fut = async {
            let mut conn = UnixStream::connect(&self.socket)
                .await
                .map_err(|e| self.not_connected(e))?;
            conn.write_all(Request::Subscribe.to_line().as_bytes())
                .await
                .map_err(|e| self.unreachable(e))?;
            Ok::<_, GuardError>(conn)
        };
        let conn = tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or(Err(GuardError::Timeout {
                op: "subscribe",
                timeout: self.timeout,
            }))?;
        let lines = tokio_lines(BufReader::new(conn));
        Ok(lines
            .map(|line| Answer::parse(&line).ok())
            .take_while(|a| std::future::ready(a.as_ref().is_some_and(|a| a.ok && a.state.is_some())))
            .filter_map(|a| {
                std::future::ready(a.and_then(|a| {
                    Some(GuardReport {
                        event: a.event,
                        state: a.state?,
                    })
                }))
            }))
    }
}

fn tokio_lines(reader: BufReader<UnixStream>) -> impl Stream<Item = String> {
    futures::stream::unfold(reader, |mut r| async move {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((line, r)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three ways a request can fail without an answer are told apart: only an absent
    /// socket file says the guard (and so its node) has gone.
    #[tokio::test]
    async fn gone_unreachable_and_timeout_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let timeout = Duration::from_millis(200);
        let absent = GuardClient::new(dir.path().join("absent.sock"), timeout);
        let e = absent.request(Request::State).await.expect_err("no socket");
        assert_eq!(e.kind(), GuardErrorKind::Gone, "{e}");

        // A socket file nobody listens on (a killed guard leaves it behind).
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
        let e = GuardClient::new(&stale, timeout)
            .request(Request::State)
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), GuardErrorKind::Unreachable, "{e}");

        // A guard that accepts (the kernel's backlog) but never answers: stalled.
        let silent = dir.path().join("silent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&silent).expect("bind");
        let e = GuardClient::new(&silent, timeout)
            .request(Request::State)
            .await
            .expect_err("silent");
        assert_eq!(e.kind(), GuardErrorKind::Timeout, "{e}");
    }
}
