//! A TCP fault proxy for one client in front of one upstream (an API server, fake or real): the
//! only fault mechanism that works with the real kube-apiserver (docs/architecture.md, "Test
//! world").
//!
//! The mode is switched at run time through a cloneable [`ProxyHandle`], or from a shell through
//! a Unix control socket ([`serve_control`], one-line commands). Modes:
//!
//! - [`ProxyMode::Pass`]: forward bytes both ways.
//! - [`ProxyMode::Latency`]: forward each chunk `up` (client to upstream) or `down` (upstream to
//!   client) later than it arrived; throughput is not reduced, only delayed.
//! - [`ProxyMode::Blackhole`]: new connections are accepted but not connected upstream, and open
//!   connections stop forwarding in both directions, so requests hang (a partition). Nothing is
//!   dropped: when the mode changes back, held bytes flow again, as TCP retransmission would do.
//! - [`ProxyMode::BlackholeUp`] / [`ProxyMode::BlackholeDown`]: one direction only. With
//!   `BlackholeDown` requests reach the upstream and are served, but the answers are held (what
//!   an established TCP connection does when only the return path fails: the server receives
//!   and acts, the client hears nothing); with `BlackholeUp` requests are held and nothing
//!   comes back. New connections are connected upstream in both; held bytes flow again later.
//! - [`ProxyMode::Refuse`]: the listening socket is closed, so new connections get a real
//!   `ECONNREFUSED`; open connections keep passing. Leaving the mode binds the same address again.
//! - [`ProxyHandle::reset`] (an action, not a mode): closes every open connection at once with a
//!   TCP RST (kills watches), then the proxy keeps going in its current mode.
//!
//! Loopback only in tests. Not part of the sidecar.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the proxy treats traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// Delay each direction by its own amount.
    Latency {
        /// Client to upstream.
        up: Duration,
        /// Upstream to client.
        down: Duration,
    },
    /// Accept, but forward nothing (requests hang).
    Blackhole,
    /// Hold what the client sends; forward what the upstream sends.
    BlackholeUp,
    /// Forward what the client sends; hold what the upstream sends (requests land, answers are
    /// lost to the client).
    BlackholeDown,
    /// Stop listening: new connections are refused.
    Refuse,
}

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections closed by [`ProxyHandle::reset`].
    pub reset: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_up: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_down: u64,
}

/// Errors of the proxy and its control socket.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Binding or accepting failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// A control command could not be parsed.
    #[error(
        "bad command {0:?}: expected pass | latency UP_MS DOWN_MS | blackhole [up|down] | reset | refuse | stats"
    )]
    BadCommand(String),
}

impl ProxyError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::BadCommand(_) => "bad_command",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    reset: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    listen: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    /// Bumped by reset (and at shutdown): every connection older than the bump closes.
    epoch: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
}

/// Controls a running [`FaultProxy`]; cheap to clone, usable from any task or thread.
#[derive(Debug, Clone)]
pub struct ProxyHandle(Arc<Shared>);

impl ProxyHandle {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.listen
    }

    /// The upstream address.
    pub fn upstream(&self) -> SocketAddr {
        self.0.upstream
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.0.mode.borrow()
    }

    /// Switches the mode; takes effect at once for new and open connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.0.mode.send_replace(mode);
    }

    /// Shorthand for [`ProxyMode::Pass`].
    pub fn pass(&self) {
        self.set_mode(ProxyMode::Pass);
    }

    /// Shorthand for [`ProxyMode::Latency`].
    pub fn latency(&self, up: Duration, down: Duration) {
        self.set_mode(ProxyMode::Latency { up, down });
    }

    /// Shorthand for [`ProxyMode::Blackhole`].
    pub fn blackhole(&self) {
        self.set_mode(ProxyMode::Blackhole);
    }

    /// Shorthand for [`ProxyMode::Refuse`].
    pub fn refuse(&self) {
        self.set_mode(ProxyMode::Refuse);
    }

    /// Closes every open connection now with a TCP RST; the mode is unchanged.
    pub fn reset(&self) {
        self.0.epoch.send_modify(|e| *e += 1);
    }

    /// The counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.0.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Runs a one-line control command (see [`parse_command`]) and returns the reply line.
    pub fn command(&self, line: &str) -> Result<String, ProxyError> {
        match parse_command(line)? {
            Command::Mode(m) => self.set_mode(m),
            Command::Reset => self.reset(),
            Command::Stats => return Ok(serde_json::to_string(&self.stats()).unwrap_or_default()),
        }
        Ok("ok".into())
    }
}

/// A parsed control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Switch to a mode.
    Mode(ProxyMode),
    /// Reset open connections.
    Reset,
    /// Report the counters.
    Stats,
}

