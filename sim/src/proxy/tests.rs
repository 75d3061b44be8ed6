//! Each mode and the reset against echo servers, the command parser and the control socket.
use super::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// An upstream that echoes everything back.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

const T: Duration = Duration::from_secs(5);

/// The next byte read from `s`, within [`T`].
async fn next_byte(s: &mut TcpStream) -> u8 {
    let mut buf = [0u8; 1];
    tokio::time::timeout(T, s.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("a byte");
    buf[0]
}

/// A proxy in front of an echo server, and a connection through it that has echoed once.
async fn proxied_echo() -> (FaultProxy, TcpStream) {
    let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
    let mut s = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    roundtrip(&mut s, b"a").await.expect("echo");
    (proxy, s)
}

#[test]
fn commands_parse() {
    assert_eq!(
        parse_command("pass").expect("pass"),
        Command::Mode(ProxyMode::Pass)
    );
    assert_eq!(
        parse_command(" latency 100 0 \n").expect("latency"),
        Command::Mode(ProxyMode::Latency {
            up: Duration::from_millis(100),
            down: Duration::ZERO
        })
    );
    assert_eq!(parse_command("reset").expect("reset"), Command::Reset);
    assert_eq!(
        parse_command("blackhole down").expect("one way"),
        Command::Mode(ProxyMode::BlackholeDown)
    );
    assert_eq!(
        parse_command("blackhole up").expect("one way"),
        Command::Mode(ProxyMode::BlackholeUp)
    );
    assert!(parse_command("blackhole sideways").is_err());
    assert!(parse_command("latency 100").is_err());
    assert!(parse_command("latency x 1").is_err());
    assert!(parse_command("explode").is_err());
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts_bytes() {
    let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
    let mut s = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    assert_eq!(roundtrip(&mut s, b"hello").await.expect("echo"), b"hello");
    let st = proxy.handle().stats();
    assert_eq!((st.accepted, st.open, st.bytes_up, st.bytes_down), (1, 1, 5, 5));
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
    proxy
        .handle()
        .latency(Duration::from_millis(150), Duration::from_millis(100));
    let mut s = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    let t = std::time::Instant::now();
    roundtrip(&mut s, b"x").await.expect("echo");
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(250) && rtt < Duration::from_millis(1500),
        "{rtt:?}"
    );
    proxy.handle().pass();
    let t = std::time::Instant::now();
    roundtrip(&mut s, b"y").await.expect("echo");
    assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
}

#[tokio::test]
async fn blackhole_holds_traffic_until_pass() {
    let (proxy, mut old) = proxied_echo().await;
    let h = proxy.handle();
    h.blackhole();
    // An open connection hangs ...
    assert!(
        tokio::time::timeout(Duration::from_millis(300), roundtrip(&mut old, b"b"))
            .await
            .is_err()
    );
    // ... and so does a new one: accepted, never answered.
    let mut new = TcpStream::connect(proxy.local_addr()).await.expect("accepted");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), roundtrip(&mut new, b"c"))
            .await
            .is_err()
    );
    h.pass();
    assert_eq!(next_byte(&mut old).await, b'b', "held byte");
    assert_eq!(next_byte(&mut new).await, b'c', "held byte");
}

/// An upstream that reports every byte it receives and echoes it back.
async fn recording_echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    let _ = tx.send(buf[..n].to_vec());
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn blackhole_down_delivers_requests_and_holds_the_answers() {
    let (upstream, mut received) = recording_echo_server().await;
    let proxy = FaultProxy::start_local(upstream).await.expect("proxy");
    let h = proxy.handle();
    let mut old = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    roundtrip(&mut old, b"a").await.expect("echo");
    assert_eq!(received.recv().await.expect("a"), b"a");
    h.set_mode(ProxyMode::BlackholeDown);
    let mut new = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    for (s, msg) in [(&mut old, b"b"), (&mut new, b"c")] {
        // The upstream gets the request ...
        s.write_all(msg).await.expect("write");
        let got = tokio::time::timeout(T, received.recv()).await.expect("delivered");
        assert_eq!(got.expect("bytes"), msg);
        // ... but its answer does not come back.
        let mut buf = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf))
                .await
                .is_err(),
            "an answer passed"
        );
    }
    assert_eq!(h.stats().bytes_down, 1, "only the answer before the fault");
    h.pass();
    for (s, msg) in [(&mut old, b"b"), (&mut new, b"c")] {
        assert_eq!(&[next_byte(s).await], msg, "held answer");
    }
}

#[tokio::test]
async fn blackhole_up_holds_requests_until_pass() {
    let (upstream, mut received) = recording_echo_server().await;
    let proxy = FaultProxy::start_local(upstream).await.expect("proxy");
    let h = proxy.handle();
    h.set_mode(ProxyMode::BlackholeUp);
    let mut s = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    s.write_all(b"x").await.expect("write");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), received.recv())
            .await
            .is_err(),
        "a request passed"
    );
    h.pass();
    let got = tokio::time::timeout(T, received.recv()).await.expect("delivered");
    assert_eq!(got.expect("bytes"), b"x");
    assert_eq!(next_byte(&mut s).await, b'x', "answer");
}

#[tokio::test]
async fn reset_kills_open_connections_but_not_later_ones() {
    let (proxy, mut s) = proxied_echo().await;
    let h = proxy.handle();
    h.reset();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let mut s2 = TcpStream::connect(proxy.local_addr()).await.expect("connect");
    assert_eq!(roundtrip(&mut s2, b"z").await.expect("echo"), b"z");
    assert_eq!(h.stats().reset, 1);
}

#[tokio::test]
async fn refuse_closes_the_port_for_real_and_pass_reopens_it() {
    let (proxy, mut open) = proxied_echo().await;
    let h = proxy.handle();
    h.refuse();
    let mut refused = false;
    for _ in 0..100 {
        match TcpStream::connect(proxy.local_addr()).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "never refused");
    // The open connection still passes.
    assert_eq!(roundtrip(&mut open, b"b").await.expect("echo"), b"b");
    h.pass();
    let mut ok = None;
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(proxy.local_addr()).await {
            ok = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut s = ok.expect("listening again");
    assert_eq!(roundtrip(&mut s, b"c").await.expect("echo"), b"c");
}

#[tokio::test]
async fn the_control_socket_switches_modes() {
    let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
    let h = proxy.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ctl.sock");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let (path, h) = (path.clone(), h.clone());
        async move {
            serve_control(&path, h, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = tokio::net::UnixStream::connect(&path).await {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (r, mut w) = conn.expect("control socket").into_split();
    let mut lines = BufReader::new(r).lines();
    for (cmd, want) in [
        (
            "latency 5 7",
            ProxyMode::Latency {
                up: Duration::from_millis(5),
                down: Duration::from_millis(7),
            },
        ),
        ("blackhole", ProxyMode::Blackhole),
        ("pass", ProxyMode::Pass),
    ] {
        w.write_all(format!("{cmd}\n").as_bytes()).await.expect("write");
        assert_eq!(lines.next_line().await.expect("read").as_deref(), Some("ok"));
        assert_eq!(h.mode(), want);
    }
    w.write_all(b"fly\nstats\n").await.expect("write");
    for want in ["error: bad command", "{\"accepted\":0"] {
        let line = lines.next_line().await.expect("read").expect("line");
        assert!(line.starts_with(want), "{line:?} does not start with {want:?}");
    }
    let _ = stop_tx.send(());
    server.await.expect("join").expect("served");
    assert!(!path.exists(), "socket file removed");
}
