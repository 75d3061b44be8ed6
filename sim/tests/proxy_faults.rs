//! The fault proxy in front of the real kube-apiserver, driving a real kube 5 client: blackhole,
//! reset, refuse, latency and recovery; and the `forge-sim proxy` process with its control socket.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{PostParams, WatchEvent};

use forge_sim::apiserver::{ApiServerOptions, client_from_kubeconfig};
use forge_sim::proxy::FaultProxy;

/// The client's own timeout (connect, read, write); kube has none by default.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// Safety net so a broken expectation fails instead of hanging the test.
const NET: Duration = Duration::from_secs(15);

fn lease(name: &str) -> Lease {
    let mut l = Lease::default();
    l.metadata.name = Some(name.into());
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_proxy_breaks_and_heals_a_real_client_connection() {
    let Some(server) =
        common::start_apiserver("proxy faults", ApiServerOptions::with_identities(["pod-0"])).await
    else {
        return;
    };
    let proxy = FaultProxy::start_local(server.addr()).await.expect("proxy");
    let h = proxy.handle();
    let via = server
        .kubeconfig_via("pod-0", proxy.local_addr())
        .expect("kubeconfig via proxy");
    let client = client_from_kubeconfig(&via, Some(CLIENT_TIMEOUT))
        .await
        .expect("client");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .create(&PostParams::default(), &lease("pool1"))
        .await
        .expect("pass: create through the proxy");
    assert!(h.stats().accepted >= 1 && h.stats().bytes_down > 0);

    // Blackhole: the request hangs and the client's own timeout ends it.
    h.blackhole();
    let t = Instant::now();
    let r = tokio::time::timeout(NET, leases.get("pool1"))
        .await
        .expect("the client timeout fired before the net");
    assert!(r.is_err(), "a blackholed request must fail");
    let took = t.elapsed();
    eprintln!("blackholed get failed after {took:?}: {:?}", r.err());
    // The client's timer may fire a few hundred microseconds before our own clock says 1 s.
    let slack = Duration::from_millis(20);
    assert!(
        took + slack >= CLIENT_TIMEOUT && took < CLIENT_TIMEOUT * 4,
        "{took:?}"
    );
    // New connections hang too (TLS handshake never completes); a fresh client times out.
    let fresh = client_from_kubeconfig(&via, Some(CLIENT_TIMEOUT))
        .await
        .expect("client");
    let t = Instant::now();
    let r = tokio::time::timeout(NET, fresh.apiserver_version())
        .await
        .expect("timeout fired");
    assert!(r.is_err());
    eprintln!("blackholed new connection failed after {:?}", t.elapsed());

    // Pass restores requests.
    h.pass();
    leases.get("pool1").await.expect("pass again: get works");

    // Latency: up 300 ms is felt by every request.
    h.latency(Duration::from_millis(300), Duration::ZERO);
    let t = Instant::now();
    leases.get("pool1").await.expect("slow get");
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    h.pass();

    // Reset ends a running watch stream.
    let watcher: Api<Lease> = Api::namespaced(
        client_from_kubeconfig(&via, None)
            .await
            .expect("client without read timeout"),
        "default",
    );
    let mut stream = common::watch_from_now(&watcher, 60).await;
    leases
        .create(&PostParams::default(), &lease("seen"))
        .await
        .expect("create");
    match tokio::time::timeout(NET, stream.next())
        .await
        .expect("event in time")
    {
        Some(Ok(WatchEvent::Added(_))) => {}
        other => panic!("expected ADDED, got {other:?}"),
    }
    let resets_before = h.stats().reset;
    h.reset();
    let t = Instant::now();
    loop {
        match tokio::time::timeout(NET, stream.next())
            .await
            .expect("the stream ends in time")
        {
            None | Some(Err(_)) => break,
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            Some(Ok(e)) => panic!("unexpected event after reset: {e:?}"),
        }
    }
    eprintln!("watch ended {:?} after reset", t.elapsed());
    assert!(h.stats().reset > resets_before);
    // After a reset the proxy passes again at once.
    leases.get("pool1").await.expect("get after reset");

    // Refuse: new connections are refused at once; pass heals.
    h.refuse();
    let refused_client = client_from_kubeconfig(&via, Some(CLIENT_TIMEOUT))
        .await
        .expect("client");
    let t = Instant::now();
    let r = tokio::time::timeout(NET, refused_client.apiserver_version())
        .await
        .expect("fails fast");
    assert!(r.is_err());
    assert!(
        t.elapsed() < CLIENT_TIMEOUT,
        "refused, not timed out: {:?} {:?}",
        t.elapsed(),
        r.err()
    );
    h.pass();
    let mut healed = false;
    for _ in 0..50 {
        if refused_client.apiserver_version().await.is_ok() {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(healed, "pass after refuse restores requests");
    proxy.stop().await;
}

#[test]
fn the_proxy_binary_is_switched_through_its_control_socket_and_stops_on_sigterm() {
    // A trivial upstream: accepts and echoes.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_addr = upstream.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in upstream.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().expect("clone");
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = dir.path().join("proxy.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .args(["proxy", "--upstream", &up_addr.to_string(), "--control"])
        .arg(&ctl)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    let listen = line
        .trim()
        .strip_prefix("listen: ")
        .unwrap_or_else(|| panic!("bad first line {line:?}"))
        .to_owned();

    let mut s = std::net::TcpStream::connect(&listen).expect("connect via proxy");
    s.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut buf).expect("echo");
    assert_eq!(&buf, b"ping");

    let deadline = Instant::now() + Duration::from_secs(5);
    let ctl_conn = loop {
        match std::os::unix::net::UnixStream::connect(&ctl) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "control socket: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let mut ctl_w = ctl_conn.try_clone().expect("clone");
    let mut ctl_r = BufReader::new(ctl_conn);
    for cmd in ["latency 100 0", "blackhole", "pass", "reset", "refuse", "pass"] {
        writeln!(ctl_w, "{cmd}").expect("write");
        let mut reply = String::new();
        ctl_r.read_line(&mut reply).expect("reply");
        assert_eq!(reply.trim(), "ok", "{cmd}");
    }
    writeln!(ctl_w, "stats").expect("write");
    let mut reply = String::new();
    ctl_r.read_line(&mut reply).expect("reply");
    let stats: serde_json::Value = serde_json::from_str(&reply).expect("stats json");
    assert_eq!(stats["accepted"], 1);
    assert_eq!(stats["reset"], 1);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "proxy did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    assert!(!ctl.exists(), "control socket removed");
}
