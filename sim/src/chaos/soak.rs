//! The running soak: the worlds (one per region) and their links, the injection of each fault
//! and its healing, kubelet's part (starting again what died) and the final stop; and the
//! Secret update a credential rotation writes ([`rotate`]).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{BOOT_WAIT, ChaosError, ChaosOptions, FaultKind, FaultPlan, Target, say};
use crate::creds::{TestCredentials, mainnet_kes_period_now, write_credentials};
use crate::process::is_alive;
use crate::timeline::{EventKind, TimelineEvent, TimelineWriter, forging_at_end, unix_now_ns};
use crate::world::{LeaseRecord, RegionLinks, World, WorldOptions, start_regions};

/// The running worlds (one per region) and their links.
pub(super) struct Soak {
    worlds: Vec<World>,
    links: RegionLinks,
    region_names: Vec<String>,
    pub(super) started: Instant,
    rotations: u64,
    /// Node restarts that found no boot credentials within [`BOOT_WAIT`].
    pub(super) late_boots: u64,
}

impl Soak {
    pub(super) async fn start(options: &ChaosOptions, o: &WorldOptions) -> Result<Soak, ChaosError> {
        let (worlds, links, region_names) = if options.regions == 1 {
            (
                vec![World::start(o.clone()).await?],
                RegionLinks::new(),
                vec!["pod".to_owned()],
            )
        } else {
            let regions = [("east", 1u32), ("west", 2u32)];
            let (worlds, links) = start_regions(
                &regions,
                |r| {
                    let mut w = o.clone();
                    w.seed = o.seed.wrapping_add(if r == "east" { 0 } else { 1_000_000 });
                    w
                },
                |_| Vec::new(),
            )
            .await?;
            (
                worlds,
                links,
                regions.iter().map(|(r, _)| (*r).to_owned()).collect(),
            )
        };
        Ok(Soak {
            worlds,
            links,
            region_names,
            started: Instant::now(),
            rotations: 1,
            late_boots: 0,
        })
    }

    fn events(&self) -> Vec<TimelineEvent> {
        let mut all = Vec::new();
        for w in &self.worlds {
            match w.try_events() {
                Ok(e) => all.extend(e),
                Err(e) => say(&format!("a timeline cannot be read: {e}")),
            }
        }
        all
    }

    pub(super) fn forging_now(&self) -> Vec<String> {
        forging_at_end(&self.events())
    }

    /// `(region, pod index)` of a pod name.
    fn locate(&self, name: &str) -> Option<(usize, usize)> {
        self.worlds
            .iter()
            .enumerate()
            .find_map(|(r, w)| w.index_of(name).map(|i| (r, i)))
    }

