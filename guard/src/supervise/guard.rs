//! The loop: the only owner of the guard's state ([`Guard`]), woken by the threads' events
//! and the permit's deadline, enforcing the rules of the `supervise` module docs (the permit,
//! the reload rule, the fence and its escalation, the re-fence of unpermitted credentials).

use std::{
    io::Write,
    os::unix::net::UnixStream,
    path::PathBuf,
    process::ExitStatus,
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::Duration,
};

use rustix::{fd::OwnedFd, process::Signal};

use super::{Event, FILE_POLL, PUSH_TIMEOUT, log};
use crate::{
    monotonic_now_ns,
    protocol::{Answer, GuardState, MAX_TTL_MS, Observation, PERMIT_ENDING, Request},
};

mod room;

use room::{recheck_after_fence, too_late};

/// A forwarded signal's name as the log says it.
fn name(sig: Signal) -> &'static str {
    match sig {
        Signal::TERM => "SIGTERM",
        Signal::INT => "SIGINT",
        Signal::HUP => "SIGHUP",
        Signal::QUIT => "SIGQUIT",
        _ => "a signal",
    }
}
/// What became of a SIGHUP the guard was asked for.
enum Hup {
    /// Delivered.
    Sent,
    /// The node cannot take one yet: sent once it can.
    Deferred,
    /// Refused: no permit while this credential file exists.
    Refused(PathBuf),
    /// Refused: it would enable forging with less than the reload room left of the permit
    /// (this much, in ms).
    TooLate(u64),
    /// The kernel refused (the node is gone).
    Failed,
}

