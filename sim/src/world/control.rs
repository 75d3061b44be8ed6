//! Driving a running world's processes: nodes and managers started, stopped, signalled and
//! disturbed, and the whole world stopped.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    node::{NodeBehaviour, ReloadOrder},
    process::{is_alive, spawn_tied, terminate, tied_command},
    timeline::{EventKind, ProcessId, TimelineEvent, TimelineWriter, Verdict, Window, read_files_live},
};

use super::*;

/// The node guard's reload room in this world (`--reload-room-ms`): the sidecar's own (its
/// default `STOP_GRACE`, 2 s, capped as the sidecar caps it at `RENEW_DEADLINE - RETRY_PERIOD`:
/// 1.5 s in the fast worlds) less what a start may take from the sidecar's plan to the guard on
/// a loaded test machine (0.5 s), so that the guard refuses only starts the sidecar would not
/// have sent (a fresh permit here leaves less than the guard's default 2 s).
fn guard_reload_room(o: &WorldOptions) -> Duration {
    const STOP_GRACE: Duration = Duration::from_secs(2);
    const DELIVERY: Duration = Duration::from_millis(500);
    STOP_GRACE
        .min(o.renew_deadline.saturating_sub(o.retry_period))
        .saturating_sub(DELIVERY)
}

impl World {
    /// The behaviour pod `i`'s node is started with.
    pub fn node_behaviour(&self, i: usize) -> &NodeBehaviour {
        self.options.node_overrides.get(&i).unwrap_or(&self.options.node)
    }

    /// Changes pod `i`'s node behaviour for its next start ([`World::start_node`]).
    pub fn set_node_behaviour(&mut self, i: usize, behaviour: NodeBehaviour) {
        self.options.node_overrides.insert(i, behaviour);
    }

