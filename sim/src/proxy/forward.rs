//! The forwarding: the accept loop (which closes the listening socket while refusing) and
//! each connection's two pumps, which hold, delay or pass the bytes as the mode says and close
//! with a TCP RST on a reset.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Counters, ProxyHandle, ProxyMode};

pub(super) async fn accept_loop(listener: TcpListener, h: ProxyHandle) {
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