pub(super) struct Guard {
    pub(super) targets: Vec<PathBuf>,
    pub(super) pid: u32,
    pub(super) pidfd: Option<OwnedFd>,
    /// The permit's deadline, nanoseconds of CLOCK_MONOTONIC.
    pub(super) permit: Option<u64>,
    pub(super) forging: Option<bool>,
    pub(super) last: Option<Observation>,
    pub(super) reload_lost: bool,
    /// The node showed a sign of life: a SIGHUP no longer kills it.
    pub(super) ready: bool,
    /// A reload was asked for before the node was ready.
    pub(super) pending_reload: bool,
    /// A fence's SIGHUP waits for the node to be ready.
    pub(super) pending_fence: bool,
    /// Consensus runs (a chain extension or a reconfiguration line was seen): a SIGHUP now
    /// takes effect.
    pub(super) consensus: bool,
    /// Since when credential files have been present without a permit while consensus runs.
    pub(super) unpermitted_since: Option<u64>,
    /// How long credential files may stay present without a permit before the guard removes
    /// them.
    pub(super) unpermitted_grace: Duration,
    /// An escalation is under way: SIGKILL at this instant (CLOCK_MONOTONIC ns).
    pub(super) kill_at: Option<u64>,
    /// SIGTERM to SIGKILL, when a fence could remove nothing.
    pub(super) kill_after: Duration,
    /// The longest a reload may take in the node: a reload that would enable forging is
    /// refused with less than this left of the permit, and a fence that follows an enabling
    /// reload by less than this reloads the node once more when that reload has had it.
    /// Zero: neither.
    pub(super) reload_room: Duration,
    /// When the last SIGHUP that could enable forging (a permit held, every target file
    /// present) was sent (CLOCK_MONOTONIC ns).
    pub(super) enabling_sent: Option<u64>,
    /// A fence followed an enabling reload that may still be under way: reload the node once
    /// more at this instant (CLOCK_MONOTONIC ns), so that a reload without the files is the
    /// last to take effect.
    pub(super) recheck_at: Option<u64>,
    /// Enabling reloads refused for too little permit left, since the guard started.
    pub(super) refused_late: u64,
    pub(super) subscribers: Vec<UnixStream>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms_of_ns(n: u64) -> u64 {
    n / 1_000_000
}

impl Guard {
    pub(super) fn serve(&mut self, rx: &Receiver<Event>) -> std::io::Result<ExitStatus> {
        loop {
            let now = monotonic_now_ns();
            if self.permit.is_some_and(|d| now >= d) {
                self.fence("lapsed", "the permit lapsed (no renewal from the sidecar)");
                continue;
            }
            if self.kill_at.is_some_and(|k| now >= k) {
                self.kill_at = None;
                log(format_args!(
                    "escalation: the node has not exited {} ms after SIGTERM: SIGKILL",
                    self.kill_after.as_millis()
                ));
                self.signal(Signal::KILL);
                continue;
            }
            if self.recheck_at.is_some_and(|r| now >= r) {
                self.recheck_at = None;
                self.recheck();
                continue;
            }
            self.check_unpermitted(now);
            let poll = self.polling().then(|| now.saturating_add(ns(FILE_POLL)));
            let wake = [self.permit, self.kill_at, self.recheck_at, poll]
                .into_iter()
                .flatten()
                .min();
            let event = match wake {
                Some(at) => match rx.recv_timeout(Duration::from_nanos(at.saturating_sub(now))) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(std::io::Error::other("all event sources ended"));
                    }
                },
                None => match rx.recv() {
                    Ok(e) => e,
                    Err(_) => return Err(std::io::Error::other("all event sources ended")),
                },
            };
            match event {
                Event::ChildExited(status) => {
                    // An exited node forges no more: subscribers waiting for a stop (the sidecar
                    // at its own shutdown, when the kubelet stops both containers at once) learn
                    // it before this guard's socket goes away.
                    self.forging = Some(false);
                    self.push("exited");
                    return status;
                }
                Event::Signal(Signal::HUP) => {
                    log(format_args!(
                        "SIGHUP received: forwarding it to the node (same rules as a reload request)"
                    ));
                    self.reload("a forwarded SIGHUP");
                }
                Event::Signal(sig) => {
                    log(format_args!("{} received: forwarding it to the node", name(sig)));
                    self.signal(sig);
                }
                Event::Listening => {
                    if !self.ready {
                        self.become_ready("its socket listens");
                    }
                }
                Event::Output(obs) => {
                    if !self.ready {
                        self.become_ready(if obs == Some(Observation::NotEffective) {
                            "it reported a reload as not effective"
                        } else {
                            "its first output line"
                        });
                    }
                    if let Some(obs) = obs {
                        self.observed(obs);
                    }
                }
                Event::Request(req, reply) => {
                    let answer = self.request(req);
                    let _ = reply.send(answer);
                }
                Event::Subscribe(stream, reply) => {
                    let _ = stream.set_write_timeout(Some(PUSH_TIMEOUT));
                    self.subscribers.push(stream);
                    let _ = reply.send(Answer::ok(self.state()));
                }
            }
        }
    }

    fn state(&self) -> GuardState {
        let now = monotonic_now_ns();
        GuardState {
            permit_ms: self.permit.map(|d| ms_of_ns(d.saturating_sub(now))),
            forging: self.forging,
            last: self.last,
            reload_lost: self.reload_lost,
            child_pid: self.pid,
            ready: self.ready,
            hup_pending: self.pending_reload || self.pending_fence,
        }
    }

    fn request(&mut self, req: Request) -> Answer {
        match req {
            Request::Permit { deadline_mono_ns } => {
                let now = monotonic_now_ns();
                if deadline_mono_ns <= now {
                    let late = ms_of_ns(now - deadline_mono_ns);
                    log(format_args!(
                        "permit refused: its deadline passed {late} ms before it arrived (a stalled sender); \
                         the node stays without one"
                    ));
                    return Answer::error(
                        "expired",
                        format!("the permit's deadline passed {late} ms before it arrived: not granted"),
                    );
                }
                let ahead = ms_of_ns(deadline_mono_ns - now);
                if ahead > MAX_TTL_MS {
                    log(format_args!(
                        "permit refused: its deadline is {ahead} ms ahead (at most {MAX_TTL_MS})"
                    ));
                    return Answer::error(
                        "field",
                        format!(
                            "deadline_mono_ns is {ahead} ms ahead of this guard's CLOCK_MONOTONIC; at most \
                             {MAX_TTL_MS} ms (is the sender on another clock?)"
                        ),
                    );
                }
                let had = self.permit.is_some();
                // Exactly what we were told, on the kernel's clock: never more.
                self.permit = Some(deadline_mono_ns);
                // Forging is permitted again: a late enabling reload no longer needs undoing.
                self.recheck_at = None;
                if !had {
                    log(format_args!("permit granted for {ahead} ms"));
                    self.push("permit");
                }
                Answer::ok(self.state())
            }
            Request::Revoke => {
                let why = if self.permit.is_some() {
                    "the sidecar revoked the permit"
                } else {
                    "the sidecar asked for a fence (no permit was held)"
                };
                self.fence("revoked", why);
                Answer::ok(self.state())
            }
            Request::Reload => match self.reload("a reload request") {
                Hup::Sent | Hup::Deferred => Answer::ok(self.state()),
                Hup::Refused(t) => Answer::error(
                    "no_permit",
                    format!(
                        "refusing to SIGHUP the node: no permit is held and {} exists (the node would start \
                         forging); grant a permit first, or remove the credential files",
                        t.display()
                    ),
                ),
                Hup::TooLate(left) => Answer::error(
                    PERMIT_ENDING,
                    format!(
                        "refusing to SIGHUP the node: the reload would enable forging with {left} ms left of the \
                         permit, less than the reload room ({} ms; the node may take that long to act on it, so it \
                         could take effect after the fence at the permit's end); renew the permit first",
                        self.reload_room.as_millis()
                    ),
                ),
                Hup::Failed => Answer::error("signal_failed", "SIGHUP could not be delivered to the node"),
            },
            Request::State | Request::Subscribe => Answer::ok(self.state()),
        }
    }

    /// The first target file that exists, if any.
    fn present_target(&self) -> Option<PathBuf> {
        self.targets.iter().find(|t| t.exists()).cloned()
    }

    /// A SIGHUP someone asked for (a reload request or a forwarded signal), under the rules:
    /// deferred until the node is ready; refused without a permit while a credential file
    /// exists (every legitimate reload has a permit, or follows the files' removal); refused
    /// when it would enable forging (every file present) with less than the reload room left
    /// of the permit. A stopping reload (a file missing) is never refused.
    fn reload(&mut self, what: &str) -> Hup {
        if !self.ready {
            if !self.pending_reload {
                log(format_args!(
                    "{what} before the node showed a sign of life: deferred (a SIGHUP now would kill it; \
                     it starts without forging)"
                ));
            }
            self.pending_reload = true;
            return Hup::Deferred;
        }
        if self.permit.is_none()
            && let Some(t) = self.present_target()
        {
            log(format_args!(
                "{what} refused: no permit and {} exists (a SIGHUP would make the node forge)",
                t.display()
            ));
            return Hup::Refused(t);
        }
        let now = monotonic_now_ns();
        let enabling = self.permit.is_some() && self.enabling();
        if enabling && let Some(left) = too_late(self.permit, now, self.reload_room) {
            self.refused_late += 1;
            log(format_args!(
                "{what} refused: it would enable forging with {left} ms left of the permit, less than the reload \
                 room ({} ms): the node may act on it only after the fence at the permit's end (refused so far: {})",
                self.reload_room.as_millis(),
                self.refused_late
            ));
            return Hup::TooLate(left);
        }
        if self.signal(Signal::HUP) {
            if enabling {
                self.enabling_sent = Some(now);
            }
            Hup::Sent
        } else {
            Hup::Failed
        }
    }

    /// The node showed a sign of life: deliver what was deferred.
    fn become_ready(&mut self, sign: &str) {
        self.ready = true;
        log(format_args!("the node is ready for SIGHUP ({sign})"));
        // A deferred fence's SIGHUP is held to the reload rule as well: files written since
        // the fence (boot credentials) must not be read without a permit. A node that forges
        // anyway (it was allowed a producing start) is re-fenced on its "Enabling" line.
        let fence = std::mem::take(&mut self.pending_fence);
        if std::mem::take(&mut self.pending_reload) || fence {
            let what = if fence {
                "the deferred fence SIGHUP"
            } else {
                "the deferred reload"
            };
            let outcome = match self.reload(what) {
                Hup::Sent => "sent",
                Hup::Deferred => "deferred",
                Hup::Refused(_) => "dropped (the node started without forging and stays so)",
                Hup::TooLate(_) => "dropped (too little of the permit is left for it)",
                Hup::Failed => "not delivered",
            };
            log(format_args!("{what} {outcome}"));
        }
        self.push("ready");
    }

    /// The fence: no permit, no credentials, and the node told so (S3). Always carried out,
    /// with or without a permit. If no credential file could be removed, a SIGHUP would only
    /// make the node re-read them: the guard escalates instead (SIGTERM, then SIGKILL), unless
    /// the node is known not to forge.
    fn fence(&mut self, event: &str, why: &str) {
        self.permit = None;
        self.unpermitted_since = None;
        let now = monotonic_now_ns();
        if let Some(at) = recheck_after_fence(self.enabling_sent, now, self.reload_room) {
            log(format_args!(
                "an enabling reload was sent {} ms before this fence: the node is reloaded once more in {} ms, \
                 when that reload has had the reload room",
                ms_of_ns(now.saturating_sub(self.enabling_sent.unwrap_or(now))),
                ms_of_ns(at - now)
            ));
            self.recheck_at = Some(at);
        }
        let mut failures = Vec::new();
        let mut present = 0;
        for t in &self.targets {
            match std::fs::remove_file(t) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failures.push(format!("{}: {e}", t.display()));
                    if t.exists() {
                        present += 1;
                    }
                }
            }
        }
        let failed = if failures.is_empty() {
            String::new()
        } else {
            format!(" (removal failed: {})", failures.join("; "))
        };
        if present < self.targets.len() {
            // At least one file is gone: on a SIGHUP the node disables forging.
            let reloaded = if self.ready {
                self.signal(Signal::HUP).to_string()
            } else {
                self.pending_fence = true;
                "deferred until the node is ready".to_string()
            };
            log(format_args!(
                "permit {event}: {why}; credentials removed{failed}; node reloaded: {reloaded}"
            ));
        } else if self.forging == Some(false) {
            log(format_args!(
                "permit {event}: {why}; NO credential file could be removed{failed}; the node reports not \
                 forging and is not reloaded (it would read them); it is not terminated"
            ));
        } else {
            log(format_args!(
                "permit {event}: {why}; NO credential file could be removed{failed}; the node may forge: \
                 escalating: SIGTERM now, SIGKILL in {} ms",
                self.kill_after.as_millis()
            ));
            self.signal(Signal::TERM);
            if self.kill_at.is_none() {
                self.kill_at = Some(monotonic_now_ns().saturating_add(ns(self.kill_after)));
            }
            self.push("escalated");
        }
        self.push(event);
    }

    /// Whether the loop must wake up to look at the files.
    fn polling(&self) -> bool {
        self.permit.is_none() && self.consensus && self.kill_at.is_none()
    }

    /// Credential files present without a permit while consensus runs, for longer than the
    /// grace (a starting plan writes them just before it asks for the permit): removed.
    fn check_unpermitted(&mut self, now: u64) {
        if !self.polling() {
            self.unpermitted_since = None;
            return;
        }
        let Some(t) = self.present_target() else {
            self.unpermitted_since = None;
            return;
        };
        let since = *self.unpermitted_since.get_or_insert(now);
        if now.saturating_sub(since) >= ns(self.unpermitted_grace) {
            let why = format!(
                "{} present without a permit for {} ms while consensus runs",
                t.display(),
                self.unpermitted_grace.as_millis()
            );
            self.fence("refenced", &why);
        }
    }

    fn signal(&self, sig: Signal) -> bool {
        let r = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, sig),
            None => match rustix::process::Pid::from_raw(self.pid as i32) {
                Some(p) => rustix::process::kill_process(p, sig),
                None => return false,
            },
        };
        if let Err(e) = &r {
            log(format_args!("signal {sig:?} to the node failed: {e}"));
        }
        r.is_ok()
    }

    fn observed(&mut self, obs: Observation) {
        self.last = Some(obs);
        match obs {
            Observation::Enabled => {
                self.forging = Some(true);
                self.reload_lost = false;
                self.consensus = true;
            }
            Observation::Disabled => {
                self.forging = Some(false);
                self.reload_lost = false;
                self.consensus = true;
            }
            Observation::ReloadError => self.reload_lost = false,
            Observation::NotEffective => self.reload_lost = true,
            Observation::ChainExtended => self.consensus = true,
        }
        if obs == Observation::ChainExtended && !self.reload_lost {
            return; // frequent on a real node, and says nothing new
        }
        self.push("observed");
        if obs == Observation::Enabled && self.permit.is_none() {
            self.fence("refenced", "the node reports forging without a permit");
        }
    }

    fn push(&mut self, event: &str) {
        if self.subscribers.is_empty() {
            return;
        }
        let line = Answer::event(event, self.state()).to_line();
        self.subscribers
            .retain_mut(|s| s.write_all(line.as_bytes()).is_ok());
    }
}
