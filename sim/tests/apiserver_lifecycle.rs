//! The launcher itself: start, readiness, kubeconfigs, several servers at once, and no stray
//! processes after stop.
mod common;

use std::time::Duration;

use forge_sim::apiserver::ApiServerOptions;
use forge_sim::process::{is_alive, rss_kib};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_run_at_once_and_leave_no_process_behind() {
    let opts = ApiServerOptions::with_identities(["pod-0", "pod-1"]);
    let (a, b) = tokio::join!(
        common::start_apiserver("server a", opts.clone()),
        common::start_apiserver("server b", opts)
    );
    let (Some(mut a), Some(b)) = (a, b) else { return };
    assert_ne!(a.addr(), b.addr());

    for server in [&a, &b] {
        for id in ["admin", "pod-0", "pod-1"] {
            let client = server.client(id).await.expect("client");
            let v = client.apiserver_version().await.expect("version");
            assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "20"));
        }
    }
    let (etcd, kas) = a.pids();
    let (etcd, kas) = (etcd.expect("etcd pid"), kas.expect("apiserver pid"));
    eprintln!(
        "RSS: kube-apiserver {} KiB, etcd {} KiB; start-to-ready {:?} and {:?}",
        rss_kib(kas).unwrap_or(0),
        rss_kib(etcd).unwrap_or(0),
        a.startup_time(),
        b.startup_time()
    );
    let dir = a.dir().expect("dir").to_owned();
    assert!(is_alive(etcd) && is_alive(kas));

    let t = std::time::Instant::now();
    a.stop();
    eprintln!("stop took {:?}", t.elapsed());
    assert!(!is_alive(etcd), "etcd {etcd} still running");
    assert!(!is_alive(kas), "kube-apiserver {kas} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());

    // b is unaffected by a's stop.
    b.client("admin")
        .await
        .expect("client")
        .apiserver_version()
        .await
        .expect("b still serves");
    let (etcd, kas) = b.pids();
    drop(b);
    assert!(!is_alive(etcd.expect("pid")) && !is_alive(kas.expect("pid")));
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// PIDs whose parent is `pid` (from /proc/*/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

#[test]
fn the_apiserver_binary_prints_kubeconfigs_and_stops_everything_on_sigterm() {
    use std::io::{BufRead, BufReader};
    if forge_sim::apiserver::skipped("the apiserver binary test") {
        return;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .args(["apiserver", "--identity", "pod-0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        out.read_line(&mut l).expect("read");
        lines.push(l.trim().to_owned());
    }
    let admin = lines[0]
        .strip_prefix("kubeconfig: ")
        .unwrap_or_else(|| panic!("first line: {lines:?}"));
    let pod = lines[1]
        .strip_prefix("kubeconfig.pod-0: ")
        .unwrap_or_else(|| panic!("second line: {lines:?}"));
    assert!(lines[2].starts_with("server: https://127.0.0.1:"), "{lines:?}");
    let cache = tempfile::tempdir().expect("cache");
    for kc in [admin, pod] {
        let (ok, stdout, stderr) =
            common::kubectl(std::path::Path::new(kc), cache.path(), &["get", "ns", "default"]);
        assert!(ok, "{stdout}{stderr}");
    }
    let kids = children_of(child.id());
    assert_eq!(kids.len(), 2, "etcd and kube-apiserver: {kids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    for k in kids {
        assert!(!is_alive(k), "child {k} survived");
    }
    assert!(
        !std::path::Path::new(admin).exists(),
        "temporary directory removed"
    );
}

#[test]
fn a_missing_apiserver_binary_is_an_error_that_says_how_to_build_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .arg("apiserver")
        .env("FORGE_KUBE_APISERVER", "/nonexistent/kube-apiserver")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/kube-apiserver.sh"), "{stderr}");
}

#[test]
fn etcd_and_the_apiserver_die_with_a_launcher_killed_by_sigkill() {
    use std::io::{BufRead, BufReader};
    if forge_sim::apiserver::skipped("the SIGKILL test") {
        return;
    }
    forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .args(["apiserver", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut line).expect("read");
    assert!(line.starts_with("kubeconfig: "), "{line}");
    let kids = children_of(child.id());
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the launcher still runs"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    drop(reader);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while kids.iter().any(|k| is_alive(*k)) {
        assert!(
            std::time::Instant::now() < deadline,
            "children outlived their SIGKILLed parent: {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
