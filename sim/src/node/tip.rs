//! The simulated chain tip ([`Tip`]), the metrics endpoint that serves it with the forging
//! state, and the node's control socket (`stall MS`, `lag MS`, `freeze`, `resume`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

/// The simulated chain tip (module docs): in sync, a fixed lag behind, or frozen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tip {
    /// How far behind the wall clock the tip runs.
    pub lag: Duration,
    /// Where the tip stopped, when frozen.
    pub frozen: Option<u64>,
}

/// Blocks come every 20 slots on average (mainnet's active slot coefficient of 1/20).
const BLOCK_SLOTS: u64 = 20;

impl Tip {
    /// The tip slot at wall time `now`.
    pub fn slot(&self, now: jiff::Timestamp) -> u64 {
        self.frozen.unwrap_or_else(|| {
            let then = now - jiff::SignedDuration::try_from(self.lag).unwrap_or_default();
            forge_core::cardano::KesSchedule::mainnet().slot_at(then) / BLOCK_SLOTS * BLOCK_SLOTS
        })
    }

    /// Applies a control command (`lag MS`, `freeze`, `resume`); `None` if it is not one.
    fn command(&mut self, words: &[&str]) -> Option<Result<(), String>> {
        match words {
            ["lag", ms] => Some(match ms.parse::<u64>() {
                Ok(ms) => {
                    *self = Tip {
                        lag: Duration::from_millis(ms),
                        frozen: None,
                    };
                    Ok(())
                }
                Err(_) => Err(format!("lag takes milliseconds, not {ms:?}")),
            }),
            ["freeze"] => {
                self.frozen = Some(self.slot(jiff::Timestamp::now()));
                Some(Ok(()))
            }
            ["resume"] => {
                *self = Tip::default();
                Some(Ok(()))
            }
            _ => None,
        }
    }
}

/// The node's control socket: one-line commands, `stall MS` and the tip's `lag MS`, `freeze`,
/// `resume` (answered `ok` or `error: ...`).
pub(super) async fn serve_node_control(
    listener: UnixListener,
    stall: mpsc::UnboundedSender<Duration>,
    tip: Arc<Mutex<Tip>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let stall = stall.clone();
        let tip = tip.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["stall", ms] => match ms.parse::<u64>() {
                        Ok(ms) => {
                            let _ = stall.send(Duration::from_millis(ms));
                            "ok".to_owned()
                        }
                        Err(_) => format!("error: stall takes milliseconds, not {ms:?}"),
                    },
                    words => match tip.lock().unwrap_or_else(|p| p.into_inner()).command(words) {
                        Some(Ok(())) => "ok".to_owned(),
                        Some(Err(e)) => format!("error: {e}"),
                        None => format!(
                            "error: unknown command {line:?} (expected: stall MS, lag MS, freeze, resume)"
                        ),
                    },
                };
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

pub(super) async fn serve_metrics(
    listener: TcpListener,
    forging: watch::Receiver<bool>,
    tip: Arc<Mutex<Tip>>,
) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let forging = forging.clone();
        let tip = tip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slot(jiff::Timestamp::now());
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the request head (bounded), then answer and close.
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let path_ok = req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ");
            let (status, body) = if path_ok {
                let v = u8::from(*forging.borrow());
                (
                    "200 OK",
                    format!(
                        "# TYPE cardano_node_metrics_forging_enabled gauge\ncardano_node_metrics_forging_enabled {v}\n\
                         # TYPE cardano_node_metrics_slotNum_int gauge\ncardano_node_metrics_slotNum_int {tip}\n\
                         # TYPE cardano_node_metrics_blockNum_int gauge\ncardano_node_metrics_blockNum_int {}\n",
                        tip / BLOCK_SLOTS
                    ),
                )
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}
