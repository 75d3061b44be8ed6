//! [`MemoryTickets`]: the quorum participants' API servers behind the [`TicketApi`] port, in
//! memory: each participant's forge ticket served by a client of that participant's own
//! [`MemoryLeases`](super::MemoryLeases), participants that cannot be connected, and how often
//! each was.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

use futures::{FutureExt, future::BoxFuture};

use super::MemoryLeaseClient;
use crate::ports::{ApiError, LeaseApi, TicketApi};

struct Participant {
    ticket: MemoryLeaseClient,
    reachable: bool,
    connects: u64,
}

/// Quorum participants in memory, none at first; a participant not added cannot be connected.
/// Cheap to clone; clones share the participants.
#[derive(Clone, Default)]
pub struct MemoryTickets(Arc<Mutex<BTreeMap<String, Participant>>>);

impl MemoryTickets {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Participant>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Participant `name`, reachable, its ticket served by `ticket` (a client of its own
    /// `MemoryLeases`: the faults scripted on it show in the keeper's calls).
    pub fn add(&self, name: &str, ticket: MemoryLeaseClient) {
        let participant = Participant {
            ticket,
            reachable: true,
            connects: 0,
        };
        self.lock().insert(name.to_owned(), participant);
    }

    /// Whether participant `name` can be connected (new connections only: a ticket connected
    /// before answers as its client's faults say).
    pub fn set_reachable(&self, name: &str, reachable: bool) {
        if let Some(p) = self.lock().get_mut(name) {
            p.reachable = reachable;
        }
    }

    /// How many times participant `name` was connected (failed attempts too).
    pub fn connects(&self, name: &str) -> u64 {
        self.lock().get(name).map_or(0, |p| p.connects)
    }
}

impl TicketApi for MemoryTickets {
    fn connect(&self, participant: &str) -> BoxFuture<'static, Result<Arc<dyn LeaseApi>, ApiError>> {
        let answer = match self.lock().get_mut(participant) {
            Some(p) => {
                p.connects += 1;
                if p.reachable {
                    Ok(Arc::new(p.ticket.clone()) as Arc<dyn LeaseApi>)
                } else {
                    Err(ApiError::Transport(format!(
                        "participant {participant:?} unreachable"
                    )))
                }
            }
            None => Err(ApiError::Transport(format!(
                "{participant:?} is not a quorum participant"
            ))),
        };
        futures::future::ready(answer).boxed()
    }
}
