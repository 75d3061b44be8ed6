//! A whole single-cluster world on one machine: a real kube-apiserver, and per simulated pod a
//! fault proxy, a `forge-manager run` process and a cardano-node simulator process, each pod
//! with its own credential directories, socket and timeline. Used by the scenario tests and by
//! `forge-manager sim demo`; the merged timelines judge who forged when.
//!
//! Processes are started tied to the caller (they die with it) and stopped by [`World::stop`]
//! or `Drop`. Everything listens on 127.0.0.1 with free ports.
//!
//! `options` holds what to build, `setup` starts it (and several regions of it), `control`
//! starts, stops and disturbs pods' processes, `observe` reads what happened, and `checks` has the
//! small polling and HTTP helpers.

mod checks;
mod control;
mod observe;
mod options;
mod setup;

use std::{path::PathBuf, time::Instant};

use crate::apiserver::ApiServer;

pub use checks::{http_get, wait_for};
pub use observe::forging_without_lease;
pub use options::{Pod, REALISTIC_RELOAD_MS, WorldOptions};
pub use setup::{PreparedRegions, RegionLinks, prepare_regions, start_regions};

/// Errors building or driving the world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Starting the API server failed.
    #[error("API server: {0}")]
    ApiServer(#[from] crate::apiserver::ApiServerError),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> WorldError {
    WorldError::Other(e.to_string())
}

/// One observed state of a Lease (from the world's watch): from `acquire_unix_ns` (the
/// writer's own `acquireTime`) on, `holder` holds it ("" when released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The Lease's name.
    pub lease: String,
    /// Its holder ("" when vacant).
    pub holder: String,
    /// Its `acquireTime`, nanoseconds since the Unix epoch.
    pub acquire_unix_ns: u64,
    /// When the world saw it.
    pub observed_unix_ns: u64,
}

type LeaseLog = std::sync::Arc<std::sync::Mutex<Vec<LeaseRecord>>>;

/// The running world.
pub struct World {
    /// The real API server.
    pub apiserver: ApiServer,
    /// The pods, in order `pod-0`, `pod-1`, ...
    pub pods: Vec<Pod>,
    options: WorldOptions,
    /// Removed on drop unless `FORGE_KEEP_WORLD=1` (then its path is printed, for debugging).
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    started: Instant,
    leases: LeaseLog,
    lease_watch: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}
