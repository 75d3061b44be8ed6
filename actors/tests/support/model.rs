//! The fleet's model of the world (the `support` module docs): the fake nodes follow the
//! commands their stand-ins get, every change lands in the log, and S1/S2 are checked at the
//! instant of each change; the test scripts nodes, credentials, failures and delays.

use std::time::Duration;

use actix::ResponseFuture;
use forge_actors::{
    messages::{CommandError, CommandFailed, CommandResult},
    ports::{ApiErrorKind, LeaseSnapshot},
};
use tokio::time::Instant;

use super::{Did, Entry, Fleet, Inner};

impl Fleet {
    // === the model ===

    fn push(inner: &mut Inner, pod: &str, did: Did, ok: bool) {
        let seq = inner.log.len();
        inner.log.push(Entry {
            seq,
            at: Instant::now(),
            pod: pod.to_string(),
            did,
            ok,
        });
    }

    /// Sets `pod`'s forging flag, logging a change and checking S1 at this instant.
    fn set_forging(inner: &mut Inner, pod: &str, forging: bool) {
        let node = inner.nodes.get_mut(pod).expect("known pod");
        if node.forging == forging {
            return;
        }
        node.forging = forging;
        Self::push(inner, pod, Did::Forging(forging), true);
        let forgers = Self::forgers_of(inner);
        if forgers.len() > 1 {
            let seq = inner.log.len() - 1;
            inner
                .violations
                .push(format!("S1: {forgers:?} forge at once (log #{seq})"));
        }
    }

    pub(super) fn forgers_of(inner: &Inner) -> Vec<String> {
        inner
            .nodes
            .iter()
            .filter(|(_, n)| n.forging)
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn others_forging(inner: &Inner, pod: &str) -> Vec<String> {
        Self::forgers_of(inner).into_iter().filter(|p| p != pod).collect()
    }

    /// A command reached `pod`'s stand-in: apply it to the fake node and answer.
    pub(super) fn command(&self, pod: &str, did: Did) -> CommandResult {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(n) = inner.fail_next.get_mut(&(pod.to_string(), did.key()))
            && *n > 0
        {
            *n -= 1;
            Self::push(inner, pod, did, false);
            return Err(CommandFailed::new(ApiErrorKind::Server, "scripted failure"));
        }
        let node = inner.nodes.get(pod).cloned().expect("known pod");
        let result = match &did {
            Did::Install if !node.sources_valid => Err(CommandFailed::new(
                CommandError::InvalidCredentials,
                "source credentials are invalid",
            )),
            Did::Install => {
                // Boot credentials for a node that is down and starts non-producing cannot
                // make it forge; any other install is a step towards forging.
                let boot = !node.up && node.starts_non_producing;
                let others = Self::others_forging(inner, pod);
                if !boot && !others.is_empty() {
                    inner.violations.push(format!(
                        "S2: {pod} got Install (log #{}) while {others:?} still forge",
                        inner.log.len()
                    ));
                }
                inner.nodes.get_mut(pod).expect("known pod").files = true;
                Ok(())
            }
            Did::Remove => {
                inner.nodes.get_mut(pod).expect("known pod").files = false;
                Ok(())
            }
            Did::Reload(_) if !node.up => Err(CommandFailed::new(
                CommandError::NoNode,
                "no node process to signal",
            )),
            Did::Reload(_) => Ok(()),
            _ => Ok(()),
        };
        Self::push(inner, pod, did.clone(), result.is_ok());
        if matches!(did, Did::Reload(_)) && node.up {
            let files = inner.nodes[pod].files;
            Self::set_forging(inner, pod, files);
        }
        result
    }

    /// A write of `pod`'s elector landed: log a holder change and check S2 at this instant.
    pub(super) fn lease_written(&self, pod: &str, snapshot: &LeaseSnapshot) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let holder = snapshot.record.holder().map(str::to_string);
        if holder == inner.holder {
            return;
        }
        inner.holder = holder.clone();
        Self::push(inner, pod, Did::Holder(holder.clone()), true);
        let seq = inner.log.len() - 1;
        match holder {
            Some(h) => {
                let others = Self::others_forging(inner, &h);
                if !others.is_empty() {
                    inner.violations.push(format!(
                        "S2: the Lease passed to {h} (log #{seq}) while {others:?} still forge"
                    ));
                }
            }
            None => {
                if inner.nodes[pod].forging {
                    inner
                        .violations
                        .push(format!("S2: {pod} released the Lease (log #{seq}) while forging"));
                }
            }
        }
    }

    /// The test starts (`true`) or stops `pod`'s node process. A node that starts with its
    /// files present forges at once, unless it starts non-producing.
    pub fn set_node(&self, pod: &str, up: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let node = inner.nodes.get_mut(pod).expect("known pod");
        node.up = up;
        let forging = up && node.files && !node.starts_non_producing;
        Self::push(inner, pod, if up { Did::NodeUp } else { Did::NodeDown }, true);
        Self::set_forging(inner, pod, forging);
    }

    /// `pod`'s node process starts forging whatever its files are now: it was started without
    /// `--start-as-non-producing-node` while files were present, and read them then (F12).
    pub fn start_node_forging(&self, pod: &str) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").up = true;
        Self::push(inner, pod, Did::NodeUp, true);
        Self::set_forging(inner, pod, true);
    }

    /// The guard's fence on `pod`'s node: credentials removed, forging off.
    pub fn fence(&self, pod: &str) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").files = false;
        Self::push(inner, pod, Did::Remove, true);
        Self::set_forging(inner, pod, false);
    }

    /// Makes `pod`'s source credentials valid or not (the stand-in refuses to install an
    /// invalid set).
    pub fn set_sources_valid(&self, pod: &str, valid: bool) {
        self.lock().nodes.get_mut(pod).expect("known pod").sources_valid = valid;
    }

    /// The next `n` commands like `did` (by kind) to `pod` fail.
    pub fn fail_next(&self, pod: &str, did: &Did, n: u32) {
        self.lock().fail_next.insert((pod.to_string(), did.key()), n);
    }

    /// The next command like `did` to `pod` takes `delay` to be carried out and answered.
    pub fn delay_next(&self, pod: &str, did: &Did, delay: Duration) {
        self.lock().delay_next.insert((pod.to_string(), did.key()), delay);
    }

    /// Carries out `did` for `pod` after its scripted delay, if any.
    pub(super) fn command_later(&self, pod: &'static str, did: Did) -> ResponseFuture<CommandResult> {
        let delay = self.lock().delay_next.remove(&(pod.to_string(), did.key()));
        let fleet = self.clone();
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            fleet.command(pod, did)
        })
    }
}
