//! How a reload reaches the node and how a stop is confirmed (module docs of the NodeSignaller,
//! "A stop is confirmed before it counts"): through the node guard (a permit before a starting
//! reload, a revoke after a stopping one, then the confirmation from its reports), and without
//! one the wait after a SIGHUP by PID.

use std::time::Duration;

use forge_core::decision::ReloadReason;
use forge_guard::protocol::{Observation, Request};
use tokio::{sync::watch, time::Instant};

use super::{Pushed, STOP_SETTLE};
use crate::{
    messages::{CommandError, CommandFailed},
    ports::{GuardError, NodeGuard, NodeHost, ProcessIdentity},
};

/// Whether a reload stops forging and must therefore be confirmed (module docs).
pub(super) fn stops(reason: ReloadReason) -> bool {
    matches!(reason, ReloadReason::StopForging | ReloadReason::Shutdown)
}

/// How long a stopping reload the guard did not answer waits for the guard's `exited` push.
const EXITED_WAIT: Duration = Duration::from_millis(500);

/// A stopping reload's confirmation through the guard (module docs).
pub(super) struct Confirm {
    pub(super) pushed: watch::Receiver<Pushed>,
    pub(super) before: Pushed,
    pub(super) needed: bool,
    pub(super) timeout: Duration,
    pub(super) grace: Duration,
}

impl Confirm {
    /// Waits until the node is seen not forging after the reload (then [`STOP_SETTLE`]), or
    /// fails with [`CommandError::StopUnconfirmed`].
    async fn wait(mut self) -> Result<(), CommandFailed> {
        if !self.needed {
            return Ok(());
        }
        if !self.before.connected {
            // The guard answered the reload but we see none of its reports: as by PID.
            tracing::info!(
                actor = "node_signaller",
                grace_ms = self.grace.as_millis() as u64,
                "no guard subscription to confirm the stop: taking it as done after STOP_GRACE"
            );
            tokio::time::sleep(self.grace).await;
            return Ok(());
        }
        let after = self.before.observations;
        let started = Instant::now();
        let seen = tokio::time::timeout(
            self.timeout,
            self.pushed.wait_for(|p| {
                p.observations > after
                    && (p.state.forging != Some(true) || p.state.last == Some(Observation::NotEffective))
            }),
        )
        .await
        // Never hold the watch's read guard across an await: the reader's next report would
        // block the thread on it.
        .map(|r| r.map(|_| ()));
        match seen {
            Ok(Ok(())) => {
                tokio::time::sleep(STOP_SETTLE).await;
                tracing::info!(
                    actor = "node_signaller",
                    after_ms = started.elapsed().as_millis() as u64,
                    "stop confirmed: the node reported it no longer forges"
                );
                Ok(())
            }
            _ => Err(CommandFailed::new(
                CommandError::StopUnconfirmed,
                format!(
                    "the node did not report that it stopped forging within {} ms of the reload (STOP_CONFIRM_TIMEOUT): keeping the lease and the claim",
                    self.timeout.as_millis()
                ),
            )),
        }
    }
}

/// Waits until the stop of `node` by PID counts as done: its process is gone, or `done_by`
/// passed (`STOP_GRACE` for the stop, and before it for every earlier reload, module docs).
pub(super) async fn wait_stopped_by_pid(
    host: std::sync::Arc<dyn NodeHost>,
    node: ProcessIdentity,
    grace: Duration,
    done_by: Instant,
) {
    let started = Instant::now();
    let verifiable = node.start_time != 0;
    while Instant::now() < done_by {
        if verifiable && host.identity(node.pid).ok() != Some(node) {
            tracing::info!(
                actor = "node_signaller",
                pid = node.pid,
                after_ms = started.elapsed().as_millis() as u64,
                "stop confirmed: the node process is gone"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20).min(grace)).await;
    }
    tracing::info!(
        actor = "node_signaller",
        pid = node.pid,
        grace_ms = grace.as_millis() as u64,
        waited_ms = started.elapsed().as_millis() as u64,
        "stop taken as done after STOP_GRACE for it and for any earlier reloads (sent only once those \
         had theirs; nothing the sidecar sees confirms it without the node guard)"
    );
}

/// Waits until `until` (the earlier reloads' `STOP_GRACE`) before a reload is sent by PID; true
/// when the process is gone meanwhile (nothing to stop: a stop is then done).
pub(super) async fn wait_earlier_reloads(
    host: std::sync::Arc<dyn NodeHost>,
    node: ProcessIdentity,
    until: Instant,
) -> bool {
    let verifiable = node.start_time != 0;
    while Instant::now() < until {
        if verifiable && host.identity(node.pid).ok() != Some(node) {
            tracing::info!(
                actor = "node_signaller",
                pid = node.pid,
                "the node process is gone: a held-back stop is confirmed, any other reload is not sent"
            );
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_millis(20).min(left)).await;
    }
    false
}

/// Whether the guard's process is gone: it removes its socket file only when it exits with
/// its child, the node. A refused connection (a SIGKILLed guard leaves its socket behind, and
/// its node outlives it where `setpriv` is missing) or a timeout (a stalled guard) is not this.
pub(super) fn guard_gone(client: &dyn NodeGuard) -> bool {
    !client.present()
}

/// The guard's part of a reload: a permit before a starting reload, a revoke after a stopping
/// one, then its confirmation.
pub(super) async fn reload_via_guard(
    client: &dyn NodeGuard,
    reason: ReloadReason,
    deadline_mono_ns: Option<u64>,
    confirm: Option<Confirm>,
) -> Result<(), CommandFailed> {
    let failed = |e: GuardError| CommandFailed::new(e.kind(), e);
    match reason {
        ReloadReason::StartForging => {
            let Some(deadline_mono_ns) = deadline_mono_ns else {
                return Err(CommandFailed::new(
                    CommandError::NoPermit,
                    "no current lease deadline to bound the guard's permit: not starting",
                ));
            };
            client
                .request(Request::Permit { deadline_mono_ns })
                .await
                .map_err(failed)?;
            client.request(Request::Reload).await.map_err(failed)?;
        }
        ReloadReason::StopForging | ReloadReason::Shutdown | ReloadReason::Startup => {
            let reloaded = client.request(Request::Reload).await;
            // Also after a failed reload: the revoke fences on its own (files, SIGHUP).
            if let Err(e) = client.request(Request::Revoke).await {
                tracing::warn!(actor = "node_signaller", kind = e.kind().as_str(), error = %e, "permit not revoked");
            }
            if let Err(e) = reloaded {
                // The guard may have gone because its node exited under it (the kubelet stops
                // the node and this sidecar at once): its last push says so, and is read by
                // now or within moments.
                if let Some(mut c) = confirm
                    && stops(reason)
                    && tokio::time::timeout(EXITED_WAIT, c.pushed.wait_for(|p| p.exited))
                        .await
                        .is_ok_and(|r| r.is_ok())
                {
                    tracing::info!(
                        actor = "node_signaller",
                        "stop confirmed: the node guard reported that the node exited"
                    );
                    return Ok(());
                }
                return Err(failed(e));
            }
            if let Some(confirm) = confirm {
                confirm.wait().await?;
            }
        }
        ReloadReason::Rotation | ReloadReason::Reassert | ReloadReason::FollowUp => {
            client.request(Request::Reload).await.map_err(failed)?;
        }
    }
    Ok(())
}
