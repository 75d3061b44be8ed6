//! The fleet's log and invariants (the `support` module docs): every call at a tapped port and
//! every change of the world lands in the log, S1/S2 are checked at the instant of each change,
//! and the test scripts failures and delays of the calls.

use std::time::Duration;

use forge_actors::ports::LeaseSnapshot;
use tokio::time::Instant;

use super::{Did, Entry, Fleet, Inner, NodeView};

impl Fleet {
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

    pub(super) fn add_node(&self, pod: &str, starts_non_producing: bool) {
        self.lock().nodes.insert(
            pod.to_string(),
            NodeView {
                starts_non_producing,
                ..NodeView::default()
            },
        );
    }

    /// `pod`'s node started or stopped forging (the model node tells us at the instant): log it
    /// and check S1.
    pub(super) fn forging_changed(&self, pod: &str, forging: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").forging = forging;
        Self::push(inner, pod, Did::Forging(forging), true);
        let forgers = Self::forgers_of(inner);
        if forgers.len() > 1 {
            let seq = inner.log.len() - 1;
            inner
                .violations
                .push(format!("S1: {forgers:?} forge at once (log #{seq})"));
        }
    }

    /// The test started or stopped `pod`'s node process.
    pub(super) fn node_changed(&self, pod: &str, up: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.nodes.get_mut(pod).expect("known pod").up = up;
        Self::push(inner, pod, if up { Did::NodeUp } else { Did::NodeDown }, true);
    }

    /// A call is about to reach `pod`'s port: the scripted delay before it takes effect, if
    /// any (taken once).
    pub(super) fn delay_of(&self, pod: &str, did: &Did) -> Option<Duration> {
        self.lock().delay_next.remove(&(pod.to_string(), did.key()))
    }

    /// A call reaches `pod`'s port: whether it is scripted to fail (then it is logged as
    /// failed and changes nothing). Otherwise it is logged when `ok` reports how it went,
    /// through [`Fleet::called`].
    pub(super) fn fails(&self, pod: &str, did: &Did) -> bool {
        let mut inner = self.lock();
        if let Some(n) = inner.fail_next.get_mut(&(pod.to_string(), did.key()))
            && *n > 0
        {
            *n -= 1;
            Self::push(&mut inner, pod, did.clone(), false);
            return true;
        }
        false
    }

    /// A call reached `pod`'s port and was carried out (`ok`) or refused: log it, checking S2
    /// for an install.
    pub(super) fn called(&self, pod: &str, did: Did, ok: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if did == Did::Install && ok {
            // Boot credentials for a node that is down and starts non-producing cannot make it
            // forge; any other install is a step towards forging.
            let node = &inner.nodes[pod];
            let boot = !node.up && node.starts_non_producing;
            let others = Self::others_forging(inner, pod);
            if !boot && !others.is_empty() {
                inner.violations.push(format!(
                    "S2: {pod} installed credentials (log #{}) while {others:?} still forge",
                    inner.log.len()
                ));
            }
        }
        Self::push(inner, pod, did, ok);
    }

    /// A write of `pod`'s elector landed: log a holder change and check S2 at this instant.
    pub(super) fn lease_written(&self, pod: &str, snapshot: &LeaseSnapshot) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let holder = snapshot
            .record
            .holder()
            .filter(|h| !h.is_empty())
            .map(str::to_string);
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

    // === scripting ===

    /// The next `n` calls like `did` (by kind) by `pod` fail.
    pub fn fail_next(&self, pod: &str, did: &Did, n: u32) {
        self.lock().fail_next.insert((pod.to_string(), did.key()), n);
    }

    /// The next call like `did` by `pod` takes `delay` to be carried out and answered.
    pub fn delay_next(&self, pod: &str, did: &Did, delay: Duration) {
        self.lock().delay_next.insert((pod.to_string(), did.key()), delay);
    }
}