    pub(super) async fn wait_single_forger(&self, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.forging_now().len() == 1 {
                return Some(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Resolves the target and injects the fault's first half (the kill, the stop, the
    /// partition). Returns who was hit, whether the fault was injected, whether the pod hit
    /// forged, and when.
    pub(super) async fn inject(&mut self, f: &FaultPlan) -> (String, bool, bool, u64) {
        let forging = self.forging_now();
        let (r, i) = match f.target {
            Target::Pod { region, index } => (region.min(self.worlds.len() - 1), index),
            Target::Leader { fallback } => forging
                .first()
                .and_then(|n| self.locate(n))
                .unwrap_or((0, fallback)),
        };
        let name = self.worlds[r].pods[i].name.clone();
        let hit_forger = forging.contains(&name);
        let t0 = unix_now_ns();
        let w = &mut self.worlds[r];
        let result: Result<String, String> = match f.kind {
            FaultKind::SidecarKill => {
                w.signal_manager(i, Signal::SIGKILL);
                Ok(name.clone())
            }
            FaultKind::SidecarStop => {
                w.signal_manager(i, Signal::SIGSTOP);
                Ok(name.clone())
            }
            FaultKind::GuardKill => {
                w.kill_node(i);
                Ok(name.clone())
            }
            FaultKind::GuardStop => w
                .signal_guard(i, Signal::SIGSTOP)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::NodeKill => match w.node_process(i) {
                Some(p) if p.pid != 0 && is_alive(p.pid) => {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), Signal::SIGKILL);
                    // A killed node writes nothing: its death is recorded as soon as it is gone.
                    let t = Instant::now();
                    while is_alive(p.pid) && t.elapsed() < Duration::from_secs(5) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    match is_alive(p.pid) {
                        true => Err(format!("{name}: its node outlived SIGKILL for 5 s")),
                        false => {
                            record_exit(w, i, &p);
                            Ok(name.clone())
                        }
                    }
                }
                _ => Err(format!("{name}: no live node process")),
            },
            FaultKind::NodeStop => w
                .signal_node(i, Signal::SIGSTOP)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::NodeRestart | FaultKind::NodeSlowStart => w
                .signal_guard(i, Signal::SIGTERM)
                .map(|()| name.clone())
                .map_err(|e| e.to_string()),
            FaultKind::ApiBlackhole => {
                w.pods[i].proxy.handle().blackhole();
                Ok(name.clone())
            }
            FaultKind::ApiLatency => {
                w.pods[i].proxy.handle().latency(f.latency.0, f.latency.1);
                Ok(name.clone())
            }
            FaultKind::ApiRefuse => {
                let h = w.pods[i].proxy.handle();
                h.refuse();
                h.reset();
                Ok(name.clone())
            }
            FaultKind::WatchDrop => {
                w.pods[i].proxy.handle().reset();
                Ok(name.clone())
            }
            FaultKind::CredentialRotation => {
                self.rotations += 1;
                let counter = self.rotations;
                let mut failed = Vec::new();
                for w in &self.worlds {
                    for p in &w.pods {
                        if let Err(e) = rotate(&p.secrets(), counter) {
                            failed.push(format!("{}: {e}", p.name));
                        }
                    }
                }
                match failed.is_empty() {
                    true => Ok(format!("all pods (opcert counter {counter})")),
                    false => Err(failed.join("; ")),
                }
            }
            FaultKind::LinkCut => {
                let from = self.region_names[r].clone();
                let cut: Vec<String> = self
                    .links
                    .iter()
                    .filter(|((a, _), _)| *a == from)
                    .map(|((a, b), p)| {
                        p.handle().blackhole();
                        format!("{a}->{b}")
                    })
                    .collect();
                Ok(format!("link {}", cut.join(",")))
            }
        };
        match result {
            Ok(hit) => (hit, true, hit_forger, t0),
            Err(e) => {
                say(&format!("{} could not be injected: {e}", f.kind.name()));
                (format!("{name} (not injected: {e})"), false, hit_forger, t0)
            }
        }
    }

    /// Holds the fault for its duration, then undoes it (SIGCONT, pass) or starts again what
    /// it killed.
    pub(super) async fn heal(&mut self, f: &FaultPlan, hit: &str) {
        tokio::time::sleep(f.hold).await;
        let Some((r, i)) = self.locate(hit) else {
            if f.kind == FaultKind::LinkCut {
                for p in self.links.values() {
                    p.handle().pass();
                }
            }
            return;
        };
        let w = &mut self.worlds[r];
        match f.kind {
            FaultKind::SidecarStop => w.signal_manager(i, Signal::SIGCONT),
            FaultKind::GuardStop => {
                if let Err(e) = w.signal_guard(i, Signal::SIGCONT) {
                    say(&format!("SIGCONT to {hit}'s guard: {e}"));
                }
            }
            FaultKind::NodeStop => {
                if let Err(e) = w.signal_node(i, Signal::SIGCONT) {
                    say(&format!("SIGCONT to {hit}'s node: {e}"));
                }
            }
            FaultKind::ApiBlackhole | FaultKind::ApiLatency | FaultKind::ApiRefuse => {
                w.pods[i].proxy.handle().pass();
            }
            FaultKind::NodeSlowStart => {
                let normal = w.node_behaviour(i).clone();
                let mut slow = normal.clone();
                slow.handler_delay = f.slow_start;
                reap_node(w, i, Duration::from_secs(10)).await;
                w.set_node_behaviour(i, slow);
                let late = restart_node(w, i).await;
                w.set_node_behaviour(i, normal);
                self.late_boots += u64::from(late);
            }
            _ => {}
        }
        // Whatever died comes back, as kubelet would restart it.
        self.supervise().await;
    }

    /// Restarts every manager and node that is not running (after reaping it and recording a
    /// dead node's exit in its timeline).
    async fn supervise(&mut self) {
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                let manager_down = match w.pods[i].manager.as_mut() {
                    None => true,
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                };
                if manager_down {
                    w.pods[i].manager = None;
                    say(&format!("{}: starting its sidecar again", w.pods[i].name));
                    if let Err(e) = w.start_manager(i).await {
                        say(&format!("{}: {e}", w.pods[i].name));
                    }
                }
                let node_down = match w.pods[i].node.as_mut() {
                    None => true,
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                };
                if node_down {
                    reap_node(w, i, Duration::from_secs(10)).await;
                    self.late_boots += u64::from(restart_node(w, i).await);
                }
            }
        }
    }

    /// Waits until exactly one node forges and every process runs (restarting what died);
    /// each node restart since `late_from` that waited in vain for boot credentials extends
    /// the wait by [`BOOT_WAIT`].
    pub(super) async fn recover(&mut self, within: Duration, late_from: u64) -> Option<()> {
        let t = Instant::now();
        let late = |s: &Self| BOOT_WAIT * u32::try_from(s.late_boots - late_from).unwrap_or(u32::MAX);
        while t.elapsed() < within + late(self) {
            self.supervise().await;
            if self.forging_now().len() == 1 {
                return Some(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Stops every process as a pod deletion would, one pod after the other: SIGTERM to the
    /// sidecar (it hands over), then to the guard (forwarded to the node). The events are read
    /// after, so the shutdown is judged too; then the worlds are removed. Returns the events,
    /// the Lease states seen, and when the Lease log was taken (forging after that instant is
    /// not checked against it).
    pub(super) async fn stop(mut self) -> (Vec<TimelineEvent>, Vec<LeaseRecord>, u64) {
        for p in self.links.values() {
            p.handle().pass();
        }
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                // A stopped process would not take its SIGTERM.
                w.signal_manager(i, Signal::SIGCONT);
                let _ = w.signal_guard(i, Signal::SIGCONT);
                let _ = w.signal_node(i, Signal::SIGCONT);
            }
        }
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                w.signal_manager(i, Signal::SIGTERM);
                if w.wait_manager_exit(i, Duration::from_secs(15)).await.is_none() {
                    say(&format!(
                        "{}: its sidecar did not exit within 15 s of SIGTERM",
                        w.pods[i].name
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Every region has a Lease of the same name in its own API server: keep them apart.
        let mut leases = Vec::new();
        for (w, region) in self.worlds.iter().zip(&self.region_names) {
            leases.extend(w.lease_history().into_iter().map(|mut l| {
                l.lease = format!("{region}/{}", l.lease);
                l
            }));
        }
        let leases_taken = unix_now_ns();
        for w in &mut self.worlds {
            for i in 0..w.pods.len() {
                let _ = w.signal_guard(i, Signal::SIGTERM);
                reap_node(w, i, Duration::from_secs(10)).await;
            }
        }
        for w in &mut self.worlds {
            w.stop_processes();
        }
        let events = self.events();
        for w in &mut self.worlds {
            w.stop();
        }
        (events, leases, leases_taken)
    }
}

/// Waits (bounded) until pod `i`'s guard and node are gone, reaps the guard, and writes the
/// node's `exit` line if the node died without one (SIGKILL). A node that outlives the wait is
/// killed (the world's [`World::kill_node`]).
async fn reap_node(w: &mut World, i: usize, within: Duration) {
    let node = w.node_process(i);
    let t = Instant::now();
    loop {
        let guard_gone = match w.pods[i].node.as_mut() {
            None => true,
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
        };
        let node_gone = node.as_ref().is_none_or(|p| p.pid == 0 || !is_alive(p.pid));
        if guard_gone && node_gone {
            w.pods[i].node = None;
            break;
        }
        if t.elapsed() >= within {
            say(&format!(
                "{}: its node did not exit within {within:?}: SIGKILL",
                w.pods[i].name
            ));
            w.kill_node(i);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(p) = node {
        record_exit(w, i, &p);
    }
}

/// Appends node process `p`'s `exit` line to pod `i`'s timeline unless it wrote one itself
/// (a SIGKILLed node cannot). Only for a process known to be gone.
fn record_exit(w: &World, i: usize, p: &crate::timeline::ProcessId) {
    let exited = w
        .events()
        .iter()
        .any(|e| e.event == EventKind::Exit && e.process() == *p);
    if !exited {
        let event =
            TimelineEvent::now_for(p, EventKind::Exit, "killed (SIGKILL, recorded by the chaos soak)");
        if let Err(e) = TimelineWriter::open(&w.pods[i].timeline).and_then(|mut t| t.append(&event)) {
            say(&format!(
                "{}: cannot record its node's death: {e}",
                w.pods[i].name
            ));
        }
    }
}

/// Starts pod `i`'s node again once its sidecar has written the boot credentials (bounded:
/// without them it starts anyway, non-producing).
/// Returns true when the boot credentials were still missing after [`BOOT_WAIT`].
async fn restart_node(w: &mut World, i: usize) -> bool {
    let kes = w.pods[i].target().join("kes.skey");
    let late = crate::world::wait_for(BOOT_WAIT, || {
        let kes = kes.clone();
        async move { kes.exists() }
    })
    .await
    .is_err();
    if late {
        say(&format!(
            "{}: no boot credentials {} s after its node died; starting it anyway (a kubelet back-off)",
            w.pods[i].name,
            BOOT_WAIT.as_secs()
        ));
    }
    if let Err(e) = w.start_node(i).await {
        say(&format!("{}: restarting its node: {e}", w.pods[i].name));
    }
    late
}

/// Writes credential set `counter` into `dir` the way kubelet updates a Secret volume: the new
/// files in a fresh directory, then one atomic rename of the `..data` symlink the visible names
/// point through. The first call turns the plain files the world wrote into that layout.
pub fn rotate(dir: &std::path::Path, counter: u64) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    const FILES: [&str; 3] = ["kes.skey", "vrf.skey", "node.cert"];
    let version = dir.join(format!("..v{counter}"));
    std::fs::create_dir_all(&version)?;
    let creds = TestCredentials::new(counter, mainnet_kes_period_now());
    write_credentials(&version, &creds).map_err(std::io::Error::other)?;
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(format!("..v{counter}"), &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    for f in FILES {
        let visible = dir.join(f);
        let is_link = std::fs::symlink_metadata(&visible).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            let tmp = dir.join(format!(".{f}.link"));
            let _ = std::fs::remove_file(&tmp);
            symlink(format!("..data/{f}"), &tmp)?;
            std::fs::rename(&tmp, &visible)?;
        }
    }
    // The previous version is no longer referenced.
    if counter > 1 {
        let _ = std::fs::remove_dir_all(dir.join(format!("..v{}", counter - 1)));
    }
    Ok(())
}