    /// Starts (or restarts) pod `i`'s node simulator, non-producing, and waits for its socket.
    /// Refuses while its previous node (or guard) still runs: two nodes of one pod would hide
    /// each other.
    pub async fn start_node(&mut self, i: usize) -> Result<(), WorldError> {
        if let Some(child) = self.pods[i].node.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(other(format!(
                "{}: its node is still running (kill_node first)",
                self.pods[i].name
            )));
        }
        let b = self.node_behaviour(i).clone();
        let seed = match b.seed {
            0 => self.options.seed + 1000 * i as u64 + self.pods[i].node_starts,
            s => s,
        };
        self.pods[i].node_starts += 1;
        let pod = &self.pods[i];
        let t = pod.target();
        let mut cmd = tied_command(&self.options.exe);
        if self.options.guard {
            cmd.arg("guard")
                .arg("--socket")
                .arg(pod.guard_socket())
                .arg("--targets")
                .arg(crate::creds::guard_targets(&t))
                .arg("--reload-room-ms")
                .arg(guard_reload_room(&self.options).as_millis().to_string())
                .arg("--")
                .arg(&self.options.exe);
        }
        cmd.args([
            "sim",
            "node",
            "--name",
            &pod.name,
            "--start-as-non-producing-node",
        ])
        .arg("--socket")
        .arg(pod.socket())
        .args(crate::creds::node_flags(&t))
        .arg("--timeline")
        .arg(&pod.timeline)
        .arg("--replay-ms")
        .arg(self.options.replay.as_millis().to_string())
        .arg("--control")
        .arg(pod.node_control())
        .arg("--seed")
        .arg(seed.to_string());
        if !b.reload.is_zero() {
            cmd.arg("--reload-ms").arg(b.reload.to_string());
        }
        if b.reload_order != ReloadOrder::InOrder {
            cmd.arg("--reload-order").arg(b.reload_order.as_str());
        }
        if !b.handler_delay.is_zero() {
            cmd.arg("--handler-delay-ms")
                .arg(b.handler_delay.as_millis().to_string());
        }
        if !b.stop_grace.is_zero() {
            cmd.arg("--stop-grace-ms")
                .arg(b.stop_grace.as_millis().to_string());
        }
        if b.close_socket_early {
            cmd.arg("--close-socket-early");
        }
        if let Some(n) = b.socket_backlog {
            cmd.arg("--socket-backlog").arg(n.to_string());
        }
        if !b.tip_lag.is_zero() {
            cmd.arg("--tip-lag-ms").arg(b.tip_lag.as_millis().to_string());
        }
        if let Some(m) = pod.node_metrics {
            cmd.arg("--metrics-port").arg(m.port().to_string());
        }
        self.output(&mut cmd, &pod.dir.join("node.log"))?;
        let child = spawn_tied(cmd).map_err(other)?;
        let socket = pod.socket();
        let guard = self.options.guard.then(|| pod.guard_socket());
        self.pods[i].node = Some(child);
        wait_for(Duration::from_secs(10), || {
            let (socket, guard) = (socket.clone(), guard.clone());
            async move {
                tokio::net::UnixStream::connect(&socket).await.is_ok()
                    && match guard {
                        Some(g) => tokio::net::UnixStream::connect(&g).await.is_ok(),
                        None => true,
                    }
            }
        })
        .await
        .map(|_| ())
        .map_err(|_| {
            other(format!(
                "{}: node socket not accepting within 10 s",
                self.pods[i].name
            ))
        })
    }

    /// Sends `signal` to pod `i`'s manager (SIGTERM for a graceful stop, SIGKILL for a crash).
    pub fn signal_manager(&mut self, i: usize, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.pods[i].manager {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// Waits (bounded) for pod `i`'s manager to exit; returns its exit code.
    pub async fn wait_manager_exit(&mut self, i: usize, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.pods[i].manager.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.pods[i].manager = None;
                return status.code().or(Some(-1));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Kills pod `i`'s node simulator (SIGKILL: no clean exit; with the guard, the guard is
    /// killed and takes its node along). A killed node writes nothing, so its death is appended
    /// to its timeline here, with its process identity, once it is gone: it forges no more.
    /// If the node outlives its killed guard (no PDEATHSIG), nothing is written and the judge
    /// counts it as forging on.
    pub fn kill_node(&mut self, i: usize) {
        let node = self.node_process(i);
        if let Some(mut child) = self.pods[i].node.take() {
            let _ = child.kill();
            let _ = child.wait();
            let pod = &self.pods[i];
            let gone = match &node {
                Some(p) if p.pid != 0 => {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while is_alive(p.pid) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    !is_alive(p.pid)
                }
                _ => true,
            };
            if !gone {
                eprintln!(
                    "{}: its node outlived the kill; its death is not recorded",
                    pod.name
                );
                return;
            }
            let event = match &node {
                Some(p) => TimelineEvent::now_for(p, EventKind::Exit, "killed (SIGKILL)"),
                None => TimelineEvent::now(&pod.name, EventKind::Exit, "killed (SIGKILL)"),
            };
            if let Err(e) = TimelineWriter::open(&pod.timeline).and_then(|mut w| w.append(&event)) {
                eprintln!("{}: cannot record the kill in the timeline: {e}", pod.name);
            }
        }
    }

    /// Pod `i`'s latest node process, from its timeline (the last `start` line).
    pub fn node_process(&self, i: usize) -> Option<ProcessId> {
        let events = read_files_live(&[&self.pods[i].timeline]).ok()?;
        events
            .iter()
            .filter(|e| e.event == EventKind::Start && e.node == self.pods[i].name)
            .max_by_key(|e| e.t_unix_ns)
            .map(TimelineEvent::process)
    }

    /// Sends `signal` to pod `i`'s node process itself (found through its timeline, so it works
    /// under the guard too).
    pub fn signal_node(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<(), WorldError> {
        let p = self
            .node_process(i)
            .filter(|p| p.pid != 0)
            .ok_or_else(|| other(format!("{}: no node process in its timeline", self.pods[i].name)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), signal).map_err(|e| {
            other(format!(
                "{}: signalling node PID {}: {e}",
                self.pods[i].name, p.pid
            ))
        })
    }

    /// Sends `signal` to pod `i`'s node guard (SIGSTOP/SIGCONT to stall it while its node runs
    /// on). Only in a world with [`WorldOptions::guard`].
    pub fn signal_guard(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<(), WorldError> {
        if !self.options.guard {
            return Err(other(
                "signal_guard: this world runs no guards (WorldOptions::guard)",
            ));
        }
        let child = self.pods[i]
            .node
            .as_ref()
            .ok_or_else(|| other(format!("{}: its guard is not running", self.pods[i].name)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .map_err(|e| other(format!("{}: signalling its guard: {e}", self.pods[i].name)))
    }

    /// Hangs pod `i`'s node for `d` (its control socket: no signal handled, no connection
    /// accepted, forging unchanged; see [`NodeBehaviour::socket_backlog`] to make connections
    /// fail soon).
    pub async fn stall_node(&self, i: usize, d: Duration) -> Result<(), WorldError> {
        self.node_command(i, &format!("stall {}", d.as_millis())).await
    }

    /// Moves pod `i`'s node's chain tip (served on its metrics endpoint,
    /// [`WorldOptions::node_metrics`]): `lag MS` (runs that far behind), `freeze` (stops, so it
    /// falls further behind), `resume` (in sync again).
    pub async fn node_tip(&self, i: usize, command: &str) -> Result<(), WorldError> {
        self.node_command(i, command).await
    }

    /// Sends one line to pod `i`'s node control socket and expects `ok`.
    async fn node_command(&self, i: usize, line: &str) -> Result<(), WorldError> {
        let path = self.pods[i].node_control();
        let fut = async {
            let mut s = tokio::net::UnixStream::connect(&path).await?;
            s.write_all(format!("{line}\n").as_bytes()).await?;
            let mut answer = Vec::new();
            let mut buf = [0u8; 64];
            while !answer.contains(&b'\n') {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).trim().to_owned())
        };
        match tokio::time::timeout(Duration::from_secs(2), fut).await {
            Ok(Ok(a)) if a == "ok" => Ok(()),
            Ok(Ok(a)) => Err(other(format!("{}: {line:?} refused: {a}", self.pods[i].name))),
            Ok(Err(e)) => Err(other(format!("{}: {}: {e}", self.pods[i].name, path.display()))),
            Err(_) => Err(other(format!(
                "{}: no answer on {}",
                self.pods[i].name,
                path.display()
            ))),
        }
    }

    /// Makes pod `i`'s target credential directory read-only (or writable again): no file can
    /// be created, renamed or removed in it. Modes do not stop root, so as root the directory
    /// is also made immutable (`chattr +i`). Checked: fails if the directory stays writable.
    pub fn set_target_read_only(&mut self, i: usize, read_only: bool) -> Result<(), WorldError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.pods[i].target();
        let root = rustix::process::geteuid().is_root();
        let chattr = |flag: &str| -> Result<(), WorldError> {
            let out = std::process::Command::new("chattr")
                .arg(flag)
                .arg(&dir)
                .output()
                .map_err(|e| other(format!("chattr {flag} {}: {e}", dir.display())))?;
            if !out.status.success() {
                return Err(other(format!(
                    "chattr {flag} {}: {} (the file system must support the immutable flag)",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(())
        };
        if read_only {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).map_err(other)?;
            self.pods[i].target_read_only = true;
            if root {
                chattr("+i")?;
            }
            let probe = dir.join(".forge-sim-write-probe");
            if std::fs::write(&probe, b"").is_ok() {
                let _ = std::fs::remove_file(&probe);
                return Err(other(format!("{} is still writable", dir.display())));
            }
        } else {
            if root {
                chattr("-i")?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(other)?;
            self.pods[i].target_read_only = false;
        }
        Ok(())
    }

    /// Starts pod `i`'s manager again (after it exited or was killed; see
    /// [`World::restart_manager`]) and waits until it answers HTTP.
    pub async fn start_manager(&mut self, i: usize) -> Result<(), WorldError> {
        if let Some(child) = self.pods[i].manager.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(other(format!(
                "{}: its manager is still running",
                self.pods[i].name
            )));
        }
        let pod = &self.pods[i];
        let kubeconfig = self.apiserver.kubeconfig_via(&pod.name, pod.proxy.local_addr())?;
        let child = self.spawn_manager(pod, &kubeconfig)?;
        self.pods[i].manager = Some(child);
        let http = self.pods[i].http;
        wait_for(Duration::from_secs(20), || async {
            http_get(http, "/status").await.is_ok()
        })
        .await
        .map(|_| ())
        .map_err(|_| {
            other(format!(
                "{}: manager not answering within 20 s",
                self.pods[i].name
            ))
        })
    }

    /// Restarts only pod `i`'s manager: `signal` (SIGTERM for a graceful stop, SIGKILL for a
    /// crash), waits up to 10 s for it to exit (then SIGKILL), and starts a new one.
    pub async fn restart_manager(
        &mut self,
        i: usize,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), WorldError> {
        self.signal_manager(i, signal);
        if self.pods[i].manager.is_some()
            && self.wait_manager_exit(i, Duration::from_secs(10)).await.is_none()
            && let Some(mut m) = self.pods[i].manager.take()
        {
            let _ = m.kill();
            let _ = m.wait();
        }
        self.start_manager(i).await
    }

    /// Stops every manager (SIGTERM, then SIGKILL after a grace), node and the API server, and
    /// removes the world's files.
    pub fn stop(&mut self) {
        self.stop_processes();
        drop(self.dir.take());
    }

    /// [`World::stop_judged`] for a scenario test: panics unless the whole run, the shutdown
    /// included, had no overlap, never two forgers at one instant, and nobody forging at the
    /// end (as Kubernetes deletes pods: SIGTERM to each sidecar in turn, each handing over).
    pub fn assert_clean_shutdown(&mut self) {
        let v = self
            .stop_judged()
            .unwrap_or_else(|e| panic!("no verdict after the shutdown: {e}"));
        eprintln!("shutdown: verdict {v:?}");
        v.assert_clean_shutdown();
    }

    /// Stops everything as [`World::stop`] does and judges the whole run, the shutdown
    /// included (every sidecar gets SIGTERM in turn and hands over, then the nodes stop): the
    /// verdict over all timelines until now, or why there is none.
    pub fn stop_judged(&mut self) -> Result<Verdict, WorldError> {
        self.stop_processes();
        let verdict = self.try_verdict(Window::until_now());
        self.stop();
        verdict
    }

    /// As [`World::stop`], but keeps the files: the timelines can still be read, so the
    /// shutdown itself can be judged.
    pub fn stop_processes(&mut self) {
        if let Some(t) = self.lease_watch.take() {
            t.abort();
        }
        for i in 0..self.pods.len() {
            if self.pods[i].target_read_only
                && let Err(e) = self.set_target_read_only(i, false)
            {
                eprintln!("{}: {e}", self.pods[i].name);
            }
        }
        for pod in &mut self.pods {
            if let Some(mut m) = pod.manager.take() {
                terminate(&mut m, Duration::from_secs(6));
            }
            if let Some(mut n) = pod.node.take() {
                terminate(&mut n, Duration::from_secs(2));
            }
        }
        self.apiserver.stop();
    }
}
