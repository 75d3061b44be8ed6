//! [`MemoryGuard`]: the node guard behind the [`NodeGuard`] port, in memory. It records every
//! request, keeps the permit as the guard does, answers with its state, and pushes to its
//! subscribers what the test reports; failures are scripted.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use forge_guard::protocol::{GuardState, Request};
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use tokio::sync::mpsc;

use crate::ports::{GuardError, GuardReport, NodeGuard};

struct Guard {
    present: bool,
    state: GuardState,
    requests: Vec<Request>,
    failures: VecDeque<GuardError>,
    subscribers: Vec<mpsc::UnboundedSender<GuardReport>>,
}

/// A node guard in memory, present (its socket exists) from the start. Cheap to clone; clones
/// share the guard.
#[derive(Clone)]
pub struct MemoryGuard {
    socket: PathBuf,
    inner: Arc<Mutex<Guard>>,
}

impl MemoryGuard {
    /// A guard "at" `socket` (the path only names it in logs).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            inner: Arc::new(Mutex::new(Guard {
                present: true,
                state: GuardState::default(),
                requests: Vec::new(),
                failures: VecDeque::new(),
                subscribers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Guard> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The guard's socket appears, or goes (with its node): going ends every subscription.
    pub fn set_present(&self, present: bool) {
        let mut g = self.lock();
        g.present = present;
        if !present {
            g.subscribers.clear();
        }
    }

    /// Its state now.
    pub fn state(&self) -> GuardState {
        self.lock().state.clone()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The next requests fail with these, in order (a refusal, a timeout, ...).
    pub fn fail_next(&self, errors: impl IntoIterator<Item = GuardError>) {
        self.lock().failures.extend(errors);
    }

    /// Something happened (`observed`, `lapsed`, `exited`, ...): the state becomes `state` and
    /// every subscriber is told.
    pub fn push(&self, event: &str, state: GuardState) {
        let mut g = self.lock();
        g.state = state.clone();
        let report = GuardReport {
            event: Some(event.to_owned()),
            state,
        };
        g.subscribers.retain(|s| s.send(report.clone()).is_ok());
    }

    fn gone(&self) -> GuardError {
        GuardError::Gone {
            path: self.socket.display().to_string(),
        }
    }
}

impl NodeGuard for MemoryGuard {
    fn socket(&self) -> &Path {
        &self.socket
    }

    fn present(&self) -> bool {
        self.lock().present
    }

    fn request(&self, req: Request) -> BoxFuture<'static, Result<GuardState, GuardError>> {
        let gone = self.gone();
        let mut g = self.lock();
        let answer = if !g.present {
            Err(gone)
        } else {
            g.requests.push(req);
            match g.failures.pop_front() {
                Some(e) => Err(e),
                None => {
                    match req {
                        Request::Permit { deadline_mono_ns } => {
                            let left = deadline_mono_ns.saturating_sub(forge_guard::monotonic_now_ns());
                            g.state.permit_ms = Some(left / 1_000_000);
                        }
                        Request::Revoke => g.state.permit_ms = None,
                        Request::Reload | Request::State | Request::Subscribe => {}
                    }
                    Ok(g.state.clone())
                }
            }
        };
        futures::future::ready(answer).boxed()
    }

    fn subscribe(&self) -> BoxFuture<'static, Result<BoxStream<'static, GuardReport>, GuardError>> {
        let gone = self.gone();
        let mut g = self.lock();
        let answer = if g.present {
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(GuardReport {
                event: None,
                state: g.state.clone(),
            });
            g.subscribers.push(tx);
            Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).boxed())
        } else {
            Err(gone)
        };
        futures::future::ready(answer).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_gets_the_state_then_every_push_until_the_guard_goes() {
        let guard = MemoryGuard::new("memory/guard.sock");
        let mut stream = guard.subscribe().await.expect("present");
        let forging = GuardState {
            forging: Some(true),
            ..GuardState::default()
        };
        guard.push("observed", forging.clone());
        guard.set_present(false);
        let reports: Vec<GuardReport> = (&mut stream).collect().await;
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].event, None);
        assert_eq!(
            (reports[1].event.as_deref(), &reports[1].state),
            (Some("observed"), &forging)
        );
        let e = guard.request(Request::State).await.expect_err("gone");
        assert!(matches!(e, GuardError::Gone { .. }), "{e}");
    }
}
