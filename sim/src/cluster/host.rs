//! What the cluster does to the host: setup commands (also inside the node's network
//! namespace), mounts and cgroups, the network namespace and its veth pair, and the cleanup of
//! what a killed cluster left.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    CGROUP_PARENT, CONTAINER_LOGS, ClusterError, HOST_ADDR, HOST_VETH, NETNS, NODE_ADDR, NODE_VETH, POD_CIDR,
    POD_LOGS, io,
};

/// This process's effective user id (from /proc; `u32::MAX` if unreadable).
pub(super) fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2)?.parse().ok()
        })
        .unwrap_or(u32::MAX)
}

/// Runs a setup command to completion; a failure names it with its standard error.
pub(super) fn run(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {program}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            what: format!("{program} {}", args.join(" ")),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        })
    }
}

/// Runs `program args` inside the node's network namespace.
pub(super) fn run_in_ns(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let ns = format!("--net=/run/netns/{NETNS}");
    let mut full = vec![ns.as_str(), "--", program];
    full.extend_from_slice(args);
    run("nsenter", &full)
}

pub(super) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Mount points at or under `dir`, deepest (latest) first, from this process's mountinfo.
pub(super) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes spaces and the like as octal; our paths have none.
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    out.reverse();
    out
}

pub(super) fn dir_entries(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup v1 hierarchies mounted under /sys/fs/cgroup (or the v2 root).
pub(super) fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(base)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    if roots.is_empty() || base.join("cgroup.controllers").exists() {
        roots = vec![base.to_owned()];
    }
    roots
}

/// Cgroup directories (in any hierarchy) whose name is one of `ids`, deepest first.
pub(super) fn cgroups_named(ids: &BTreeSet<String>) -> Vec<PathBuf> {
    fn walk(dir: &Path, ids: &BTreeSet<String>, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            walk(&p, ids, depth + 1, out);
            if ids.contains(e.file_name().to_string_lossy().as_ref()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if ids.is_empty() {
        return out;
    }
    for root in cgroup_roots() {
        walk(&root, ids, 0, &mut out);
    }
    out
}

pub(super) fn setup_network() -> Result<(), ClusterError> {
    run("ip", &["netns", "add", NETNS])?;
    run(
        "ip",
        &[
            "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH, "netns", NETNS,
        ],
    )?;
    run(
        "ip",
        &["addr", "add", &format!("{HOST_ADDR}/30"), "dev", HOST_VETH],
    )?;
    run("ip", &["link", "set", HOST_VETH, "up"])?;
    run(
        "ip",
        &[
            "route",
            "add",
            POD_CIDR,
            "via",
            &NODE_ADDR.to_string(),
            "dev",
            HOST_VETH,
        ],
    )?;
    run_in_ns("ip", &["link", "set", "lo", "up"])?;
    run_in_ns(
        "ip",
        &["addr", "add", &format!("{NODE_ADDR}/30"), "dev", NODE_VETH],
    )?;
    run_in_ns("ip", &["link", "set", NODE_VETH, "up"])?;
    run_in_ns("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
    Ok(())
}

pub(super) fn teardown_network() {
    // Deleting the namespace deletes its devices (the bridge, the pods' veths, the node's end
    // of our pair and with it the host's end and its route) and every iptables rule in it.
    let _ = run("ip", &["netns", "delete", NETNS]);
    let _ = run("ip", &["link", "delete", HOST_VETH]);
}

/// What a cluster that was killed (SIGKILL) left: its containers' shims and processes, its
/// mounts, its network namespace. Called only while holding the lock.
pub(super) fn clean_stale() {
    for d in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.starts_with("forge-sim-cluster-") {
            eprintln!(
                "forge-sim cluster: cleaning up {} left by a cluster that was killed",
                d.path().display()
            );
            // The containers: their ids are the task directories containerd kept; their
            // processes are the members of the cgroups of those names.
            let ids = dir_entries(
                &d.path()
                    .join("containerd/state/io.containerd.runtime.v2.task/k8s.io")
                    .to_string_lossy(),
            );
            let cgroups = cgroups_named(&ids);
            for cg in &cgroups {
                for pid in std::fs::read_to_string(cg.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            // containerd's shims outlive it; their command lines name this directory.
            kill_processes_mentioning(&d.path());
            std::thread::sleep(Duration::from_millis(200));
            for cg in &cgroups {
                let _ = std::fs::remove_dir(cg);
            }
            for root in cgroup_roots() {
                // Only if empty: another containerd's containers would keep it.
                let _ = std::fs::remove_dir(root.join(CGROUP_PARENT));
            }
            // The pods' log directories are named NAMESPACE_NAME_UID; the UIDs are the
            // kubelet's pod directories.
            let uids = dir_entries(&d.path().join("kubelet/root/pods").to_string_lossy());
            for e in dir_entries(POD_LOGS) {
                if uids.iter().any(|u| e.ends_with(&format!("_{u}"))) {
                    let _ = std::fs::remove_dir_all(Path::new(POD_LOGS).join(&e));
                }
            }
            for e in dir_entries(CONTAINER_LOGS) {
                let link = Path::new(CONTAINER_LOGS).join(&e);
                if std::fs::read_link(&link)
                    .is_ok_and(|t| uids.iter().any(|u| t.to_string_lossy().contains(u.as_str())))
                {
                    let _ = std::fs::remove_file(&link);
                }
            }
            for m in mounts_under(&d.path()) {
                let _ = run("umount", &["-l", &m.to_string_lossy()]);
            }
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
    teardown_network();
}

/// SIGKILLs every process whose command line mentions `dir` (a stale cluster's containerd shims
/// and the containers they run are found by their children).
fn kill_processes_mentioning(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut shims = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            shims.push(pid);
        }
    }
    for pid in shims {
        if let Ok(p) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_a_directory_come_deepest_first_and_exclude_neighbours() {
        // This process's own mounts: none under a fresh temporary directory.
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(mounts_under(dir.path()).is_empty());
        // /proc is mounted; a path that is only a string prefix of it is not its parent.
        assert!(mounts_under(Path::new("/pro")).is_empty());
        assert!(!mounts_under(Path::new("/proc")).is_empty());
    }
}