/// Parses `pass`, `latency UP_MS DOWN_MS`, `blackhole`, `blackhole up`, `blackhole down`,
/// `reset`, `refuse` or `stats`.
pub fn parse_command(line: &str) -> Result<Command, ProxyError> {
    let bad = || ProxyError::BadCommand(line.trim().to_owned());
    let words: Vec<&str> = line.split_whitespace().collect();
    let ms = |w: &str| w.parse::<u64>().map(Duration::from_millis).map_err(|_| bad());
    Ok(match words.as_slice() {
        ["pass"] => Command::Mode(ProxyMode::Pass),
        ["blackhole"] => Command::Mode(ProxyMode::Blackhole),
        ["blackhole", "up"] => Command::Mode(ProxyMode::BlackholeUp),
        ["blackhole", "down"] => Command::Mode(ProxyMode::BlackholeDown),
        ["refuse"] => Command::Mode(ProxyMode::Refuse),
        ["reset"] => Command::Reset,
        ["stats"] => Command::Stats,
        ["latency", up, down] => Command::Mode(ProxyMode::Latency {
            up: ms(up)?,
            down: ms(down)?,
        }),
        _ => return Err(bad()),
    })
}

/// A running proxy. Dropping it (or [`FaultProxy::stop`]) stops listening and closes every
/// connection.
#[derive(Debug)]
pub struct FaultProxy {
    handle: ProxyHandle,
    task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `listen` (use port 0 for a free port) in front of `upstream`, in `Pass` mode.
    pub async fn start(upstream: SocketAddr, listen: SocketAddr) -> Result<FaultProxy, ProxyError> {
        let listener = TcpListener::bind(listen).await.map_err(|source| ProxyError::Io {
            what: format!("binding {listen}"),
            source,
        })?;
        let listen = listener.local_addr().map_err(|source| ProxyError::Io {
            what: "local_addr".into(),
            source,
        })?;
        let handle = ProxyHandle(Arc::new(Shared {
            upstream,
            listen,
            mode: watch::Sender::new(ProxyMode::Pass),
            epoch: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            counters: Counters::default(),
        }));
        let task = tokio::spawn(accept_loop(listener, handle.clone()));
        Ok(FaultProxy {
            handle,
            task: Some(task),
        })
    }

