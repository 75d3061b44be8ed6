//! How a simulated node is run ([`NodeOptions`]) and how it behaves where cardano-node is slow
//! or rough ([`NodeBehaviour`]), with the latencies it draws ([`Latency`]) from a seeded
//! generator ([`SplitMix64`]).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[cfg(doc)]
use super::{NodeHandle, Tip};
use crate::creds::CredentialPaths;

/// How to run one simulated node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's name in the timeline and log lines.
    pub name: String,
    /// The node socket path.
    pub socket: PathBuf,
    /// `--shelley-kes-key`.
    pub kes: PathBuf,
    /// `--shelley-vrf-key`.
    pub vrf: PathBuf,
    /// `--shelley-operational-certificate`.
    pub opcert: PathBuf,
    /// Timeline file (JSON lines, appended).
    pub timeline: PathBuf,
    /// `--start-as-non-producing-node`.
    pub start_as_non_producing: bool,
    /// Simulated ledger replay time, during which SIGHUP is lost.
    pub replay: Duration,
    /// Serve `cardano_node_metrics_forging_enabled` on 127.0.0.1 at this port (0: a free port).
    pub metrics_port: Option<u16>,
    /// Also print log lines on stdout (the CLI does; in-process tests read [`NodeHandle::log`]).
    pub echo_stdout: bool,
}

impl NodeOptions {
    /// A node named `name` on `socket`, started with `--start-as-non-producing-node` on the
    /// credential files `creds`, writing `timeline`: no ledger replay, no metrics endpoint, its
    /// log kept in memory only (how an in-process test runs one).
    pub fn non_producing(
        name: impl Into<String>,
        socket: impl Into<PathBuf>,
        creds: &CredentialPaths,
        timeline: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            socket: socket.into(),
            kes: creds.kes.clone(),
            vrf: creds.vrf.clone(),
            opcert: creds.opcert.clone(),
            timeline: timeline.into(),
            start_as_non_producing: true,
            replay: Duration::ZERO,
            metrics_port: None,
            echo_stdout: false,
        }
    }
}

/// How the node behaves where cardano-node is slow or rough (all off by default: the node then
/// behaves as the simple simulator always did). See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeBehaviour {
    /// SIGHUP-to-effect latency of a reload, drawn per reload.
    pub reload: Latency,
    /// Whether reloads are applied one at a time, in order, or each on its own as cardano-node
    /// handles every SIGHUP (see [`ReloadOrder`]).
    pub reload_order: ReloadOrder,
    /// Seed of the generator the latencies are drawn from (the same seed, the same draws).
    pub seed: u64,
    /// Time from start until the SIGHUP handler is installed; a SIGHUP before kills the node.
    /// The replay begins after it.
    pub handler_delay: Duration,
    /// After SIGTERM/SIGINT, forging goes on this long before it stops and the node exits.
    pub stop_grace: Duration,
    /// Close the socket (and remove its file) at SIGTERM, before the grace, not at the exit.
    pub close_socket_early: bool,
    /// The listen backlog of the node socket (None: tokio's default, 1024). A small one makes a
    /// stalled node refuse connections soon.
    pub socket_backlog: Option<u32>,
    /// A Unix control socket taking one-line commands: `stall MS`, `lag MS`, `freeze`, `resume`
    /// (answered `ok`).
    pub control: Option<PathBuf>,
    /// The embedding process installs the real SIGHUP handler itself after `handler_delay` and
    /// then calls [`NodeHandle::handler_installed`] (the CLI does; in-process, leave it false).
    pub external_handler: bool,
    /// The chain tip starts this far behind the wall clock (see [`Tip`]).
    pub tip_lag: Duration,
    /// Listen on this TCP port (all addresses) once consensus has started, as cardano-node binds
    /// its node-to-node port only after the ledger replay (a readiness probe's target).
    pub listen_port: Option<u16>,
}

/// How the node handles a SIGHUP that arrives while an earlier reload is still under way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReloadOrder {
    /// One reload at a time, in order: a SIGHUP waits for the reload under way, and reads the
    /// credential files only when its turn comes (the kinder node).
    #[default]
    InOrder,
    /// Each SIGHUP is handled on its own at once, as cardano-node does (GHC runs every caught
    /// signal's handler in a new thread, and the node's handler takes no lock): it reads the
    /// credential files when it arrives and takes effect after its own latency, so a later
    /// SIGHUP's effect can come before an earlier one's, and the last effect wins.
    Concurrent,
}

impl ReloadOrder {
    /// The name in the CLI and in the `start` line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InOrder => "in-order",
            Self::Concurrent => "concurrent",
        }
    }
}

impl FromStr for ReloadOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in-order" => Ok(Self::InOrder),
            "concurrent" => Ok(Self::Concurrent),
            _ => Err(format!("{s:?}: expected in-order or concurrent")),
        }
    }
}

/// A latency: a fixed value or a range `[min, max]` drawn uniformly. Parsed from milliseconds,
/// `"300"` or `"100..500"` (both ends included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// The shortest.
    pub min: Duration,
    /// The longest.
    pub max: Duration,
}

impl Latency {
    /// Always `d`.
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// Between `min_ms` and `max_ms` milliseconds.
    pub fn range_ms(min_ms: u64, max_ms: u64) -> Self {
        Self {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    /// Whether it is always 0.
    pub fn is_zero(&self) -> bool {
        self.max.is_zero()
    }

    /// One draw from `rng`.
    pub fn draw(&self, rng: &mut SplitMix64) -> Duration {
        let (lo, hi) = (self.min.as_nanos() as u64, self.max.as_nanos() as u64);
        if hi <= lo {
            return self.min;
        }
        Duration::from_nanos(lo + rng.next_u64() % (hi - lo + 1))
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min.as_millis())
        } else {
            write!(f, "{}..{}", self.min.as_millis(), self.max.as_millis())
        }
    }
}

impl FromStr for Latency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ms = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not milliseconds: expected N or A..B, e.g. 300 or 100..500"))
        };
        let l = match s.split_once("..") {
            Some((a, b)) => Latency::range_ms(ms(a)?, ms(b)?),
            None => Latency::fixed(Duration::from_millis(ms(s)?)),
        };
        if l.min > l.max {
            return Err(format!("{s:?}: the range ends before it starts"));
        }
        Ok(l)
    }
}

/// SplitMix64: a small, seedable, reproducible generator (no cryptographic use).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
