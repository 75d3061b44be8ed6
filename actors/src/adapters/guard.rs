//! The node guard's socket, as the NodeSignaller uses it (docs/guard.md): one short
//! connection per request (permit, revoke, reload), each under a timeout, and one long-lived
//! subscription that delivers what the guard observes the node doing. The protocol types are
//! forge-guard's own, so the two sides cannot drift apart.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::ports::NodeGuard;
/// The port's types under the names this adapter has always used.
pub use crate::ports::{GuardError, GuardReport};
use forge_guard::protocol::{Answer, GuardState, Request};
use futures::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

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

/// The guard's socket behind the [`NodeGuard`] port.
impl NodeGuard for GuardClient {
    fn socket(&self) -> &Path {
        GuardClient::socket(self)
    }

    fn present(&self) -> bool {
        GuardClient::present(self)
    }

    fn request(&self, req: Request) -> BoxFuture<'static, Result<GuardState, GuardError>> {
        let client = self.clone();
        async move { GuardClient::request(&client, req).await }.boxed()
    }

    fn subscribe(&self) -> BoxFuture<'static, Result<BoxStream<'static, GuardReport>, GuardError>> {
        let client = self.clone();
        async move { Ok(GuardClient::subscribe(&client).await?.boxed()) }.boxed()
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
    use crate::ports::GuardErrorKind;

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
