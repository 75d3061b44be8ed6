//! The cardano-node simulator, in-process and as a process (`forge-sim node`), and the timeline
//! judge fed by real node timelines.
//!
//! This file holds what the tests share: a temporary directory with valid credentials and one
//! timeline ([`World`]), the bounded waits and the control-socket client. The tests are in
//! [`lifecycle`] (credentials at start and on SIGHUP, the replay, the socket), [`metrics`] (the
//! metrics endpoint and the served tip), [`realism`] (the signal handler's delay, reload latency,
//! the stop grace, an early socket close, a stall), [`judge`] (the timeline judge on real
//! timelines) and [`process`] (the `forge-sim` binary run as a process).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_sim::creds::{CredentialPaths, write_test_credentials};
use forge_sim::node::NodeOptions;
use forge_sim::timeline::{EventKind, TimelineEvent, read_file};
use tempfile::TempDir;

mod judge;
mod lifecycle;
mod metrics;
mod process;
mod realism;

const T: Duration = Duration::from_secs(5);

struct World {
    dir: TempDir,
    creds: CredentialPaths,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = write_test_credentials(dir.path(), 1, 0).expect("credentials");
        World { dir, creds }
    }

    fn opts(&self, name: &str) -> NodeOptions {
        NodeOptions::non_producing(
            name,
            self.dir.path().join(format!("{name}.socket")),
            &self.creds,
            self.timeline(),
        )
    }

    fn timeline(&self) -> PathBuf {
        self.dir.path().join("timeline.jsonl")
    }

    fn events(&self, node: &str) -> Vec<EventKind> {
        self.lines(node).into_iter().map(|e| e.event).collect()
    }

    fn lines(&self, node: &str) -> Vec<TimelineEvent> {
        read_file(&self.timeline())
            .expect("timeline")
            .into_iter()
            .filter(|e| e.node == node)
            .collect()
    }

    /// The time of the `n`-th (0-based) event of `kind` of `node`, in ns.
    fn at(&self, node: &str, kind: EventKind, n: usize) -> u64 {
        self.lines(node)
            .iter()
            .filter(|e| e.event == kind)
            .nth(n)
            .unwrap_or_else(|| panic!("no {kind:?} #{n} of {node}: {:?}", self.events(node)))
            .t_unix_ns
    }

    fn remove_creds(&self) {
        for f in self.creds.all() {
            std::fs::remove_file(f).expect("remove");
        }
    }
}

/// Waits (bounded, without blocking the runtime) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ms_between(a_ns: u64, b_ns: u64) -> f64 {
    (b_ns as f64 - a_ns as f64) / 1e6
}

/// Sends one line on a control socket and returns the answer.
async fn control(path: &Path, line: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let s = tokio::net::UnixStream::connect(path)
        .await
        .expect("control connect");
    let (r, mut wr) = s.into_split();
    wr.write_all(format!("{line}\n").as_bytes()).await.expect("send");
    let mut answer = String::new();
    tokio::io::BufReader::new(r)
        .read_line(&mut answer)
        .await
        .expect("answer");
    answer.trim().to_owned()
}