    /// Listens on a free port of 127.0.0.1.
    pub async fn start_local(upstream: SocketAddr) -> Result<FaultProxy, ProxyError> {
        Self::start(upstream, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A handle to switch modes and read counters.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Stops listening, closes all connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    fn signal_stop(&self) {
        self.handle.0.shutdown.send_replace(true);
        self.handle.0.epoch.send_modify(|e| *e += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

async fn accept_loop(listener: TcpListener, h: ProxyHandle) {
    let mut listener = Some(listener);
    let mut mode_rx = h.0.mode.subscribe();
    let mut stop_rx = h.0.shutdown.subscribe();
    loop {
        if *stop_rx.borrow() {
            return;
        }
        let refusing = *mode_rx.borrow_and_update() == ProxyMode::Refuse;
        if refusing {
            // Closing the listening socket makes the kernel refuse new connections for real.
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(h.0.listen).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("forge-sim proxy: rebinding {} failed ({e}); retrying", h.0.listen);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = stop_rx.changed() => {}
                    }
                    continue;
                }
            }
        }
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop_rx.changed() => {}
            _ = mode_rx.changed() => {}
            accepted = accept => match accepted {
                Ok((stream, _)) => {
                    h.0.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    if h.mode() == ProxyMode::Refuse {
                        drop(stream);
                    } else {
                        tokio::spawn(connection(stream, h.clone()));
                    }
                }
                Err(e) => {
                    eprintln!("forge-sim proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Decrements the open-connection gauge when a connection task ends, however it ends.
struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Does `mode` hold traffic going `dir` (`None`: connecting upstream, held only by a full
/// blackhole)?
fn holds(mode: ProxyMode, dir: Option<Direction>) -> bool {
    matches!(
        (mode, dir),
        (ProxyMode::Blackhole, _)
            | (ProxyMode::BlackholeUp, Some(Direction::Up))
            | (ProxyMode::BlackholeDown, Some(Direction::Down))
    )
}

async fn wait_not_blackholed(mode_rx: &mut watch::Receiver<ProxyMode>, dir: Option<Direction>) {
    while holds(*mode_rx.borrow_and_update(), dir) {
        if mode_rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn connection(client: TcpStream, h: ProxyHandle) {
    h.0.counters.open.fetch_add(1, Ordering::Relaxed);
    let _guard = OpenGuard(&h.0.counters);
    let mut epoch_rx = h.0.epoch.subscribe();
    epoch_rx.borrow_and_update();
    let mut mode_rx = h.0.mode.subscribe();

    let upstream = tokio::select! {
        _ = epoch_rx.changed() => {
            let _ = client.set_zero_linger();
            h.0.counters.reset.fetch_add(1, Ordering::Relaxed);
            return;
        }
        up = async {
            wait_not_blackholed(&mut mode_rx, None).await;
            TcpStream::connect(h.0.upstream).await
        } => up,
    };
    let Ok(upstream) = upstream else { return };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();

    let reset = {
        let up = pump(&mut cr, &mut uw, Direction::Up, &h);
        let down = pump(&mut ur, &mut cw, Direction::Down, &h);
        tokio::select! {
            _ = epoch_rx.changed() => true,
            _ = async { tokio::try_join!(up, down) } => false,
        }
    };
    if reset {
        h.0.counters.reset.fetch_add(1, Ordering::Relaxed);
        // SO_LINGER 0: close() sends RST instead of FIN, as a dropped connection looks.
        let _ = AsRef::<TcpStream>::as_ref(&cw).set_zero_linger();
        let _ = AsRef::<TcpStream>::as_ref(&uw).set_zero_linger();
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

async fn pump(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    dir: Direction,
    h: &ProxyHandle,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let mut read_mode = h.0.mode.subscribe();
    let mut write_mode = h.0.mode.subscribe();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            wait_not_blackholed(&mut read_mode, Some(dir)).await;
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            let delay = match (*read_mode.borrow(), dir) {
                (ProxyMode::Latency { up, .. }, Direction::Up) => up,
                (ProxyMode::Latency { down, .. }, Direction::Down) => down,
                _ => Duration::ZERO,
            };
            if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                return Ok(());
            }
        }
    };
    let counter = match dir {
        Direction::Up => &h.0.counters.bytes_up,
        Direction::Down => &h.0.counters.bytes_down,
    };
    let writer = async {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            wait_not_blackholed(&mut write_mode, Some(dir)).await;
            w.write_all(&data).await?;
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        // The reader saw EOF: pass the half-close on.
        w.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

/// Serves the control socket at `path` (a stale file is removed first): each line is a command
/// for [`ProxyHandle::command`], answered by one line (`ok`, the stats JSON, or `error: ...`).
/// Runs until `shutdown` resolves, then removes the socket file.
pub async fn serve_control(
    path: &Path,
    h: ProxyHandle,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let io_err = |what: &str, source| ProxyError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| io_err("removing stale", e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| io_err("binding", e))?;
    let _cleanup = RemoveOnDrop(path.to_owned());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let h = h.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let reply = h.command(&line).unwrap_or_else(|e| format!("error: {e}"));
                        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
        let h = proxy.handle();
        let mut old = TcpStream::connect(proxy.local_addr()).await.expect("connect");
        roundtrip(&mut old, b"a").await.expect("echo");
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
        let mut buf = [0u8; 1];
        tokio::time::timeout(T, old.read_exact(&mut buf))
            .await
            .expect("in time")
            .expect("held byte");
        assert_eq!(&buf, b"b");
        tokio::time::timeout(T, new.read_exact(&mut buf))
            .await
            .expect("in time")
            .expect("held byte");
        assert_eq!(&buf, b"c");
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
            let mut buf = [0u8; 1];
            tokio::time::timeout(T, s.read_exact(&mut buf))
                .await
                .expect("in time")
                .expect("held answer");
            assert_eq!(&buf, msg);
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
        let mut buf = [0u8; 1];
        tokio::time::timeout(T, s.read_exact(&mut buf))
            .await
            .expect("in time")
            .expect("answer");
        assert_eq!(&buf, b"x");
    }

    #[tokio::test]
    async fn reset_kills_open_connections_but_not_later_ones() {
        let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
        let h = proxy.handle();
        let mut s = TcpStream::connect(proxy.local_addr()).await.expect("connect");
        roundtrip(&mut s, b"a").await.expect("echo");
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
        let proxy = FaultProxy::start_local(echo_server().await).await.expect("proxy");
        let h = proxy.handle();
        let mut open = TcpStream::connect(proxy.local_addr()).await.expect("connect");
        roundtrip(&mut open, b"a").await.expect("echo");
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
        assert!(
            lines
                .next_line()
                .await
                .expect("read")
                .expect("line")
                .starts_with("error: bad command")
        );
        assert!(
            lines
                .next_line()
                .await
                .expect("read")
                .expect("line")
                .starts_with("{\"accepted\":0")
        );
        let _ = stop_tx.send(());
        server.await.expect("join").expect("served");
        assert!(!path.exists(), "socket file removed");
    }
}
